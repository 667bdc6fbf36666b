//! The decisions of one reconcile, apart from its I/O: observe → plan → apply.
//!
//! A reconcile has two moments where it must decide. Before touching anything, [`intend`]
//! reads the object and the caches (virtual nodes grouped by cluster, which clusters have
//! credentials) and says what to do: add the finalizer, set or remove the scheduling label,
//! and, for every cluster that could hold a twin, ensure it, remove it, or nothing (its
//! outcome is known without asking). After each cluster was visited, [`settle`] turns what
//! was found into the status to store, whether the finalizer can go, the Events, which
//! clusters answered, and [`next_look`] says when to look again. Both are pure and
//! table-tested (`plan_tests.rs`); `flow` only carries them out, in the order that keeps a
//! crash at any point safe to resume.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::select::{select, Clusters, Selection};
use super::status::{self, ClusterView, Failure, StatusInput, TwinState};
use super::twin::Twin;
use crate::api::conditions::{self, event, reason};
use crate::api::consts::{NSOFF_FINALIZER, ORPHAN_UNREACHABLE_ANNOTATION};
use crate::api::{
    NamespaceOffloading, NamespaceOffloadingStatus, OffloadingPhase, PodOffloadingStrategy,
};
use crate::policy::naming::{check_dns1123_label, twin_namespace_name};

/// A Kubernetes Event to publish about the NamespaceOffloading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `Warning` rather than `Normal`.
    pub warning: bool,
    /// Short PascalCase reason.
    pub reason: &'static str,
    /// What happened.
    pub message: String,
}

/// What to do on one remote cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visit {
    /// Create the twin if missing (and report it); `expected`: the stored status saw it
    /// created, so it is read first (else it is created first).
    Ensure {
        /// The stored status says the twin was created on this cluster.
        expected: bool,
    },
    /// Delete our twin if present (and report it).
    Remove,
    /// Nothing to ask: the outcome is already known (a cluster gone for good, or a twin name
    /// that no cluster can hold).
    Known(TwinState),
}

/// What a reconcile does before the remote clusters answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    /// The object has a deletion timestamp (and still our finalizer).
    pub deleting: bool,
    /// Our finalizer is missing: add it before any twin exists.
    pub add_finalizer: bool,
    /// Whether the local namespace should carry the scheduling label.
    pub scheduling_label: bool,
    /// The twin namespace.
    pub twin: Twin,
    /// The selector's outcome.
    pub selection: Selection,
    /// Every cluster that could hold a twin, and what to do there.
    pub visits: BTreeMap<String, Visit>,
}

/// Decides what to do before anything is written, from the object, the virtual nodes
/// grouped by cluster, the clusters with credentials and the home cluster id; `None` when
/// there is nothing to do (a deleted object that is not, or no longer, ours).
pub fn intend(
    nsoff: &NamespaceOffloading,
    clusters: &Clusters,
    credentials: &BTreeSet<String>,
    home_id: &str,
) -> Option<Intent> {
    let namespace = nsoff.namespace().unwrap_or_default();
    let deleting = nsoff.metadata.deletion_timestamp.is_some();
    let has_finalizer = nsoff.finalizers().iter().any(|f| f == NSOFF_FINALIZER);
    if deleting && !has_finalizer {
        return None;
    }
    let selection = if deleting {
        Selection::default()
    } else {
        select(&nsoff.spec, clusters)
    };
    let name = twin_namespace_name(&nsoff.spec, &namespace, home_id);
    let name_error = check_dns1123_label(&name)
        .err()
        .map(|e| format!("the twin namespace name {name:?} is not valid: {e}"));
    // Every cluster that could hold a twin: with virtual nodes, in the stored status, or with
    // credentials (a twin created just before a lost status write is still found).
    let mut ids: BTreeSet<String> = clusters.keys().cloned().collect();
    ids.extend(
        nsoff
            .status
            .iter()
            .flat_map(|s| s.remote_namespaces_conditions.keys().cloned()),
    );
    ids.extend(credentials.iter().cloned());
    let visits = ids
        .into_iter()
        .map(|id| {
            // Gone for good (SPEC §7.10): no virtual node and no credentials. Nothing can be
            // reached there, so its entry leaves the status instead of failing forever.
            let gone = !clusters.contains_key(&id) && !credentials.contains(&id);
            let want = selection.is_selected(&id) && !gone;
            let visit = match (&name_error, gone, want) {
                (_, true, _) => Visit::Known(TwinState::Absent),
                // No twin can have an invalid name, so there is nothing to delete either.
                (Some(e), _, true) => Visit::Known(TwinState::Failed(Failure {
                    message: e.clone(),
                    unreachable: false,
                })),
                (Some(_), _, false) => Visit::Known(TwinState::Absent),
                (None, _, true) => Visit::Ensure {
                    expected: created(nsoff, &id),
                },
                (None, _, false) => Visit::Remove,
            };
            (id, visit)
        })
        .collect();
    Some(Intent {
        deleting,
        add_finalizer: !deleting && !has_finalizer,
        scheduling_label: !deleting
            && nsoff.spec.pod_offloading_strategy != PodOffloadingStrategy::Local,
        twin: Twin {
            name,
            home_id: home_id.to_owned(),
            local_namespace: namespace,
        },
        selection,
        visits,
    })
}

/// Whether the stored status says the twin was created on `cluster`.
fn created(nsoff: &NamespaceOffloading, cluster: &str) -> bool {
    nsoff
        .status
        .as_ref()
        .and_then(|s| s.remote_namespaces_conditions.get(cluster))
        .and_then(|cs| cs.iter().find(|c| c.type_ == conditions::READY))
        .is_some_and(|c| c.reason == reason::NAMESPACE_CREATED)
}

/// What a reconcile does once every cluster was visited.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The status computed (without `PodsCompliant`, which needs a pod list); stored when it
    /// differs from the stored one, unless the object is released.
    pub status: NamespaceOffloadingStatus,
    /// Deleting, and no twin is left (or only orphaned ones): remove the finalizer.
    pub release: bool,
    /// Events to publish.
    pub notices: Vec<Notice>,
    /// Per cluster visited: whether it answered.
    pub reachable: BTreeMap<String, bool>,
    /// A twin of a cluster that is not selected is still being deleted.
    pub settling: bool,
    /// Pods can run remotely under this status: judge them (SPEC §12).
    pub judge_pods: bool,
}

/// Decides the status, release and Events from what each cluster's visit found.
pub fn settle(
    intent: &Intent,
    nsoff: &NamespaceOffloading,
    clusters: &Clusters,
    found: BTreeMap<String, TwinState>,
    now: &Time,
) -> Plan {
    let mut reachable = BTreeMap::new();
    let mut views = BTreeMap::new();
    for (id, twin) in found {
        if let TwinState::Failed(f) = &twin {
            reachable.insert(id.clone(), !f.unreachable);
        } else if twin != TwinState::Absent || clusters.contains_key(&id) {
            reachable.insert(id.clone(), true);
        }
        let view = ClusterView {
            exists: clusters.contains_key(&id),
            selected: intent.selection.is_selected(&id),
            twin,
        };
        views.insert(id, view);
    }
    let previous = nsoff.status.as_ref();
    let status = status::compute(&StatusInput {
        generation: nsoff.metadata.generation,
        deleting: intent.deleting,
        twin_name: &intent.twin.name,
        selector_error: intent.selection.error.as_deref(),
        clusters: &views,
        previous,
        now,
    });
    let mut notices = notices(previous, &status, &views, &intent.twin.name);
    let settling = views
        .values()
        .any(|v| !v.selected && !matches!(v.twin, TwinState::Absent | TwinState::Failed(_)));
    let judge_pods = !intent.deleting
        && matches!(
            status.offloading_phase,
            Some(OffloadingPhase::Ready | OffloadingPhase::SomeFailed)
        );
    let release = intent.deleting && releasable(nsoff, &views, &intent.twin.name, &mut notices);
    Plan {
        status,
        release,
        notices,
        reachable,
        settling,
        judge_pods,
    }
}

/// Whether a deleting object can be released: no twin left, or only on unreachable clusters
/// the user chose to orphan (then a Warning names them).
fn releasable(
    nsoff: &NamespaceOffloading,
    views: &BTreeMap<String, ClusterView>,
    twin: &str,
    notices: &mut Vec<Notice>,
) -> bool {
    let orphan = nsoff
        .annotations()
        .get(ORPHAN_UNREACHABLE_ANNOTATION)
        .is_some_and(|v| v == "true");
    let blocked = views.values().any(|v| match &v.twin {
        TwinState::Absent => false,
        TwinState::Failed(Failure {
            unreachable: true, ..
        }) => !orphan,
        _ => true,
    });
    if blocked {
        return false;
    }
    let orphaned: Vec<&str> = views
        .iter()
        .filter(|(_, v)| matches!(v.twin, TwinState::Failed(_)))
        .map(|(id, _)| id.as_str())
        .collect();
    if !orphaned.is_empty() {
        notices.push(Notice {
            warning: true,
            reason: event::ORPHANED_UNREACHABLE,
            message: format!(
                "released without deleting namespace {twin} on unreachable cluster(s): {}",
                orphaned.join(", ")
            ),
        });
    }
    true
}

/// When to reconcile an object again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextLook {
    /// Only when something changes (released objects).
    OnChange,
    /// Soon: twins are being created.
    Soon,
    /// Twins are being deleted: their deletion wakes the object (the twin watches); looked at
    /// again after [`wake_fallback`] in case a watch was down.
    OnTwinDeletion,
    /// At the resync: converged (and the failure count starts over).
    Resync,
    /// With exponential backoff: some cluster failed.
    Backoff,
}

/// How soon an object whose twins are being created is looked at again.
pub const SOON: std::time::Duration = std::time::Duration::from_secs(2);

/// How soon an object waiting for twin deletions is looked at again without a wake-up, the
/// first time.
pub const WAKE_FALLBACK: std::time::Duration = std::time::Duration::from_secs(10);

/// The longest wait for twin deletions without a wake-up.
pub const WAKE_FALLBACK_MAX: std::time::Duration = std::time::Duration::from_secs(60);

/// How soon an object is looked at again when it has already waited `waited` times for its
/// twins' deletion: [`WAKE_FALLBACK`], doubling, at most [`WAKE_FALLBACK_MAX`].
///
/// The deletion of a twin wakes its object at once; this look is only for a wake-up lost
/// while a twin watch was down. A remote namespace controller can take minutes to empty a
/// namespace, and each look reads every twin from the very API servers doing that work: at
/// a fixed 10 s, unoffloading 1,000 namespaces from three clusters cost their API servers
/// 33,000 reads, a sixth of what their namespace controllers asked of them.
pub fn wake_fallback(waited: u32) -> std::time::Duration {
    WAKE_FALLBACK
        .saturating_mul(1u32 << waited.min(8))
        .min(WAKE_FALLBACK_MAX)
}

/// When to look again after a reconcile that ended with `phase` (`None`: released).
pub fn next_look(phase: Option<OffloadingPhase>, settling: bool) -> NextLook {
    match phase {
        None => NextLook::OnChange,
        Some(_) if settling => NextLook::OnTwinDeletion,
        Some(OffloadingPhase::Ready | OffloadingPhase::NoClusterSelected) => NextLook::Resync,
        Some(OffloadingPhase::InProgress) => NextLook::Soon,
        Some(OffloadingPhase::Terminating) => NextLook::OnTwinDeletion,
        Some(OffloadingPhase::SomeFailed | OffloadingPhase::AllFailed) => NextLook::Backoff,
    }
}

/// Events for the transitions between the stored status and the computed one.
fn notices(
    previous: Option<&NamespaceOffloadingStatus>,
    computed: &NamespaceOffloadingStatus,
    views: &BTreeMap<String, ClusterView>,
    twin: &str,
) -> Vec<Notice> {
    let mut out = Vec::new();
    let old_reason = |id: &str, type_: &str| {
        previous
            .and_then(|s| s.remote_namespaces_conditions.get(id))
            .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
            .map(|c| c.reason.clone())
    };
    for (id, conditions) in &computed.remote_namespaces_conditions {
        let Some(ready) = conditions.iter().find(|c| c.type_ == conditions::READY) else {
            continue;
        };
        if old_reason(id, conditions::READY).as_deref() == Some(ready.reason.as_str()) {
            continue;
        }
        let (warning, reason, message) = match ready.reason.as_str() {
            reason::NAMESPACE_CREATED => (
                false,
                event::TWIN_READY,
                format!("namespace {twin} is ready on cluster {id}"),
            ),
            reason::CREATION_LOOP_BACK_OFF => (
                true,
                event::TWIN_FAILED,
                format!("cluster {id}: {}", ready.message),
            ),
            reason::TERMINATING
                if views
                    .get(id)
                    .is_some_and(|v| matches!(v.twin, TwinState::Failed(_))) =>
            {
                (
                    true,
                    event::TWIN_DELETION_FAILED,
                    format!("cluster {id}: {}", ready.message),
                )
            }
            reason::TERMINATING => (
                false,
                event::TWIN_DELETING,
                format!("deleting namespace {twin} on cluster {id}"),
            ),
            _ => continue,
        };
        out.push(Notice {
            warning,
            reason,
            message,
        });
    }
    let top = |s: &NamespaceOffloadingStatus, type_: &str| {
        s.conditions.iter().find(|c| c.type_ == type_).cloned()
    };
    if let Some(sel) =
        top(computed, conditions::SELECTOR_VALID).filter(|c| c.status == conditions::FALSE)
    {
        let was_invalid = previous
            .and_then(|p| top(p, conditions::SELECTOR_VALID))
            .is_some_and(|c| c.status == conditions::FALSE);
        if !was_invalid {
            out.push(Notice {
                warning: true,
                reason: reason::INVALID_SELECTOR,
                message: sel.message,
            });
        }
    }
    let phase = computed.offloading_phase;
    let was = previous.and_then(|p| p.offloading_phase);
    // A first phase of NoClusterSelected reports that nothing happened: the status says it,
    // and an Event for each new NamespaceOffloading that selects nothing (thousands at once
    // when many namespaces are created) would only load the API server.
    let first_and_idle = was.is_none() && phase == Some(OffloadingPhase::NoClusterSelected);
    if was != phase && !first_and_idle {
        if let (Some(phase), Some(ready)) = (phase, top(computed, conditions::READY)) {
            let warning = matches!(
                phase,
                OffloadingPhase::SomeFailed | OffloadingPhase::AllFailed
            );
            out.push(Notice {
                warning,
                reason: phase.as_str(),
                message: ready.message,
            });
        }
    }
    out
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
