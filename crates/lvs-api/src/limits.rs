//! Limits the schemas share: the bounded schema of k8s-openapi's `LabelSelector` (whose own
//! schema bounds nothing) and the CEL rules several fields use. Every string, list and map a user
//! writes is bounded, so no object can make the controller or an agent hold megabytes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Value, json};

/// Longest label key: a DNS-subdomain prefix (253), `/`, and a name (63).
pub const LABEL_KEY_MAX_LENGTH: usize = 317;
/// Longest label value.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
/// Most `matchLabels` entries in a selector.
pub const SELECTOR_MAX_LABELS: usize = 64;
/// Most `matchExpressions` in a selector.
pub const SELECTOR_MAX_EXPRESSIONS: usize = 16;
/// Most values of one `matchExpressions` entry.
pub const SELECTOR_MAX_VALUES: usize = 64;

/// CEL, on a map of labels: every key is 1–317 characters.
pub(crate) const LABEL_KEYS: &str = "self.all(key, size(key) >= 1 && size(key) <= 317)";
/// The message of [`LABEL_KEYS`].
pub(crate) const LABEL_KEYS_MESSAGE: &str =
    "label keys must be 1–317 characters: an optional DNS-subdomain prefix and '/', then a name";

/// The schema of a `LabelSelector` with every part bounded: at most 64 `matchLabels` (keys
/// 1–317, values up to 63 characters) and 16 `matchExpressions` (key up to 317 characters, a
/// known operator, at most 64 values of up to 63 characters).
pub(crate) fn label_selector(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = LabelSelector::json_schema(generator);
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        if let Some(labels) = properties.get_mut("matchLabels").and_then(Value::as_object_mut) {
            labels.insert("maxProperties".into(), json!(SELECTOR_MAX_LABELS));
            labels.insert(
                "additionalProperties".into(),
                json!({"type": "string", "maxLength": LABEL_VALUE_MAX_LENGTH}),
            );
            labels.insert(
                "x-kubernetes-validations".into(),
                json!([{"rule": LABEL_KEYS, "message": LABEL_KEYS_MESSAGE}]),
            );
        }
        if let Some(expressions) = properties
            .get_mut("matchExpressions")
            .and_then(Value::as_object_mut)
        {
            expressions.insert("maxItems".into(), json!(SELECTOR_MAX_EXPRESSIONS));
            if let Some(requirement) = expressions
                .get_mut("items")
                .and_then(|items| items.get_mut("properties"))
                .and_then(Value::as_object_mut)
            {
                bound(requirement, "key", json!({"maxLength": LABEL_KEY_MAX_LENGTH}));
                bound(
                    requirement,
                    "operator",
                    json!({"enum": ["In", "NotIn", "Exists", "DoesNotExist"]}),
                );
                bound(requirement, "values", json!({"maxItems": SELECTOR_MAX_VALUES}));
                if let Some(values) = requirement.get_mut("values").and_then(Value::as_object_mut) {
                    values.insert(
                        "items".into(),
                        json!({"type": "string", "maxLength": LABEL_VALUE_MAX_LENGTH}),
                    );
                }
            }
        }
    }
    schema
}

/// Adds `limits` to the schema of `property`.
fn bound(properties: &mut serde_json::Map<String, Value>, property: &str, limits: Value) {
    if let (Some(Value::Object(schema)), Value::Object(limits)) = (properties.get_mut(property), limits) {
        schema.extend(limits);
    }
}
