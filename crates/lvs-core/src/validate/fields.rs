//! Field-level checks shared by the kinds: addresses, ports, interface and node names,
//! thresholds.

use std::net::IpAddr;
use std::num::NonZeroU16;

use lvs_api::ThresholdsSpec;

use crate::problem::ProblemSink;

/// Parses a unicast IP address, recording why it is not one.
pub(crate) fn unicast_address(sink: &mut ProblemSink<'_>, field: &str, value: &str) -> Option<IpAddr> {
    let Ok(address) = value.trim().parse::<IpAddr>() else {
        sink.invalid(field, format!("must be an IPv4 or IPv6 address, got {value:?}"));
        return None;
    };
    if value.trim() != value {
        sink.invalid(field, format!("must not contain spaces, got {value:?}"));
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

/// Whether `label` is an RFC 1123 label: 1–63 of a-z, 0-9 and '-', not starting or ending in '-'.
fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// Checks an RFC 1123 DNS label (namespace names).
pub(crate) fn dns_label(sink: &mut ProblemSink<'_>, field: &str, value: &str) {
    if !valid_label(value) {
        sink.invalid(
            field,
            format!("must be a lowercase RFC 1123 label (a-z, 0-9, '-', at most 63), got {value:?}"),
        );
    }
}

/// Checks an RFC 1123 DNS subdomain (node names).
pub(crate) fn dns_subdomain(sink: &mut ProblemSink<'_>, field: &str, value: &str) {
    if value.is_empty() || value.len() > 253 || !value.split('.').all(valid_label) {
        sink.invalid(
            field,
            format!("must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-', '.'), got {value:?}"),
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
