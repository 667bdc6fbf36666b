//! `POST /mutate/pod`: the admission gate, then the pod mutation (SPEC §3, §4).
//!
//! A straight line: namespace of the request → its precomputed entry → gate → read the
//! pod's scheduling fields → patch. The request's `namespace` is used, not the pod's
//! metadata: pods made by controllers may not carry one yet.

use serde_json::value::RawValue;

use super::review::{shorten, Decision, DecodeError, Request, MAX_REASON_BYTES};
use super::{answer, expect_kind, Admission, Answer, Webhook};
use crate::policy::gate::gate;
use crate::policy::mutate::{mutate, PodView};
use crate::policy::Verdict;

/// Answers one body: decoded in one pass with the pod's scheduling fields. When that fails
/// but the envelope is sound, the pod itself is unreadable: that is answered (with the uid)
/// rather than refused as a bad body.
pub fn handle(adm: &Admission, body: &[u8]) -> Result<Answer, DecodeError> {
    match answer::<PodView>(Webhook::MutatePod, body, |req| review(adm, req)) {
        Err(DecodeError::Json(e)) => answer::<&RawValue>(Webhook::MutatePod, body, |req| {
            match expect_kind(req, "", "Pod", Webhook::MutatePod) {
                Err(d) => d,
                Ok(()) => Decision::Invalid(shorten(
                    &format!("cannot read the pod: {e}"),
                    MAX_REASON_BYTES,
                )),
            }
        })
        .map_err(|_| DecodeError::Json(e)),
        other => other,
    }
}

/// Reviews one pod request.
pub fn review(adm: &Admission, req: &Request<'_, PodView>) -> Decision {
    if let Err(d) = expect_kind(req, "", "Pod", Webhook::MutatePod) {
        return d;
    }
    if req.operation != "CREATE" {
        return Decision::allow();
    }
    let Some(namespace) = req.namespace.as_deref().filter(|n| !n.is_empty()) else {
        return Decision::Invalid("the request has no namespace".to_owned());
    };
    let snapshot = adm.store.load();
    let Some(entry) = snapshot.offloading(namespace) else {
        return match gate(namespace, None) {
            Verdict::Deny(m) => Decision::Deny(m),
            Verdict::Allow { .. } => Decision::allow(),
        };
    };
    if let Verdict::Deny(m) = &entry.gate {
        return Decision::Deny(m.clone());
    }
    let Some(pod) = &req.object else {
        return Decision::Invalid("the request has no object".to_owned());
    };
    match mutate(pod, &entry.policy, &adm.runtime_class) {
        Ok(ops) => Decision::patched(&ops),
        Err(e) => Decision::Invalid(format!("cannot patch the pod: {e}")),
    }
}
