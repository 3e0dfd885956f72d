//! A Service's per-Service settings, parsed once from its `lvs.operator.io/` annotations (and
//! `spec.loadBalancerIP`). A bad value is reported and the last good one stays in force.

use std::fmt;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use lvs_api::Scheduler;
use lvs_api::labels::{ADDRESS_ANNOTATION, ADDRESS_POOL_ANNOTATION, SCHEDULER_ANNOTATION};

/// What a Service asks for, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceOptions {
    /// The IPVS scheduler of every port (default wlc).
    pub scheduler: Scheduler,
    /// The AddressPool the VIP must come from (default: any pool admitting the namespace).
    pub address_pool: Option<String>,
    /// The VIPs asked for, at most one per family, IPv4 first (default: none, one is picked).
    pub addresses: Vec<IpAddr>,
}

/// A setting of a Service that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError {
    /// Where: the annotation's key, or `spec.loadBalancerIP`.
    pub field: &'static str,
    /// The value given.
    pub value: String,
    /// Why it cannot be used.
    pub reason: String,
}

impl fmt::Display for OptionError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{} {:?} is not valid: {}; the last valid setting stays in force",
            self.field, self.value, self.reason
        )
    }
}

impl ServiceOptions {
    /// Parses `service`'s settings. Each bad value is reported and replaced by its value in
    /// `last_good` (the settings last in force), else by the default.
    pub fn parse(service: &Service, last_good: Option<&ServiceOptions>) -> (Self, Vec<OptionError>) {
        let fallback = last_good.cloned().unwrap_or_default();
        let annotations = service.metadata.annotations.as_ref();
        let annotation = |key: &str| annotations.and_then(|map| map.get(key)).map(String::as_str);
        let mut errors = Vec::new();
        let mut report = |field: &'static str, value: &str, reason: String| {
            errors.push(OptionError {
                field,
                value: value.to_owned(),
                reason,
            });
        };

        let scheduler = match annotation(SCHEDULER_ANNOTATION) {
            None => Scheduler::default(),
            Some(text) => match Scheduler::ALL.iter().find(|known| known.as_str() == text.trim()) {
                Some(scheduler) => *scheduler,
                None => {
                    let known: Vec<&str> = Scheduler::ALL.iter().map(|known| known.as_str()).collect();
                    report(
                        SCHEDULER_ANNOTATION,
                        text,
                        format!("not an IPVS scheduler (one of {})", known.join(", ")),
                    );
                    fallback.scheduler
                }
            },
        };

        let address_pool = match annotation(ADDRESS_POOL_ANNOTATION) {
            None => None,
            Some(text) => match check_object_name(text.trim()) {
                Ok(()) => Some(text.trim().to_owned()),
                Err(reason) => {
                    report(ADDRESS_POOL_ANNOTATION, text, reason);
                    fallback.address_pool.clone()
                }
            },
        };

        let load_balancer_ip = service
            .spec
            .as_ref()
            .and_then(|spec| spec.load_balancer_ip.as_deref())
            .filter(|text| !text.is_empty());
        let asked = match (annotation(ADDRESS_ANNOTATION), load_balancer_ip) {
            (Some(text), _) => Some((ADDRESS_ANNOTATION, text)),
            (None, Some(text)) => Some(("spec.loadBalancerIP", text)),
            (None, None) => None,
        };
        let addresses = match asked {
            None => Vec::new(),
            Some((field, text)) => match parse_addresses(text) {
                Ok(addresses) => addresses,
                Err(reason) => {
                    report(field, text, reason);
                    fallback.addresses
                }
            },
        };
        (
            Self {
                scheduler,
                address_pool,
                addresses,
            },
            errors,
        )
    }
}

/// A Kubernetes object name (DNS subdomain): 1–253 of `a-z 0-9 - .`, alphanumeric at both ends.
fn check_object_name(name: &str) -> Result<(), String> {
    let valid_characters = name
        .bytes()
        .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'.');
    let alphanumeric =
        |byte: Option<u8>| byte.is_some_and(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit());
    if name.is_empty() || name.len() > 253 {
        Err("an AddressPool name has 1 to 253 characters".to_owned())
    } else if !valid_characters || !alphanumeric(name.bytes().next()) || !alphanumeric(name.bytes().last()) {
        Err("an AddressPool name has only lowercase letters, digits, '-' and '.', and starts and ends with a letter or digit".to_owned())
    } else {
        Ok(())
    }
}

/// One address, or an IPv4 and an IPv6 address separated by a comma; IPv4 first in the result.
fn parse_addresses(text: &str) -> Result<Vec<IpAddr>, String> {
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
