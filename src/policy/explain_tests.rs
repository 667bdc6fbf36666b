//! Table tests of the explanation: every strategy, the SPEC §3 pods P1–P15, RuntimeClass pods,
//! the gate's denials, twin namespaces, stored pods, and the change each verdict names.
//!
//! The home cluster has local nodes l1 (`disk=ssd`) and l2 (`disk=hdd`), and one virtual node
//! per remote cluster: v1 on r1 (`region=A`, `provider=aws`) and v2 on r2 (`region=C`,
//! `gpu=true`). The SPEC §3 selector terms c1 and c2 select r1 and r2.

use k8s_openapi::api::core::v1::NodeSelector;
use k8s_openapi::api::core::v1::{
    NodeCondition, NodeSelectorRequirement, NodeSelectorTerm, NodeSpec, NodeStatus, Taint,
};
use k8s_openapi::api::node::v1::Scheduling;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde_json::json;

use super::*;
use crate::api::{
    NamespaceOffloadingSpec, NamespaceOffloadingStatus, OffloadingPhase, PodOffloadingStrategy,
    RemoteNamespaceCondition,
};
use crate::policy::gate::gate;
use crate::policy::selector::parse_terms;
use crate::policy::Verdict as GateVerdict;
use OffloadingPhase::{AllFailed, InProgress, NoClusterSelected, Ready, SomeFailed};
use PodOffloadingStrategy::{Local, LocalAndRemote, Remote};

const NS: &str = "shop";
const TV_KEY: &str = "virtual-node.liqo.io/not-allowed";

fn node(name: &str, labels: &[(&str, &str)], taints: Vec<Taint>) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: Some(taints),
            ..NodeSpec::default()
        }),
        status: Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".to_owned(),
                status: "True".to_owned(),
                ..NodeCondition::default()
            }]),
            ..NodeStatus::default()
        }),
    }
}

fn vnode(name: &str, cluster: &str, labels: &[(&str, &str)]) -> Node {
    let mut all = vec![
        ("liqo.io/type", "virtual-node"),
        ("liqo.io/remote-cluster-id", cluster),
    ];
    all.extend_from_slice(labels);
    let tv = Taint {
        key: TV_KEY.to_owned(),
        value: Some("true".to_owned()),
        effect: "NoExecute".to_owned(),
        time_added: None,
    };
    node(name, &all, vec![tv])
}

fn nodes() -> Vec<Node> {
    // Listed out of order on purpose: the explanation sorts them.
    vec![
        vnode("v2", "r2", &[("region", "C"), ("gpu", "true")]),
        node("l2", &[("disk", "hdd")], vec![]),
        vnode("v1", "r1", &[("region", "A"), ("provider", "aws")]),
        node("l1", &[("disk", "ssd")], vec![]),
    ]
}

fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: key.to_owned(),
        operator: op.to_owned(),
        values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).to_owned()).collect()),
    }
}

fn term(reqs: Vec<NodeSelectorRequirement>) -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_expressions: Some(reqs),
        match_fields: None,
    }
}

fn c1() -> NodeSelectorTerm {
    term(vec![
        req("region", "In", &["A", "B"]),
        req("provider", "Exists", &[]),
    ])
}

fn c2() -> NodeSelectorTerm {
    term(vec![req("region", "In", &["C"]), req("gpu", "Exists", &[])])
}

/// A Ready-condition entry: (cluster, status, reason, message).
type Twin<'a> = (&'a str, &'a str, &'a str, &'a str);

fn nsoff(
    strategy: PodOffloadingStrategy,
    cs: Vec<NodeSelectorTerm>,
    phase: Option<OffloadingPhase>,
    twins: &[Twin<'_>],
) -> NamespaceOffloading {
    let spec = NamespaceOffloadingSpec {
        pod_offloading_strategy: strategy,
        cluster_selector: (!cs.is_empty()).then_some(NodeSelector {
            node_selector_terms: cs,
        }),
        ..NamespaceOffloadingSpec::default()
    };
    let mut n = NamespaceOffloading::new("offloading", spec);
    n.metadata.namespace = Some(NS.to_owned());
    n.metadata.generation = Some(1);
    n.metadata.creation_timestamp = Some(time("2026-02-01T00:00:00Z"));
    let conditions = twins.iter().map(|(c, status, reason, message)| {
        let ready = RemoteNamespaceCondition {
            type_: "Ready".to_owned(),
            status: (*status).to_owned(),
            last_transition_time: None,
            reason: (*reason).to_owned(),
            message: (*message).to_owned(),
        };
        ((*c).to_owned(), vec![ready])
    });
    n.status = Some(NamespaceOffloadingStatus {
        offloading_phase: phase,
        observed_generation: Some(1),
        remote_namespaces_conditions: conditions.collect(),
        ..NamespaceOffloadingStatus::default()
    });
    n
}

const BOTH_READY: &[Twin<'static>] = &[
    ("r1", "True", "NamespaceCreated", ""),
    ("r2", "True", "NamespaceCreated", ""),
];

/// A processed NamespaceOffloading whose twins are ready on both clusters.
fn ready(strategy: PodOffloadingStrategy, cs: Vec<NodeSelectorTerm>) -> NamespaceOffloading {
    nsoff(strategy, cs, Some(Ready), BOTH_READY)
}

fn time(s: &str) -> Time {
    Time(s.parse().unwrap())
}

fn pod(spec: Value) -> Value {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}
    });
    if let (Some(base), Value::Object(extra)) = (p["spec"].as_object_mut(), spec) {
        base.extend(extra);
    }
    p
}

fn tv() -> Value {
    json!({"key": TV_KEY, "operator": "Exists", "effect": "NoExecute"})
}

fn runtime_class(name: &str, scheduling: Option<Scheduling>) -> RuntimeClass {
    RuntimeClass {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        handler: name.to_owned(),
        overhead: None,
        scheduling,
    }
}

fn liqo_rc() -> RuntimeClass {
    let tolerations = serde_json::from_value(json!([tv()])).unwrap();
    runtime_class(
        "liqo",
        Some(Scheduling {
            node_selector: Some([("liqo.io/type".to_owned(), "virtual-node".to_owned())].into()),
            tolerations: Some(tolerations),
        }),
    )
}

struct World {
    nodes: Vec<Node>,
    nsoff: Option<NamespaceOffloading>,
    enabled: bool,
    rc: Option<RuntimeClass>,
}

fn world(nsoff: Option<NamespaceOffloading>) -> World {
    let enabled = nsoff
        .as_ref()
        .is_some_and(|n| n.spec.pod_offloading_strategy != Local);
    World {
        nodes: nodes(),
        nsoff,
        enabled,
        rc: None,
    }
}

impl World {
    fn explain(&self, subject: Subject<'_>) -> Explanation {
        explain(&Inputs {
            namespace: NS,
            subject,
            offloading: self.nsoff.as_ref(),
            scheduling_enabled: self.enabled,
            nodes: &self.nodes,
            runtime_class: self.rc.as_ref(),
            webhook_runtime_class: "liqo",
        })
        .unwrap()
    }

    fn manifest(&self, pod: &Value) -> Explanation {
        self.explain(Subject::Manifest(pod))
    }
}

fn texts(list: &[&str]) -> Option<Vec<String>> {
    Some(list.iter().map(|s| (*s).to_owned()).collect())
}

fn admitted(toleration: bool, affinity: bool, required: Option<Vec<String>>) -> Admission {
    Admission::Admitted {
        toleration_added: toleration,
        affinity_changed: affinity,
        required_affinity: required,
    }
}

fn may_run(groups: &[(Option<&str>, &[&str])]) -> super::Verdict {
    super::Verdict::MayRun {
        clusters: groups
            .iter()
            .map(|(c, nodes)| ClusterNodes {
                cluster: c.map(str::to_owned),
                nodes: nodes.iter().map(|n| (*n).to_owned()).collect(),
            })
            .collect(),
    }
}

fn no_node(change: Change) -> super::Verdict {
    super::Verdict::NoNode {
        change,
        then_recreate: false,
    }
}

fn fails(term: usize, requirement: &str, actual: Option<&str>) -> TermFailure {
    TermFailure::Requirement {
        term,
        requirement: requirement.to_owned(),
        actual: actual.map(str::to_owned),
    }
}

fn affinity(terms: Vec<TermFailure>) -> Option<Blocker> {
    Some(Blocker::NodeAffinity { terms })
}

fn tv_taint() -> Option<Blocker> {
    Some(Blocker::Taint {
        key: TV_KEY.to_owned(),
        value: Some("true".to_owned()),
        effect: "NoExecute".to_owned(),
    })
}

fn selector_blocker(key: &str, wanted: &str, actual: Option<&str>) -> Option<Blocker> {
    Some(Blocker::NodeSelector {
        key: key.to_owned(),
        wanted: wanted.to_owned(),
        actual: actual.map(str::to_owned),
    })
}

fn no_twin(cluster: &str, twin: TwinState) -> Option<Blocker> {
    Some(Blocker::NoReadyTwin {
        cluster: Some(cluster.to_owned()),
        twin,
    })
}

/// The nodes as (name, blocker), in the explanation's order.
fn blockers(e: &Explanation) -> Vec<(&str, Option<Blocker>)> {
    e.nodes
        .iter()
        .map(|n| {
            assert_eq!(n.may_run, n.blocker.is_none(), "{n:?}");
            (n.name.as_str(), n.blocker.clone())
        })
        .collect()
}

fn gate_message(nsoff: Option<&NamespaceOffloading>) -> String {
    match gate(NS, nsoff) {
        GateVerdict::Deny(m) => m,
        GateVerdict::Allow { .. } => panic!("the gate should deny"),
    }
}

#[path = "explain_tests_pods.rs"]
mod pods;
#[path = "explain_tests_verdicts.rs"]
mod verdicts;
