//! Probes against real servers on 127.0.0.1: TCP, HTTP, HTTPS (rcgen certificates, SNI checked
//! by the server), DNS (a hickory-proto responder), and timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use lvs_agent::health::{ProbeOutcome, ProbeTarget, probe};
use lvs_api::{DnsCheckSpec, HealthCheckSpec, HealthCheckType, HttpCheckSpec, HttpStatusCode, Protocol};
use pretty_assertions::assert_eq;
use rustls::ServerConfig;
use rustls::pki_types::PrivateKeyDer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio_rustls::LazyConfigAcceptor;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn target(check_type: HealthCheckType, port: u16) -> ProbeTarget {
    ProbeTarget {
        address: LOCALHOST,
        port,
        protocol: Protocol::Tcp,
        check: HealthCheckSpec {
            check_type,
            interval_seconds: 1,
            timeout_seconds: 1,
            ..HealthCheckSpec::default()
        },
    }
}

fn http_target(check_type: HealthCheckType, port: u16, http: HttpCheckSpec) -> ProbeTarget {
    let mut target = target(check_type, port);
    target.check.http = Some(http);
    target
}

fn assert_failed(outcome: &ProbeOutcome, message: &str) {
    assert!(!outcome.success, "expected a failure: {outcome:?}");
    assert_eq!(outcome.message.as_deref(), Some(message));
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    listener.local_addr().unwrap().port()
}

/// A request as the test server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SeenRequest {
    /// The request line, e.g. `GET / HTTP/1.1`.
    line: String,
    /// Header lines, lower-cased names: `host: 127.0.0.1:8080`.
    headers: Vec<String>,
    /// The TLS server name the client sent.
    sni: Option<String>,
}

impl SeenRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
    }
}

type Seen = Arc<Mutex<Vec<SeenRequest>>>;

/// Reads one request head from `io` and answers `status_for(path)` with an empty body.
async fn answer<S>(mut io: S, status_for: fn(&str) -> u16, sni: Option<String>, seen: Seen)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = Vec::new();
    let mut buffer = [0; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        match io.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
        if !head[0].is_ascii_uppercase() {
            // Not HTTP (a TLS ClientHello, say): answer as web servers do.
            let _ = io
                .write_all(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n")
                .await;
            return;
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .take_while(|line| !line.is_empty())
        .map(|line| match line.split_once(": ") {
            Some((name, value)) => format!("{}: {value}", name.to_ascii_lowercase()),
            None => line.to_owned(),
        })
        .collect();
    let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
    seen.lock().unwrap().push(SeenRequest { line, headers, sni });
    let status = status_for(&path);
    let response = format!("HTTP/1.1 {status} Test\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let _ = io.write_all(response.as_bytes()).await;
    let _ = io.shutdown().await;
}

/// An HTTP server on 127.0.0.1 answering `status_for(path)`.
async fn http_server(status_for: fn(&str) -> u16) -> (u16, Seen) {
    http_server_at(LOCALHOST, status_for).await
}

/// An HTTP server on `at` answering `status_for(path)`.
async fn http_server_at(at: IpAddr, status_for: fn(&str) -> u16) -> (u16, Seen) {
    let listener = TcpListener::bind((at, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Seen::default();
    let requests = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(answer(stream, status_for, None, Arc::clone(&requests)));
        }
    });
    (port, seen)
}

/// An HTTPS server on 127.0.0.1 with a fresh self-signed certificate for `www.example.com`,
/// recording the SNI of every connection.
async fn https_server(status_for: fn(&str) -> u16) -> (u16, Seen) {
    https_server_at(LOCALHOST, status_for).await
}

/// `https_server` on `at`.
async fn https_server_at(at: IpAddr, status_for: fn(&str) -> u16) -> (u16, Seen) {
    let certified = rcgen::generate_simple_self_signed(vec!["www.example.com".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind((at, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Seen::default();
    let requests = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let config = Arc::clone(&config);
            let requests = Arc::clone(&requests);
            tokio::spawn(async move {
                let acceptor = rustls::server::Acceptor::default();
                let Ok(start) = LazyConfigAcceptor::new(acceptor, stream).await else {
                    return;
                };
                let sni = start.client_hello().server_name().map(str::to_owned);
                let Ok(tls) = start.into_stream(config).await else {
                    return;
                };
                answer(tls, status_for, sni, requests).await;
            });
        }
    });
    (port, seen)
}

fn ok_at_root(path: &str) -> u16 {
    if path == "/" { 200 } else { 404 }
}

fn unavailable(_: &str) -> u16 {
    503
}

fn no_content(_: &str) -> u16 {
    204
}

// TCP

#[tokio::test]
async fn tcp_passes_when_something_listens() {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let outcome = probe(&target(HealthCheckType::Tcp, port)).await;
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(outcome.message, None);
    let (_connection, _) = tokio::time::timeout(Duration::from_secs(1), listener.accept())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn tcp_fails_with_connection_refused_on_a_closed_port() {
    let port = closed_port().await;
    let outcome = probe(&target(HealthCheckType::Tcp, port)).await;
    assert_failed(&outcome, &format!("connect 127.0.0.1:{port}: connection refused"));
}

// HTTP

#[tokio::test]
async fn http_200_passes_with_host_and_connection_close() {
    let (port, seen) = http_server(ok_at_root).await;
    let outcome = probe(&http_target(
        HealthCheckType::Http,
        port,
        HttpCheckSpec::default(),
    ))
    .await;
    assert!(outcome.success, "{outcome:?}");
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.line, "GET / HTTP/1.1");
    assert_eq!(request.header("host"), Some(format!("127.0.0.1:{port}").as_str()));
    assert_eq!(request.header("connection"), Some("close"));
}

#[tokio::test]
async fn http_503_fails_with_the_status() {
    let (port, _) = http_server(unavailable).await;
    let outcome = probe(&http_target(
        HealthCheckType::Http,
        port,
        HttpCheckSpec::default(),
    ))
    .await;
    assert_failed(&outcome, "HTTP status 503, expected 200");
}

#[tokio::test]
async fn http_wrong_path_fails_with_404() {
    let (port, seen) = http_server(ok_at_root).await;
    let http = HttpCheckSpec {
        path: "/healthz?full=1".to_owned(),
        ..HttpCheckSpec::default()
    };
    let outcome = probe(&http_target(HealthCheckType::Http, port, http)).await;
    assert_failed(&outcome, "HTTP status 404, expected 200");
    assert_eq!(seen.lock().unwrap()[0].line, "GET /healthz?full=1 HTTP/1.1");
}

#[tokio::test]
async fn http_expected_statuses_and_host_are_honoured() {
    let (port, seen) = http_server(no_content).await;
    let http = HttpCheckSpec {
        expected_statuses: vec![HttpStatusCode(200), HttpStatusCode(204)],
        host: Some("www.example.com".to_owned()),
        ..HttpCheckSpec::default()
    };
    let outcome = probe(&http_target(HealthCheckType::Http, port, http)).await;
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(seen.lock().unwrap()[0].header("host"), Some("www.example.com"));
}

#[tokio::test]
async fn http_fails_when_the_server_closes_without_answering() {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buffer = [0; 1024];
            let _ = stream.read(&mut buffer).await;
            drop(stream);
        }
    });
    let outcome = probe(&http_target(
        HealthCheckType::Http,
        port,
        HttpCheckSpec::default(),
    ))
    .await;
    assert!(!outcome.success);
    let message = outcome.message.unwrap();
    assert!(message.starts_with("HTTP: "), "{message}");
}

#[tokio::test]
async fn http_times_out_when_the_server_never_answers() {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            held.push(stream);
        }
    });
    let started = Instant::now();
    let outcome = probe(&http_target(
        HealthCheckType::Http,
        port,
        HttpCheckSpec::default(),
    ))
    .await;
    let elapsed = started.elapsed();
    assert_failed(&outcome, "timed out after 1s");
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
    assert!(outcome.latency >= Duration::from_secs(1));
}

// HTTPS

#[tokio::test]
async fn https_passes_with_a_self_signed_certificate_when_not_verifying() {
    let (port, seen) = https_server(ok_at_root).await;
    let outcome = probe(&http_target(
        HealthCheckType::Https,
        port,
        HttpCheckSpec::default(),
    ))
    .await;
    assert!(outcome.success, "{outcome:?}");
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].sni, None, "no SNI when probing by address");
    assert_eq!(
        requests[0].header("host"),
        Some(format!("127.0.0.1:{port}").as_str())
    );
}

#[tokio::test]
async fn https_sends_the_http_host_as_sni() {
    let (port, seen) = https_server(ok_at_root).await;
    let http = HttpCheckSpec {
        host: Some("www.example.com".to_owned()),
        ..HttpCheckSpec::default()
    };
    let outcome = probe(&http_target(HealthCheckType::Https, port, http)).await;
    assert!(outcome.success, "{outcome:?}");
    let request = seen.lock().unwrap()[0].clone();
    assert_eq!(request.sni.as_deref(), Some("www.example.com"));
    assert_eq!(request.header("host"), Some("www.example.com"));
}

#[tokio::test]
async fn https_status_is_checked_too() {
    let (port, _) = https_server(unavailable).await;
    let outcome = probe(&http_target(
        HealthCheckType::Https,
        port,
        HttpCheckSpec::default(),
    ))
    .await;
    assert_failed(&outcome, "HTTP status 503, expected 200");
}

#[tokio::test]
async fn https_fails_on_a_self_signed_certificate_when_verifying() {
    let (port, seen) = https_server(ok_at_root).await;
    let http = HttpCheckSpec {
        host: Some("www.example.com".to_owned()),
        verify_certificate: true,
        ..HttpCheckSpec::default()
    };
    let outcome = probe(&http_target(HealthCheckType::Https, port, http)).await;
    assert!(!outcome.success);
    let message = outcome.message.unwrap();
    assert!(message.contains("certificate"), "{message}");
    assert!(
        seen.lock().unwrap().is_empty(),
        "no request after a failed handshake"
    );
}

#[tokio::test]
async fn https_against_a_plain_http_server_fails_in_the_handshake() {
    let (port, _) = http_server(ok_at_root).await;
    let outcome = probe(&http_target(
        HealthCheckType::Https,
        port,
        HttpCheckSpec::default(),
    ))
    .await;
    assert!(!outcome.success);
    let message = outcome.message.unwrap();
    assert!(message.starts_with("TLS handshake: "), "{message}");
}

// DNS

#[derive(Clone, Copy)]
enum Responder {
    /// Answer with this rcode.
    Answer(ResponseCode),
    /// First a datagram with the wrong id and one that is not DNS, then a NOERROR answer.
    WrongIdFirst,
    /// Never answer.
    Silent,
}

/// A UDP DNS server on 127.0.0.1; returns its port.
async fn dns_server(behaviour: Responder) -> u16 {
    dns_server_at(LOCALHOST, behaviour).await
}

/// `dns_server` on `at`.
async fn dns_server_at(at: IpAddr, behaviour: Responder) -> u16 {
    let socket = UdpSocket::bind((at, 0)).await.unwrap();
    let port = socket.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buffer = [0; 512];
        loop {
            let (length, peer) = socket.recv_from(&mut buffer).await.unwrap();
            let query = Message::from_vec(&buffer[..length]).unwrap();
            let reply = |id: u16, code: ResponseCode| {
                let mut response = Message::new();
                response
                    .set_id(id)
                    .set_message_type(MessageType::Response)
                    .set_op_code(query.op_code())
                    .set_recursion_desired(query.recursion_desired())
                    .set_response_code(code)
                    .add_queries(query.queries().to_vec());
                response.to_vec().unwrap()
            };
            let send = |bytes: Vec<u8>, peer: SocketAddr| {
                let socket = &socket;
                async move { socket.send_to(&bytes, peer).await.unwrap() }
            };
            match behaviour {
                Responder::Answer(code) => {
                    send(reply(query.id(), code), peer).await;
                }
                Responder::WrongIdFirst => {
                    send(reply(query.id().wrapping_add(1), ResponseCode::ServFail), peer).await;
                    send(b"not dns".to_vec(), peer).await;
                    send(reply(query.id(), ResponseCode::NoError), peer).await;
                }
                Responder::Silent => {}
            }
        }
    });
    port
}

fn dns_target(port: u16) -> ProbeTarget {
    let mut target = target(HealthCheckType::Dns, port);
    target.protocol = Protocol::Udp;
    target.check.dns = Some(DnsCheckSpec::default());
    target
}

#[tokio::test]
async fn dns_noerror_passes() {
    let port = dns_server(Responder::Answer(ResponseCode::NoError)).await;
    let outcome = probe(&dns_target(port)).await;
    assert!(outcome.success, "{outcome:?}");
}

#[tokio::test]
async fn dns_nxdomain_counts_as_alive() {
    let port = dns_server(Responder::Answer(ResponseCode::NXDomain)).await;
    let outcome = probe(&dns_target(port)).await;
    assert!(outcome.success, "{outcome:?}");
}

#[tokio::test]
async fn dns_servfail_fails() {
    let port = dns_server(Responder::Answer(ResponseCode::ServFail)).await;
    let outcome = probe(&dns_target(port)).await;
    assert_failed(&outcome, "DNS answer rcode SERVFAIL");
}

#[tokio::test]
async fn dns_ignores_datagrams_that_are_not_its_answer() {
    let port = dns_server(Responder::WrongIdFirst).await;
    let outcome = probe(&dns_target(port)).await;
    assert!(outcome.success, "{outcome:?}");
}

#[tokio::test]
async fn dns_silence_times_out() {
    let port = dns_server(Responder::Silent).await;
    let started = Instant::now();
    let outcome = probe(&dns_target(port)).await;
    assert_failed(&outcome, "timed out after 1s");
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn dns_closed_port_fails_fast() {
    let socket = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let port = socket.local_addr().unwrap().port();
    drop(socket);
    let outcome = probe(&dns_target(port)).await;
    assert_failed(
        &outcome,
        &format!("DNS query to 127.0.0.1:{port}: receive: connection refused"),
    );
}

#[tokio::test]
async fn the_query_name_and_type_come_from_the_check() {
    let socket = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let mut target = dns_target(port);
    target.check.dns = Some(DnsCheckSpec {
        query_name: "example.com".to_owned(),
        query_type: lvs_api::DnsQueryType::Aaaa,
    });
    let probing = tokio::spawn(async move { probe(&target).await });
    let mut buffer = [0; 512];
    let (length, _) = socket.recv_from(&mut buffer).await.unwrap();
    let query = Message::from_vec(&buffer[..length]).unwrap();
    let question = query.query().unwrap();
    assert_eq!(question.name().to_ascii().trim_end_matches('.'), "example.com");
    assert_eq!(question.query_type(), hickory_proto::rr::RecordType::AAAA);
    assert!(query.recursion_desired());
    assert!(!probing.await.unwrap().success);
}

#[tokio::test]
async fn every_probe_type_works_over_ipv6() {
    let at = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
    let on_v6 = |mut target: ProbeTarget| {
        target.address = at;
        target
    };
    let listener = TcpListener::bind((at, 0)).await.unwrap();
    let tcp = probe(&on_v6(target(
        HealthCheckType::Tcp,
        listener.local_addr().unwrap().port(),
    )))
    .await;
    assert!(tcp.success, "TCP: {tcp:?}");

    let (port, seen) = http_server_at(at, ok_at_root).await;
    let http = probe(&on_v6(http_target(
        HealthCheckType::Http,
        port,
        HttpCheckSpec::default(),
    )))
    .await;
    assert!(http.success, "HTTP: {http:?}");
    assert_eq!(
        seen.lock().unwrap()[0].header("host"),
        Some(format!("[::1]:{port}").as_str()),
        "an IPv6 literal in Host is bracketed"
    );

    let (port, _) = https_server_at(at, ok_at_root).await;
    let https = probe(&on_v6(http_target(
        HealthCheckType::Https,
        port,
        HttpCheckSpec::default(),
    )))
    .await;
    assert!(https.success, "HTTPS: {https:?}");

    let port = dns_server_at(at, Responder::Answer(ResponseCode::NoError)).await;
    let dns = probe(&on_v6(dns_target(port))).await;
    assert!(dns.success, "DNS: {dns:?}");
}
