//! The grammar of each Service annotation's value: text → typed setting, or why it cannot be one.

use std::collections::BTreeMap;
use std::net::IpAddr;

use lvs_api::limits::SELECTOR_MAX_LABELS;
use lvs_api::{ForwardingMethod, HealthCheckSpec, HealthCheckType, HttpCheckSpec, Scheduler};

use crate::validate::fields::{is_dns_subdomain, label_key_problem, label_value_problem};

/// The longest client persistence, in seconds (a year), as `PersistenceSpec.timeoutSeconds`.
const MAX_PERSISTENCE_SECONDS: u32 = 31_536_000;
/// The longest HTTP check path, as `HttpCheckSpec.path`.
const MAX_HTTP_PATH: usize = 1024;

/// An IPVS scheduler by its kernel name.
pub(super) fn scheduler(text: &str) -> Result<Scheduler, String> {
    Scheduler::from_name(text.trim()).ok_or_else(|| {
        let known: Vec<&str> = Scheduler::ALL.iter().map(|known| known.as_str()).collect();
        format!("not an IPVS scheduler (one of {})", known.join(", "))
    })
}

/// An AddressPool name (DNS subdomain): 1–253 of `a-z 0-9 - .`, alphanumeric at both ends of
/// every dot-separated part.
pub(super) fn address_pool(text: &str) -> Result<String, String> {
    let name = text.trim();
    if is_dns_subdomain(name) {
        Ok(name.to_owned())
    } else {
        Err("an AddressPool name is a lowercase RFC 1123 subdomain of 1 to 253 characters (a-z, 0-9, '-', '.', starting and ending with a letter or digit)".to_owned())
    }
}

/// One address, or an IPv4 and an IPv6 address separated by a comma; IPv4 first in the result.
pub(super) fn addresses(text: &str) -> Result<Vec<IpAddr>, String> {
    let mut addresses = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let address: IpAddr = part
            .parse()
            .map_err(|_| format!("{part:?} is not an IPv4 or IPv6 address"))?;
        if addresses
            .iter()
            .any(|known: &IpAddr| known.is_ipv4() == address.is_ipv4())
        {
            return Err("at most one address per family (one IPv4, one IPv6)".to_owned());
        }
        addresses.push(address);
    }
    addresses.sort_by_key(|address| address.is_ipv6());
    Ok(addresses)
}

/// Client persistence in whole seconds, 1–31536000.
pub(super) fn persistence(text: &str) -> Result<u32, String> {
    let text = text.trim();
    text.bytes()
        .all(|byte| byte.is_ascii_digit())
        .then(|| text.parse::<u32>().ok())
        .flatten()
        .filter(|seconds| (1..=MAX_PERSISTENCE_SECONDS).contains(seconds))
        .ok_or_else(|| format!("not a whole number of seconds from 1 to {MAX_PERSISTENCE_SECONDS}"))
}

/// A forwarding method by its API name: `DirectRouting`, `NAT` or `Tunnel`.
pub(super) fn forwarding(text: &str) -> Result<ForwardingMethod, String> {
    match text.trim() {
        "DirectRouting" => Ok(ForwardingMethod::DirectRouting),
        "NAT" => Ok(ForwardingMethod::Nat),
        "Tunnel" => Ok(ForwardingMethod::Tunnel),
        _ => Err("not a forwarding method (DirectRouting, NAT or Tunnel)".to_owned()),
    }
}

/// `None`, `TCP[:port]`, `HTTP[:port][/path]`, `HTTPS[:port][/path]` or `DNS[:port]`; the type
/// in any case. Intervals, thresholds and the HTTP status keep their defaults.
pub(super) fn health_check(text: &str) -> Result<HealthCheckSpec, String> {
    const GRAMMAR: &str = "None, TCP[:port], HTTP[:port][/path], HTTPS[:port][/path] or DNS[:port]";
    let text = text.trim();
    let (head, path) = match text.find('/') {
        Some(slash) => (&text[..slash], Some(&text[slash..])),
        None => (text, None),
    };
    let (name, port) = match head.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (head, None),
    };
    let check_type = match name.to_ascii_uppercase().as_str() {
        "NONE" => HealthCheckType::None,
        "TCP" => HealthCheckType::Tcp,
        "HTTP" => HealthCheckType::Http,
        "HTTPS" => HealthCheckType::Https,
        "DNS" => HealthCheckType::Dns,
        _ => return Err(format!("not a health check ({GRAMMAR})")),
    };
    let port = port
        .map(|port| {
            port.bytes()
                .all(|byte| byte.is_ascii_digit())
                .then(|| port.parse::<u16>().ok())
                .flatten()
                .filter(|port| *port > 0)
                .ok_or_else(|| format!("the port {port:?} is not a port number (1-65535)"))
        })
        .transpose()?;
    if port.is_some() && check_type == HealthCheckType::None {
        return Err(format!("None takes no port ({GRAMMAR})"));
    }
    let http = matches!(check_type, HealthCheckType::Http | HealthCheckType::Https);
    let http = match path {
        Some(_) if !http => return Err(format!("only HTTP and HTTPS checks take a path ({GRAMMAR})")),
        Some(path) if path.len() > MAX_HTTP_PATH => {
            return Err(format!("the path has more than {MAX_HTTP_PATH} characters"));
        }
        Some(path) if !path.bytes().all(|byte| byte.is_ascii_graphic()) => {
            return Err(
                "the path must be printable ASCII without spaces (percent-encode anything else)".to_owned(),
            );
        }
        Some(path) => Some(HttpCheckSpec {
            path: path.to_owned(),
            ..HttpCheckSpec::default()
        }),
        None => http.then(HttpCheckSpec::default),
    };
    Ok(HealthCheckSpec {
        check_type,
        port,
        http,
        ..HealthCheckSpec::default()
    })
}

/// Comma-separated `key=value` labels, at most 8, each key once; empty: none.
pub(super) fn directors(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    if text.trim().is_empty() {
        return Ok(labels);
    }
    for entry in text.split(',') {
        let Some((key, value)) = entry.split_once('=') else {
            return Err(format!("{:?} is not key=value", entry.trim()));
        };
        let (key, value) = (key.trim(), value.trim());
        if let Some(why) = label_key_problem(key) {
            return Err(format!("{key:?} is not a label key: {why}"));
        }
        if let Some(why) = label_value_problem(value) {
            return Err(format!("the value of {key} is not a label value: {why}"));
        }
        if labels.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(format!("{key} is given twice"));
        }
    }
    if labels.len() > SELECTOR_MAX_LABELS {
        return Err(format!(
            "at most {SELECTOR_MAX_LABELS} labels, got {}",
            labels.len()
        ));
    }
    Ok(labels)
}
