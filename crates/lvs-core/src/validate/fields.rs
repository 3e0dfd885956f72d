//! Field-level checks shared by the kinds: addresses, ports, interface and node names,
//! thresholds.

use std::net::IpAddr;
use std::num::NonZeroU16;

use lvs_api::ThresholdsSpec;

use crate::object::ObjectKey;
use crate::problem::ProblemSink;

/// Checks an object's name and namespace the way the API server does: the name a DNS
/// subdomain, the namespace a DNS label. Standalone mode reads them from files, and both end up
/// in keys like `namespace/name`.
pub(crate) fn object_key(sink: &mut ProblemSink<'_>, key: &ObjectKey) {
    if key.name.is_empty() {
        sink.invalid("metadata.name", "is required");
    } else {
        dns_subdomain(sink, "metadata.name", &key.name);
    }
    dns_label(sink, "metadata.namespace", &key.namespace);
}

/// `value` quoted for a message, cut after 64 characters: a refused value may be megabytes long
/// (standalone mode has no API server to refuse it first), and messages end up in conditions and
/// logs.
pub(crate) fn quoted(value: &str) -> String {
    const SHOWN: usize = 64;
    match value.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{:?}… ({} characters)", &value[..cut], value.chars().count()),
        None => format!("{value:?}"),
    }
}

/// Parses a unicast IP address, recording why it is not one.
pub(crate) fn unicast_address(sink: &mut ProblemSink<'_>, field: &str, value: &str) -> Option<IpAddr> {
    let Ok(address) = value.trim().parse::<IpAddr>() else {
        sink.invalid(
            field,
            format!("must be an IPv4 or IPv6 address, got {}", quoted(value)),
        );
        return None;
    };
    if value.trim() != value {
        sink.invalid(field, format!("must not contain spaces, got {}", quoted(value)));
        return None;
    }
    if let Some(what) = crate::pool::special::never_usable(address) {
        sink.invalid(
            field,
            format!("must be a unicast address, not loopback, multicast, broadcast or unspecified; got {address} ({what})"),
        );
        return None;
    }
    Some(address)
}

/// Checks a port that the schema allows to be 0 on the wire.
pub(crate) fn port(sink: &mut ProblemSink<'_>, field: &str, value: u16) -> Option<NonZeroU16> {
    let port = NonZeroU16::new(value);
    if port.is_none() {
        sink.invalid(field, "must be 1–65535, got 0");
    }
    port
}

/// Checks a network interface name the way the kernel does (`dev_valid_name`); control
/// characters are refused too. Mirrors the CEL rule `lvs_api::limits::INTERFACE_NAME`.
pub(crate) fn interface_name(sink: &mut ProblemSink<'_>, field: &str, value: &str) {
    let reason = if value.is_empty() {
        Some("must not be empty".to_owned())
    } else if value.len() > 15 {
        Some(format!(
            "must be at most 15 characters (15 bytes: the kernel's IFNAMSIZ), got {} bytes",
            value.len()
        ))
    } else if value == "." || value == ".." {
        Some(format!("{value:?} is not a valid interface name"))
    } else if value.chars().any(|character| {
        character == '/' || character == ':' || character.is_whitespace() || character.is_control()
    }) {
        Some(format!(
            "must not contain '/', ':', whitespace or control characters, got {value:?}"
        ))
    } else {
        None
    };
    if let Some(reason) = reason {
        sink.invalid(field, reason);
    }
}

/// Whether `value` is a lowercase RFC 1123 subdomain the way Kubernetes checks object and node
/// names (`IsDNS1123Subdomain`): at most 253 characters, labels of a-z, 0-9 and '-' that start
/// and end alphanumeric (with no length limit of their own).
pub(crate) fn is_dns_subdomain(value: &str) -> bool {
    let valid_label = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    !value.is_empty() && value.len() <= 253 && value.split('.').all(valid_label)
}

/// Checks a lowercase RFC 1123 subdomain (object and node names). Mirrors the CEL rule
/// `lvs_api::limits::NODE_NAME`.
pub(crate) fn dns_subdomain(sink: &mut ProblemSink<'_>, field: &str, value: &str) {
    if !is_dns_subdomain(value) {
        sink.invalid(
            field,
            format!(
                "must be a lowercase RFC 1123 subdomain of at most 253 characters (a-z, 0-9, '-', '.'), got {}",
                quoted(value)
            ),
        );
    }
}

/// Checks a lowercase RFC 1123 label (namespace names).
pub(crate) fn dns_label(sink: &mut ProblemSink<'_>, field: &str, value: &str) {
    if value.len() > 63 || value.contains('.') || !is_dns_subdomain(value) {
        sink.invalid(
            field,
            format!(
                "must be a lowercase RFC 1123 label of at most 63 characters (a-z, 0-9, '-'), got {}",
                quoted(value)
            ),
        );
    }
}

/// Checks the keys of a label map (a node selector, `matchLabels`): 1–317 characters each.
/// Mirrors the CEL rule `lvs_api::limits::LABEL_KEYS`.
pub(crate) fn label_keys<'a>(
    sink: &mut ProblemSink<'_>,
    field: &str,
    mut keys: impl Iterator<Item = &'a String>,
) {
    let maximum = lvs_api::limits::LABEL_KEY_MAX_LENGTH;
    if let Some(key) = keys.find(|key| key.is_empty() || key.chars().count() > maximum) {
        sink.invalid(
            field,
            format!(
                "label keys must be 1–{maximum} characters: an optional DNS-subdomain prefix and '/', then a name; got one of {}",
                key.chars().count()
            ),
        );
    }
}

/// Why `key` is not a Kubernetes label key (`IsQualifiedName`), if it is not: an optional
/// DNS-subdomain prefix and `/`, then a name of 1–63 characters.
pub(crate) fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        return Some(format!(
            "the prefix {} is not a lowercase RFC 1123 subdomain of at most 253 characters",
            quoted(prefix)
        ));
    }
    if name.is_empty() {
        return Some("the name after the prefix is empty".to_owned());
    }
    label_name_problem(name)
}

/// Why `value` is not a Kubernetes label value, if it is not: empty, or a label name.
pub(crate) fn label_value_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    label_name_problem(value)
}

/// Why `name` is not the name part of a label key or a label value: 1–63 of letters, digits, `-`,
/// `_` and `.`, starting and ending with a letter or digit.
fn label_name_problem(name: &str) -> Option<String> {
    let maximum = lvs_api::limits::LABEL_VALUE_MAX_LENGTH;
    let inner = |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.');
    let ends = name
        .bytes()
        .next()
        .is_some_and(|byte| byte.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|byte| byte.is_ascii_alphanumeric());
    if name.len() > maximum {
        Some(format!("{} has more than {maximum} characters", quoted(name)))
    } else if !ends || !name.bytes().all(inner) {
        Some(format!(
            "{} must be letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
            quoted(name)
        ))
    } else {
        None
    }
}

/// Checks the path of an HTTP check: printable ASCII only. Mirrors the CEL rule
/// `lvs_api::limits::http_path` (the schema's `^/` pattern is checked by the caller).
pub(crate) fn http_path_characters(sink: &mut ProblemSink<'_>, field: &str, value: &str) {
    if let Some(character) = value.chars().find(|character| !character.is_ascii_graphic()) {
        sink.invalid(
            field,
            format!(
                "must be printable ASCII without spaces or control characters (percent-encode anything else), found {character:?}"
            ),
        );
    }
}

/// Checks the host of an HTTP check: a host name, an IPv4 address or an IPv6 address in brackets,
/// optionally with `:port`. Mirrors the CEL rule `lvs_api::limits::http_host`.
pub(crate) fn http_host(sink: &mut ProblemSink<'_>, field: &str, value: &str) {
    let valid_port = |port: &str| {
        !port.starts_with('0')
            && port.len() <= 5
            && port.bytes().all(|byte| byte.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|port| port != 0)
    };
    let valid_label = |label: &str| {
        let word = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_';
        (1..=63).contains(&label.len())
            && label.bytes().all(|byte| word(byte) || byte == b'-')
            && label.bytes().next().is_some_and(word)
            && label.bytes().last().is_some_and(word)
    };
    let valid = if let Some(rest) = value.strip_prefix('[') {
        rest.split_once(']').is_some_and(|(address, after)| {
            !address.is_empty()
                && address
                    .bytes()
                    .all(|byte| byte.is_ascii_hexdigit() || byte == b':' || byte == b'.')
                && address
                    .parse::<std::net::Ipv6Addr>()
                    .is_ok_and(|address| address.to_ipv4_mapped().is_none())
                && (after.is_empty() || after.strip_prefix(':').is_some_and(valid_port))
        })
    } else {
        let (name, port) = match value.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (value, None),
        };
        name.split('.').all(valid_label) && port.is_none_or(valid_port)
    };
    if !valid {
        sink.invalid(
            field,
            "must be a host name, an IPv4 address or an IPv6 address in brackets, optionally with :port (1–65535)",
        );
    }
}

/// Checks the query name of a DNS check: `.`, or labels of 1–63 printable ASCII characters other
/// than `\` joined by dots, with an optional final dot, 1–253 characters in all. Mirrors the CEL
/// rule `lvs_api::limits::dns_query_name`.
pub(crate) fn dns_query_name(sink: &mut ProblemSink<'_>, field: &str, value: &str) {
    if value == "." {
        return;
    }
    let name = value.strip_suffix('.').unwrap_or(value);
    let reason = if value.is_empty() || value.chars().count() > 253 {
        Some(format!(
            "must be a DNS name of 1–253 characters, got {}",
            value.chars().count()
        ))
    } else if let Some(character) = value
        .chars()
        .find(|&character| !character.is_ascii_graphic() || character == '\\')
    {
        Some(format!(
            "must be printable ASCII without spaces or '\\', found {character:?}"
        ))
    } else if name.split('.').any(str::is_empty) {
        Some("must not have empty labels (a leading dot or \"..\")".to_owned())
    } else {
        name.split('.')
            .find(|label| label.len() > 63)
            .map(|label| format!("labels must be at most 63 characters, got one of {}", label.len()))
    };
    if let Some(reason) = reason {
        sink.invalid(field, reason);
    }
}

/// Checks connection thresholds.
pub(crate) fn thresholds(sink: &mut ProblemSink<'_>, field: &str, value: &ThresholdsSpec) {
    if value.upper != 0 && value.lower > value.upper {
        sink.invalid(
            format!("{field}.lower"),
            format!("must not exceed upper ({}), got {}", value.upper, value.lower),
        );
    }
}
