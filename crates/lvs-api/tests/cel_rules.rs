//! The CRDs' CEL rules (`x-kubernetes-validations`), evaluated the way the API server would —
//! schema defaults applied first — with kube's client-side CEL evaluator.
//!
//! Data-driven in both directions: every invalid fixture whose header says `# cel: FIELD` must be
//! rejected by a rule reporting that field, every other fixture and every example must pass the
//! rules (so no rule is stricter than the core validation). Targeted cases below show each rule
//! passing and failing on a minimal object.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::path::{Path, PathBuf};

use kube::CustomResourceExt;
use kube::core::cel::Validator;
use lvs_api::{AddressPool, RealServer, VirtualServer};
use serde_json::{Value, json};

fn schema_of(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Value {
    lvs_api::limits::crd_schema(crd)
}

/// The field paths of every CEL rule the object breaks (empty when it passes).
fn cel_errors(object: &Value) -> Vec<String> {
    let schema = match object["kind"].as_str() {
        Some("VirtualServer") => schema_of(&VirtualServer::crd()),
        Some("RealServer") => schema_of(&RealServer::crd()),
        Some("AddressPool") => schema_of(&AddressPool::crd()),
        _ => return Vec::new(),
    };
    match Validator::new().validate(&schema, object, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .iter()
            .map(|error| format!("{} ({})", error.field_path, error.message))
            .collect(),
    }
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_multiple::<Value>(&text).unwrap_or_default()
}

fn yaml_files(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![folder.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .map(|entry| entry.unwrap().path()),
            );
        } else if path.extension().is_some_and(|extension| extension == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn fixtures_are_rejected_by_cel_exactly_where_their_header_says() {
    let mut failures = Vec::new();
    let mut rejected = 0;
    for path in yaml_files(&repository().join("crates/lvs-core/tests/fixtures/invalid")) {
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = text
            .lines()
            .find_map(|line| line.strip_prefix("# cel: "))
            .map(str::to_owned);
        let errors: Vec<String> = documents(&path).iter().flat_map(cel_errors).collect();
        match &expected {
            Some(field) if errors.iter().any(|error| error.starts_with(&format!("{field} "))) => {
                rejected += 1
            }
            Some(field) => failures.push(format!(
                "{}: expected a CEL error at {field}, got {errors:?}",
                path.display()
            )),
            None if errors.is_empty() => {}
            None => failures.push(format!(
                "{}: no CEL error expected, got {errors:?}",
                path.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(rejected >= 25, "only {rejected} fixtures exercised CEL rules");
}

#[test]
fn examples_pass_every_cel_rule() {
    let mut checked = 0;
    for path in yaml_files(&repository().join("examples")) {
        for document in documents(&path) {
            let errors = cel_errors(&document);
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} example objects");
}

fn virtual_server(spec: Value) -> Value {
    let mut base = json!({
        "address": "192.0.2.10",
        "port": 80,
        "realServers": {"selector": {"matchLabels": {"app": "web"}}},
    });
    for (key, value) in spec.as_object().unwrap() {
        if value.is_null() {
            base.as_object_mut().unwrap().remove(key);
        } else {
            base[key] = value.clone();
        }
    }
    json!({"apiVersion": "lvs.operator.io/v1alpha1", "kind": "VirtualServer",
           "metadata": {"name": "web", "namespace": "default"}, "spec": base})
}

/// Each rule, one object that passes and one that fails.
#[test]
fn each_virtual_server_rule_passes_and_fails() {
    let cases = [
        (
            "spec.port",
            json!({"port": null, "fwmark": 3, "healthCheck": {"port": 80}}),
            json!({"fwmark": 3}),
        ),
        (
            "spec.address",
            json!({"address": "2001:db8::1"}),
            json!({"address": "not-an-ip"}),
        ),
        (
            "spec.schedulerFlags",
            json!({"scheduler": "mh", "schedulerFlags": ["mh-port"]}),
            json!({"scheduler": "wlc", "schedulerFlags": ["mh-port"]}),
        ),
        (
            "spec.onePacket",
            json!({"protocol": "UDP", "onePacket": true}),
            json!({"protocol": "SCTP", "onePacket": true}),
        ),
        (
            "spec.forwarding.tunnel.port",
            json!({"forwarding": {"method": "Tunnel", "tunnel": {"type": "GUE", "port": 6080}}}),
            json!({"forwarding": {"method": "Tunnel", "tunnel": {"type": "GUE"}}}),
        ),
        (
            "spec.forwarding.tunnel",
            json!({"forwarding": {"method": "Tunnel", "tunnel": {"type": "GRE"}}}),
            json!({"forwarding": {"method": "NAT", "tunnel": {"type": "GRE"}}}),
        ),
        (
            "spec.persistence.netmask",
            json!({"persistence": {"netmask": "255.255.0.0"}}),
            json!({"persistence": {"netmask": "ffff::"}}),
        ),
        (
            "spec.persistence.prefixLength",
            json!({"address": "2001:db8::1", "persistence": {"prefixLength": 64}}),
            json!({"persistence": {"prefixLength": 64}}),
        ),
        (
            "spec.healthCheck.timeoutSeconds",
            json!({"healthCheck": {"intervalSeconds": 5, "timeoutSeconds": 5}}),
            json!({"healthCheck": {"intervalSeconds": 5, "timeoutSeconds": 6}}),
        ),
        (
            "spec.healthCheck.http",
            json!({"healthCheck": {"type": "HTTPS", "http": {"path": "/"}}}),
            json!({"healthCheck": {"type": "DNS", "http": {"path": "/"}}}),
        ),
        (
            "spec.realServers.port",
            json!({"forwarding": {"method": "NAT"}, "realServers": {"selector": {}, "port": 8080}}),
            json!({"realServers": {"selector": {}, "port": 8080}}),
        ),
        (
            "spec.realServers.arpMethod",
            json!({"realServers": {"selector": {}, "arpMethod": "Redirect"}}),
            json!({"forwarding": {"method": "Tunnel"}, "realServers": {"selector": {}, "arpMethod": "Redirect"}}),
        ),
        (
            "spec.directors.interface",
            json!({"directors": {"vipPlacement": "Interface", "interface": "eth0.100"}}),
            json!({"directors": {"vipPlacement": "Interface"}}),
        ),
        (
            "spec.fallback.address",
            json!({"fallback": {"address": "192.0.2.99"}}),
            json!({"fallback": {"address": "2001:db8::99"}}),
        ),
        (
            "spec.family",
            json!({"family": "IPv4"}),
            json!({"family": "IPv6"}),
        ),
        (
            "spec.fallback.address",
            json!({"forwarding": {"method": "Tunnel"}, "fallback": {"address": "2001:db8::99"}}),
            json!({"forwarding": {"method": "NAT"}, "fallback": {"address": "2001:db8::99"}}),
        ),
        (
            "spec.forwarding.tunnel.checksum",
            json!({"forwarding": {"method": "Tunnel", "tunnel": {"type": "GRE", "checksum": "Checksum"}}}),
            json!({"forwarding": {"method": "Tunnel", "tunnel": {"checksum": "Checksum"}}}),
        ),
        (
            "spec.forwarding.tunnel.checksum",
            json!({"forwarding": {"method": "Tunnel", "tunnel": {"type": "GUE", "port": 6080, "checksum": "RemoteChecksum"}}}),
            json!({"forwarding": {"method": "Tunnel", "tunnel": {"type": "GRE", "checksum": "RemoteChecksum"}}}),
        ),
        (
            "spec.healthCheck.port",
            json!({"protocol": "UDP", "healthCheck": {"type": "TCP", "port": 53}}),
            json!({"protocol": "UDP", "healthCheck": {"type": "TCP"}}),
        ),
        (
            "spec.healthCheck.port",
            json!({"port": null, "fwmark": 3, "healthCheck": {"type": "None"}}),
            json!({"port": null, "fwmark": 3}),
        ),
        (
            "spec.healthCheck.http.host",
            json!({"healthCheck": {"type": "HTTPS", "http": {"host": "[2001:db8::1]:8443"}}}),
            json!({"healthCheck": {"type": "HTTPS", "http": {"host": "www.example.com\r\nX: y"}}}),
        ),
        (
            "spec.healthCheck.http.path",
            json!({"healthCheck": {"type": "HTTP", "http": {"path": "/healthz?full=1"}}}),
            json!({"healthCheck": {"type": "HTTP", "http": {"path": "/healthz\r\nX: y"}}}),
        ),
        (
            "spec.healthCheck.dns.queryName",
            json!({"protocol": "UDP", "healthCheck": {"type": "DNS", "dns": {"queryName": "example.com."}}}),
            json!({"protocol": "UDP", "healthCheck": {"type": "DNS", "dns": {"queryName": "example..com"}}}),
        ),
        (
            "spec.directors.highAvailability.connectionSync.interface",
            json!({"directors": {"highAvailability": {"connectionSync": {"interface": "bond0.20"}}}}),
            json!({"directors": {"highAvailability": {"connectionSync": {"interface": "eth0:1"}}}}),
        ),
        (
            "spec.directors.highAvailability.priority",
            json!({"directors": {"highAvailability": {"priority": ["node-a", "node-b.example"]}}}),
            json!({"directors": {"highAvailability": {"priority": ["node-a", "Node_B"]}}}),
        ),
        (
            "spec.directors.nodeSelector",
            json!({"directors": {"nodeSelector": {"example.com/zone": "a"}}}),
            json!({"directors": {"nodeSelector": {"": "a"}}}),
        ),
        (
            "spec.addresses",
            json!({"address": null, "addresses": ["192.0.2.10", "2001:db8::10"]}),
            json!({"address": null, "addresses": ["192.0.2.10", "192.0.2.11"]}),
        ),
        (
            "spec.addresses",
            json!({"address": null, "addresses": ["2001:db8::10"]}),
            json!({"addresses": ["2001:db8::10"]}),
        ),
        (
            "spec.addresses",
            json!({"address": null, "families": ["IPv6"], "addresses": ["2001:db8::10"]}),
            json!({"address": null, "families": ["IPv6"], "addresses": ["192.0.2.10"]}),
        ),
        (
            "spec.addresses",
            json!({"address": null, "addresses": ["2001:db8::10"]}),
            json!({"address": null, "addresses": ["2001:db8::10", "vip"]}),
        ),
        (
            "spec.families",
            json!({"address": null, "families": ["IPv6", "IPv4"]}),
            json!({"address": null, "family": "IPv4", "families": ["IPv4"]}),
        ),
        (
            "spec.address",
            json!({"families": ["IPv4", "IPv6"]}),
            json!({"families": ["IPv6"]}),
        ),
        (
            "spec.family",
            json!({"address": null, "addresses": ["2001:db8::10"], "family": "IPv6"}),
            json!({"address": null, "addresses": ["2001:db8::10"], "family": "IPv4"}),
        ),
        (
            "spec.fwmark",
            json!({"port": null, "fwmark": 3, "healthCheck": {"type": "None"}}),
            json!({"port": null, "fwmark": 3, "healthCheck": {"type": "None"}, "families": ["IPv4", "IPv6"]}),
        ),
        (
            "spec.persistence.prefixLength",
            json!({"families": ["IPv4", "IPv6"], "persistence": {"netmask": "255.255.255.0", "prefixLength": 64}}),
            json!({"address": null, "addresses": ["192.0.2.10"], "persistence": {"prefixLength": 64}}),
        ),
        (
            "spec.persistence.netmask",
            json!({"address": null, "addresses": ["2001:db8::10", "192.0.2.10"], "persistence": {"netmask": "255.255.255.0"}}),
            json!({"address": null, "addresses": ["2001:db8::10"], "persistence": {"netmask": "255.255.255.0"}}),
        ),
        (
            "spec.fallback.address",
            json!({"families": ["IPv4", "IPv6"], "fallback": {"address": "2001:db8::99"}}),
            json!({"families": ["IPv4"], "fallback": {"address": "2001:db8::99"}}),
        ),
        (
            "spec.realServers.selector.matchLabels",
            json!({"realServers": {"selector": {"matchLabels": {"app": "web"}}}}),
            json!({"realServers": {"selector": {"matchLabels": {"": "web"}}}}),
        ),
    ];
    for (field, passing, failing) in cases {
        let passing_errors = cel_errors(&virtual_server(passing.clone()));
        assert!(
            passing_errors.is_empty(),
            "{field}: {passing} should pass, got {passing_errors:?}"
        );
        let failing_errors = cel_errors(&virtual_server(failing.clone()));
        assert!(
            failing_errors
                .iter()
                .any(|error| error.starts_with(&format!("{field} "))),
            "{field}: {failing} should fail there, got {failing_errors:?}"
        );
    }
}

#[test]
fn real_server_rules_pass_and_fail() {
    let real_server = |spec: Value| {
        json!({"apiVersion": "lvs.operator.io/v1alpha1", "kind": "RealServer",
               "metadata": {"name": "a", "namespace": "default"}, "spec": spec})
    };
    assert!(
        cel_errors(&real_server(
            json!({"address": "2001:db8::5", "thresholds": {"upper": 5, "lower": 5}})
        ))
        .is_empty()
    );
    let errors = cel_errors(&real_server(
        json!({"address": "10.0.0.1", "thresholds": {"upper": 5, "lower": 9}}),
    ));
    assert!(
        errors
            .iter()
            .any(|error| error.starts_with("spec.thresholds.lower ")),
        "{errors:?}"
    );
    let errors = cel_errors(&real_server(json!({"address": "10.0.0.x"})));
    assert!(
        errors.iter().any(|error| error.starts_with("spec.address ")),
        "{errors:?}"
    );
}
