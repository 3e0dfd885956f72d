//! The Linux kernel: IPVS over generic netlink, devices and addresses over rtnetlink, sysctls in
//! `/proc/sys`, our nftables tables through `nft`, announcements and duplicate-address probes
//! from a raw socket, connection counts from `/proc/net/ip_vs_conn`, change notifications from
//! rtnetlink and nf_tables multicast groups.

pub mod announce;
pub mod connections;
pub mod datalink;
pub mod interfaces;
pub mod kernel;
pub mod monitor;
pub mod nft;
pub mod probe;
pub mod sysctl;
