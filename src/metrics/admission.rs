//! Admission requests by webhook and outcome, and the time to answer them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// Endpoint name, e.g. `mutate-pod`.
    webhook: &'static str,
    /// `allowed`, `patched`, `denied`, `invalid` or `bad_request`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    webhook: &'static str,
}

/// The admission server's metrics.
#[derive(Debug, Clone)]
pub struct AdmissionMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<WebhookLabels, Histogram>,
}

impl AdmissionMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Admission requests by webhook and outcome",
            requests.clone(),
        );
        // 25 µs … ~0.4 s: decisions take microseconds, the API server's timeout is seconds.
        let latency = Family::<WebhookLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_025, 2.0, 15))
        });
        registry.register(
            "duration_seconds",
            "Time to decide and encode an admission answer",
            latency.clone(),
        );
        AdmissionMetrics { requests, latency }
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
}
