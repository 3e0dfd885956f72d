//! Well-known labels and annotations: node roles and the bookkeeping labels on generated objects.

/// A node carrying this label with value `true` may act as a director (holds VIPs, runs IPVS).
pub const DIRECTOR_ROLE: &str = "lvs.operator.io/director";
/// A node carrying this label with value `true` may be configured as a real server.
pub const REAL_SERVER_ROLE: &str = "lvs.operator.io/real-server";
/// Set on every `LvsNodeConfig` shard: the node the config is for (agents select by it).
pub const NODE_NAME: &str = "lvs.operator.io/node";
/// The value a role label must have to count.
pub const ROLE_ENABLED: &str = "true";
/// The field manager the controller uses for server-side apply.
pub const CONTROLLER_FIELD_MANAGER: &str = "lvs-controller";
/// The field manager an agent uses for its node config's status.
pub const AGENT_FIELD_MANAGER: &str = "lvs-agent";
