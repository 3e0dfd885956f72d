//! Kubernetes API requests in RBAC terms, shared by the components that talk to the API server.
//!
//! Each component lists the requests it makes as a `const API_REQUESTS: &[ApiRequest]`
//! (`lvs_controller::access`, `lvs_agent::access`); its mock-API tests turn every request they
//! saw into the same terms with [`classify`] and check it is listed
//! ([`RequestAttributes::is_listed_in`]), so the list is complete. The lists are the
//! `requests` of `e2e/chart/api-requests.json` ([`request_file_updated`] keeps that file in
//! step), which the Helm chart's RBAC check holds each component's roles to.
//!
//! Pure functions over strings: no HTTP types, no I/O.

use serde_json::{Value, json};

/// Where a permission is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Cluster-wide (a ClusterRole): cluster-scoped resources, or namespaced ones in every
    /// namespace.
    Cluster,
    /// Only in the component's own namespace (a Role there), e.g. the leader-election Lease.
    OwnNamespace,
}

impl Scope {
    /// `Cluster` or `OwnNamespace`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cluster => "Cluster",
            Self::OwnNamespace => "OwnNamespace",
        }
    }
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

/// A request for any object of `group`/`resource` (`subresource`), needed in `scope`.
pub const fn request(
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

/// `request` restricted to the object called `name`.
pub const fn named(request: ApiRequest, name: &'static str) -> ApiRequest {
    ApiRequest {
        name: Some(name),
        ..request
    }
}

impl ApiRequest {
    /// `{verb, group, resource, subresource, scope[, name]}`, an entry of the request lists
    /// the chart's RBAC check reads.
    pub fn to_json(&self) -> Value {
        let mut entry = json!({
            "verb": self.verb,
            "group": self.group,
            "resource": self.resource,
            "subresource": self.subresource,
            "scope": self.scope.as_str(),
        });
        if let Some(name) = self.name {
            entry["name"] = json!(name);
        }
        entry
    }

    /// Whether this entry covers the request `attributes` describes.
    pub fn covers(&self, attributes: &RequestAttributes) -> bool {
        self.verb == attributes.verb
            && self.group == attributes.group
            && self.resource == attributes.resource
            && self.subresource == attributes.subresource
            && self
                .name
                .is_none_or(|name| attributes.name.as_deref() == Some(name))
    }

    /// The order request lists are kept in: group, resource, subresource, verb, name.
    fn sort_key(&self) -> (&str, &str, &str, &str, Option<&str>) {
        (self.group, self.resource, self.subresource, self.verb, self.name)
    }
}

/// `requests` as a JSON array of [`ApiRequest::to_json`] entries.
pub fn requests_json(requests: &[ApiRequest]) -> Value {
    requests.iter().map(ApiRequest::to_json).collect()
}

/// Why `requests` is not in the canonical order (group, resource, subresource, verb, name)
/// without duplicates, or `None` when it is.
pub fn out_of_order(requests: &[ApiRequest]) -> Option<String> {
    requests
        .windows(2)
        .find(|pair| pair[0].sort_key() >= pair[1].sort_key())
        .map(|pair| format!("{:?} then {:?}", pair[0], pair[1]))
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
    /// Whether an entry of `requests` covers this request.
    pub fn is_listed_in(&self, requests: &[ApiRequest]) -> bool {
        requests.iter().any(|listed| listed.covers(self))
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

/// The request file (`e2e/chart/api-requests.json`, given as `text`) with `component`'s
/// `source` and `requests` set from `source` and `requests`, pretty-printed; `None` when the
/// file already says exactly that (compared as JSON, so key order and layout do not matter).
/// The other components' entries and this one's other keys (`alsoGranted`) are kept.
pub fn request_file_updated(
    text: &str,
    component: &str,
    source: &str,
    requests: &[ApiRequest],
) -> Result<Option<String>, serde_json::Error> {
    let current: Value = serde_json::from_str(text)?;
    let mut updated = current.clone();
    if !updated.is_object() {
        updated = json!({});
    }
    let entry = &mut updated[component];
    if !entry.is_object() {
        *entry = json!({});
    }
    entry["source"] = json!(source);
    entry["requests"] = requests_json(requests);
    Ok((updated != current).then(|| format!("{updated:#}\n")))
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
                "DELETE",
                "/apis/lvs.operator.io/v1alpha1/lvsnodeconfigs",
                "labelSelector=a%3Db",
                attributes("deletecollection", "lvs.operator.io", "lvsnodeconfigs", ""),
            ),
            (
                "POST",
                "/apis/events.k8s.io/v1/namespaces/default/events",
                "",
                attributes("create", "events.k8s.io", "events", ""),
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
        assert_eq!(classify("GET", "/apis/lvs.operator.io/v1alpha1", ""), None);
        assert_eq!(classify("HEAD", "/api/v1/nodes", ""), None);
    }

    const CRD_GET: ApiRequest = request(
        "get",
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "",
        Scope::Cluster,
    );
    const LIST: &[ApiRequest] = &[
        request("list", "", "nodes", "", Scope::Cluster),
        named(CRD_GET, "realservers.lvs.operator.io"),
        request(
            "patch",
            "lvs.operator.io",
            "realservers",
            "status",
            Scope::Cluster,
        ),
    ];

    #[test]
    fn a_listed_request_is_covered_and_names_restrict() {
        assert!(attributes("list", "", "nodes", "").is_listed_in(LIST));
        assert!(!attributes("watch", "", "nodes", "").is_listed_in(LIST));
        let status = attributes("patch", "lvs.operator.io", "realservers", "status");
        assert!(naming(status, "any").is_listed_in(LIST), "no name: any object");
        assert!(!attributes("update", "lvs.operator.io", "realservers", "status").is_listed_in(LIST));
        assert!(!attributes("patch", "lvs.operator.io", "realservers", "").is_listed_in(LIST));
        let crd = attributes("get", "apiextensions.k8s.io", "customresourcedefinitions", "");
        assert!(naming(crd.clone(), "realservers.lvs.operator.io").is_listed_in(LIST));
        assert!(!naming(crd.clone(), "other.example.com").is_listed_in(LIST));
        assert!(
            !crd.is_listed_in(LIST),
            "a named entry does not cover unnamed requests"
        );
    }

    #[test]
    fn order_and_json() {
        assert_eq!(out_of_order(LIST), None);
        let mut reversed = LIST.to_vec();
        reversed.reverse();
        assert!(out_of_order(&reversed).is_some());
        assert!(out_of_order(&[LIST[0], LIST[0]]).is_some(), "duplicates");
        let json = requests_json(LIST);
        assert_eq!(json.as_array().unwrap().len(), 3);
        assert_eq!(
            json[0],
            json!({ "verb": "list", "group": "", "resource": "nodes", "subresource": "", "scope": "Cluster" })
        );
        assert_eq!(json[1]["name"], "realservers.lvs.operator.io");
        assert_eq!(
            request("get", "coordination.k8s.io", "leases", "", Scope::OwnNamespace).to_json()["scope"],
            "OwnNamespace"
        );
    }

    #[test]
    fn the_request_file_is_updated_per_component() {
        let text = r#"{
  "$comment": ["hand-written"],
  "agent": { "source": "old", "requests": [], "alsoGranted": [{ "verb": "get" }] },
  "controller": { "source": "theirs", "requests": [{ "verb": "x" }] }
}"#;
        let updated = request_file_updated(text, "agent", "here", LIST)
            .unwrap()
            .expect("stale");
        let value: Value = serde_json::from_str(&updated).unwrap();
        assert_eq!(value["agent"]["source"], "here");
        assert_eq!(value["agent"]["requests"], requests_json(LIST));
        assert_eq!(value["agent"]["alsoGranted"][0]["verb"], "get");
        assert_eq!(value["controller"]["requests"][0]["verb"], "x");
        assert_eq!(value["$comment"][0], "hand-written");
        assert!(updated.ends_with("}\n"));
        assert_eq!(
            request_file_updated(&updated, "agent", "here", LIST).unwrap(),
            None,
            "current"
        );
        let added = request_file_updated(&updated, "other", "there", &LIST[..1])
            .unwrap()
            .unwrap();
        let value: Value = serde_json::from_str(&added).unwrap();
        assert_eq!(value["other"]["requests"].as_array().unwrap().len(), 1);
        assert!(request_file_updated("not json", "agent", "", LIST).is_err());
    }
}
