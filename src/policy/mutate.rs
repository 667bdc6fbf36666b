//! Pod mutation on CREATE (SPEC §3): toleration and node affinity from the namespace's policy.
//!
//! `mutate` is a pure function of (pod, policy, RuntimeClass name) that returns explicit JSON
//! Patch operations touching only `/spec/tolerations` and `/spec/affinity`. The pod is read
//! through [`PodView`], which decodes just the three fields the decision needs and keeps the
//! affinity as raw JSON, so nothing the pod carries is lost by a round trip through typed
//! values. The per-namespace part of the work ([`PodPolicy`]) is computed once when the
//! NamespaceOffloading changes, not on every request.

use std::borrow::Cow;
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::Toleration;
use serde::Deserialize;
use serde_json::Value;

use super::affinity::ImposedSelector;
use super::object::object_only;
use super::patch::{to_json_patch, PatchOp};
use super::selector::parse_terms;
use super::toleration::{tolerates_virtual_node, virtual_node_toleration};
use crate::api::{NamespaceOffloadingSpec, PodOffloadingStrategy};

/// The fields of a pod that the mutation reads; everything else is skipped while parsing.
/// Only a JSON object reads as a pod (see [`super::object`]).
#[derive(Debug, Default, Deserialize)]
#[serde(remote = "Self")]
pub struct PodView {
    /// The pod spec's scheduling fields (a pod without a spec cannot be patched).
    #[serde(default)]
    pub spec: Option<PodSpecView>,
}

/// `spec.tolerations`, `spec.affinity` (raw) and `spec.runtimeClassName`; only a JSON object
/// reads as a spec.
#[derive(Debug, Default, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct PodSpecView {
    /// Existing tolerations (only appended to, never rewritten).
    #[serde(default)]
    pub tolerations: Option<Vec<Toleration>>,
    /// The affinity exactly as received.
    #[serde(default)]
    pub affinity: Option<Value>,
    /// The pod's RuntimeClass.
    #[serde(default)]
    pub runtime_class_name: Option<String>,
}

object_only!(PodView, "a pod (a JSON object)");
object_only!(PodSpecView, "a pod spec (a JSON object)");

/// A pod whose scheduling fields cannot be patched (the API server would reject it anyway).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} must be an object")]
pub struct InvalidPod(&'static str);

/// Why a pod gets no patch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MutateError {
    /// The pod cannot be patched.
    #[error(transparent)]
    Invalid(#[from] InvalidPod),
    /// The pod could never run where the policy allows; the message says why, for a person.
    #[error("{0}")]
    Refused(String),
}

/// The toleration Tv, and `[Tv]` for pods without tolerations: the same for every namespace,
/// so built once rather than kept in each of thousands of cached policies.
static TOLERATION: LazyLock<Value> =
    LazyLock::new(|| serde_json::to_value(virtual_node_toleration()).unwrap_or(Value::Null));
static TOLERATION_LIST: LazyLock<Value> = LazyLock::new(|| Value::Array(vec![TOLERATION.clone()]));

/// What the policy imposes on one kind of pod: a selector (or nothing), or a refusal.
type Imposed = Result<Option<ImposedSelector>, String>;

/// A namespace's pod policy, precomputed from its NamespaceOffloading spec.
#[derive(Debug, Clone, PartialEq)]
pub struct PodPolicy {
    strategy: PodOffloadingStrategy,
    /// I of SPEC §3.4, for pods without the RuntimeClass.
    imposed: Imposed,
    /// For pods with the RuntimeClass: the `Remote` selector, only when the cluster selector
    /// has terms (SPEC §3.2).
    imposed_runtime_class: Imposed,
}

impl PodPolicy {
    /// Precomputes the policy of a NamespaceOffloading spec.
    ///
    /// A cluster selector that selects no cluster (SPEC §3: its terms are all empty, or it is
    /// invalid, having slipped past validation) never widens what a pod may do: `Remote` pods
    /// and RuntimeClass pods are refused (they could never run), `LocalAndRemote` pods are
    /// kept on local nodes. The selector is read by the reconciler's parser
    /// ([`parse_terms`]), so both agree on what it selects.
    pub fn new(spec: &NamespaceOffloadingSpec) -> Self {
        use PodOffloadingStrategy::{Local, LocalAndRemote, Remote};
        let cs = spec.selector_terms();
        let strategy = spec.pod_offloading_strategy;
        let (imposed, imposed_runtime_class) = match parse_terms(cs) {
            Ok(parsed) if parsed.is_empty() => {
                (Ok(ImposedSelector::for_strategy(strategy, cs)), Ok(None))
            }
            Ok(_) => (
                Ok(ImposedSelector::for_strategy(strategy, cs)),
                Ok(ImposedSelector::for_strategy(Remote, cs)),
            ),
            Err(e) => {
                let none = format!(
                    "the clusterSelector of the namespace's NamespaceOffloading selects no \
                     remote cluster ({e})"
                );
                let imposed = match strategy {
                    Local => Ok(None),
                    LocalAndRemote => Ok(Some(ImposedSelector::local_only())),
                    Remote => Err(format!(
                        "{none}, and its podOffloadingStrategy is Remote, so the pod could \
                         never run; fix the clusterSelector"
                    )),
                };
                let runtime_class = Err(format!(
                    "pods of this RuntimeClass run only on remote clusters, but {none}; fix \
                     the clusterSelector"
                ));
                (imposed, runtime_class)
            }
        };
        PodPolicy {
            strategy,
            imposed,
            imposed_runtime_class,
        }
    }

    /// The pod offloading strategy.
    pub fn strategy(&self) -> PodOffloadingStrategy {
        self.strategy
    }
}

/// The patch operations that apply `policy` to `pod` (empty when nothing changes). Values
/// that do not depend on the pod are borrowed from `policy`.
pub fn mutate<'p>(
    pod: &PodView,
    policy: &'p PodPolicy,
    runtime_class: &str,
) -> Result<Vec<PatchOp<'p>>, MutateError> {
    if policy.strategy == PodOffloadingStrategy::Local {
        return Ok(Vec::new());
    }
    let spec = pod.spec.as_ref().ok_or(InvalidPod("spec"))?;
    let mut ops = Vec::new();
    let imposed = if spec.runtime_class_name.as_deref() == Some(runtime_class) {
        // The RuntimeClass brings the toleration; only restrict to the selected clusters.
        &policy.imposed_runtime_class
    } else {
        if !spec
            .tolerations
            .iter()
            .flatten()
            .any(tolerates_virtual_node)
        {
            ops.push(match spec.tolerations {
                Some(_) => PatchOp::add("/spec/tolerations/-", Cow::Borrowed(&*TOLERATION)),
                None => PatchOp::add("/spec/tolerations", Cow::Borrowed(&*TOLERATION_LIST)),
            });
        }
        &policy.imposed
    };
    let imposed = imposed
        .as_ref()
        .map_err(|m| MutateError::Refused(m.clone()))?;
    if let Some(imposed) = imposed {
        ops.extend(affinity_op(spec.affinity.as_ref(), imposed)?);
    }
    Ok(ops)
}

/// Parses `pod` (its JSON) and applies [`mutate`]; for tests and tools that hold a pod value.
pub fn mutate_json(
    pod: &Value,
    policy: &PodPolicy,
    runtime_class: &str,
) -> Result<Vec<json_patch::PatchOperation>, String> {
    // The trait, not the inherent (derived, array-accepting) `PodView::deserialize`.
    let view = <PodView as Deserialize>::deserialize(pod).map_err(|e| e.to_string())?;
    let ops = mutate(&view, policy, runtime_class).map_err(|e| e.to_string())?;
    Ok(to_json_patch(&ops).0)
}

/// The operation that merges `imposed` into the required node affinity, creating whichever
/// parents are missing; `None` when the terms already say the same.
fn affinity_op<'p>(
    affinity: Option<&Value>,
    imposed: &'p ImposedSelector,
) -> Result<Option<PatchOp<'p>>, InvalidPod> {
    const LEVELS: [(&str, &str, &str); 3] = [
        ("spec.affinity", "/spec/affinity", "nodeAffinity"),
        (
            "spec.affinity.nodeAffinity",
            "/spec/affinity/nodeAffinity",
            "requiredDuringSchedulingIgnoredDuringExecution",
        ),
        (
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution",
            "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution",
            "nodeSelectorTerms",
        ),
    ];
    let mut node = affinity;
    for (depth, (field, path, child)) in LEVELS.iter().enumerate() {
        let obj = match node {
            // This level is missing: add it with everything below.
            None | Some(Value::Null) => {
                return Ok(Some(PatchOp::add(
                    path,
                    Cow::Borrowed(imposed.nested(3 - depth)),
                )))
            }
            Some(Value::Object(o)) => o,
            Some(_) => return Err(InvalidPod(field)),
        };
        node = obj.get(*child);
    }
    let terms_path = "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms";
    match node {
        None | Some(Value::Null) => Ok(Some(PatchOp::add(terms_path, Cow::Borrowed(imposed.nested(0))))),
        Some(Value::Array(pod_terms)) if pod_terms.is_empty() => Ok(Some(PatchOp::replace(terms_path, Cow::Borrowed(imposed.nested(0))))),
        Some(Value::Array(pod_terms)) => {
            let merged = imposed.merge_into(pod_terms);
            Ok((merged != *pod_terms).then(|| PatchOp::replace(terms_path, Cow::Owned(Value::Array(merged)))))
        }
        Some(_) => Err(InvalidPod("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pod_or_spec_that_is_not_an_object_is_refused() {
        let spec = NamespaceOffloadingSpec {
            pod_offloading_strategy: PodOffloadingStrategy::Remote,
            ..Default::default()
        };
        let policy = PodPolicy::new(&spec);
        assert_eq!(
            mutate_json(&json!({"spec": {}}), &policy, "rc")
                .unwrap()
                .len(),
            2
        );
        for pod in [
            json!({"spec": []}),
            json!({"spec": [null, {}]}),
            json!([{}]),
            json!("pod"),
        ] {
            let e = mutate_json(&pod, &policy, "rc").unwrap_err();
            assert!(e.starts_with("invalid type"), "{pod}: {e}");
        }
    }
}
