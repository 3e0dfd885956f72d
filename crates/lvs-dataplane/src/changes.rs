//! Change notifications: what a dataplane watches in the kernel for drift — our devices, the
//! VIP addresses we hold, our nftables tables — derived from the ownership record, and the
//! counter a run loop waits on. IPVS and sysctls have no kernel notifications; their drift is
//! found by reading them (see `Dataplane::changes`).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use crate::executor::DUMMY_DEVICE;
use crate::model::Link;
use crate::ownership::Registry;

/// How long a burst of kernel events is collected before the counter is bumped once (a
/// deleted device takes its addresses with it; an nftables transaction is many messages).
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// The kernel objects whose changes matter: what we own, so unrelated churn on the node (pods'
/// veths coming and going, other programs' addresses and tables) causes no pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    /// Devices we created or set up: `lvs0` always (every host address on it is ours), and
    /// tunnel fallback devices we set up.
    pub devices: BTreeSet<String>,
    /// Addresses we hold, on any device.
    pub addresses: BTreeSet<IpAddr>,
}

impl Default for Watched {
    fn default() -> Self {
        Self {
            devices: BTreeSet::from([DUMMY_DEVICE.to_owned()]),
            addresses: BTreeSet::new(),
        }
    }
}

impl Watched {
    /// What the ownership record says is ours.
    pub fn of(registry: &Registry) -> Self {
        let mut watched = Self::default();
        for link in &registry.links {
            match link {
                Link::Dummy { name } | Link::TunnelFallback { name, .. } => {
                    watched.devices.insert(name.clone());
                }
                // `ip fou` ports have no rtnetlink notifications.
                Link::GueReceivePort { .. } => {}
            }
        }
        watched
            .addresses
            .extend(registry.addresses.iter().map(|vip| vip.address));
        watched
    }

    /// Whether a host address (/32, /128) on `device` (`None`: not known) is ours: one we hold,
    /// or any on our dummy device.
    pub fn holds_address(&self, address: IpAddr, device: Option<&str>) -> bool {
        self.addresses.contains(&address) || device == Some(DUMMY_DEVICE)
    }

    /// Whether a device is one we created or set up.
    pub fn holds_device(&self, name: &str) -> bool {
        self.devices.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::VipAddress;

    #[test]
    fn the_record_names_what_is_watched() {
        let registry = Registry {
            addresses: BTreeSet::from([VipAddress {
                address: "10.0.0.100".parse().unwrap(),
                device: "lo".into(),
            }]),
            links: BTreeSet::from([
                Link::TunnelFallback {
                    name: "tunl0".into(),
                    module: "ipip".into(),
                },
                Link::GueReceivePort {
                    port: 5555,
                    family: crate::model::AddressFamily::IPv4,
                },
            ]),
            ..Registry::default()
        };
        let watched = Watched::of(&registry);
        assert_eq!(
            watched.devices,
            BTreeSet::from(["lvs0".to_owned(), "tunl0".to_owned()])
        );
        assert!(watched.holds_address(IpAddr::from([10, 0, 0, 100]), None));
        assert!(watched.holds_address(IpAddr::from([10, 0, 0, 7]), Some("lvs0")));
        assert!(!watched.holds_address(IpAddr::from([10, 0, 0, 7]), Some("eth0")));
        assert!(watched.holds_device("tunl0") && !watched.holds_device("eth0"));
    }
}
