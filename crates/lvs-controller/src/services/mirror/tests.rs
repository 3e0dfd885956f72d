//! The mirror's plan: what is created, patched, deleted, reported, and what memory keeps from
//! being written twice.

use serde_json::json;

use super::*;

/// A VirtualServer as derived from Service `web` (uid `owner`), or as stored (`version` from the
/// API, `uid`).
fn object(name: &str, owner: Option<&str>, labelled: bool, port: u16, version: &str) -> VirtualServer {
    let mut metadata = json!({ "name": name, "namespace": "shop", "resourceVersion": version, "uid": format!("uid-{name}") });
    if labelled {
        metadata["labels"] =
            json!({ "lvs.operator.io/service": "web", "lvs.operator.io/service-port": "http" });
    }
    if let Some(owner) = owner {
        metadata["ownerReferences"] = json!([{ "apiVersion": "v1", "kind": "Service", "name": "web", "uid": owner, "controller": true }]);
    }
    serde_json::from_value(json!({
        "apiVersion": "lvs.operator.io/v1alpha1", "kind": "VirtualServer", "metadata": metadata,
        "spec": { "address": "10.0.0.5", "port": port, "protocol": "TCP",
                  "realServers": { "selector": { "matchLabels": { "lvs.operator.io/service": "web" } } } },
    }))
    .unwrap()
}

fn derived(name: &str, port: u16) -> VirtualServer {
    object(name, Some("uid-web"), true, port, &format!("derived-{port}"))
}

fn names<K: Mirrored>(plan: &Plan<K>) -> (Vec<String>, Vec<String>, Vec<String>, usize) {
    (
        plan.create.iter().map(|write| write.key.name.clone()).collect(),
        plan.patch.iter().map(|write| write.key.name.clone()).collect(),
        plan.delete
            .iter()
            .map(|removal| removal.key.name.clone())
            .collect(),
        plan.taken.len(),
    )
}

fn none() -> Vec<String> {
    Vec::new()
}

#[test]
fn missing_objects_are_created_once_without_the_derived_identity() {
    let mut memory = Memory::default();
    let wanted = [derived("svc-web-http", 80)];
    let plan = memory.plan(&wanted, &[]);
    assert_eq!(names(&plan), (vec!["svc-web-http".to_owned()], none(), none(), 0));
    let body = &plan.create[0].body;
    assert_eq!(body.metadata.uid, None);
    assert_eq!(body.metadata.resource_version, None);
    assert_eq!(
        body.metadata.owner_references,
        wanted[0].metadata.owner_references
    );
    memory
        .written
        .record("shop/svc-web-http", None, "derived-80".to_owned());
    assert_eq!(
        names(&memory.plan(&wanted, &[])),
        (none(), none(), none(), 0),
        "created, not yet seen: not again"
    );
    let changed = [derived("svc-web-http", 81)];
    assert_eq!(
        names(&memory.plan(&changed, &[])).0,
        ["svc-web-http"],
        "another content is"
    );
}

#[test]
fn a_stored_copy_is_patched_only_where_it_differs() {
    let mut memory = Memory::default();
    let stored = object("svc-web-http", Some("uid-web"), true, 80, "7");
    let plan = memory.plan(&[derived("svc-web-http", 80)], &[&stored]);
    assert_eq!(names(&plan), (none(), none(), none(), 0), "the same");
    let plan = memory.plan(&[derived("svc-web-http", 8080)], &[&stored]);
    assert_eq!(names(&plan).1, ["svc-web-http"]);
    let patch = &plan.patch[0];
    assert_eq!(patch.replaced.as_deref(), Some("7"));
    assert_eq!(patch.body["spec"], json!({ "port": 8080 }));
    assert_eq!(patch.body["metadata"]["resourceVersion"], "7", "the precondition");
    let mut unlabelled = object("svc-web-http", Some("uid-web"), false, 80, "8");
    unlabelled.metadata.owner_references.as_mut().unwrap()[0].block_owner_deletion = Some(true);
    let plan = memory.plan(&[derived("svc-web-http", 80)], &[&unlabelled]);
    assert_eq!(names(&plan).1, ["svc-web-http"], "labels put back");
    assert_eq!(plan.patch[0].body["spec"], json!({}));
    assert_eq!(
        plan.patch[0].body["metadata"]["ownerReferences"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "one ownerReference per uid"
    );
}

#[test]
fn removed_fields_are_nulled() {
    let from = json!({ "a": 1, "b": { "c": 2, "d": 3 }, "gone": true });
    let to = json!({ "a": 1, "b": { "c": 5 }, "new": [1] });
    assert_eq!(
        merge_patch(&from, &to),
        json!({ "b": { "c": 5, "d": null }, "gone": null, "new": [1] })
    );
}

#[test]
fn only_generated_objects_no_longer_derived_are_deleted() {
    let mut memory = Memory::default();
    let dns = object("svc-web-dns", Some("uid-web"), true, 53, "3");
    let users = object("svc-web-old", None, true, 53, "4");
    let unlabelled = object("svc-web-own", Some("uid-web"), false, 53, "5");
    let plan = memory.plan::<VirtualServer>(&[], &[&dns, &users, &unlabelled]);
    assert_eq!(names(&plan), (none(), none(), vec!["svc-web-dns".to_owned()], 0));
    assert_eq!(plan.delete[0].uid.as_deref(), Some("uid-svc-web-dns"));
    memory
        .deleted
        .record("shop/svc-web-dns", Some("3".to_owned()), ());
    assert_eq!(
        names(&memory.plan::<VirtualServer>(&[], &[&dns])).2,
        none(),
        "not twice"
    );
}

#[test]
fn someone_elses_object_is_reported_and_a_stale_one_replaced() {
    let mut memory = Memory::default();
    let wanted = [derived("svc-web-http", 80)];
    let mut not_controlling = object("svc-web-http", Some("uid-web"), true, 9, "3");
    not_controlling.metadata.owner_references.as_mut().unwrap()[0].controller = None;
    for squatter in [
        object("svc-web-http", None, false, 9, "3"),
        object("svc-web-http", None, true, 9, "3"),
        not_controlling,
    ] {
        let plan = memory.plan(&wanted, &[&squatter]);
        assert_eq!(
            names(&plan),
            (none(), none(), none(), 1),
            "{:?}",
            squatter.metadata
        );
        assert_eq!(plan.taken[0].0, "shop/web");
        assert!(
            plan.taken[0]
                .1
                .starts_with("VirtualServer shop/svc-web-http exists")
        );
    }
    let stale = object("svc-web-http", Some("uid-web-before"), true, 80, "3");
    let plan = memory.plan(&wanted, &[&stale]);
    assert_eq!(
        names(&plan),
        (none(), none(), vec!["svc-web-http".to_owned()], 0),
        "a deleted Service's object goes first"
    );
}
