//! Condition types, statuses and reasons reported on `VirtualServer`, `RealServer` and
//! `LvsNodeConfig` status. Types and reasons are CamelCase, as the Kubernetes API conventions ask.

/// Condition types.
pub mod types {
    /// VirtualServer: the spec is valid and does not conflict with another VirtualServer.
    pub const ACCEPTED: &str = "Accepted";
    /// VirtualServer: every selected director has programmed the IPVS service.
    pub const PROGRAMMED: &str = "Programmed";
    /// VirtualServer: the active director serves at least one healthy real server.
    pub const READY: &str = "Ready";
    /// VirtualServer: serving, but with fewer healthy real servers or directors than declared.
    pub const DEGRADED: &str = "Degraded";
    /// RealServer: health checks from the directors pass.
    pub const HEALTHY: &str = "Healthy";
    /// RealServer: its node holds the VIPs and ARP settings the forwarding method needs.
    pub const CONFIGURED: &str = "Configured";
    /// LvsNodeConfig: the agent applied the whole config to the kernel.
    pub const SYNCED: &str = "Synced";
    /// VirtualServer / LvsNodeConfig: another host answers ARP or NDP for a VIP this node owns.
    pub const DUPLICATE_VIP: &str = "DuplicateVIP";
    /// LvsNodeConfig: a peer director signs its failover heartbeats with a key this node does
    /// not have.
    pub const FAILOVER_KEY_MISMATCH: &str = "FailoverKeyMismatch";
    /// AddressPool: the spec parses and every entry is usable.
    pub const VALID: &str = "Valid";
    /// AddressPool: another pool holds some of the same addresses.
    pub const OVERLAPPING: &str = "Overlapping";
    /// Service (`type: LoadBalancer` of our class): the VirtualServer of its first port is
    /// accepted and a director holds its VIP. Qualified, as a condition on a type the operator
    /// does not own should be.
    pub const VIP_READY: &str = "lvs.operator.io/VIPReady";
}

/// Condition statuses.
pub mod status {
    /// The condition holds.
    pub const TRUE: &str = "True";
    /// The condition does not hold.
    pub const FALSE: &str = "False";
    /// Not known yet.
    pub const UNKNOWN: &str = "Unknown";
}

/// Condition reasons.
pub mod reasons {
    /// Accepted=True.
    pub const ACCEPTED: &str = "Accepted";
    /// Accepted=False: a field is invalid.
    pub const INVALID: &str = "Invalid";
    /// Accepted=False: an older VirtualServer owns the same VIP, port and protocol (or fwmark).
    pub const CONFLICT: &str = "Conflict";
    /// Accepted=False: the VIP is the address of a node.
    pub const VIP_IS_NODE_ADDRESS: &str = "VIPIsNodeAddress";
    /// Accepted=False: no AddressPool admits the VirtualServer's namespace (or the pool it names
    /// does not exist or does not admit it).
    pub const NO_ADDRESS_POOL: &str = "NoAddressPool";
    /// Accepted=False: the VIP is in no AddressPool that admits the namespace.
    pub const ADDRESS_NOT_IN_POOL: &str = "AddressNotInPool";
    /// Accepted=False: every address of the admitting pools is taken.
    pub const POOL_EXHAUSTED: &str = "PoolExhausted";
    /// Accepted=False: the pool does not allow the forwarding method.
    pub const METHOD_NOT_ALLOWED: &str = "ForwardingMethodNotAllowed";
    /// Accepted=False: the pool does not allow the directors' interface.
    pub const INTERFACE_NOT_ALLOWED: &str = "InterfaceNotAllowed";
    /// Accepted=False: the address is special-purpose (link-local, documentation, reserved, …)
    /// and no pool or backend network explicitly holds it.
    pub const SPECIAL_PURPOSE_ADDRESS: &str = "SpecialPurposeAddress";
    /// Accepted=False: the address is in the cluster's Service network.
    pub const SERVICE_NETWORK_ADDRESS: &str = "ServiceNetworkAddress";
    /// Accepted=False: the fwmark has bits outside the operator's fwmark mask.
    pub const FWMARK_OUTSIDE_MASK: &str = "FwmarkOutsideMask";
    /// Pair refused: a real server or fallback outside the pool's backend networks, or at a
    /// director's own address.
    pub const BACKEND_NOT_ALLOWED: &str = "BackendNotAllowed";
    /// Pair refused: a RealServer names a node that does not own its address and the pool does
    /// not allow pinning.
    pub const PINNING_NOT_ALLOWED: &str = "NodePinningNotAllowed";
    /// Warning (Accepted=True): the VIP was handed out by a pool that no longer holds it; it keeps
    /// working until the VirtualServer is deleted.
    pub const OUTSIDE_POOL: &str = "OutsidePool";
    /// AddressPool Overlapping=True.
    pub const OVERLAPS: &str = "Overlaps";
    /// AddressPool Overlapping=False.
    pub const NO_OVERLAP: &str = "NoOverlap";
    /// AddressPool Valid=True.
    pub const VALID: &str = "Valid";
    /// Programmed=False: no node matches the director selector.
    pub const NO_DIRECTORS: &str = "NoDirectors";
    /// Programmed=True.
    pub const PROGRAMMED: &str = "Programmed";
    /// Programmed=False: some directors have not programmed the service yet.
    pub const PENDING: &str = "Pending";
    /// Programmed=False or Configured=False: the kernel refused an operation.
    pub const KERNEL_ERROR: &str = "KernelError";
    /// Programmed=False: a director has an IPVS service with this VirtualServer's exact key
    /// (protocol, address and port, or fwmark) that lvs-operator did not create — kube-proxy's,
    /// keepalived's, one made by hand. It is left alone, and the VirtualServer is not
    /// programmed there.
    pub const FOREIGN_SERVICE: &str = "ForeignService";
    /// Ready=True.
    pub const SERVING: &str = "Serving";
    /// Ready=False: no real server is healthy (the fallback server, if any, answers).
    pub const NO_HEALTHY_REAL_SERVERS: &str = "NoHealthyRealServers";
    /// Degraded=True: some real servers are unhealthy.
    pub const REAL_SERVERS_UNHEALTHY: &str = "RealServersUnhealthy";
    /// Degraded=False.
    pub const AS_DECLARED: &str = "AsDeclared";
    /// Healthy=True.
    pub const CHECK_PASSED: &str = "CheckPassed";
    /// Healthy=False.
    pub const CHECK_FAILED: &str = "CheckFailed";
    /// Configured=True.
    pub const CONFIGURED: &str = "Configured";
    /// Configured=Unknown: the real server is not on a node with the real-server role; its VIP and
    /// ARP settings are the administrator's job.
    pub const UNMANAGED: &str = "Unmanaged";
    /// Configured=False / Accepted=False for a pair: a port remap under DirectRouting or Tunnel.
    pub const PORT_REMAP_NOT_ALLOWED: &str = "PortRemapNotAllowed";
    /// Warning: a director of a failover VIP has no address heartbeats can reach.
    pub const NO_NODE_ADDRESS: &str = "NoNodeAddress";
    /// Warning: connection sync is on but no interface is known for it.
    pub const NO_SYNC_INTERFACE: &str = "NoSyncInterface";
    /// Warning: a VIP shared by VirtualServers with different failover settings (one election
    /// per VIP: the first VirtualServer's settings are used).
    pub const FAILOVER_SETTINGS_OVERRIDDEN: &str = "FailoverSettingsOverridden";
    /// Warning: connection sync settings a director does not run (one pair of sync daemons per
    /// node, set up for its first synced VIP).
    pub const CONNECTION_SYNC_OVERRIDDEN: &str = "ConnectionSyncOverridden";
    /// DuplicateVIP=True: another host answers ARP/NDP for a VIP this node holds or held.
    pub const ANSWERED_ELSEWHERE: &str = "AnsweredElsewhere";
    /// DuplicateVIP=False.
    pub const NO_DUPLICATE: &str = "NoDuplicate";
    /// FailoverKeyMismatch=True: a peer director's heartbeats are signed with another key.
    pub const PEER_USES_ANOTHER_KEY: &str = "PeerUsesAnotherKey";
    /// FailoverKeyMismatch=False.
    pub const KEYS_MATCH: &str = "KeysMatch";
    /// VIPReady=True on a Service: a director holds its VIP.
    pub const DIRECTOR_ACTIVE: &str = "DirectorActive";
    /// VIPReady=False on a Service: no director holds its VIP (none can, or none does).
    pub const NO_DIRECTOR: &str = "NoDirector";
    /// VIPReady=False on a Service: its VIP or its first port is refused (no admitting pool,
    /// exhausted, conflict, invalid).
    pub const REFUSED: &str = "Refused";
    /// Synced=True on an LvsNodeConfig.
    pub const SYNCED: &str = "Synced";
    /// Synced=False on an LvsNodeConfig.
    pub const SYNC_FAILED: &str = "SyncFailed";
}
