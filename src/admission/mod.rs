//! The admission endpoints: decode a review, decide with `policy`, encode the answer.
//!
//! A parsed request is always answered with a review carrying its uid (HTTP 200), whatever
//! the decision; only a body that is not an AdmissionReview at all gets an HTTP error. One
//! module per endpoint; this module holds what they share.

pub mod nsoff;
pub mod pod;
pub mod review;

use std::sync::Arc;

use crate::policy::validate::ValidationConfig;
use crate::state::Store;
use review::{Decision, Request};

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
    /// Decides one request for `webhook`.
    pub async fn decide(&self, webhook: Webhook, req: &Request<'_>) -> Decision {
        match webhook {
            Webhook::MutatePod => pod::review(self, req),
            Webhook::ValidateNamespaceOffloading => nsoff::review(self, req),
        }
    }
}

/// An `Invalid` decision when `req` is not about `group`/`kind` (a misregistered webhook must
/// be loud rather than silently skip policy).
fn expect_kind(
    req: &Request<'_>,
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
