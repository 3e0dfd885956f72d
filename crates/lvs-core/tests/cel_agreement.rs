//! The CRDs' CEL rules and the core validation agree: for tables of awkward values of every field a
//! CEL rule judges, the API server (kube's client-side CEL evaluator on the generated schema) and
//! `lvs_core::validate` refuse exactly the same ones. Standalone mode has no API server, so a value
//! one accepts and the other refuses would behave differently in a cluster and from files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use kube::CustomResourceExt;
use kube::core::cel::Validator;
use lvs_api::{RealServer, VirtualServer};
use serde_json::{Value, json};

fn schema_of(
    crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Value {
    lvs_api::limits::crd_schema(&crd)
}

/// Whether CEL and core refuse `object` at (or under) `field`, as `(cel, core)`.
fn verdicts(object: &Value, field: &str) -> (bool, bool) {
    let under = |path: &str| {
        path == field || path.starts_with(&format!("{field}[")) || path.starts_with(&format!("{field}."))
    };
    let (schema, core_fields): (Value, Vec<String>) = match object["kind"].as_str() {
        Some("VirtualServer") => {
            let typed: VirtualServer = serde_json::from_value(object.clone()).unwrap();
            let problems = lvs_core::validate::virtual_server(&typed)
                .err()
                .unwrap_or_default();
            (
                schema_of(VirtualServer::crd()),
                problems.into_iter().map(|problem| problem.field).collect(),
            )
        }
        _ => {
            let typed: RealServer = serde_json::from_value(object.clone()).unwrap();
            let problems = lvs_core::validate::real_server(&typed).err().unwrap_or_default();
            (
                schema_of(RealServer::crd()),
                problems.into_iter().map(|problem| problem.field).collect(),
            )
        }
    };
    let cel = match Validator::new().validate(&schema, object, None) {
        Ok(()) => false,
        Err(errors) => errors.iter().any(|error| under(&error.field_path)),
    };
    (cel, core_fields.iter().any(|path| under(path)))
}

fn virtual_server(spec: Value) -> Value {
    let mut base = json!({
        "address": "10.100.0.150",
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

/// Asserts CEL and core judge every case alike, and that the table both accepts and refuses
/// something (so it tests the rule, not a typo in a field path).
fn assert_agree(cases: Vec<(&'static str, Value)>) {
    let count = cases.len();
    let mut refused = 0;
    let mut found = Vec::new();
    for (field, object) in cases {
        let (cel, core) = verdicts(&object, field);
        refused += usize::from(cel && core);
        if cel != core {
            found.push(format!(
                "{field}: {} → CEL refuses: {cel}, core refuses: {core}",
                object["spec"]
            ));
        }
    }
    assert!(
        found.is_empty(),
        "{} of {count} disagree:\n{}",
        found.len(),
        found.join("\n")
    );
    assert!(
        refused > 0 && refused < count,
        "{refused} of {count} refused by both"
    );
}

const INTERFACES: &[&str] = &[
    "eth0",
    "eth0.100",
    "br-lan",
    "enp0s31f6",
    "lvs0",
    "é0",
    "eth 0",
    "eth\t0",
    "eth0:1",
    "a/b",
    ".",
    "..",
    "...",
    "ééééééé0",
    "éééééééé",
    "eth0.1234567890",
    "eth0.12345678901",
    "eth\u{a0}0",
    "eth\u{2028}",
    "eth\u{7}",
    "eth\u{85}",
    "eth\u{7f}",
    "eth\u{3000}",
];

#[test]
fn interface_names() {
    let mut cases = Vec::new();
    for &name in INTERFACES {
        cases.push((
            "spec.directors.interface",
            virtual_server(json!({"directors": {"interface": name}})),
        ));
        cases.push((
            "spec.directors.highAvailability.connectionSync.interface",
            virtual_server(
                json!({"directors": {"highAvailability": {"connectionSync": {"interface": name}}}}),
            ),
        ));
    }
    assert_agree(cases);
}

#[test]
fn http_hosts() {
    let long_label = "h".repeat(63);
    let too_long_label = "h".repeat(64);
    let hosts = [
        "example.com",
        "Example.COM",
        "a_b.example",
        "www",
        "example.com:8443",
        "example.com:1",
        "example.com:65535",
        "10.0.0.1",
        "10.0.0.1:80",
        "[2001:db8::1]",
        "[2001:db8::1]:443",
        "[::1]",
        long_label.as_str(),
        too_long_label.as_str(),
        "2001:db8::1",
        "[::ffff:10.0.0.1]",
        "[fe80::1%eth0]",
        "[10.0.0.1]",
        "[2001:db8::1]x",
        "[2001:db8::1]:",
        "[2001:db8::1]:0",
        "[]",
        "[zz::1]",
        "example.com:0",
        "example.com:65536",
        "example.com:080",
        "example.com:",
        "example.com:8a",
        "-bad.example",
        "bad-.example",
        "a..b",
        ".example",
        "example.",
        "exa mple.com",
        "example.com\r\nX-Injected: 1",
        "x:80:90",
        ":80",
        "ä.example",
        "example.com/path",
    ];
    let cases = hosts
        .into_iter()
        .map(|host| {
            (
                "spec.healthCheck.http.host",
                virtual_server(json!({"healthCheck": {"type": "HTTPS", "http": {"host": host}}})),
            )
        })
        .collect();
    assert_agree(cases);
}

#[test]
fn http_paths() {
    let paths = [
        "/",
        "/healthz?verbose=1&x=%20",
        "/a\"b{c}",
        "/~user",
        "/a b",
        "/a\r\nX-Injected: 1",
        "/a\tb",
        "/ä",
        "/\u{7f}",
        "/\u{0}",
    ];
    let cases = paths
        .into_iter()
        .map(|path| {
            (
                "spec.healthCheck.http.path",
                virtual_server(json!({"healthCheck": {"type": "HTTP", "http": {"path": path}}})),
            )
        })
        .collect();
    assert_agree(cases);
}

#[test]
fn dns_query_names() {
    let long_label = format!("{}.example", "q".repeat(63));
    let too_long_label = format!("{}.example", "q".repeat(64));
    let names = [
        ".",
        "example.com",
        "example.com.",
        "_dmarc.example.com",
        "*.example.com",
        "a",
        long_label.as_str(),
        too_long_label.as_str(),
        "a..b",
        ".a",
        "..",
        "a..",
        "a b",
        "a\\.b",
        "ä.example",
        "a\u{7}b",
    ];
    let cases = names
        .into_iter()
        .map(|name| {
            (
                "spec.healthCheck.dns.queryName",
                virtual_server(
                    json!({"protocol": "UDP", "healthCheck": {"type": "DNS", "dns": {"queryName": name}}}),
                ),
            )
        })
        .collect();
    assert_agree(cases);
}

#[test]
fn node_names() {
    let long_label = "n".repeat(70);
    let names = [
        "node-1",
        "node-1.example.com",
        "1node",
        long_label.as_str(),
        "Node-1",
        "node_1",
        "-node",
        "node-",
        "node..example",
        ".node",
        "node.",
        "node/1",
        "node 1",
    ];
    let mut cases = Vec::new();
    for name in names {
        cases.push((
            "spec.directors.highAvailability.priority",
            virtual_server(json!({"directors": {"highAvailability": {"priority": ["node-0", name]}}})),
        ));
        cases.push((
            "spec.node",
            json!({"apiVersion": "lvs.operator.io/v1alpha1", "kind": "RealServer",
                   "metadata": {"name": "rs", "namespace": "default"},
                   "spec": {"address": "10.100.0.11", "node": name}}),
        ));
    }
    assert_agree(cases);
}

#[test]
fn label_keys() {
    let longest = "k".repeat(317);
    let too_long = "k".repeat(318);
    let mut cases = Vec::new();
    for key in ["app", "example.com/app", "", longest.as_str(), too_long.as_str()] {
        cases.push((
            "spec.directors.nodeSelector",
            virtual_server(json!({"directors": {"nodeSelector": {key: "yes"}}})),
        ));
        cases.push((
            "spec.realServers.selector.matchLabels",
            virtual_server(json!({"realServers": {"selector": {"matchLabels": {key: "web"}}}})),
        ));
    }
    assert_agree(cases);
}

#[test]
fn tunnel_checksums() {
    let mut cases = Vec::new();
    for tunnel_type in ["IPIP", "GUE", "GRE"] {
        for checksum in ["None", "Checksum", "RemoteChecksum"] {
            let mut tunnel = json!({"type": tunnel_type, "checksum": checksum});
            if tunnel_type == "GUE" {
                tunnel["port"] = json!(6080);
            }
            cases.push((
                "spec.forwarding.tunnel.checksum",
                virtual_server(json!({"forwarding": {"method": "Tunnel", "tunnel": tunnel}})),
            ));
        }
    }
    assert_agree(cases);
}

#[test]
fn health_check_ports() {
    let mut cases = Vec::new();
    for protocol in ["TCP", "UDP", "SCTP"] {
        for check in [
            Value::Null,
            json!("TCP"),
            json!("HTTP"),
            json!("HTTPS"),
            json!("DNS"),
            json!("None"),
        ] {
            for check_port in [Value::Null, json!(8080)] {
                for fwmark in [false, true] {
                    for (method, real_servers_port) in [
                        ("DirectRouting", Value::Null),
                        ("NAT", Value::Null),
                        ("NAT", json!(8080)),
                    ] {
                        let mut spec = json!({"protocol": protocol, "forwarding": {"method": method}});
                        if !check.is_null() {
                            spec["healthCheck"] = json!({"type": check});
                            if !check_port.is_null() {
                                spec["healthCheck"]["port"] = check_port.clone();
                            }
                        } else if !check_port.is_null() {
                            continue;
                        }
                        if fwmark {
                            spec["port"] = Value::Null;
                            spec["fwmark"] = json!(7);
                        }
                        if !real_servers_port.is_null() {
                            spec["realServers"] = json!({"selector": {}, "port": real_servers_port});
                        }
                        cases.push(("spec.healthCheck.port", virtual_server(spec)));
                    }
                }
            }
        }
    }
    assert_agree(cases);
}

#[test]
fn fallback_families() {
    let mut cases = Vec::new();
    for method in ["DirectRouting", "NAT", "Tunnel"] {
        for (address, family) in [
            (json!("10.100.0.150"), Value::Null),
            (json!("2001:db8::150"), Value::Null),
            (Value::Null, Value::Null),
            (Value::Null, json!("IPv4")),
            (Value::Null, json!("IPv6")),
        ] {
            for fallback in ["10.100.0.99", "2001:db8::99"] {
                let mut spec = json!({"address": address, "forwarding": {"method": method},
                                      "fallback": {"address": fallback}});
                if address.is_null() {
                    spec["port"] = Value::Null;
                    spec["fwmark"] = json!(7);
                    spec["healthCheck"] = json!({"port": 80});
                }
                if !family.is_null() {
                    spec["family"] = family.clone();
                }
                cases.push(("spec.fallback.address", virtual_server(spec)));
            }
        }
    }
    assert_agree(cases);
}

#[test]
fn dual_stack_addresses_and_families() {
    let v4 = "10.100.0.150";
    let v6 = "fd00:100::150";
    let mut cases = Vec::new();
    for (field, spec) in [
        ("spec.addresses", json!({"address": null, "addresses": [v4, v6]})),
        ("spec.addresses", json!({"address": null, "addresses": [v6]})),
        (
            "spec.addresses",
            json!({"address": null, "addresses": [v4, "10.100.0.151"]}),
        ),
        (
            "spec.addresses",
            json!({"address": null, "addresses": [v6, "fd00:100::151"]}),
        ),
        ("spec.addresses", json!({"addresses": [v6]})),
        (
            "spec.addresses",
            json!({"address": null, "families": ["IPv6"], "addresses": [v4]}),
        ),
        (
            "spec.addresses",
            json!({"address": null, "families": ["IPv4", "IPv6"], "addresses": [v6]}),
        ),
        (
            "spec.families",
            json!({"address": null, "families": ["IPv6", "IPv4"]}),
        ),
        (
            "spec.families",
            json!({"address": null, "families": ["IPv4"], "family": "IPv4"}),
        ),
        ("spec.address", json!({"families": ["IPv4", "IPv6"]})),
        ("spec.address", json!({"families": ["IPv6"]})),
        (
            "spec.family",
            json!({"address": null, "addresses": [v6], "family": "IPv6"}),
        ),
        (
            "spec.family",
            json!({"address": null, "addresses": [v6], "family": "IPv4"}),
        ),
        (
            "spec.fwmark",
            json!({"port": null, "fwmark": 3, "healthCheck": {"type": "None"}, "families": ["IPv4", "IPv6"]}),
        ),
        (
            "spec.fwmark",
            json!({"port": null, "fwmark": 3, "healthCheck": {"type": "None"}}),
        ),
        (
            "spec.persistence.prefixLength",
            json!({"families": ["IPv4", "IPv6"], "persistence": {"netmask": "255.255.255.0", "prefixLength": 64}}),
        ),
        (
            "spec.persistence.prefixLength",
            json!({"persistence": {"netmask": "255.255.255.0", "prefixLength": 64}}),
        ),
        (
            "spec.persistence.prefixLength",
            json!({"address": null, "addresses": [v4], "persistence": {"prefixLength": 64}}),
        ),
        (
            "spec.persistence.netmask",
            json!({"address": null, "addresses": [v6, v4], "persistence": {"netmask": "255.255.255.0"}}),
        ),
        (
            "spec.persistence.netmask",
            json!({"address": null, "addresses": [v6], "persistence": {"netmask": "255.255.255.0"}}),
        ),
        (
            "spec.fallback.address",
            json!({"families": ["IPv4", "IPv6"], "fallback": {"address": "fd00:100::99"}}),
        ),
        (
            "spec.fallback.address",
            json!({"families": ["IPv4"], "fallback": {"address": "fd00:100::99"}}),
        ),
    ] {
        cases.push((field, virtual_server(spec)));
    }
    assert_agree(cases);
}
