//! Prometheus metrics of the admission server.
//!
//! One registry, one struct holding typed handles, encoded as Prometheus text by the admin
//! port's `/metrics`. Label values are closed sets (webhook, outcome), so cardinality stays
//! bounded whatever the requests carry.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of admission request counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Endpoint name, e.g. `mutate-pod`.
    pub webhook: &'static str,
    /// `allowed`, `patched`, `denied`, `invalid` or `bad_request`.
    pub outcome: &'static str,
}

/// Labels of the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// Endpoint name.
    pub webhook: &'static str,
}

/// Labels of reconcile counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `ok` or `error`.
    pub outcome: &'static str,
}

/// Labels of reconcile error counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// What failed, e.g. `status` or `finalizer`.
    pub reason: &'static str,
}

/// Labels of the phase gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// An offloading phase.
    pub phase: &'static str,
}

/// Labels of per-cluster gauges (one series per peered cluster).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    /// Remote cluster id.
    pub cluster: String,
}

/// Labels of per-namespace gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabels {
    /// The offloaded namespace.
    pub namespace: String,
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<WebhookLabels, Histogram>,
    cert_expiry: Gauge,
    /// Reconcile runs by outcome.
    pub reconciles: Family<OutcomeLabels, Counter>,
    /// Reconcile errors by reason.
    pub reconcile_errors: Family<ReasonLabels, Counter>,
    /// NamespaceOffloadings (and so their twins) by phase.
    pub offloadings: Family<PhaseLabels, Gauge>,
    /// 1 when the remote cluster answered the last call, else 0.
    pub cluster_reachable: Family<ClusterLabels, Gauge>,
    /// Pods that do not follow their namespace's policy, as last judged (SPEC §12).
    pub violating_pods: Family<NamespaceLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("nsoffload");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "Admission requests by webhook and outcome",
            requests.clone(),
        );
        // 25 µs … ~0.4 s: decisions take microseconds, the API server's timeout is seconds.
        let latency = Family::<WebhookLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_025, 2.0, 15))
        });
        registry.register(
            "admission_duration_seconds",
            "Time to decide and encode an admission answer",
            latency.clone(),
        );
        let cert_expiry = Gauge::default();
        registry.register(
            "serving_certificate_expiry_timestamp_seconds",
            "Expiry of the serving certificate (Unix time)",
            cert_expiry.clone(),
        );
        let reconciles = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "reconciles",
            "NamespaceOffloading reconcile runs by outcome",
            reconciles.clone(),
        );
        let reconcile_errors = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Failed reconcile runs by reason",
            reconcile_errors.clone(),
        );
        let offloadings = Family::<PhaseLabels, Gauge>::default();
        registry.register(
            "namespace_offloadings",
            "NamespaceOffloadings (twin namespace sets) by offloading phase",
            offloadings.clone(),
        );
        let cluster_reachable = Family::<ClusterLabels, Gauge>::default();
        registry.register(
            "remote_cluster_reachable",
            "Whether the remote cluster answered the reconciler's last call (1) or not (0)",
            cluster_reachable.clone(),
        );
        let violating_pods = Family::<NamespaceLabels, Gauge>::default();
        registry.register(
            "violating_pods",
            "Pods of an offloaded namespace that do not follow its pod offloading policy",
            violating_pods.clone(),
        );
        Metrics {
            registry,
            violating_pods,
            reconciles,
            reconcile_errors,
            offloadings,
            cluster_reachable,
            requests,
            latency,
            cert_expiry,
        }
    }

    /// Counts one admission request and records its latency.
    pub fn observe(&self, webhook: &'static str, outcome: &'static str, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels { webhook, outcome })
            .inc();
        self.latency
            .get_or_create(&WebhookLabels { webhook })
            .observe(seconds);
    }

    /// The gauge of the serving certificate's expiry time (Unix seconds).
    pub fn cert_expiry(&self) -> Gauge {
        self.cert_expiry.clone()
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
