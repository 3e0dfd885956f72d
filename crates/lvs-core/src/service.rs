//! `type: LoadBalancer` Services of our class → generated VirtualServers and RealServers, which
//! then go through the same build as user-made ones: one VirtualServer per Service port (all on
//! the Service's VIP), one RealServer per eligible node and port, direct routing to the nodes'
//! InternalIPs where kube-proxy hands the packets to the pods — or, with the forwarding
//! annotation, NAT or Tunnel straight to the ready pods.

mod derive;
mod options;
mod pods;
#[cfg(test)]
mod tests;
mod values;

use k8s_openapi::api::core::v1::Service;
use lvs_api::labels::{LOAD_BALANCER_CLASS, SERVICE_NAME};

pub use derive::{Derivation, Derived, derive};
pub use options::{OptionError, ServiceOptions};

/// Which Services are ours, as the admin configured the controller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceClass {
    /// Whether LoadBalancer Services without `spec.loadBalancerClass` are ours too (default
    /// false: only those naming `lvs.operator.io/ipvs`).
    pub default_class: bool,
}

impl ServiceClass {
    /// Whether `service` is a LoadBalancer Service this controller serves.
    pub fn is_ours(self, service: &Service) -> bool {
        let Some(spec) = &service.spec else {
            return false;
        };
        if spec.type_.as_deref() != Some("LoadBalancer") {
            return false;
        }
        match spec.load_balancer_class.as_deref() {
            Some(class) => class == LOAD_BALANCER_CLASS,
            None => self.default_class,
        }
    }
}

/// Whether an object carries the label of objects generated from a Service (user-made ones
/// carrying it are dropped: they could otherwise join a Service's VIP).
pub fn is_generated_label(labels: Option<&std::collections::BTreeMap<String, String>>) -> bool {
    labels.is_some_and(|labels| labels.contains_key(SERVICE_NAME))
}
