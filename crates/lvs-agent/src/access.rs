//! Every request the agent sends to the API server in Kubernetes mode, as the (verb, group,
//! resource, subresource) an RBAC rule must grant: [`API_REQUESTS`] is the `agent` entry of
//! `e2e/chart/api-requests.json` (a test here keeps that file in step), which the Helm chart's
//! agent role is checked against. `tests/kubernetes_mode.rs` records every request the agent
//! makes to its mock API server and asserts each one classifies
//! ([`lvs_core::access::classify`]) into this list.

use lvs_core::access::request;
pub use lvs_core::access::{ApiRequest, RequestAttributes, Scope, classify};

const LVS: &str = lvs_api::GROUP;

/// Every request `lvs-agent` makes (in Kubernetes mode; standalone mode makes none), sorted by
/// group, resource, subresource, verb and name.
///
/// It watches its own node's LvsNodeConfigs (`Api::all` with the label selector
/// `lvs.operator.io/node=<node>`: list, then watch; RBAC cannot restrict by label, hence
/// cluster-wide) and writes their status by server-side apply on the `status` subresource, which
/// never creates an object, so `patch` alone is enough.
pub const API_REQUESTS: &[ApiRequest] = &[
    request("list", LVS, "lvsnodeconfigs", "", Scope::Cluster),
    request("watch", LVS, "lvsnodeconfigs", "", Scope::Cluster),
    request("patch", LVS, "lvsnodeconfigs", "status", Scope::Cluster),
];

/// [`API_REQUESTS`] as JSON: `[{verb, group, resource, subresource, scope}]`, the shape of the
/// request lists the chart's RBAC check reads.
pub fn requests_json() -> serde_json::Value {
    lvs_core::access::requests_json(API_REQUESTS)
}

/// Whether [`API_REQUESTS`] lists the request `attributes` describes.
pub fn is_listed(attributes: &RequestAttributes) -> bool {
    attributes.is_listed_in(API_REQUESTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_and_covers_the_agents_requests() {
        assert_eq!(lvs_core::access::out_of_order(API_REQUESTS), None);
        let configs = "/apis/lvs.operator.io/v1alpha1/lvsnodeconfigs";
        let listed =
            |method: &str, path: &str, query: &str| is_listed(&classify(method, path, query).unwrap());
        assert!(listed(
            "GET",
            configs,
            "labelSelector=lvs.operator.io%2Fnode%3Dd-1"
        ));
        assert!(listed(
            "GET",
            configs,
            "watch=true&labelSelector=lvs.operator.io%2Fnode%3Dd-1"
        ));
        assert!(listed(
            "PATCH",
            &format!("{configs}/d-1/status"),
            "fieldManager=lvs-agent&force=true"
        ));
        assert!(!listed("PATCH", &format!("{configs}/d-1"), ""), "not the spec");
        assert!(!listed("PUT", &format!("{configs}/d-1/status"), ""));
        assert!(!listed(
            "POST",
            "/apis/events.k8s.io/v1/namespaces/default/events",
            ""
        ));
        assert_eq!(requests_json().as_array().unwrap().len(), API_REQUESTS.len());
    }

    /// `e2e/chart/api-requests.json` carries [`API_REQUESTS`] as the `agent` entry's `requests`;
    /// `UPDATE_API_REQUESTS=1` rewrites it when it is stale.
    #[test]
    fn the_charts_request_list_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../e2e/chart/api-requests.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let source = "crates/lvs-agent/src/access.rs: API_REQUESTS, generated (UPDATE_API_REQUESTS=1 cargo test -p lvs-agent access); tests/kubernetes_mode.rs asserts every request the agent makes to its mock API server is listed";
        let updated = lvs_core::access::request_file_updated(&text, "agent", source, API_REQUESTS).unwrap();
        if let Some(updated) = updated {
            if std::env::var_os("UPDATE_API_REQUESTS").is_some() {
                std::fs::write(&path, updated).unwrap();
            } else {
                panic!(
                    "{} does not carry access::API_REQUESTS: run `UPDATE_API_REQUESTS=1 cargo test -p lvs-agent access` and commit",
                    path.display()
                );
            }
        }
    }
}
