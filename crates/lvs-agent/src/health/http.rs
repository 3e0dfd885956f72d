//! HTTP and HTTPS checks: one `GET` with `Connection: close` over a fresh connection; the status
//! line decides, the body is never read.

use std::net::IpAddr;
use std::pin::pin;

use http::header::{CONNECTION, HOST, USER_AGENT};
use http::{Request, StatusCode};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use lvs_api::{HttpCheckSpec, HttpStatusCode};
use tokio::io::{AsyncRead, AsyncWrite};

use super::probe::{ProbeError, ProbeTarget, connect, describe};
use super::tls;

const USER_AGENT_VALUE: &str = concat!("lvs-agent/", env!("CARGO_PKG_VERSION"), " health-check");

/// Checks `target` over HTTP, or HTTPS when `tls` is set.
pub(super) async fn probe(target: &ProbeTarget, tls: bool) -> Result<(), ProbeError> {
    let default_spec;
    let spec = match &target.check.http {
        Some(spec) => spec,
        None => {
            default_spec = HttpCheckSpec::default();
            &default_spec
        }
    };
    let request = request(target, spec, tls)?;
    let stream = connect(target.socket_address()).await?;
    let status = if tls {
        let stream = tls::connect(target.address, spec, stream).await?;
        status_of(stream, request).await?
    } else {
        status_of(stream, request).await?
    };
    check_status(status, &spec.expected_statuses)
}

fn request(
    target: &ProbeTarget,
    spec: &HttpCheckSpec,
    tls: bool,
) -> Result<Request<Empty<Bytes>>, ProbeError> {
    let host = match &spec.host {
        Some(host) => host.clone(),
        None => host_header(target.address, target.port, tls),
    };
    Request::get(spec.path.as_str())
        .header(HOST, host)
        .header(CONNECTION, "close")
        .header(USER_AGENT, USER_AGENT_VALUE)
        .body(Empty::new())
        .map_err(|error| ProbeError::InvalidRequest(describe(&error)))
}

/// The Host header for a server reached by address: `10.0.0.1`, `[fd00::1]:8080`.
fn host_header(address: IpAddr, port: u16, tls: bool) -> String {
    let default_port = if tls { 443 } else { 80 };
    match (address, port == default_port) {
        (IpAddr::V4(address), true) => address.to_string(),
        (IpAddr::V6(address), true) => format!("[{address}]"),
        (address, false) => std::net::SocketAddr::new(address, port).to_string(),
    }
}

/// Sends `request` over `io` and returns the response's status, without reading the body.
async fn status_of<S>(io: S, request: Request<Empty<Bytes>>) -> Result<StatusCode, ProbeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http_error = |error: hyper::Error| ProbeError::Http(describe(&error));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(http_error)?;
    // Drive the connection and the response together on this task; the connection future ends
    // when the server closes, and the response then resolves (or reports why it cannot).
    let mut connection = pin!(connection);
    let mut response = pin!(sender.send_request(request));
    let response = tokio::select! {
        biased;
        response = &mut response => response,
        closed = &mut connection => {
            closed.map_err(http_error)?;
            response.await
        }
    };
    response.map(|response| response.status()).map_err(http_error)
}

fn check_status(status: StatusCode, expected: &[HttpStatusCode]) -> Result<(), ProbeError> {
    let default_expected = [HttpStatusCode(200)];
    let expected = if expected.is_empty() {
        &default_expected[..]
    } else {
        expected
    };
    if expected.iter().any(|code| code.0 == status.as_u16()) {
        return Ok(());
    }
    let codes: Vec<String> = expected.iter().map(|code| code.0.to_string()).collect();
    let expected = match codes.as_slice() {
        [one] => one.clone(),
        many => format!("one of {}", many.join(", ")),
    };
    Err(ProbeError::Status {
        status: status.as_u16(),
        expected,
    })
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn host_header_omits_default_ports_and_brackets_ipv6() {
        let v4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(host_header(v4, 80, false), "10.0.0.1");
        assert_eq!(host_header(v4, 443, false), "10.0.0.1:443");
        assert_eq!(host_header(v4, 443, true), "10.0.0.1");
        assert_eq!(host_header(v6, 80, false), "[::1]");
        assert_eq!(host_header(v6, 8080, false), "[::1]:8080");
    }

    #[test]
    fn status_messages() {
        let ok = StatusCode::OK;
        let unavailable = StatusCode::SERVICE_UNAVAILABLE;
        assert!(check_status(ok, &[]).is_ok());
        assert!(check_status(unavailable, &[HttpStatusCode(503)]).is_ok());
        let error = check_status(unavailable, &[]).map_err(|error| error.to_string());
        assert_eq!(error, Err("HTTP status 503, expected 200".to_owned()));
        let error = check_status(unavailable, &[HttpStatusCode(200), HttpStatusCode(204)])
            .map_err(|error| error.to_string());
        assert_eq!(error, Err("HTTP status 503, expected one of 200, 204".to_owned()));
    }
}
