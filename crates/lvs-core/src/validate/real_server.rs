//! RealServer validation.

use lvs_api::RealServer;

use super::{ValidRealServer, bounds, fields};
use crate::object::{Kind, key_of};
use crate::problem::{Problem, ProblemSink};

/// Validates one RealServer.
pub fn real_server(object: &RealServer) -> Result<ValidRealServer, Vec<Problem>> {
    let key = key_of(Kind::RealServer, &object.metadata);
    let mut sink = ProblemSink::new(&key);
    fields::object_key(&mut sink, &key);
    let spec = &object.spec;
    let address = fields::unicast_address(&mut sink, "spec.address", &spec.address);
    let port = spec
        .port
        .and_then(|port| fields::port(&mut sink, "spec.port", port));
    if let Some(node) = &spec.node {
        fields::dns_subdomain(&mut sink, "spec.node", node);
    }
    if let Some(thresholds) = &spec.thresholds {
        fields::thresholds(&mut sink, "spec.thresholds", thresholds);
    }
    bounds::real_server_spec(&mut sink, spec);
    match address {
        Some(address) if !sink.has_errors() => Ok(ValidRealServer {
            labels: object.metadata.labels.clone().unwrap_or_default(),
            address,
            port,
            weight: spec.weight,
            node: spec.node.clone(),
            state: spec.state,
            thresholds: spec.thresholds,
            key,
        }),
        _ => Err(sink.problems),
    }
}
