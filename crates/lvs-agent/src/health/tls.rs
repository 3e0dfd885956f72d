//! TLS for HTTPS checks, on rustls with the ring provider. Certificates are accepted unverified
//! by default (real servers are reached by address and often have self-signed certificates), but
//! handshake signatures are always checked; with `verifyCertificate` they are verified against the
//! system CA bundle (`$SSL_CERT_FILE`, else `/etc/ssl/certs/ca-certificates.crt`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use lvs_api::HttpCheckSpec;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::probe::{ProbeError, describe};

const DEFAULT_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Runs the TLS handshake over `stream`. The server name (SNI and, when verifying, the name the
/// certificate must match) is `http.host` without any port; when unset the server's address is
/// used, which sends no SNI.
pub(super) async fn connect(
    address: IpAddr,
    spec: &HttpCheckSpec,
    stream: TcpStream,
) -> Result<TlsStream<TcpStream>, ProbeError> {
    let config = if spec.verify_certificate {
        verifying_config()?
    } else {
        accepting_config()?
    };
    let name = server_name(spec.host.as_deref(), address)?;
    TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|error| ProbeError::Tls(describe(&error)))
}

fn server_name(host: Option<&str>, address: IpAddr) -> Result<ServerName<'static>, ProbeError> {
    let Some(host) = host else {
        return Ok(ServerName::IpAddress(address.into()));
    };
    let bare = without_port(host);
    if let Ok(address) = bare.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(address.into()));
    }
    ServerName::try_from(bare.to_owned()).map_err(|_| ProbeError::ServerName(host.to_owned()))
}

/// `host` without a trailing `:port` and without IPv6 brackets.
fn without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(host, |(address, _)| address);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.parse::<u16>().is_ok() => name,
        _ => host,
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// The config for unverified checks, built once.
fn accepting_config() -> Result<Arc<ClientConfig>, ProbeError> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = provider();
            let verifier = AcceptAnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            };
            let config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|error| describe(&error))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
        .map_err(ProbeError::TlsConfig)
}

/// The config for verified checks, built on first success and kept (a missing bundle is retried).
fn verifying_config() -> Result<Arc<ClientConfig>, ProbeError> {
    static CONFIG: Mutex<Option<Arc<ClientConfig>>> = Mutex::new(None);
    let mut cached = CONFIG.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(config) = cached.as_ref() {
        return Ok(Arc::clone(config));
    }
    let roots = system_roots()?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| ProbeError::TlsConfig(describe(&error)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let config = Arc::new(config);
    *cached = Some(Arc::clone(&config));
    Ok(config)
}

fn system_roots() -> Result<RootCertStore, ProbeError> {
    let path =
        std::env::var_os("SSL_CERT_FILE").map_or_else(|| PathBuf::from(DEFAULT_CA_BUNDLE), PathBuf::from);
    let unreadable = |error: &dyn std::fmt::Display| {
        ProbeError::CaBundle(format!("cannot read {}: {error}", path.display()))
    };
    let certificates = CertificateDer::pem_file_iter(&path)
        .map_err(|error| unreadable(&error))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| unreadable(&error))?;
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(certificates);
    if roots.is_empty() {
        return Err(ProbeError::CaBundle(format!(
            "no usable certificate in {}",
            path.display()
        )));
    }
    Ok(roots)
}

/// Accepts any certificate, as `curl -k` does. Handshake signatures are not checked either: with
/// the certificate itself unverified, a proof that the server holds its key proves nothing, and
/// the check (webpki's) refuses certificates it cannot parse — X.509 v1, what `openssl req -x509`
/// makes without a config — so a live server with one was reported Unhealthy
/// (`UnsupportedCertVersion`). The schemes offered are still the provider's.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _certificate: &CertificateDer<'_>,
        _signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _certificate: &CertificateDer<'_>,
        _signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use pretty_assertions::assert_eq;

    use super::*;

    const ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

    #[test]
    fn ports_and_brackets_are_stripped() {
        assert_eq!(without_port("example.com"), "example.com");
        assert_eq!(without_port("example.com:8443"), "example.com");
        assert_eq!(without_port("[fd00::1]:443"), "fd00::1");
        assert_eq!(without_port("fd00::1"), "fd00::1");
    }

    #[test]
    fn server_name_is_the_host_or_the_address() {
        let name = |host| server_name(host, ADDRESS).map(|name| name.to_str().into_owned());
        assert_eq!(name(None).ok(), Some("10.0.0.1".to_owned()));
        assert_eq!(
            name(Some("www.example.com:8443")).ok(),
            Some("www.example.com".to_owned())
        );
        assert_eq!(name(Some("192.0.2.7")).ok(), Some("192.0.2.7".to_owned()));
        assert!(matches!(
            server_name(Some("bad name!"), ADDRESS),
            Err(ProbeError::ServerName(_))
        ));
    }

    #[test]
    fn configs_build() {
        assert!(accepting_config().is_ok());
    }
}
