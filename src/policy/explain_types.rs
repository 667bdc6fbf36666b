//! The explanation's vocabulary: what `explain` returns, serializable as the `-o json` form.
//!
//! Reasons and changes are data, not sentences: the command words them (and colours them on a
//! terminal), and machines read the same values in JSON. Names in JSON are camelCase, with a
//! tag field naming each variant (`kind`, `outcome`, `state`, `result`, `change`).

use serde::Serialize;

use super::OutdatedReason;
use crate::api::{OffloadingPhase, PodOffloadingStrategy};

/// The whole answer, in the order it is shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// The namespace.
    pub namespace: String,
    /// The pod's name (a manifest may have only `generateName`, or none).
    pub pod: Option<String>,
    /// The node a stored pod is bound to.
    pub bound_to: Option<String>,
    /// The namespace's offloading.
    pub offloading: OffloadingSummary,
    /// What the webhook does (manifest) or did (stored pod).
    pub admission: Admission,
    /// Every node: local ones first, then virtual ones by cluster; by name within each.
    pub nodes: Vec<NodeResult>,
    /// Where the pod may run, or the change that would help first.
    pub verdict: Verdict,
}

impl Explanation {
    /// Whether at least one node may run the pod (the command's exit status 0).
    pub fn may_run(&self) -> bool {
        matches!(self.verdict, Verdict::MayRun { .. })
    }
}

/// The namespace's offloading (SPEC §11 item 1).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OffloadingSummary {
    /// Whether the namespace is labelled `liqo.io/scheduling-enabled=true`.
    pub scheduling_enabled: bool,
    /// Whether the namespace has a NamespaceOffloading.
    pub exists: bool,
    /// Whether it is being deleted.
    pub terminating: bool,
    /// Its pod offloading strategy.
    pub strategy: Option<PodOffloadingStrategy>,
    /// Its cluster selector, one term per entry in the CLI's syntax (empty: every cluster).
    pub selector: Vec<String>,
    /// Why the selector cannot be used (it then selects no cluster).
    pub selector_error: Option<String>,
    /// Its phase (`None`: not processed yet).
    pub phase: Option<OffloadingPhase>,
    /// Whether the status was computed for an older generation of the spec.
    pub stale: bool,
    /// Every remote cluster known from virtual nodes or from the status.
    pub clusters: Vec<ClusterSummary>,
}

/// One remote cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSummary {
    /// The cluster id.
    pub cluster: String,
    /// Whether the selector selects it now (the reconciler's rule).
    pub selected: bool,
    /// Its twin namespace, from the status.
    pub twin: TwinState,
}

/// A twin namespace's state, from the status's `Ready` condition for its cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "state",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum TwinState {
    /// `Ready=True`.
    Ready,
    /// `Ready` is not `True`: being created, failing, or being deleted.
    NotReady {
        /// The condition's reason (`Creating`, `CreationLoopBackOff`, `Terminating`).
        reason: String,
        /// The condition's message.
        message: String,
    },
    /// No `Ready` condition: no twin namespace.
    Absent,
}

/// What the webhook does with a manifest, or whether a stored pod follows the policy now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "outcome",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Admission {
    /// Manifest: the namespace is not labelled, the webhook is not called; stored as written.
    NotCalled,
    /// Manifest: the webhook denies it (the gate, or a policy that leaves it nowhere to run).
    Denied {
        /// The webhook's message.
        message: String,
    },
    /// Manifest: the webhook cannot patch it (the API server would reject it too).
    Invalid {
        /// What is wrong.
        message: String,
    },
    /// Manifest: admitted, possibly mutated.
    Admitted {
        /// Whether the virtual-node toleration is added.
        toleration_added: bool,
        /// Whether the required node affinity changes.
        affinity_changed: bool,
        /// The required node affinity as stored, one term per entry (`None`: none).
        required_affinity: Option<Vec<String>>,
    },
    /// Stored pod: the namespace has no NamespaceOffloading, so no policy applies.
    NotOffloaded,
    /// Stored pod: it carries what the policy asks for now.
    UpToDate,
    /// Stored pod: the mutation would change it now.
    Outdated {
        /// Why it does not carry the mutation.
        why: OutdatedReason,
        /// Whether it lacks the virtual-node toleration.
        toleration_missing: bool,
        /// The required node affinity a pod created now gets, one term per entry.
        required_affinity_now: Option<Vec<String>>,
        /// Whether a controller owns it (deleting it makes the controller recreate it).
        controlled: bool,
    },
    /// Stored pod: the webhook would deny such a pod now.
    Refused {
        /// The webhook's message.
        message: String,
    },
}

/// One node.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeResult {
    /// The node's name.
    pub name: String,
    /// Whether it is a virtual node.
    pub virtual_node: bool,
    /// The remote cluster of a virtual node.
    pub cluster: Option<String>,
    /// Whether the pod may run there.
    pub may_run: bool,
    /// Otherwise, the first reason (SPEC §11 order).
    pub blocker: Option<Blocker>,
}

/// The first reason a pod may not run on a node, in SPEC §11's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Blocker {
    /// The node is cordoned (`spec.unschedulable`).
    Cordoned,
    /// The node's `Ready` condition is not `True`.
    NotReady {
        /// The condition's status (`False`, `Unknown`).
        status: String,
        /// Its reason.
        reason: Option<String>,
    },
    /// A `NoSchedule`/`NoExecute` taint the pod does not tolerate.
    Taint {
        /// The taint's key.
        key: String,
        /// Its value.
        value: Option<String>,
        /// Its effect.
        effect: String,
    },
    /// A `nodeSelector` entry the node's labels do not carry.
    NodeSelector {
        /// The label key.
        key: String,
        /// The value the pod asks for.
        wanted: String,
        /// The node's value (`None`: no such label).
        actual: Option<String>,
    },
    /// No term of the required node affinity matches.
    NodeAffinity {
        /// Why each term fails.
        terms: Vec<TermFailure>,
    },
    /// The RuntimeClass the pod names.
    RuntimeClass {
        /// Its name.
        name: String,
        /// What is wrong.
        problem: RuntimeClassProblem,
    },
    /// A virtual node whose cluster has no ready twin namespace for this namespace.
    NoReadyTwin {
        /// The cluster (`None`: the virtual node names none).
        cluster: Option<String>,
        /// The twin's state.
        twin: TwinState,
    },
}

/// Why one term of a required node affinity does not match a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum TermFailure {
    /// The first requirement the node fails.
    Requirement {
        /// The term's index.
        term: usize,
        /// The requirement in selector syntax.
        requirement: String,
        /// The node's value for its key (its name for `matchFields`; `None`: no such label).
        actual: Option<String>,
    },
    /// The term is empty and matches no node.
    Empty {
        /// The term's index.
        term: usize,
    },
    /// The term cannot be parsed and matches no node.
    Invalid {
        /// The term's index.
        term: usize,
        /// The problems.
        message: String,
    },
}

/// What is wrong with the pod's RuntimeClass on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum RuntimeClassProblem {
    /// It does not exist.
    Missing,
    /// A `scheduling.nodeSelector` entry the node's labels do not carry.
    NodeSelector {
        /// The label key.
        key: String,
        /// The value the RuntimeClass asks for.
        wanted: String,
        /// The node's value.
        actual: Option<String>,
    },
}

/// The nodes of one cluster that may run the pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterNodes {
    /// The remote cluster (`None`: local nodes).
    pub cluster: Option<String>,
    /// The nodes, by name.
    pub nodes: Vec<String>,
}

/// The conclusion (SPEC §11 item 4).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "result",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Verdict {
    /// Some nodes may run the pod.
    MayRun {
        /// Local nodes first, then by cluster.
        clusters: Vec<ClusterNodes>,
    },
    /// No node may run it.
    NoNode {
        /// The change that would help first.
        change: Change,
        /// Whether the stored pod must then be recreated for the change to reach it (a pod's
        /// placement is fixed when it is created).
        then_recreate: bool,
    },
}

/// One change that would let the pod run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "change",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Change {
    /// Create the NamespaceOffloading (`nsoffload offload namespace`).
    CreateOffloading,
    /// Wait: the NamespaceOffloading or its twin namespaces are being processed.
    WaitForOffloading {
        /// What is being waited for.
        message: String,
    },
    /// Fix the twin namespaces failing on these clusters (see their messages).
    FixOffloading {
        /// The clusters and their conditions.
        clusters: Vec<ClusterProblem>,
    },
    /// Fix the cluster selector, which is invalid and selects nothing.
    FixSelector {
        /// The parse errors.
        message: String,
    },
    /// Widen the cluster selector to include these clusters.
    WidenSelector {
        /// Clusters that would run the pod if selected.
        clusters: Vec<String>,
    },
    /// Change the pod offloading strategy.
    ChangeStrategy {
        /// The strategy that would let it run.
        to: PodOffloadingStrategy,
    },
    /// Drop these `nodeSelector` entries of the pod.
    DropNodeSelector {
        /// The keys no usable node carries as asked.
        keys: Vec<String>,
    },
    /// Drop the pod's own required node affinity, which contradicts the policy.
    DropAffinity,
    /// Recreate the pod, so the webhook applies the current policy to it.
    RecreatePod,
    /// Create the RuntimeClass the pod names.
    CreateRuntimeClass {
        /// Its name.
        name: String,
    },
    /// Fix the pod itself.
    FixPod {
        /// What is wrong.
        message: String,
    },
    /// No single change of the offloading or of the pod's placement helps: see each node.
    Nothing,
}

/// A twin namespace that failed on one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterProblem {
    /// The cluster.
    pub cluster: String,
    /// Its twin's state.
    pub twin: TwinState,
}
