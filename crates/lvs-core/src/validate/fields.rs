//! Field-level checks shared by the kinds: addresses, ports, interface and node names,
//! thresholds.

use std::net::IpAddr;
use std::num::NonZeroU16;

use lvs_api::ThresholdsSpec;

use crate::problem::ProblemSink;

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
    let unusable = match address {
        IpAddr::V4(v4) => v4.is_unspecified() || v4.is_loopback() || v4.is_multicast() || v4.is_broadcast(),
        IpAddr::V6(v6) => v6.is_unspecified() || v6.is_loopback() || v6.is_multicast(),
    };
    if unusable {
        sink.invalid(
            field,
            format!("must be a unicast address, not loopback, multicast or unspecified; got {address}"),
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

/// Checks a network interface name the way the kernel does (`dev_valid_name`).
pub(crate) fn interface_name(sink: &mut ProblemSink<'_>, field: &str, value: &str) {
    let reason = if value.is_empty() {
        Some("must not be empty".to_owned())
    } else if value.len() > 15 {
        Some(format!(
            "must be at most 15 characters (the kernel's IFNAMSIZ), got {}",
            value.len()
        ))
    } else if value == "." || value == ".." {
        Some(format!("{value:?} is not a valid interface name"))
    } else if value
        .chars()
        .any(|character| character == '/' || character == ':' || character.is_whitespace())
    {
        Some(format!("must not contain '/', ':' or whitespace, got {value:?}"))
    } else {
        None
    };
    if let Some(reason) = reason {
        sink.invalid(field, reason);
    }
}

/// Checks an RFC 1123 DNS subdomain (node names).
pub(crate) fn dns_subdomain(sink: &mut ProblemSink<'_>, field: &str, value: &str) {
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if value.is_empty() || value.len() > 253 || !value.split('.').all(valid_label) {
        sink.invalid(
            field,
            format!(
                "must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-', '.'), got {}",
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

/// Checks connection thresholds.
pub(crate) fn thresholds(sink: &mut ProblemSink<'_>, field: &str, value: &ThresholdsSpec) {
    if value.upper != 0 && value.lower > value.upper {
        sink.invalid(
            format!("{field}.lower"),
            format!("must not exceed upper ({}), got {}", value.upper, value.lower),
        );
    }
}
