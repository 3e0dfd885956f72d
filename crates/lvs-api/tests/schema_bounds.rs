//! Every string, list and map a user writes into a VirtualServer or RealServer is bounded by the
//! schema (`maxLength` or an `enum`, `maxItems`, `maxProperties`), so the API server refuses an
//! oversized object before the controller or an agent holds it. A new unbounded field fails here.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use kube::CustomResourceExt;
use lvs_api::{RealServer, VirtualServer};
use serde_json::Value;

fn spec_schema(
    crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Value {
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .unwrap()
        .open_api_v3_schema
        .as_ref()
        .unwrap();
    serde_json::to_value(&schema.properties.as_ref().unwrap()["spec"]).unwrap()
}

/// The paths of every unbounded string, list or map under `schema`.
fn unbounded(schema: &Value, path: &str, found: &mut Vec<String>) {
    let has = |key: &str| schema.get(key).is_some();
    match schema.get("type").and_then(Value::as_str) {
        Some("string") if !has("maxLength") && !has("enum") => found.push(format!("{path}: maxLength")),
        Some("array") if !has("maxItems") => found.push(format!("{path}: maxItems")),
        Some("object")
            if schema.get("additionalProperties").is_some_and(Value::is_object) && !has("maxProperties") =>
        {
            found.push(format!("{path}: maxProperties"))
        }
        _ => {}
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            unbounded(property, &format!("{path}.{name}"), found);
        }
    }
    if let Some(items) = schema.get("items") {
        unbounded(items, &format!("{path}[]"), found);
    }
    if let Some(values) = schema
        .get("additionalProperties")
        .filter(|values| values.is_object())
    {
        unbounded(values, &format!("{path}{{}}"), found);
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for (index, branch) in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            unbounded(branch, &format!("{path}<{key}{index}>"), found);
        }
    }
}

/// Every field of the spec schema that has a type, to make sure the walk reaches them.
fn typed(schema: &Value) -> usize {
    let mut count = usize::from(schema.get("type").is_some());
    for child in schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|properties| properties.values())
        .chain(schema.get("items"))
        .chain(
            schema
                .get("additionalProperties")
                .filter(|values| values.is_object()),
        )
    {
        count += typed(child);
    }
    count
}

#[test]
fn every_string_list_and_map_of_a_user_spec_is_bounded() {
    for (kind, schema) in [
        ("VirtualServer", spec_schema(VirtualServer::crd())),
        ("RealServer", spec_schema(RealServer::crd())),
    ] {
        let mut found = Vec::new();
        unbounded(&schema, "spec", &mut found);
        assert!(found.is_empty(), "{kind} has unbounded fields: {found:#?}");
    }
}

#[test]
fn the_walk_reaches_nested_fields_and_finds_an_unbounded_one() {
    let mut schema = spec_schema(VirtualServer::crd());
    assert!(typed(&schema) > 60, "only {} typed fields", typed(&schema));
    let path = &mut schema["properties"]["healthCheck"]["properties"]["http"]["properties"]["path"];
    path.as_object_mut().unwrap().remove("maxLength");
    let selector = &mut schema["properties"]["realServers"]["properties"]["selector"];
    selector["properties"]["matchLabels"]
        .as_object_mut()
        .unwrap()
        .remove("maxProperties");
    let mut found = Vec::new();
    unbounded(&schema, "spec", &mut found);
    assert_eq!(
        found,
        [
            "spec.healthCheck.http.path: maxLength",
            "spec.realServers.selector.matchLabels: maxProperties"
        ]
    );
}
