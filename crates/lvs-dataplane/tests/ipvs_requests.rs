//! The requests we send (what each carries, how each names itself in errors), the errors for
//! kernel replies we cannot represent, and the error helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lvs_dataplane::ipvs::convert::{
    daemon_from_attributes, destination_attributes, destination_from_attributes, info_from_attributes,
    service_attributes, service_from_attributes,
};
use lvs_dataplane::ipvs::{
    DaemonState, DestinationAttribute, InetAddress, IpvsAttribute, IpvsCommand, IpvsError, IpvsMessage,
    IpvsRequest, ServiceAttribute, netmask_for_prefix, prefix_for_netmask,
};
use lvs_dataplane::model::{
    AddressFamily, Destination, Forwarding, Persistence, Protocol, Service, ServiceFlags, ServiceKey,
};
use netlink_packet_core::{Emitable, ParseableParametrized};
use netlink_packet_generic::GenlHeader;

/// Emits a message and parses the bytes back.
fn through_bytes(message: &IpvsMessage) -> IpvsMessage {
    let mut bytes = vec![0; message.buffer_len()];
    message.emit(&mut bytes);
    IpvsMessage::parse_with_param(
        bytes.as_slice(),
        GenlHeader {
            cmd: message.cmd.into(),
            version: 1,
        },
    )
    .unwrap()
}

fn address_key(address: &str, port: u16, protocol: Protocol) -> ServiceKey {
    ServiceKey::Address {
        address: address.parse().unwrap(),
        port,
        protocol,
    }
}

fn service(key: ServiceKey, scheduler: &str) -> Service {
    Service {
        key,
        scheduler: scheduler.into(),
        flags: ServiceFlags::default(),
        persistence: None,
    }
}

fn destination(address: &str, forwarding: Forwarding) -> Destination {
    Destination {
        address: address.parse().unwrap(),
        port: 8080,
        weight: 3,
        forwarding,
        upper_threshold: 0,
        lower_threshold: 0,
    }
}

/// Every destination command carries the service key; a GET_DEST dump needs it too.
#[test]
fn requests_carry_what_the_kernel_needs() {
    let key = address_key("192.0.2.1", 80, Protocol::Tcp);
    let destination = destination("10.1.0.2", Forwarding::DirectRouting);
    let requests = [
        IpvsRequest::NewDestination {
            service: key,
            destination: destination.clone(),
        },
        IpvsRequest::SetDestination {
            service: key,
            destination: destination.clone(),
        },
        IpvsRequest::DeleteDestination {
            service: key,
            address: destination.address,
            port: 8080,
        },
    ];
    for request in &requests {
        let message = request.message();
        assert!(
            matches!(&message.attributes[..], [IpvsAttribute::Service(service), IpvsAttribute::Destination(_)]
            if service.len() == 4),
            "{request}"
        );
        assert_eq!(through_bytes(&message), message);
    }
    let IpvsAttribute::Destination(delete) = &requests[2].message().attributes[1] else {
        panic!()
    };
    assert_eq!(
        delete.len(),
        3,
        "a delete sends only the destination's address, port and family"
    );
    assert!(matches!(
        &IpvsMessage::get_destinations(&key).attributes[..],
        [IpvsAttribute::Service(_)]
    ));
    assert!(IpvsMessage::get_services().attributes.is_empty());
    assert_eq!(IpvsMessage::zero(None).attributes, []);
    assert_eq!(
        IpvsMessage::delete_daemon(DaemonState::Master).cmd,
        IpvsCommand::DeleteDaemon
    );
    assert_eq!(
        IpvsRequest::DeleteService(key).message().cmd,
        IpvsCommand::DeleteService
    );
    assert_eq!(
        IpvsRequest::SetService(service(key, "rr")).scheduler(),
        Some("rr")
    );
}

#[test]
fn requests_describe_themselves() {
    let key = address_key("10.0.0.1", 80, Protocol::Tcp);
    let key6 = address_key("2001:db8::1", 53, Protocol::Udp);
    let cases = [
        (
            IpvsRequest::NewService(service(key, "rr")),
            "creating service TCP 10.0.0.1:80",
        ),
        (
            IpvsRequest::SetService(service(key6, "rr")),
            "editing service UDP [2001:db8::1]:53",
        ),
        (
            IpvsRequest::DeleteService(ServiceKey::Fwmark {
                family: AddressFamily::IPv4,
                mark: 7,
            }),
            "deleting service FWM 7",
        ),
        (
            IpvsRequest::NewDestination {
                service: key,
                destination: destination("10.1.0.2", Forwarding::Nat),
            },
            "adding destination 10.1.0.2:8080 to service TCP 10.0.0.1:80",
        ),
        (
            IpvsRequest::SetDestination {
                service: key6,
                destination: destination("2001:db8::2", Forwarding::Nat),
            },
            "editing destination [2001:db8::2]:8080 of service UDP [2001:db8::1]:53",
        ),
        (
            IpvsRequest::DeleteDestination {
                service: key,
                address: "10.1.0.3".parse().unwrap(),
                port: 80,
            },
            "deleting destination 10.1.0.3:80 of service TCP 10.0.0.1:80",
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(request.to_string(), expected);
    }
}

#[test]
fn replies_we_cannot_represent_are_errors() {
    let base = service_attributes(&Service {
        persistence: Some(Persistence {
            timeout: 1,
            prefix_length: 24,
        }),
        ..service(address_key("192.0.2.1", 80, Protocol::Tcp), "rr")
    });
    let replace = |kind: fn(&ServiceAttribute) -> bool, with: Option<ServiceAttribute>| {
        let mut attributes: Vec<_> = base
            .iter()
            .filter(|attribute| !kind(attribute))
            .cloned()
            .collect();
        attributes.extend(with);
        service_from_attributes(&attributes).unwrap_err().to_string()
    };
    let family = |attribute: &ServiceAttribute| matches!(attribute, ServiceAttribute::AddressFamily(_));
    let protocol = |attribute: &ServiceAttribute| matches!(attribute, ServiceAttribute::Protocol(_));
    let scheduler = |attribute: &ServiceAttribute| matches!(attribute, ServiceAttribute::SchedulerName(_));
    let netmask = |attribute: &ServiceAttribute| matches!(attribute, ServiceAttribute::Netmask(_));
    let address = |attribute: &ServiceAttribute| matches!(attribute, ServiceAttribute::Address(_));
    assert!(replace(family, None).contains("has no IPVS_SVC_ATTR_AF"));
    assert!(replace(family, Some(ServiceAttribute::AddressFamily(7))).contains("unknown address family 7"));
    assert!(replace(protocol, Some(ServiceAttribute::Protocol(1))).contains("unknown protocol 1"));
    assert!(replace(protocol, None).contains("neither a fwmark nor protocol"));
    assert!(replace(scheduler, None).contains("service TCP 192.0.2.1:80 has no IPVS_SVC_ATTR_SCHED_NAME"));
    assert!(replace(netmask, Some(ServiceAttribute::Netmask(0xff00_ff00))).contains("not a prefix"));
    assert!(
        replace(address, Some(ServiceAttribute::Address(InetAddress([1; 16])))).contains("non-zero bytes")
    );
    assert!(prefix_for_netmask(AddressFamily::IPv6, netmask_for_prefix(AddressFamily::IPv6, 129)).is_err());

    let destination = destination_attributes(&destination("10.1.0.2", Forwarding::Nat));
    let without = |drop: fn(&DestinationAttribute) -> bool, with: Vec<DestinationAttribute>| {
        let mut attributes: Vec<_> = destination
            .iter()
            .filter(|attribute| !drop(attribute))
            .cloned()
            .collect();
        attributes.extend(with);
        destination_from_attributes(&attributes, AddressFamily::IPv4)
            .unwrap_err()
            .to_string()
    };
    let method =
        |attribute: &DestinationAttribute| matches!(attribute, DestinationAttribute::ForwardingMethod(_));
    let weight = |attribute: &DestinationAttribute| matches!(attribute, DestinationAttribute::Weight(_));
    assert!(without(weight, vec![]).contains("destination 10.1.0.2 has no IPVS_DEST_ATTR_WEIGHT"));
    assert!(
        without(method, vec![DestinationAttribute::ForwardingMethod(4)])
            .contains("unknown forwarding method 4")
    );
    let tunnel = vec![
        DestinationAttribute::ForwardingMethod(2),
        DestinationAttribute::TunnelType(3),
    ];
    assert!(without(method, tunnel).contains("unknown tunnel type 3"));
    let flags = vec![
        DestinationAttribute::ForwardingMethod(2),
        DestinationAttribute::TunnelFlags(3),
    ];
    assert!(without(method, flags).contains("unsupported tunnel flags 0x3"));
    assert!(daemon_from_attributes(&[]).is_err());
    assert!(info_from_attributes(&[IpvsAttribute::Version(1)]).is_err());
}

#[test]
fn error_helpers_and_messages() {
    let exists = IpvsError::Kernel {
        context: "creating service TCP 10.0.0.1:80".into(),
        errno: 17,
    };
    assert!(exists.is_exists() && !exists.is_not_found());
    assert_eq!(exists.errno(), Some(17));
    assert!(
        exists
            .to_string()
            .starts_with("creating service TCP 10.0.0.1:80: File exists"),
        "{exists}"
    );
    for errno in [2, 3] {
        let missing = IpvsError::Kernel {
            context: "deleting service FWM 1".into(),
            errno,
        };
        assert!(missing.is_not_found() && !missing.is_exists());
    }
    let scheduler = IpvsError::SchedulerUnavailable {
        context: "creating service TCP 10.0.0.1:80".into(),
        scheduler: "twos".into(),
    };
    assert!(
        scheduler
            .to_string()
            .ends_with("scheduler twos not available in this kernel (module ip_vs_twos)")
    );
    assert!(scheduler.is_scheduler_unavailable() && !scheduler.is_not_found());
    assert_eq!(scheduler.errno(), Some(2));
    let module = IpvsError::ModuleNotLoaded {
        modprobe: "modprobe not found".into(),
    };
    assert!(
        module
            .to_string()
            .starts_with("the IPVS kernel module is not loaded")
    );
}

/// On a kernel without IPVS (this build host and CI), `IpvsHandle::new` says so plainly, after
/// trying `modprobe ip_vs` once. Where IPVS is loaded or loadable (the lab, a real director)
/// there is no missing module to report, and the test says so instead of loading it.
#[tokio::test]
async fn a_missing_module_is_a_clear_error() {
    let loadable = std::process::Command::new("modprobe")
        .args(["--dry-run", "ip_vs"])
        .output()
        .is_ok_and(|output| output.status.success());
    if std::path::Path::new("/proc/net/ip_vs").exists() || loadable {
        println!("this kernel has IPVS: nothing to check here");
        return;
    }
    let error = lvs_dataplane::ipvs::IpvsHandle::new().await.unwrap_err();
    println!("{error}");
    assert!(matches!(error, IpvsError::ModuleNotLoaded { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("the IPVS kernel module is not loaded (no generic netlink family IPVS")
    );
}

/// The handle's futures can cross threads (the agent's `Kernel` trait needs `Send` futures).
#[allow(dead_code)]
fn handle_futures_are_send(handle: &lvs_dataplane::ipvs::IpvsHandle, key: &ServiceKey, service: &Service) {
    fn send<T: Send>(_: T) {}
    send(handle.services());
    send(handle.service(key));
    send(handle.new_service(service));
    send(handle.destinations(key));
    send(handle.apply_all(Vec::new()));
    send(handle.daemons());
    send(handle.info());
    send(handle.set_timeouts(&lvs_dataplane::ipvs::Timeouts::default()));
}
