//! The part of nft's JSON schema (libnftables-json(5)) that we send: add/delete commands for
//! tables, named sets, base chains and rules, and the few statements and expressions our rules
//! are made of.
//!
//! Why our own types and not the `nftables` crate: that crate depends on `schemars`
//! unconditionally, which would bring the Kubernetes-side schema machinery into the netlink
//! crate (issue #12: lvs-dataplane's tree holds no kube, k8s-openapi or schemars), and we need
//! only a handful of objects. Serialization only: what nft lists back is compared as untyped
//! JSON (`nft::fingerprint`). Field names and order follow the man page, which is also the order
//! nft itself lists them in; `nft/tests.rs` pins the output byte for byte.

use serde::{Serialize, Serializer};

/// A batch: `{"nftables": [COMMAND, ...]}`, run by `nft -j -f` as one transaction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Nftables {
    /// The commands, in order.
    pub nftables: Vec<Command>,
}

/// A command on one object: `{"add": OBJECT}` or `{"delete": OBJECT}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    /// Creates the object; adding a table or chain that exists is not an error.
    Add(Object),
    /// Deletes the object (with everything in it); an error if it does not exist.
    Delete(Object),
}

/// A ruleset object: `{"table": ...}`, `{"set": ...}`, `{"chain": ...}` or `{"rule": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Object {
    /// A table.
    Table(Table),
    /// A named set.
    Set(Set),
    /// A base chain.
    Chain(Chain),
    /// A rule.
    Rule(Rule),
}

/// `{"family": FAMILY, "name": NAME}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    /// The table's family.
    pub family: Family,
    /// The table's name.
    pub name: &'static str,
}

/// A named set: `{"family", "table", "name", "type", "size", "elem"}`. A set that rules update
/// from the packet path (`Statement::Update`) is made dynamic by nft itself (nft 1.0.6's JSON
/// parser knows no `dynamic` flag).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Set {
    /// The family of its table.
    pub family: Family,
    /// Its table's name.
    pub table: &'static str,
    /// The set's name.
    pub name: &'static str,
    /// The type of its elements.
    #[serde(rename = "type")]
    pub kind: SetType,
    /// Most elements it holds (a dynamic set needs a bound).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    /// Its elements (none: an empty set).
    #[serde(rename = "elem", skip_serializing_if = "Vec::is_empty")]
    pub elements: Vec<Expression>,
}

/// The type of a set's elements: one data type (`ipv4_addr`) or a concatenation of several
/// (`["ipv4_addr", "inet_proto", "inet_service"]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SetType {
    /// One data type.
    One(&'static str),
    /// A concatenation, matched with `Expression::Concat` of as many parts.
    Concat(&'static [&'static str]),
}

/// A base chain: `{"family", "table", "name", "type", "hook", "prio", "policy"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chain {
    /// The family of its table.
    pub family: Family,
    /// Its table's name.
    pub table: &'static str,
    /// The chain's name.
    pub name: &'static str,
    /// What the chain may do.
    #[serde(rename = "type")]
    pub kind: ChainType,
    /// Where in the packet path it runs.
    pub hook: Hook,
    /// Its order among chains on the same hook (lower runs first).
    #[serde(rename = "prio")]
    pub priority: i32,
    /// The verdict for packets no rule decided.
    pub policy: Policy,
}

/// A rule appended to a chain: `{"family", "table", "chain", "expr": [STATEMENT, ...]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// The family of its table.
    pub family: Family,
    /// Its table's name.
    pub table: &'static str,
    /// Its chain's name.
    pub chain: &'static str,
    /// Its statements, in order.
    #[serde(rename = "expr")]
    pub statements: Vec<Statement>,
}

/// An address family (the families our tables use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// ARP packets.
    Arp,
    /// IPv4 and IPv6 together.
    Inet,
}

/// A base chain's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainType {
    /// Filtering and mangling.
    Filter,
    /// Address translation (the first packet of a connection only).
    Nat,
}

/// A netfilter hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hook {
    /// Packets for this host (ARP: requests and replies received).
    Input,
    /// Packets from this host (ARP: requests and replies sent).
    Output,
    /// Every packet received, before routing.
    Prerouting,
    /// Every packet sent or forwarded, after routing.
    Postrouting,
}

/// A base chain's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Let the packet through.
    Accept,
}

/// A statement of a rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Statement {
    /// `{"match": {"left", "right", "op"}}`: the rule goes on only if it holds.
    Match(Match),
    /// `{"mangle": {"key", "value"}}`: sets a packet field or meta key.
    Mangle(Mangle),
    /// `{"accept": null}`: this chain lets the packet through (later chains still see it).
    #[serde(serialize_with = "null")]
    Accept,
    /// `{"drop": null}`: the packet is dropped.
    #[serde(serialize_with = "null")]
    Drop,
    /// `{"set": {"op": "update", "elem", "set", "stmt"}}`: adds the packet's key to a dynamic
    /// set (or finds it there) and runs the element's own statements, e.g. a per-key limit.
    #[serde(rename = "set")]
    Update(Update),
    /// `{"limit": {"rate", "burst", "per", "inv"}}`: packets over a rate (with `inv`) go on.
    Limit(Limit),
    /// `{"redirect": null}`: destination NAT to this host, the port kept.
    #[serde(serialize_with = "null")]
    Redirect,
    /// `{"masquerade": null}`: source NAT to the outgoing interface's address.
    #[serde(serialize_with = "null")]
    Masquerade,
    /// `{"notrack": null}`: the packet skips connection tracking (so every NAT chain too).
    #[serde(serialize_with = "null")]
    Notrack,
}

/// `left op right`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Match {
    /// What the packet has.
    pub left: Expression,
    /// What it is compared with.
    pub right: Expression,
    /// The comparison.
    pub op: Operator,
}

/// Updates the element `element` of the dynamic set `set` (`"@name"`) and runs `statements`
/// with that element's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Update {
    /// Always `update`: an existing element keeps its state.
    pub op: &'static str,
    /// The key, from the packet (e.g. `ip saddr`).
    #[serde(rename = "elem")]
    pub element: Expression,
    /// The set, as `@name`.
    pub set: String,
    /// The element's statements.
    #[serde(rename = "stmt")]
    pub statements: Vec<Statement>,
}

/// A token-bucket rate in packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limit {
    /// Packets per `per`.
    pub rate: u32,
    /// Packets allowed at once above the rate.
    pub burst: u32,
    /// The rate's time unit: `second`.
    pub per: &'static str,
    /// `true`: the statement matches packets *over* the rate (`limit rate over`).
    pub inv: bool,
}

/// Sets `key` to `value`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mangle {
    /// The field or meta key to set.
    pub key: Expression,
    /// Its new value.
    pub value: Expression,
}

/// A match operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Operator {
    /// `==`: equal, or (right side a set) a member.
    #[serde(rename = "==")]
    Equal,
    /// `in`: any of the flags on the right is set (e.g. `ct state established,related`).
    #[serde(rename = "in")]
    In,
}

/// An expression: a packet field, a meta key, a set, a bitwise operation, or an immediate value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expression {
    /// `{"payload": {"protocol", "field"}}`: a header field, e.g. `ip daddr`, `arp saddr ip`.
    Payload(Payload),
    /// `{"payload": {"base", "offset", "len"}}`: raw bits of a header, for a field nft has no
    /// name for (the target address of a neighbour solicitation, on nft 1.0.6).
    #[serde(rename = "payload")]
    RawPayload(RawPayload),
    /// `{"meta": {"key"}}`: packet metadata.
    Meta(Meta),
    /// `{"ct": {"key"}}`: the packet's connection-tracking state.
    Ct(Ct),
    /// `{"set": [...]}`: an anonymous set, matched by membership.
    Set(Vec<Expression>),
    /// `{"concat": [...]}`: parts joined into one key, e.g. `ip daddr . meta l4proto . th dport`
    /// or a set element `10.0.0.1 . tcp . 80`.
    Concat(Vec<Expression>),
    /// `{"&": [LEFT, RIGHT]}`: bitwise and, e.g. of the packet mark and the bits it keeps.
    #[serde(rename = "&")]
    And(Box<(Expression, Expression)>),
    /// `{"|": [LEFT, RIGHT]}`: bitwise or, e.g. of the kept bits and our mark.
    #[serde(rename = "|")]
    Or(Box<(Expression, Expression)>),
    /// A string nft parses in the left side's type: an address, `request`, `tcp`.
    #[serde(untagged)]
    String(String),
    /// A number: a port, a mark.
    #[serde(untagged)]
    Number(u32),
    /// A plain list, e.g. the flags on the right of `in`.
    #[serde(untagged)]
    List(Vec<Expression>),
}

/// A connection-tracking expression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ct {
    /// Which property: `state`.
    pub key: &'static str,
}

/// A header field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payload {
    /// The header: `arp`, `ip`, `ip6`, `tcp`, `udp`, `sctp`, `icmp`, `icmpv6`, or `th` (the
    /// transport header, whichever it is).
    pub protocol: &'static str,
    /// The field: `daddr`, `dport`, `type`, `operation`, `saddr ip`, ...
    pub field: &'static str,
}

/// Raw header bits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawPayload {
    /// The header the offset counts from: `ll`, `nh` or `th`.
    pub base: &'static str,
    /// Where the bits start, in bits.
    pub offset: u32,
    /// How many bits.
    pub len: u32,
}

/// A meta expression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Meta {
    /// Which metadata.
    pub key: MetaKey,
}

/// The meta keys we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetaKey {
    /// The packet mark (fwmark).
    Mark,
    /// The layer-4 protocol, whatever the layer 3.
    L4proto,
}

/// A statement without options is written with `null` as its value: `{"drop": null}`.
fn null<S: Serializer>(serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_unit()
}
