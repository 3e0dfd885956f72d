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

/// The `spec.loadBalancerClass` of the `type: LoadBalancer` Services lvs-operator serves.
pub const LOAD_BALANCER_CLASS: &str = "lvs.operator.io/ipvs";
/// Set on every VirtualServer and RealServer the controller derives from a Service: the
/// Service's name. User-made objects carrying it are ignored, so no one can join a Service's VIP.
pub const SERVICE_NAME: &str = "lvs.operator.io/service";
/// Set on every object derived from a Service port: the port's name, or its number when unnamed.
pub const SERVICE_PORT: &str = "lvs.operator.io/service-port";
/// Service annotation: the IPVS scheduler of every port (`rr`, `wlc`, …; default `wlc`).
pub const SCHEDULER_ANNOTATION: &str = "lvs.operator.io/scheduler";
/// Service annotation: the AddressPool to take the VIP from (default: any admitting pool).
pub const ADDRESS_POOL_ANNOTATION: &str = "lvs.operator.io/address-pool";
/// Service annotation: the VIP(s) asked for, comma-separated, at most one per family (default:
/// `spec.loadBalancerIP`, else picked from a pool).
pub const ADDRESS_ANNOTATION: &str = "lvs.operator.io/address";
