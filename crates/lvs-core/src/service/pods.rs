//! Real servers straight at the pods (NAT, Tunnel): the ready endpoints' own addresses from the
//! EndpointSlices, each on its slice's port for the Service port, on no node.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use lvs_api::{AddressFamily, ForwardingMethod};

use super::derive::{PortKey, Target, family_of, ready};

/// The targets of one Service port: every ready endpoint address of one of `families` (each
/// once, on the lowest port listed for it), on the port its slice gives the Service port's name.
/// Tunnel cannot change ports: endpoints on another port than the Service port are left out,
/// with a problem per such port.
pub(super) fn pod_targets(
    slices: &[&EndpointSlice],
    port: &PortKey,
    families: &[AddressFamily],
    method: ForwardingMethod,
) -> (Vec<Target>, Vec<String>) {
    let mut found: BTreeMap<IpAddr, u16> = BTreeMap::new();
    for slice in slices {
        let Some(number) = slice_port(slice, port) else {
            continue;
        };
        for endpoint in slice.endpoints.iter().filter(|endpoint| ready(endpoint)) {
            for address in &endpoint.addresses {
                let Ok(address) = address.parse::<IpAddr>() else {
                    continue;
                };
                if families.contains(&family_of(address)) {
                    let known = found.entry(address).or_insert(number);
                    *known = (*known).min(number);
                }
            }
        }
    }
    let mut refused = BTreeSet::new();
    let targets = found
        .into_iter()
        .filter(|(_, number)| {
            let remapped = method == ForwardingMethod::Tunnel && *number != port.number;
            if remapped {
                refused.insert(*number);
            }
            !remapped
        })
        .map(|(address, number)| Target {
            address,
            port: number,
            node: None,
            part: name_part(address),
        })
        .collect();
    let problems = refused
        .into_iter()
        .map(|number| {
            format!(
                "Tunnel cannot change ports, so the endpoints on port {number} are left out (the Service port is {}); use NAT, or a targetPort equal to the port",
                port.number
            )
        })
        .collect();
    (targets, problems)
}

/// The port a slice lists under the Service port's name and protocol, if it lists one.
fn slice_port(slice: &EndpointSlice, port: &PortKey) -> Option<u16> {
    slice
        .ports
        .iter()
        .flatten()
        .find(|listed| {
            listed.name.as_deref().unwrap_or_default() == port.name
                && listed.protocol.as_deref().unwrap_or("TCP") == port.protocol.as_str()
        })
        .and_then(|listed| listed.port)
        .and_then(|number| u16::try_from(number).ok())
        .filter(|number| *number > 0)
}

/// An address as part of an object name: its groups joined by `-`, an IPv6 address's all eight
/// in hex without compression (so no two addresses share a part, and it ends in a hex digit even
/// for an address ending in `::`).
fn name_part(address: IpAddr) -> String {
    match address {
        IpAddr::V4(address) => address.to_string().replace('.', "-"),
        IpAddr::V6(address) => {
            let groups: Vec<String> = address
                .segments()
                .iter()
                .map(|group| format!("{group:x}"))
                .collect();
            groups.join("-")
        }
    }
}
