//! Special-purpose address blocks (IANA's registries, RFC 6890 and successors): which addresses
//! can never be a VIP or backend, and which are usable only when the admin names their block.

use std::net::IpAddr;
use std::sync::LazyLock;

use super::range::AddressRange;

/// A special-purpose block an address falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialBlock {
    /// The block.
    pub range: AddressRange,
    /// What it is, for messages ("link-local", "documentation", …).
    pub name: &'static str,
    /// Never usable: loopback, multicast, unspecified, broadcast, IPv4-mapped forms of those.
    pub never: bool,
}

const V4: &[(&str, bool, &str)] = &[
    ("0.0.0.0/32", true, "unspecified"),
    ("255.255.255.255/32", true, "broadcast"),
    ("127.0.0.0/8", true, "loopback"),
    ("224.0.0.0/4", true, "multicast"),
    ("0.0.0.0/8", false, "this-network"),
    ("169.254.0.0/16", false, "link-local"),
    ("192.0.0.0/24", false, "IETF protocol assignments"),
    ("192.0.2.0/24", false, "documentation (TEST-NET-1)"),
    ("198.51.100.0/24", false, "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", false, "documentation (TEST-NET-3)"),
    ("198.18.0.0/15", false, "benchmarking"),
    ("240.0.0.0/4", false, "reserved"),
];

const V6: &[(&str, bool, &str)] = &[
    ("::/128", true, "unspecified"),
    ("::1/128", true, "loopback"),
    ("ff00::/8", true, "multicast"),
    ("::ffff:0:0/96", false, "IPv4-mapped"),
    ("::/96", false, "IPv4-compatible (deprecated)"),
    ("fe80::/10", false, "link-local"),
    ("fec0::/10", false, "site-local (deprecated)"),
    ("100::/64", false, "discard-only"),
    ("2001:db8::/32", false, "documentation"),
    ("3fff::/20", false, "documentation"),
];

static BLOCKS: LazyLock<Vec<SpecialBlock>> = LazyLock::new(|| {
    V4.iter()
        .chain(V6)
        .filter_map(|(cidr, never, name)| {
            AddressRange::parse_network(cidr).ok().map(|range| SpecialBlock {
                range,
                name,
                never: *never,
            })
        })
        .collect()
});

/// The special-purpose block `address` is in, if any; the first match, so the never-usable blocks
/// win over wider ones. An IPv4-mapped address of a never-usable IPv4 address is never usable.
pub fn classify(address: IpAddr) -> Option<SpecialBlock> {
    if let IpAddr::V6(v6) = address
        && let Some(v4) = v6.to_ipv4_mapped()
        && let Some(block) = classify(IpAddr::V4(v4)).filter(|block| block.never)
    {
        return Some(SpecialBlock {
            range: AddressRange::single(address),
            name: mapped_name(block.name),
            never: true,
        });
    }
    BLOCKS.iter().find(|block| block.range.contains(address)).copied()
}

fn mapped_name(name: &'static str) -> &'static str {
    match name {
        "loopback" => "IPv4-mapped loopback",
        "multicast" => "IPv4-mapped multicast",
        "broadcast" => "IPv4-mapped broadcast",
        _ => "IPv4-mapped unspecified",
    }
}

/// Whether `address` may be used because one of `entries` — the admin's pool ranges or backend
/// networks — holds it and lies entirely inside `block`: naming the block is asking for it, a
/// wider entry that merely covers it is not.
pub fn explicitly_allowed(block: &SpecialBlock, address: IpAddr, entries: &[AddressRange]) -> bool {
    !block.never
        && entries
            .iter()
            .any(|entry| entry.contains(address) && entry.within(&block.range))
}

/// `true` for addresses that are never usable (shortcut for validation).
pub fn never_usable(address: IpAddr) -> Option<&'static str> {
    classify(address)
        .filter(|block| block.never)
        .map(|block| block.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn classifies_the_addresses_the_issue_lists() {
        for (address, name, never) in [
            ("169.254.169.254", "link-local", false),
            ("fe80::1", "link-local", false),
            ("0.1.2.3", "this-network", false),
            ("240.0.0.1", "reserved", false),
            ("255.255.255.255", "broadcast", true),
            ("::10.100.0.100", "IPv4-compatible (deprecated)", false),
            ("::ffff:127.0.0.1", "IPv4-mapped loopback", true),
            ("::ffff:10.100.0.2", "IPv4-mapped", false),
            ("127.0.0.5", "loopback", true),
            ("::1", "loopback", true),
            ("239.1.1.1", "multicast", true),
            ("198.51.100.7", "documentation (TEST-NET-2)", false),
            ("2001:db8::1", "documentation", false),
        ] {
            let block = classify(ip(address)).unwrap_or_else(|| panic!("{address} not special"));
            assert_eq!((block.name, block.never), (name, never), "{address}");
        }
        for ordinary in ["10.100.0.100", "fd00:100::100", "8.8.8.8", "2a00::1"] {
            assert_eq!(classify(ip(ordinary)), None, "{ordinary}");
        }
    }

    #[test]
    fn only_an_entry_inside_the_block_allows_it() {
        let metadata = ip("169.254.169.254");
        let block = classify(metadata).unwrap();
        let entries = |texts: &[&str]| -> Vec<AddressRange> {
            texts
                .iter()
                .map(|text| AddressRange::parse(text).unwrap())
                .collect()
        };
        assert!(explicitly_allowed(
            &block,
            metadata,
            &entries(&["169.254.169.254/32"])
        ));
        assert!(!explicitly_allowed(&block, metadata, &entries(&["0.0.0.0/0"])));
        assert!(!explicitly_allowed(
            &block,
            metadata,
            &entries(&["169.254.0.0/24"])
        ));
        let loopback = classify(ip("127.0.0.1")).unwrap();
        assert!(!explicitly_allowed(
            &loopback,
            ip("127.0.0.1"),
            &entries(&["127.0.0.1"])
        ));
    }
}
