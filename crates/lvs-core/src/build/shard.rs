//! Sharding a node's config into objects that stay far below etcd's 1.5 MiB object limit. The
//! first shard is named after the node; every shard carries the `lvs.operator.io/node` label.

use std::collections::BTreeMap;

use kube::core::ObjectMeta;
use lvs_api::{LvsNodeConfig, LvsNodeConfigSpec, Shard, labels::NODE_NAME};

/// Target size of one shard's spec, as JSON.
pub const DEFAULT_SHARD_BYTES: usize = 256 * 1024;

/// Splits `spec` into as few objects as keep each spec under `max_bytes` of JSON (a single
/// entry larger than that still gets a shard of its own).
pub fn shard(node: &str, spec: &LvsNodeConfigSpec, max_bytes: usize) -> Vec<LvsNodeConfig> {
    let empty = |sysctls| LvsNodeConfigSpec {
        node_name: node.to_owned(),
        sysctls,
        ..Default::default()
    };
    let base_bytes = json_len(&empty(Vec::new()));
    let mut shards = vec![empty(spec.sysctls.clone())];
    let mut current_bytes = json_len(&shards[0]);
    // Starts a new shard when `entry_bytes` would overflow a shard that already holds entries.
    let mut room_for = |shards: &mut Vec<LvsNodeConfigSpec>, entry_bytes: usize| {
        if current_bytes + entry_bytes > max_bytes && current_bytes > base_bytes {
            shards.push(empty(Vec::new()));
            current_bytes = base_bytes;
        }
        current_bytes += entry_bytes + 1;
    };
    for service in &spec.director_services {
        room_for(&mut shards, json_len(service));
        if let Some(last) = shards.last_mut() {
            last.director_services.push(service.clone());
        }
    }
    for vip in &spec.real_server_vips {
        room_for(&mut shards, json_len(vip));
        if let Some(last) = shards.last_mut() {
            last.real_server_vips.push(vip.clone());
        }
    }

    let count = u32::try_from(shards.len()).unwrap_or(u32::MAX);
    shards
        .into_iter()
        .enumerate()
        .map(|(index, mut shard_spec)| {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            shard_spec.shard = Shard { index, count };
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
        .collect()
}

fn json_len(value: &impl serde::Serialize) -> usize {
    serde_json::to_vec(value).map_or(0, |bytes| bytes.len())
}
