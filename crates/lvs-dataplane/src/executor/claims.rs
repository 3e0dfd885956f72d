//! What an apply may create, decided before the kernel is asked: each new IPVS service (and
//! each address outside `lvs0`) is looked up in the kernel and written down as an intent, and
//! becomes ours only once the kernel created it. One that exists already is foreign — refused,
//! never taken over — and the intents an agent left behind when it stopped halfway are settled
//! by what the kernel shows, so a crash never adopts.

use std::collections::{BTreeMap, BTreeSet};

use super::{DUMMY_DEVICE, Executor};
use crate::dataplane::DataplaneError;
use crate::kernel::Kernel;
use crate::model::{Service, ServiceKey, VipAddress};
use crate::ops::Op;
use crate::ownership::{Intents, Registry};

/// What one apply claims.
#[derive(Debug, Default)]
pub(super) struct Claims {
    /// Services this apply creates: absent from the kernel, intents written.
    pub services: BTreeSet<ServiceKey>,
    /// Addresses outside `lvs0` this apply adds: absent from the kernel, intents written.
    pub addresses: BTreeSet<VipAddress>,
    /// Services that exist and are not ours: their creates are refused without asking the kernel.
    pub foreign_services: BTreeSet<ServiceKey>,
    /// Addresses outside `lvs0` that exist and are not ours.
    pub foreign_addresses: BTreeSet<VipAddress>,
}

impl Claims {
    /// The services that are ours (per `ours`, the record after the claim) or that this apply
    /// is creating.
    pub fn services_of_ours(&self, ours: &Registry) -> BTreeSet<ServiceKey> {
        ours.services.union(&self.services).copied().collect()
    }
}

/// A create this apply claimed, and whether the kernel carried it out.
#[derive(Debug, Clone)]
pub(super) enum Settled {
    /// A service.
    Service(ServiceKey, bool),
    /// An address outside `lvs0`.
    Address(VipAddress, bool),
}

impl Settled {
    /// The claim an op's result settles, if the op was a claimed create.
    pub fn of(op: &Op, created: bool, claims: &Claims) -> Option<Self> {
        match op {
            Op::AddService(service) if claims.services.contains(&service.key) => {
                Some(Self::Service(service.key, created))
            }
            Op::AddAddress(vip) if claims.addresses.contains(vip) => {
                Some(Self::Address(vip.clone(), created))
            }
            _ => None,
        }
    }

    /// Drops the intent and, when the kernel created the object, records it as ours.
    pub fn apply_to(self, registry: &mut Registry) {
        match self {
            Self::Service(key, created) => {
                registry.intents.services.retain(|service| service.key != key);
                if created {
                    registry.services.insert(key);
                }
            }
            Self::Address(vip, created) => {
                registry.intents.addresses.remove(&vip);
                if created {
                    registry.addresses.insert(vip);
                }
            }
        }
    }
}

/// Whether a service's address is one of `addresses` (a fwmark service has none).
fn on_any(key: &ServiceKey, addresses: &[VipAddress]) -> bool {
    matches!(key, ServiceKey::Address { address, .. } if addresses.iter().any(|vip| vip.address == *address))
}

impl<K: Kernel> Executor<K> {
    /// Looks up in the kernel what `ops` create that is not ours in `ours` and records, in one
    /// save: an intent for each service and non-`lvs0` address that does not exist yet, the
    /// devices set up and the `lvs0` addresses added (ours by construction). A service that
    /// exists is foreign — except after a corrupt record was set aside, when one exactly as
    /// asked on an `lvs0` address is taken back as ours (the record that said so is lost).
    pub(super) async fn claim(&self, ops: &[Op], ours: &Registry) -> Result<Claims, DataplaneError> {
        let new_services: Vec<&Service> = ops
            .iter()
            .filter_map(|op| match op {
                Op::AddService(service) if !ours.services.contains(&service.key) => Some(service),
                _ => None,
            })
            .collect();
        let new_addresses: Vec<&VipAddress> = ops
            .iter()
            .filter_map(|op| match op {
                Op::AddAddress(vip) if vip.device != DUMMY_DEVICE && !ours.addresses.contains(vip) => {
                    Some(vip)
                }
                _ => None,
            })
            .collect();
        let mut claims = Claims::default();
        let mut taken_back = BTreeSet::new();
        if !new_services.is_empty() {
            let present = self.kernel_services().await?;
            let on_lvs0 = if self.recovered {
                let devices = BTreeSet::from([DUMMY_DEVICE.to_owned()]);
                self.kernel.addresses(&devices).await?
            } else {
                Vec::new()
            };
            for service in new_services {
                match present.get(&service.key) {
                    None => claims.services.insert(service.key),
                    Some(existing)
                        if self.recovered && existing == service && on_any(&service.key, &on_lvs0) =>
                    {
                        taken_back.insert(service.key)
                    }
                    Some(_) => claims.foreign_services.insert(service.key),
                };
            }
        }
        if !new_addresses.is_empty() {
            let devices = new_addresses.iter().map(|vip| vip.device.clone()).collect();
            let present: BTreeSet<VipAddress> = self.kernel.addresses(&devices).await?.into_iter().collect();
            for vip in new_addresses {
                if present.contains(vip) {
                    claims.foreign_addresses.insert(vip.clone());
                } else {
                    claims.addresses.insert(vip.clone());
                }
            }
        }
        self.record(|registry| {
            for op in ops {
                match op {
                    Op::AddService(service) if claims.services.contains(&service.key) => {
                        registry.intents.services.insert(service.clone());
                    }
                    Op::AddAddress(vip) if vip.device == DUMMY_DEVICE => {
                        registry.addresses.insert(vip.clone());
                    }
                    Op::AddAddress(vip) if claims.addresses.contains(vip) => {
                        registry.intents.addresses.insert(vip.clone());
                    }
                    Op::AddLink(link) => {
                        registry.links.insert(link.clone());
                    }
                    _ => {}
                }
            }
            registry.services.extend(taken_back);
        })?;
        Ok(claims)
    }

    /// Every IPVS service in the kernel, by key (ours or not).
    async fn kernel_services(&self) -> Result<BTreeMap<ServiceKey, Service>, DataplaneError> {
        Ok(self
            .kernel
            .services()
            .await?
            .into_iter()
            .map(|state| (state.service.key, state.service))
            .collect())
    }

    /// Settles the intents the record held when this executor started (an agent that stopped
    /// between an intent and the kernel's answer), once: each object was checked absent when
    /// its intent was written, so a service the kernel now has exactly as intended, or an
    /// address it has, is ours; anything else — absent, or a service that differs (someone
    /// else's, made in between) — is dropped and never adopted.
    pub(super) async fn settle_left_intents(&self) -> Result<(), DataplaneError> {
        let left = self
            .left_intents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let Some(left) = left else { return Ok(()) };
        let present = if left.services.is_empty() {
            BTreeMap::new()
        } else {
            self.kernel_services().await?
        };
        let devices: BTreeSet<String> = left.addresses.iter().map(|vip| vip.device.clone()).collect();
        let addresses: BTreeSet<VipAddress> = if devices.is_empty() {
            BTreeSet::new()
        } else {
            self.kernel.addresses(&devices).await?.into_iter().collect()
        };
        self.record(|registry| {
            for service in &left.services {
                let created = present.get(&service.key) == Some(service);
                if !created && present.contains_key(&service.key) {
                    tracing::warn!(
                        service = %service.key,
                        "an IPVS service lvs-operator meant to create differs from what it asked: someone else's, left alone"
                    );
                }
                Settled::Service(service.key, created).apply_to(registry);
            }
            for vip in &left.addresses {
                Settled::Address(vip.clone(), addresses.contains(vip)).apply_to(registry);
            }
        })?;
        *self
            .left_intents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        Ok(())
    }
}

/// The intents a record left, to settle at the first observe or apply (`None`: none).
pub(super) fn left_intents(registry: &Registry) -> Option<Intents> {
    (!registry.intents.is_empty()).then(|| registry.intents.clone())
}
