//! Whether the kube-scheduler may place a pod on a node, and if not, the first reason.
//!
//! `explain` must never say a pod can run where the scheduler would not place it, nor the
//! reverse, so these checks follow the scheduler's filters, in the order of SPEC §11: the node
//! is cordoned (unless the pod tolerates the `unschedulable` taint, as DaemonSet pods do); the
//! node is not Ready; a `NoSchedule`/`NoExecute` taint the pod does not tolerate
//! (`PreferNoSchedule` never blocks); `nodeSelector`; the required node affinity; the
//! RuntimeClass's scheduling. Tolerations are judged by the webhook's own rule
//! ([`super::toleration::tolerates`]) and node affinity by the cluster selector's own parser
//! read the scheduler's way ([`SchedulingTerms`]), so there is one implementation of each.
//!
//! The RuntimeClass admission plugin copies the RuntimeClass's `scheduling` into the pod when
//! it is created (nodeSelector merged, tolerations appended). To read a manifest and a stored
//! pod alike, the RuntimeClass's tolerations are added to the pod's, and nodeSelector entries
//! that the RuntimeClass asks for are judged as the RuntimeClass's, not the pod's.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelectorTerm, PodSpec, Taint, Toleration};
use k8s_openapi::api::node::v1::RuntimeClass;

use super::explain::{Blocker, RuntimeClassProblem, TermFailure};
use super::selector::{Failed, SchedulingTerms, TermOutcome};
use super::selector_text::requirement_text;
use super::toleration::tolerates;
use crate::api::consts::{REMOTE_CLUSTER_ID_LABEL, VIRTUAL_NODE_LABEL, VIRTUAL_NODE_VALUE};

/// The taint the scheduler reads from a cordoned node.
const UNSCHEDULABLE_TAINT_KEY: &str = "node.kubernetes.io/unschedulable";

/// The node's labels (empty when it has none).
pub(crate) fn node_labels(node: &Node) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    node.metadata.labels.as_ref().unwrap_or(&EMPTY)
}

/// Whether the node is a virtual node (`liqo.io/type=virtual-node`).
pub(crate) fn is_virtual(node: &Node) -> bool {
    node_labels(node)
        .get(VIRTUAL_NODE_LABEL)
        .map(String::as_str)
        == Some(VIRTUAL_NODE_VALUE)
}

/// The remote cluster of a virtual node (its non-empty `liqo.io/remote-cluster-id`); `None`
/// for a local node or a virtual node that names no cluster.
pub(crate) fn cluster_of(node: &Node) -> Option<&str> {
    if !is_virtual(node) {
        return None;
    }
    node_labels(node)
        .get(REMOTE_CLUSTER_ID_LABEL)
        .map(String::as_str)
        .filter(|id| !id.is_empty())
}

/// The RuntimeClass a pod names, as far as scheduling is concerned.
#[derive(Debug, Clone, PartialEq)]
struct RuntimeClassScheduling {
    name: String,
    /// Its `scheduling.nodeSelector`; `None` when the RuntimeClass does not exist.
    node_selector: Option<BTreeMap<String, String>>,
}

/// What of a pod the scheduler's filters read, prepared once for every node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Placement {
    tolerations: Vec<Toleration>,
    node_selector: BTreeMap<String, String>,
    required: Option<(Vec<NodeSelectorTerm>, SchedulingTerms)>,
    runtime_class: Option<RuntimeClassScheduling>,
}

impl Placement {
    /// Reads a pod spec; `runtime_class` is the RuntimeClass the pod names, if it exists (one
    /// with another name counts as missing).
    pub(crate) fn new(spec: &PodSpec, runtime_class: Option<&RuntimeClass>) -> Self {
        let name = spec.runtime_class_name.as_ref();
        let found =
            name.and_then(|n| runtime_class.filter(|rc| rc.metadata.name.as_ref() == Some(n)));
        let scheduling = found.and_then(|rc| rc.scheduling.as_ref());
        let rc_selector = found.map(|_| {
            scheduling
                .and_then(|s| s.node_selector.clone())
                .unwrap_or_default()
        });
        let mut tolerations = spec.tolerations.clone().unwrap_or_default();
        let rc_tolerations = scheduling.and_then(|s| s.tolerations.as_ref());
        tolerations.extend(rc_tolerations.into_iter().flatten().cloned());
        let node_selector = spec
            .node_selector
            .iter()
            .flatten()
            .filter(|(k, v)| rc_selector.as_ref().and_then(|s| s.get(*k)) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let required = spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|r| {
                let terms = r.node_selector_terms.clone();
                let parsed = SchedulingTerms::parse(&terms);
                (terms, parsed)
            });
        Placement {
            tolerations,
            node_selector,
            required,
            runtime_class: name.map(|n| RuntimeClassScheduling {
                name: n.clone(),
                node_selector: rc_selector,
            }),
        }
    }

    /// The first reason the scheduler would not place the pod on `node` (`None`: it may).
    pub(crate) fn blocker(&self, node: &Node) -> Option<Blocker> {
        let name = node.metadata.name.as_deref().unwrap_or("");
        let labels = node_labels(node);
        let spec = node.spec.as_ref();
        if spec.and_then(|s| s.unschedulable) == Some(true)
            && !self.tolerates(&unschedulable_taint())
        {
            return Some(Blocker::Cordoned);
        }
        if let Some(b) = not_ready(node) {
            return Some(b);
        }
        let taints = spec.and_then(|s| s.taints.as_ref()).into_iter().flatten();
        for taint in taints {
            if matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute") && !self.tolerates(taint)
            {
                return Some(Blocker::Taint {
                    key: taint.key.clone(),
                    value: taint.value.clone().filter(|v| !v.is_empty()),
                    effect: taint.effect.clone(),
                });
            }
        }
        if let Some((key, wanted, actual)) = selector_mismatch(&self.node_selector, labels) {
            return Some(Blocker::NodeSelector {
                key,
                wanted,
                actual,
            });
        }
        if let Some((terms, parsed)) = &self.required {
            if !parsed.matches(name, labels) {
                return Some(Blocker::NodeAffinity {
                    terms: term_failures(terms, parsed, name, labels),
                });
            }
        }
        let rc = self.runtime_class.as_ref()?;
        let problem = match &rc.node_selector {
            None => RuntimeClassProblem::Missing,
            Some(selector) => {
                let (key, wanted, actual) = selector_mismatch(selector, labels)?;
                RuntimeClassProblem::NodeSelector {
                    key,
                    wanted,
                    actual,
                }
            }
        };
        Some(Blocker::RuntimeClass {
            name: rc.name.clone(),
            problem,
        })
    }

    /// The pod's own `nodeSelector` entries (those its RuntimeClass does not ask for).
    pub(crate) fn own_node_selector(&self) -> &BTreeMap<String, String> {
        &self.node_selector
    }

    fn tolerates(&self, taint: &Taint) -> bool {
        self.tolerations.iter().any(|t| tolerates(t, taint))
    }
}

fn unschedulable_taint() -> Taint {
    Taint {
        key: UNSCHEDULABLE_TAINT_KEY.to_owned(),
        effect: "NoSchedule".to_owned(),
        ..Taint::default()
    }
}

/// `NotReady` unless the node's `Ready` condition is `True`.
fn not_ready(node: &Node) -> Option<Blocker> {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    let ready = conditions
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Ready");
    match ready {
        Some(c) if c.status == "True" => None,
        Some(c) => Some(Blocker::NotReady {
            status: c.status.clone(),
            reason: c.reason.clone().filter(|r| !r.is_empty()),
        }),
        None => Some(Blocker::NotReady {
            status: "Unknown".to_owned(),
            reason: Some("NoReadyCondition".to_owned()),
        }),
    }
}

/// The first entry of `selector` (in key order) that the labels do not carry:
/// `(key, wanted value, the node's value)`.
fn selector_mismatch(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> Option<(String, String, Option<String>)> {
    selector
        .iter()
        .find(|(k, v)| labels.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone(), labels.get(k).cloned()))
}

/// Why each term fails (none of them matches).
fn term_failures(
    terms: &[NodeSelectorTerm],
    parsed: &SchedulingTerms,
    node_name: &str,
    labels: &BTreeMap<String, String>,
) -> Vec<TermFailure> {
    parsed
        .outcomes(node_name, labels)
        .into_iter()
        .zip(terms)
        .enumerate()
        .filter_map(|(i, (outcome, term))| match outcome {
            TermOutcome::Matches => None,
            TermOutcome::Empty => Some(TermFailure::Empty { term: i }),
            TermOutcome::Invalid(message) => Some(TermFailure::Invalid { term: i, message }),
            TermOutcome::Fails(failed) => {
                let (list, j, actual) = match failed {
                    Failed::Expression(j) => (term.match_expressions.as_deref(), j, None),
                    Failed::Field(j) => (term.match_fields.as_deref(), j, Some(node_name)),
                };
                let req = list.unwrap_or_default().get(j)?;
                let actual = actual
                    .map(str::to_owned)
                    .or_else(|| labels.get(&req.key).cloned());
                Some(TermFailure::Requirement {
                    term: i,
                    requirement: requirement_text(req),
                    actual,
                })
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "nodes_tests.rs"]
mod tests;
