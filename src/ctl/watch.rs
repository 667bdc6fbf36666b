//! What a NamespaceOffloading's status means to the person waiting on a command.
//!
//! The reconciler's status is precise but long (two conditions per cluster, top-level
//! conditions, a phase); the commands need a short answer to "is it done, and if not, which
//! cluster is the holdup?". These functions give it without I/O. A status counts only when
//! its `observedGeneration` is the object's generation: anything else describes an older
//! spec, and reading it as current is how a command would report success too early.

use std::collections::BTreeMap;

use crate::api::conditions::{reason, FALSE, OFFLOADING_REQUIRED, READY, SELECTOR_VALID, TRUE};
use crate::api::{NamespaceOffloading, NamespaceOffloadingStatus, OffloadingPhase};

/// One remote cluster, as a person reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterState {
    /// The selector leaves this cluster out (and no twin of ours is left there).
    NotSelected,
    /// Selected; the twin namespace is not there yet. The message says what is going on.
    Pending(String),
    /// Selected and the twin namespace exists.
    Ready,
    /// The twin namespace cannot be created (or deleted); the message gives the cause.
    Failing(String),
    /// The twin namespace is being deleted.
    Deleting(String),
}

/// The clusters of a status, by id.
pub(crate) fn clusters(status: &NamespaceOffloadingStatus) -> BTreeMap<String, ClusterState> {
    status
        .remote_namespaces_conditions
        .iter()
        .map(|(id, conditions)| {
            let find = |t: &str| conditions.iter().find(|c| c.type_ == t);
            let state = match (find(READY), find(OFFLOADING_REQUIRED)) {
                (Some(c), _) if c.status == TRUE => ClusterState::Ready,
                (Some(c), _) if c.reason == reason::CREATION_LOOP_BACK_OFF => {
                    ClusterState::Failing(c.message.clone())
                }
                (Some(c), _) if c.reason == reason::TERMINATING => {
                    ClusterState::Deleting(c.message.clone())
                }
                (Some(c), _) => ClusterState::Pending(c.message.clone()),
                (None, Some(r)) if r.status == TRUE => ClusterState::Pending(String::new()),
                (None, _) => ClusterState::NotSelected,
            };
            (id.clone(), state)
        })
        .collect()
}

/// Where an offloading stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Offload {
    /// There is no NamespaceOffloading (any more).
    Missing,
    /// It is being deleted.
    Deleting,
    /// Not there yet; `why` says what is awaited.
    Waiting {
        /// What is awaited, for people.
        why: String,
        /// The reconciler has written a status for the current generation.
        processed: bool,
        /// The clusters of a current status (empty while the status is stale).
        clusters: BTreeMap<String, ClusterState>,
    },
    /// Every selected cluster has its twin.
    Ready {
        /// The twin namespace name.
        twin: String,
        /// The clusters that have it.
        clusters: Vec<String>,
    },
    /// No cluster is selected; `why` comes from the status.
    NoClusterSelected {
        /// The reason, for people.
        why: String,
    },
    /// Some or all selected clusters fail.
    Failed {
        /// `SomeFailed` or `AllFailed`.
        phase: OffloadingPhase,
        /// Failing cluster id → message.
        failing: Vec<(String, String)>,
    },
}

fn top_message(status: &NamespaceOffloadingStatus, type_: &str) -> Option<String> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == FALSE && !c.message.is_empty())
        .map(|c| c.message.clone())
}

/// The status, when it was computed for the object's current generation.
pub(crate) fn current_status(object: &NamespaceOffloading) -> Option<&NamespaceOffloadingStatus> {
    let status = object.status.as_ref()?;
    let generation = object.metadata.generation?;
    (status.observed_generation == Some(generation)).then_some(status)
}

/// Reads an offloading for `offload namespace`.
pub(crate) fn assess(object: Option<&NamespaceOffloading>) -> Offload {
    let Some(object) = object else {
        return Offload::Missing;
    };
    let phase = object.status.as_ref().and_then(|s| s.offloading_phase);
    if object.metadata.deletion_timestamp.is_some() || phase == Some(OffloadingPhase::Terminating) {
        return Offload::Deleting;
    }
    let Some(status) = current_status(object).cloned() else {
        let observed = object.status.as_ref().and_then(|s| s.observed_generation);
        let why = match (observed, object.metadata.generation) {
            (None, Some(g)) => format!("waiting for the reconciler to process generation {g}"),
            (Some(seen), Some(g)) => format!(
                "waiting for the reconciler to process generation {g} (the status is for \
                 generation {seen})"
            ),
            (_, None) => "waiting for the API server to assign a generation".to_owned(),
        };
        return Offload::Waiting {
            why,
            processed: false,
            clusters: BTreeMap::new(),
        };
    };
    let clusters = clusters(&status);
    match status.offloading_phase {
        Some(OffloadingPhase::Ready) => Offload::Ready {
            twin: status.remote_namespace_name.unwrap_or_default(),
            clusters: clusters
                .iter()
                .filter(|(_, s)| **s == ClusterState::Ready)
                .map(|(id, _)| id.clone())
                .collect(),
        },
        Some(OffloadingPhase::NoClusterSelected) => Offload::NoClusterSelected {
            why: top_message(&status, SELECTOR_VALID)
                .or_else(|| top_message(&status, READY))
                .unwrap_or_else(|| "no remote cluster matches the cluster selector".to_owned()),
        },
        Some(phase @ (OffloadingPhase::SomeFailed | OffloadingPhase::AllFailed)) => {
            let failing = clusters
                .iter()
                .filter_map(|(id, s)| match s {
                    ClusterState::Failing(m) => Some((id.clone(), m.clone())),
                    _ => None,
                })
                .collect();
            Offload::Failed { phase, failing }
        }
        Some(OffloadingPhase::InProgress) | Some(OffloadingPhase::Terminating) | None => {
            Offload::Waiting {
                why: top_message(&status, READY)
                    .unwrap_or_else(|| "waiting for the twin namespaces".to_owned()),
                processed: true,
                clusters,
            }
        }
    }
}

/// Where an unoffloading stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Removal {
    /// The NamespaceOffloading is gone: every twin we owned was deleted (or orphaned).
    Gone,
    /// Still there.
    Pending {
        /// The reconciler has started (phase `Terminating`).
        started: bool,
        /// Clusters that still hold a twin of ours (id → what the status says).
        holding: Vec<(String, String)>,
    },
}

/// Reads an offloading for `unoffload namespace`.
pub(crate) fn assess_removal(object: Option<&NamespaceOffloading>) -> Removal {
    let Some(object) = object else {
        return Removal::Gone;
    };
    let status = object.status.clone().unwrap_or_default();
    let holding = clusters(&status)
        .into_iter()
        .filter_map(|(id, s)| match s {
            ClusterState::NotSelected => None,
            ClusterState::Ready => Some((id, "the twin namespace is still there".to_owned())),
            ClusterState::Pending(m) | ClusterState::Failing(m) | ClusterState::Deleting(m) => {
                Some((id, m))
            }
        })
        .collect();
    Removal::Pending {
        started: status.offloading_phase == Some(OffloadingPhase::Terminating),
        holding,
    }
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
