//! IPv6 forwarding without losing the default route: with `net.ipv6.conf.all.forwarding=1`
//! (IPv6 NAT directors: the real servers' replies are forwarded, and Linux forwards IPv6 only
//! when `all.forwarding` is on) every interface becomes a router and ignores router
//! advertisements unless its `accept_ra` is 2, so a director configured by SLAAC loses its
//! default route when the route's lifetime runs out. Before turning forwarding on, the executor
//! sets `accept_ra=2` on every interface (and `default`, which new interfaces copy) whose
//! `accept_ra` is 1 — those that accept advertisements now; 0 (an administrator's "no") is
//! left alone — and records each original value (write-ahead, beside the sysctl originals);
//! when forwarding is restored they are restored with it. They are not desired state of their
//! own: the forwarding sysctl owns them.

use super::Executor;
use crate::dataplane::DataplaneError;
use crate::kernel::Kernel;

/// The sysctl that turns IPv6 forwarding on for every interface.
pub const IPV6_FORWARDING: &str = "net/ipv6/conf/all/forwarding";

/// Where the per-interface IPv6 settings live.
const IPV6_CONF: &str = "net/ipv6/conf";

/// Whether writing `value` to `name` turns IPv6 forwarding on.
pub fn turns_ipv6_forwarding_on(name: &str, value: &str) -> bool {
    name == IPV6_FORWARDING && value.trim() != "0"
}

impl<K: Kernel> Executor<K> {
    /// Sets `accept_ra=2` wherever it is 1 (every interface and `default`, not `all`, which
    /// the kernel does not consult for it), recording each original first.
    pub(super) async fn keep_router_advertisements(&self) -> Result<(), DataplaneError> {
        for entry in self.kernel.sysctl_children(IPV6_CONF).await? {
            if entry == "all" {
                continue;
            }
            let name = format!("{IPV6_CONF}/{entry}/accept_ra");
            let Ok(value) = self.kernel.read_sysctl(&name).await else {
                continue; // the interface went away meanwhile
            };
            if value != "1" {
                continue;
            }
            self.record(|registry| {
                registry.accept_ra_originals.entry(name.clone()).or_insert(value);
            })?;
            self.kernel.write_sysctl(&name, "2").await?;
        }
        Ok(())
    }

    /// Puts back every `accept_ra` changed for forwarding (an interface that is gone has
    /// nothing to restore) and forgets them.
    pub(super) async fn restore_router_advertisements(&self) -> Result<(), DataplaneError> {
        let originals = self.lock().accept_ra_originals.clone();
        for (name, original) in originals {
            match self.kernel.write_sysctl(&name, &original).await {
                Ok(()) => {}
                Err(error) if error.errno() == Some(2) => {}
                Err(error) => return Err(error),
            }
            self.record(|registry| {
                registry.accept_ra_originals.remove(&name);
            })?;
        }
        Ok(())
    }
}
