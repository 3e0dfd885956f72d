//! What lvs-operator owns on a node, so that nothing else is ever touched: the IPVS services
//! (by exact key), addresses and devices it created, the sync daemons it started, the sysctls it
//! changed (with their original values), and its nftables tables. A service or an address outside
//! `lvs0` is written down as an intent before it is created and becomes ours only once the kernel
//! created it; everything is forgotten after a delete. Persisted under `/run` — which lives exactly as long as the kernel state it describes — so a
//! restarted agent adopts its state instead of flushing it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::{Link, NftRules, Service, ServiceKey, SyncDaemonSpec, SyncRole, VipAddress};

/// The ownership record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    /// IPVS services we created, by exact key: the only services that are ours.
    pub services: BTreeSet<ServiceKey>,
    /// VIP addresses we added.
    pub addresses: BTreeSet<VipAddress>,
    /// Creates under way: written before the kernel is asked, turned into ownership once it
    /// created the object (absent from records written before intents existed).
    #[serde(default, skip_serializing_if = "Intents::is_empty")]
    pub intents: Intents,
    /// Devices we created or set up.
    pub links: BTreeSet<Link>,
    /// Sysctls we changed, with the value each had before.
    pub sysctl_originals: BTreeMap<String, String>,
    /// `accept_ra` sysctls set to 2 because we turned IPv6 forwarding on, with the value each
    /// had before (restored with the forwarding sysctl; absent from older records).
    #[serde(default)]
    pub accept_ra_originals: BTreeMap<String, String>,
    /// The rules we installed in our nftables tables, if any.
    pub nftables: Option<NftRules>,
    /// A fingerprint of our tables as the kernel listed them right after we installed them, to
    /// notice edits made by hand.
    pub nftables_fingerprint: Option<String>,
    /// IPVS connection-sync daemons we started, by role (absent from records written before
    /// lvs-operator ran sync daemons).
    #[serde(default)]
    pub sync_daemons: BTreeMap<SyncRole, SyncDaemonSpec>,
}

/// Creates under way. An agent that stopped between writing one and hearing the kernel's
/// answer settles it at start by what the kernel shows (`Executor`): the object was checked
/// absent before the intent was written, so one present now is ours when it is exactly as
/// intended; anything else is dropped, never adopted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intents {
    /// IPVS services being created, as asked.
    #[serde(default)]
    pub services: BTreeSet<Service>,
    /// Addresses being added to a device other than `lvs0`.
    #[serde(default)]
    pub addresses: BTreeSet<VipAddress>,
}

impl Intents {
    /// Whether no create is under way.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.addresses.is_empty()
    }
}

/// Where the registry lives.
#[derive(Debug, Clone)]
pub enum RegistryStore {
    /// In memory only (tests, the fake dataplane).
    Memory,
    /// A JSON file, replaced atomically on every change.
    File(PathBuf),
}

/// Errors reading or writing the registry file.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The file could not be read or written.
    #[error("ownership record {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a registry.
    #[error(
        "ownership record {path} is corrupt ({source}); move it away to start over (state it listed will not be pruned)"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

impl RegistryStore {
    /// The default location for the agent.
    pub fn default_file() -> Self {
        Self::File(PathBuf::from("/run/lvs-operator/owned.json"))
    }

    /// Loads the registry (empty when the file does not exist yet).
    pub fn load(&self) -> Result<Registry, RegistryError> {
        let Self::File(path) = self else {
            return Ok(Registry::default());
        };
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| RegistryError::Corrupt {
                path: path.clone(),
                source,
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Registry::default()),
            Err(source) => Err(RegistryError::Io {
                path: path.clone(),
                source,
            }),
        }
    }

    /// Loads the registry; a corrupt file is set aside (renamed to `*.json.corrupt`, kept for
    /// inspection) and the agent starts from an empty record instead of refusing to run: a
    /// refusal would stop the failover heartbeats while the node still holds its VIPs, and a
    /// peer would take them — the VIP on two nodes. With an empty record the VIPs on our own
    /// `lvs0` device are still ours and are kept, and an IPVS service on one of them that is
    /// exactly as asked is taken back (`Executor`); what is lost is what only the record knew —
    /// the original values of sysctls we changed (left as they are) and objects outside `lvs0`
    /// (left in place, never pruned). Returns whether it was set aside.
    pub fn load_or_set_aside(&self) -> Result<(Registry, bool), RegistryError> {
        match self.load().map(|registry| (registry, false)) {
            Err(RegistryError::Corrupt { path, source }) => {
                let aside = path.with_extension("json.corrupt");
                std::fs::rename(&path, &aside).map_err(|source| RegistryError::Io {
                    path: path.clone(),
                    source,
                })?;
                tracing::error!(
                    path = %path.display(),
                    set_aside = %aside.display(),
                    error = %source,
                    "the ownership record is corrupt: set aside, starting from an empty one (VIPs on lvs0 are kept, and services on them exactly as asked; sysctl originals are lost)"
                );
                Ok((Registry::default(), true))
            }
            other => other,
        }
    }

    /// Saves the registry atomically (write a temporary file, then rename).
    pub fn save(&self, registry: &Registry) -> Result<(), RegistryError> {
        let Self::File(path) = self else { return Ok(()) };
        let io = |source| RegistryError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let temporary = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(registry).map_err(|source| RegistryError::Corrupt {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&temporary, bytes).map_err(io)?;
        std::fs::rename(&temporary, path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_registry_loads_back_and_a_corrupt_one_is_a_clear_error() {
        let folder = std::env::temp_dir().join(format!("lvs-registry-{}", std::process::id()));
        let store = RegistryStore::File(folder.join("owned.json"));
        assert_eq!(
            store.load().unwrap(),
            Registry::default(),
            "missing file = nothing owned"
        );
        let mut registry = Registry::default();
        registry.addresses.insert(VipAddress {
            address: "10.0.0.1".parse().unwrap(),
            device: "lvs0".into(),
        });
        registry
            .sysctl_originals
            .insert("net/ipv4/conf/all/arp_ignore".into(), "0".into());
        registry.sync_daemons.insert(
            SyncRole::Backup,
            SyncDaemonSpec {
                interface: "eth0".into(),
                sync_id: 7,
            },
        );
        store.save(&registry).unwrap();
        assert_eq!(store.load().unwrap(), registry);
        std::fs::write(folder.join("owned.json"), b"{not json").unwrap();
        let error = store.load().unwrap_err().to_string();
        assert!(error.contains("is corrupt"), "{error}");
        assert_eq!(
            store.load_or_set_aside().unwrap(),
            (Registry::default(), true),
            "a corrupt record is set aside and the agent starts from an empty one"
        );
        assert_eq!(
            std::fs::read(folder.join("owned.json.corrupt")).unwrap(),
            b"{not json",
            "kept for inspection"
        );
        assert!(!folder.join("owned.json").exists());
        std::fs::remove_dir_all(folder).unwrap();
    }

    #[test]
    fn a_record_written_before_sync_daemons_existed_still_loads() {
        let folder = std::env::temp_dir().join(format!("lvs-registry-old-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join("owned.json");
        std::fs::write(
            &path,
            br#"{
              "services": [],
              "addresses": [{"address": "10.0.0.1", "device": "lvs0"}],
              "links": [],
              "sysctl_originals": {"net/ipv4/vs/conntrack": "0"},
              "nftables": null,
              "nftables_fingerprint": null
            }"#,
        )
        .unwrap();
        let registry = RegistryStore::File(path).load().unwrap();
        std::fs::remove_dir_all(folder).unwrap();
        assert!(registry.sync_daemons.is_empty());
        assert_eq!(registry.addresses.len(), 1);
        assert_eq!(registry.sysctl_originals["net/ipv4/vs/conntrack"], "0");
    }

    #[test]
    fn service_keys_and_links_keep_their_names_on_disk() {
        // A restarted agent reads the record an older one wrote: the protocol, family and
        // tunnel names must not change with the Rust types.
        use crate::model::{AddressFamily, Protocol};
        let mut registry = Registry::default();
        registry.services.insert(ServiceKey::Address {
            address: "10.0.0.1".parse().unwrap(),
            port: 80,
            protocol: Protocol::Sctp,
        });
        registry.services.insert(ServiceKey::Fwmark {
            family: AddressFamily::IPv6,
            mark: 7,
        });
        registry.links.insert(Link::GueReceivePort {
            port: 6080,
            family: AddressFamily::IPv4,
        });
        let json = serde_json::to_value(&registry).unwrap();
        assert_eq!(
            json["services"],
            serde_json::json!([
                {"Address": {"address": "10.0.0.1", "port": 80, "protocol": "SCTP"}},
                {"Fwmark": {"family": "IPv6", "mark": 7}}
            ])
        );
        assert_eq!(
            json["links"],
            serde_json::json!([{"GueReceivePort": {"port": 6080, "family": "IPv4"}}])
        );
        let back: Registry = serde_json::from_value(json).unwrap();
        assert_eq!(back, registry);
    }

    #[test]
    fn a_mark_rule_recorded_before_masks_existed_wrote_the_whole_mark() {
        // What an agent without masks installed was `meta mark set MARK`: read back as the
        // whole-mark rule, it equals an unmasked desired rule, so an upgrade reprograms nothing.
        use crate::model::{MarkRule, Protocol};
        let registry: Registry = serde_json::from_value(serde_json::json!({
            "services": [],
            "addresses": [],
            "links": [],
            "sysctl_originals": {},
            "nftables": {
                "arp_guards": [],
                "redirects": [],
                "masquerade": [],
                "marks": [{"address": "10.0.0.3", "protocol": "TCP", "ports": [80], "mark": 104}]
            },
            "nftables_fingerprint": "listed"
        }))
        .unwrap();
        let whole = MarkRule {
            address: "10.0.0.3".parse().unwrap(),
            protocol: Protocol::Tcp,
            ports: vec![80],
            mark: 104,
            mask: u32::MAX,
        };
        let masked = MarkRule {
            mask: 0xff,
            ..whole.clone()
        };
        assert_eq!(registry.nftables.unwrap().marks, [whole]);

        let json = serde_json::to_value(&masked).unwrap();
        assert_eq!(json["mask"], 0xff, "{json}");
        assert_eq!(serde_json::from_value::<MarkRule>(json).unwrap(), masked);
    }

    #[test]
    fn intents_are_kept_on_disk_and_left_out_when_there_are_none() {
        use crate::model::{Protocol, ServiceFlags};
        let mut registry = Registry::default();
        assert!(serde_json::to_value(&registry).unwrap().get("intents").is_none());
        registry.intents.services.insert(Service {
            key: ServiceKey::Address {
                address: "10.0.0.1".parse().unwrap(),
                port: 80,
                protocol: Protocol::Tcp,
            },
            scheduler: "rr".into(),
            flags: ServiceFlags::default(),
            persistence: None,
        });
        registry.intents.addresses.insert(VipAddress {
            address: "10.0.0.1".parse().unwrap(),
            device: "lo".into(),
        });
        let json = serde_json::to_value(&registry).unwrap();
        let back: Registry = serde_json::from_value(json).unwrap();
        assert_eq!(back, registry);
    }

    #[test]
    fn sync_daemons_are_stored_by_role_name() {
        let mut registry = Registry::default();
        registry.sync_daemons.insert(
            SyncRole::Master,
            SyncDaemonSpec {
                interface: "eth0".into(),
                sync_id: 7,
            },
        );
        let json = serde_json::to_value(&registry).unwrap();
        assert_eq!(
            json["sync_daemons"],
            serde_json::json!({"Master": {"interface": "eth0", "sync_id": 7}})
        );
        let back: Registry = serde_json::from_value(json).unwrap();
        assert_eq!(back, registry);
    }
}
