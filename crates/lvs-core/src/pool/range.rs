//! Address ranges: a pool's CIDRs, single addresses and `first-last` ranges, parsed once into
//! inclusive intervals of one family, with the arithmetic allocation needs.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An inclusive interval `[first, last]` of addresses of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddressRange {
    first: IpAddr,
    last: IpAddr,
}

impl AddressRange {
    /// The range from `first` to `last`; `None` when the families differ or `last < first`.
    pub fn new(first: IpAddr, last: IpAddr) -> Option<Self> {
        (first.is_ipv4() == last.is_ipv4() && first <= last).then_some(Self { first, last })
    }

    /// One address.
    pub fn single(address: IpAddr) -> Self {
        Self {
            first: address,
            last: address,
        }
    }

    /// `address/prefix`, which must be the network's first address.
    pub fn cidr(address: IpAddr, prefix: u8) -> Result<Self, String> {
        let bits = bits_of(address);
        if u32::from(prefix) > bits {
            return Err(format!("prefix length {prefix} is longer than {bits}"));
        }
        let host_bits = bits - u32::from(prefix);
        let host_mask = if host_bits == 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let value = to_u128(address);
        if value & host_mask != 0 {
            let network = from_u128(address, value & !host_mask);
            return Err(format!(
                "{address}/{prefix} has host bits set; the network is {network}/{prefix}"
            ));
        }
        Ok(Self {
            first: address,
            last: from_u128(address, value | host_mask),
        })
    }

    /// Parses `a.b.c.d/n`, `a.b.c.d`, or `first-last` (IPv6 alike).
    pub fn parse(text: &str) -> Result<Self, String> {
        let address = |part: &str| {
            part.trim()
                .parse::<IpAddr>()
                .map_err(|_| format!("{:?} is not an IPv4 or IPv6 address", part.trim()))
        };
        if let Some((first, last)) = text.split_once('-') {
            let (first, last) = (address(first)?, address(last)?);
            return Self::new(first, last).ok_or_else(|| {
                if first.is_ipv4() == last.is_ipv4() {
                    format!("{first} comes after {last}")
                } else {
                    format!("{first} and {last} are of different address families")
                }
            });
        }
        Self::parse_network(text)
    }

    /// Parses a CIDR or a single address (a /32 or /128), not a `first-last` range.
    pub fn parse_network(text: &str) -> Result<Self, String> {
        match text.split_once('/') {
            Some((network, prefix)) => {
                let network = network
                    .parse::<IpAddr>()
                    .map_err(|_| format!("{network:?} is not an IPv4 or IPv6 address"))?;
                let prefix = prefix
                    .parse::<u8>()
                    .map_err(|_| format!("{prefix:?} is not a prefix length"))?;
                Self::cidr(network, prefix)
            }
            None => text
                .parse::<IpAddr>()
                .map(Self::single)
                .map_err(|_| format!("{text:?} is not an address, CIDR or first-last range")),
        }
    }

    /// The first address.
    pub fn first(&self) -> IpAddr {
        self.first
    }

    /// The last address.
    pub fn last(&self) -> IpAddr {
        self.last
    }

    /// Whether this is an IPv4 range.
    pub fn is_ipv4(&self) -> bool {
        self.first.is_ipv4()
    }

    /// Whether `address` lies inside.
    pub fn contains(&self, address: IpAddr) -> bool {
        address.is_ipv4() == self.is_ipv4() && self.first <= address && address <= self.last
    }

    /// Whether all of this range lies inside `other`.
    pub fn within(&self, other: &Self) -> bool {
        other.contains(self.first) && other.contains(self.last)
    }

    /// Whether the two ranges share an address.
    pub fn overlaps(&self, other: &Self) -> bool {
        self.is_ipv4() == other.is_ipv4() && self.first <= other.last && other.first <= self.last
    }

    /// How many addresses it holds, saturating at `u128::MAX` (only `::/0` does).
    pub fn size(&self) -> u128 {
        (to_u128(self.last) - to_u128(self.first)).saturating_add(1)
    }

    /// The range as integers, for interval arithmetic within the family.
    pub(crate) fn bounds(&self) -> (u128, u128) {
        (to_u128(self.first), to_u128(self.last))
    }

    /// The address `value` (an integer from [`Self::bounds`]) in this range's family.
    pub(crate) fn address(&self, value: u128) -> IpAddr {
        from_u128(self.first, value)
    }
}

impl AddressRange {
    /// The prefix length when the range is exactly one CIDR block.
    fn prefix(&self) -> Option<u32> {
        let (first, last) = self.bounds();
        let span = last - first;
        let host_bits = 128 - span.leading_zeros();
        let exact = span.checked_add(1).is_none_or(u128::is_power_of_two) && first & span == 0;
        exact.then(|| bits_of(self.first) - host_bits)
    }
}

/// A single address, a CIDR when the range is exactly one block, else `first-last`.
impl fmt::Display for AddressRange {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix() {
            _ if self.first == self.last => write!(formatter, "{}", self.first),
            Some(prefix) => write!(formatter, "{}/{prefix}", self.first),
            None => write!(formatter, "{}-{}", self.first, self.last),
        }
    }
}

fn bits_of(address: IpAddr) -> u32 {
    if address.is_ipv4() { 32 } else { 128 }
}

fn to_u128(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(address) => u128::from(u32::from(address)),
        IpAddr::V6(address) => u128::from(address),
    }
}

/// `value` as an address of `family_of`'s family (IPv4 values are below 2^32 by construction).
fn from_u128(family_of: IpAddr, value: u128) -> IpAddr {
    match family_of {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(u32::try_from(value).unwrap_or(u32::MAX))),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_cidrs_ranges_and_single_addresses() {
        let cidr = AddressRange::parse("10.0.0.0/30").unwrap();
        assert_eq!(
            (cidr.first(), cidr.last(), cidr.size()),
            (ip("10.0.0.0"), ip("10.0.0.3"), 4)
        );
        let range = AddressRange::parse("10.0.0.10 - 10.0.0.20").unwrap();
        assert_eq!(range.size(), 11);
        assert_eq!(AddressRange::parse("fd00::5").unwrap().size(), 1);
        assert_eq!(AddressRange::parse("::/0").unwrap().size(), u128::MAX);
        assert_eq!(AddressRange::parse("0.0.0.0/0").unwrap().size(), 1 << 32);
        assert_eq!(AddressRange::parse("fd00::/64").unwrap().size(), 1 << 64);
    }

    #[test]
    fn refuses_what_is_not_a_range() {
        for (text, error) in [
            ("10.0.0.1/24", "host bits set; the network is 10.0.0.0/24"),
            ("10.0.0.0/33", "prefix length 33 is longer than 32"),
            ("10.0.0.9-10.0.0.1", "10.0.0.9 comes after 10.0.0.1"),
            ("10.0.0.1-fd00::1", "different address families"),
            ("ten", "is not an address"),
            ("10.0.0.0/x", "is not a prefix length"),
        ] {
            let got = AddressRange::parse(text).unwrap_err();
            assert!(got.contains(error), "{text}: {got}");
        }
        assert!(AddressRange::parse_network("10.0.0.1-10.0.0.2").is_err());
    }

    #[test]
    fn containment_and_overlap_stay_within_a_family() {
        let v4 = AddressRange::parse("10.0.0.0/24").unwrap();
        let v6 = AddressRange::parse("::/0").unwrap();
        assert!(v4.contains(ip("10.0.0.255")) && !v4.contains(ip("10.0.1.0")));
        assert!(!v6.contains(ip("10.0.0.1")) && !v6.overlaps(&v4));
        let inner = AddressRange::parse("10.0.0.8/29").unwrap();
        assert!(inner.within(&v4) && !v4.within(&inner) && inner.overlaps(&v4));
        assert_eq!(inner.address(inner.bounds().0 + 1), ip("10.0.0.9"));
    }

    #[test]
    fn displays_blocks_as_cidrs_and_the_rest_as_ranges() {
        for (text, shown) in [
            ("10.96.0.0/12", "10.96.0.0/12"),
            ("10.0.0.4-10.0.0.7", "10.0.0.4/30"),
            ("10.0.0.5-10.0.0.8", "10.0.0.5-10.0.0.8"),
            ("10.0.0.9", "10.0.0.9"),
            ("::/0", "::/0"),
            ("fd00::/64", "fd00::/64"),
        ] {
            assert_eq!(AddressRange::parse(text).unwrap().to_string(), shown, "{text}");
        }
    }
}
