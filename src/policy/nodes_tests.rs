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
fn node_selector_names_the_key_and_both_values() {
    let pod = PodSpec {
        node_selector: selector(&[("a", "1"), ("b", "2")]),
        ..PodSpec::default()
    };
    let cases = [
        (node("n", &[("a", "1"), ("b", "2")]), None),
        (
            node("n", &[("a", "1")]),
            Some(Blocker::NodeSelector {
                key: "b".to_owned(),
                wanted: "2".to_owned(),
                actual: None,
            }),
        ),
        (
            node("n", &[("a", "0")]),
            Some(Blocker::NodeSelector {
                key: "a".to_owned(),
                wanted: "1".to_owned(),
                actual: Some("0".to_owned()),
            }),
        ),
    ];
    for (n, want) in cases {
        assert_eq!(blocker(&pod, None, &n), want, "{n:?}");
    }
}

#[test]
fn every_operator_follows_the_scheduler() {
    let n = node("n1", &[("region", "eu"), ("cores", "8"), ("tier", "gold")]);
    let one = |r: NodeSelectorRequirement| PodSpec {
        affinity: required(vec![exprs(vec![r])]),
        ..PodSpec::default()
    };
    let cases = [
        (req("region", "In", &["eu", "us"]), None),
        (
            req("region", "In", &["us"]),
            Some(fails(0, "region=us", Some("eu"))),
        ),
        (req("region", "NotIn", &["us"]), None),
        (req("absent", "NotIn", &["x"]), None),
        (
            req("region", "NotIn", &["eu"]),
            Some(fails(0, "region!=eu", Some("eu"))),
        ),
        (req("region", "Exists", &[]), None),
        (req("gpu", "Exists", &[]), Some(fails(0, "gpu", None))),
        (req("gpu", "DoesNotExist", &[]), None),
        (
            req("region", "DoesNotExist", &[]),
            Some(fails(0, "!region", Some("eu"))),
        ),
        (req("cores", "Gt", &["4"]), None),
        (
            req("cores", "Gt", &["8"]),
            Some(fails(0, "cores>8", Some("8"))),
        ),
        (req("cores", "Lt", &["9"]), None),
        (
            req("cores", "Lt", &["8"]),
            Some(fails(0, "cores<8", Some("8"))),
        ),
        // A label value that is not an integer never matches Gt or Lt.
        (
            req("tier", "Gt", &["1"]),
            Some(fails(0, "tier>1", Some("gold"))),
        ),
        (
            req("tier", "Lt", &["1"]),
            Some(fails(0, "tier<1", Some("gold"))),
        ),
        (
            req("absent", "Lt", &["1"]),
            Some(fails(0, "absent<1", None)),
        ),
    ];
    for (r, want) in cases {
        let want = want.map(|f| Blocker::NodeAffinity { terms: vec![f] });
        assert_eq!(blocker(&one(r.clone()), None, &n), want, "{r:?}");
    }
}

#[test]
fn terms_are_ored_and_each_failing_term_is_named() {
    let n = node("n1", &[("region", "eu"), ("gpu", "yes")]);
    let fields = |op: &str, name: &str| NodeSelectorTerm {
        match_expressions: None,
        match_fields: Some(vec![req("metadata.name", op, &[name])]),
    };
    let pod = |terms| PodSpec {
        affinity: required(terms),
        ..PodSpec::default()
    };
    let failing = pod(vec![
        exprs(vec![
            req("region", "In", &["eu"]),
            req("gpu", "In", &["no"]),
        ]),
        fields("In", "n2"),
        NodeSelectorTerm::default(),
        exprs(vec![req("region", "Bogus", &["eu"])]),
        fields("NotIn", "n1"),
    ]);
    let Some(Blocker::NodeAffinity { terms }) = blocker(&failing, None, &n) else {
        panic!("expected a node-affinity blocker");
    };
    assert_eq!(
        terms,
        vec![
            fails(0, "gpu=no", Some("yes")),
            fails(1, "metadata.name=n2", Some("n1")),
            TermFailure::Empty { term: 2 },
            TermFailure::Invalid {
                term: 3,
                message: "nodeSelectorTerms[3].matchExpressions[0].operator: unknown operator \
                          \"Bogus\" (allowed operators: In, NotIn, Exists, DoesNotExist, Gt, Lt)"
                    .to_owned(),
            },
            fails(4, "metadata.name!=n1", Some("n1")),
        ]
    );
    // One matching term is enough, even beside empty and invalid ones.
    let ok = pod(vec![
        NodeSelectorTerm::default(),
        exprs(vec![req("region", "Bogus", &["eu"])]),
        fields("In", "n1"),
    ]);
    assert_eq!(blocker(&ok, None, &n), None);
    // A required affinity with zero terms matches no node.
    assert_eq!(
        blocker(&pod(vec![]), None, &n),
        Some(Blocker::NodeAffinity { terms: vec![] })
    );
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
