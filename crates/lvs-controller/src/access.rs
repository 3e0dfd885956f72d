//! Every request the controller sends to the API server, as the (verb, group, resource,
//! subresource) an RBAC rule must grant: [`API_REQUESTS`] is the list the Helm chart's roles
//! are checked against (the `controller` entry of `e2e/chart/api-requests.json`, which a test
//! here keeps in step), and [`classify`] turns a request the mock API server saw into the same
//! terms, so the tests prove the list complete. The types and the classifier are shared with
//! the agent: [`lvs_core::access`].

pub use lvs_core::access::{ApiRequest, Scope};
use lvs_core::access::{named, request};

const CRD_GET: ApiRequest = request(
    "get",
    "apiextensions.k8s.io",
    "customresourcedefinitions",
    "",
    Scope::Cluster,
);

const LVS: &str = lvs_api::GROUP;

/// Every request `lvs-controller` makes, sorted by group, resource, subresource, verb and name.
///
/// A server-side apply that creates its object is authorized as `create` as well as `patch`, so
/// both are listed for `lvsnodeconfigs`. The VirtualServers and RealServers generated from
/// Services are created, merge-patched and deleted (`services::mirror`), in the Services'
/// namespaces; a Service's status is strategic-merge-patched. The failover key Secrets are read and, when missing,
/// created in the controller's own namespace (`failover_keys`, at start). Events are created (and patched when they repeat) in
/// the namespace of the object they are about; cluster-scoped objects' events go to `default`.
pub const API_REQUESTS: &[ApiRequest] = &[
    request("list", "", "namespaces", "", Scope::Cluster),
    request("watch", "", "namespaces", "", Scope::Cluster),
    request("list", "", "nodes", "", Scope::Cluster),
    request("watch", "", "nodes", "", Scope::Cluster),
    request("create", "", "secrets", "", Scope::OwnNamespace),
    request("get", "", "secrets", "", Scope::OwnNamespace),
    request("list", "", "services", "", Scope::Cluster),
    request("watch", "", "services", "", Scope::Cluster),
    request("patch", "", "services", "status", Scope::Cluster),
    named(CRD_GET, "addresspools.lvs.operator.io"),
    named(CRD_GET, "lvsnodeconfigs.lvs.operator.io"),
    named(CRD_GET, "realservers.lvs.operator.io"),
    named(CRD_GET, "virtualservers.lvs.operator.io"),
    request("create", "coordination.k8s.io", "leases", "", Scope::OwnNamespace),
    request("get", "coordination.k8s.io", "leases", "", Scope::OwnNamespace),
    request("update", "coordination.k8s.io", "leases", "", Scope::OwnNamespace),
    request("list", "discovery.k8s.io", "endpointslices", "", Scope::Cluster),
    request("watch", "discovery.k8s.io", "endpointslices", "", Scope::Cluster),
    request("create", "events.k8s.io", "events", "", Scope::Cluster),
    request("patch", "events.k8s.io", "events", "", Scope::Cluster),
    request("list", LVS, "addresspools", "", Scope::Cluster),
    request("watch", LVS, "addresspools", "", Scope::Cluster),
    request("patch", LVS, "addresspools", "status", Scope::Cluster),
    request("create", LVS, "lvsnodeconfigs", "", Scope::Cluster),
    request("delete", LVS, "lvsnodeconfigs", "", Scope::Cluster),
    request("list", LVS, "lvsnodeconfigs", "", Scope::Cluster),
    request("patch", LVS, "lvsnodeconfigs", "", Scope::Cluster),
    request("watch", LVS, "lvsnodeconfigs", "", Scope::Cluster),
    request("create", LVS, "realservers", "", Scope::Cluster),
    request("delete", LVS, "realservers", "", Scope::Cluster),
    request("list", LVS, "realservers", "", Scope::Cluster),
    request("patch", LVS, "realservers", "", Scope::Cluster),
    request("watch", LVS, "realservers", "", Scope::Cluster),
    request("patch", LVS, "realservers", "status", Scope::Cluster),
    request("create", LVS, "virtualservers", "", Scope::Cluster),
    request("delete", LVS, "virtualservers", "", Scope::Cluster),
    request("list", LVS, "virtualservers", "", Scope::Cluster),
    request("patch", LVS, "virtualservers", "", Scope::Cluster),
    request("watch", LVS, "virtualservers", "", Scope::Cluster),
    request("patch", LVS, "virtualservers", "status", Scope::Cluster),
];

/// [`API_REQUESTS`] as JSON: `[{verb, group, resource, subresource, scope[, name]}]`, the shape
/// of the request lists the chart's RBAC check reads.
pub fn requests_json() -> serde_json::Value {
    lvs_core::access::requests_json(API_REQUESTS)
}

/// A request as RBAC sees it ([`lvs_core::access::RequestAttributes`]), checked against
/// [`API_REQUESTS`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestAttributes(pub lvs_core::access::RequestAttributes);

impl RequestAttributes {
    /// Whether [`API_REQUESTS`] lists this request.
    pub fn is_listed(&self) -> bool {
        self.0.is_listed_in(API_REQUESTS)
    }
}

/// The RBAC attributes of a resource request, or `None` for anything else
/// ([`lvs_core::access::classify`]).
pub fn classify(method: &str, path: &str, query: &str) -> Option<RequestAttributes> {
    lvs_core::access::classify(method, path, query).map(RequestAttributes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(method: &str, path: &str) -> RequestAttributes {
        classify(method, path, "").unwrap()
    }

    #[test]
    fn the_list_is_sorted_and_has_no_duplicates() {
        assert_eq!(lvs_core::access::out_of_order(API_REQUESTS), None);
        let lvs = "/apis/lvs.operator.io/v1alpha1";
        assert!(attributes("PATCH", &format!("{lvs}/realservers/rs/status")).is_listed());
        assert!(!attributes("PUT", &format!("{lvs}/realservers/rs/status")).is_listed());
        let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
        assert!(attributes("GET", &format!("{crds}/realservers.lvs.operator.io")).is_listed());
        assert!(
            !attributes("GET", &format!("{crds}/other.example.com")).is_listed(),
            "only our CRDs"
        );
        let json = requests_json();
        assert_eq!(json.as_array().unwrap().len(), API_REQUESTS.len());
        assert_eq!(json[9]["name"], "addresspools.lvs.operator.io");
        assert!(json[0].get("name").is_none());
    }

    /// `e2e/chart/api-requests.json` carries [`API_REQUESTS`] as the `controller` entry's
    /// `requests`; `UPDATE_API_REQUESTS=1` rewrites it when it is stale.
    #[test]
    fn the_charts_request_list_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../e2e/chart/api-requests.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let source = "crates/lvs-controller/src/access.rs: API_REQUESTS, generated (UPDATE_API_REQUESTS=1 cargo test -p lvs-controller access); the mock-API tests in crates/lvs-controller/tests assert every request the controller makes is listed";
        let updated =
            lvs_core::access::request_file_updated(&text, "controller", source, API_REQUESTS).unwrap();
        if let Some(updated) = updated {
            if std::env::var_os("UPDATE_API_REQUESTS").is_some() {
                std::fs::write(&path, updated).unwrap();
            } else {
                panic!(
                    "{} does not carry access::API_REQUESTS: run `UPDATE_API_REQUESTS=1 cargo test -p lvs-controller access` and commit",
                    path.display()
                );
            }
        }
    }
}
