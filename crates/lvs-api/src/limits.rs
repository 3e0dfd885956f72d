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
pub const SELECTOR_MAX_LABELS: usize = 8;
/// Most `matchExpressions` in a selector.
pub const SELECTOR_MAX_EXPRESSIONS: usize = 4;
/// Most values of one `matchExpressions` entry.
pub const SELECTOR_MAX_VALUES: usize = 8;

/// CEL, on a map of labels: every key is 1–317 characters.
pub(crate) const LABEL_KEYS: &str = "self.all(key, size(key) >= 1 && size(key) <= 317)";
/// The message of [`LABEL_KEYS`].
pub(crate) const LABEL_KEYS_MESSAGE: &str =
    "label keys must be 1–317 characters: an optional DNS-subdomain prefix and '/', then a name";

/// CEL, on a string: a network interface name the kernel accepts (`dev_valid_name`): at most 15
/// bytes (the schema's `maxLength` counts characters), not `.` or `..`, no `/`, `:`, whitespace or
/// control character.
pub(crate) const INTERFACE_NAME: &str =
    r"size(bytes(self)) <= 15 && self != '.' && self != '..' && !self.matches('[/:\\p{Z}\\p{Cc}]')";
/// The message of [`INTERFACE_NAME`].
pub(crate) const INTERFACE_NAME_MESSAGE: &str = "must be a network interface name: at most 15 bytes, not . or .., without '/', ':', whitespace or control characters";

/// A lowercase RFC 1123 subdomain as Kubernetes checks node and object names (no length limit per
/// label; the field bounds the whole).
macro_rules! dns_subdomain_regex {
    () => {
        r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
    };
}

/// CEL, on a string: a node name.
pub(crate) const NODE_NAME: &str = concat!("self.matches('", dns_subdomain_regex!(), "')");
/// CEL, on a list of strings: node names.
pub(crate) const NODE_NAMES: &str = concat!("self.all(name, name.matches('", dns_subdomain_regex!(), "'))");
/// The message of [`NODE_NAME`] and [`NODE_NAMES`].
pub(crate) const NODE_NAME_MESSAGE: &str =
    "must be a node name: a lowercase RFC 1123 subdomain (a-z, 0-9, '-', '.')";

/// CEL: `value`, the path (and query) of an HTTP request, is printable ASCII only.
///
/// The rules on health-check fields are stated on `VirtualServerSpec`, not on the shared types:
/// `LvsNodeConfig` embeds those types in lists without `maxItems`, where the API server's cost
/// estimate counts a million evaluations of every rule, and a string-scanning rule there would
/// push the CRD over its cost budget.
pub(crate) fn http_path(value: &str) -> String {
    format!("{value}.matches('^[!-~]*$')")
}
/// The message of [`http_path`].
pub(crate) const HTTP_PATH_MESSAGE: &str =
    "must be printable ASCII without spaces or control characters; percent-encode anything else";

/// A DNS label as a host name may have it: letters, digits, `-` and `_`, not starting or ending
/// with `-`, 1–63 characters.
macro_rules! host_label_regex {
    () => {
        r"[A-Za-z0-9_]([-A-Za-z0-9_]{0,61}[A-Za-z0-9_])?"
    };
}
/// An optional `:port`, 1–65535 without leading zeros.
macro_rules! port_suffix_regex {
    () => {
        r"(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?$"
    };
}

/// CEL: `value` is an HTTP host — a DNS name (IPv4 addresses are among them) or an IPv6 address in
/// brackets, optionally with `:port`. Parenthesised, to be joined with `||`.
pub(crate) fn http_host(value: &str) -> String {
    let bracketed = concat!(r"^\\[[0-9A-Fa-f:.]+\\]", port_suffix_regex!());
    let named = concat!(
        "^",
        host_label_regex!(),
        r"(\\.",
        host_label_regex!(),
        ")*",
        port_suffix_regex!()
    );
    let address = format!("{value}.substring(1, {value}.indexOf(']'))");
    format!(
        "({value}.startsWith('[') ? ({value}.matches('{bracketed}') && isIP({address}) && ip({address}).family() == 6) : {value}.matches('{named}'))"
    )
}
/// The message of [`http_host`].
pub(crate) const HTTP_HOST_MESSAGE: &str =
    "must be a host name, an IPv4 address or an IPv6 address in brackets, optionally with :port (1–65535)";

/// A DNS label in a query name: 1–63 printable ASCII characters other than `.` and `\`.
macro_rules! query_label_regex {
    () => {
        r"[!-\\-/-\\[\\]-~]{1,63}"
    };
}

/// CEL: `value` is a DNS query name — the root `.`, or labels of 1–63 printable ASCII characters
/// (no `\`) joined by dots, with an optional final dot. Parenthesised, to be joined with `||`.
pub(crate) fn dns_query_name(value: &str) -> String {
    let labels = concat!(
        "^(",
        query_label_regex!(),
        r"\\.)*",
        query_label_regex!(),
        r"\\.?$"
    );
    format!("({value} == '.' || {value}.matches('{labels}'))")
}
/// The message of [`dns_query_name`].
pub(crate) const DNS_QUERY_NAME_MESSAGE: &str =
    "must be . or a DNS name of labels of 1–63 printable ASCII characters (no spaces or '\\') joined by dots";

/// The schema of a `LabelSelector` with every part bounded: at most 8 `matchLabels` (keys
/// 1–317, values up to 63 characters) and 4 `matchExpressions` (key up to 317 characters, a
/// known operator, at most 8 values of up to 63 characters).
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

/// The OpenAPI schema of a generated CRD's first version as JSON (`Null` when it has none): what
/// the API server validates against, for the core's bound checks and the schema tests.
pub fn crd_schema(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Value {
    crd.spec
        .versions
        .first()
        .and_then(|version| version.schema.as_ref())
        .and_then(|schema| schema.open_api_v3_schema.as_ref())
        .and_then(|schema| serde_json::to_value(schema).ok())
        .unwrap_or(Value::Null)
}
