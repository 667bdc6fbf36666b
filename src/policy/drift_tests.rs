//! SPEC §12's rules as tables: each rule under each strategy, RuntimeClass pods, unbound pods
//! judged by the webhook's mutation, finished and deleting pods ignored.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

use super::*;
use crate::api::NamespaceOffloadingSpec;
use crate::policy::mutate::mutate_json;

const RC: &str = "liqo";

fn spec(strategy: &str, selector: Value) -> NamespaceOffloadingSpec {
    let mut s = json!({"podOffloadingStrategy": strategy});
    if !selector.is_null() {
        s["clusterSelector"] = json!({"nodeSelectorTerms": selector});
    }
    serde_json::from_value(s).expect("spec")
}

fn pod(spec: Value) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).expect("pod")
}

fn bound(node: &str) -> Pod {
    pod(json!({"containers": [], "nodeName": node}))
}

fn bound_with_class(node: &str) -> Pod {
    pod(json!({"containers": [], "nodeName": node, "runtimeClassName": RC}))
}

/// `vk-<id>` is a virtual node of cluster `<id>`, `vk-anon` one without an id; the rest are
/// local nodes.
fn kind(node: &str) -> NodeKind {
    match node.strip_prefix("vk-") {
        Some("anon") => NodeKind::Virtual(None),
        Some(id) => NodeKind::Virtual(Some(id.to_owned())),
        None => NodeKind::Local,
    }
}

fn judge(pod: &Pod, strategy: &str, selected: &[&str]) -> Option<Violation> {
    let spec = spec(strategy, Value::Null);
    let selected: BTreeSet<String> = selected.iter().map(|s| s.to_string()).collect();
    let policy = CurrentPolicy {
        spec: &spec,
        selected: &selected,
        runtime_class: RC,
    };
    violation(pod, &policy, kind)
}

fn local_under_remote(node: &str) -> Option<Violation> {
    Some(Violation::LocalNodeWhileRemote {
        node: node.to_owned(),
    })
}

fn virtual_under_local(id: &str) -> Option<Violation> {
    Some(Violation::VirtualNodeWhileLocal {
        node: format!("vk-{id}"),
        cluster: Some(id.to_owned()),
    })
}

fn unselected(id: &str) -> Option<Violation> {
    Some(Violation::UnselectedCluster {
        node: format!("vk-{id}"),
        cluster: Some(id.to_owned()),
    })
}

/// (strategy, node, selected clusters, with the RuntimeClass, expected)
type Case = (
    &'static str,
    &'static str,
    &'static [&'static str],
    bool,
    Option<Violation>,
);

#[test]
fn bound_pods_by_strategy_and_selection() {
    let cases: Vec<Case> = vec![
        ("LocalAndRemote", "worker-1", &["r1"], false, None),
        ("LocalAndRemote", "vk-r1", &["r1"], false, None),
        ("LocalAndRemote", "vk-r2", &["r1"], false, unselected("r2")),
        ("LocalAndRemote", "vk-r2", &["r1"], true, unselected("r2")),
        (
            "Remote",
            "worker-1",
            &["r1"],
            false,
            local_under_remote("worker-1"),
        ),
        (
            "Remote",
            "worker-1",
            &["r1"],
            true,
            local_under_remote("worker-1"),
        ),
        ("Remote", "vk-r1", &["r1"], false, None),
        ("Remote", "vk-r2", &["r1"], false, unselected("r2")),
        ("Local", "worker-1", &["r1"], false, None),
        ("Local", "vk-r1", &["r1"], false, virtual_under_local("r1")),
        // A RuntimeClass pod may run on a selected cluster whatever the strategy (SPEC §3.2).
        ("Local", "vk-r1", &["r1"], true, None),
        ("Local", "vk-r2", &["r1"], true, unselected("r2")),
        // No cluster selected: every virtual node is out.
        ("LocalAndRemote", "vk-r1", &[], false, unselected("r1")),
    ];
    for (strategy, node, selected, class, want) in cases {
        let p = if class {
            bound_with_class(node)
        } else {
            bound(node)
        };
        assert_eq!(
            judge(&p, strategy, selected),
            want,
            "{strategy} on {node}, selected {selected:?}, RuntimeClass {class}"
        );
    }
}

#[test]
fn a_virtual_node_without_a_cluster_id_is_never_selected() {
    let got = judge(&bound("vk-anon"), "LocalAndRemote", &["r1"]);
    assert_eq!(
        got,
        Some(Violation::UnselectedCluster {
            node: "vk-anon".to_owned(),
            cluster: None
        })
    );
}

#[test]
fn finished_and_deleting_pods_are_ignored() {
    for phase in ["Succeeded", "Failed"] {
        let mut p = bound("worker-1");
        p.status = Some(serde_json::from_value(json!({"phase": phase})).unwrap());
        assert!(is_settled(&p));
        assert_eq!(judge(&p, "Remote", &["r1"]), None, "{phase}");
    }
    let mut running = bound("worker-1");
    running.status = Some(serde_json::from_value(json!({"phase": "Running"})).unwrap());
    assert!(!is_settled(&running));
    assert!(judge(&running, "Remote", &["r1"]).is_some());
    let mut deleting = bound("vk-r1");
    deleting.metadata.deletion_timestamp =
        Some(serde_json::from_value(json!("2026-12-05T10:00:00Z")).expect("time"));
    assert_eq!(judge(&deleting, "Local", &["r1"]), None);
}

#[test]
fn unbound_pods_are_judged_by_the_mutation_they_lack() {
    let bare = pod(json!({"containers": []}));
    for strategy in ["Remote", "LocalAndRemote"] {
        let got = judge(&bare, strategy, &["r1"]);
        assert!(
            matches!(
                got,
                Some(Violation::MissingMutation {
                    toleration: true,
                    ..
                })
            ),
            "{strategy}: {got:?}"
        );
    }
    // The Local policy gives nothing, so nothing is missing.
    assert_eq!(judge(&bare, "Local", &[]), None);
    // A pod mutated under the current policy lacks nothing.
    for (strategy, selector) in [
        ("Remote", Value::Null),
        ("LocalAndRemote", Value::Null),
        (
            "Remote",
            json!([{"matchExpressions": [{"key": "region", "operator": "In", "values": ["eu"]}]}]),
        ),
    ] {
        let spec = spec(strategy, selector);
        let mutated = mutated(json!({"containers": []}), &spec);
        let policy = CurrentPolicy {
            spec: &spec,
            selected: &BTreeSet::new(),
            runtime_class: RC,
        };
        assert_eq!(violation(&mutated, &policy, kind), None, "{strategy}");
    }
}

/// The pod as the webhook would store it under `spec`.
fn mutated(pod_spec: Value, spec: &NamespaceOffloadingSpec) -> Pod {
    let mut json = json!({"metadata": {"name": "p"}, "spec": pod_spec});
    let ops =
        mutate_json(&json, &crate::policy::mutate::PodPolicy::new(spec), RC).expect("mutation");
    json_patch::patch(&mut json, &json_patch::Patch(ops)).expect("patch");
    serde_json::from_value(json).expect("pod")
}

#[test]
fn an_unbound_pod_mutated_under_an_older_selector_lacks_the_new_affinity() {
    let eu = json!([{"matchExpressions": [{"key": "region", "operator": "In", "values": ["eu"]}]}]);
    let us = json!([{"matchExpressions": [{"key": "region", "operator": "In", "values": ["us"]}]}]);
    let old = mutated(json!({"containers": []}), &spec("Remote", eu));
    let now = spec("Remote", us);
    let policy = CurrentPolicy {
        spec: &now,
        selected: &BTreeSet::new(),
        runtime_class: RC,
    };
    assert_eq!(
        violation(&old, &policy, kind),
        Some(Violation::MissingMutation {
            toleration: false,
            affinity: true
        })
    );
}

#[test]
fn an_unbound_pod_under_a_selector_that_selects_nothing_is_not_judged() {
    // The webhook refuses such pods under Remote (the gate denies them), so none is missing.
    let invalid =
        json!([{"matchExpressions": [{"key": "region", "operator": "Gt", "values": ["x"]}]}]);
    let spec = spec("Remote", invalid);
    let policy = CurrentPolicy {
        spec: &spec,
        selected: &BTreeSet::new(),
        runtime_class: RC,
    };
    assert_eq!(
        violation(&pod(json!({"containers": []})), &policy, kind),
        None
    );
}

#[test]
fn unbound_runtime_class_pods_lack_only_the_affinity() {
    let eu = json!([{"matchExpressions": [{"key": "region", "operator": "In", "values": ["eu"]}]}]);
    let spec = spec("LocalAndRemote", eu);
    let policy = CurrentPolicy {
        spec: &spec,
        selected: &BTreeSet::new(),
        runtime_class: RC,
    };
    let p = pod(json!({"containers": [], "runtimeClassName": RC}));
    assert_eq!(
        violation(&p, &policy, kind),
        Some(Violation::MissingMutation {
            toleration: false,
            affinity: true
        })
    );
    // Without a selector, a RuntimeClass pod gets nothing.
    let open = self::spec("Remote", Value::Null);
    let policy = CurrentPolicy {
        spec: &open,
        ..policy
    };
    assert_eq!(violation(&p, &policy, kind), None);
}

#[test]
fn messages_say_where_and_why() {
    let cases = [
        (
            virtual_under_local("r1").unwrap(),
            "runs on virtual node vk-r1 (cluster r1), but the strategy is Local",
        ),
        (
            local_under_remote("worker-1").unwrap(),
            "runs on local node worker-1, but the strategy is Remote",
        ),
        (
            unselected("r2").unwrap(),
            "runs on virtual node vk-r2 (cluster r2), which the cluster selector does not select",
        ),
        (
            Violation::MissingMutation {
                toleration: true,
                affinity: true,
            },
            "is not scheduled and lacks the virtual-node toleration and the node affinity the \
             policy gives pods now",
        ),
    ];
    for (v, text) in cases {
        assert_eq!(v.to_string(), text);
    }
}

#[test]
fn controllers_from_owner_references() {
    let owned = |kind: &str, controller: Option<bool>| {
        let mut p = bound("worker-1");
        p.metadata.owner_references = Some(vec![serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": kind, "name": "owner", "uid": "u",
            "controller": controller,
        }))
        .expect("owner")]);
        p
    };
    assert_eq!(
        controller(&owned("ReplicaSet", Some(true))),
        Controller::Workload {
            kind: "ReplicaSet".to_owned(),
            name: "owner".to_owned()
        }
    );
    assert_eq!(
        controller(&owned("DaemonSet", Some(true))),
        Controller::DaemonSet {
            name: "owner".to_owned()
        }
    );
    // An owner that is not the controller brings nothing back.
    assert_eq!(controller(&owned("ReplicaSet", None)), Controller::None);
    assert_eq!(controller(&bound("worker-1")), Controller::None);
}
