//! The API server refuses a CRD whose CEL rules cost too much by its static estimate (100M for
//! the whole schema, each rule's cost times how often it can run in one object). Under a list or
//! map without `maxItems` / `maxProperties` it counts about a million runs, so only rules of
//! constant cost (comparisons, `has`) may sit there; a rule that scans a string or a list must
//! sit where every enclosing list and map is bounded. This keeps `LvsNodeConfig` (whose service
//! lists are unbounded and embed the health-check and tunnel types) installable.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use kube::CustomResourceExt;
use lvs_api::{AddressPool, LvsNodeConfig, RealServer, VirtualServer};
use serde_json::Value;

/// CEL functions whose cost grows with the size of their input.
const SCANNING: &[&str] = &[
    "matches(",
    "contains(",
    "startsWith(",
    "endsWith(",
    "isIP(",
    "ip(",
    "cidr(",
    "isCIDR(",
    "size(",
    "split(",
    "indexOf(",
    "substring(",
    "bytes(",
    "replace(",
    "join(",
    "lowerAscii(",
    "upperAscii(",
    ".all(",
    ".exists(",
    ".exists_one(",
    ".map(",
    ".filter(",
    "format.",
];

/// `path: rule` of every scanning rule that sits under an unbounded list or map.
fn costly(schema: &Value, path: &str, bounded: bool, found: &mut Vec<String>) {
    for rule in schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let text = rule["rule"].as_str().unwrap();
        if !bounded && SCANNING.iter().any(|function| text.contains(function)) {
            found.push(format!("{path}: {text}"));
        }
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            costly(property, &format!("{path}.{name}"), bounded, found);
        }
    }
    if let Some(items) = schema.get("items") {
        let bounded = bounded && schema.get("maxItems").is_some();
        costly(items, &format!("{path}[]"), bounded, found);
    }
    if let Some(values) = schema
        .get("additionalProperties")
        .filter(|values| values.is_object())
    {
        let bounded = bounded && schema.get("maxProperties").is_some();
        costly(values, &format!("{path}{{}}"), bounded, found);
    }
}

fn schema_of(
    crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Value {
    lvs_api::limits::crd_schema(&crd)
}

#[test]
fn no_rule_that_scans_sits_under_an_unbounded_list_or_map() {
    for crd in [
        VirtualServer::crd(),
        RealServer::crd(),
        AddressPool::crd(),
        LvsNodeConfig::crd(),
    ] {
        let name = crd.spec.names.kind.clone();
        let mut found = Vec::new();
        costly(&schema_of(crd), "", true, &mut found);
        assert!(found.is_empty(), "{name}: {found:#?}");
    }
}

#[test]
fn a_scanning_rule_under_an_unbounded_list_is_found() {
    let schema = serde_json::json!({"properties": {"services": {"type": "array", "items": {
        "properties": {"host": {"type": "string", "x-kubernetes-validations": [
            {"rule": "self.matches('^[a-z]+$')"}]}}}}}});
    let mut found = Vec::new();
    costly(&schema, "", true, &mut found);
    assert_eq!(found, [".services[].host: self.matches('^[a-z]+$')"]);
}
