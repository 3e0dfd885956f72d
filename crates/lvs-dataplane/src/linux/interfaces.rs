//! Devices and VIP addresses over rtnetlink: our dummy device `lvs0`, tunnel fallback devices
//! (loaded with their module, then set up), host-route VIPs (/32, /128; IPv6 without DAD).
//! GUE receive ports use `ip fou` — the FOU generic-netlink family has no maintained crate.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags, CacheInfo};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};
use rtnetlink::{Handle, LinkDummy, LinkUnspec};

use crate::dataplane::{DataplaneError, Object, Operation};
use crate::model::{AddressFamily, Link, VipAddress};
use crate::ops::host_prefix;

/// Maps an rtnetlink error to ours, keeping the kernel's errno: EEXIST → Exists,
/// ENOENT/ENODEV/EADDRNOTAVAIL/ESRCH → NotFound, any other NACK → Refused.
pub fn map_error(operation: Operation, object: Object, error: rtnetlink::Error) -> DataplaneError {
    if let rtnetlink::Error::NetlinkError(message) = &error {
        let errno = message.code.map_or(0, |code| -code.get());
        return match errno {
            17 => DataplaneError::Exists { operation, object },
            2 | 3 | 19 | 99 => DataplaneError::NotFound {
                operation,
                object,
                errno: Some(errno),
            },
            _ => DataplaneError::Refused {
                operation,
                object,
                errno,
            },
        };
    }
    DataplaneError::reason(operation, object, error.to_string())
}

fn devices_object() -> Object {
    Object::Other("the network devices".into())
}

/// Device names by index, and whether each is up.
pub async fn devices(handle: &Handle) -> Result<BTreeMap<u32, (String, bool)>, DataplaneError> {
    let mut devices = BTreeMap::new();
    let mut stream = handle.link().get().execute();
    while let Some(message) = stream
        .try_next()
        .await
        .map_err(|error| map_error(Operation::Read, devices_object(), error))?
    {
        let name = message.attributes.iter().find_map(|attribute| match attribute {
            LinkAttribute::IfName(name) => Some(name.clone()),
            _ => None,
        });
        if let Some(name) = name {
            devices.insert(
                message.header.index,
                (name, message.header.flags.contains(LinkFlags::Up)),
            );
        }
    }
    Ok(devices)
}

/// The index of a device by name.
pub async fn index_of(handle: &Handle, name: &str) -> Result<u32, DataplaneError> {
    devices(handle)
        .await?
        .into_iter()
        .find(|(_, (device, _))| device == name)
        .map(|(index, _)| index)
        .ok_or_else(|| DataplaneError::NotFound {
            operation: Operation::Read,
            object: Object::Device(name.to_owned()),
            errno: None,
        })
}

/// The address of an address message: `IFA_LOCAL` when present (point-to-point), else
/// `IFA_ADDRESS`.
pub fn address_of(message: &netlink_packet_route::address::AddressMessage) -> Option<IpAddr> {
    let find = |local: bool| {
        message.attributes.iter().find_map(|attribute| match attribute {
            AddressAttribute::Local(address) if local => Some(*address),
            AddressAttribute::Address(address) if !local => Some(*address),
            _ => None,
        })
    };
    find(true).or_else(|| find(false))
}

/// Every address of the node: device name, prefix length, address.
async fn all_addresses(handle: &Handle) -> Result<Vec<(String, u8, IpAddr)>, DataplaneError> {
    let devices = devices(handle).await?;
    let mut found = Vec::new();
    let mut stream = handle.address().get().execute();
    while let Some(message) = stream.try_next().await.map_err(|error| {
        map_error(
            Operation::Read,
            Object::Other("the node's addresses".into()),
            error,
        )
    })? {
        if let (Some((device, _)), Some(address)) = (devices.get(&message.header.index), address_of(&message))
        {
            found.push((device.clone(), message.header.prefix_len, address));
        }
    }
    Ok(found)
}

/// Host-route addresses on the named devices.
pub async fn addresses(handle: &Handle, names: &BTreeSet<String>) -> Result<Vec<VipAddress>, DataplaneError> {
    Ok(all_addresses(handle)
        .await?
        .into_iter()
        .filter(|(device, prefix, address)| names.contains(device) && *prefix == host_prefix(address))
        .map(|(device, _, address)| VipAddress { address, device })
        .collect())
}

/// Adds a VIP as a host route. IPv6: without duplicate address detection, so it is usable at
/// once, and deprecated (preferred lifetime 0, valid forever), so the kernel never picks it as
/// the source of the node's own traffic — health checks and heartbeats keep the node's
/// address even when the VIP sits on the uplink; it still takes connections and answers
/// neighbour solicitation.
pub async fn add_address(handle: &Handle, vip: &VipAddress) -> Result<(), DataplaneError> {
    let object = Object::Address(vip.clone());
    let index = index_of(handle, &vip.device).await?;
    let mut request = handle
        .address()
        .add(index, vip.address, host_prefix(&vip.address));
    if vip.address.is_ipv6() {
        let message = request.message_mut();
        message.header.flags |= AddressHeaderFlags::Nodad;
        message
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
        let mut lifetimes = CacheInfo::default();
        lifetimes.ifa_preferred = 0;
        lifetimes.ifa_valid = u32::MAX;
        message.attributes.push(AddressAttribute::CacheInfo(lifetimes));
    }
    request
        .execute()
        .await
        .map_err(|error| map_error(Operation::Create, object, error))
}

/// Removes a VIP.
pub async fn delete_address(handle: &Handle, vip: &VipAddress) -> Result<(), DataplaneError> {
    let object = Object::Address(vip.clone());
    let not_found = |errno| DataplaneError::NotFound {
        operation: Operation::Delete,
        object: object.clone(),
        errno,
    };
    let Ok(index) = index_of(handle, &vip.device).await else {
        return Err(not_found(None));
    };
    let mut stream = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .set_address_filter(vip.address)
        .execute();
    let Some(message) = stream
        .try_next()
        .await
        .map_err(|error| map_error(Operation::Delete, object.clone(), error))?
    else {
        return Err(not_found(None));
    };
    handle
        .address()
        .del(message)
        .execute()
        .await
        .map_err(|error| map_error(Operation::Delete, object, error))
}

/// Whether a device exists and is up (GUE ports: whether `ip fou show` lists the port).
pub async fn link_present(handle: &Handle, link: &Link) -> Result<bool, DataplaneError> {
    match link {
        Link::Dummy { name } | Link::TunnelFallback { name, .. } => Ok(devices(handle)
            .await?
            .values()
            .any(|(device, up)| device == name && *up)),
        Link::GueReceivePort { port, family } => {
            let output = run_ip(
                Operation::Read,
                Object::GuePort(*port),
                &fou_family(*family, &["fou", "show"]),
            )
            .await?;
            Ok(output.lines().any(|line| {
                line.split_whitespace()
                    .collect::<Vec<_>>()
                    .windows(2)
                    .any(|pair| pair == ["port", &port.to_string()])
            }))
        }
    }
}

/// Creates our dummy device, or loads a tunnel module and sets its fallback device up, or adds
/// a GUE receive port.
pub async fn add_link(handle: &Handle, link: &Link) -> Result<(), DataplaneError> {
    match link {
        Link::Dummy { name } => {
            let created = handle
                .link()
                .add(LinkDummy::new(name).up().build())
                .execute()
                .await;
            match created.map_err(|error| map_error(Operation::Create, Object::Device(name.clone()), error)) {
                Ok(()) | Err(DataplaneError::Exists { .. }) => set_up(handle, name).await,
                Err(error) => Err(error),
            }
        }
        Link::TunnelFallback { name, module } => {
            modprobe(module).await?;
            set_up(handle, name).await
        }
        Link::GueReceivePort { port, family } => {
            modprobe("fou").await?;
            let object = Object::GuePort(*port);
            let port = port.to_string();
            run_ip(
                Operation::Create,
                object,
                &fou_family(*family, &["fou", "add", "port", &port, "gue"]),
            )
            .await
            .map(|_| ())
        }
    }
}

/// Deletes our dummy device or a GUE port (tunnel fallback devices belong to their module).
pub async fn delete_link(handle: &Handle, link: &Link) -> Result<(), DataplaneError> {
    match link {
        Link::Dummy { name } => {
            let index = index_of(handle, name).await?;
            handle
                .link()
                .del(index)
                .execute()
                .await
                .map_err(|error| map_error(Operation::Delete, Object::Device(name.clone()), error))
        }
        Link::TunnelFallback { .. } => Ok(()),
        Link::GueReceivePort { port, family } => {
            let object = Object::GuePort(*port);
            let port = port.to_string();
            run_ip(
                Operation::Delete,
                object,
                &fou_family(*family, &["fou", "del", "port", &port]),
            )
            .await
            .map(|_| ())
        }
    }
}

async fn set_up(handle: &Handle, name: &str) -> Result<(), DataplaneError> {
    let index = index_of(handle, name).await?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|error| map_error(Operation::SetUp, Object::Device(name.to_owned()), error))
}

/// The interfaces with a non-host address whose network contains `address` (the uplinks a VIP
/// is announced on by default), excluding `lo` and our dummy device.
pub async fn uplinks_for(handle: &Handle, address: IpAddr) -> Result<Vec<String>, DataplaneError> {
    let mut found = uplinks_of(handle, &BTreeSet::from([address])).await?;
    Ok(found.remove(&address).unwrap_or_default())
}

/// `uplinks_for` of several addresses, from one address dump.
pub async fn uplinks_of(
    handle: &Handle,
    addresses: &BTreeSet<IpAddr>,
) -> Result<BTreeMap<IpAddr, Vec<String>>, DataplaneError> {
    let networks = all_addresses(handle).await?;
    Ok(addresses
        .iter()
        .map(|&address| {
            let mut uplinks: Vec<String> = Vec::new();
            for (device, prefix, local) in &networks {
                let candidate = device != "lo" && device != crate::executor::DUMMY_DEVICE;
                if candidate
                    && *prefix < host_prefix(&address)
                    && contains(*local, *prefix, address)
                    && !uplinks.contains(device)
                {
                    uplinks.push(device.clone());
                }
            }
            (address, uplinks)
        })
        .collect())
}

/// Whether the device named `name` exists, is set up and has carrier.
pub async fn carries_traffic(handle: &Handle, name: &str) -> Result<bool, DataplaneError> {
    let mut stream = handle.link().get().match_name(name.to_owned()).execute();
    match stream.try_next().await {
        Ok(Some(message)) => Ok(is_operational(&message)),
        Ok(None) => Ok(false),
        Err(error) => match map_error(Operation::Read, Object::Device(name.to_owned()), error) {
            DataplaneError::NotFound { .. } => Ok(false),
            other => Err(other),
        },
    }
}

/// Whether a device is administratively up with its operational state up — or unknown, as
/// dummy devices (and drivers that do not report carrier) say.
pub fn is_operational(message: &LinkMessage) -> bool {
    let state = message.attributes.iter().find_map(|attribute| match attribute {
        LinkAttribute::OperState(state) => Some(*state),
        _ => None,
    });
    message.header.flags.contains(LinkFlags::Up) && matches!(state, None | Some(State::Up | State::Unknown))
}

/// Whether `network/prefix` contains `address`.
pub fn contains(network: IpAddr, prefix: u8, address: IpAddr) -> bool {
    match (network, address) {
        (IpAddr::V4(network), IpAddr::V4(address)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0);
            u32::from(network) & mask == u32::from(address) & mask
        }
        (IpAddr::V6(network), IpAddr::V6(address)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(network) & mask == u128::from(address) & mask
        }
        _ => false,
    }
}

fn fou_family<'a>(family: AddressFamily, arguments: &[&'a str]) -> Vec<&'a str> {
    let mut all = Vec::new();
    if family == AddressFamily::IPv6 {
        all.push("-6");
    }
    all.extend_from_slice(arguments);
    all
}

/// Runs `ip` with `arguments` for `operation` on `object`; its "File exists" and "No such …"
/// become Exists and NotFound (errno unknown: `ip` prints only the text).
async fn run_ip(operation: Operation, object: Object, arguments: &[&str]) -> Result<String, DataplaneError> {
    let command = format!("ip {}", arguments.join(" "));
    let output = tokio::process::Command::new("ip")
        .args(arguments)
        .output()
        .await
        .map_err(|error| DataplaneError::Failed {
            operation,
            object: object.clone(),
            reason: format!("{command}: {error}"),
            errno: error.raw_os_error(),
        })?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let message = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if message.contains("File exists") {
        return Err(DataplaneError::Exists { operation, object });
    }
    if message.contains("No such") {
        return Err(DataplaneError::NotFound {
            operation,
            object,
            errno: None,
        });
    }
    Err(DataplaneError::reason(
        operation,
        object,
        format!("{command}: {message}"),
    ))
}

/// Loads a kernel module (a no-op when it is built in or loaded).
pub async fn modprobe(module: &str) -> Result<(), DataplaneError> {
    let output = tokio::process::Command::new("modprobe")
        .arg(module)
        .output()
        .await;
    match output {
        Ok(output) if output.status.success() => Ok(()),
        // Without modprobe (or in a container without /lib/modules) the module may still be
        // loaded already; the operation that needs it reports the real error.
        Ok(_) | Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(up: bool, state: Option<State>) -> LinkMessage {
        let mut message = LinkMessage::default();
        if up {
            message.header.flags |= LinkFlags::Up;
        }
        message.attributes.push(LinkAttribute::IfName("eth0".into()));
        message.attributes.extend(state.map(LinkAttribute::OperState));
        message
    }

    #[test]
    fn a_device_carries_traffic_when_set_up_with_carrier() {
        assert!(is_operational(&link(true, Some(State::Up))), "a veth with a peer");
        assert!(
            is_operational(&link(true, Some(State::Unknown))),
            "a dummy device"
        );
        assert!(!is_operational(&link(true, Some(State::Down))), "no carrier");
        assert!(!is_operational(&link(true, Some(State::LowerLayerDown))));
        assert!(!is_operational(&link(true, Some(State::Dormant))));
        assert!(!is_operational(&link(false, Some(State::Unknown))), "set down");
        assert!(!is_operational(&link(false, None)));
    }

    fn nack(errno: i32) -> rtnetlink::Error {
        let mut message = netlink_packet_core::ErrorMessage::default();
        message.code = std::num::NonZeroI32::new(-errno);
        rtnetlink::Error::NetlinkError(message)
    }

    #[test]
    fn a_kernel_refusal_keeps_its_errno_operation_and_object() {
        let vip = VipAddress {
            address: "10.0.0.1".parse().unwrap(),
            device: "lvs0".into(),
        };
        let error = map_error(Operation::Create, Object::Address(vip.clone()), nack(1));
        assert_eq!(
            error,
            DataplaneError::Refused {
                operation: Operation::Create,
                object: Object::Address(vip.clone()),
                errno: 1
            }
        );
        assert_eq!(error.errno(), Some(1), "EPERM");
        assert_eq!(
            error.to_string(),
            "creating address 10.0.0.1 on lvs0: refused by the kernel: Operation not permitted (os error 1)"
        );

        let exists = map_error(Operation::Create, Object::Address(vip), nack(17));
        assert!(matches!(exists, DataplaneError::Exists { .. }), "{exists:?}");
        assert_eq!(exists.errno(), Some(17));
        let gone = map_error(Operation::Delete, Object::Device("lvs0".into()), nack(19));
        assert_eq!(
            gone,
            DataplaneError::NotFound {
                operation: Operation::Delete,
                object: Object::Device("lvs0".into()),
                errno: Some(19)
            },
            "ENODEV"
        );
        assert_eq!(gone.to_string(), "deleting device lvs0: not found");
    }

    #[test]
    fn network_containment() {
        let ip = |text: &str| text.parse().unwrap();
        assert!(contains(ip("10.100.0.2"), 24, ip("10.100.0.100")));
        assert!(!contains(ip("10.100.0.2"), 24, ip("10.100.1.100")));
        assert!(contains(ip("fd00:100::2"), 64, ip("fd00:100::100")));
        assert!(!contains(ip("fd00:100::2"), 64, ip("10.100.0.100")));
        assert!(contains(ip("0.0.0.0"), 0, ip("192.0.2.1")));
    }
}
