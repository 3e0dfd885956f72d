//! What failed in a pass, and for which object: operations are traced back to the
//! VirtualServer, real-server VIP or node-wide setting they were done for, so each object's
//! status shows its own failures only.

use std::collections::BTreeMap;
use std::net::IpAddr;

use lvs_api::conditions::reasons;
use lvs_dataplane::model::ServiceKey;
use lvs_dataplane::{DataplaneError, Op};

use super::scope::Part;
use crate::node_config::Intent;

/// The object a failure is reported on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailedObject {
    /// A VirtualServer (`namespace/name`): its IPVS service or its director VIP.
    VirtualServer(String),
    /// A VIP this node accepts as a real server.
    RealServerVip(IpAddr),
    /// Node-wide state: devices, sysctls, nftables, sync daemons.
    Node,
    /// The manifests could not be read (standalone mode).
    Manifests,
}

impl std::fmt::Display for FailedObject {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::VirtualServer(name) => formatter.write_str(name),
            Self::RealServerVip(address) => write!(formatter, "vip/{address}"),
            Self::Node => formatter.write_str("node"),
            Self::Manifests => formatter.write_str("manifests"),
        }
    }
}

/// One failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The object it is reported on.
    pub object: FailedObject,
    /// What went wrong.
    pub message: String,
    /// The condition reason, when the failure has one of its own (`ForeignService`); `None`
    /// reads as KernelError.
    pub reason: Option<&'static str>,
    /// The VIP the failed operation was for, when it was for one: a dual-stack VirtualServer
    /// has a service and an election per VIP, and a failure of one VIP's service must not make
    /// this director ineligible for the other VIP.
    pub vip: Option<IpAddr>,
}

impl Failure {
    /// The failure of a kernel operation for `vip` (if any), with the reason its kind has.
    pub fn of(object: FailedObject, vip: Option<IpAddr>, error: &DataplaneError) -> Self {
        let reason = match error {
            DataplaneError::ForeignService { .. } => Some(reasons::FOREIGN_SERVICE),
            _ => None,
        };
        Self {
            object,
            message: error.to_string(),
            reason,
            vip,
        }
    }

    /// Whether this failure concerns `address`'s service of a VirtualServer: it was for that
    /// VIP, or for none in particular.
    pub fn concerns_vip(&self, address: Option<IpAddr>) -> bool {
        self.vip.is_none() || address.is_none() || self.vip == address
    }
}

/// A failure with the part of the kernel state it was in: a pass that did not look at that
/// part carries it forward.
#[derive(Debug, Clone)]
pub(super) struct ScopedFailure {
    pub part: Part,
    pub failure: Failure,
}

/// Which object each operation works for.
pub(super) struct Owners {
    pub services: BTreeMap<ServiceKey, String>,
    director_vips: BTreeMap<IpAddr, String>,
}

impl Owners {
    pub fn of(intent: &Intent) -> Self {
        let mut services = BTreeMap::new();
        let mut director_vips = BTreeMap::new();
        for service in &intent.config.director_services {
            if let Some(key) = crate::desired::service_key(service) {
                services.insert(key, service.virtual_server.clone());
            }
            if let Some(address) = service.address {
                director_vips.insert(address, service.virtual_server.clone());
            }
        }
        Self {
            services,
            director_vips,
        }
    }

    /// The VIP an operation was for: its service's address, or the address it adds, removes or
    /// announces; none for a fwmark service or a node-wide operation.
    pub fn vip_of(op: &Op) -> Option<IpAddr> {
        let of_key = |key: &ServiceKey| match key {
            ServiceKey::Address { address, .. } => Some(*address),
            ServiceKey::Fwmark { .. } => None,
        };
        match op {
            Op::AddService(item) | Op::UpdateService(item) => of_key(&item.key),
            Op::DeleteService(key)
            | Op::AddDestination(key, _)
            | Op::UpdateDestination(key, _)
            | Op::DeleteDestination(key, ..) => of_key(key),
            Op::AddAddress(vip) | Op::DeleteAddress(vip) => Some(vip.address),
            Op::Announce { address, .. } => Some(*address),
            _ => None,
        }
    }

    pub fn object_of(&self, op: &Op) -> FailedObject {
        let service = |key| self.services.get(key).cloned().map(FailedObject::VirtualServer);
        let address = |address: &IpAddr| {
            self.director_vips
                .get(address)
                .cloned()
                .map_or(FailedObject::RealServerVip(*address), FailedObject::VirtualServer)
        };
        match op {
            Op::AddService(item) | Op::UpdateService(item) => service(&item.key),
            Op::DeleteService(key) | Op::AddDestination(key, _) | Op::UpdateDestination(key, _) => {
                service(key)
            }
            Op::DeleteDestination(key, ..) => service(key),
            Op::AddAddress(vip) | Op::DeleteAddress(vip) => Some(address(&vip.address)),
            Op::Announce { address: vip, .. } => Some(address(vip)),
            _ => None,
        }
        .unwrap_or(FailedObject::Node)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use lvs_dataplane::DataplaneError;
    use lvs_dataplane::dataplane::{Object, Operation};
    use lvs_dataplane::model::{Protocol, VipAddress};

    #[test]
    fn a_failure_is_tied_to_the_vip_its_operation_was_for() {
        let v4: IpAddr = "192.0.2.10".parse().unwrap();
        let v6: IpAddr = "2001:db8::10".parse().unwrap();
        let key = ServiceKey::Address {
            address: v6,
            port: 80,
            protocol: Protocol::Tcp,
        };
        assert_eq!(Owners::vip_of(&Op::DeleteService(key)), Some(v6));
        let vip = VipAddress {
            address: v4,
            device: "lvs0".into(),
        };
        assert_eq!(Owners::vip_of(&Op::AddAddress(vip)), Some(v4));

        let error = DataplaneError::reason(Operation::Create, Object::Other("x".into()), "EBUSY");
        let failure = Failure::of(FailedObject::VirtualServer("ns/web".into()), Some(v6), &error);
        assert!(failure.concerns_vip(Some(v6)));
        assert!(
            !failure.concerns_vip(Some(v4)),
            "the other family's service is not concerned"
        );
        let anywhere = Failure::of(FailedObject::VirtualServer("ns/web".into()), None, &error);
        assert!(
            anywhere.concerns_vip(Some(v4)),
            "a failure for no VIP in particular concerns all"
        );
    }
}
