//! The executor's IPVS connection-sync daemons: observed only when the record lists them,
//! recorded before they start and forgotten once stopped; a daemon another program started is
//! neither taken over nor stopped.

use std::collections::BTreeMap;

use super::{Executor, ignore_not_found, not_ours};
use crate::dataplane::{DataplaneError, Object};
use crate::kernel::Kernel;
use crate::model::{SyncDaemonSpec, SyncRole};
use crate::ownership::Registry;

impl<K: Kernel> Executor<K> {
    /// Our running sync daemons, as the kernel reports them (interface and sync ID included,
    /// so a daemon changed behind our back shows as different). The kernel is not asked when
    /// the record lists none.
    pub(super) async fn our_sync_daemons(
        &self,
        registry: &Registry,
    ) -> Result<BTreeMap<SyncRole, SyncDaemonSpec>, DataplaneError> {
        if registry.sync_daemons.is_empty() {
            return Ok(BTreeMap::new());
        }
        Ok(self
            .kernel
            .sync_daemons()
            .await?
            .into_iter()
            .filter(|(role, _)| registry.sync_daemons.contains_key(role))
            .collect())
    }

    /// Starts a sync daemon, recording it first (write-ahead). When a daemon of that role runs
    /// already: ours (before this batch, or any after a corrupt record was set aside) is
    /// success if it runs as asked; anyone else's is refused and left alone. A start that fails leaves nothing recorded.
    pub(super) async fn start_sync_daemon(
        &self,
        role: SyncRole,
        spec: &SyncDaemonSpec,
        ours_before: &Registry,
    ) -> Result<(), DataplaneError> {
        self.record(|registry| {
            registry.sync_daemons.insert(role, spec.clone());
        })?;
        let outcome = match self.kernel.start_sync_daemon(role, spec).await {
            Err(DataplaneError::Exists { operation, object })
                if ours_before.sync_daemons.contains_key(&role) || self.recovered =>
            {
                match self.kernel.sync_daemons().await?.get(&role) {
                    Some(running) if running == spec => return Ok(()),
                    Some(running) => {
                        return Err(DataplaneError::reason(
                            operation,
                            object,
                            format!(
                                "runs on {} with sync ID {}; it has to be stopped first",
                                running.interface, running.sync_id
                            ),
                        ));
                    }
                    // Gone in between: start it after all.
                    None => self.kernel.start_sync_daemon(role, spec).await,
                }
            }
            other => other,
        };
        let Err(error) = outcome else { return Ok(()) };
        let error = match error {
            DataplaneError::Exists { object, .. } => not_ours(object),
            other => other,
        };
        if let Err(record_error) = self.record(|registry| {
            registry.sync_daemons.remove(&role);
        }) {
            tracing::warn!(%role, error = %record_error, "could not forget a sync daemon that did not start");
        }
        Err(error)
    }

    /// Stops our sync daemon of a role and forgets it. A daemon of that role that is not ours
    /// is refused and left running; with none running there is nothing to do.
    pub(super) async fn stop_sync_daemon(&self, role: SyncRole) -> Result<(), DataplaneError> {
        if !self.lock().sync_daemons.contains_key(&role) {
            return if self.kernel.sync_daemons().await?.contains_key(&role) {
                Err(not_ours(Object::SyncDaemon(role)))
            } else {
                Ok(())
            };
        }
        ignore_not_found(self.kernel.stop_sync_daemon(role).await)?;
        self.record(|registry| {
            registry.sync_daemons.remove(&role);
        })
    }
}
