//! The process's Prometheus metrics, one sub-registry per subsystem.
//!
//! Each subsystem owns a small handle ([`AdmissionMetrics`], [`ReconcileMetrics`],
//! [`ServingMetrics`]) registered in its own sub-registry, and receives only that handle: the
//! reconciler cannot touch admission series, and no subsystem reaches into the server to count
//! something. The admin port's `/metrics` encodes the whole registry. Metric names keep the
//! `nsoffload_` prefix and are part of the interface operators alert on, so they do not change
//! with this layout. Label values are closed sets or bounded by the objects the process
//! manages (clusters, namespaces), and series of vanished objects are removed.

mod admission;
mod reconcile;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use admission::AdmissionMetrics;
pub use reconcile::ReconcileMetrics;

/// The serving certificate's metric.
#[derive(Debug, Clone, Default)]
pub struct ServingMetrics {
    cert_expiry: Gauge,
}

impl ServingMetrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "Expiry of the serving certificate (Unix time)",
            metrics.cert_expiry.clone(),
        );
        metrics
    }

    /// The gauge of the serving certificate's expiry time (Unix seconds).
    pub fn cert_expiry(&self) -> Gauge {
        self.cert_expiry.clone()
    }
}

/// Every metric of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Admission requests and their latency (`nsoffload_admission_*`).
    pub admission: AdmissionMetrics,
    /// The serving certificate (`nsoffload_serving_*`).
    pub serving: ServingMetrics,
    /// The reconciler's runs, phases, clusters and pods.
    pub reconcile: ReconcileMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates every subsystem's metrics in its sub-registry.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("nsoffload");
        let admission = AdmissionMetrics::register(registry.sub_registry_with_prefix("admission"));
        let serving = ServingMetrics::register(registry.sub_registry_with_prefix("serving"));
        // The reconciler's names predate this layout (`nsoffload_reconciles_total`,
        // `nsoffload_namespace_offloadings`, …): its sub-registry adds no prefix of its own.
        let reconcile =
            ReconcileMetrics::register(registry.sub_registry_with_labels(std::iter::empty()));
        Metrics {
            registry,
            admission,
            serving,
            reconcile,
        }
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names operators alert on stay what the README lists, whichever sub-registry holds
    /// them.
    #[test]
    fn every_subsystem_keeps_its_documented_names() {
        let metrics = Metrics::new();
        metrics.admission.observe("mutate-pod", "patched", 0.001);
        metrics.serving.cert_expiry().set(42);
        metrics.reconcile.reconciled("ok");
        metrics.reconcile.failed("status");
        metrics.reconcile.phase("Ready").set(1);
        metrics.reconcile.set_reachable("r1", true);
        metrics.reconcile.set_violating("ns", 2);
        let text = metrics.encode();
        for series in [
            "nsoffload_admission_requests_total{webhook=\"mutate-pod\",outcome=\"patched\"} 1",
            "nsoffload_admission_duration_seconds_count{webhook=\"mutate-pod\"} 1",
            "nsoffload_serving_certificate_expiry_timestamp_seconds 42",
            "nsoffload_reconciles_total{outcome=\"ok\"} 1",
            "nsoffload_reconcile_errors_total{reason=\"status\"} 1",
            "nsoffload_namespace_offloadings{phase=\"Ready\"} 1",
            "nsoffload_remote_cluster_reachable{cluster=\"r1\"} 1",
            "nsoffload_violating_pods{namespace=\"ns\"} 2",
        ] {
            assert!(text.contains(series), "{series} missing from:\n{text}");
        }
        metrics.reconcile.forget_cluster("r1");
        metrics.reconcile.forget_violating("ns");
        let text = metrics.encode();
        assert!(!text.contains("cluster=\"r1\""), "{text}");
        assert!(!text.contains("namespace=\"ns\""), "{text}");
    }
}
