//! The Linux kernel: IPVS over generic netlink, devices and addresses over rtnetlink, sysctls in
//! `/proc/sys`, our nftables tables through `nft`, announcements from a raw socket.

pub mod announce;
pub mod interfaces;
pub mod kernel;
pub mod nft;
pub mod sysctl;
