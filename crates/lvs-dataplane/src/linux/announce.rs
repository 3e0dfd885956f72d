//! Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6) from a raw packet
//! socket, so neighbours and switches learn at once which MAC now holds a VIP. The first frame
//! goes out before `announce` returns; the repeats follow from a background task, so taking a
//! VIP does not wait for them. The frame builders are pure and tested byte by byte.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use tokio::task::AbortHandle;

use super::datalink::{RawChannel, arp_request, icmpv6_checksum};
use crate::dataplane::{DataplaneError, Object, Operation};

/// A gratuitous ARP request: sender and target address are both the VIP, broadcast.
pub fn gratuitous_arp(mac: [u8; 6], address: Ipv4Addr) -> Vec<u8> {
    arp_request(mac, address, address)
}

/// An unsolicited neighbour advertisement for `address` to all nodes (ff02::1), override set,
/// with the target link-layer address option (RFC 4861 §7.2.6).
pub fn unsolicited_neighbour_advertisement(mac: [u8; 6], address: Ipv6Addr) -> Vec<u8> {
    let all_nodes: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut icmp = Vec::with_capacity(32);
    icmp.extend_from_slice(&[136, 0, 0, 0]); // type NA, code, checksum placeholder
    icmp.extend_from_slice(&0x2000_0000u32.to_be_bytes()); // override flag
    icmp.extend_from_slice(&address.octets());
    icmp.extend_from_slice(&[2, 1]); // option: target link-layer address, 8 bytes
    icmp.extend_from_slice(&mac);
    let checksum = icmpv6_checksum(&address, &all_nodes, &icmp);
    icmp[2..4].copy_from_slice(&checksum.to_be_bytes());

    let mut frame = Vec::with_capacity(14 + 40 + icmp.len());
    frame.extend_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&0x86ddu16.to_be_bytes());
    frame.extend_from_slice(&[0x60, 0, 0, 0]); // version 6
    frame.extend_from_slice(&u16::try_from(icmp.len()).unwrap_or(32).to_be_bytes());
    frame.extend_from_slice(&[58, 255]); // ICMPv6, hop limit 255 (required for ND)
    frame.extend_from_slice(&address.octets());
    frame.extend_from_slice(&all_nodes.octets());
    frame.extend_from_slice(&icmp);
    frame
}

/// Sends one announcement for `address` on `interface` now, and `count - 1` more `interval`
/// apart from a background task (a failed repeat is logged). Errors of the first frame are
/// returned, and then nothing is repeated; the handle stops the repeats (the VIP was released).
pub async fn announce(
    interface: &str,
    address: IpAddr,
    count: u32,
    interval: Duration,
) -> Result<Option<AbortHandle>, DataplaneError> {
    let interface = interface.to_owned();
    send_then_repeat(count, interval, move || send(interface.clone(), address)).await
}

/// Runs `send` once and returns its error, if any; after a success runs it `count - 1` more
/// times, `interval` apart, in a spawned task that logs failures and keeps going. `None` when
/// there is nothing to repeat.
pub async fn send_then_repeat<SendFrame, Sending>(
    count: u32,
    interval: Duration,
    send: SendFrame,
) -> Result<Option<AbortHandle>, DataplaneError>
where
    SendFrame: Fn() -> Sending + Send + 'static,
    Sending: Future<Output = Result<(), DataplaneError>> + Send + 'static,
{
    if count == 0 {
        return Ok(None);
    }
    send().await?;
    if count == 1 {
        return Ok(None);
    }
    let repeats = tokio::spawn(async move {
        for _ in 1..count {
            tokio::time::sleep(interval).await;
            if let Err(error) = send().await {
                tracing::warn!(%error, "a repeated announcement failed");
            }
        }
    });
    Ok(Some(repeats.abort_handle()))
}

/// Sends one announcement frame (on the blocking pool).
async fn send(interface: String, address: IpAddr) -> Result<(), DataplaneError> {
    let object = Object::Vip {
        address,
        interface: Some(interface.clone()),
    };
    let task_object = object.clone();
    tokio::task::spawn_blocking(move || send_once(&interface, address, task_object))
        .await
        .map_err(|error| DataplaneError::reason(Operation::Announce, object, error.to_string()))?
}

fn send_once(interface: &str, address: IpAddr, object: Object) -> Result<(), DataplaneError> {
    let mut channel = RawChannel::open(interface, Duration::from_millis(1), Operation::Announce, object)?;
    let frame = match address {
        IpAddr::V4(address) => gratuitous_arp(channel.mac, address),
        IpAddr::V6(address) => unsolicited_neighbour_advertisement(channel.mac, address),
    };
    channel.send(&frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0x0a, 0x64, 0, 0x02];

    #[test]
    fn gratuitous_arp_layout() {
        let frame = gratuitous_arp(MAC, Ipv4Addr::new(10, 100, 0, 100));
        assert_eq!(frame.len(), 42);
        assert_eq!(&frame[0..6], &[0xff; 6]);
        assert_eq!(&frame[12..14], &[0x08, 0x06]);
        assert_eq!(&frame[20..22], &[0, 1], "request");
        assert_eq!(&frame[22..28], &MAC, "sender MAC");
        assert_eq!(&frame[28..32], &[10, 100, 0, 100], "sender IP = VIP");
        assert_eq!(&frame[38..42], &[10, 100, 0, 100], "target IP = VIP");
    }

    #[test]
    fn neighbour_advertisement_layout_and_checksum() {
        let address: Ipv6Addr = "fd00:100::100".parse().unwrap();
        let frame = unsolicited_neighbour_advertisement(MAC, address);
        assert_eq!(frame.len(), 14 + 40 + 32);
        assert_eq!(&frame[12..14], &[0x86, 0xdd]);
        assert_eq!(frame[20], 58, "ICMPv6");
        assert_eq!(frame[21], 255, "hop limit");
        let icmp = &frame[54..];
        assert_eq!(icmp[0], 136, "neighbour advertisement");
        assert_eq!(&icmp[8..24], &address.octets(), "target");
        assert_eq!(&icmp[26..32], &MAC, "target link-layer address option");
        // A correct checksum makes the one's-complement sum over pseudo-header + message zero.
        let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
        assert_eq!(icmpv6_checksum(&address, &all_nodes, icmp), 0);
    }

    fn counting_sender(
        sent: &std::sync::Arc<std::sync::atomic::AtomicU32>,
        fail_first: bool,
    ) -> impl Fn() -> std::future::Ready<Result<(), DataplaneError>> + Send + 'static {
        let sent = sent.clone();
        move || {
            let attempt = sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::future::ready(if fail_first && attempt == 0 {
                Err(DataplaneError::Failed {
                    operation: Operation::Announce,
                    object: Object::Vip {
                        address: "10.0.0.1".parse().unwrap(),
                        interface: Some("eth0".into()),
                    },
                    reason: "raw socket: permission denied".into(),
                    errno: Some(1),
                })
            } else {
                Ok(())
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_frame_is_sent_before_returning_and_the_repeats_follow() {
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let interval = Duration::from_millis(200);
        let started = tokio::time::Instant::now();
        let repeats = send_then_repeat(3, interval, counting_sender(&sent, false))
            .await
            .unwrap();
        assert!(repeats.is_some());
        assert_eq!(started.elapsed(), Duration::ZERO, "returned without waiting");
        assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), 1);
        tokio::time::sleep(interval + Duration::from_millis(1)).await;
        assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), 2);
        tokio::time::sleep(interval * 5).await;
        assert_eq!(
            sent.load(std::sync::atomic::Ordering::SeqCst),
            3,
            "count frames in all"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_first_frame_is_returned_and_not_repeated() {
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let error = send_then_repeat(3, Duration::from_millis(200), counting_sender(&sent, true))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("permission denied"), "{error}");
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn repeats_stop_when_aborted_and_a_single_frame_spawns_nothing() {
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let interval = Duration::from_millis(200);
        let repeats = send_then_repeat(5, interval, counting_sender(&sent, false))
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(interval + Duration::from_millis(1)).await;
        repeats.abort();
        tokio::time::sleep(interval * 10).await;
        assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), 2);

        let once = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let repeats = send_then_repeat(1, interval, counting_sender(&once, false))
            .await
            .unwrap();
        assert!(repeats.is_none());
        assert_eq!(once.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
