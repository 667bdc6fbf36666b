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

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<WebhookLabels, Histogram>,
    cert_expiry: Gauge,
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
        Metrics {
            registry,
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
