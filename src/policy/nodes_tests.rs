//! Table tests of the scheduler's filters: each SPEC §11 reason, its order, and every
//! node-affinity operator with the failing requirement named.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeCondition, NodeSelector, NodeSelectorRequirement, NodeSpec,
    NodeStatus, Taint,
};
use k8s_openapi::api::node::v1::Scheduling;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

fn node(name: &str, labels: &[(&str, &str)]) -> Node {
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
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            conditions: Some(vec![condition("True", None)]),
            ..NodeStatus::default()
        }),
    }
}

fn condition(status: &str, reason: Option<&str>) -> NodeCondition {
    NodeCondition {
        type_: "Ready".to_owned(),
        status: status.to_owned(),
        reason: reason.map(str::to_owned),
        ..NodeCondition::default()
    }
}

fn taint(key: &str, value: &str, effect: &str) -> Taint {
    Taint {
        key: key.to_owned(),
        value: Some(value.to_owned()),
        effect: effect.to_owned(),
        time_added: None,
    }
}

fn tainted(mut n: Node, taints: Vec<Taint>) -> Node {
    n.spec.get_or_insert_with(Default::default).taints = Some(taints);
    n
}

fn cordoned(mut n: Node) -> Node {
    n.spec.get_or_insert_with(Default::default).unschedulable = Some(true);
    n
}

fn not_ready(mut n: Node, status: &str, reason: Option<&str>) -> Node {
    n.status = Some(NodeStatus {
        conditions: Some(vec![condition(status, reason)]),
        ..NodeStatus::default()
    });
    n
}

fn toleration(key: &str, op: &str, effect: &str) -> Toleration {
    Toleration {
        key: (!key.is_empty()).then(|| key.to_owned()),
        operator: Some(op.to_owned()),
        effect: (!effect.is_empty()).then(|| effect.to_owned()),
        ..Toleration::default()
    }
}

fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: key.to_owned(),
        operator: op.to_owned(),
        values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).to_owned()).collect()),
    }
}

fn exprs(reqs: Vec<NodeSelectorRequirement>) -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_expressions: Some(reqs),
        match_fields: None,
    }
}

fn required(terms: Vec<NodeSelectorTerm>) -> Option<Affinity> {
    Some(Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: terms,
            }),
            ..NodeAffinity::default()
        }),
        ..Affinity::default()
    })
}

fn selector(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

fn liqo_runtime_class() -> RuntimeClass {
    RuntimeClass {
        metadata: ObjectMeta {
            name: Some("liqo".to_owned()),
            ..ObjectMeta::default()
        },
        handler: "liqo".to_owned(),
        overhead: None,
        scheduling: Some(Scheduling {
            node_selector: selector(&[("liqo.io/type", "virtual-node")]),
            tolerations: Some(vec![toleration(
                "virtual-node.liqo.io/not-allowed",
                "Exists",
                "NoExecute",
            )]),
        }),
    }
}

fn blocker(spec: &PodSpec, rc: Option<&RuntimeClass>, n: &Node) -> Option<Blocker> {
    Placement::new(spec, rc).blocker(n)
}

fn fails(term: usize, requirement: &str, actual: Option<&str>) -> TermFailure {
    TermFailure::Requirement {
        term,
        requirement: requirement.to_owned(),
        actual: actual.map(str::to_owned),
    }
}

#[test]
fn reasons_come_in_the_order_of_the_spec() {
    let plain = node("n", &[("disk", "ssd")]);
    let all = not_ready(
        cordoned(tainted(plain.clone(), vec![taint("k", "v", "NoSchedule")])),
        "False",
        Some("KubeletNotReady"),
    );
    let pod = PodSpec {
        node_selector: selector(&[("disk", "hdd")]),
        affinity: required(vec![exprs(vec![req("zone", "Exists", &[])])]),
        ..PodSpec::default()
    };
    let not_ready_blocker = Blocker::NotReady {
        status: "False".to_owned(),
        reason: Some("KubeletNotReady".to_owned()),
    };
    let taint_blocker = Blocker::Taint {
        key: "k".to_owned(),
        value: Some("v".to_owned()),
        effect: "NoSchedule".to_owned(),
    };
    let cases = [
        (all.clone(), Some(Blocker::Cordoned)),
        (
            not_ready(
                tainted(plain.clone(), vec![taint("k", "v", "NoSchedule")]),
                "False",
                Some("KubeletNotReady"),
            ),
            Some(not_ready_blocker),
        ),
        (
            tainted(plain.clone(), vec![taint("k", "v", "NoSchedule")]),
            Some(taint_blocker),
        ),
        (
            plain.clone(),
            Some(Blocker::NodeSelector {
                key: "disk".to_owned(),
                wanted: "hdd".to_owned(),
                actual: Some("ssd".to_owned()),
            }),
        ),
        (
            node("n", &[("disk", "hdd")]),
            Some(Blocker::NodeAffinity {
                terms: vec![fails(0, "zone", None)],
            }),
        ),
        (node("n", &[("disk", "hdd"), ("zone", "z1")]), None),
    ];
    for (n, want) in cases {
        assert_eq!(blocker(&pod, None, &n), want, "{n:?}");
    }
}

#[test]
fn cordoned_nodes_take_pods_that_tolerate_unschedulable() {
    let n = cordoned(node("n", &[]));
    let mut pod = PodSpec::default();
    assert_eq!(blocker(&pod, None, &n), Some(Blocker::Cordoned));
    pod.tolerations = Some(vec![toleration(
        "node.kubernetes.io/unschedulable",
        "Exists",
        "NoSchedule",
    )]);
    assert_eq!(blocker(&pod, None, &n), None);
}

#[test]
fn a_node_without_a_ready_condition_is_not_ready() {
    let mut n = node("n", &[]);
    n.status = None;
    assert_eq!(
        blocker(&PodSpec::default(), None, &n),
        Some(Blocker::NotReady {
            status: "Unknown".to_owned(),
            reason: Some("NoReadyCondition".to_owned()),
        })
    );
    let unknown = not_ready(node("n", &[]), "Unknown", None);
    assert_eq!(
        blocker(&PodSpec::default(), None, &unknown),
        Some(Blocker::NotReady {
            status: "Unknown".to_owned(),
            reason: None,
        })
    );
}

#[test]
fn only_no_schedule_and_no_execute_taints_block() {
    let n = |effect: &str| tainted(node("n", &[]), vec![taint("dedicated", "db", effect)]);
    let untolerated = |effect: &str| {
        Some(Blocker::Taint {
            key: "dedicated".to_owned(),
            value: Some("db".to_owned()),
            effect: effect.to_owned(),
        })
    };
    let none = PodSpec::default();
    let with = |t: Toleration| PodSpec {
        tolerations: Some(vec![t]),
        ..PodSpec::default()
    };
    let mut bounded = toleration("dedicated", "Exists", "NoExecute");
    bounded.toleration_seconds = Some(30);
    let cases = [
        (&none, "NoSchedule", untolerated("NoSchedule")),
        (&none, "NoExecute", untolerated("NoExecute")),
        (&none, "PreferNoSchedule", None),
        (
            &with(toleration("dedicated", "Exists", "")),
            "NoSchedule",
            None,
        ),
        (&with(toleration("", "Exists", "")), "NoExecute", None),
        (
            &with(toleration("dedicated", "Exists", "NoSchedule")),
            "NoExecute",
            untolerated("NoExecute"),
        ),
        (&with(bounded), "NoExecute", None),
        (
            &with(toleration("other", "Exists", "")),
            "NoSchedule",
            untolerated("NoSchedule"),
        ),
    ];
    for (pod, effect, want) in cases {
        assert_eq!(blocker(pod, None, &n(effect)), want, "{pod:?} {effect}");
    }
}

#[test]
fn runtime_class_scheduling_is_judged_after_the_pod_own_rules() {
    let rc = liqo_runtime_class();
    let local = node("l1", &[]);
    let virtual_node = tainted(
        node("v1", &[("liqo.io/type", "virtual-node")]),
        vec![taint(
            "virtual-node.liqo.io/not-allowed",
            "true",
            "NoExecute",
        )],
    );
    let mut pod = PodSpec {
        runtime_class_name: Some("liqo".to_owned()),
        ..PodSpec::default()
    };
    let rc_selector = Some(Blocker::RuntimeClass {
        name: "liqo".to_owned(),
        problem: RuntimeClassProblem::NodeSelector {
            key: "liqo.io/type".to_owned(),
            wanted: "virtual-node".to_owned(),
            actual: None,
        },
    });
    // The RuntimeClass's toleration admits the virtual node, its nodeSelector refuses the local one.
    assert_eq!(blocker(&pod, Some(&rc), &virtual_node), None);
    assert_eq!(blocker(&pod, Some(&rc), &local), rc_selector);
    // Stored pods carry the RuntimeClass's nodeSelector: still judged as the RuntimeClass's.
    pod.node_selector = selector(&[("liqo.io/type", "virtual-node")]);
    assert_eq!(blocker(&pod, Some(&rc), &local), rc_selector);
    // A missing RuntimeClass brings no toleration and blocks every node it reaches.
    let missing = Some(Blocker::RuntimeClass {
        name: "liqo".to_owned(),
        problem: RuntimeClassProblem::Missing,
    });
    pod.node_selector = None;
    assert_eq!(blocker(&pod, None, &local), missing);
    let mut other = rc.clone();
    other.metadata.name = Some("other".to_owned());
    assert_eq!(blocker(&pod, Some(&other), &local), missing);
    assert_eq!(
        blocker(&pod, None, &virtual_node),
        Some(Blocker::Taint {
            key: "virtual-node.liqo.io/not-allowed".to_owned(),
            value: Some("true".to_owned()),
            effect: "NoExecute".to_owned(),
        })
    );
}

#[test]
fn clusters_come_from_virtual_nodes_only() {
    let v = node(
        "v",
        &[
            ("liqo.io/type", "virtual-node"),
            ("liqo.io/remote-cluster-id", "r1"),
        ],
    );
    let unnamed = node("u", &[("liqo.io/type", "virtual-node")]);
    let local = node("l", &[("liqo.io/remote-cluster-id", "r1")]);
    assert_eq!((is_virtual(&v), cluster_of(&v)), (true, Some("r1")));
    assert_eq!((is_virtual(&unnamed), cluster_of(&unnamed)), (true, None));
    assert_eq!((is_virtual(&local), cluster_of(&local)), (false, None));
}

#[path = "nodes_tests_affinity.rs"]
mod affinity;
