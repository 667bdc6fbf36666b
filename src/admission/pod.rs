//! `POST /mutate/pod`: the admission gate, then the pod mutation (SPEC §3, §4).
//!
//! A straight line: namespace of the request → its precomputed entry → gate → read the
//! pod's scheduling fields → patch. The request's `namespace` is used, not the pod's
//! metadata: pods made by controllers may not carry one yet.

use super::review::{Decision, Request};
use super::Admission;
use crate::policy::gate::gate;
use crate::policy::mutate::{mutate, MutateError, PodView};
use crate::policy::Verdict;

/// Reviews one pod request.
pub async fn review(adm: &Admission, req: &Request<'_, PodView>) -> Decision {
    if req.operation != "CREATE" {
        return Decision::allow();
    }
    let Some(namespace) = req.namespace.as_deref().filter(|n| !n.is_empty()) else {
        return Decision::Invalid("the request has no namespace".to_owned());
    };
    let snapshot = adm.store.load();
    let fetched;
    let entry = match snapshot.offloading(namespace) {
        Some(entry) => entry.as_ref(),
        // One live read before denying (a just-created NamespaceOffloading).
        None => match adm.live_entry(namespace).await {
            Ok(Some(entry)) => {
                fetched = entry;
                &fetched
            }
            Ok(None) => {
                return match gate(namespace, None) {
                    Verdict::Deny(m) => Decision::Deny(m),
                    Verdict::Allow { .. } => Decision::allow(),
                }
            }
            Err(message) => return Decision::Deny(message),
        },
    };
    if let Verdict::Deny(m) = &entry.gate {
        return Decision::Deny(m.clone());
    }
    let Some(pod) = &req.object else {
        return Decision::Invalid("the request has no object".to_owned());
    };
    match mutate(pod, &entry.policy, &adm.runtime_class) {
        Ok(ops) => Decision::patched(&ops),
        Err(MutateError::Refused(m)) => Decision::Deny(m),
        Err(MutateError::Invalid(e)) => Decision::Invalid(format!("cannot patch the pod: {e}")),
    }
}
