//! A dual-stack VirtualServer against the mock API server: `families: [IPv4, IPv6]` gets one
//! VIP of each family picked from the pool, the director's config one service per VIP with the
//! real servers of its family, and the status both addresses — `kubectl get vs` shows both in
//! the VIP column. After a restart the recorded addresses are kept.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use http::Method;
use kube::CustomResourceExt;
use lvs_api::VirtualServer;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use support::cluster::{cluster, pool, real_server};
use support::{NODE_CONFIGS, POOLS, REAL_SERVERS, Recorded, VIRTUAL_SERVERS, start_controller};

const WEB_STATUS: &str = "/apis/lvs.operator.io/v1alpha1/namespaces/default/virtualservers/web/status";
const QUIET: Duration = Duration::from_millis(600);

fn status_of<'a>(writes: &'a [Recorded], path: &str) -> &'a Value {
    &writes
        .iter()
        .rev()
        .find(|write| write.is(&Method::PATCH, path))
        .unwrap_or_else(|| panic!("no status written to {path}: {writes:#?}"))
        .body["status"]
}

/// The director's services as (address, real servers).
fn director_services(writes: &[Recorded]) -> Vec<(String, Vec<String>)> {
    let path = format!("{NODE_CONFIGS}/director-1");
    let write = writes
        .iter()
        .rev()
        .find(|write| write.is(&Method::PATCH, &path))
        .unwrap_or_else(|| panic!("no config for director-1: {writes:#?}"));
    write.body["spec"]["directorServices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|service| {
            assert_eq!(service["virtualServer"], "default/web");
            (
                service["address"].as_str().unwrap().to_owned(),
                service["destinations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|destination| destination["realServer"].as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

/// What the VIP printer column shows for `object`: its JSONPath followed the way kubectl does
/// for a simple path.
fn vip_column(object: &Value) -> Value {
    let crd = VirtualServer::crd();
    let path = crd.spec.versions[0]
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .find(|column| column.name == "VIP")
        .unwrap()
        .json_path
        .clone();
    path.trim_start_matches('.')
        .split('.')
        .fold(object.clone(), |value, key| value[key].clone())
}

fn dual_stack_cluster(status: Option<Value>) -> BTreeMap<&'static str, Vec<Value>> {
    let mut objects = cluster();
    let web = &mut objects.get_mut(VIRTUAL_SERVERS).unwrap()[0];
    web["spec"].as_object_mut().unwrap().remove("address");
    web["spec"]["families"] = json!(["IPv4", "IPv6"]);
    if let Some(status) = status {
        web["status"] = status;
    }
    objects.get_mut(REAL_SERVERS).unwrap().extend([
        real_server("web-6a", "fd00:100::11"),
        real_server("web-6b", "fd00:100::12"),
    ]);
    objects.insert(
        POOLS,
        vec![pool(
            "lab",
            &["10.100.0.100-10.100.0.199", "fd00:100::100-fd00:100::1ff"],
            &["*"],
        )],
    );
    objects
}

#[tokio::test]
async fn families_get_a_vip_each_served_by_their_own_real_servers_and_both_are_reported() {
    let (client, mut server) = support::start(dual_stack_cluster(None), true);
    let controller = start_controller(client);
    let writes = server.writes_until_quiet(QUIET).await;
    drop(controller);

    let status = status_of(&writes, WEB_STATUS);
    let addresses = status["addresses"].as_array().unwrap();
    assert_eq!(addresses.len(), 2, "{status}");
    let v4 = addresses[0]["address"].as_str().unwrap().to_owned();
    let v6 = addresses[1]["address"].as_str().unwrap().to_owned();
    assert!(v4.starts_with("10.100.0."), "{v4}");
    assert!(v6.starts_with("fd00:100::"), "{v6}");
    assert_eq!(addresses[0]["addressPool"], "lab");
    assert_eq!(addresses[1]["addressPool"], "lab");
    assert_eq!(status["address"], v4.as_str(), "address stays the first VIP");
    assert_eq!(status["ready"], "0/4", "both families' real servers count");
    let object = json!({ "status": status });
    assert_eq!(
        vip_column(&object),
        json!(format!("{v4},{v6}")),
        "kubectl get vs: VIP"
    );
    assert_eq!(
        director_services(&writes),
        [
            (
                v4.clone(),
                vec!["default/web-1".to_owned(), "default/web-2".to_owned()]
            ),
            (
                v6.clone(),
                vec!["default/web-6a".to_owned(), "default/web-6b".to_owned()]
            ),
        ]
    );

    // A restart on objects whose status records other addresses keeps the recorded ones.
    let recorded = json!({
        "address": "10.100.0.150", "addressPool": "lab",
        "addresses": [
            { "address": "10.100.0.150", "addressPool": "lab" },
            { "address": "fd00:100::150", "addressPool": "lab" },
        ],
    });
    let (client, mut server) = support::start(dual_stack_cluster(Some(recorded)), true);
    let _controller = start_controller(client);
    let writes = server.writes_until_quiet(QUIET).await;
    let kept: Vec<String> = director_services(&writes)
        .into_iter()
        .map(|(address, _)| address)
        .collect();
    assert_eq!(kept, ["10.100.0.150", "fd00:100::150"]);
}
