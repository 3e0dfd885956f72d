//! The heartbeat directors send each other over UDP: who I am (node name, incarnation,
//! sequence) and, per VIP this peer and I share, my role, eligibility, healthy real servers and
//! how long I have been a synced backup — authenticated with HMAC-SHA256 under a shared key.
//!
//! Our own protocol rather than VRRPv3: VRRPv3 (RFC 5798) has no authentication, elects per
//! virtual router by priority only (no notion of real-server health or sync state), and speaking
//! it would mean raw IP protocol 112 sockets; keepalived can therefore not be a peer during a
//! migration (run one or the other per VIP).
//!
//! Layout (big-endian), version 2: `LVSH`, version, key id (8 bytes: the first 8 bytes of the
//! key's SHA-256, never the key), name length u8 + name, incarnation u64, sequence u64, part
//! u16, parts u16, then VIP entries up to the tag: flags u8 (1 IPv6, 2 active, 4 eligible,
//! 8 wants the VIP, 16 restarting, 32 a synced time follows) + address (4 or 16 bytes) +
//! healthy real servers (LEB128 varint) + synced-backup milliseconds (varint, only with flag
//! 32); then the 32-byte HMAC of everything before it. An IPv4 VIP takes 6 bytes, so about 200
//! fit in one datagram.
//!
//! One heartbeat round is split into parts so that no datagram is larger than
//! [`MAX_DATAGRAM`] bytes (no IP fragmentation, never EMSGSIZE): every part is authenticated and
//! self-contained (its own sequence number, one more than the previous part's) and the
//! receiver takes in each on its own; `part`/`parts` only tell it when a round is complete.
//! The key id in clear lets a receiver tell a peer signing with another key (a
//! misconfiguration it reports) from noise; a key with little entropy could be guessed from it
//! offline, as from any HMAC tag — use 32 random bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ring::{digest, hmac};

const MAGIC: &[u8; 4] = b"LVSH";
/// The wire version; version 1 (every VIP in one datagram, no key id) is not understood.
pub const VERSION: u8 = 2;
/// The largest datagram sent, in bytes of UDP payload (under 1,400): with an IPv6 and a UDP
/// header it fits a 1,500-byte MTU with room to spare for tunnels.
pub const MAX_DATAGRAM: usize = 1_380;
const TAG_LENGTH: usize = 32;
/// Length of the key id in clear.
pub const KEY_ID_LENGTH: usize = 8;
const FLAG_IPV6: u8 = 1;
const FLAG_ACTIVE: u8 = 2;
const FLAG_ELIGIBLE: u8 = 4;
const FLAG_WANTS_VIP: u8 = 8;
const FLAG_RESTARTING: u8 = 16;
const FLAG_SYNCED: u8 = 32;
const KNOWN_FLAGS: u8 = 63;

/// A director's claim on a VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not holding the VIP.
    Standby,
    /// Holding the VIP.
    Active,
}

/// What one director says about one VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipReport {
    /// The VIP.
    pub address: IpAddr,
    /// Its role for the VIP.
    pub role: Role,
    /// Whether it may hold the VIP (IPVS programmed, uplink up).
    pub eligible: bool,
    /// It asks the active director to hand the VIP over (preemption).
    pub wants_vip: bool,
    /// Real servers it considers healthy.
    pub healthy: u16,
    /// How long it has been receiving connections as a sync backup, in milliseconds (0: not).
    pub synced_millis: u32,
    /// The sender's agent is restarting and leaves the VIP in its kernel: peers keep it as
    /// the holder for their restart hold, unless a probe finds nobody answering for the VIP.
    pub restarting: bool,
}

/// One heartbeat datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// The sender's node name.
    pub node: String,
    /// Per agent start, larger than every earlier one of the same node (see `restart`).
    pub incarnation: u64,
    /// Increases with every datagram of one incarnation (each part has its own).
    pub sequence: u64,
    /// Which part of its round this is, from 0.
    pub part: u16,
    /// How many parts the round has (at least 1).
    pub parts: u16,
    /// Its VIPs (those the sender shares with the receiver, or this part of them).
    pub vips: Vec<VipReport>,
}

/// Why a datagram was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not a heartbeat of this protocol or version.
    #[error("not an lvs-operator heartbeat (version 2)")]
    Foreign,
    /// Cut short or inconsistent.
    #[error("malformed heartbeat: {0}")]
    Malformed(&'static str),
    /// Signed with a key this node does not have (its id in clear says which); the node name
    /// it claims is unauthenticated.
    #[error("heartbeat from {node:?} signed with another key (key id {key_id})")]
    OtherKey {
        /// The node name in the datagram (not authenticated).
        node: String,
        /// The key id in the datagram, hexadecimal.
        key_id: String,
    },
    /// The key id is one of ours but the HMAC does not match: tampered with.
    #[error("heartbeat authentication failed (tampered with, or a key id collision)")]
    Authentication,
}

impl WireError {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Foreign => "foreign",
            Self::Malformed(_) => "malformed",
            Self::OtherKey { .. } => "other_key",
            Self::Authentication => "authentication",
        }
    }
}

/// A key heartbeats are signed with, and its id.
pub struct HeartbeatKey {
    key: hmac::Key,
    id: [u8; KEY_ID_LENGTH],
}

impl HeartbeatKey {
    /// A key from the secret's bytes.
    pub fn new(secret: &[u8]) -> Self {
        let mut id = [0; KEY_ID_LENGTH];
        id.copy_from_slice(&digest::digest(&digest::SHA256, secret).as_ref()[..KEY_ID_LENGTH]);
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            id,
        }
    }

    /// The id sent in clear: the first 8 bytes of the secret's SHA-256, in hexadecimal.
    pub fn id(&self) -> String {
        hex(&self.id)
    }
}

impl std::fmt::Debug for HeartbeatKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "HeartbeatKey({})", self.id())
    }
}

/// Which of the keys a datagram was signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeySlot {
    /// The current key.
    #[default]
    Current,
    /// The previous key (a rotation in progress).
    Previous,
}

/// The keys of a node: heartbeats are signed with the current one (or, to a peer last heard
/// under the previous one, with that: a peer not rotated yet keeps hearing us), and accepted
/// under either.
#[derive(Debug)]
pub struct HeartbeatKeys {
    /// The key heartbeats are signed with.
    pub current: HeartbeatKey,
    /// A key still accepted during a rotation.
    pub previous: Option<HeartbeatKey>,
}

impl HeartbeatKeys {
    /// One key, no rotation.
    pub fn single(current: HeartbeatKey) -> Self {
        Self {
            current,
            previous: None,
        }
    }

    /// The key in `slot` (the current one when there is no previous one).
    pub fn get(&self, slot: KeySlot) -> &HeartbeatKey {
        match slot {
            KeySlot::Previous => self.previous.as_ref().unwrap_or(&self.current),
            KeySlot::Current => &self.current,
        }
    }

    fn find(&self, id: &[u8]) -> Option<(KeySlot, &HeartbeatKey)> {
        if self.current.id == id {
            return Some((KeySlot::Current, &self.current));
        }
        self.previous
            .as_ref()
            .filter(|key| key.id == id)
            .map(|key| (KeySlot::Previous, key))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Bytes of the header for a node name of `name_length` bytes.
fn header_length(name_length: usize) -> usize {
    MAGIC.len() + 1 + KEY_ID_LENGTH + 1 + name_length + 8 + 8 + 2 + 2
}

/// Bytes of one VIP entry.
fn entry_length(vip: &VipReport) -> usize {
    let address = match vip.address {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 16,
    };
    let synced = if vip.synced_millis == 0 {
        0
    } else {
        varint_length(u64::from(vip.synced_millis))
    };
    1 + address + varint_length(u64::from(vip.healthy)) + synced
}

fn varint_length(mut value: u64) -> usize {
    let mut length = 1;
    while value >= 0x80 {
        value >>= 7;
        length += 1;
    }
    length
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The node name as sent: at most 255 bytes.
fn wire_name(node: &str) -> &[u8] {
    let name = node.as_bytes();
    &name[..name.len().min(255)]
}

/// The datagrams of one heartbeat round from `node` to one peer: `vips` split into parts of
/// at most [`MAX_DATAGRAM`] bytes, with sequences `first_sequence`, `first_sequence + 1`, …
/// (the caller's next sequence is `first_sequence` plus the number of datagrams).
pub fn encode_round(
    node: &str,
    incarnation: u64,
    first_sequence: u64,
    vips: &[VipReport],
    key: &HeartbeatKey,
) -> Vec<Vec<u8>> {
    let budget = MAX_DATAGRAM - header_length(wire_name(node).len()) - TAG_LENGTH;
    let mut chunks: Vec<&[VipReport]> = Vec::new();
    let mut start = 0;
    let mut used = 0;
    for (index, vip) in vips.iter().enumerate() {
        let length = entry_length(vip);
        if used + length > budget {
            chunks.push(&vips[start..index]);
            start = index;
            used = 0;
        }
        used += length;
    }
    chunks.push(&vips[start..]);
    chunks.truncate(usize::from(u16::MAX));
    let parts = u16::try_from(chunks.len()).unwrap_or(u16::MAX);
    chunks
        .into_iter()
        .zip(0u16..)
        .map(|(chunk, part)| {
            encode_part(
                node,
                incarnation,
                first_sequence + u64::from(part),
                part,
                parts,
                chunk,
                key,
            )
        })
        .collect()
}

/// The signed datagram for `heartbeat` (one part, as it is; [`encode_round`] splits).
pub fn encode(heartbeat: &Heartbeat, key: &HeartbeatKey) -> Vec<u8> {
    encode_part(
        &heartbeat.node,
        heartbeat.incarnation,
        heartbeat.sequence,
        heartbeat.part,
        heartbeat.parts,
        &heartbeat.vips,
        key,
    )
}

fn encode_part(
    node: &str,
    incarnation: u64,
    sequence: u64,
    part: u16,
    parts: u16,
    vips: &[VipReport],
    key: &HeartbeatKey,
) -> Vec<u8> {
    let name = wire_name(node);
    let entries: usize = vips.iter().map(entry_length).sum();
    let mut out = Vec::with_capacity(header_length(name.len()) + entries + TAG_LENGTH);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&key.id);
    out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(name);
    out.extend_from_slice(&incarnation.to_be_bytes());
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&part.to_be_bytes());
    out.extend_from_slice(&parts.to_be_bytes());
    for vip in vips {
        let mut flags = 0;
        if vip.address.is_ipv6() {
            flags |= FLAG_IPV6;
        }
        if vip.role == Role::Active {
            flags |= FLAG_ACTIVE;
        }
        if vip.eligible {
            flags |= FLAG_ELIGIBLE;
        }
        if vip.wants_vip {
            flags |= FLAG_WANTS_VIP;
        }
        if vip.restarting {
            flags |= FLAG_RESTARTING;
        }
        if vip.synced_millis != 0 {
            flags |= FLAG_SYNCED;
        }
        out.push(flags);
        match vip.address {
            IpAddr::V4(address) => out.extend_from_slice(&address.octets()),
            IpAddr::V6(address) => out.extend_from_slice(&address.octets()),
        }
        put_varint(&mut out, u64::from(vip.healthy));
        if vip.synced_millis != 0 {
            put_varint(&mut out, u64::from(vip.synced_millis));
        }
    }
    let tag = hmac::sign(&key.key, &out);
    out.extend_from_slice(tag.as_ref());
    out
}

/// Verifies and parses a datagram under whichever of `keys` its key id names; says which.
pub fn decode(datagram: &[u8], keys: &HeartbeatKeys) -> Result<(Heartbeat, KeySlot), WireError> {
    let prefix = MAGIC.len() + 1;
    if datagram.len() < prefix || &datagram[..4] != MAGIC || datagram[4] != VERSION {
        return Err(WireError::Foreign);
    }
    let Some(body_length) = datagram.len().checked_sub(TAG_LENGTH) else {
        return Err(WireError::Malformed("shorter than its authentication tag"));
    };
    let (body, tag) = datagram.split_at(body_length);
    let mut reader = Reader {
        bytes: body,
        at: prefix,
    };
    let key_id = reader.take(KEY_ID_LENGTH)?;
    let Some((slot, key)) = keys.find(key_id) else {
        // Unauthenticated: only to say who seems to use another key.
        let node = reader
            .u8()
            .and_then(|length| reader.take(usize::from(length)))
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .unwrap_or_default();
        return Err(WireError::OtherKey {
            node,
            key_id: hex(key_id),
        });
    };
    hmac::verify(&key.key, body, tag).map_err(|_| WireError::Authentication)?;
    let name_length = usize::from(reader.u8()?);
    let node = String::from_utf8(reader.take(name_length)?.to_vec())
        .map_err(|_| WireError::Malformed("node name is not UTF-8"))?;
    let incarnation = reader.u64()?;
    let sequence = reader.u64()?;
    let part = reader.u16()?;
    let parts = reader.u16()?;
    if part >= parts {
        return Err(WireError::Malformed("part beyond the parts of its round"));
    }
    let mut vips = Vec::new();
    while reader.at < body.len() {
        let flags = reader.u8()?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(WireError::Malformed("unknown VIP flags"));
        }
        let address = if flags & FLAG_IPV6 != 0 {
            IpAddr::V6(Ipv6Addr::from(reader.array::<16>()?))
        } else {
            IpAddr::V4(Ipv4Addr::from(reader.array::<4>()?))
        };
        let healthy = u16::try_from(reader.varint()?)
            .map_err(|_| WireError::Malformed("healthy real servers out of range"))?;
        let synced_millis = if flags & FLAG_SYNCED != 0 {
            u32::try_from(reader.varint()?).map_err(|_| WireError::Malformed("synced time out of range"))?
        } else {
            0
        };
        vips.push(VipReport {
            address,
            role: if flags & FLAG_ACTIVE != 0 {
                Role::Active
            } else {
                Role::Standby
            },
            eligible: flags & FLAG_ELIGIBLE != 0,
            wants_vip: flags & FLAG_WANTS_VIP != 0,
            restarting: flags & FLAG_RESTARTING != 0,
            healthy,
            synced_millis,
        });
    }
    let heartbeat = Heartbeat {
        node,
        incarnation,
        sequence,
        part,
        parts,
        vips,
    };
    Ok((heartbeat, slot))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Result<&'a [u8], WireError> {
        let end = self
            .at
            .checked_add(length)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(WireError::Malformed("cut short"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// An unsigned LEB128 varint of at most 5 bytes (32 bits).
    fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for shift in (0..35).step_by(7) {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::Malformed("varint too long"))
    }
}

#[cfg(test)]
#[path = "wire/tests.rs"]
mod tests;
