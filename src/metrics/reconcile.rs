//! The reconciler's metrics: runs, errors, objects per phase, cluster reachability and pods
//! that do not follow their namespace's policy.
//!
//! Label types stay private: the reconciler says what happened (`reconciled("ok")`,
//! `forget_cluster(id)`), and the series' shapes are decided here.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    /// `ok` or `error`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    /// What failed, e.g. `status` or `finalizer`.
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabels {
    /// Remote cluster id.
    cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NamespaceLabels {
    namespace: String,
}

/// The reconciler's metric handles (cheap to clone: every family is shared).
#[derive(Debug, Clone)]
pub struct ReconcileMetrics {
    reconciles: Family<OutcomeLabels, Counter>,
    errors: Family<ReasonLabels, Counter>,
    offloadings: Family<PhaseLabels, Gauge>,
    reachable: Family<ClusterLabels, Gauge>,
    violating: Family<NamespaceLabels, Gauge>,
}

impl ReconcileMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let metrics = ReconcileMetrics {
            reconciles: Family::default(),
            errors: Family::default(),
            offloadings: Family::default(),
            reachable: Family::default(),
            violating: Family::default(),
        };
        registry.register(
            "reconciles",
            "NamespaceOffloading reconcile runs by outcome",
            metrics.reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconcile runs by reason",
            metrics.errors.clone(),
        );
        registry.register(
            "namespace_offloadings",
            "NamespaceOffloadings (twin namespace sets) by offloading phase",
            metrics.offloadings.clone(),
        );
        registry.register(
            "remote_cluster_reachable",
            "Whether the remote cluster answered the reconciler's last call (1) or not (0)",
            metrics.reachable.clone(),
        );
        registry.register(
            "violating_pods",
            "Pods of an offloaded namespace that do not follow its pod offloading policy",
            metrics.violating.clone(),
        );
        metrics
    }

    /// Counts one reconcile run that ended with `outcome` (`ok` or `error`).
    pub fn reconciled(&self, outcome: &'static str) {
        self.reconciles
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts one failed run by what failed.
    pub fn failed(&self, reason: &'static str) {
        self.errors.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// The count of NamespaceOffloadings in `phase` (created at 0 when new).
    pub fn phase(&self, phase: &'static str) -> Gauge {
        self.offloadings
            .get_or_create(&PhaseLabels { phase })
            .clone()
    }

    /// Whether `cluster` answered the last call.
    pub fn set_reachable(&self, cluster: &str, up: bool) {
        self.reachable
            .get_or_create(&ClusterLabels {
                cluster: cluster.to_owned(),
            })
            .set(i64::from(up));
    }

    /// Removes the reachability series of a cluster that is gone.
    pub fn forget_cluster(&self, cluster: &str) {
        self.reachable.remove(&ClusterLabels {
            cluster: cluster.to_owned(),
        });
    }

    /// The number of pods of `namespace` that do not follow its policy.
    pub fn set_violating(&self, namespace: &str, pods: usize) {
        self.violating
            .get_or_create(&NamespaceLabels {
                namespace: namespace.to_owned(),
            })
            .set(i64::try_from(pods).unwrap_or(i64::MAX));
    }

    /// Removes the series of a namespace that is no longer offloaded.
    pub fn forget_violating(&self, namespace: &str) {
        self.violating.remove(&NamespaceLabels {
            namespace: namespace.to_owned(),
        });
    }
}
