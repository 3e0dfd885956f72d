//! IPVS connection entries per virtual address, from `/proc/net/ip_vs_conn` — on a standby,
//! the connections its backup sync daemon received. The parser is pure.
//!
//! The table (`ip_vs_conn_seq_show` in `net/netfilter/ipvs/ip_vs_conn.c`) has a header line,
//! then one line per entry: `Pro FromIP FPrt ToIP TPrt DestIP DPrt State Expires [PEName
//! PEData]`. IPv4 addresses are 8 hex digits (`0A640064`), IPv6 ones the full colon form
//! (`%pI6`: `fd00:0100:0000:0000:0000:0000:0000:0100`); ports are 4 hex digits. `ToIP` is the
//! virtual address.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use crate::dataplane::{DataplaneError, Object, Operation};

/// Where the kernel lists IPVS connections (present while `ip_vs` is loaded).
pub const CONNECTION_TABLE: &str = "/proc/net/ip_vs_conn";

/// The virtual address of one line of the table. `None` for the header, for persistence
/// templates of fwmark services (protocol `IP`: their `ToIP` holds the mark, not an address)
/// and for anything unreadable.
pub fn virtual_address(line: &str) -> Option<IpAddr> {
    let mut fields = line.split_whitespace();
    let protocol = fields.next()?;
    if protocol == "IP" {
        return None;
    }
    parse_address(fields.nth(2)?)
}

/// Entries per virtual address in the text of the table.
pub fn count(table: &str) -> BTreeMap<IpAddr, u64> {
    let mut counts = BTreeMap::new();
    for line in table.lines() {
        tally(&mut counts, line);
    }
    counts
}

/// Counts one line of the table.
fn tally(counts: &mut BTreeMap<IpAddr, u64>, line: &str) {
    if let Some(address) = virtual_address(line) {
        *counts.entry(address).or_insert(0) += 1;
    }
}

/// An address as the table prints it: 8 hex digits (IPv4), 32 hex digits or colon form (IPv6).
fn parse_address(field: &str) -> Option<IpAddr> {
    let hex = field.bytes().all(|byte| byte.is_ascii_hexdigit());
    match field.len() {
        8 if hex => u32::from_str_radix(field, 16)
            .ok()
            .map(|bits| IpAddr::V4(Ipv4Addr::from(bits))),
        32 if hex => u128::from_str_radix(field, 16)
            .ok()
            .map(|bits| IpAddr::V6(Ipv6Addr::from(bits))),
        _ if field.contains(':') => field.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        _ => None,
    }
}

/// Reads the table at `path` line by line (it may be large) on the blocking pool. A missing
/// table (no `ip_vs` module) is an empty one.
pub async fn read(path: &Path) -> Result<BTreeMap<IpAddr, u64>, DataplaneError> {
    let path: PathBuf = path.to_owned();
    let object = Object::Other(path.display().to_string());
    tokio::task::spawn_blocking(move || read_blocking(&path))
        .await
        .map_err(|error| DataplaneError::reason(Operation::Read, object, error.to_string()))?
}

fn read_blocking(path: &Path) -> Result<BTreeMap<IpAddr, u64>, DataplaneError> {
    let error = |source: std::io::Error| {
        DataplaneError::failed(
            Operation::Read,
            Object::Other(path.display().to_string()),
            &source,
        )
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => return Err(error(source)),
    };
    let mut counts = BTreeMap::new();
    for line in std::io::BufReader::new(file).lines() {
        tally(&mut counts, &line.map_err(error)?);
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP 0A64000A B2A4 0A640064 0050 0A64000B 0050 ESTABLISHED     899
TCP 0A64000C C001 0A640064 0050 0A64000B 0050 FIN_WAIT         57
UDP 0A64000A 9C40 0A640065 0035 0A64000C 0035 UDP             299
TCP 0A640000 0000 0A640064 0050 0A64000B 0050 NONE            179
IP  0A640000 0000 00000007 0000 0A64000B 0000 ASSURED         179
TCP fd00:0100:0000:0000:0000:0000:0000:000a B2A4 fd00:0100:0000:0000:0000:0000:0000:0100 0050 fd00:0100:0000:0000:0000:0000:0000:000b 0050 ESTABLISHED     899
TCP fd00:0100:0000:0000:0000:0000:0000:000c B2A5 fd00:0100:0000:0000:0000:0000:0000:0100 0050 0A64000B 0050 SYN_RECV         59
UDP 0A64000A 13C4 0A640066 13C4 0A64000B 13C4 UDP             299 sip abc@example
";

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn entries_are_counted_per_virtual_address_in_both_families() {
        assert_eq!(
            count(TABLE),
            BTreeMap::from([
                (ip("10.100.0.100"), 3),
                (ip("10.100.0.101"), 1),
                (ip("10.100.0.102"), 1),
                (ip("fd00:100::100"), 2),
            ])
        );
    }

    #[test]
    fn lines_that_are_not_entries_count_for_nothing() {
        assert_eq!(virtual_address(TABLE.lines().next().unwrap()), None, "header");
        assert_eq!(
            virtual_address("IP  0A640000 0000 00000007 0000 0A64000B 0000 ASSURED 179"),
            None,
            "fwmark template: ToIP is the mark"
        );
        assert_eq!(virtual_address("TCP 0A64000A B2A4"), None, "truncated");
        assert_eq!(
            virtual_address("TCP 0A64000A B2A4 0A6400XY 0050"),
            None,
            "not hex"
        );
        assert_eq!(virtual_address(""), None);
        assert!(count("").is_empty());
    }

    #[test]
    fn addresses_in_every_form_the_kernel_prints() {
        assert_eq!(parse_address("0A640064"), Some(ip("10.100.0.100")));
        assert_eq!(
            parse_address("fd000100000000000000000000000100"),
            Some(ip("fd00:100::100"))
        );
        assert_eq!(
            parse_address("fd00:0100:0000:0000:0000:0000:0000:0100"),
            Some(ip("fd00:100::100"))
        );
        assert_eq!(parse_address("0050"), None);
    }

    #[tokio::test]
    async fn a_missing_table_is_empty_and_a_present_one_is_read() {
        let folder = std::env::temp_dir().join(format!("lvs-connections-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join("ip_vs_conn");
        assert!(read(&path).await.unwrap().is_empty(), "no ip_vs module");
        std::fs::write(&path, TABLE).unwrap();
        let counts = read(&path).await.unwrap();
        std::fs::remove_dir_all(&folder).unwrap();
        assert_eq!(counts, count(TABLE));
    }
}
