//! Manifests of the SPEC §3 vectors P1–P15 under every strategy: the webhook's outcome, the
//! node results and the verdict, compared whole.

use super::*;

const C1: &str = "region in (A,B),provider";
const C2: &str = "region=C,gpu";
const IN: &str = "liqo.io/type=virtual-node";
const NOT_IN: &str = "liqo.io/type!=virtual-node";

fn cs() -> Vec<NodeSelectorTerm> {
    vec![c1(), c2()]
}

fn p1p2() -> Value {
    json!({"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "storage", "operator": "Exists"}]},
        {"matchExpressions": [{"key": "provider", "operator": "In", "values": ["aws"]}]}
    ]})
}

fn tt() -> Value {
    json!({"key": "test"})
}

fn required(terms: Value) -> Value {
    json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": terms}})
}

/// Local nodes miss c1's and c2's region.
fn local_misses_cs() -> Option<Blocker> {
    affinity(vec![
        fails(0, "region in (A,B)", None),
        fails(1, "region=C", None),
    ])
}

#[test]
fn p_vectors_admission_and_verdict() {
    let all = may_run(&[
        (None, &["l1", "l2"]),
        (Some("r1"), &["v1"]),
        (Some("r2"), &["v2"]),
    ]);
    let remote = may_run(&[(Some("r1"), &["v1"]), (Some("r2"), &["v2"])]);
    let c_in = || texts(&[&format!("{C1},{IN}"), &format!("{C2},{IN}")]);
    let mut rc_world = world(Some(ready(Remote, cs())));
    rc_world.rc = Some(liqo_rc());
    let mut rc_empty_world = world(Some(ready(Remote, vec![])));
    rc_empty_world.rc = Some(liqo_rc());
    let mut other_rc_world = world(Some(ready(LocalAndRemote, cs())));
    other_rc_world.rc = Some(runtime_class("other", None));
    let cases: Vec<(&str, World, Value, Admission, super::super::Verdict)> = vec![
        (
            "P1",
            world(Some(ready(Local, cs()))),
            pod(json!({"tolerations": [tt()], "affinity": required(p1p2())})),
            Admission::NotCalled,
            no_node(Change::ChangeStrategy { to: LocalAndRemote }),
        ),
        (
            "P2",
            world(Some(ready(Remote, cs()))),
            pod(json!({})),
            admitted(true, true, c_in()),
            remote.clone(),
        ),
        (
            "P3",
            world(Some(ready(Remote, vec![]))),
            pod(json!({})),
            admitted(true, true, texts(&[IN])),
            remote.clone(),
        ),
        (
            "P4",
            world(Some(ready(LocalAndRemote, cs()))),
            pod(json!({})),
            admitted(true, true, texts(&[C1, C2, NOT_IN])),
            all.clone(),
        ),
        (
            "P5",
            world(Some(ready(LocalAndRemote, vec![]))),
            pod(json!({})),
            admitted(true, false, None),
            all.clone(),
        ),
        (
            "P6",
            world(Some(ready(Remote, cs()))),
            pod(json!({"tolerations": [tt()], "affinity": required(p1p2())})),
            admitted(
                true,
                true,
                texts(&[
                    &format!("storage,{C1},{IN}"),
                    &format!("storage,{C2},{IN}"),
                    &format!("provider=aws,{C1},{IN}"),
                    &format!("provider=aws,{C2},{IN}"),
                ]),
            ),
            may_run(&[(Some("r1"), &["v1"])]),
        ),
        (
            "P7",
            world(Some(ready(LocalAndRemote, cs()))),
            pod(json!({"tolerations": [tt()], "affinity": required(p1p2())})),
            admitted(
                true,
                true,
                texts(&[
                    &format!("storage,{C1}"),
                    &format!("storage,{C2}"),
                    &format!("storage,{NOT_IN}"),
                    &format!("provider=aws,{C1}"),
                    &format!("provider=aws,{C2}"),
                    &format!("provider=aws,{NOT_IN}"),
                ]),
            ),
            may_run(&[(Some("r1"), &["v1"])]),
        ),
        (
            "P8",
            world(Some(ready(Remote, cs()))),
            pod(json!({"tolerations": [tv()]})),
            admitted(false, true, c_in()),
            remote.clone(),
        ),
        (
            "P9",
            rc_world,
            pod(json!({"runtimeClassName": "liqo"})),
            admitted(false, true, c_in()),
            remote.clone(),
        ),
        (
            "P10",
            rc_empty_world,
            pod(json!({"runtimeClassName": "liqo"})),
            admitted(false, false, None),
            remote.clone(),
        ),
        (
            "P11",
            other_rc_world,
            pod(json!({"runtimeClassName": "other"})),
            admitted(true, true, texts(&[C1, C2, NOT_IN])),
            all.clone(),
        ),
        (
            "P12",
            world(Some(ready(Remote, vec![]))),
            pod(json!({"affinity": required(json!({"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["v1"]}]}
            ]}))})),
            admitted(true, true, texts(&[&format!("{IN},metadata.name=v1")])),
            may_run(&[(Some("r1"), &["v1"])]),
        ),
        (
            "P13",
            world(Some(ready(Remote, cs()))),
            pod(
                json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}
                ]}}}),
            ),
            admitted(true, true, c_in()),
            remote.clone(),
        ),
        (
            "P14",
            world(Some(ready(Remote, cs()))),
            pod(json!({"affinity": required(json!({"nodeSelectorTerms": []}))})),
            admitted(true, true, c_in()),
            remote.clone(),
        ),
        (
            "P15",
            world(Some(ready(Remote, cs()))),
            pod(json!({"affinity": required(json!({"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "liqo.io/type", "operator": "In", "values": ["virtual-node"]}]}
            ]}))})),
            admitted(
                true,
                true,
                texts(&[&format!("{IN},{C1}"), &format!("{IN},{C2}")]),
            ),
            remote,
        ),
    ];
    for (name, w, p, admission, verdict) in cases {
        let e = w.manifest(&p);
        assert_eq!((&e.admission, &e.verdict), (&admission, &verdict), "{name}");
        assert_eq!(
            e.may_run(),
            matches!(verdict, super::super::Verdict::MayRun { .. }),
            "{name}"
        );
    }
}

#[test]
fn remote_pods_name_each_failing_term_on_local_nodes() {
    let e = world(Some(ready(Remote, cs()))).manifest(&pod(json!({})));
    assert_eq!(
        blockers(&e),
        vec![
            ("l1", local_misses_cs()),
            ("l2", local_misses_cs()),
            ("v1", None),
            ("v2", None),
        ]
    );
}

#[test]
fn p1_under_local_keeps_the_pod_off_virtual_nodes() {
    let p = pod(json!({"tolerations": [tt()], "affinity": required(p1p2())}));
    let e = world(Some(ready(Local, cs()))).manifest(&p);
    let local = affinity(vec![
        fails(0, "storage", None),
        fails(1, "provider=aws", None),
    ]);
    assert_eq!(
        blockers(&e),
        vec![
            ("l1", local.clone()),
            ("l2", local),
            ("v1", tv_taint()),
            ("v2", tv_taint())
        ]
    );
}

#[test]
fn p6_each_product_term_names_its_first_failure() {
    let p = pod(json!({"tolerations": [tt()], "affinity": required(p1p2())}));
    let e = world(Some(ready(Remote, cs()))).manifest(&p);
    let local = affinity(vec![
        fails(0, "storage", None),
        fails(1, "storage", None),
        fails(2, "provider=aws", None),
        fails(3, "provider=aws", None),
    ]);
    assert_eq!(
        blockers(&e),
        vec![
            ("l1", local.clone()),
            ("l2", local.clone()),
            ("v1", None),
            ("v2", local)
        ]
    );
}

#[test]
fn p12_match_fields_names_the_node() {
    let p = pod(json!({"affinity": required(json!({"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["v1"]}]}
    ]}))}));
    let e = world(Some(ready(Remote, vec![]))).manifest(&p);
    let local = affinity(vec![fails(0, IN, None)]);
    assert_eq!(
        blockers(&e),
        vec![
            ("l1", local.clone()),
            ("l2", local),
            ("v1", None),
            (
                "v2",
                affinity(vec![fails(0, "metadata.name=v1", Some("v2"))])
            ),
        ]
    );
}

#[test]
fn runtime_class_pods_are_kept_off_local_nodes_by_the_runtime_class() {
    let mut w = world(Some(ready(Remote, vec![])));
    w.rc = Some(liqo_rc());
    let e = w.manifest(&pod(json!({"runtimeClassName": "liqo"})));
    let rc = Some(Blocker::RuntimeClass {
        name: "liqo".to_owned(),
        problem: RuntimeClassProblem::NodeSelector {
            key: "liqo.io/type".to_owned(),
            wanted: "virtual-node".to_owned(),
            actual: None,
        },
    });
    assert_eq!(
        blockers(&e),
        vec![("l1", rc.clone()), ("l2", rc), ("v1", None), ("v2", None)]
    );
    // The RuntimeClass does not exist: the pod could not run anywhere.
    w.rc = None;
    let e = w.manifest(&pod(json!({"runtimeClassName": "liqo"})));
    let missing = Some(Blocker::RuntimeClass {
        name: "liqo".to_owned(),
        problem: RuntimeClassProblem::Missing,
    });
    assert_eq!(
        blockers(&e),
        vec![
            ("l1", missing.clone()),
            ("l2", missing),
            ("v1", tv_taint()),
            ("v2", tv_taint())
        ]
    );
    assert_eq!(
        e.verdict,
        no_node(Change::CreateRuntimeClass {
            name: "liqo".to_owned()
        })
    );
}

#[test]
fn the_whole_explanation_as_json() {
    // r1 selected and ready, r2 not selected; the pod asks for a GPU, which only r2 has.
    let w = world(Some(nsoff(
        LocalAndRemote,
        vec![c1()],
        Some(Ready),
        &[("r1", "True", "NamespaceCreated", "")],
    )));
    let e = w.manifest(&pod(json!({"nodeSelector": {"gpu": "true"}})));
    let gpu = json!({"kind": "nodeSelector", "key": "gpu", "wanted": "true", "actual": null});
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!({
            "namespace": "shop",
            "pod": "web",
            "boundTo": null,
            "offloading": {
                "schedulingEnabled": true,
                "exists": true,
                "terminating": false,
                "strategy": "LocalAndRemote",
                "selector": [C1],
                "selectorError": null,
                "phase": "Ready",
                "stale": false,
                "clusters": [
                    {"cluster": "r1", "selected": true, "twin": {"state": "ready"}},
                    {"cluster": "r2", "selected": false, "twin": {"state": "absent"}}
                ]
            },
            "admission": {
                "outcome": "admitted",
                "tolerationAdded": true,
                "affinityChanged": true,
                "requiredAffinity": [C1, NOT_IN]
            },
            "nodes": [
                {"name": "l1", "virtualNode": false, "cluster": null, "mayRun": false, "blocker": gpu},
                {"name": "l2", "virtualNode": false, "cluster": null, "mayRun": false, "blocker": gpu},
                {"name": "v1", "virtualNode": true, "cluster": "r1", "mayRun": false, "blocker": gpu},
                {"name": "v2", "virtualNode": true, "cluster": "r2", "mayRun": false, "blocker": {
                    "kind": "nodeAffinity",
                    "terms": [
                        {"kind": "requirement", "term": 0, "requirement": "region in (A,B)", "actual": "C"},
                        {"kind": "requirement", "term": 1, "requirement": NOT_IN, "actual": "virtual-node"}
                    ]
                }}
            ],
            "verdict": {
                "result": "noNode",
                "change": {"change": "widenSelector", "clusters": ["r2"]},
                "thenRecreate": false
            }
        })
    );
    assert!(!e.may_run());
}

#[test]
fn a_pod_that_is_not_an_object_is_an_error() {
    let w = world(Some(ready(Remote, vec![])));
    let err = explain(&Inputs {
        namespace: NS,
        subject: Subject::Manifest(&json!(["pod"])),
        offloading: w.nsoff.as_ref(),
        scheduling_enabled: true,
        nodes: &w.nodes,
        runtime_class: None,
        webhook_runtime_class: "liqo",
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read the pod: invalid type"),
        "{err}"
    );
}
