//! Every request the controller sends to the API server, as the (verb, group, resource,
//! subresource) an RBAC rule must grant: [`API_REQUESTS`] is the list the Helm chart's roles
//! are checked against, and [`classify`] turns a request the mock API server saw into the same
//! terms, so the tests prove the list complete.

/// Where a permission is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Cluster-wide (a ClusterRole): cluster-scoped resources, or namespaced ones in every
    /// namespace.
    Cluster,
    /// Only in the controller's own namespace (a Role there): the leader-election Lease.
    OwnNamespace,
}

/// One kind of request, in RBAC terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiRequest {
    /// The RBAC verb: get, list, watch, create, update, patch, delete.
    pub verb: &'static str,
    /// The API group; empty for the core group.
    pub group: &'static str,
    /// The resource (plural).
    pub resource: &'static str,
    /// The subresource, e.g. `status`; empty for the resource itself.
    pub subresource: &'static str,
    /// Where the permission is needed.
    pub scope: Scope,
    /// The one object the request names, when that name is fixed (RBAC `resourceNames`).
    pub name: Option<&'static str>,
}

const fn request(
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    scope: Scope,
) -> ApiRequest {
    ApiRequest {
        verb,
        group,
        resource,
        subresource,
        scope,
        name: None,
    }
}

const fn named(request: ApiRequest, name: &'static str) -> ApiRequest {
    ApiRequest {
        name: Some(name),
        ..request
    }
}

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
/// both are listed for `lvsnodeconfigs`. Events are created (and patched when they repeat) in
/// the namespace of the object they are about; cluster-scoped objects' events go to `default`.
pub const API_REQUESTS: &[ApiRequest] = &[
    request("list", "", "nodes", "", Scope::Cluster),
    request("watch", "", "nodes", "", Scope::Cluster),
    named(CRD_GET, "lvsnodeconfigs.lvs.operator.io"),
    named(CRD_GET, "realservers.lvs.operator.io"),
    named(CRD_GET, "virtualservers.lvs.operator.io"),
    request("create", "coordination.k8s.io", "leases", "", Scope::OwnNamespace),
    request("get", "coordination.k8s.io", "leases", "", Scope::OwnNamespace),
    request("update", "coordination.k8s.io", "leases", "", Scope::OwnNamespace),
    request("create", "events.k8s.io", "events", "", Scope::Cluster),
    request("patch", "events.k8s.io", "events", "", Scope::Cluster),
    request("create", LVS, "lvsnodeconfigs", "", Scope::Cluster),
    request("delete", LVS, "lvsnodeconfigs", "", Scope::Cluster),
    request("list", LVS, "lvsnodeconfigs", "", Scope::Cluster),
    request("patch", LVS, "lvsnodeconfigs", "", Scope::Cluster),
    request("watch", LVS, "lvsnodeconfigs", "", Scope::Cluster),
    request("list", LVS, "realservers", "", Scope::Cluster),
    request("watch", LVS, "realservers", "", Scope::Cluster),
    request("patch", LVS, "realservers", "status", Scope::Cluster),
    request("list", LVS, "virtualservers", "", Scope::Cluster),
    request("watch", LVS, "virtualservers", "", Scope::Cluster),
    request("patch", LVS, "virtualservers", "status", Scope::Cluster),
];

impl Scope {
    /// `Cluster` or `OwnNamespace`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cluster => "Cluster",
            Self::OwnNamespace => "OwnNamespace",
        }
    }
}

/// [`API_REQUESTS`] as JSON: `[{verb, group, resource, subresource, scope[, name]}]`, the shape
/// of the request lists the chart's RBAC check reads.
pub fn requests_json() -> serde_json::Value {
    API_REQUESTS
        .iter()
        .map(|request| {
            let mut entry = serde_json::json!({
                "verb": request.verb,
                "group": request.group,
                "resource": request.resource,
                "subresource": request.subresource,
                "scope": request.scope.as_str(),
            });
            if let Some(name) = request.name {
                entry["name"] = serde_json::json!(name);
            }
            entry
        })
        .collect()
}

/// A request as RBAC sees it, worked out from its method, path and query.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestAttributes {
    /// The RBAC verb.
    pub verb: String,
    /// The API group; empty for the core group.
    pub group: String,
    /// The resource (plural).
    pub resource: String,
    /// The subresource; empty for none.
    pub subresource: String,
    /// The object named, if any.
    pub name: Option<String>,
}

impl RequestAttributes {
    /// Whether [`API_REQUESTS`] lists this request.
    pub fn is_listed(&self) -> bool {
        API_REQUESTS.iter().any(|listed| {
            listed.verb == self.verb
                && listed.group == self.group
                && listed.resource == self.resource
                && listed.subresource == self.subresource
                && listed.name.is_none_or(|name| self.name.as_deref() == Some(name))
        })
    }
}

/// The RBAC attributes of a resource request (`/api/v1/...` or `/apis/GROUP/VERSION/...`), or
/// `None` for anything else (discovery, `/version`, a malformed path).
pub fn classify(method: &str, path: &str, query: &str) -> Option<RequestAttributes> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return None,
    };
    let rest = match rest {
        ["namespaces", _namespace, resource, tail @ ..] => {
            let mut rest = vec![*resource];
            rest.extend_from_slice(tail);
            rest
        }
        other => other.to_vec(),
    };
    let (resource, name, subresource) = match rest.as_slice() {
        [resource] => (*resource, None, ""),
        [resource, name] => (*resource, Some(*name), ""),
        [resource, name, subresource] => (*resource, Some(*name), *subresource),
        _ => return None,
    };
    let watching = query
        .split('&')
        .any(|pair| pair == "watch=true" || pair == "watch=1");
    let verb = match (method, name) {
        ("GET", _) if watching => "watch",
        ("GET", None) => "list",
        ("GET", Some(_)) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", None) => "deletecollection",
        ("DELETE", Some(_)) => "delete",
        _ => return None,
    };
    Some(RequestAttributes {
        verb: verb.to_owned(),
        group: group.to_owned(),
        resource: resource.to_owned(),
        subresource: subresource.to_owned(),
        name: name.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(verb: &str, group: &str, resource: &str, subresource: &str) -> RequestAttributes {
        RequestAttributes {
            verb: verb.to_owned(),
            group: group.to_owned(),
            resource: resource.to_owned(),
            subresource: subresource.to_owned(),
            name: None,
        }
    }

    fn naming(attributes: RequestAttributes, name: &str) -> RequestAttributes {
        RequestAttributes {
            name: Some(name.to_owned()),
            ..attributes
        }
    }

    #[test]
    fn paths_are_classified_like_the_api_server_does() {
        let cases = [
            (
                "GET",
                "/api/v1/nodes",
                "limit=500",
                attributes("list", "", "nodes", ""),
            ),
            (
                "GET",
                "/api/v1/nodes",
                "watch=true&resourceVersion=1",
                attributes("watch", "", "nodes", ""),
            ),
            (
                "PATCH",
                "/apis/lvs.operator.io/v1alpha1/namespaces/default/virtualservers/web/status",
                "fieldManager=lvs-controller&force=true",
                naming(
                    attributes("patch", "lvs.operator.io", "virtualservers", "status"),
                    "web",
                ),
            ),
            (
                "DELETE",
                "/apis/lvs.operator.io/v1alpha1/lvsnodeconfigs/rs-1",
                "",
                naming(
                    attributes("delete", "lvs.operator.io", "lvsnodeconfigs", ""),
                    "rs-1",
                ),
            ),
            (
                "PUT",
                "/apis/coordination.k8s.io/v1/namespaces/lvs-system/leases/lvs-controller",
                "",
                naming(
                    attributes("update", "coordination.k8s.io", "leases", ""),
                    "lvs-controller",
                ),
            ),
            (
                "GET",
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/virtualservers.lvs.operator.io",
                "",
                naming(
                    attributes("get", "apiextensions.k8s.io", "customresourcedefinitions", ""),
                    "virtualservers.lvs.operator.io",
                ),
            ),
            (
                "GET",
                "/api/v1/namespaces/default",
                "",
                naming(attributes("get", "", "namespaces", ""), "default"),
            ),
        ];
        for (method, path, query, expected) in cases {
            assert_eq!(classify(method, path, query), Some(expected), "{method} {path}");
        }
        assert_eq!(classify("GET", "/version", ""), None);
    }

    #[test]
    fn the_list_is_sorted_and_has_no_duplicates() {
        let key = |request: &ApiRequest| {
            (
                request.group,
                request.resource,
                request.subresource,
                request.verb,
                request.name,
            )
        };
        for pair in API_REQUESTS.windows(2) {
            assert!(key(&pair[0]) < key(&pair[1]), "{:?} then {:?}", pair[0], pair[1]);
        }
        assert!(attributes("patch", "lvs.operator.io", "realservers", "status").is_listed());
        assert!(!attributes("update", "lvs.operator.io", "realservers", "status").is_listed());
        let crd = attributes("get", "apiextensions.k8s.io", "customresourcedefinitions", "");
        assert!(naming(crd.clone(), "realservers.lvs.operator.io").is_listed());
        assert!(!naming(crd, "other.example.com").is_listed(), "only our CRDs");
        let json = requests_json();
        assert_eq!(json.as_array().unwrap().len(), API_REQUESTS.len());
        assert_eq!(json[2]["name"], "lvsnodeconfigs.lvs.operator.io");
        assert!(json[0].get("name").is_none());
    }
}
