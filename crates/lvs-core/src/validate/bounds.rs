//! Schema bounds: every length, size and range limit of the CRD schemas (`maxLength`,
//! `maxItems`, `maxProperties`, `minimum`, …), checked on the typed spec. The API server enforces
//! them at apply time; standalone mode has none, so the same schema is walked here. A field that
//! already has a problem is not reported twice.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use kube::CustomResourceExt;
use lvs_api::{RealServer, VirtualServer};
use serde::Serialize;
use serde_json::Value;

use crate::problem::ProblemSink;

/// The `spec` schema of a CRD.
fn spec_schema(
    crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Value {
    lvs_api::limits::crd_schema(&crd)["properties"]["spec"].clone()
}

static VIRTUAL_SERVER_SPEC: LazyLock<Value> = LazyLock::new(|| spec_schema(VirtualServer::crd()));
static REAL_SERVER_SPEC: LazyLock<Value> = LazyLock::new(|| spec_schema(RealServer::crd()));

/// Checks a VirtualServer spec against the bounds of its schema.
pub(crate) fn virtual_server_spec(sink: &mut ProblemSink<'_>, spec: &lvs_api::VirtualServerSpec) {
    check(sink, &VIRTUAL_SERVER_SPEC, spec);
}

/// Checks a RealServer spec against the bounds of its schema.
pub(crate) fn real_server_spec(sink: &mut ProblemSink<'_>, spec: &lvs_api::RealServerSpec) {
    check(sink, &REAL_SERVER_SPEC, spec);
}

fn check(sink: &mut ProblemSink<'_>, schema: &Value, spec: &impl Serialize) {
    let Ok(value) = serde_json::to_value(spec) else {
        return;
    };
    let reported: BTreeSet<String> = sink
        .problems
        .iter()
        .map(|problem| problem.field.clone())
        .collect();
    let mut found = Vec::new();
    walk(schema, &value, "spec", &mut found);
    for (field, message) in found {
        if !reported.contains(&field) {
            sink.invalid(field, message);
        }
    }
}

/// Collects `(field, message)` for every bound `value` breaks under `schema`.
fn walk(schema: &Value, value: &Value, path: &str, found: &mut Vec<(String, String)>) {
    let limit = |name: &str| schema.get(name).and_then(Value::as_u64);
    match value {
        Value::String(text) => {
            let length = text.chars().count() as u64;
            if let Some(maximum) = limit("maxLength").filter(|&maximum| length > maximum) {
                found.push((
                    path.to_owned(),
                    format!("must be at most {maximum} characters, got {length}"),
                ));
            } else if let Some(minimum) = limit("minLength").filter(|&minimum| length < minimum) {
                found.push((path.to_owned(), at_least(minimum, "character")));
            }
        }
        Value::Number(number) => {
            let (minimum, maximum) = (
                schema.get("minimum").and_then(Value::as_f64),
                schema.get("maximum").and_then(Value::as_f64),
            );
            if let Some(number) = number.as_f64()
                && (minimum.is_some_and(|minimum| number < minimum)
                    || maximum.is_some_and(|maximum| number > maximum))
            {
                let range = match (minimum, maximum) {
                    (Some(minimum), Some(maximum)) => format!("{minimum}–{maximum}"),
                    (Some(minimum), None) => format!("at least {minimum}"),
                    (None, Some(maximum)) => format!("at most {maximum}"),
                    (None, None) => String::new(),
                };
                found.push((path.to_owned(), format!("must be {range}, got {number}")));
            }
        }
        Value::Array(items) => {
            let count = items.len() as u64;
            if let Some(maximum) = limit("maxItems").filter(|&maximum| count > maximum) {
                found.push((
                    path.to_owned(),
                    format!("must have at most {maximum} items, got {count}"),
                ));
            } else if let Some(minimum) = limit("minItems").filter(|&minimum| count < minimum) {
                found.push((path.to_owned(), at_least(minimum, "item")));
            }
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    walk(item_schema, item, &format!("{path}[{index}]"), found);
                }
            }
        }
        Value::Object(entries) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema
                .get("additionalProperties")
                .filter(|schema| schema.is_object());
            if additional.is_some() {
                let count = entries.len() as u64;
                if let Some(maximum) = limit("maxProperties").filter(|&maximum| count > maximum) {
                    found.push((
                        path.to_owned(),
                        format!("must have at most {maximum} entries, got {count}"),
                    ));
                }
            }
            for (key, entry) in entries {
                if let Some(property) = properties.and_then(|properties| properties.get(key)) {
                    walk(property, entry, &format!("{path}.{key}"), found);
                } else if let Some(additional) = additional {
                    walk(additional, entry, &format!("{path}[{key:?}]"), found);
                }
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

fn at_least(minimum: u64, unit: &str) -> String {
    match minimum {
        1 if unit == "character" => "must not be empty".to_owned(),
        1 => format!("must have at least one {unit}"),
        _ => format!("must have at least {minimum} {unit}s"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn problems(schema: Value, value: Value) -> Vec<(String, String)> {
        let mut found = Vec::new();
        walk(&schema, &value, "spec", &mut found);
        found.sort();
        found
    }

    #[test]
    fn lengths_sizes_and_ranges_are_reported_with_their_paths() {
        let schema = json!({"properties": {
            "path": {"type": "string", "maxLength": 4},
            "names": {"type": "array", "maxItems": 1, "items": {"type": "string", "minLength": 1}},
            "labels": {"type": "object", "maxProperties": 1,
                       "additionalProperties": {"type": "string", "maxLength": 2}},
            "interval": {"type": "integer", "minimum": 20.0, "maximum": 100.0},
        }});
        let value = json!({
            "path": "/héllo",
            "names": ["", "b"],
            "labels": {"a": "xyz", "b": "ok"},
            "interval": 5,
        });
        assert_eq!(
            problems(schema, value),
            [
                ("spec.interval", "must be 20–100, got 5"),
                ("spec.labels", "must have at most 1 entries, got 2"),
                ("spec.labels[\"a\"]", "must be at most 2 characters, got 3"),
                ("spec.names", "must have at most 1 items, got 2"),
                ("spec.names[0]", "must not be empty"),
                ("spec.path", "must be at most 4 characters, got 6"),
            ]
            .map(|(field, message)| (field.to_owned(), message.to_owned()))
        );
    }

    #[test]
    fn the_crd_schemas_are_found() {
        assert!(VIRTUAL_SERVER_SPEC.get("properties").is_some());
        assert!(REAL_SERVER_SPEC.get("properties").is_some());
    }
}
