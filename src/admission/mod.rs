//! The admission endpoints: decode a review, decide with `policy`, encode the answer.
//!
//! A parsed request is always answered with a review carrying its uid (HTTP 200), whatever
//! the decision; only a body that is not an AdmissionReview at all gets an HTTP error. One
//! module per endpoint; this module holds what they share.

pub mod nsoff;
pub mod pod;
pub mod review;

use std::sync::Arc;

use serde::Deserialize;
use tracing::field;

use crate::policy::validate::ValidationConfig;
use crate::state::Store;
use review::{Decision, DecodeError, Request};

/// Configuration and state shared by the admission endpoints.
#[derive(Debug)]
pub struct Admission {
    /// The current per-namespace state.
    pub store: Arc<Store>,
    /// The RuntimeClass that forces remote scheduling.
    pub runtime_class: String,
    /// Settings of NamespaceOffloading validation (home cluster id).
    pub validation: ValidationConfig,
}

/// The endpoints, for routing, logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Webhook {
    /// `POST /mutate/pod`.
    MutatePod,
    /// `POST /validate/namespace-offloading`.
    ValidateNamespaceOffloading,
}

impl Webhook {
    /// Every endpoint.
    pub const ALL: [Webhook; 2] = [Webhook::MutatePod, Webhook::ValidateNamespaceOffloading];

    /// The HTTP path.
    pub fn path(self) -> &'static str {
        match self {
            Webhook::MutatePod => "/mutate/pod",
            Webhook::ValidateNamespaceOffloading => "/validate/namespace-offloading",
        }
    }

    /// A short name for metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Webhook::MutatePod => "mutate-pod",
            Webhook::ValidateNamespaceOffloading => "validate-namespace-offloading",
        }
    }
}

impl Admission {
    /// Answers one request body for `webhook`; `Err` when the body is not an AdmissionReview.
    pub fn handle(&self, webhook: Webhook, body: &[u8]) -> Result<Answer, DecodeError> {
        match webhook {
            Webhook::MutatePod => pod::handle(self, body),
            Webhook::ValidateNamespaceOffloading => nsoff::handle(self, body),
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

/// Decodes `body` reading objects as `O`, decides within a span carrying the request's
/// identity and outcome, and encodes the answer.
pub fn answer<'a, O: Deserialize<'a>>(
    webhook: Webhook,
    body: &'a [u8],
    decide: impl FnOnce(&Request<'a, O>) -> Decision,
) -> Result<Answer, DecodeError> {
    let review = review::decode::<O>(body)?;
    let req = &review.request;
    let span = tracing::info_span!(
        "admission",
        webhook = webhook.name(),
        uid = %req.uid,
        kind = %req.kind.kind,
        namespace = req.namespace.as_deref().unwrap_or(""),
        name = req.name.as_deref().unwrap_or(""),
        operation = %req.operation,
        allowed = field::Empty,
        patched = field::Empty,
    );
    let decision = span.in_scope(|| decide(req));
    let outcome = match &decision {
        Decision::Allow { patch, .. } if !patch.is_empty() => Outcome::Patched,
        Decision::Allow { .. } => Outcome::Allowed,
        Decision::Deny(_) => Outcome::Denied,
        Decision::Invalid(_) => Outcome::Invalid,
    };
    span.record(
        "allowed",
        matches!(outcome, Outcome::Allowed | Outcome::Patched),
    )
    .record("patched", outcome == Outcome::Patched);
    match &decision {
        Decision::Deny(m) | Decision::Invalid(m) => {
            span.in_scope(|| tracing::info!(reason = %m, "admission refused"))
        }
        Decision::Allow { .. } => span.in_scope(|| tracing::debug!("admission allowed")),
    }
    Ok(Answer {
        body: review::encode(review.api_version, &req.uid, &decision),
        outcome,
    })
}

/// An `Invalid` decision when `req` is not about `group`/`kind` (a misregistered webhook must
/// be loud rather than silently skip policy).
fn expect_kind<O>(
    req: &Request<'_, O>,
    group: &str,
    kind: &str,
    webhook: Webhook,
) -> Result<(), Decision> {
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
