//! The status of a Service of ours: `loadBalancer.ingress` and the `lvs.operator.io/VIPReady`
//! condition, computed purely from the build and the directors' reports — True while the
//! VirtualServer of its first port is accepted and a director holds its VIP, else False with why:
//! `Refused` (no VIP or no servable port), `Pending` (directors still programming it),
//! `NoDirector` (none can hold it, or none does) — written in one strategic merge patch when it
//! differs from what the Service holds, with the Service's Events.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ObjectReference, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use lvs_api::conditions::{reasons, status, types};
use lvs_api::labels::{CONTROLLER_FIELD_MANAGER, DIRECTOR_ROLE};
use lvs_core::BuildOutput;
use lvs_core::conditions::{ConditionDraft, set_condition};
use lvs_core::object::{Kind, ObjectKey, key_of};
use serde_json::{Value, json};

use super::{
    Entry, INVALID_SETTING, NAME_TAKEN, Pass, Services, VIP_ALLOCATED, VIP_READY, VIP_REFUSED, VIP_RELEASED,
    recorded, reference_of, stored_condition, vips_of, warning,
};
use crate::events::{Notice, Publisher};
use crate::status::Service as Served;

fn draft(state: &'static str, reason: &'static str, message: String) -> ConditionDraft {
    ConditionDraft::new(types::VIP_READY, state, reason, message)
}

/// The condition `entry` calls for, given the build and how each VirtualServer is served.
pub fn vip_ready(
    entry: &Entry,
    output: &BuildOutput,
    served: &BTreeMap<ObjectKey, Served>,
) -> ConditionDraft {
    let Some(first) = &entry.first else {
        let why = if entry.invalid.is_empty() {
            "the Service has no port that can be served".to_owned()
        } else {
            entry.invalid.join("; ")
        };
        return draft(status::FALSE, reasons::REFUSED, why);
    };
    let Some(outcome) = output.virtual_servers.get(first) else {
        return draft(status::FALSE, reasons::PENDING, "not built yet".to_owned());
    };
    if !outcome.accepted {
        return draft(status::FALSE, reasons::REFUSED, outcome.message.clone());
    }
    let vips: Vec<String> = outcome
        .addresses
        .iter()
        .map(|(address, _)| address.to_string())
        .collect();
    let vips = vips.join(", ");
    let Some(service) = served.get(first) else {
        return draft(
            status::FALSE,
            reasons::PENDING,
            format!("waiting for the directors of VIP {vips}"),
        );
    };
    if let Some(active) = &service.active {
        return draft(
            status::TRUE,
            reasons::DIRECTOR_ACTIVE,
            format!("director {active} holds VIP {vips}"),
        );
    }
    if service.directors.is_empty() {
        return draft(
            status::FALSE,
            reasons::NO_DIRECTOR,
            format!("no director can hold VIP {vips}: no node labelled {DIRECTOR_ROLE}=true is allowed to"),
        );
    }
    if let Some((node, message, _)) = &service.failure {
        return draft(
            status::FALSE,
            reasons::NO_DIRECTOR,
            format!("no director holds VIP {vips}; {node}: {message}"),
        );
    }
    let waiting = service.waiting();
    if !waiting.is_empty() {
        return draft(
            status::FALSE,
            reasons::PENDING,
            format!("waiting for {} to program VIP {vips}", waiting.join(", ")),
        );
    }
    let standby: Vec<&str> = service
        .directors
        .iter()
        .map(|director| director.node.as_str())
        .collect();
    draft(
        status::FALSE,
        reasons::NO_DIRECTOR,
        format!("no director holds VIP {vips} ({} not active)", standby.join(", ")),
    )
}

/// A change to a Service's `VIPReady` condition.
#[derive(Debug, Clone, PartialEq)]
pub enum ConditionChange {
    /// Set it to this.
    Set(Condition),
    /// Remove it (the Service is no longer ours).
    Remove,
}

/// The strategic merge patch of a Service's status subresource: `loadBalancer.ingress` (a list
/// replaced whole) when `ingress` is given, the condition when `condition` is (merged by type
/// into `conditions`, so that others' conditions stay).
pub fn status_patch(ingress: Option<&[IpAddr]>, condition: Option<&ConditionChange>) -> Value {
    let mut status = serde_json::Map::new();
    if let Some(ingress) = ingress {
        let entries: Vec<Value> = ingress
            .iter()
            .map(|vip| json!({ "ip": vip.to_string(), "ipMode": "VIP" }))
            .collect();
        status.insert("loadBalancer".to_owned(), json!({ "ingress": entries }));
    }
    match condition {
        Some(ConditionChange::Set(condition)) => {
            status.insert("conditions".to_owned(), json!([condition]));
        }
        Some(ConditionChange::Remove) => {
            status.insert(
                "conditions".to_owned(),
                json!([{ "type": types::VIP_READY, "$patch": "delete" }]),
            );
        }
        None => {}
    }
    json!({ "status": status })
}

/// A Service status as last written, with the resourceVersion it replaced (`None` after a
/// resync): while the store still holds that version, it stands for the store's.
#[derive(Debug, Clone)]
pub(super) struct Wrote {
    pub(super) ingress: Vec<IpAddr>,
    pub(super) condition: Option<Condition>,
    pub(super) version: Option<String>,
}

impl Services {
    /// What a Service's status holds as far as the controller knows: what it wrote, while the
    /// store still shows the version that write replaced; else `stored`.
    fn held<'a>(
        &'a self,
        key: &str,
        version: Option<&String>,
        stored: (&'a [IpAddr], Option<&'a Condition>),
    ) -> (&'a [IpAddr], Option<&'a Condition>) {
        match self.written.get(key) {
            Some(wrote) if wrote.version.is_some() && wrote.version.as_ref() == version => {
                (&wrote.ingress, wrote.condition.as_ref())
            }
            _ => stored,
        }
    }

    /// Writes each Service's status where it differs: `loadBalancer.ingress` (its VIPs) and the
    /// `lvs.operator.io/VIPReady` condition, in one strategic merge patch; both cleared from
    /// Services no longer ours that this controller wrote. Publishes the Events: settings that
    /// cannot be used, a refused VIP, a generated name someone else's object holds, the VIP
    /// allocated, ready or released, and the takeovers of the first port's VirtualServer.
    /// Returns (statuses written, Events published, failures as messages).
    pub async fn write(
        &mut self,
        client: &Client,
        publisher: &Publisher,
        pass: Pass<'_>,
    ) -> (usize, usize, Vec<String>) {
        let now = Time(Timestamp::now());
        let (generated, output) = (pass.generated, pass.output);
        let (mut statuses, mut events, mut failures) = (0, 0, Vec::new());
        let mut notices: Vec<(ObjectReference, Notice)> = Vec::new();
        let mut patches: Vec<StatusWrite> = Vec::new();
        for (key, entry) in &generated.services {
            let reference = &entry.reference;
            for note in &entry.invalid {
                if self.reported.insert((key.clone(), note.clone())) {
                    notices.push((reference.clone(), warning(INVALID_SETTING, "Validate", note)));
                }
            }
            if let Some(refusal) = entry
                .first
                .as_ref()
                .and_then(|first| output.virtual_servers.get(first))
                .filter(|outcome| !outcome.accepted)
                && self.reported.insert((key.clone(), refusal.message.clone()))
            {
                notices.push((
                    reference.clone(),
                    warning(VIP_REFUSED, "Allocate", &refusal.message),
                ));
            }
            let forwarded = entry.first.as_ref().and_then(|first| pass.takeovers.get(first));
            for notice in forwarded.into_iter().flatten() {
                notices.push((reference.clone(), notice.clone()));
            }
            let vips = vips_of(entry, output).unwrap_or_default();
            let (ingress, condition) = self.held(
                key,
                reference.resource_version.as_ref(),
                (&entry.recorded, entry.condition.as_ref()),
            );
            let was_ready = condition.is_some_and(|condition| condition.status == status::TRUE);
            let mut conditions: Vec<Condition> = condition.cloned().into_iter().collect();
            let draft = vip_ready(entry, output, pass.served);
            let changed = set_condition(&mut conditions, draft, entry.generation, &now);
            if ingress != vips.as_slice() || changed {
                let kept = conditions.pop();
                patches.push(StatusWrite {
                    key: key.clone(),
                    reference: reference.clone(),
                    ingress: (ingress != vips.as_slice()).then(|| vips.clone()),
                    condition: kept.clone().filter(|_| changed).map(ConditionChange::Set),
                    held: (vips, kept),
                    was_ready,
                });
            }
        }
        for (service, note) in std::mem::take(&mut self.taken) {
            if let Some(entry) = generated.services.get(&service)
                && self.reported.insert((service.clone(), note.clone()))
            {
                notices.push((entry.reference.clone(), warning(NAME_TAKEN, "Mirror", &note)));
            }
        }
        for service in &pass.snapshot.services {
            let key = key_of(Kind::VirtualServer, &service.metadata).qualified_name();
            if generated.services.contains_key(&key) {
                continue;
            }
            let recorded = recorded(service);
            let (ingress, condition) = self.held(
                &key,
                service.metadata.resource_version.as_ref(),
                (&recorded, stored_condition(service)),
            );
            let wrote = self
                .written
                .get(&key)
                .is_some_and(|wrote| !wrote.ingress.is_empty() || wrote.condition.is_some());
            let clear = (wrote || condition.is_some()) && !ingress.is_empty();
            if clear || condition.is_some() {
                patches.push(StatusWrite {
                    key,
                    reference: reference_of(service),
                    ingress: clear.then(Vec::new),
                    condition: condition.map(|_| ConditionChange::Remove),
                    held: (Vec::new(), None),
                    was_ready: false,
                });
            }
        }
        let present: BTreeSet<String> = pass
            .snapshot
            .services
            .iter()
            .map(|service| key_of(Kind::VirtualServer, &service.metadata).qualified_name())
            .collect();
        self.written.retain(|key, _| present.contains(key));
        self.reported
            .retain(|(key, _)| generated.services.contains_key(key));
        let params = PatchParams {
            field_manager: Some(CONTROLLER_FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        for patch in patches {
            let api: Api<Service> = Api::namespaced(
                client.clone(),
                patch.reference.namespace.as_deref().unwrap_or_default(),
            );
            let body = status_patch(patch.ingress.as_deref(), patch.condition.as_ref());
            let name = patch.reference.name.clone().unwrap_or_default();
            match api.patch_status(&name, &params, &Patch::Strategic(&body)).await {
                Ok(_) => {
                    statuses += 1;
                    notices.extend(
                        patch
                            .notices()
                            .into_iter()
                            .map(|notice| (patch.reference.clone(), notice)),
                    );
                    let (ingress, condition) = patch.held;
                    self.written.insert(
                        patch.key,
                        Wrote {
                            ingress,
                            condition,
                            version: patch.reference.resource_version,
                        },
                    );
                }
                Err(error) if matches!(&error, kube::Error::Api(status) if status.code == 404) => {}
                Err(error) => failures.push(format!("writing the status of Service {}: {error}", patch.key)),
            }
        }
        for (reference, notice) in notices {
            match publisher.publish(&notice, &reference).await {
                Ok(()) => events += 1,
                Err(error) => tracing::warn!(%error, reason = %notice.reason, "cannot publish an Event"),
            }
        }
        (statuses, events, failures)
    }
}

/// One Service status write.
pub(super) struct StatusWrite {
    /// The Service, `namespace/name`.
    pub(super) key: String,
    pub(super) reference: ObjectReference,
    /// The ingress to write, when it changes.
    pub(super) ingress: Option<Vec<IpAddr>>,
    /// The condition change, when there is one.
    pub(super) condition: Option<ConditionChange>,
    /// The ingress and condition the Service holds once written.
    pub(super) held: (Vec<IpAddr>, Option<Condition>),
    /// Whether its condition was True before.
    pub(super) was_ready: bool,
}

impl StatusWrite {
    /// The Events the write calls for once done: the VIP allocated or released, the VIP ready.
    pub(super) fn notices(&self) -> Vec<Notice> {
        let mut notices = Vec::new();
        match self.ingress.as_deref() {
            Some([]) => notices.push(Notice {
                warning: false,
                reason: VIP_RELEASED.to_owned(),
                action: "Release",
                note: "the Service's VIP is released".to_owned(),
            }),
            Some(vips) => {
                let listed: Vec<String> = vips.iter().map(ToString::to_string).collect();
                notices.push(Notice {
                    warning: false,
                    reason: VIP_ALLOCATED.to_owned(),
                    action: "Allocate",
                    note: format!("VIP {} (ipMode VIP)", listed.join(", ")),
                });
            }
            None => {}
        }
        if let Some(ConditionChange::Set(condition)) = &self.condition
            && condition.status == status::TRUE
            && !self.was_ready
        {
            notices.push(Notice {
                warning: false,
                reason: VIP_READY.to_owned(),
                action: "Serve",
                note: condition.message.clone(),
            });
        }
        notices
    }
}

#[cfg(test)]
mod tests {
    use lvs_api::DirectorStatus;
    use lvs_core::build::VirtualServerOutcome;
    use lvs_core::object::Kind;

    use super::*;

    fn entry() -> Entry {
        Entry {
            reference: ObjectReference::default(),
            first: Some(ObjectKey::new(Kind::VirtualServer, "shop", "svc-web-http")),
            complete: true,
            recorded: Vec::new(),
            invalid: Vec::new(),
            generation: Some(1),
            condition: None,
        }
    }

    fn built(accepted: bool) -> BuildOutput {
        let mut output = BuildOutput::default();
        output.virtual_servers.insert(
            entry().first.unwrap(),
            VirtualServerOutcome {
                accepted,
                reason: "Accepted",
                message: "every address of pool lab is taken".to_owned(),
                address: None,
                pool: None,
                addresses: vec![("10.0.0.5".parse().unwrap(), "lab".to_owned())],
                directors: Vec::new(),
                real_servers: Vec::new(),
            },
        );
        output
    }

    fn served(directors: &[(&str, bool)], active: Option<&str>) -> BTreeMap<ObjectKey, Served> {
        let service = Served {
            directors: directors
                .iter()
                .map(|(node, programmed)| DirectorStatus {
                    node: (*node).to_owned(),
                    role: None,
                    programmed: *programmed,
                })
                .collect(),
            active: active.map(str::to_owned),
            ..Served::default()
        };
        BTreeMap::from([(entry().first.unwrap(), service)])
    }

    fn said(draft: &ConditionDraft) -> (&str, &str) {
        (draft.status, draft.reason)
    }

    #[test]
    fn the_vip_is_ready_only_while_a_director_holds_it() {
        let output = built(true);
        let ready = vip_ready(&entry(), &output, &served(&[("d1", true)], Some("d1")));
        assert_eq!(said(&ready), ("True", "DirectorActive"));
        assert_eq!(ready.message, "director d1 holds VIP 10.0.0.5");
        let none = vip_ready(&entry(), &output, &served(&[], None));
        assert_eq!(said(&none), ("False", "NoDirector"));
        let standby = vip_ready(&entry(), &output, &served(&[("d1", true)], None));
        assert_eq!(said(&standby), ("False", "NoDirector"));
        assert_eq!(standby.message, "no director holds VIP 10.0.0.5 (d1 not active)");
        let waiting = vip_ready(&entry(), &output, &served(&[("d1", false)], None));
        assert_eq!(said(&waiting), ("False", "Pending"));
        let refused = vip_ready(&entry(), &built(false), &served(&[], None));
        assert_eq!(said(&refused), ("False", "Refused"));
        assert_eq!(refused.message, "every address of pool lab is taken");
        let no_port = Entry {
            first: None,
            invalid: vec!["port 0 is not a port number".to_owned()],
            ..entry()
        };
        assert_eq!(
            said(&vip_ready(&no_port, &output, &BTreeMap::new())),
            ("False", "Refused")
        );
    }

    #[test]
    fn the_patch_carries_only_what_changed() {
        let vip: IpAddr = "10.0.0.5".parse().unwrap();
        assert_eq!(
            status_patch(Some(&[vip]), None),
            json!({ "status": { "loadBalancer": { "ingress": [{ "ip": "10.0.0.5", "ipMode": "VIP" }] } } })
        );
        assert_eq!(
            status_patch(None, Some(&ConditionChange::Remove)),
            json!({ "status": { "conditions": [{ "type": "lvs.operator.io/VIPReady", "$patch": "delete" }] } })
        );
    }
}
