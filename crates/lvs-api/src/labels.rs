//! Well-known labels and annotations: node roles, the bookkeeping labels on generated objects,
//! and the annotations that set up a Service of our class.

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
/// Service annotation: client persistence, in seconds, 1–31536000: new connections from a client
/// go to the real server its last one went to while it has been idle for less than this (default:
/// none, every connection is scheduled on its own).
pub const PERSISTENCE_ANNOTATION: &str = "lvs.operator.io/persistence";
/// Service annotation: how the directors reach the Service's endpoints. `DirectRouting` (the
/// default): the nodes' InternalIPs on the Service port, where kube-proxy hands the packets to
/// the pods. `NAT` or `Tunnel`: straight to the ready endpoints' own addresses (pod IPs, of the
/// VIP's family), for clusters whose pod network the directors can route to. NAT uses each
/// endpoint's port (the Service's `targetPort`) and needs nothing of the pods' nodes: the
/// directors rewrite and masquerade, so replies return through them. Tunnel cannot change ports:
/// endpoints on another port than the Service port are left out (a warning says so), and each
/// pod must accept IPIP itself (the VIP on its own `tunl0`); only a `hostNetwork` pod's node is
/// set up for it. The real servers then name no node (a pod IP is no node's address, and
/// naming its node would ask the node to accept the VIP for it); `externalTrafficPolicy` and
/// `healthCheckNodePort` do not apply, every ready endpoint is a real server.
pub const FORWARDING_ANNOTATION: &str = "lvs.operator.io/forwarding";
/// Service annotation: how the directors check the real servers: `None`, `TCP[:port]`,
/// `HTTP[:port][/path]`, `HTTPS[:port][/path]` or `DNS[:port]` (e.g. `HTTP/healthz`,
/// `HTTPS:8443/ready`; path default `/`, healthy on status 200; port default the real server's).
/// Every 5 s, timeout 3 s, rise 2, fall 3. A UDP or SCTP port gets a TCP, HTTP or HTTPS check
/// only when it names a port. Default: with direct routing and `externalTrafficPolicy: Local`,
/// HTTP on the Service's `healthCheckNodePort` (kube-proxy's answer whether the node has a ready
/// endpoint); otherwise the VirtualServer default (TCP connect for TCP ports, none for others).
pub const HEALTH_CHECK_ANNOTATION: &str = "lvs.operator.io/health-check";
/// Service annotation: which directors serve the VIP: comma-separated `key=value` labels (up to
/// 8, Kubernetes label syntax) a director node must carry besides
/// `lvs.operator.io/director=true` (default, or empty: every director the pool allows).
pub const DIRECTORS_ANNOTATION: &str = "lvs.operator.io/directors";
