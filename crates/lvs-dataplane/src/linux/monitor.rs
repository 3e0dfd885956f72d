//! Kernel change notifications on a Linux node, so drift of what we own is repaired within about
//! a second instead of at the next resync. What is watched, and why:
//!
//! - **Devices and addresses**: the rtnetlink groups `RTNLGRP_LINK`, `RTNLGRP_IPV4_IFADDR` and
//!   `RTNLGRP_IPV6_IFADDR`, on a socket of their own (on the socket we write through,
//!   netlink-proto would hand a notification carrying one of our sequence numbers to that
//!   request). Kept: host addresses (/32, /128) we hold or that sit on `lvs0`, and the devices we
//!   created or set up (`Watched`, from the ownership record), so pods' veths and other
//!   programs' addresses cause no pass.
//! - **Our nftables tables**: the `NFNLGRP_NFTABLES` group of a `NETLINK_NETFILTER` socket, kept
//!   when a message names `arp`/`inet lvs-operator` (attribute 1 is the table's name in every
//!   nf_tables object message). Chosen over `nft -j monitor`: no child process to supervise and
//!   restart, no dependence on the JSON of one nft version, the same socket code as rtnetlink;
//!   it needs CAP_NET_ADMIN, which the agent has anyway. When the group cannot be joined (no
//!   nf_tables, no privilege) this is logged once and table drift is left to the resync timer.
//! - **Not routes**: we own none. A VIP's local route comes and goes with its address, which is
//!   watched; a route deleted by hand is not state `observe` reads, so no pass could repair it.
//! - **Not IPVS, not sysctls**: the kernel sends no notifications for them; a run loop reads
//!   them instead (`Dataplane::observe_services`).
//!
//! Our own writes: an rtnetlink notification carries the port id of the socket that asked for
//! the change, so ours (the writer socket's) are dropped and every other program's kept — exact.
//! IPv6 address notifications, link notifications before Linux 6.3 (port 0) and nftables
//! transactions (made by an `nft` child; the generation's pid would name it, but not across
//! PID namespaces) carry nothing we can match, so each write also marks its object (address,
//! device, our tables) for `OWN_WRITE_WINDOW`, and a notification without a port about a
//! marked object counts as ours. (A hand edit of that same object within that second is then
//! left to the next resync; anything that slips through costs one pass that finds nothing.)
//!
//! The nftables notifications also keep a generation number: while it stands, the kernel's
//! listing of our tables (the fingerprint `observe` compares) is reused instead of starting
//! `nft` twice per pass.
//!
//! A burst of notifications is debounced (`DEBOUNCE`) into one bump of the counter. When a
//! socket fails or its buffer overran (notifications were lost), the counter is bumped and the
//! socket opened again.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc::UnboundedReceiver;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::sys::protocols::NETLINK_NETFILTER;
use rtnetlink::sys::{AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket};
use rtnetlink::{Handle, MulticastGroup};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::changes::{DEBOUNCE, Watched};
use crate::linux::interfaces;
use crate::linux::nft::TABLE;
use crate::ops::host_prefix;

/// How long after one of our writes notifications about the object it wrote count as ours.
pub const OWN_WRITE_WINDOW: Duration = Duration::from_secs(1);

/// How long to wait before opening a failed notification socket again.
const REOPEN_DELAY: Duration = Duration::from_secs(1);

/// `NFNLGRP_NFTABLES`: the multicast group of nf_tables changes.
const NFNLGRP_NFTABLES: u32 = 7;
/// `NFNL_SUBSYS_NFTABLES`: the high byte of an nf_tables message type.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// `NFT_MSG_NEWGEN`: the end of a transaction (names no table).
const NFT_MSG_NEWGEN: u16 = 15;
/// `NFPROTO_INET` and `NFPROTO_ARP`: the families of our tables.
const OUR_FAMILIES: [u8; 2] = [1, 3];
/// `ENOBUFS`: the receive buffer overran.
const ENOBUFS: i32 = 105;

/// An object our own writes change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A VIP address.
    Address(IpAddr),
    /// A device, by name.
    Device(String),
    /// Our nftables tables.
    Nftables,
}

/// What the notification tasks share with the kernel that writes.
#[derive(Debug)]
struct Shared {
    watched: RwLock<Watched>,
    own_writes: Mutex<Vec<(Subject, Instant)>>,
    /// The port id of the socket we write devices and addresses through (0: unknown).
    writer_port: u32,
    /// Bumped on every notification that names our tables (ours included), and whenever
    /// notifications may have been lost.
    nftables_generation: AtomicU64,
    /// The nf_tables socket is subscribed: `nftables_generation` covers every change.
    nftables_live: AtomicBool,
}

impl Shared {
    fn mark(&self, subject: Subject) {
        let now = Instant::now();
        let mut marks = self.own_writes.lock().unwrap_or_else(PoisonError::into_inner);
        marks.retain(|(other, at)| *other != subject && now.duration_since(*at) < OWN_WRITE_WINDOW);
        marks.push((subject, now));
    }

    fn recently_written(&self, subject: &Subject) -> bool {
        let now = Instant::now();
        self.own_writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|(other, at)| other == subject && now.duration_since(*at) < OWN_WRITE_WINDOW)
    }

    fn watched(&self) -> Watched {
        self.watched
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The change notifications of a Linux node: started on the first `subscribe`, so a program
/// that never asks (a benchmark, `lvs-agent plan`) opens no extra socket.
#[derive(Debug)]
pub struct ChangeMonitor {
    shared: Arc<Shared>,
    counter: OnceLock<Arc<watch::Sender<u64>>>,
}

impl ChangeMonitor {
    /// A monitor for the kernel whose devices and addresses we write through a socket with
    /// port id `writer_port` (0: unknown; then only the marks tell our own writes).
    pub fn new(writer_port: u32) -> Self {
        Self {
            shared: Arc::new(Shared {
                watched: RwLock::new(Watched::default()),
                own_writes: Mutex::default(),
                writer_port,
                nftables_generation: AtomicU64::new(0),
                nftables_live: AtomicBool::new(false),
            }),
            counter: OnceLock::new(),
        }
    }

    /// Sets what is ours.
    pub fn watch(&self, watched: Watched) {
        *self
            .shared
            .watched
            .write()
            .unwrap_or_else(PoisonError::into_inner) = watched;
    }

    /// Runs one of our writes to `subject`, marked so its notifications are not taken for drift.
    pub async fn own_write<T>(&self, subject: Subject, write: impl Future<Output = T>) -> T {
        // Before (the notification may be read before the write returns) and after (the window
        // counts from the end of a slow write).
        self.shared.mark(subject.clone());
        let result = write.await;
        self.shared.mark(subject);
        result
    }

    /// A number that changes whenever our nftables tables may have changed (by anyone), while
    /// their notifications are subscribed; `None` otherwise. A listing of the tables taken
    /// under one number stays true while the number does (the kernel's fingerprint is cached
    /// on it: `nft` is a process to start, the slowest part of a pass).
    pub fn nftables_generation(&self) -> Option<u64> {
        self.shared
            .nftables_live
            .load(Ordering::SeqCst)
            .then(|| self.shared.nftables_generation.load(Ordering::SeqCst))
    }

    /// The counter of changes made by others. Once this returns, the sockets are subscribed:
    /// no later change is missed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.counter.get_or_init(|| self.start()).subscribe()
    }

    fn start(&self) -> Arc<watch::Sender<u64>> {
        let counter = Arc::new(watch::channel(0).0);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no async runtime: kernel change notifications are off");
            return counter;
        };
        let (signal, signals) = mpsc::unbounded_channel();
        runtime.spawn(debounce(signals, Arc::clone(&counter)));
        match open_route_socket() {
            Ok(opened) => {
                runtime.spawn(watch_routes(Arc::clone(&self.shared), signal.clone(), opened));
            }
            Err(error) => tracing::warn!(
                %error,
                "cannot subscribe to device and address changes; VIP drift is repaired at the next resync"
            ),
        }
        match open_nftables_socket() {
            Ok(socket) => {
                self.shared.nftables_live.store(true, Ordering::SeqCst);
                runtime.spawn(watch_nftables(Arc::clone(&self.shared), signal, socket));
            }
            Err(error) => tracing::warn!(
                %error,
                "cannot subscribe to nftables changes; drift of our tables is repaired at the next resync"
            ),
        }
        counter
    }
}

/// Bumps the counter once per burst of signals.
async fn debounce(mut signals: mpsc::UnboundedReceiver<()>, counter: Arc<watch::Sender<u64>>) {
    while signals.recv().await.is_some() {
        tokio::time::sleep(DEBOUNCE).await;
        while signals.try_recv().is_ok() {}
        counter.send_modify(|count| *count += 1);
    }
}

type RouteMessages = UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

/// A route socket joined to the link and address groups, its connection running.
fn open_route_socket() -> std::io::Result<(Handle, RouteMessages)> {
    let (connection, handle, messages) = rtnetlink::new_multicast_connection(&[
        MulticastGroup::Link,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
    ])?;
    tokio::spawn(connection);
    Ok((handle, messages))
}

async fn watch_routes(
    shared: Arc<Shared>,
    signal: mpsc::UnboundedSender<()>,
    opened: (Handle, RouteMessages),
) {
    // Device names by index (address notifications name only the index), listed once after
    // subscribing and then kept up to date from the link notifications.
    let mut devices = device_names().await.unwrap_or_else(|error| {
        tracing::warn!(%error, "listing devices for change notifications");
        BTreeMap::new()
    });
    let (mut _handle, mut messages) = opened;
    loop {
        while let Some((message, _)) = messages.next().await {
            let changed = match &message.payload {
                // The buffer overran: changes were lost.
                NetlinkPayload::Overrun(_) => true,
                NetlinkPayload::InnerMessage(inner) => route_subject(&shared.watched(), &mut devices, inner)
                    .is_some_and(|subject| {
                        let port = message.header.port_number;
                        let ours = if port != 0 && shared.writer_port != 0 {
                            port == shared.writer_port
                        } else {
                            shared.recently_written(&subject)
                        };
                        !ours
                    }),
                _ => false,
            };
            if changed && signal.send(()).is_err() {
                return;
            }
        }
        tracing::warn!("the device and address notification socket closed; opening it again");
        if signal.send(()).is_err() {
            return;
        }
        loop {
            tokio::time::sleep(REOPEN_DELAY).await;
            match open_route_socket() {
                Ok((handle, reopened)) => {
                    _handle = handle;
                    messages = reopened;
                    break;
                }
                Err(error) => tracing::warn!(%error, "opening the device and address notification socket"),
            }
        }
    }
}

/// Device names by index, listed on a socket of its own: a socket runs one dump at a time (the
/// writer's is busy with the executor's), and on the notification socket a notification that
/// carries the listing's sequence number would be taken for part of it.
async fn device_names() -> Result<BTreeMap<u32, String>, crate::dataplane::DataplaneError> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(|error| {
        crate::dataplane::DataplaneError::failed(
            crate::dataplane::Operation::Open,
            crate::dataplane::Object::Other("an rtnetlink socket".into()),
            &error,
        )
    })?;
    let connection = tokio::spawn(connection);
    let devices = interfaces::devices(&handle).await;
    connection.abort();
    Ok(devices?
        .into_iter()
        .map(|(index, (name, _))| (index, name))
        .collect())
}

/// The object of ours a device or address notification is about, if any; keeps `devices`
/// (names by index) up to date.
pub fn route_subject(
    watched: &Watched,
    devices: &mut BTreeMap<u32, String>,
    message: &RouteNetlinkMessage,
) -> Option<Subject> {
    match message {
        RouteNetlinkMessage::NewLink(link) | RouteNetlinkMessage::DelLink(link) => {
            let name = link_name(link).or_else(|| devices.get(&link.header.index).cloned());
            if matches!(message, RouteNetlinkMessage::DelLink(_)) {
                devices.remove(&link.header.index);
            } else if let Some(name) = &name {
                devices.insert(link.header.index, name.clone());
            }
            name.filter(|name| watched.holds_device(name))
                .map(Subject::Device)
        }
        RouteNetlinkMessage::NewAddress(address) | RouteNetlinkMessage::DelAddress(address) => {
            let local = interfaces::address_of(address)?;
            let device = devices.get(&address.header.index).map(String::as_str);
            (address.header.prefix_len == host_prefix(&local) && watched.holds_address(local, device))
                .then_some(Subject::Address(local))
        }
        _ => None,
    }
}

fn link_name(link: &LinkMessage) -> Option<String> {
    link.attributes.iter().find_map(|attribute| match attribute {
        LinkAttribute::IfName(name) => Some(name.clone()),
        _ => None,
    })
}

/// A `NETLINK_NETFILTER` socket joined to the nf_tables group.
fn open_nftables_socket() -> std::io::Result<TokioSocket> {
    let mut socket = TokioSocket::new(NETLINK_NETFILTER)?;
    socket.socket_mut().bind_auto()?;
    socket.socket_mut().add_membership(NFNLGRP_NFTABLES)?;
    Ok(socket)
}

async fn watch_nftables(shared: Arc<Shared>, signal: mpsc::UnboundedSender<()>, mut socket: TokioSocket) {
    let bump = || shared.nftables_generation.fetch_add(1, Ordering::SeqCst);
    loop {
        let changed = match socket.recv_from_full().await {
            Ok((datagram, _)) => {
                let ours = names_our_table(&datagram);
                if ours {
                    bump();
                }
                ours && !shared.recently_written(&Subject::Nftables)
            }
            Err(error) if error.raw_os_error() == Some(ENOBUFS) => {
                bump();
                true
            }
            Err(error) => {
                tracing::warn!(%error, "reading nftables notifications; opening the socket again");
                shared.nftables_live.store(false, Ordering::SeqCst);
                bump();
                if signal.send(()).is_err() {
                    return;
                }
                loop {
                    tokio::time::sleep(REOPEN_DELAY).await;
                    match open_nftables_socket() {
                        Ok(reopened) => {
                            socket = reopened;
                            bump();
                            shared.nftables_live.store(true, Ordering::SeqCst);
                            break;
                        }
                        Err(error) => tracing::warn!(%error, "opening the nftables notification socket"),
                    }
                }
                false
            }
        };
        if changed && signal.send(()).is_err() {
            return;
        }
    }
}

/// Whether a datagram of nf_tables notifications (one or more netlink messages: header,
/// `nfgenmsg`, attributes) names one of our tables.
pub fn names_our_table(datagram: &[u8]) -> bool {
    let mut rest = datagram;
    while let (Some(length), Some(kind)) = (u32_at(rest, 0), u16_at(rest, 4)) {
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        if length < 16 || length > rest.len() {
            return false;
        }
        let body = &rest[16..length];
        if kind >> 8 == NFNL_SUBSYS_NFTABLES
            && kind & 0xff != NFT_MSG_NEWGEN
            && body.first().is_some_and(|family| OUR_FAMILIES.contains(family))
            && body.get(4..).and_then(table_name) == Some(TABLE.as_bytes())
        {
            return true;
        }
        rest = rest.get(align(length)..).unwrap_or_default();
    }
    false
}

/// Attribute 1 of an nf_tables object message: the table's name (`NFTA_TABLE_NAME`,
/// `NFTA_CHAIN_TABLE`, `NFTA_RULE_TABLE`, `NFTA_SET_TABLE`, ...), without its NUL.
fn table_name(mut attributes: &[u8]) -> Option<&[u8]> {
    while let (Some(length), Some(kind)) = (u16_at(attributes, 0), u16_at(attributes, 2)) {
        let length = usize::from(length);
        if length < 4 || length > attributes.len() {
            return None;
        }
        if kind & 0x3fff == 1 {
            let value = &attributes[4..length];
            return Some(value.strip_suffix(&[0]).unwrap_or(value));
        }
        attributes = attributes.get(align(length)..).unwrap_or_default();
    }
    None
}

fn align(length: usize) -> usize {
    length.div_ceil(4) * 4
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
#[path = "monitor/tests.rs"]
mod tests;
