//! `POST /validate/namespace-offloading`: NamespaceOffloading validation (SPEC §5).
//!
//! The objects are parsed into plain JSON here and validated leniently by
//! `policy::validate`, so a bad enum value or selector gets a message naming the field
//! rather than a parse error. This endpoint is not on the hot path.

use kube::core::admission::Operation;
use serde_json::Value;

use super::review::{Decision, Request};
use super::{expect_kind, Admission, Webhook};
use crate::policy::validate::validate_nsoff;
use crate::policy::Verdict;

/// Reviews one NamespaceOffloading request.
pub fn review(adm: &Admission, req: &Request<'_>) -> Decision {
    if let Err(d) = expect_kind(
        req,
        "offloading.liqo.io",
        "NamespaceOffloading",
        Webhook::ValidateNamespaceOffloading,
    ) {
        return d;
    }
    let op: Operation = match serde_json::from_value(Value::String(req.operation.to_string())) {
        Ok(op) => op,
        Err(_) => return Decision::Invalid(format!("unknown operation {:?}", req.operation)),
    };
    let parse = |raw: Option<&serde_json::value::RawValue>| -> Result<Option<Value>, Decision> {
        match raw {
            None => Ok(None),
            Some(r) => serde_json::from_str::<Value>(r.get())
                .map(|v| (!v.is_null()).then_some(v))
                .map_err(|e| Decision::Invalid(format!("cannot read the object: {e}"))),
        }
    };
    let (new, old) = match (parse(req.object), parse(req.old_object)) {
        (Ok(n), Ok(o)) => (n, o),
        (Err(d), _) | (_, Err(d)) => return d,
    };
    let namespace = req.namespace.as_deref().unwrap_or("");
    match validate_nsoff(
        &op,
        req.sub_resource.as_deref(),
        namespace,
        new.as_ref(),
        old.as_ref(),
        &adm.validation,
    ) {
        Verdict::Allow { warnings } => Decision::Allow {
            patch: Vec::new(),
            warnings,
        },
        Verdict::Deny(m) => Decision::Deny(m),
    }
}
