//! The controller's metric bookkeeping: objects per phase and violating pods per namespace.
//!
//! Apart from the controller so that the series' life cycle (created, moved, removed with
//! the object) is tested without running one.

use std::collections::HashMap;
use std::sync::Mutex;

use super::flow::Report;
use super::pods::PodAudit;
use crate::api::OffloadingPhase;
use crate::metrics::ReconcileMetrics;

/// Moves the object from its previous phase's count to the new one's: counted as they
/// change, not recounted (a reconcile must not cost a pass over every object).
pub(super) fn track_phase(
    metrics: &ReconcileMetrics,
    phases: &Mutex<HashMap<String, OffloadingPhase>>,
    key: &str,
    phase: Option<OffloadingPhase>,
) {
    let mut phases = phases.lock().unwrap_or_else(|e| e.into_inner());
    let old = match phase {
        Some(p) => phases.insert(key.to_owned(), p),
        None => phases.remove(key),
    };
    if old == phase {
        return;
    }
    let gauge = |p: OffloadingPhase| metrics.phase(p.as_str());
    if let Some(old) = old {
        gauge(old).dec();
    }
    if let Some(new) = phase {
        gauge(new).inc();
    }
}

/// Sets the namespace's violating-pods series when its pods were judged, and removes it
/// (with what the audit remembers) when the namespace is no longer offloaded.
pub(super) fn track_violating(
    metrics: &ReconcileMetrics,
    audit: Option<&PodAudit>,
    namespace: &str,
    report: &Report,
) {
    if report.phase.is_none() {
        metrics.forget_violating(namespace);
        if let Some(audit) = audit {
            audit.forget(namespace);
        }
    } else if let Some(n) = report.violating {
        metrics.set_violating(namespace, n);
    }
}

#[cfg(test)]
#[path = "tally_tests.rs"]
mod tests;
