//! The NamespaceOffloading status as a pure function of what the reconciler observed
//! (SPEC §2 and §7 step 7).
//!
//! Everything that makes a status trustworthy lives here, apart from any I/O, so it can be
//! checked as tables: the per-cluster condition catalogue, the phase counted over selected
//! clusters only, transition times that move only when a condition's status or reason does,
//! stale `Ready` conditions and vanished clusters dropped, and the top-level `SelectorValid` and
//! `Ready` conditions a person can act on. Because unchanged conditions keep their times, the
//! reconciler can compare the computed status with the stored one and write only on change.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::conditions::{reason, FALSE, OFFLOADING_REQUIRED, READY, SELECTOR_VALID, TRUE};
use crate::api::{NamespaceOffloadingStatus, OffloadingPhase, RemoteNamespaceCondition};

/// Why talking to a cluster about its twin failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The cause, for people.
    pub message: String,
    /// The cluster could not be reached (or has no usable credentials), as opposed to a
    /// refusal such as a conflicting namespace; only these may be orphaned on deletion.
    pub unreachable: bool,
}

/// What the reconciler found (or did) on one cluster about the twin namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwinState {
    /// No twin of ours (none at all, or a namespace we do not own, when not selected).
    Absent,
    /// Not there yet (or just requested).
    Creating,
    /// Ours and present.
    Ready,
    /// Ours and being deleted.
    Terminating,
    /// The cluster could not be asked, or refused.
    Failed(Failure),
}

/// One remote cluster as the reconciler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    /// The cluster still has virtual nodes (it exists as far as the home cluster knows).
    pub exists: bool,
    /// The selector (and no deletion) requires a twin there.
    pub selected: bool,
    /// The twin's state.
    pub twin: TwinState,
}

/// Everything the status is computed from.
#[derive(Debug, Clone)]
pub struct StatusInput<'a> {
    /// `metadata.generation` of the object.
    pub generation: Option<i64>,
    /// The object has a deletion timestamp.
    pub deleting: bool,
    /// Twin namespace name.
    pub twin_name: &'a str,
    /// The selector's parse error, if any.
    pub selector_error: Option<&'a str>,
    /// Every cluster considered, by id.
    pub clusters: &'a BTreeMap<String, ClusterView>,
    /// The status currently stored (for transition times).
    pub previous: Option<&'a NamespaceOffloadingStatus>,
    /// The time to stamp on conditions that change.
    pub now: &'a Time,
}

/// The phase (SPEC §2): first rule that holds, counting only selected clusters.
pub fn phase(deleting: bool, clusters: &BTreeMap<String, ClusterView>) -> OffloadingPhase {
    if deleting {
        return OffloadingPhase::Terminating;
    }
    let selected: Vec<&ClusterView> = clusters.values().filter(|c| c.selected).collect();
    let failing = selected
        .iter()
        .filter(|c| matches!(c.twin, TwinState::Failed(_)))
        .count();
    if selected.is_empty() {
        OffloadingPhase::NoClusterSelected
    } else if selected.iter().all(|c| c.twin == TwinState::Ready) {
        OffloadingPhase::Ready
    } else if failing == selected.len() {
        OffloadingPhase::AllFailed
    } else if failing > 0 {
        OffloadingPhase::SomeFailed
    } else {
        OffloadingPhase::InProgress
    }
}

/// Computes the whole status.
pub fn compute(input: &StatusInput<'_>) -> NamespaceOffloadingStatus {
    let phase = phase(input.deleting, input.clusters);
    let mut per_cluster = BTreeMap::new();
    for (id, view) in input.clusters {
        // A cluster without virtual nodes keeps an entry only while our twin is still there.
        if !view.exists && view.twin == TwinState::Absent {
            continue;
        }
        let previous = input
            .previous
            .and_then(|s| s.remote_namespaces_conditions.get(id))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut conditions = vec![stamp(required_condition(input, view), previous, input.now)];
        if let Some(ready) = ready_condition(input.twin_name, view) {
            conditions.push(stamp(ready, previous, input.now));
        }
        per_cluster.insert(id.clone(), conditions);
    }
    let previous_top = input
        .previous
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let conditions = vec![
        stamp_top(selector_condition(input), previous_top, input),
        stamp_top(ready_summary(input, phase), previous_top, input),
    ];
    NamespaceOffloadingStatus {
        offloading_phase: Some(phase),
        remote_namespace_name: Some(input.twin_name.to_owned()),
        remote_namespaces_conditions: per_cluster,
        observed_generation: input.generation,
        conditions,
    }
}

/// A condition without its transition time: (type, status, reason, message).
type Draft = (&'static str, bool, &'static str, String);

fn required_condition(input: &StatusInput<'_>, view: &ClusterView) -> Draft {
    if view.selected {
        let message = "the cluster matches the cluster selector".to_owned();
        return (OFFLOADING_REQUIRED, true, reason::CLUSTER_SELECTED, message);
    }
    let message = if input.deleting {
        "the NamespaceOffloading is being deleted"
    } else if !view.exists {
        "the cluster has no virtual node any more"
    } else if input.selector_error.is_some() {
        "the cluster selector is invalid, so no cluster is selected"
    } else {
        "no virtual node of this cluster matches the cluster selector"
    };
    (
        OFFLOADING_REQUIRED,
        false,
        reason::CLUSTER_NOT_SELECTED,
        message.to_owned(),
    )
}

fn ready_condition(twin: &str, view: &ClusterView) -> Option<Draft> {
    let draft = match (&view.twin, view.selected) {
        (TwinState::Ready, true) => (
            true,
            reason::NAMESPACE_CREATED,
            format!("namespace {twin} exists"),
        ),
        (TwinState::Absent | TwinState::Creating, true) => (
            false,
            reason::CREATING,
            format!("creating namespace {twin}"),
        ),
        (TwinState::Failed(f), true) => (false, reason::CREATION_LOOP_BACK_OFF, f.message.clone()),
        (TwinState::Terminating, _) => (
            false,
            reason::TERMINATING,
            format!("namespace {twin} is being deleted"),
        ),
        // Not selected: our twin is still there and about to be deleted.
        (TwinState::Ready | TwinState::Creating, false) => (
            false,
            reason::TERMINATING,
            format!("deleting namespace {twin}"),
        ),
        (TwinState::Failed(f), false) => (
            false,
            reason::TERMINATING,
            format!("cannot delete namespace {twin}: {}", f.message),
        ),
        // Deselected and gone: no stale Ready condition.
        (TwinState::Absent, false) => return None,
    };
    Some((READY, draft.0, draft.1, draft.2))
}

fn status_str(status: bool) -> &'static str {
    if status {
        TRUE
    } else {
        FALSE
    }
}

/// Builds a per-cluster condition, keeping the previous transition time when status and
/// reason are unchanged.
fn stamp(
    draft: Draft,
    previous: &[RemoteNamespaceCondition],
    now: &Time,
) -> RemoteNamespaceCondition {
    let (type_, status, reason, message) = draft;
    let status = status_str(status);
    let kept = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status && c.reason == reason)
        .and_then(|c| c.last_transition_time.clone());
    RemoteNamespaceCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        last_transition_time: Some(kept.unwrap_or_else(|| now.clone())),
        reason: reason.to_owned(),
        message,
    }
}

fn stamp_top(draft: Draft, previous: &[Condition], input: &StatusInput<'_>) -> Condition {
    let (type_, status, reason, message) = draft;
    let status = status_str(status);
    let kept = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status && c.reason == reason)
        .map(|c| c.last_transition_time.clone());
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        last_transition_time: kept.unwrap_or_else(|| input.now.clone()),
        reason: reason.to_owned(),
        message,
        observed_generation: input.generation,
    }
}

fn selector_condition(input: &StatusInput<'_>) -> Draft {
    match input.selector_error {
        None => (
            SELECTOR_VALID,
            true,
            reason::VALID,
            "the cluster selector is valid".to_owned(),
        ),
        Some(e) => (
            SELECTOR_VALID,
            false,
            reason::INVALID_SELECTOR,
            format!("no cluster is selected because the cluster selector is invalid: {e}"),
        ),
    }
}

/// Lists `id: message` for clusters matching `pick`, for summary messages.
fn list(input: &StatusInput<'_>, pick: impl Fn(&ClusterView) -> Option<String>) -> String {
    let items: Vec<String> = input
        .clusters
        .iter()
        .filter_map(|(id, v)| {
            pick(v).map(|m| {
                if m.is_empty() {
                    id.clone()
                } else {
                    format!("{id} ({m})")
                }
            })
        })
        .collect();
    items.join(", ")
}

fn ready_summary(input: &StatusInput<'_>, phase: OffloadingPhase) -> Draft {
    let twin = input.twin_name;
    let failure = |v: &ClusterView| match (&v.twin, v.selected) {
        (TwinState::Failed(f), true) => Some(f.message.clone()),
        _ => None,
    };
    let (status, message) = match phase {
        OffloadingPhase::Ready => {
            let n = input.clusters.values().filter(|c| c.selected).count();
            (
                true,
                format!("namespace {twin} is ready on {n} remote cluster(s)"),
            )
        }
        OffloadingPhase::NoClusterSelected => (
            false,
            "no remote cluster is selected: pods can run only on local nodes".to_owned(),
        ),
        OffloadingPhase::InProgress => (
            false,
            format!(
                "waiting for namespace {twin} on: {}",
                list(input, |v| (v.selected && v.twin != TwinState::Ready)
                    .then(String::new))
            ),
        ),
        OffloadingPhase::SomeFailed | OffloadingPhase::AllFailed => (
            false,
            format!(
                "namespace {twin} cannot be created on: {}",
                list(input, failure)
            ),
        ),
        OffloadingPhase::Terminating => (false, terminating_message(input)),
    };
    (READY, status, phase.as_str(), message)
}

fn terminating_message(input: &StatusInput<'_>) -> String {
    let twin = input.twin_name;
    let waiting = list(input, |v| match &v.twin {
        TwinState::Absent => None,
        TwinState::Failed(f) => Some(f.message.clone()),
        _ => Some(String::new()),
    });
    if waiting.is_empty() {
        return "deleted every twin namespace; releasing the NamespaceOffloading".to_owned();
    }
    let unreachable = input
        .clusters
        .values()
        .any(|v| matches!(&v.twin, TwinState::Failed(f) if f.unreachable));
    let hint = if unreachable {
        format!(
            "; to release the NamespaceOffloading without unreachable clusters, annotate it with {}=true",
            crate::api::consts::ORPHAN_UNREACHABLE_ANNOTATION
        )
    } else {
        String::new()
    };
    format!("waiting for namespace {twin} to be deleted on: {waiting}{hint}")
}
