//! What a restarted agent needs to keep holding its VIPs without asking anyone: the failover
//! groups it was in, the VIPs it held and its own last state per VIP, saved under `/run` (which
//! lives exactly as long as the kernel state it describes) whenever a role or a group changes.
//! A restarted agent — a DaemonSet rollout, an OOM kill — reads it before its first pass, so it
//! sends heartbeats as the holder at once, before its intent is even loaded, and the VIP never
//! moves. The file is a hint, never a source of truth: a VIP counts as held only when it is
//! also found in the kernel on our device, and a missing or unreadable file only means the
//! agent starts as it would on a fresh node.
//!
//! It also keeps what makes heartbeats replay-proof across restarts: this agent's incarnation
//! (each start takes one larger than every earlier one: the saved one plus one, or the wall
//! clock in microseconds if that is larger — after a reboot `/run` is empty and the clock has
//! moved on) and the newest (incarnation, sequence) heard from each peer.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::groups::Group;

/// The saved failover state of one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartState {
    /// The node that wrote it (a file of another node is ignored).
    pub node: String,
    /// The incarnation of the agent that wrote it (0: none saved).
    #[serde(default)]
    pub incarnation: u64,
    /// The newest heartbeat heard from each peer node.
    #[serde(default)]
    pub peers: BTreeMap<String, PeerMark>,
    /// Every failover VIP of the node.
    pub vips: Vec<SavedVip>,
}

/// The newest heartbeat heard from a peer: anything not newer is a replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerMark {
    /// Its incarnation.
    pub incarnation: u64,
    /// Its sequence within the incarnation.
    pub sequence: u64,
}

/// The incarnation of an agent starting at `now` after one that saved `saved`: larger than
/// every earlier one (the saved one plus one, or the wall clock in microseconds since the Unix
/// epoch when that is larger — a state lost with `/run` at a reboot, while the clock moved on).
pub fn next_incarnation(saved: Option<u64>, now: SystemTime) -> u64 {
    let clock = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_micros()).unwrap_or(u64::MAX));
    saved.map_or(0, |saved| saved.saturating_add(1)).max(clock)
}

/// One failover VIP as it was when the file was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedVip {
    /// The VIP.
    pub address: IpAddr,
    /// Its directors and timings.
    pub group: Group,
    /// Whether this node held it.
    pub active: bool,
    /// Whether this node was eligible (its IPVS services programmed).
    pub eligible: bool,
    /// Healthy real servers this node counted.
    pub healthy: u16,
}

/// Where the state is kept (None: nowhere, as in tests).
#[derive(Debug, Clone, Default)]
pub struct RestartStore {
    path: Option<PathBuf>,
}

impl RestartStore {
    /// A store in the file `path`.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
        }
    }

    /// No store: nothing is saved or loaded.
    pub fn none() -> Self {
        Self::default()
    }

    /// The saved state of `node`; None when there is none. An unreadable or foreign file is
    /// logged and ignored (the agent then starts as on a fresh node).
    pub fn load(&self, node: &str) -> Option<RestartState> {
        let path = self.path.as_deref()?;
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot read the failover state; starting without it");
                return None;
            }
        };
        match serde_json::from_slice::<RestartState>(&bytes) {
            Ok(state) if state.node == node => Some(state),
            Ok(state) => {
                tracing::warn!(path = %path.display(), written_by = %state.node, "the failover state is another node's; ignored");
                None
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "the failover state is unreadable; starting without it");
                None
            }
        }
    }

    /// Saves `state` atomically (a temporary file, then a rename). A failure is logged: the
    /// only cost is a slower restart.
    pub fn save(&self, state: &RestartState) {
        let Some(path) = self.path.as_deref() else { return };
        if let Err(error) = write_atomically(path, state) {
            tracing::warn!(path = %path.display(), %error, "cannot save the failover state");
        }
    }
}

fn write_atomically(path: &Path, state: &RestartState) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, serde_json::to_vec_pretty(state)?)?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;

    fn state() -> RestartState {
        RestartState {
            node: "d1".into(),
            incarnation: 1_700_000_000_000_000,
            peers: BTreeMap::from([(
                "d2".to_owned(),
                PeerMark {
                    incarnation: 5,
                    sequence: 9,
                },
            )]),
            vips: vec![SavedVip {
                address: "10.0.0.100".parse().unwrap(),
                group: Group {
                    ranked: vec!["d1".into(), "d2".into()],
                    peers: BTreeMap::from([
                        ("d1".to_owned(), Some("10.0.0.1".parse().unwrap())),
                        ("d2".to_owned(), None),
                    ]),
                    interval: Duration::from_millis(200),
                    dead_after_count: 3,
                    preempt: false,
                    preempt_delay: Duration::from_secs(5),
                    connection_sync: None,
                    interface: Some("eth0".into()),
                    devices: vec!["lvs0".into()],
                    virtual_servers: vec!["lab/web".into()],
                },
                active: true,
                eligible: true,
                healthy: 2,
            }],
        }
    }

    #[test]
    fn a_saved_state_loads_back_for_its_node_only() {
        let folder = std::env::temp_dir().join(format!("lvs-restart-{}", std::process::id()));
        let store = RestartStore::file(folder.join("failover.json"));
        assert_eq!(store.load("d1"), None, "nothing saved yet");
        store.save(&state());
        assert_eq!(store.load("d1"), Some(state()));
        assert_eq!(store.load("d2"), None, "another node's file is ignored");
        std::fs::write(folder.join("failover.json"), b"{\"node\": \"d1\", \"vi").unwrap();
        assert_eq!(store.load("d1"), None, "a truncated file is ignored");
        std::fs::remove_dir_all(folder).unwrap();
    }

    #[test]
    fn a_file_of_the_previous_version_still_loads() {
        let folder = std::env::temp_dir().join(format!("lvs-restart-old-{}", std::process::id()));
        let store = RestartStore::file(folder.join("failover.json"));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("failover.json"), br#"{"node": "d1", "vips": []}"#).unwrap();
        let loaded = store.load("d1").unwrap();
        assert_eq!((loaded.incarnation, loaded.peers.len()), (0, 0));
        std::fs::remove_dir_all(folder).unwrap();
    }

    #[test]
    fn incarnations_grow_across_restarts_even_when_the_clock_goes_back() {
        let clock = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let first = next_incarnation(None, clock);
        assert_eq!(first, 1_700_000_000_000_000, "the clock in microseconds");
        // Restarted within the same microsecond, or with the clock set back: one more.
        assert_eq!(next_incarnation(Some(first), clock), first + 1);
        assert_eq!(
            next_incarnation(Some(first), clock - Duration::from_secs(3_600)),
            first + 1
        );
        // Restarted later: the clock.
        let later = clock + Duration::from_secs(1);
        assert_eq!(next_incarnation(Some(first), later), first + 1_000_000);
    }
}
