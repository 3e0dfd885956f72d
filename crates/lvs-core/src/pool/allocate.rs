//! Picking a free VIP from a pool: the first usable address at or after one derived from the
//! object's namespace and name (FNV-1a, the same in every build and Rust version), wrapping
//! around. The derived start keeps an object's address from shifting when other objects come and
//! go, even where no status records it (standalone mode).

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::ValidPool;
use super::range::AddressRange;
use super::special;

/// Addresses no VIP may take whatever the pool: node addresses and the Service network, as
/// sorted, merged intervals per family.
#[derive(Debug, Clone, Default)]
pub struct Reserved {
    v4: Vec<(u128, u128)>,
    v6: Vec<(u128, u128)>,
}

impl Reserved {
    /// Reserves `ranges`.
    pub fn new(ranges: impl IntoIterator<Item = AddressRange>) -> Self {
        let mut reserved = Self::default();
        for range in ranges {
            let list = if range.is_ipv4() {
                &mut reserved.v4
            } else {
                &mut reserved.v6
            };
            list.push(range.bounds());
        }
        for list in [&mut reserved.v4, &mut reserved.v6] {
            list.sort_unstable();
            let mut merged: Vec<(u128, u128)> = Vec::with_capacity(list.len());
            for (start, end) in list.drain(..) {
                match merged.last_mut() {
                    Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                    _ => merged.push((start, end)),
                }
            }
            *list = merged;
        }
        reserved
    }

    /// The reserved interval holding `value` of the family of `v4`, if any.
    fn holding(&self, v4: bool, value: u128) -> Option<(u128, u128)> {
        let list = if v4 { &self.v4 } else { &self.v6 };
        let index = list.partition_point(|(start, _)| *start <= value);
        index
            .checked_sub(1)
            .map(|index| list[index])
            .filter(|(_, end)| value <= *end)
    }
}

/// A free address of `family_v4`'s family in `pool`, or `None` when every one is taken or
/// unusable. `used` holds every VIP in use.
pub fn allocate(
    pool: &ValidPool,
    v4: bool,
    seed: &str,
    used: &BTreeSet<IpAddr>,
    reserved: &Reserved,
) -> Option<IpAddr> {
    let ranges: Vec<&AddressRange> = pool.ranges.iter().filter(|range| range.is_ipv4() == v4).collect();
    let total = ranges
        .iter()
        .fold(0u128, |total, range| total.saturating_add(range.size()));
    if total == 0 {
        return None;
    }
    let mut offset = u128::from(fnv1a(seed)) % total;
    let start = ranges.iter().position(|range| {
        if offset < range.size() {
            true
        } else {
            offset -= range.size();
            false
        }
    })?;
    // From the derived address to the end of its range, the following ranges, then wrap around.
    let first = ranges[start];
    let (low, high) = first.bounds();
    let from = low + offset;
    let whole = |range: &AddressRange| {
        let (low, high) = range.bounds();
        first_usable(range, low, high, used, reserved)
    };
    first_usable(first, from, high, used, reserved)
        .or_else(|| {
            ranges[start + 1..]
                .iter()
                .chain(&ranges[..start])
                .find_map(|range| whole(range))
        })
        .or_else(|| {
            (from > low)
                .then(|| first_usable(first, low, from - 1, used, reserved))
                .flatten()
        })
}

/// The first address in `[begin, end]` of `range` that is neither used, reserved nor in a
/// special-purpose block the range does not lie inside.
fn first_usable(
    range: &AddressRange,
    begin: u128,
    end: u128,
    used: &BTreeSet<IpAddr>,
    reserved: &Reserved,
) -> Option<IpAddr> {
    let mut value = begin;
    while value <= end {
        let address = range.address(value);
        if let Some(block) = special::classify(address)
            && !special::explicitly_allowed(&block, address, std::slice::from_ref(range))
        {
            value = block.range.bounds().1.checked_add(1)?;
            continue;
        }
        if let Some((_, reserved_end)) = reserved.holding(range.is_ipv4(), value) {
            value = reserved_end.checked_add(1)?;
            continue;
        }
        if used.contains(&address) {
            value = value.checked_add(1)?;
            continue;
        }
        return Some(address);
    }
    None
}

/// 64-bit FNV-1a.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::ValidPool;

    fn pool(ranges: &[&str]) -> ValidPool {
        ValidPool {
            name: "p".to_owned(),
            ranges: ranges
                .iter()
                .map(|text| AddressRange::parse(text).unwrap())
                .collect(),
            auto_assign: true,
            namespaces: BTreeSet::new(),
            namespace_selector: None,
            director_selector: Default::default(),
            interfaces: BTreeSet::new(),
            methods: Vec::new(),
            backend_networks: Vec::new(),
            real_server_node_selector: Default::default(),
            allow_pinning: false,
        }
    }

    #[test]
    fn hands_out_every_address_once_then_none() {
        let pool = pool(&["10.0.0.0/30", "10.0.1.7"]);
        let mut used = BTreeSet::new();
        for index in 0..5 {
            let address = allocate(
                &pool,
                true,
                &format!("ns/vs-{index}"),
                &used,
                &Reserved::default(),
            )
            .expect("a free address");
            assert!(used.insert(address), "{address} handed out twice");
        }
        assert_eq!(used.len(), 5);
        assert_eq!(
            allocate(&pool, true, "ns/more", &used, &Reserved::default()),
            None
        );
        assert_eq!(
            allocate(&pool, false, "ns/v6", &BTreeSet::new(), &Reserved::default()),
            None
        );
    }

    #[test]
    fn the_same_name_gets_the_same_address_whatever_else_exists() {
        let pool = pool(&["10.0.0.0/24"]);
        let alone = allocate(&pool, true, "team/web", &BTreeSet::new(), &Reserved::default());
        let others: BTreeSet<IpAddr> = ["10.0.0.1", "10.0.0.200"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let crowded = allocate(&pool, true, "team/web", &others, &Reserved::default());
        assert_eq!(alone, crowded);
    }

    #[test]
    fn skips_reserved_and_unrequested_special_addresses() {
        // 0.0.0.0/8 (this-network) and 127.0.0.0/8 (loopback) lie inside the range: skipped.
        let wide = pool(&["0.0.0.0-127.255.255.255"]);
        let reserved = Reserved::new([AddressRange::parse("10.0.0.0/8").unwrap()]);
        for index in 0..50 {
            let address = allocate(&wide, true, &format!("n/{index}"), &BTreeSet::new(), &reserved).unwrap();
            assert!(special::classify(address).is_none(), "{address}");
            assert!(
                !AddressRange::parse("10.0.0.0/8").unwrap().contains(address),
                "{address}"
            );
        }
        // A pool inside a special block (documentation) hands out its addresses.
        let documentation = pool(&["192.0.2.8/29"]);
        let address = allocate(
            &documentation,
            true,
            "n/x",
            &BTreeSet::new(),
            &Reserved::default(),
        )
        .unwrap();
        assert!(documentation.ranges[0].contains(address));
    }
}
