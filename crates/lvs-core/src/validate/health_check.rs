//! Health-check settings: defaults by protocol, ranges, the per-type sub-blocks, and the port
//! a check needs when the service has none to lend it.

use lvs_api::{HealthCheckSpec, HealthCheckType, Protocol, VirtualServerSpec};

use super::fields;
use crate::problem::ProblemSink;

const FIELD: &str = "spec.healthCheck";

/// Validates the health check of a VirtualServer, filling in the protocol's default when it is
/// absent.
pub(crate) fn health_check(sink: &mut ProblemSink<'_>, service: &VirtualServerSpec) -> HealthCheckSpec {
    let check = check_settings(sink, service.health_check.as_ref(), service.protocol);
    probe_port(sink, service, &check);
    check
}

/// Refuses checks that have no port to probe, or probe the wrong protocol's port. Mirrors two
/// CEL rules of `VirtualServerSpec`.
fn probe_port(sink: &mut ProblemSink<'_>, service: &VirtualServerSpec, check: &HealthCheckSpec) {
    let field = format!("{FIELD}.port");
    if check.port.is_some() || check.check_type == HealthCheckType::None {
        return;
    }
    let over_tcp = matches!(
        check.check_type,
        HealthCheckType::Tcp | HealthCheckType::Http | HealthCheckType::Https
    );
    if service.protocol != Protocol::Tcp && over_tcp {
        sink.invalid(
            field.clone(),
            format!(
                "is required for a {:?} check of a {} service: the service port is not a TCP port",
                check.check_type,
                service.protocol.as_str()
            ),
        );
    }
    if service.fwmark.is_some() && service.port.is_none() && service.real_servers.port.is_none() {
        sink.invalid(
            field,
            "is required for checks of a fwmark service, which has no port to probe (or set realServers.port with NAT, or type None)",
        );
    }
}

/// Validates the check's own settings, filling in the protocol's default when it is absent.
fn check_settings(
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
        (
            "timeoutSeconds",
            spec.timeout_seconds,
            lvs_api::HealthCheckSpec::MAX_TIMEOUT_SECONDS,
        ),
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
