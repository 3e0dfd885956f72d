//! The VIPs a VirtualServer asks for — `address`, `addresses`, `family`, `families` — resolved
//! into one family (single-stack) or one VIP per family (dual-stack), and a dual-stack
//! VirtualServer split into one single-family part per VIP for admission and build.

use std::net::IpAddr;
use std::num::NonZeroU16;

use lvs_api::{AddressFamily, ResolvedPersistence, VirtualServerSpec, VirtualServerStatus};

use super::{ValidVirtualServer, family_of, fields};
use crate::problem::ProblemSink;

/// Whether a VirtualServer is dual-stack, and where it stands in being split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DualStack {
    /// One address family.
    No,
    /// Dual-stack, as validated: the IPv4 part, then the IPv6 part. The VirtualServer's own
    /// `address`, `family`, `recorded`, `persistence` and `fallback` are those of the IPv4 part.
    Unsplit(Vec<FamilyPart>),
    /// One family of a dual-stack VirtualServer, after [`ValidVirtualServer::split`]: the real
    /// servers of the other family are not its destinations, and not an error.
    Part,
}

/// What differs between the families of a dual-stack VirtualServer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyPart {
    /// The family.
    pub family: AddressFamily,
    /// The VIP asked for (absent: the controller picks one of `family`).
    pub address: Option<IpAddr>,
    /// The VIP and pool of this family recorded in status by an earlier pass.
    pub recorded: Option<(IpAddr, String)>,
    /// Persistence with this family's mask (`netmask` for IPv4, `prefixLength` for IPv6).
    pub persistence: Option<ResolvedPersistence>,
    /// The fallback server, on the part of its family.
    pub fallback: Option<(IpAddr, Option<NonZeroU16>)>,
}

/// The VIPs asked for, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Vips {
    /// One family, with the address asked for if any.
    Single(AddressFamily, Option<IpAddr>),
    /// Both families: the IPv4 address and the IPv6 address asked for, if any.
    Dual(Option<IpAddr>, Option<IpAddr>),
}

/// Resolves `address`, `addresses`, `family` and `families` (the CEL rules' checks, for
/// standalone mode), recording what is wrong.
pub(super) fn resolve(sink: &mut ProblemSink<'_>, spec: &VirtualServerSpec) -> Vips {
    let mut given: Vec<IpAddr> = Vec::new();
    if let Some(address) = &spec.address {
        given.extend(fields::unicast_address(sink, "spec.address", address));
    }
    if let Some(addresses) = &spec.addresses {
        if spec.address.is_some() {
            sink.invalid("spec.addresses", "set spec.address or spec.addresses, not both");
        }
        if addresses.is_empty() || addresses.len() > 2 {
            sink.invalid(
                "spec.addresses",
                format!("must hold 1 or 2 addresses, got {}", addresses.len()),
            );
        }
        for (index, address) in addresses.iter().enumerate() {
            given.extend(fields::unicast_address(
                sink,
                &format!("spec.addresses[{index}]"),
                address,
            ));
        }
        if let [first, second] = given.as_slice()
            && family_of(first) == family_of(second)
        {
            sink.invalid(
                "spec.addresses",
                format!(
                    "{first} and {second} are both {:?}; give at most one address per family",
                    family_of(first)
                ),
            );
        }
    }
    if spec.fwmark.is_some() && (spec.addresses.is_some() || spec.families.is_some()) {
        sink.invalid(
            "spec.fwmark",
            "spec.addresses and spec.families are for port services; a fwmark service has one address family",
        );
    }
    let mut families: Vec<AddressFamily> = match &spec.families {
        Some(families) => {
            if spec.family.is_some() {
                sink.invalid("spec.families", "set spec.family or spec.families, not both");
            }
            if families.is_empty() || families.len() > 2 {
                sink.invalid(
                    "spec.families",
                    format!("must hold 1 or 2 families, got {}", families.len()),
                );
            }
            let mut sorted = families.clone();
            sorted.sort();
            sorted.dedup();
            if sorted.len() != families.len() {
                sink.invalid("spec.families", "lists a family twice");
            }
            for address in &given {
                if !sorted.contains(&family_of(address)) {
                    let field = if spec.address.is_some() {
                        "spec.address"
                    } else {
                        "spec.addresses"
                    };
                    sink.invalid(
                        field,
                        format!("{address} is {:?}, not one of spec.families", family_of(address)),
                    );
                }
            }
            sorted
        }
        None => given.iter().map(family_of).collect(),
    };
    families.sort();
    families.dedup();
    let of = |family: AddressFamily| given.iter().copied().find(|address| family_of(address) == family);
    match families.as_slice() {
        [_, _] => {
            if let Some(family) = spec.family {
                sink.invalid(
                    "spec.family",
                    format!("{family:?} does not match the addresses of both families; use spec.families"),
                );
            }
            Vips::Dual(of(AddressFamily::IPv4), of(AddressFamily::IPv6))
        }
        [family] => {
            if let Some(asked) = spec.family
                && asked != *family
            {
                let what = given
                    .first()
                    .map_or_else(String::new, |address| format!(" address {address}"));
                sink.invalid("spec.family", format!("{asked:?} does not match{what}"));
            }
            Vips::Single(*family, of(*family))
        }
        _ => Vips::Single(spec.family.unwrap_or_default(), None),
    }
}

/// The VIP and pool recorded in status for `family`: the entry of `status.addresses`, else
/// `status.address` (written before `addresses` existed).
pub(super) fn recorded(
    status: Option<&VirtualServerStatus>,
    family: AddressFamily,
) -> Option<(IpAddr, String)> {
    let status = status?;
    let of_family = |address: &str, pool: Option<&String>| {
        let address = address.parse::<IpAddr>().ok()?;
        let pool = pool?.clone();
        (family_of(&address) == family).then_some((address, pool))
    };
    status
        .addresses
        .iter()
        .find_map(|entry| of_family(&entry.address, entry.address_pool.as_ref()))
        .or_else(|| of_family(status.address.as_deref()?, status.address_pool.as_ref()))
}

impl ValidVirtualServer {
    /// One VirtualServer per VIP family: itself when single-stack, else one part per family
    /// (marked [`DualStack::Part`]), IPv4 first, each with its family's VIP, persistence and
    /// fallback. The parts share the key: conflicts, pools and elections are per VIP.
    pub fn split(self) -> Vec<Self> {
        let DualStack::Unsplit(parts) = &self.dual_stack else {
            return vec![self];
        };
        parts
            .iter()
            .map(|part| Self {
                family: part.family,
                address: part.address,
                recorded: part.recorded.clone(),
                persistence: part.persistence.clone(),
                fallback: part.fallback,
                dual_stack: DualStack::Part,
                ..self.clone()
            })
            .collect()
    }

    /// Whether this is one family of a dual-stack VirtualServer (after [`split`](Self::split)).
    pub fn is_family_part(&self) -> bool {
        self.dual_stack == DualStack::Part
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{Kind, ObjectKey};

    fn spec(yaml: &str) -> VirtualServerSpec {
        serde_saphyr::from_str(yaml).unwrap_or_else(|error| panic!("{yaml}: {error}"))
    }

    fn resolved(yaml: &str) -> (Vips, Vec<String>) {
        let key = ObjectKey::new(Kind::VirtualServer, "default", "web");
        let mut sink = ProblemSink::new(&key);
        let vips = resolve(&mut sink, &spec(yaml));
        (
            vips,
            sink.problems
                .iter()
                .map(|problem| problem.field.clone())
                .collect(),
        )
    }

    const SELECTOR: &str = "port: 80\nrealServers: {selector: {}}\n";

    #[test]
    fn resolves_single_and_dual_stack() {
        let v4: IpAddr = "192.0.2.10".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let v6: IpAddr = "2001:db8::10".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let cases = [
            (
                "address: 192.0.2.10\n",
                Vips::Single(AddressFamily::IPv4, Some(v4)),
            ),
            ("family: IPv6\n", Vips::Single(AddressFamily::IPv6, None)),
            (
                "addresses: ['2001:db8::10']\n",
                Vips::Single(AddressFamily::IPv6, Some(v6)),
            ),
            (
                "addresses: ['2001:db8::10', 192.0.2.10]\n",
                Vips::Dual(Some(v4), Some(v6)),
            ),
            ("families: [IPv6, IPv4]\n", Vips::Dual(None, None)),
            (
                "address: 192.0.2.10\nfamilies: [IPv4, IPv6]\n",
                Vips::Dual(Some(v4), None),
            ),
            ("families: [IPv6]\n", Vips::Single(AddressFamily::IPv6, None)),
        ];
        for (yaml, expected) in cases {
            let (vips, problems) = resolved(&format!("{yaml}{SELECTOR}"));
            assert_eq!(vips, expected, "{yaml}");
            assert!(problems.is_empty(), "{yaml}: {problems:?}");
        }
    }

    #[test]
    fn refuses_what_the_cel_rules_refuse() {
        let cases = [
            (
                "address: 192.0.2.10\naddresses: ['2001:db8::10']\n",
                "spec.addresses",
            ),
            ("addresses: [192.0.2.10, 192.0.2.11]\n", "spec.addresses"),
            ("addresses: [192.0.2.10, not-an-ip]\n", "spec.addresses[1]"),
            ("family: IPv4\nfamilies: [IPv4]\n", "spec.families"),
            ("address: 192.0.2.10\nfamilies: [IPv6]\n", "spec.address"),
            ("addresses: ['2001:db8::10']\nfamily: IPv4\n", "spec.family"),
        ];
        for (yaml, field) in cases {
            let (_, problems) = resolved(&format!("{yaml}{SELECTOR}"));
            assert!(
                problems.iter().any(|problem| problem == field),
                "{yaml}: {problems:?}"
            );
        }
        let (_, problems) = resolved("fwmark: 3\nfamilies: [IPv4, IPv6]\nrealServers: {selector: {}}\n");
        assert!(
            problems.iter().any(|problem| problem == "spec.fwmark"),
            "{problems:?}"
        );
    }
}
