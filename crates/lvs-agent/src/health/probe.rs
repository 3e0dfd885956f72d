//! One probe of one real server: what to probe ([`ProbeTarget`]), how it went ([`ProbeOutcome`]),
//! and [`probe`], which runs the TCP, HTTP, HTTPS or DNS check within the check's timeout.

use std::error::Error;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use lvs_api::{Destination, DirectorService, HealthCheckSpec, HealthCheckType, Protocol};
use tokio::net::TcpStream;

use super::{dns, http};

/// What to probe: one real server of one director service, with the service's check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// The real server's address.
    pub address: IpAddr,
    /// The port to probe: `healthCheck.port`, else the destination's port; 0 when neither names
    /// one (a fwmark service without a check port), which makes every probe fail.
    pub port: u16,
    /// The service's transport protocol.
    pub protocol: Protocol,
    /// The check, with defaults filled in.
    pub check: HealthCheckSpec,
}

impl ProbeTarget {
    /// The target for `destination` of `service`; `None` when the check type is `None`.
    pub fn for_destination(service: &DirectorService, destination: &Destination) -> Option<Self> {
        let check = &service.health_check;
        if check.check_type == HealthCheckType::None {
            return None;
        }
        Some(Self {
            address: destination.address,
            port: check.port.filter(|&port| port != 0).unwrap_or(destination.port),
            protocol: service.protocol,
            check: check.clone(),
        })
    }

    /// The address and port probed.
    pub fn socket_address(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }

    /// How long one probe may take: 1–60 s (a node config from an older controller may say more).
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(u64::from(
            self.check
                .timeout_seconds
                .clamp(1, lvs_api::HealthCheckSpec::MAX_TIMEOUT_SECONDS),
        ))
    }

    /// Time between the starts of two probes (at least a second).
    pub fn interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.check.interval_seconds.max(1)))
    }
}

/// How one probe went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// Whether the check passed.
    pub success: bool,
    /// How long the probe took, failed or not.
    pub latency: Duration,
    /// Why it failed.
    pub message: Option<String>,
}

impl ProbeOutcome {
    /// A passed check.
    pub fn success(latency: Duration) -> Self {
        Self {
            success: true,
            latency,
            message: None,
        }
    }

    /// A failed check.
    pub fn failure(latency: Duration, message: impl Into<String>) -> Self {
        Self {
            success: false,
            latency,
            message: Some(message.into()),
        }
    }
}

/// Why a probe failed; its `Display` is the message users see.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Neither the check nor the destination names a port.
    #[error("no port to probe: set healthCheck.port")]
    NoPort,
    /// The probe did not finish within the check's timeout.
    #[error("timed out after {}s", .0.as_secs())]
    TimedOut(Duration),
    /// The TCP connection failed.
    #[error("connect {address}: {reason}")]
    Connect { address: SocketAddr, reason: String },
    /// The HTTP request could not be built from the check's settings.
    #[error("invalid HTTP request: {0}")]
    InvalidRequest(String),
    /// The HTTP exchange failed.
    #[error("HTTP: {0}")]
    Http(String),
    /// The server answered with a status the check does not accept.
    #[error("HTTP status {status}, expected {expected}")]
    Status { status: u16, expected: String },
    /// `http.host` is not usable as a TLS server name.
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    /// The CA bundle needed to verify certificates could not be loaded.
    #[error("certificate verification needs a CA bundle: {0}")]
    CaBundle(String),
    /// The TLS client could not be set up.
    #[error("TLS configuration: {0}")]
    TlsConfig(String),
    /// The TLS handshake failed (including certificate verification).
    #[error("TLS handshake: {0}")]
    Tls(String),
    /// `dns.queryName` is not a domain name.
    #[error("invalid DNS query name {name:?}: {reason}")]
    QueryName { name: String, reason: String },
    /// The DNS exchange failed.
    #[error("DNS query to {address}: {reason}")]
    Dns { address: SocketAddr, reason: String },
    /// The DNS server answered with an error code.
    #[error("DNS answer rcode {0}")]
    Rcode(String),
}

/// Runs one check of `target`, bounded by its timeout. A `None` check passes at once.
pub async fn probe(target: &ProbeTarget) -> ProbeOutcome {
    let started = Instant::now();
    let timeout = target.timeout();
    let result = match tokio::time::timeout(timeout, run(target)).await {
        Ok(result) => result,
        Err(_) => Err(ProbeError::TimedOut(timeout)),
    };
    let latency = started.elapsed();
    match result {
        Ok(()) => ProbeOutcome::success(latency),
        Err(error) => ProbeOutcome::failure(latency, error.to_string()),
    }
}

async fn run(target: &ProbeTarget) -> Result<(), ProbeError> {
    if target.check.check_type == HealthCheckType::None {
        return Ok(());
    }
    if target.port == 0 {
        return Err(ProbeError::NoPort);
    }
    match target.check.check_type {
        HealthCheckType::Tcp => connect(target.socket_address()).await.map(drop),
        HealthCheckType::Http => http::probe(target, false).await,
        HealthCheckType::Https => http::probe(target, true).await,
        HealthCheckType::Dns => dns::probe(target).await,
        HealthCheckType::None => Ok(()),
    }
}

/// Opens a TCP connection to `address`.
pub(super) async fn connect(address: SocketAddr) -> Result<TcpStream, ProbeError> {
    TcpStream::connect(address)
        .await
        .map_err(|error| ProbeError::Connect {
            address,
            reason: describe(&error),
        })
}

/// An error and its sources, joined with `: `, without the `(os error N)` suffixes and with a
/// lower-case start: `connection refused`.
pub(super) fn describe(error: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        let text = error.to_string();
        let text = match text.find(" (os error ") {
            Some(index) => text[..index].to_owned(),
            None => text,
        };
        // Wrappers such as io::Error repeat their source's text; say it once.
        if !text.is_empty() && parts.last().is_none_or(|last| !last.ends_with(&text)) {
            parts.push(lower_first(&text));
        }
        next = error.source();
    }
    parts.join(": ")
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        // Keep acronyms such as "TLS" or "HTTP" as they are.
        Some(first) if first.is_uppercase() && !chars.next().is_some_and(char::is_uppercase) => first
            .to_lowercase()
            .chain(text[first.len_utf8()..].chars())
            .collect(),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use lvs_api::{RealServerState, ThresholdsSpec};
    use pretty_assertions::assert_eq;

    use super::*;

    fn destination(address: &str, port: u16) -> Destination {
        Destination {
            real_server: "default/rs-1".to_owned(),
            address: address.parse().unwrap(),
            port,
            weight: 1,
            thresholds: ThresholdsSpec::default(),
            state: RealServerState::Active,
            awaiting_node: false,
        }
    }

    #[test]
    fn port_comes_from_the_check_then_the_destination() {
        let mut service = DirectorService::default();
        let target = ProbeTarget::for_destination(&service, &destination("10.0.0.1", 80));
        assert_eq!(target.map(|target| target.port), Some(80));
        service.health_check.port = Some(8080);
        let target = ProbeTarget::for_destination(&service, &destination("10.0.0.1", 80));
        assert_eq!(
            target.map(|target| target.socket_address().to_string()),
            Some("10.0.0.1:8080".into())
        );
    }

    #[test]
    fn no_target_without_a_check() {
        let mut service = DirectorService::default();
        service.health_check.check_type = HealthCheckType::None;
        assert_eq!(
            ProbeTarget::for_destination(&service, &destination("10.0.0.1", 80)),
            None
        );
    }

    #[tokio::test]
    async fn port_zero_fails_without_probing() {
        let service = DirectorService::default();
        let target = ProbeTarget::for_destination(&service, &destination("10.0.0.1", 0)).unwrap();
        let outcome = probe(&target).await;
        assert!(!outcome.success);
        assert_eq!(
            outcome.message.as_deref(),
            Some("no port to probe: set healthCheck.port")
        );
    }

    #[test]
    fn describe_drops_os_error_codes_and_repeats() {
        let error = io::Error::from_raw_os_error(111);
        assert_eq!(describe(&error), "connection refused");
        let wrapped = io::Error::other(io::Error::from_raw_os_error(113));
        assert_eq!(describe(&wrapped), "no route to host");
        let tls = io::Error::other("TLS alert");
        assert_eq!(describe(&tls), "TLS alert");
    }

    #[test]
    fn timeout_message_names_the_seconds() {
        assert_eq!(
            ProbeError::TimedOut(Duration::from_secs(3)).to_string(),
            "timed out after 3s"
        );
    }
}
