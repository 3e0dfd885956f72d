//! Health-check settings: defaults by protocol, ranges and the per-type sub-blocks.

use lvs_api::{HealthCheckSpec, HealthCheckType, Protocol};

use super::fields;
use crate::problem::ProblemSink;

const FIELD: &str = "spec.healthCheck";

/// Validates the health check, filling in the protocol's default when it is absent.
pub(crate) fn health_check(
    sink: &mut ProblemSink<'_>,
    spec: Option<&HealthCheckSpec>,
    protocol: Protocol,
) -> HealthCheckSpec {
    let Some(spec) = spec else {
        let check_type = match protocol {
            Protocol::Tcp => HealthCheckType::Tcp,
            Protocol::Udp | Protocol::Sctp => HealthCheckType::None,
        };
        return HealthCheckSpec {
            check_type,
            ..HealthCheckSpec::default()
        };
    };
    let mut check = spec.clone();
    for (name, value, maximum) in [
        ("intervalSeconds", spec.interval_seconds, 3600),
        ("timeoutSeconds", spec.timeout_seconds, 3600),
        ("rise", spec.rise, 100),
        ("fall", spec.fall, 100),
    ] {
        if value == 0 || value > maximum {
            sink.invalid(
                format!("{FIELD}.{name}"),
                format!("must be 1–{maximum}, got {value}"),
            );
        }
    }
    if spec.timeout_seconds > spec.interval_seconds {
        sink.invalid(
            format!("{FIELD}.timeoutSeconds"),
            format!(
                "must not exceed intervalSeconds ({}), got {}",
                spec.interval_seconds, spec.timeout_seconds
            ),
        );
    }
    if let Some(port) = spec.port {
        fields::port(sink, &format!("{FIELD}.port"), port);
    }
    let is_http = matches!(spec.check_type, HealthCheckType::Http | HealthCheckType::Https);
    match (&spec.http, is_http) {
        (Some(_), false) => sink.invalid(
            format!("{FIELD}.http"),
            format!(
                "may only be set when type is HTTP or HTTPS, not {:?}",
                spec.check_type
            ),
        ),
        (Some(http), true) => {
            if !http.path.starts_with('/') {
                sink.invalid(
                    format!("{FIELD}.http.path"),
                    format!("must start with '/', got {}", fields::quoted(&http.path)),
                );
            } else {
                fields::http_path_characters(sink, &format!("{FIELD}.http.path"), &http.path);
            }
            if let Some(host) = &http.host {
                fields::http_host(sink, &format!("{FIELD}.http.host"), host);
            }
            if http.expected_statuses.is_empty() {
                sink.invalid(
                    format!("{FIELD}.http.expectedStatuses"),
                    "must list at least one status code",
                );
            }
            for (index, status) in http.expected_statuses.iter().enumerate() {
                if !(100..=599).contains(&status.0) {
                    sink.invalid(
                        format!("{FIELD}.http.expectedStatuses[{index}]"),
                        format!("must be an HTTP status code 100–599, got {}", status.0),
                    );
                }
            }
        }
        (None, true) => check.http = Some(Default::default()),
        (None, false) => {}
    }
    match (&spec.dns, spec.check_type == HealthCheckType::Dns) {
        (Some(_), false) => sink.invalid(
            format!("{FIELD}.dns"),
            format!("may only be set when type is DNS, not {:?}", spec.check_type),
        ),
        (Some(dns), true) => fields::dns_query_name(sink, &format!("{FIELD}.dns.queryName"), &dns.query_name),
        (None, true) => check.dns = Some(Default::default()),
        _ => {}
    }
    check
}
