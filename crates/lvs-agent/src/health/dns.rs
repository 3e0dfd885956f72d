//! DNS checks: one query over UDP (default `. NS`, recursion desired). The server is alive when a
//! well-formed response with our id arrives with rcode NOERROR or NXDOMAIN — NXDOMAIN is a
//! correct answer about the name, not a sign of a broken server; SERVFAIL, REFUSED and the rest
//! fail the check. Datagrams that are not our answer are ignored until the timeout.

use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use lvs_api::{DnsCheckSpec, DnsQueryType};
use tokio::net::UdpSocket;

use super::probe::{ProbeError, ProbeTarget, describe};

/// Largest answer read; plain DNS over UDP stays within 512 bytes, EDNS within 4096.
const MAX_ANSWER: usize = 4096;

/// Checks `target` with one DNS query.
pub(super) async fn probe(target: &ProbeTarget) -> Result<(), ProbeError> {
    let address = target.socket_address();
    let default_spec;
    let spec = match &target.check.dns {
        Some(spec) => spec,
        None => {
            default_spec = DnsCheckSpec::default();
            &default_spec
        }
    };
    let id = random_id();
    let query = query(spec, id)?;
    let io_error = |action: &str, error: std::io::Error| ProbeError::Dns {
        address,
        reason: format!("{action}: {}", describe(&error)),
    };
    let local: SocketAddr = match address.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|error| io_error("bind", error))?;
    // Connected, so the kernel drops datagrams from other peers and reports ICMP errors.
    socket
        .connect(address)
        .await
        .map_err(|error| io_error("connect", error))?;
    socket
        .send(&query)
        .await
        .map_err(|error| io_error("send", error))?;
    let mut buffer = vec![0; MAX_ANSWER];
    loop {
        let length = socket
            .recv(&mut buffer)
            .await
            .map_err(|error| io_error("receive", error))?;
        let Some(answer) = buffer.get(..length) else {
            continue;
        };
        let Ok(message) = Message::from_vec(answer) else {
            continue;
        };
        if message.id() != id || message.message_type() != MessageType::Response {
            continue;
        }
        return match message.response_code() {
            ResponseCode::NoError | ResponseCode::NXDomain => Ok(()),
            code => Err(ProbeError::Rcode(rcode_name(code))),
        };
    }
}

fn query(spec: &DnsCheckSpec, id: u16) -> Result<Vec<u8>, ProbeError> {
    let invalid = |reason: String| ProbeError::QueryName {
        name: spec.query_name.clone(),
        reason,
    };
    let name = Name::from_ascii(&spec.query_name).map_err(|error| invalid(describe(&error)))?;
    let record_type = match spec.query_type {
        DnsQueryType::A => RecordType::A,
        DnsQueryType::Aaaa => RecordType::AAAA,
        DnsQueryType::Ns => RecordType::NS,
        DnsQueryType::Soa => RecordType::SOA,
    };
    let mut message = Message::new();
    message
        .set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(name, record_type));
    message.to_vec().map_err(|error| invalid(describe(&error)))
}

/// A query id that differs from call to call. Not cryptographic: it only tells our answer from
/// stray datagrams.
fn random_id() -> u16 {
    let hash = RandomState::new().hash_one(Instant::now());
    (hash & 0xffff) as u16
}

/// The rcode's mnemonic, as dig prints it.
fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".to_owned(),
        ResponseCode::FormErr => "FORMERR".to_owned(),
        ResponseCode::ServFail => "SERVFAIL".to_owned(),
        ResponseCode::NXDomain => "NXDOMAIN".to_owned(),
        ResponseCode::NotImp => "NOTIMP".to_owned(),
        ResponseCode::Refused => "REFUSED".to_owned(),
        ResponseCode::YXDomain => "YXDOMAIN".to_owned(),
        ResponseCode::YXRRSet => "YXRRSET".to_owned(),
        ResponseCode::NXRRSet => "NXRRSET".to_owned(),
        ResponseCode::NotAuth => "NOTAUTH".to_owned(),
        ResponseCode::NotZone => "NOTZONE".to_owned(),
        other => u16::from(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn query_asks_for_the_root_name_servers_by_default() {
        let bytes = query(&DnsCheckSpec::default(), 0x1234).unwrap();
        let message = Message::from_vec(&bytes).unwrap();
        assert_eq!(message.id(), 0x1234);
        assert!(message.recursion_desired());
        let question = message.query().unwrap();
        assert_eq!(question.name(), &Name::root());
        assert_eq!(question.query_type(), RecordType::NS);
    }

    #[test]
    fn invalid_names_are_reported() {
        let spec = DnsCheckSpec {
            query_name: "a..b".to_owned(),
            query_type: DnsQueryType::A,
        };
        let error = query(&spec, 1).map_err(|error| error.to_string());
        assert!(error.is_err_and(|message| message.starts_with("invalid DNS query name \"a..b\"")));
    }

    #[test]
    fn rcodes_read_like_dig() {
        assert_eq!(rcode_name(ResponseCode::ServFail), "SERVFAIL");
        assert_eq!(rcode_name(ResponseCode::Unknown(23)), "23");
    }
}
