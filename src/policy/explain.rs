//! Where a pod can run, and why not elsewhere (SPEC §11): the pure core of `nsoffload explain`.
//!
//! "Why is my pod Pending?" has its answer spread over the NamespaceOffloading's status, the
//! pod's tolerations and affinity, the nodes' labels and taints, and the webhook's mutation.
//! [`explain`] gathers it from plain values (no I/O) into one [`Explanation`] that the command
//! prints as text or JSON. Every decision in it is made by the code that makes it for real:
//! the admission outcome by the webhook's gate and mutation, the cluster selection by the
//! reconciler's selector, node matching by the shared selector and toleration rules
//! ([`super::nodes`]). So `explain` cannot disagree with the webhook or the reconciler.
//!
//! When no node can run the pod, the verdict names the one change that would help first. It
//! is found by trying the changes SPEC §11 lists, in its order, on hypothetical inputs and
//! running the same pipeline again: a suggestion is only made when it actually helps.

#[path = "explain_admission.rs"]
mod admission;
#[path = "explain_types.rs"]
mod types;
#[path = "explain_verdict.rs"]
mod verdict;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::node::v1::RuntimeClass;
use serde_json::Value;

use crate::api::NamespaceOffloading;

pub use admission::OutdatedReason;
pub use types::*;

/// What is explained: a manifest not yet created, or a pod the API server stores.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A Pod manifest (or a pod template wrapped as a Pod), as the user would submit it.
    Manifest(&'a Value),
    /// A stored pod, as read from the API server.
    Existing {
        /// The pod.
        pod: &'a Value,
        /// The pod template of its controller, wrapped as a Pod, when it has one: what a
        /// recreated pod is made from. Without it, the stored pod stands for its own template
        /// (exact for a pod that was never mutated; a pod mutated under an older policy keeps
        /// that policy's requirements).
        template: Option<&'a Value>,
    },
}

/// Everything the explanation reads; the CLI fetches it, tests build it.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The pod's namespace.
    pub namespace: &'a str,
    /// The pod.
    pub subject: Subject<'a>,
    /// The namespace's NamespaceOffloading named `offloading`, if any.
    pub offloading: Option<&'a NamespaceOffloading>,
    /// Whether the namespace is labelled `liqo.io/scheduling-enabled=true` (the webhook is
    /// called only then).
    pub scheduling_enabled: bool,
    /// Every node of the home cluster, local and virtual.
    pub nodes: &'a [Node],
    /// The RuntimeClass the pod names, if it exists.
    pub runtime_class: Option<&'a RuntimeClass>,
    /// The webhook's configured RuntimeClass name (RC of SPEC §3).
    pub webhook_runtime_class: &'a str,
}

/// A pod that cannot be read as a Pod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the pod: {0}")]
pub struct ExplainError(pub String);

/// Explains where the pod of `inputs` can run.
pub fn explain(inputs: &Inputs<'_>) -> Result<Explanation, ExplainError> {
    // `source` is what a (re)created pod is made from.
    let (json, source, existing) = match inputs.subject {
        Subject::Manifest(v) => (v, v, false),
        Subject::Existing { pod, template } => (pod, template.unwrap_or(pod), true),
    };
    let read = |v: &Value| {
        serde_json::from_value::<Pod>(v.clone()).map_err(|e| ExplainError(e.to_string()))
    };
    let pod = read(json)?;
    // A template that cannot be read as a Pod is an error too.
    read(source)?;
    let world = admission::World::new(inputs);
    let offloading = world.summary(inputs.offloading, inputs.scheduling_enabled);
    let (admission, nodes) = if existing {
        let admission = world.existing(&pod, json, source, inputs.offloading);
        (admission, world.evaluate(&pod, inputs.offloading))
    } else {
        let admitted = world.admit(json, inputs.offloading, inputs.scheduling_enabled);
        let stored = admitted.stored.as_ref().unwrap_or(&pod);
        (
            admitted.admission,
            world.evaluate(stored, inputs.offloading),
        )
    };
    let verdict = verdict::verdict(&world, inputs, source, existing, &admission, &nodes);
    Ok(Explanation {
        namespace: inputs.namespace.to_owned(),
        pod: pod.metadata.name.clone(),
        bound_to: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        offloading,
        admission,
        nodes,
        verdict,
    })
}

#[cfg(test)]
#[path = "explain_tests.rs"]
mod tests;
