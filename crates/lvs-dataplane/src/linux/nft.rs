//! Our nftables tables, written as nft JSON (our own types, `json`) and applied by `nft -j -f`
//! in one transaction; the input guard's part is built in `guard`. Each table is replaced atomically (add, delete, add in one batch: the
//! idiom that works on nft 1.0.6, which lacks `destroy`); other tables are never touched.

pub mod guard;
pub mod json;
mod run;

use json::{
    ChainType, Command, Expression, Family, Hook, Mangle, Match, Meta, MetaKey, Nftables, Object, Operator,
    Payload, Policy, Statement,
};
use run::RunError;

use crate::dataplane::{DataplaneError, Object as DataplaneObject, Operation};
use crate::model::{MarkRule, NftRules, PortMatch, Protocol};

/// Name of both our tables (`arp lvs-operator`, `inet lvs-operator`).
pub const TABLE: &str = "lvs-operator";

/// The batch that makes our tables hold exactly `rules` (an empty part deletes its table).
pub fn replace_batch(rules: &NftRules) -> Nftables {
    let mut batch = Vec::new();
    reset_table(&mut batch, Family::Arp, !rules.arp_guards.is_empty());
    if !rules.arp_guards.is_empty() {
        chain(
            &mut batch,
            Family::Arp,
            "input",
            ChainType::Filter,
            Hook::Input,
            0,
        );
        chain(
            &mut batch,
            Family::Arp,
            "output",
            ChainType::Filter,
            Hook::Output,
            0,
        );
        for guard in &rules.arp_guards {
            let vip = guard.vip.to_string();
            rule(
                &mut batch,
                Family::Arp,
                "input",
                vec![
                    matches(payload("arp", "operation"), Expression::String("request".into())),
                    matches(payload("arp", "daddr ip"), Expression::String(vip.clone())),
                    Statement::Drop,
                ],
            );
            if let Some(real_address) = guard.real_address {
                rule(
                    &mut batch,
                    Family::Arp,
                    "output",
                    vec![
                        matches(payload("arp", "saddr ip"), Expression::String(vip)),
                        Statement::Mangle(Mangle {
                            key: payload("arp", "saddr ip"),
                            value: Expression::String(real_address.to_string()),
                        }),
                    ],
                );
            }
        }
    }
    let translations = !(rules.redirects.is_empty() && rules.masquerade.is_empty() && rules.marks.is_empty());
    let inet =
        translations || rules.has_input_guard() || !rules.nd_guards.is_empty() || !rules.untracked.is_empty();
    reset_table(&mut batch, Family::Inet, inet);
    if !rules.untracked.is_empty() {
        // At raw priority, before conntrack (−200) makes an entry that NAT chains would act on.
        chain(
            &mut batch,
            Family::Inet,
            "untracked",
            ChainType::Filter,
            Hook::Prerouting,
            -300,
        );
        for target in &rules.untracked {
            let protocol = if target.port == 0 {
                matches(
                    Expression::Meta(Meta {
                        key: MetaKey::L4proto,
                    }),
                    Expression::String(protocol_name(target.protocol).into()),
                )
            } else {
                port_match(target.protocol, &[target.port])
            };
            rule(
                &mut batch,
                Family::Inet,
                "untracked",
                vec![address_match(&target.address), protocol, Statement::Notrack],
            );
        }
    }
    if !rules.nd_guards.is_empty() {
        // Before anything else sees them (multicast solicitations for an address on `lo` would
        // be dropped later anyway; unicast ones would not).
        chain(
            &mut batch,
            Family::Inet,
            "neighbours",
            ChainType::Filter,
            Hook::Prerouting,
            -300,
        );
        for vip in &rules.nd_guards {
            rule(
                &mut batch,
                Family::Inet,
                "neighbours",
                vec![
                    matches(
                        payload("icmpv6", "type"),
                        Expression::String("nd-neighbor-solicit".into()),
                    ),
                    matches(
                        Expression::RawPayload(json::RawPayload {
                            base: "th",
                            offset: 64,
                            len: 128,
                        }),
                        Expression::String(format!("{:#034x}", u128::from(*vip))),
                    ),
                    Statement::Drop,
                ],
            );
        }
    }
    if translations {
        chain(
            &mut batch,
            Family::Inet,
            "mark",
            ChainType::Filter,
            Hook::Prerouting,
            -150,
        );
        chain(
            &mut batch,
            Family::Inet,
            "redirect",
            ChainType::Nat,
            Hook::Prerouting,
            -100,
        );
        chain(
            &mut batch,
            Family::Inet,
            "masquerade",
            ChainType::Nat,
            Hook::Postrouting,
            100,
        );
        for mark in &rules.marks {
            let mut statements = vec![address_match(&mark.address)];
            if !mark.ports.is_empty() {
                statements.push(port_match(mark.protocol, &mark.ports));
            } else {
                statements.push(matches(
                    Expression::Meta(Meta {
                        key: MetaKey::L4proto,
                    }),
                    Expression::String(protocol_name(mark.protocol).into()),
                ));
            }
            statements.push(Statement::Mangle(Mangle {
                key: packet_mark(),
                value: mark_value(mark),
            }));
            rule(&mut batch, Family::Inet, "mark", statements);
        }
        for redirect in &rules.redirects {
            rule(
                &mut batch,
                Family::Inet,
                "redirect",
                vec![
                    address_match(&redirect.address),
                    port_match(redirect.protocol, &[redirect.port]),
                    Statement::Redirect,
                ],
            );
        }
        for target in &rules.masquerade {
            rule(
                &mut batch,
                Family::Inet,
                "masquerade",
                port_statements(target, Statement::Masquerade),
            );
        }
    }
    guard::add(&mut batch, rules);
    Nftables { nftables: batch }
}

/// The batch that removes both our tables (if they exist).
pub fn delete_batch() -> Nftables {
    let mut batch = Vec::new();
    reset_table(&mut batch, Family::Arp, false);
    reset_table(&mut batch, Family::Inet, false);
    Nftables { nftables: batch }
}

/// Applies a batch with `nft -j -f` (from `binary`), in one transaction; nft's exit status and
/// message are kept when it refuses.
/// `operation`: what the batch does to our tables (replace: Update, delete: Delete).
pub async fn apply(binary: &str, nftables: &Nftables, operation: Operation) -> Result<(), DataplaneError> {
    let object = || DataplaneObject::NftTable(TABLE.to_owned());
    let json = serde_json::to_vec(nftables)
        .map_err(|error| DataplaneError::reason(operation, object(), error.to_string()))?;
    // `-f -` opens /dev/stdin, which minimal images lack; /proc/self/fd/0 is always there.
    run::run(binary, &["-j", "-f", "/proc/self/fd/0"], Some(&json))
        .await
        .map(drop)
        .map_err(|error| failure(operation, object(), &error))
}

/// Our tables as the kernel lists them (`nft -j list table`), with handles removed (`None`
/// when neither exists).
pub async fn fingerprint(binary: &str) -> Result<Option<String>, DataplaneError> {
    let mut listing = Vec::new();
    for family in ["arp", "inet"] {
        match run::run(binary, &["-j", "list", "table", family, TABLE], None).await {
            Ok(stdout) => listing.push(strip_handles(&String::from_utf8_lossy(&stdout))),
            Err(RunError::Exit { ref stderr, .. }) if stderr.contains("No such file or directory") => {}
            Err(error) => {
                let object = DataplaneObject::NftTable(format!("{family} {TABLE}"));
                return Err(failure(Operation::Read, object, &error));
            }
        }
    }
    Ok((!listing.is_empty()).then(|| listing.join("\n")))
}

/// A failed `nft` run as a dataplane error on `object`, with the errno when the OS gave one.
fn failure(operation: Operation, object: DataplaneObject, error: &RunError) -> DataplaneError {
    DataplaneError::Failed {
        operation,
        object,
        reason: error.to_string(),
        errno: error.errno(),
    }
}

/// Removes `"handle": N` pairs, the metainfo object and the elements the packet path put in
/// the guard's meter sets, so equal tables compare equal.
fn strip_handles(json: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(json) else {
        return json.to_owned();
    };
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.remove("handle");
                map.remove("metainfo");
                if map
                    .get("name")
                    .and_then(|name| name.as_str())
                    .is_some_and(|name| map.contains_key("type") && guard::METER_SETS.contains(&name))
                {
                    map.remove("elem");
                }
                map.values_mut().for_each(walk);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value.to_string()
}

fn table(family: Family) -> Object {
    Object::Table(json::Table { family, name: TABLE })
}

/// Add-then-delete empties a table whether or not it existed; a final add recreates it.
fn reset_table(batch: &mut Vec<Command>, family: Family, keep: bool) {
    batch.push(Command::Add(table(family)));
    batch.push(Command::Delete(table(family)));
    if keep {
        batch.push(Command::Add(table(family)));
    }
}

/// Adds a base chain that accepts what its rules do not decide.
pub(crate) fn chain(
    batch: &mut Vec<Command>,
    family: Family,
    name: &'static str,
    kind: ChainType,
    hook: Hook,
    priority: i32,
) {
    batch.push(Command::Add(Object::Chain(json::Chain {
        family,
        table: TABLE,
        name,
        kind,
        hook,
        priority,
        policy: Policy::Accept,
    })));
}

pub(crate) fn rule(
    batch: &mut Vec<Command>,
    family: Family,
    chain: &'static str,
    statements: Vec<Statement>,
) {
    batch.push(Command::Add(Object::Rule(json::Rule {
        family,
        table: TABLE,
        chain,
        statements,
    })));
}

pub(crate) fn payload(protocol: &'static str, field: &'static str) -> Expression {
    Expression::Payload(Payload { protocol, field })
}

pub(crate) fn matches(left: Expression, right: Expression) -> Statement {
    Statement::Match(Match {
        left,
        right,
        op: Operator::Equal,
    })
}

fn address_match(address: &std::net::IpAddr) -> Statement {
    let protocol = if address.is_ipv4() { "ip" } else { "ip6" };
    matches(
        payload(protocol, "daddr"),
        Expression::String(address.to_string()),
    )
}

pub(crate) fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

fn packet_mark() -> Expression {
    Expression::Meta(Meta { key: MetaKey::Mark })
}

/// What a mark rule sets the packet mark to: the mark itself when the rule writes the whole
/// mark, else `meta mark & ~mask | mark` — the bits outside the mask as the packet carried them
/// (nft lists it back as `meta mark & (~mask | mark) | mark`, the same value).
fn mark_value(rule: &MarkRule) -> Expression {
    let mark = Expression::Number(rule.mark);
    if rule.writes_whole_mark() {
        return mark;
    }
    let kept = Expression::And(Box::new((packet_mark(), Expression::Number(!rule.mask))));
    Expression::Or(Box::new((kept, mark)))
}

/// One port as a number, several as an anonymous set.
fn port_match(protocol: Protocol, ports: &[u16]) -> Statement {
    let right = match ports {
        [port] => Expression::Number(u32::from(*port)),
        ports => Expression::Set(
            ports
                .iter()
                .map(|port| Expression::Number(u32::from(*port)))
                .collect(),
        ),
    };
    matches(payload(protocol_name(protocol), "dport"), right)
}

fn port_statements(target: &PortMatch, verdict: Statement) -> Vec<Statement> {
    vec![
        address_match(&target.address),
        port_match(target.protocol, &[target.port]),
        verdict,
    ]
}

#[cfg(test)]
mod tests;
