//! `POST /mutate/namespace`: adds the scheduling label with quick offloading (SPEC §6).
//!
//! Registered for namespaces labelled `liqo.io/enabled=true` (the API server also sends an
//! update whose old object matched), on CREATE and UPDATE; the decision is in
//! `policy::namespace`.

use super::review::{Decision, Request};
use crate::policy::namespace::{scheduling_label_patch, NamespaceView};

/// Reviews one namespace request.
pub(crate) fn review(req: &Request<'_, NamespaceView>) -> Decision {
    let old = match req.operation.as_ref() {
        "CREATE" => None,
        "UPDATE" => req.old_object.as_ref(),
        _ => return Decision::allow(),
    };
    let Some(new) = &req.object else {
        return Decision::Invalid("the request has no object".to_owned());
    };
    Decision::patched(&scheduling_label_patch(new, old))
}
