//! Sharding a node's config into objects that stay far below etcd's 1.5 MiB object limit. The
//! first shard is named after the node; every shard carries the `lvs.operator.io/node` label.
//!
//! An entry's shard follows from its own key (the VirtualServer of a director service, the
//! address of a real-server VIP) by a stable hash, over a power-of-two number of shards: one
//! service changed, added or removed rewrites the one shard that holds it, never the shards
//! after it (filling shards in order would shift every later entry when one grows). The count
//! doubles when a shard would overflow, which rewrites the node's shards once.

use std::collections::BTreeMap;

use kube::core::ObjectMeta;
use lvs_api::{LvsNodeConfig, LvsNodeConfigSpec, Shard, labels::NODE_NAME};

/// Target size of one shard's spec, as JSON.
pub const DEFAULT_SHARD_BYTES: usize = 256 * 1024;

/// The most shards a node's config is split into (a single entry larger than a shard makes the
/// doubling stop here rather than forever).
const MAX_SHARDS: usize = 1 << 12;

/// Where each entry goes: its bucket by key and its size.
struct Entry {
    hash: u64,
    bytes: usize,
}

/// The JSON size of each entry of a spec (director services, then real-server VIPs, in the
/// spec's order), so that sharding the node's next spec measures only the entries that changed.
#[derive(Debug, Clone, Default)]
pub struct EntrySizes {
    services: Vec<usize>,
    vips: Vec<usize>,
}

/// Splits `spec` into as few power-of-two shards as keep each spec under `max_bytes` of JSON
/// (a shard whose entries hash together past that only when doubling stops helping).
pub fn shard(node: &str, spec: &LvsNodeConfigSpec, max_bytes: usize) -> Vec<LvsNodeConfig> {
    shard_reusing(node, spec, max_bytes, None).0
}

/// [`shard`], taking the size of every entry equal to the same entry of `previous` (the node's
/// last spec, with its sizes) from there instead of measuring it again; returns the sizes too.
pub fn shard_reusing(
    node: &str,
    spec: &LvsNodeConfigSpec,
    max_bytes: usize,
    previous: Option<(&LvsNodeConfigSpec, &EntrySizes)>,
) -> (Vec<LvsNodeConfig>, EntrySizes) {
    let empty = |sysctls| LvsNodeConfigSpec {
        node_name: node.to_owned(),
        sysctls,
        ..Default::default()
    };
    let base_bytes = json_len(&empty(Vec::new()));
    let first_bytes = json_len(&empty(spec.sysctls.clone()));
    // Both lists are sorted by their key (the build sorts them): found by binary search.
    let known_service = |service: &lvs_api::DirectorService| {
        let (old, sizes) = previous?;
        let index = old
            .director_services
            .binary_search_by(|other| other.virtual_server.cmp(&service.virtual_server))
            .ok()?;
        (old.director_services[index] == *service).then(|| sizes.services.get(index).copied())?
    };
    let known_vip = |vip: &lvs_api::RealServerVip| {
        let (old, sizes) = previous?;
        let index = old
            .real_server_vips
            .binary_search_by(|other| other.address.cmp(&vip.address))
            .ok()?;
        (old.real_server_vips[index] == *vip).then(|| sizes.vips.get(index).copied())?
    };
    let sizes = EntrySizes {
        services: spec
            .director_services
            .iter()
            .map(|service| known_service(service).unwrap_or_else(|| json_len(service) + 1))
            .collect(),
        vips: spec
            .real_server_vips
            .iter()
            .map(|vip| known_vip(vip).unwrap_or_else(|| json_len(vip) + 1))
            .collect(),
    };
    let services: Vec<Entry> = spec
        .director_services
        .iter()
        .zip(&sizes.services)
        .map(|(service, &bytes)| Entry {
            hash: stable_hash(b"service", service.virtual_server.as_bytes()),
            bytes,
        })
        .collect();
    let vips: Vec<Entry> = spec
        .real_server_vips
        .iter()
        .zip(&sizes.vips)
        .map(|(vip, &bytes)| Entry {
            hash: stable_hash(b"vip", vip.address.to_string().as_bytes()),
            bytes,
        })
        .collect();
    let count = shard_count(&services, &vips, base_bytes, first_bytes, max_bytes);

    let mut shards: Vec<LvsNodeConfigSpec> = (0..count).map(|_| empty(Vec::new())).collect();
    shards[0].sysctls = spec.sysctls.clone();
    for (service, entry) in spec.director_services.iter().zip(&services) {
        shards[bucket(entry.hash, count)]
            .director_services
            .push(service.clone());
    }
    for (vip, entry) in spec.real_server_vips.iter().zip(&vips) {
        shards[bucket(entry.hash, count)]
            .real_server_vips
            .push(vip.clone());
    }

    let total = u32::try_from(count).unwrap_or(u32::MAX);
    let objects = shards
        .into_iter()
        .enumerate()
        .map(|(index, mut shard_spec)| {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            shard_spec.shard = Shard { index, count: total };
            let name = if index == 0 {
                node.to_owned()
            } else {
                format!("{node}-shard-{index}")
            };
            LvsNodeConfig {
                metadata: ObjectMeta {
                    name: Some(name),
                    labels: Some(BTreeMap::from([(NODE_NAME.to_owned(), node.to_owned())])),
                    ..Default::default()
                },
                spec: shard_spec,
                status: None,
            }
        })
        .collect();
    (objects, sizes)
}

/// The smallest power of two such that no shard overflows `max_bytes` (a shard holding a single
/// entry may), at most [`MAX_SHARDS`].
fn shard_count(
    services: &[Entry],
    vips: &[Entry],
    base_bytes: usize,
    first_bytes: usize,
    max_bytes: usize,
) -> usize {
    let total: usize = services.iter().chain(vips).map(|entry| entry.bytes).sum();
    let mut count = (total / max_bytes.max(1)).max(1).next_power_of_two();
    while count < MAX_SHARDS {
        let mut sizes: Vec<(usize, usize)> = vec![(base_bytes, 0); count];
        sizes[0].0 = first_bytes;
        for entry in services.iter().chain(vips) {
            let size = &mut sizes[bucket(entry.hash, count)];
            size.0 += entry.bytes;
            size.1 += 1;
        }
        if sizes
            .iter()
            .all(|&(bytes, entries)| bytes <= max_bytes || entries <= 1)
        {
            break;
        }
        count *= 2;
    }
    count
}

fn bucket(hash: u64, count: usize) -> usize {
    // `count` is a power of two: the low bits of the hash.
    usize::try_from(hash).unwrap_or(usize::MAX) & (count - 1)
}

/// FNV-1a over `kind` and `key`: the same on every build and platform (std's hasher is not
/// promised to be), so a new controller release does not move entries between shards.
fn stable_hash(kind: &[u8], key: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in kind.iter().chain(b"/").chain(key) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn json_len(value: &impl serde::Serialize) -> usize {
    let mut counter = ByteCounter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => 0,
    }
}

/// A writer that only counts what is written to it.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use lvs_api::{ArpMethod, DirectorService, RealServerVip, SysctlSetting};

    use kube::ResourceExt;

    use super::*;

    fn service(index: usize, weight: u16) -> DirectorService {
        DirectorService {
            virtual_server: format!("default/vs-{index:04}"),
            address: Some(IpAddr::from([10, 200, (index / 256) as u8, (index % 256) as u8])),
            // Something to change, and a payload of some size.
            port: Some(weight),
            interface: Some("x".repeat(200)),
            ..DirectorService::default()
        }
    }

    fn spec(services: usize) -> LvsNodeConfigSpec {
        LvsNodeConfigSpec {
            node_name: "node-a".to_owned(),
            sysctls: vec![SysctlSetting {
                name: "net.ipv4.vs.conntrack".to_owned(),
                value: "1".to_owned(),
            }],
            director_services: (0..services).map(|index| service(index, 1)).collect(),
            real_server_vips: (0..services / 2)
                .map(|index| RealServerVip {
                    address: IpAddr::from([10, 201, 0, (index % 256) as u8]),
                    arp_method: ArpMethod::Sysctl,
                    device: Some("lo".to_owned()),
                    tunnel: None,
                    ports: Vec::new(),
                    virtual_servers: vec![format!("default/vs-{index:04}")],
                })
                .collect(),
            ..LvsNodeConfigSpec::default()
        }
    }

    #[test]
    fn every_entry_lands_once_every_shard_fits_and_names_follow_the_index() {
        let whole = spec(400);
        let shards = shard("node-a", &whole, 16 * 1024);
        assert!(
            shards.len() > 1 && shards.len().is_power_of_two(),
            "{}",
            shards.len()
        );
        for (index, config) in shards.iter().enumerate() {
            assert_eq!(config.spec.shard.index as usize, index);
            assert_eq!(config.spec.shard.count as usize, shards.len());
            assert!(json_len(&config.spec) <= 16 * 1024, "shard {index} overflows");
            let expected = if index == 0 {
                "node-a".to_owned()
            } else {
                format!("node-a-shard-{index}")
            };
            assert_eq!(config.metadata.name.as_deref(), Some(expected.as_str()));
            assert_eq!(config.labels().get(NODE_NAME).map(String::as_str), Some("node-a"));
            assert_eq!(
                config.spec.sysctls.is_empty(),
                index != 0,
                "sysctls only in the first shard"
            );
        }
        let mut services: Vec<_> = shards
            .iter()
            .flat_map(|config| config.spec.director_services.iter().cloned())
            .collect();
        services.sort_by(|left, right| left.virtual_server.cmp(&right.virtual_server));
        assert_eq!(services, whole.director_services);
        let vips: usize = shards
            .iter()
            .map(|config| config.spec.real_server_vips.len())
            .sum();
        assert_eq!(vips, whole.real_server_vips.len());
        assert_eq!(
            shard("node-a", &spec(3), 16 * 1024).len(),
            1,
            "a small config is one object"
        );
    }

    #[test]
    fn one_service_changed_added_or_removed_rewrites_only_its_own_shard() {
        let before = shard("node-a", &spec(400), 64 * 1024);
        let differing = |after: &[LvsNodeConfig]| {
            assert_eq!(after.len(), before.len(), "same shard count");
            before
                .iter()
                .zip(after)
                .filter(|(left, right)| left.spec != right.spec)
                .count()
        };
        let mut changed = spec(400);
        changed.director_services[7] = service(7, 5);
        assert_eq!(differing(&shard("node-a", &changed, 64 * 1024)), 1);
        let mut added = spec(400);
        added.director_services.insert(0, service(9999, 1));
        assert_eq!(
            differing(&shard("node-a", &added, 64 * 1024)),
            1,
            "no shift after it"
        );
        let mut removed = spec(400);
        removed.director_services.remove(0);
        assert_eq!(differing(&shard("node-a", &removed, 64 * 1024)), 1);
    }

    #[test]
    fn sizes_taken_from_the_last_spec_shard_exactly_as_measuring_anew() {
        let before = spec(400);
        let (_, sizes) = shard_reusing("node-a", &before, 64 * 1024, None);
        let mut after = spec(400);
        // An entry grown past a shard (more shards), one added, one removed, a VIP changed.
        after.director_services[7].interface = Some("z".repeat(70 * 1024));
        after.director_services.remove(3);
        after.director_services.push(service(9999, 2));
        after.real_server_vips[0].ports.clear();
        let fresh = shard("node-a", &after, 64 * 1024);
        let (reused, _) = shard_reusing("node-a", &after, 64 * 1024, Some((&before, &sizes)));
        assert!(
            fresh.len() > shard("node-a", &before, 64 * 1024).len(),
            "the count grew"
        );
        assert_eq!(reused, fresh);
    }

    #[test]
    fn an_entry_larger_than_a_shard_gets_one_to_itself() {
        let mut whole = spec(4);
        whole.director_services[0].interface = Some("y".repeat(40 * 1024));
        let shards = shard("node-a", &whole, 16 * 1024);
        let holder = shards
            .iter()
            .find(|config| {
                config
                    .spec
                    .director_services
                    .iter()
                    .any(|service| service.interface.as_ref().is_some_and(|name| name.len() > 1000))
            })
            .map(|config| config.spec.director_services.len() + config.spec.real_server_vips.len());
        assert_eq!(holder, Some(1));
    }
}
