//! The verdict: where the pod may run, or the one change that would help first.
//!
//! Changes are tried in SPEC §11's order: create or fix the NamespaceOffloading; widen the
//! selector; change the strategy; drop a conflicting nodeSelector or affinity; recreate the
//! pod. What the webhook refuses and what the status already says (a twin namespace being
//! created or failing) are read directly; every other change is tried on a hypothetical
//! NamespaceOffloading (whose twins the reconciler would make ready) or pod, through the same
//! admission and node checks, and suggested only if some node could then run the pod. A
//! stored pod keeps the placement it was given when created, so recreating it comes first
//! when that alone helps, and any other change to the policy or the pod reaches it only once
//! it is recreated (`then_recreate`).

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::admission::{twin_state, World};
use super::{
    Admission, Blocker, Change, ClusterNodes, ClusterProblem, Inputs, NodeResult,
    RuntimeClassProblem, TwinState, Verdict,
};
use crate::api::conditions;
use crate::api::consts::NSOFF_NAME;
use crate::api::{
    NamespaceOffloading, NamespaceOffloadingSpec, NamespaceOffloadingStatus, OffloadingPhase,
    PodOffloadingStrategy, RemoteNamespaceCondition,
};
use crate::policy::selector::parse_terms;

/// The verdict for the real inputs, whose results are `admission` and `nodes`.
pub(super) fn verdict(
    world: &World<'_>,
    inputs: &Inputs<'_>,
    json: &Value,
    existing: bool,
    admission: &Admission,
    nodes: &[NodeResult],
) -> Verdict {
    let refused = matches!(
        admission,
        Admission::Denied { .. } | Admission::Invalid { .. }
    );
    if !refused {
        if let Some(clusters) = runnable(nodes) {
            return Verdict::MayRun { clusters };
        }
    }
    let (change, then_recreate) = first_change(world, inputs, json, existing, admission, nodes);
    Verdict::NoNode {
        change,
        then_recreate,
    }
}

/// The nodes that may run the pod, grouped by cluster in node order; `None` when there are none.
fn runnable(nodes: &[NodeResult]) -> Option<Vec<ClusterNodes>> {
    let mut groups: Vec<ClusterNodes> = Vec::new();
    for node in nodes.iter().filter(|n| n.may_run) {
        match groups.last_mut() {
            Some(g) if g.cluster == node.cluster => g.nodes.push(node.name.clone()),
            _ => groups.push(ClusterNodes {
                cluster: node.cluster.clone(),
                nodes: vec![node.name.clone()],
            }),
        }
    }
    (!groups.is_empty()).then_some(groups)
}

fn first_change(
    world: &World<'_>,
    inputs: &Inputs<'_>,
    json: &Value,
    existing: bool,
    admission: &Admission,
    nodes: &[NodeResult],
) -> (Change, bool) {
    let nsoff = inputs.offloading;
    let enabled = inputs.scheduling_enabled;
    match admission {
        Admission::Denied { message } => {
            if let Some(change) = denial_change(world, nsoff, message) {
                return (change, false);
            }
        }
        Admission::Invalid { message } => {
            let message = message.clone();
            return (Change::FixPod { message }, false);
        }
        Admission::Outdated { .. } if runs(world, json, nsoff, enabled).is_some() => {
            return (Change::RecreatePod, false);
        }
        _ => {}
    }
    if let Some(name) = nodes.iter().find_map(|n| match &n.blocker {
        Some(Blocker::RuntimeClass {
            name,
            problem: RuntimeClassProblem::Missing,
        }) => Some(name.clone()),
        _ => None,
    }) {
        return (Change::CreateRuntimeClass { name }, false);
    }
    if let Some(change) = twin_change(world, nsoff, nodes) {
        return (change, false);
    }
    let recreate = existing;
    let Some(nsoff) = nsoff else {
        let default = hypothetical(world, NamespaceOffloadingSpec::default());
        if runs(world, json, Some(&default), true).is_some() {
            return (Change::CreateOffloading, recreate);
        }
        return (pod_change(world, json, None, enabled), recreate);
    };
    let spec = &nsoff.spec;
    if let Err(e) = parse_terms(spec.selector_terms()) {
        return (
            Change::FixSelector {
                message: e.to_string(),
            },
            recreate,
        );
    }
    if !spec.selector_terms().is_empty() {
        let wide = hypothetical(
            world,
            NamespaceOffloadingSpec {
                cluster_selector: None,
                ..spec.clone()
            },
        );
        if let Some(groups) = runs(world, json, Some(&wide), wide_enabled(&wide)) {
            let selected = world.selected(nsoff);
            let clusters = groups
                .into_iter()
                .filter_map(|g| g.cluster)
                .filter(|c| !selected.contains(c))
                .collect::<Vec<_>>();
            if !clusters.is_empty() {
                return (Change::WidenSelector { clusters }, recreate);
            }
        }
    }
    for to in PodOffloadingStrategy::ALL.iter().copied() {
        if to == spec.pod_offloading_strategy {
            continue;
        }
        let mut other = nsoff.clone();
        other.spec.pod_offloading_strategy = to;
        if runs(
            world,
            json,
            Some(&other),
            to != PodOffloadingStrategy::Local,
        )
        .is_some()
        {
            return (Change::ChangeStrategy { to }, recreate);
        }
    }
    (pod_change(world, json, Some(nsoff), enabled), recreate)
}

/// The change that answers the webhook's denial of a manifest; `None` when the denial comes
/// from a policy that leaves the pod nowhere to run (the later changes then apply).
fn denial_change(
    world: &World<'_>,
    nsoff: Option<&NamespaceOffloading>,
    message: &str,
) -> Option<Change> {
    let Some(nsoff) = nsoff else {
        return Some(Change::CreateOffloading);
    };
    let phase = nsoff.status.as_ref().and_then(|s| s.offloading_phase);
    if nsoff.metadata.deletion_timestamp.is_some() || phase.is_none() {
        return Some(Change::WaitForOffloading {
            message: message.to_owned(),
        });
    }
    if phase == Some(OffloadingPhase::AllFailed) {
        let clusters = world
            .selected(nsoff)
            .into_iter()
            .map(|cluster| ClusterProblem {
                twin: twin_state(Some(nsoff), &cluster),
                cluster,
            })
            .filter(|p| p.twin != TwinState::Ready)
            .collect();
        return Some(Change::FixOffloading { clusters });
    }
    None
}

/// When some virtual node fails only because its cluster has no ready twin namespace: wait
/// for it, fix it, select its cluster, or create the NamespaceOffloading.
fn twin_change(
    world: &World<'_>,
    nsoff: Option<&NamespaceOffloading>,
    nodes: &[NodeResult],
) -> Option<Change> {
    let clusters: BTreeSet<&str> = nodes
        .iter()
        .filter_map(|n| match &n.blocker {
            Some(Blocker::NoReadyTwin {
                cluster: Some(c), ..
            }) => Some(c.as_str()),
            _ => None,
        })
        .collect();
    if clusters.is_empty() {
        return None;
    }
    let Some(nsoff) = nsoff else {
        return Some(Change::CreateOffloading);
    };
    let selected = world.selected(nsoff);
    let unselected: Vec<String> = clusters
        .iter()
        .filter(|c| !selected.contains(**c) && !nsoff.spec.selector_terms().is_empty())
        .map(|c| (*c).to_owned())
        .collect();
    let twins: Vec<ClusterProblem> = clusters
        .iter()
        .filter(|c| !unselected.iter().any(|u| u == **c))
        .map(|c| ClusterProblem {
            cluster: (*c).to_owned(),
            twin: twin_state(Some(nsoff), c),
        })
        .collect();
    let waiting = |p: &ClusterProblem| match &p.twin {
        TwinState::Absent => true,
        TwinState::NotReady { reason, .. } => reason == "Creating",
        TwinState::Ready => false,
    };
    if let Some(p) = twins.iter().find(|p| waiting(p)) {
        return Some(Change::WaitForOffloading {
            message: format!(
                "the twin namespace on cluster {} is not created yet",
                p.cluster
            ),
        });
    }
    if !twins.is_empty() {
        return Some(Change::FixOffloading { clusters: twins });
    }
    Some(Change::WidenSelector {
        clusters: unselected,
    })
}

/// Dropping the pod's own nodeSelector, then its own required node affinity.
fn pod_change(
    world: &World<'_>,
    json: &Value,
    nsoff: Option<&NamespaceOffloading>,
    enabled: bool,
) -> Change {
    let mut without = json.clone();
    let own = world.own_node_selector(json);
    if !own.is_empty() {
        if let Some(Value::Object(selector)) = without.pointer_mut("/spec/nodeSelector") {
            selector.retain(|k, _| !own.contains_key(k));
        }
        if let Some(groups) = runs(world, &without, nsoff, enabled) {
            let keys = world.unmet_keys(&own, &groups);
            return Change::DropNodeSelector { keys };
        }
    }
    let mut without = json.clone();
    let affinity = without.pointer_mut("/spec/affinity/nodeAffinity");
    if let Some(Value::Object(node_affinity)) = affinity {
        if node_affinity
            .remove("requiredDuringSchedulingIgnoredDuringExecution")
            .is_some()
            && runs(world, &without, nsoff, enabled).is_some()
        {
            return Change::DropAffinity;
        }
    }
    Change::Nothing
}

/// Whether the reconciler labels the namespace for this NamespaceOffloading.
fn wide_enabled(nsoff: &NamespaceOffloading) -> bool {
    nsoff.spec.pod_offloading_strategy != PodOffloadingStrategy::Local
}

/// Admits `json` as a manifest and evaluates it: the runnable nodes, or `None`.
fn runs(
    world: &World<'_>,
    json: &Value,
    nsoff: Option<&NamespaceOffloading>,
    enabled: bool,
) -> Option<Vec<ClusterNodes>> {
    let admitted = world.admit(json, nsoff, enabled);
    let stored = admitted.stored?;
    runnable(&world.evaluate(&stored, nsoff))
}

/// A NamespaceOffloading with `spec` as the reconciler would leave it: processed, with a ready
/// twin namespace on every selected cluster.
fn hypothetical(world: &World<'_>, spec: NamespaceOffloadingSpec) -> NamespaceOffloading {
    let mut nsoff = NamespaceOffloading {
        metadata: ObjectMeta {
            name: Some(NSOFF_NAME.to_owned()),
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    };
    let selected = world.selected(&nsoff);
    let ready = |_: &String| {
        vec![RemoteNamespaceCondition {
            type_: conditions::READY.to_owned(),
            status: conditions::TRUE.to_owned(),
            last_transition_time: None,
            reason: conditions::reason::NAMESPACE_CREATED.to_owned(),
            message: String::new(),
        }]
    };
    nsoff.status = Some(NamespaceOffloadingStatus {
        offloading_phase: Some(if selected.is_empty() {
            OffloadingPhase::NoClusterSelected
        } else {
            OffloadingPhase::Ready
        }),
        remote_namespaces_conditions: selected.iter().map(|c| (c.clone(), ready(c))).collect(),
        ..NamespaceOffloadingStatus::default()
    });
    nsoff
}
