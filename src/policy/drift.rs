//! Pods that no longer follow the policy (SPEC §12): the pure classification shared by the
//! reconciler's `PodsCompliant` condition, `offload namespace` and `evict namespace`.
//!
//! Pods are mutated only when created, so a pod admitted under an older (wider) strategy or
//! selector keeps running where the current one forbids, and a pod created before the
//! namespace was labelled was never mutated at all. Whether a bound pod is misplaced depends
//! only on where it runs: the strategy, the selected clusters and the pod's RuntimeClass. An
//! unbound pod is judged by the webhook's own mutation: if the mutation would still change
//! it, it lacks what the policy gives pods now and can never be placed as intended. Nodes are
//! looked up through a function, so the reconciler can answer from its cache of virtual nodes
//! and the commands from a list they fetched.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde::{Deserialize, Serialize};

use super::mutate::{mutate, PodPolicy, PodView};
use super::nodes::{cluster_of, is_virtual};
use crate::api::{NamespaceOffloadingSpec, PodOffloadingStrategy};

/// What kind of node a pod is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeKind {
    /// A node of the home cluster (any node that is not a virtual node).
    Local,
    /// A virtual node, with the remote cluster id it stands for (when labelled).
    Virtual(Option<String>),
}

/// The virtual nodes by name, to tell what kind of node a pod is bound to: any node that
/// is not among them is local.
#[derive(Debug, Default)]
pub(crate) struct NodeKinds<'a>(HashMap<&'a str, Option<&'a str>>);

impl<'a> NodeKinds<'a> {
    /// From the nodes (virtual ones are kept, others ignored).
    pub(crate) fn new(nodes: impl IntoIterator<Item = &'a Node>) -> Self {
        let virtual_nodes = nodes
            .into_iter()
            .filter(|n| is_virtual(n))
            .map(|n| (n.metadata.name.as_deref().unwrap_or(""), cluster_of(n)));
        NodeKinds(virtual_nodes.collect())
    }

    /// The kind of the node named `name`.
    pub(crate) fn kind(&self, name: &str) -> NodeKind {
        match self.0.get(name) {
            Some(cluster) => NodeKind::Virtual(cluster.map(str::to_owned)),
            None => NodeKind::Local,
        }
    }
}

/// The namespace's policy as it is now.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CurrentPolicy<'a> {
    /// The NamespaceOffloading's spec.
    pub spec: &'a NamespaceOffloadingSpec,
    /// The remote clusters the reconciler selects now.
    pub selected: &'a BTreeSet<String>,
    /// The webhook's RuntimeClass name (RC of SPEC §3).
    pub runtime_class: &'a str,
}

/// Why a pod does not follow the current policy (one rule of SPEC §12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "camelCase")]
pub enum Violation {
    /// Bound to a virtual node while the strategy is `Local`, without the RuntimeClass.
    #[serde(rename_all = "camelCase")]
    VirtualNodeWhileLocal {
        /// The node.
        node: String,
        /// The node's remote cluster.
        cluster: Option<String>,
    },
    /// Bound to a local node while the strategy is `Remote`.
    #[serde(rename_all = "camelCase")]
    LocalNodeWhileRemote {
        /// The node.
        node: String,
    },
    /// Bound to a virtual node of a cluster the selector does not select.
    #[serde(rename_all = "camelCase")]
    UnselectedCluster {
        /// The node.
        node: String,
        /// The node's remote cluster (`None`: the node names none, so none selects it).
        cluster: Option<String>,
    },
    /// Not bound, and the webhook would still change it: it lacks the mutation.
    #[serde(rename_all = "camelCase")]
    MissingMutation {
        /// The virtual-node toleration is missing.
        toleration: bool,
        /// The node affinity the policy imposes is missing.
        affinity: bool,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = |cluster: &Option<String>| match cluster {
            Some(c) => format!("cluster {c}"),
            None => "no cluster id".to_owned(),
        };
        match self {
            Violation::VirtualNodeWhileLocal { node, cluster } => write!(
                f,
                "runs on virtual node {node} ({}), but the strategy is Local",
                on(cluster)
            ),
            Violation::LocalNodeWhileRemote { node } => {
                write!(f, "runs on local node {node}, but the strategy is Remote")
            }
            Violation::UnselectedCluster { node, cluster } => write!(
                f,
                "runs on virtual node {node} ({}), which the cluster selector does not select",
                on(cluster)
            ),
            Violation::MissingMutation {
                toleration,
                affinity,
            } => {
                let missing = match (toleration, affinity) {
                    (true, true) => "the virtual-node toleration and the node affinity",
                    (true, false) => "the virtual-node toleration",
                    _ => "the node affinity",
                };
                write!(
                    f,
                    "is not scheduled and lacks {missing} the policy gives pods now"
                )
            }
        }
    }
}

/// Whether the pod has finished or is going away: such pods are never judged.
pub(crate) fn is_settled(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_some() || matches!(phase, Some("Succeeded" | "Failed"))
}

/// Why `pod` violates `policy`, or `None` when it follows it (or is settled).
pub(crate) fn violation(
    pod: &Pod,
    policy: &CurrentPolicy<'_>,
    node_kind: impl Fn(&str) -> NodeKind,
) -> Option<Violation> {
    if is_settled(pod) {
        return None;
    }
    let spec = pod.spec.as_ref()?;
    let strategy = policy.spec.pod_offloading_strategy;
    let node = spec.node_name.as_deref().filter(|n| !n.is_empty());
    let Some(node) = node else {
        return missing_mutation(pod, policy);
    };
    match node_kind(node) {
        NodeKind::Local if strategy == PodOffloadingStrategy::Remote => {
            Some(Violation::LocalNodeWhileRemote {
                node: node.to_owned(),
            })
        }
        NodeKind::Local => None,
        NodeKind::Virtual(cluster) => {
            let with_class = spec.runtime_class_name.as_deref() == Some(policy.runtime_class);
            if strategy == PodOffloadingStrategy::Local && !with_class {
                return Some(Violation::VirtualNodeWhileLocal {
                    node: node.to_owned(),
                    cluster,
                });
            }
            let selected = cluster
                .as_ref()
                .is_some_and(|c| policy.selected.contains(c));
            (!selected).then(|| Violation::UnselectedCluster {
                node: node.to_owned(),
                cluster,
            })
        }
    }
}

/// The webhook's mutation of the pod as it is stored: any operation left means the pod
/// lacks it. A pod the webhook would refuse (a `Remote` policy whose selector selects
/// nothing) gets no mutation, so it lacks none.
fn missing_mutation(pod: &Pod, policy: &CurrentPolicy<'_>) -> Option<Violation> {
    let json = serde_json::to_value(pod).ok()?;
    let view = <PodView as Deserialize>::deserialize(&json).ok()?;
    let pod_policy = PodPolicy::new(policy.spec);
    let ops = mutate(&view, &pod_policy, policy.runtime_class).ok()?;
    let touches = |prefix: &str| ops.iter().any(|o| o.path.starts_with(prefix));
    let (toleration, affinity) = (touches("/spec/tolerations"), touches("/spec/affinity"));
    (toleration || affinity).then_some(Violation::MissingMutation {
        toleration,
        affinity,
    })
}

/// Who would bring an evicted pod back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "controller", rename_all = "camelCase")]
pub enum Controller {
    /// A workload controller (ReplicaSet, StatefulSet, Job, …) recreates it, mutated.
    #[serde(rename_all = "camelCase")]
    Workload {
        /// The controller's kind.
        kind: String,
        /// The controller's name.
        name: String,
    },
    /// A DaemonSet recreates it on the same node: evicting it would not move it.
    #[serde(rename_all = "camelCase")]
    DaemonSet {
        /// The DaemonSet's name.
        name: String,
    },
    /// Nothing: an eviction deletes it for good.
    None,
}

/// The pod's controller, from its owner references.
pub(crate) fn controller(pod: &Pod) -> Controller {
    let owners = pod.metadata.owner_references.iter().flatten();
    let Some(owner) = owners.into_iter().find(|o| o.controller == Some(true)) else {
        return Controller::None;
    };
    if owner.kind == "DaemonSet" {
        Controller::DaemonSet {
            name: owner.name.clone(),
        }
    } else {
        Controller::Workload {
            kind: owner.kind.clone(),
            name: owner.name.clone(),
        }
    }
}

#[cfg(test)]
#[path = "drift_tests.rs"]
mod tests;
