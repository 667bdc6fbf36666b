//! The admission endpoints: decode a review, decide with `policy`, encode the answer.
//!
//! A parsed request is always answered with a review carrying its uid (HTTP 200), whatever
//! the decision; only a body that is not an AdmissionReview at all gets an HTTP error. One
//! module per endpoint; this module holds what they share.

pub(crate) mod namespace;
pub(crate) mod nsoff;
pub mod pod;
pub mod review;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use tracing::{field, Instrument};

use crate::policy::mutate::PodView;
use crate::policy::namespace::NamespaceView;
use crate::policy::validate::ValidationConfig;
use crate::state::{LiveLookup, NamespaceEntry, Store};
use review::{shorten, Decision, DecodeError, Request, MAX_REASON_BYTES};

/// Configuration and state shared by the admission endpoints.
#[derive(Debug)]
pub struct Admission {
    /// The current per-namespace state.
    pub store: Arc<Store>,
    /// The RuntimeClass that forces remote scheduling.
    pub runtime_class: String,
    /// Settings of NamespaceOffloading validation (home cluster id).
    pub validation: ValidationConfig,
    /// Reads a NamespaceOffloading from the API server when the cache has none (cluster
    /// mode); `None` when the state is authoritative (standalone).
    pub live: Option<Arc<dyn LiveLookup>>,
}

/// The endpoints, for routing, logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Webhook {
    /// `POST /mutate/pod`.
    MutatePod,
    /// `POST /mutate/namespace`.
    MutateNamespace,
    /// `POST /validate/namespace-offloading`.
    ValidateNamespaceOffloading,
}

impl Webhook {
    /// Every endpoint.
    pub const ALL: [Webhook; 3] = [
        Webhook::MutatePod,
        Webhook::MutateNamespace,
        Webhook::ValidateNamespaceOffloading,
    ];

    /// The HTTP path.
    pub const fn path(self) -> &'static str {
        match self {
            Webhook::MutatePod => "/mutate/pod",
            Webhook::MutateNamespace => "/mutate/namespace",
            Webhook::ValidateNamespaceOffloading => "/validate/namespace-offloading",
        }
    }

    /// A short name for metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Webhook::MutatePod => "mutate-pod",
            Webhook::MutateNamespace => "mutate-namespace",
            Webhook::ValidateNamespaceOffloading => "validate-namespace-offloading",
        }
    }

    /// API group and kind of the objects the endpoint reviews.
    pub fn object_kind(self) -> (&'static str, &'static str) {
        match self {
            Webhook::MutatePod => ("", "Pod"),
            Webhook::MutateNamespace => ("", "Namespace"),
            Webhook::ValidateNamespaceOffloading => ("offloading.liqo.io", "NamespaceOffloading"),
        }
    }
}

impl Admission {
    /// Answers one request body for `webhook`; `Err` when the body is not an AdmissionReview.
    pub async fn handle(&self, webhook: Webhook, body: &[u8]) -> Result<Answer, DecodeError> {
        Ok(match webhook {
            Webhook::MutatePod => match Pending::<PodView>::decode(webhook, body)? {
                Ok(p) => {
                    let review = pod::review(self, &p.review.request);
                    let decision = review.instrument(p.span.clone()).await;
                    p.finish(decision)
                }
                Err(answered) => answered,
            },
            Webhook::MutateNamespace => match Pending::<NamespaceView>::decode(webhook, body)? {
                Ok(p) => {
                    let decision = p.span.in_scope(|| namespace::review(&p.review.request));
                    p.finish(decision)
                }
                Err(answered) => answered,
            },
            Webhook::ValidateNamespaceOffloading => {
                match Pending::<Value>::decode(webhook, body)? {
                    Ok(p) => {
                        let decision = p.span.in_scope(|| nsoff::review(self, &p.review.request));
                        p.finish(decision)
                    }
                    Err(answered) => answered,
                }
            }
        })
    }

    /// The entry of `namespace` read from the API server, for a cache miss (SPEC §4: a
    /// NamespaceOffloading created a moment ago may not be in the cache yet). `Err` carries
    /// the message for the user; the cause is logged, not sent.
    async fn live_entry(&self, namespace: &str) -> Result<Option<NamespaceEntry>, String> {
        let Some(live) = &self.live else {
            return Ok(None);
        };
        match live.namespace_offloading(namespace).await {
            Ok(found) => Ok(found.map(|n| NamespaceEntry::new(namespace, &n))),
            Err(e) => {
                tracing::warn!(namespace, error = %e, "live read of the NamespaceOffloading failed");
                Err(format!(
                    "could not confirm the offloading of namespace {namespace:?} with the API \
                     server; retry in a few seconds"
                ))
            }
        }
    }
}

/// A decoded request of the endpoint's kind, inside its span, waiting for a decision.
struct Pending<'a, O> {
    webhook: Webhook,
    review: review::Review<'a, O>,
    span: tracing::Span,
}

impl<'a, O: Deserialize<'a>> Pending<'a, O> {
    /// Decodes `body` reading objects as `O`. `Ok(Err(answer))` when the request is already
    /// answered: not of the endpoint's kind, or an AdmissionReview whose object does not read
    /// as `O` (answered with its uid as invalid, rather than refused as a bad body).
    fn decode(webhook: Webhook, body: &'a [u8]) -> Result<Result<Self, Answer>, DecodeError> {
        let pending = match review::decode::<O>(body) {
            Ok(review) => Pending::open(webhook, review),
            Err(DecodeError::Json(e)) => {
                let Ok(raw) = review::decode::<&RawValue>(body) else {
                    return Err(DecodeError::Json(e));
                };
                let p = Pending::open(webhook, raw);
                let decision = expect_kind(&p.review.request, webhook)
                    .err()
                    .unwrap_or_else(|| {
                        let kind = webhook.object_kind().1;
                        Decision::Invalid(shorten(
                            &format!("cannot read the {kind}: {e}"),
                            MAX_REASON_BYTES,
                        ))
                    });
                return Ok(Err(p.finish(decision)));
            }
            Err(e) => return Err(e),
        };
        Ok(match expect_kind(&pending.review.request, webhook) {
            Ok(()) => Ok(pending),
            Err(d) => Err(pending.finish(d)),
        })
    }
}

impl<'a, O> Pending<'a, O> {
    fn open(webhook: Webhook, review: review::Review<'a, O>) -> Self {
        let req = &review.request;
        // `object_name`, not `name`: JSON logs write the span's own name under `name` in the
        // same object, and log pipelines keep only one value per key.
        let span = tracing::info_span!(
            "admission",
            webhook = webhook.name(),
            uid = %req.uid,
            kind = %req.kind.kind,
            namespace = req.namespace.as_deref().unwrap_or(""),
            object_name = req.name.as_deref().unwrap_or(""),
            operation = %req.operation,
            allowed = field::Empty,
            patched = field::Empty,
        );
        Pending {
            webhook,
            review,
            span,
        }
    }

    /// Records the outcome on the span, logs refusals, and encodes the answer.
    fn finish(self, decision: Decision) -> Answer {
        let outcome = match &decision {
            Decision::Allow { patch, .. } if !patch.is_empty() => Outcome::Patched,
            Decision::Allow { .. } => Outcome::Allowed,
            Decision::Deny(_) => Outcome::Denied,
            Decision::Invalid(_) => Outcome::Invalid,
        };
        let allowed = matches!(outcome, Outcome::Allowed | Outcome::Patched);
        self.span
            .record("allowed", allowed)
            .record("patched", outcome == Outcome::Patched);
        let _entered = self.span.enter();
        match &decision {
            Decision::Deny(m) | Decision::Invalid(m) => {
                tracing::info!(webhook = self.webhook.name(), reason = %m, "admission refused")
            }
            Decision::Allow { .. } => tracing::debug!("admission allowed"),
        }
        let (version, uid) = (self.review.api_version, &self.review.request.uid);
        Answer {
            body: review::encode(version, uid, &decision),
            outcome,
        }
    }
}

/// How a request was answered, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Admitted unchanged.
    Allowed,
    /// Admitted with a patch.
    Patched,
    /// Refused by policy.
    Denied,
    /// Refused because the request is malformed for this webhook.
    Invalid,
}

impl Outcome {
    /// Metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Patched => "patched",
            Outcome::Denied => "denied",
            Outcome::Invalid => "invalid",
        }
    }
}

/// An encoded AdmissionReview answer.
#[derive(Debug)]
pub struct Answer {
    /// The JSON body.
    pub body: Vec<u8>,
    /// How the request was answered.
    pub outcome: Outcome,
}

/// An `Invalid` decision when `req` is not about the endpoint's kind (a misregistered webhook
/// must be loud rather than silently skip policy).
fn expect_kind<O>(req: &Request<'_, O>, webhook: Webhook) -> Result<(), Decision> {
    let (group, kind) = webhook.object_kind();
    if req.kind.group == group && req.kind.kind == kind {
        return Ok(());
    }
    let got = if req.kind.group.is_empty() {
        req.kind.kind.to_string()
    } else {
        format!("{}/{}", req.kind.group, req.kind.kind)
    };
    Err(Decision::Invalid(format!(
        "the {} webhook only reviews {kind} objects, got {got:?}; check the webhook configuration",
        webhook.name()
    )))
}
