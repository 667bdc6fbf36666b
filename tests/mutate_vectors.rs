//! SPEC §3 vectors P1–P15: each applies the returned patch to the input pod and compares the
//! whole resulting pod with the expected one, then checks that a second pass changes nothing.

mod common;

use common::*;
use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelector, NodeSelectorTerm, PodAffinity, Toleration,
};
use nsoffload::api::PodOffloadingStrategy::{self, *};

/// c1 and c2 of the spec.
fn cs() -> Vec<NodeSelectorTerm> {
    vec![
        term(&[
            req("region", "In", &["A", "B"]),
            req("provider", "Exists", &[]),
        ]),
        term(&[req("region", "In", &["C"]), req("gpu", "Exists", &[])]),
    ]
}
fn c1() -> Vec<R> {
    vec![
        req("region", "In", &["A", "B"]),
        req("provider", "Exists", &[]),
    ]
}
fn c2() -> Vec<R> {
    vec![req("region", "In", &["C"]), req("gpu", "Exists", &[])]
}
fn p1() -> Vec<R> {
    vec![req("storage", "Exists", &[])]
}
fn p2() -> Vec<R> {
    vec![req("provider", "In", &["aws"])]
}
fn tt() -> Toleration {
    Toleration {
        key: Some("test".into()),
        ..Default::default()
    }
}
fn cat(parts: &[Vec<R>]) -> Vec<R> {
    parts.concat()
}
fn terms_of(list: &[Vec<R>]) -> Vec<NodeSelectorTerm> {
    list.iter().map(|t| term(t)).collect()
}

struct Case {
    strategy: PodOffloadingStrategy,
    cs: Vec<NodeSelectorTerm>,
}

fn remote() -> Case {
    Case {
        strategy: Remote,
        cs: cs(),
    }
}

/// Runs one vector: mutate `before`, apply, compare with `after`, then check idempotency.
fn check(name: &str, case: Case, before: Pod, after: Pod) {
    let got = mutate_and_apply(&before, case.strategy, &case.cs);
    assert_pod_eq(name, &got, &after);
    assert_no_patch(name, &got, case.strategy, &case.cs);
}

#[test]
fn p1_local_changes_nothing() {
    let pod = pod_with(vec![tt()], Some(required(terms_of(&[p1(), p2()]))), None);
    check(
        "P1",
        Case {
            strategy: Local,
            cs: cs(),
        },
        pod.clone(),
        pod,
    );
}

#[test]
fn p2_remote_without_affinity() {
    let after = pod_with(
        vec![tv()],
        Some(required(terms_of(&[
            cat(&[c1(), vec![vin()]]),
            cat(&[c2(), vec![vin()]]),
        ]))),
        None,
    );
    check("P2", remote(), pod_with(vec![], None, None), after);
}

#[test]
fn p3_remote_empty_selector() {
    let after = pod_with(vec![tv()], Some(required(terms_of(&[vec![vin()]]))), None);
    check(
        "P3",
        Case {
            strategy: Remote,
            cs: vec![],
        },
        pod_with(vec![], None, None),
        after,
    );
}

#[test]
fn p4_local_and_remote_without_affinity() {
    let after = pod_with(
        vec![tv()],
        Some(required(terms_of(&[c1(), c2(), vec![vnotin()]]))),
        None,
    );
    check(
        "P4",
        Case {
            strategy: LocalAndRemote,
            cs: cs(),
        },
        pod_with(vec![], None, None),
        after,
    );
}

#[test]
fn p5_local_and_remote_empty_selector_creates_no_affinity() {
    let after = pod_with(vec![tv()], None, None);
    check(
        "P5",
        Case {
            strategy: LocalAndRemote,
            cs: vec![],
        },
        pod_with(vec![], None, None),
        after,
    );
}

#[test]
fn p6_remote_with_pod_terms() {
    let before = pod_with(vec![tt()], Some(required(terms_of(&[p1(), p2()]))), None);
    let want = terms_of(&[
        cat(&[p1(), c1(), vec![vin()]]),
        cat(&[p1(), c2(), vec![vin()]]),
        cat(&[p2(), c1(), vec![vin()]]),
        cat(&[p2(), c2(), vec![vin()]]),
    ]);
    check(
        "P6",
        remote(),
        before,
        pod_with(vec![tt(), tv()], Some(required(want)), None),
    );
}

#[test]
fn p7_local_and_remote_with_pod_terms() {
    let before = pod_with(vec![tt()], Some(required(terms_of(&[p1(), p2()]))), None);
    let want = terms_of(&[
        cat(&[p1(), c1()]),
        cat(&[p1(), c2()]),
        cat(&[p1(), vec![vnotin()]]),
        cat(&[p2(), c1()]),
        cat(&[p2(), c2()]),
        cat(&[p2(), vec![vnotin()]]),
    ]);
    check(
        "P7",
        Case {
            strategy: LocalAndRemote,
            cs: cs(),
        },
        before,
        pod_with(vec![tt(), tv()], Some(required(want)), None),
    );
}

#[test]
fn p8_toleration_added_once() {
    let want = required(terms_of(&[
        cat(&[c1(), vec![vin()]]),
        cat(&[c2(), vec![vin()]]),
    ]));
    check(
        "P8",
        remote(),
        pod_with(vec![tv()], None, None),
        pod_with(vec![tv()], Some(want), None),
    );
}

#[test]
fn p9_runtime_class_restricts_to_selected_clusters() {
    let want = required(terms_of(&[
        cat(&[c1(), vec![vin()]]),
        cat(&[c2(), vec![vin()]]),
    ]));
    check(
        "P9",
        remote(),
        pod_with(vec![], None, Some(RC)),
        pod_with(vec![], Some(want), Some(RC)),
    );
}

#[test]
fn p10_runtime_class_with_empty_selector_changes_nothing() {
    let pod = pod_with(vec![], None, Some(RC));
    check(
        "P10",
        Case {
            strategy: Remote,
            cs: vec![],
        },
        pod.clone(),
        pod,
    );
}

#[test]
fn p11_other_runtime_class_is_treated_normally() {
    let after = pod_with(
        vec![tv()],
        Some(required(terms_of(&[c1(), c2(), vec![vnotin()]]))),
        Some("other"),
    );
    check(
        "P11",
        Case {
            strategy: LocalAndRemote,
            cs: cs(),
        },
        pod_with(vec![], None, Some("other")),
        after,
    );
}

#[test]
fn p12_match_fields_are_kept() {
    let pinned = || NodeSelectorTerm {
        match_expressions: None,
        match_fields: Some(vec![req("metadata.name", "In", &["n1"])]),
    };
    let before = pod_with(vec![], Some(required(vec![pinned()])), None);
    let mut want = pinned();
    want.match_expressions = Some(vec![vin()]);
    check(
        "P12",
        Case {
            strategy: Remote,
            cs: vec![],
        },
        before,
        pod_with(vec![tv()], Some(required(vec![want])), None),
    );
}

#[test]
fn p13_pod_affinity_is_untouched() {
    let pod_affinity = PodAffinity {
        required_during_scheduling_ignored_during_execution: Some(vec![Default::default()]),
        ..Default::default()
    };
    let before = pod_with(vec![], None, None).with_affinity(Affinity {
        pod_affinity: Some(pod_affinity.clone()),
        ..Default::default()
    });
    let mut want = required(terms_of(&[
        cat(&[c1(), vec![vin()]]),
        cat(&[c2(), vec![vin()]]),
    ]));
    want.pod_affinity = Some(pod_affinity);
    check(
        "P13",
        remote(),
        before,
        pod_with(vec![tv()], Some(want), None),
    );
}

#[test]
fn p14_required_with_zero_terms() {
    let empty = Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![],
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let want = required(terms_of(&[
        cat(&[c1(), vec![vin()]]),
        cat(&[c2(), vec![vin()]]),
    ]));
    check(
        "P14",
        remote(),
        pod_with(vec![], Some(empty), None),
        pod_with(vec![tv()], Some(want), None),
    );
}

#[test]
fn p15_in_appears_once_per_term() {
    let before = pod_with(
        vec![],
        Some(required(terms_of(&[cat(&[p1(), vec![vin()]])]))),
        None,
    );
    let want = terms_of(&[
        cat(&[p1(), vec![vin()], c1()]),
        cat(&[p1(), vec![vin()], c2()]),
    ]);
    check(
        "P15",
        remote(),
        before,
        pod_with(vec![tv()], Some(required(want)), None),
    );
}
