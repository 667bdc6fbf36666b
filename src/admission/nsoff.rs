//! `POST /validate/namespace-offloading`: NamespaceOffloading validation (SPEC §5).
//!
//! The objects are parsed into plain JSON here and validated leniently by
//! `policy::validate`, so a bad enum value or selector gets a message naming the field
//! rather than a parse error. This endpoint is not on the hot path.

use kube::core::admission::Operation;
use serde_json::Value;

use super::review::{Decision, Request};
use super::Admission;
use crate::policy::validate::validate_nsoff;
use crate::policy::Verdict;

/// Reviews one NamespaceOffloading request.
pub(crate) fn review(adm: &Admission, req: &Request<'_, Value>) -> Decision {
    let op: Operation = match serde_json::from_value(Value::String(req.operation.to_string())) {
        Ok(op) => op,
        Err(_) => return Decision::Invalid(format!("unknown operation {:?}", req.operation)),
    };
    let namespace = req.namespace.as_deref().unwrap_or("");
    match validate_nsoff(
        &op,
        req.sub_resource.as_deref(),
        namespace,
        req.object.as_ref(),
        req.old_object.as_ref(),
        &adm.validation,
    ) {
        Verdict::Allow { warnings } => Decision::Allow {
            patch: Vec::new(),
            warnings,
        },
        Verdict::Deny(m) => Decision::Deny(m),
    }
}
