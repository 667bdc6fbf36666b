//! The inputs of an explanation, and the steps run on them: the offloading summary, the
//! admission (the webhook's own gate and mutation), and the per-node evaluation.
//!
//! The verdict runs the same steps again on hypothetical offloadings and pods, so they take
//! the NamespaceOffloading and the pod as arguments rather than reading them from [`World`].

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::node::v1::RuntimeClass;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Admission, Blocker, ClusterNodes, ClusterSummary, Inputs, NodeResult, OffloadingSummary,
    TwinState,
};
use crate::api::conditions;
use crate::api::consts::VIRTUAL_NODE_LABEL;
use crate::api::NamespaceOffloading;
use crate::policy::gate::gate;
use crate::policy::mutate::{mutate, MutateError, PodPolicy, PodView};
use crate::policy::nodes::{cluster_of, is_virtual, node_labels, Placement};
use crate::policy::patch::to_json_patch;
use crate::policy::selector::{parse_terms, selects_cluster};
use crate::policy::selector_text::terms_text;
use crate::policy::{tolerates_virtual_node, Verdict as GateVerdict};

/// Why a stored pod does not carry the mutation the policy asks for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum OutdatedReason {
    /// It was created before the NamespaceOffloading.
    CreatedBeforeOffloading,
    /// It was never mutated: created while the namespace was not labelled
    /// `liqo.io/scheduling-enabled=true` (before offloading was ready, or with the webhook
    /// not installed).
    CreatedBeforeLabel,
    /// It was mutated under another policy: the strategy or the selector changed since.
    PolicyChanged,
}

/// A manifest's admission, and the pod as the API server would store it.
pub(super) struct Admitted {
    pub admission: Admission,
    /// `None` when the pod would not be stored.
    pub stored: Option<Pod>,
}

impl Admitted {
    fn refused(admission: Admission) -> Self {
        Admitted {
            admission,
            stored: None,
        }
    }
}

/// The cluster-wide inputs, ready to evaluate pods and offloadings against.
pub(super) struct World<'a> {
    namespace: &'a str,
    /// Local nodes by name, then virtual nodes by cluster and name.
    nodes: Vec<&'a Node>,
    /// Remote cluster → its virtual nodes, for the reconciler's selection rule.
    clusters: BTreeMap<String, Vec<&'a Node>>,
    runtime_class: Option<&'a RuntimeClass>,
    webhook_runtime_class: &'a str,
}

impl<'a> World<'a> {
    pub(super) fn new(inputs: &Inputs<'a>) -> Self {
        let mut nodes: Vec<&Node> = inputs.nodes.iter().collect();
        nodes.sort_by_key(|n| (is_virtual(n), cluster_of(n), n.metadata.name.as_deref()));
        let mut clusters: BTreeMap<String, Vec<&Node>> = BTreeMap::new();
        for node in &nodes {
            if let Some(id) = cluster_of(node) {
                clusters.entry(id.to_owned()).or_default().push(node);
            }
        }
        World {
            namespace: inputs.namespace,
            nodes,
            clusters,
            runtime_class: inputs.runtime_class,
            webhook_runtime_class: inputs.webhook_runtime_class,
        }
    }

    /// The clusters the reconciler selects for `nsoff` (none for an invalid selector).
    pub(super) fn selected(&self, nsoff: &NamespaceOffloading) -> BTreeSet<String> {
        let Ok(parsed) = parse_terms(nsoff.spec.selector_terms()) else {
            return BTreeSet::new();
        };
        self.clusters
            .iter()
            .filter(|(_, nodes)| {
                let nodes = nodes
                    .iter()
                    .map(|n| (n.metadata.name.as_deref().unwrap_or(""), node_labels(n)));
                selects_cluster(&parsed, nodes)
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Every known remote cluster id: from virtual nodes and from `nsoff`'s status.
    pub(super) fn cluster_ids(&self, nsoff: Option<&NamespaceOffloading>) -> BTreeSet<String> {
        let in_status = nsoff
            .and_then(|n| n.status.as_ref())
            .into_iter()
            .flat_map(|s| s.remote_namespaces_conditions.keys().cloned());
        self.clusters.keys().cloned().chain(in_status).collect()
    }

    pub(super) fn summary(
        &self,
        nsoff: Option<&NamespaceOffloading>,
        enabled: bool,
    ) -> OffloadingSummary {
        let selected = nsoff.map(|n| self.selected(n)).unwrap_or_default();
        let clusters = self
            .cluster_ids(nsoff)
            .into_iter()
            .map(|id| ClusterSummary {
                selected: selected.contains(&id) || selects_without_nodes(nsoff),
                twin: twin_state(nsoff, &id),
                cluster: id,
            })
            .collect();
        let status = nsoff.and_then(|n| n.status.as_ref());
        let generation = nsoff.and_then(|n| n.metadata.generation);
        let observed = status.and_then(|s| s.observed_generation);
        OffloadingSummary {
            scheduling_enabled: enabled,
            exists: nsoff.is_some(),
            terminating: nsoff.is_some_and(|n| n.metadata.deletion_timestamp.is_some()),
            strategy: nsoff.map(|n| n.spec.pod_offloading_strategy),
            selector: nsoff.map_or_else(Vec::new, |n| terms_text(n.spec.selector_terms())),
            selector_error: nsoff
                .and_then(|n| parse_terms(n.spec.selector_terms()).err())
                .map(|e| e.to_string()),
            phase: status.and_then(|s| s.offloading_phase),
            stale: matches!((generation, observed), (Some(g), Some(o)) if g != o),
            clusters,
        }
    }

    /// What the webhook does with a manifest now (SPEC §3, §4), by the webhook's own code.
    pub(super) fn admit(
        &self,
        json: &Value,
        nsoff: Option<&NamespaceOffloading>,
        enabled: bool,
    ) -> Admitted {
        let as_written = || serde_json::from_value::<Pod>(json.clone()).ok();
        if !enabled {
            return Admitted {
                admission: Admission::NotCalled,
                stored: as_written(),
            };
        }
        if let GateVerdict::Deny(message) = gate(self.namespace, nsoff) {
            return Admitted::refused(Admission::Denied { message });
        }
        // The gate never admits a namespace without a NamespaceOffloading.
        let Some(nsoff) = nsoff else {
            return Admitted::refused(Admission::NotCalled);
        };
        match self.mutated(json, nsoff) {
            Err(admission) => Admitted::refused(admission),
            Ok((ops, pod)) => Admitted {
                admission: Admission::Admitted {
                    toleration_added: ops.tolerations,
                    affinity_changed: ops.affinity,
                    required_affinity: required_text(&pod),
                },
                stored: Some(pod),
            },
        }
    }

    /// Whether a stored pod carries what the policy asks for now, i.e. whether the webhook
    /// would leave it as it is; if not, why, and what a pod made now from `source` (its
    /// template, or itself) would get.
    pub(super) fn existing(
        &self,
        pod: &Pod,
        json: &Value,
        source: &Value,
        nsoff: Option<&NamespaceOffloading>,
    ) -> Admission {
        let Some(nsoff) = nsoff else {
            return Admission::NotOffloaded;
        };
        let refused = |admission| match admission {
            Admission::Denied { message } => Admission::Refused { message },
            other => other,
        };
        let ops = match self.mutated(json, nsoff) {
            Ok((ops, _)) => ops,
            Err(admission) => return refused(admission),
        };
        if !ops.tolerations && !ops.affinity {
            return Admission::UpToDate;
        }
        let now = match self.mutated(source, nsoff) {
            Ok((_, now)) => now,
            Err(admission) => return refused(admission),
        };
        let before_offloading = matches!(
            (&pod.metadata.creation_timestamp, &nsoff.metadata.creation_timestamp),
            (Some(p), Some(n)) if p < n
        );
        let why = if before_offloading {
            super::OutdatedReason::CreatedBeforeOffloading
        } else if !self.carries_a_mutation(pod) {
            super::OutdatedReason::CreatedBeforeLabel
        } else {
            super::OutdatedReason::PolicyChanged
        };
        let owners = pod.metadata.owner_references.iter().flatten();
        Admission::Outdated {
            why,
            toleration_missing: ops.tolerations,
            required_affinity_now: required_text(&now),
            controlled: owners.into_iter().any(|o| o.controller == Some(true)),
        }
    }

    /// The webhook's mutation of `json` under `nsoff`: what it touches and the patched pod, or
    /// the admission that refuses it.
    fn mutated(
        &self,
        json: &Value,
        nsoff: &NamespaceOffloading,
    ) -> Result<(Touched, Pod), Admission> {
        let invalid = |message: String| Admission::Invalid { message };
        let policy = PodPolicy::new(&nsoff.spec);
        let view =
            <PodView as Deserialize>::deserialize(json).map_err(|e| invalid(e.to_string()))?;
        let ops = match mutate(&view, &policy, self.webhook_runtime_class) {
            Ok(ops) => ops,
            Err(MutateError::Refused(message)) => return Err(Admission::Denied { message }),
            Err(MutateError::Invalid(e)) => return Err(invalid(e.to_string())),
        };
        let touched = Touched {
            tolerations: ops.iter().any(|o| o.path.starts_with("/spec/tolerations")),
            affinity: ops.iter().any(|o| o.path.starts_with("/spec/affinity")),
        };
        let mut stored = json.clone();
        json_patch::patch(&mut stored, &to_json_patch(&ops)).map_err(|e| invalid(e.to_string()))?;
        let pod = serde_json::from_value(stored).map_err(|e| invalid(e.to_string()))?;
        Ok((touched, pod))
    }

    /// Whether the pod shows the webhook's hand: the virtual-node toleration (not brought by
    /// the RuntimeClass), or a required term on `liqo.io/type`.
    fn carries_a_mutation(&self, pod: &Pod) -> bool {
        let Some(spec) = pod.spec.as_ref() else {
            return false;
        };
        let by_runtime_class =
            spec.runtime_class_name.as_deref() == Some(self.webhook_runtime_class);
        let tolerated = spec
            .tolerations
            .iter()
            .flatten()
            .any(tolerates_virtual_node);
        let terms = required_terms(pod).unwrap_or_default();
        let on_type = terms.iter().any(|t| {
            let exprs = t.match_expressions.iter().flatten();
            exprs.into_iter().any(|r| r.key == VIRTUAL_NODE_LABEL)
        });
        on_type || (tolerated && !by_runtime_class)
    }

    /// The pod's own `nodeSelector` entries (those its RuntimeClass does not ask for).
    pub(super) fn own_node_selector(&self, json: &Value) -> BTreeMap<String, String> {
        let pod: Option<Pod> = serde_json::from_value(json.clone()).ok();
        let spec = pod.and_then(|p| p.spec).unwrap_or_default();
        Placement::new(&spec, self.runtime_class)
            .own_node_selector()
            .clone()
    }

    /// The keys of `selector` that some node of `groups` does not carry as asked.
    pub(super) fn unmet_keys(
        &self,
        selector: &BTreeMap<String, String>,
        groups: &[ClusterNodes],
    ) -> Vec<String> {
        let names: BTreeSet<&str> = groups
            .iter()
            .flat_map(|g| g.nodes.iter().map(String::as_str))
            .collect();
        let usable = self
            .nodes
            .iter()
            .filter(|n| names.contains(n.metadata.name.as_deref().unwrap_or("")));
        let mut keys = BTreeSet::new();
        for node in usable {
            let labels = node_labels(node);
            keys.extend(
                selector
                    .iter()
                    .filter(|(k, v)| labels.get(*k) != Some(*v))
                    .map(|(k, _)| k.clone()),
            );
        }
        keys.into_iter().collect()
    }

    /// Every node's result for `pod`, with twin namespaces as `nsoff`'s status says.
    pub(super) fn evaluate(
        &self,
        pod: &Pod,
        nsoff: Option<&NamespaceOffloading>,
    ) -> Vec<NodeResult> {
        let spec = pod.spec.clone().unwrap_or_default();
        let placement = Placement::new(&spec, self.runtime_class);
        self.nodes
            .iter()
            .map(|node| {
                let cluster = cluster_of(node);
                let blocker = placement.blocker(node).or_else(|| {
                    if !is_virtual(node) {
                        return None;
                    }
                    let twin = cluster.map_or(TwinState::Absent, |c| twin_state(nsoff, c));
                    (twin != TwinState::Ready).then(|| Blocker::NoReadyTwin {
                        cluster: cluster.map(str::to_owned),
                        twin,
                    })
                });
                NodeResult {
                    name: node.metadata.name.clone().unwrap_or_default(),
                    virtual_node: is_virtual(node),
                    cluster: cluster.map(str::to_owned),
                    may_run: blocker.is_none(),
                    blocker,
                }
            })
            .collect()
    }
}

/// What a mutation touches.
struct Touched {
    tolerations: bool,
    affinity: bool,
}

/// A selector with zero terms selects every cluster, even one known only from the status.
fn selects_without_nodes(nsoff: Option<&NamespaceOffloading>) -> bool {
    nsoff.is_some_and(|n| n.spec.selector_terms().is_empty())
}

/// A twin namespace's state from `nsoff`'s status.
pub(super) fn twin_state(nsoff: Option<&NamespaceOffloading>, cluster: &str) -> TwinState {
    let conditions = nsoff
        .and_then(|n| n.status.as_ref())
        .and_then(|s| s.remote_namespaces_conditions.get(cluster));
    match conditions
        .into_iter()
        .flatten()
        .find(|c| c.type_ == conditions::READY)
    {
        None => TwinState::Absent,
        Some(c) if c.status == conditions::TRUE => TwinState::Ready,
        Some(c) => TwinState::NotReady {
            reason: c.reason.clone(),
            message: c.message.clone(),
        },
    }
}

fn required_terms(pod: &Pod) -> Option<Vec<k8s_openapi::api::core::v1::NodeSelectorTerm>> {
    let affinity = pod.spec.as_ref()?.affinity.as_ref()?;
    let required = affinity.node_affinity.as_ref()?;
    let required = required
        .required_during_scheduling_ignored_during_execution
        .as_ref()?;
    Some(required.node_selector_terms.clone())
}

/// The required node affinity in selector syntax, one term per entry.
fn required_text(pod: &Pod) -> Option<Vec<String>> {
    required_terms(pod).map(|t| terms_text(&t))
}
