//! A Service's per-Service settings, parsed once from its `lvs.operator.io/` annotations (and
//! `spec.loadBalancerIP`). A bad value is reported and the last good one stays in force.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use lvs_api::labels::{
    ADDRESS_ANNOTATION, ADDRESS_POOL_ANNOTATION, DIRECTORS_ANNOTATION, FORWARDING_ANNOTATION,
    HEALTH_CHECK_ANNOTATION, PERSISTENCE_ANNOTATION, SCHEDULER_ANNOTATION,
};
use lvs_api::{ForwardingMethod, HealthCheckSpec, Scheduler};

use super::values;

/// What a Service asks for, parsed. Each field's annotation is in `lvs_api::labels`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceOptions {
    /// The IPVS scheduler of every port (default wlc).
    pub scheduler: Scheduler,
    /// The AddressPool the VIP must come from (default: any pool admitting the namespace).
    pub address_pool: Option<String>,
    /// The VIPs asked for, at most one per family, IPv4 first (default: none, one is picked).
    pub addresses: Vec<IpAddr>,
    /// Client persistence in seconds (default: none).
    pub persistence: Option<u32>,
    /// Direct routing to the nodes (the default), or NAT or Tunnel straight to the pods.
    pub forwarding: ForwardingMethod,
    /// The health check of every port (default: see `HEALTH_CHECK_ANNOTATION`).
    pub health_check: Option<HealthCheckSpec>,
    /// Labels the directors must carry (default: none, every director).
    pub directors: BTreeMap<String, String>,
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
        let mut reader = Reader {
            service,
            errors: Vec::new(),
        };
        let scheduler = reader
            .read(SCHEDULER_ANNOTATION, values::scheduler, Some(fallback.scheduler))
            .unwrap_or_default();
        let address_pool = reader.read(
            ADDRESS_POOL_ANNOTATION,
            values::address_pool,
            fallback.address_pool,
        );
        let load_balancer_ip = service
            .spec
            .as_ref()
            .and_then(|spec| spec.load_balancer_ip.as_deref())
            .filter(|text| !text.is_empty());
        let addresses = match (reader.annotation(ADDRESS_ANNOTATION), load_balancer_ip) {
            (Some(_), _) => reader.read(ADDRESS_ANNOTATION, values::addresses, Some(fallback.addresses)),
            (None, Some(text)) => reader.check(
                "spec.loadBalancerIP",
                text,
                values::addresses,
                Some(fallback.addresses),
            ),
            (None, None) => None,
        }
        .unwrap_or_default();
        let persistence = reader.read(PERSISTENCE_ANNOTATION, values::persistence, fallback.persistence);
        let forwarding = reader
            .read(
                FORWARDING_ANNOTATION,
                values::forwarding,
                Some(fallback.forwarding),
            )
            .unwrap_or_default();
        let health_check = reader.read(
            HEALTH_CHECK_ANNOTATION,
            values::health_check,
            fallback.health_check,
        );
        let directors = reader
            .read(DIRECTORS_ANNOTATION, values::directors, Some(fallback.directors))
            .unwrap_or_default();
        (
            Self {
                scheduler,
                address_pool,
                addresses,
                persistence,
                forwarding,
                health_check,
                directors,
            },
            reader.errors,
        )
    }
}

/// Reads a Service's settings, collecting what cannot be used.
struct Reader<'a> {
    service: &'a Service,
    errors: Vec<OptionError>,
}

impl<'a> Reader<'a> {
    fn annotation(&self, key: &str) -> Option<&'a str> {
        let annotations = self.service.metadata.annotations.as_ref()?;
        annotations.get(key).map(String::as_str)
    }

    /// The annotation `key` parsed: `None` when absent, `fallback` when it cannot be used.
    fn read<T>(
        &mut self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
        fallback: Option<T>,
    ) -> Option<T> {
        let text = self.annotation(key)?;
        self.check(key, text, parse, fallback)
    }

    /// `text` of `field` parsed, or `fallback` with the reason recorded.
    fn check<T>(
        &mut self,
        field: &'static str,
        text: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
        fallback: Option<T>,
    ) -> Option<T> {
        match parse(text) {
            Ok(value) => Some(value),
            Err(reason) => {
                self.errors.push(OptionError {
                    field,
                    value: text.to_owned(),
                    reason,
                });
                fallback
            }
        }
    }
}
