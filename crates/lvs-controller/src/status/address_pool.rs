//! An AddressPool's status: `Valid` and `Overlapping` from the build, and the fields the printer
//! columns read (addresses, `allocated/total`, the namespaces admitted).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use lvs_api::conditions::{reasons, status as condition_status, types};
use lvs_api::{AddressPool, AddressPoolStatus};
use lvs_core::BuildOutput;
use lvs_core::conditions::{ConditionDraft, lists_equal_ignoring_time, merge_conditions};

/// The condition types a pool's status is computed with.
const OWNED: [&str; 2] = [types::VALID, types::OVERLAPPING];

/// The status `object` should have, given the build. `previous` carries condition timestamps.
pub fn address_pool_status(
    object: &AddressPool,
    output: &BuildOutput,
    previous: Option<&AddressPoolStatus>,
    now: &Time,
) -> AddressPoolStatus {
    let generation = object.metadata.generation;
    let name = object.metadata.name.as_deref().unwrap_or_default();
    let mut status = AddressPoolStatus {
        observed_generation: generation,
        conditions: previous
            .map(|previous| previous.conditions.clone())
            .unwrap_or_default(),
        ..AddressPoolStatus::default()
    };
    let Some(outcome) = output.pools.get(name) else {
        return previous.cloned().unwrap_or_default();
    };
    let drafts = if outcome.valid {
        let total = u64::try_from(outcome.total).unwrap_or(u64::MAX);
        let allocated = u32::try_from(outcome.allocated.len()).unwrap_or(u32::MAX);
        status.addresses = Some(outcome.addresses.clone());
        status.namespaces = Some(outcome.namespaces.clone());
        status.allocated = allocated;
        status.total = total;
        status.usage = Some(format!("{allocated}/{total}"));
        status.outside_addresses = outcome.outside.iter().map(ToString::to_string).collect();
        let overlapping = if outcome.overlaps.is_empty() {
            ConditionDraft::new(
                types::OVERLAPPING,
                condition_status::FALSE,
                reasons::NO_OVERLAP,
                "no other pool holds any of its addresses",
            )
        } else {
            ConditionDraft::new(
                types::OVERLAPPING,
                condition_status::TRUE,
                reasons::OVERLAPS,
                format!(
                    "shares addresses with {}; the namespaces either pool admits may take them",
                    outcome.overlaps.join(", ")
                ),
            )
        };
        let message = if outcome.outside.is_empty() {
            "every entry parses".to_owned()
        } else {
            format!(
                "every entry parses; {} VIP(s) handed out earlier are outside its addresses now and keep working: {}",
                outcome.outside.len(),
                status.outside_addresses.join(", ")
            )
        };
        vec![
            ConditionDraft::new(types::VALID, condition_status::TRUE, reasons::VALID, message),
            overlapping,
        ]
    } else {
        vec![ConditionDraft::new(
            types::VALID,
            condition_status::FALSE,
            reasons::INVALID,
            format!("{}; the pool admits nothing until fixed", outcome.message),
        )]
    };
    merge_conditions(&mut status.conditions, drafts, &OWNED, generation, now);
    status
}

/// Whether two pool statuses say the same, apart from condition timestamps.
pub fn same_address_pool_status(left: &AddressPoolStatus, right: &AddressPoolStatus) -> bool {
    AddressPoolStatus {
        conditions: Vec::new(),
        ..left.clone()
    } == AddressPoolStatus {
        conditions: Vec::new(),
        ..right.clone()
    } && lists_equal_ignoring_time(&left.conditions, &right.conditions)
}
