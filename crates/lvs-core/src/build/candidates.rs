//! Which real servers a VirtualServer's label selector can match, without testing every
//! RealServer in the cluster: an index by namespace and by `(namespace, label, value)`. A
//! selector with an equality (`matchLabels`, or `In`) narrows to the smallest list it names; one
//! without (only `NotIn`, `Exists`, `DoesNotExist`, or empty) gets its namespace. The caller still
//! tests the full selector on each candidate: the index only skips those that cannot match.

use std::collections::{BTreeSet, HashMap};

use kube::core::{Expression, Selector};

use super::select::PlacedRealServer;

/// Positions in the (key-sorted) slice of placed real servers, ascending.
type Positions = Vec<usize>;

/// The real servers of one namespace: all of them, and by label and value.
#[derive(Default)]
struct Namespace<'a> {
    all: Positions,
    by_label: HashMap<&'a str, HashMap<&'a str, Positions>>,
}

/// The real servers by namespace and by label.
pub(super) struct Candidates<'a> {
    namespaces: HashMap<&'a str, Namespace<'a>>,
}

impl<'a> Candidates<'a> {
    /// Indexes `real_servers` (their order is kept: positions ascend).
    pub(super) fn new(real_servers: &'a [PlacedRealServer]) -> Self {
        let mut namespaces: HashMap<&str, Namespace<'_>> = HashMap::new();
        for (position, placed) in real_servers.iter().enumerate() {
            let namespace = namespaces.entry(placed.spec.key.namespace.as_str()).or_default();
            namespace.all.push(position);
            for (label, value) in &placed.spec.labels {
                namespace
                    .by_label
                    .entry(label.as_str())
                    .or_default()
                    .entry(value.as_str())
                    .or_default()
                    .push(position);
            }
        }
        Self { namespaces }
    }

    /// The positions of the real servers in `namespace` that `selector` may match, ascending;
    /// a superset of those it does match.
    pub(super) fn of(&self, namespace: &str, selector: &Selector) -> Positions {
        let Some(namespace) = self.namespaces.get(namespace) else {
            return Positions::new();
        };
        selector
            .clone()
            .into_iter()
            .filter_map(|expression| namespace.equal_to(&expression))
            .min_by_key(Vec::len)
            .unwrap_or_else(|| namespace.all.clone())
    }
}

impl Namespace<'_> {
    /// The real servers whose `label` is `value`.
    fn lookup(&self, label: &str, value: &str) -> &[usize] {
        self.by_label
            .get(label)
            .and_then(|values| values.get(value))
            .map_or(&[][..], Vec::as_slice)
    }

    /// For an expression that requires a label to have one of some values: the real servers
    /// having one of them.
    fn equal_to(&self, expression: &Expression) -> Option<Positions> {
        match expression {
            Expression::Equal(label, value) => Some(self.lookup(label, value).to_vec()),
            Expression::In(label, values) => {
                let union: BTreeSet<usize> = values
                    .iter()
                    .flat_map(|value| self.lookup(label, value).iter().copied())
                    .collect();
                Some(union.into_iter().collect())
            }
            Expression::NotIn(..)
            | Expression::NotEqual(..)
            | Expression::Exists(_)
            | Expression::DoesNotExist(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::IpAddr;

    use kube::core::{Expression, Selector, SelectorExt};
    use lvs_api::RealServerState;

    use super::Candidates;
    use crate::build::select::PlacedRealServer;
    use crate::object::{Kind, ObjectKey};
    use crate::roles::Placement;
    use crate::validate::ValidRealServer;

    fn placed(namespace: &str, name: &str, labels: &[(&str, &str)]) -> PlacedRealServer {
        PlacedRealServer {
            spec: std::sync::Arc::new(ValidRealServer {
                key: ObjectKey::new(Kind::RealServer, namespace, name),
                labels: labels
                    .iter()
                    .map(|(label, value)| ((*label).to_owned(), (*value).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
                address: IpAddr::from([10, 0, 0, 1]),
                port: None,
                weight: 1,
                node: None,
                state: RealServerState::Active,
                thresholds: None,
            }),
            placement: Placement::External,
        }
    }

    /// What a scan of every real server matches, for comparison.
    fn scanned(real_servers: &[PlacedRealServer], namespace: &str, selector: &Selector) -> Vec<usize> {
        real_servers
            .iter()
            .enumerate()
            .filter(|(_, placed)| {
                placed.spec.key.namespace == namespace && selector.matches(&placed.spec.labels)
            })
            .map(|(position, _)| position)
            .collect()
    }

    fn matched(
        index: &Candidates<'_>,
        real_servers: &[PlacedRealServer],
        namespace: &str,
        selector: &Selector,
    ) -> Vec<usize> {
        index
            .of(namespace, selector)
            .into_iter()
            .filter(|position| selector.matches(&real_servers[*position].spec.labels))
            .collect()
    }

    #[test]
    fn the_index_finds_what_a_scan_finds_for_every_kind_of_expression() {
        let real_servers = vec![
            placed("a", "rs-1", &[("app", "web"), ("tier", "front")]),
            placed("a", "rs-2", &[("app", "web")]),
            placed("a", "rs-3", &[("app", "api"), ("tier", "back")]),
            placed("a", "rs-4", &[]),
            placed("b", "rs-5", &[("app", "web"), ("tier", "front")]),
        ];
        let index = Candidates::new(&real_servers);
        let set = |values: &[&str]| values.iter().map(|value| (*value).to_owned()).collect();
        let selectors: Vec<Selector> = vec![
            Selector::default(),
            Expression::Equal("app".into(), "web".into()).into(),
            Expression::Equal("app".into(), "none".into()).into(),
            Expression::In("app".into(), set(&["web", "api"])).into(),
            Expression::NotIn("app".into(), set(&["web"])).into(),
            Expression::NotEqual("app".into(), "web".into()).into(),
            Expression::Exists("tier".into()).into(),
            Expression::DoesNotExist("tier".into()).into(),
            [
                Expression::Equal("app".into(), "web".into()),
                Expression::Equal("tier".into(), "front".into()),
            ]
            .into_iter()
            .collect(),
            [
                Expression::In("app".into(), set(&["web", "api"])),
                Expression::DoesNotExist("tier".into()),
            ]
            .into_iter()
            .collect(),
        ];
        for namespace in ["a", "b", "c"] {
            for selector in &selectors {
                let expected = scanned(&real_servers, namespace, selector);
                assert_eq!(
                    matched(&index, &real_servers, namespace, selector),
                    expected,
                    "namespace {namespace}, selector {selector}"
                );
            }
        }
        // Narrowing happened: the equality selects two of the four in `a`, not the namespace.
        let web: Selector = Expression::Equal("app".into(), "web".into()).into();
        assert_eq!(index.of("a", &web), vec![0, 1]);
        // An `In` over values of different real servers keeps the slice's order.
        let both: Selector = Expression::In("app".into(), set(&["api", "web"])).into();
        assert_eq!(index.of("a", &both), vec![0, 1, 2]);
    }
}
