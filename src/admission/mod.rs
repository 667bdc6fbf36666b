//! The admission endpoints: decode a review, decide with `policy`, encode the answer.
//!
//! A parsed request is always answered with a review carrying its uid (HTTP 200), whatever
//! the decision; only a body that is not an AdmissionReview at all gets an HTTP error. One
//! module per endpoint; this module holds what they share.

pub mod namespace;
pub mod nsoff;
pub mod pod;
pub mod review;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use tracing::field;

use crate::policy::validate::ValidationConfig;
use crate::state::Store;
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
    pub fn path(self) -> &'static str {
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
    pub fn handle(&self, webhook: Webhook, body: &[u8]) -> Result<Answer, DecodeError> {
        match webhook {
            Webhook::MutatePod => answer_object(webhook, body, |req| pod::review(self, req)),
            Webhook::MutateNamespace => answer_object(webhook, body, namespace::review),
            Webhook::ValidateNamespaceOffloading => {
                answer_object(webhook, body, |req| nsoff::review(self, req))
            }
        }
    }
}

/// [`answer`] for an endpoint's objects read as `O`, after checking their kind. When the body
/// is an AdmissionReview but its object does not read as `O`, that is answered (with the uid)
/// as an invalid request rather than refused as a bad body.
fn answer_object<'a, O: Deserialize<'a>>(
    webhook: Webhook,
    body: &'a [u8],
    decide: impl FnOnce(&Request<'a, O>) -> Decision,
) -> Result<Answer, DecodeError> {
    let kind = webhook.object_kind().1;
    let typed = answer::<O>(webhook, body, |req| match expect_kind(req, webhook) {
        Err(d) => d,
        Ok(()) => decide(req),
    });
    match typed {
        Err(DecodeError::Json(e)) => {
            answer::<&RawValue>(webhook, body, |req| match expect_kind(req, webhook) {
                Err(d) => d,
                Ok(()) => Decision::Invalid(shorten(
                    &format!("cannot read the {kind}: {e}"),
                    MAX_REASON_BYTES,
                )),
            })
            .map_err(|_| DecodeError::Json(e))
        }
        other => other,
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
