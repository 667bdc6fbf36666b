//! SPEC §3, first paragraph: a cluster selector that slipped past validation (created before
//! the webhook was installed) selects **no** cluster, and the mutation never widens what it
//! allows. The webhook's gate and mutation and the reconciler's selection must agree.
//!
//! Vectors (`Tv` the virtual-node toleration, `NotIn` = `liqo.io/type NotIn [virtual-node]`):
//!
//! | # | S | clusterSelector | pod | webhook | reconciler |
//! |---|---|---|---|---|---|
//! | S1 | LocalAndRemote | one empty term | plain | [Tv], required [[NotIn]] | nothing selected |
//! | S2 | LocalAndRemote | `region Exists [eu]` (invalid) | plain | [Tv], required [[NotIn]] | nothing selected |
//! | S3 | LocalAndRemote | an empty term and a valid one | required [p1] | [Tv], required [p1+NotIn] | nothing selected |
//! | S4 | Remote | one empty term | plain | denied by the gate | nothing selected |
//! | S5 | Remote | `region In []` (invalid) | plain | denied by the gate | nothing selected |
//! | S6 | LocalAndRemote | invalid | runtimeClassName = RC | denied (could never run) | nothing selected |
//! | S7 | Local | invalid | plain | unchanged | nothing selected |

mod common;

use std::collections::BTreeMap;

use common::*;
use k8s_openapi::api::core::v1::{NodeSelectorTerm, Toleration};
use nsoffload::api::PodOffloadingStrategy::{self, *};
use nsoffload::api::{NamespaceOffloading, NamespaceOffloadingStatus, OffloadingPhase};
use nsoffload::policy::gate::gate;
use nsoffload::policy::mutate::mutate_json;
use nsoffload::policy::Verdict;
use nsoffload::reconcile::select::select;
use serde_json::Value;

fn empty_term() -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_expressions: Some(vec![]),
        match_fields: None,
    }
}

fn exists_with_values() -> Vec<NodeSelectorTerm> {
    vec![term(&[req("region", "Exists", &["eu"])])]
}

fn in_without_values() -> Vec<NodeSelectorTerm> {
    vec![term(&[req("region", "In", &[])])]
}

fn p1() -> Vec<R> {
    vec![req("storage", "Exists", &[])]
}

fn nsoff(strategy: PodOffloadingStrategy, cs: &[NodeSelectorTerm]) -> NamespaceOffloading {
    let spec = serde_json::from_value(serde_json::json!({
        "podOffloadingStrategy": strategy,
        "clusterSelector": {"nodeSelectorTerms": cs},
    }))
    .unwrap();
    let mut o = NamespaceOffloading::new("offloading", spec);
    // Processed, and even Ready: the webhook must not trust the phase alone.
    o.status = Some(NamespaceOffloadingStatus {
        offloading_phase: Some(OffloadingPhase::Ready),
        ..Default::default()
    });
    o
}

/// The reconciler's selection over two clusters whose virtual nodes carry `region=eu`.
fn reconciler_selects_nothing(strategy: PodOffloadingStrategy, cs: &[NodeSelectorTerm]) {
    let labels = |id: &str| {
        BTreeMap::from([
            ("liqo.io/type".to_owned(), "virtual-node".to_owned()),
            ("region".to_owned(), "eu".to_owned()),
            ("liqo.io/remote-cluster-id".to_owned(), id.to_owned()),
        ])
    };
    let clusters = ["r1", "r2"]
        .into_iter()
        .map(|id| (id.to_owned(), vec![(format!("vk-{id}"), labels(id))]))
        .collect();
    let selection = select(&nsoff(strategy, cs).spec, &clusters);
    assert!(selection.selected.is_empty(), "{selection:?}");
}

fn plain() -> Pod {
    pod_with(vec![], None, None)
}

fn mutated(strategy: PodOffloadingStrategy, cs: &[NodeSelectorTerm], pod: &Pod) -> Value {
    let got = mutate_and_apply(pod, strategy, cs);
    assert_no_patch("second pass", &got, strategy, cs);
    got
}

fn refused(strategy: PodOffloadingStrategy, cs: &[NodeSelectorTerm], pod: &Pod) -> String {
    let json = serde_json::to_value(pod).unwrap();
    mutate_json(&json, &policy(strategy, cs), RC).expect_err("refused")
}

fn local_only(tolerations: Vec<Toleration>, extra: Vec<R>) -> Pod {
    let mut reqs = extra;
    reqs.push(vnotin());
    pod_with(tolerations, Some(required(vec![term(&reqs)])), None)
}

#[test]
fn s1_an_empty_term_keeps_local_and_remote_pods_local() {
    let cs = [empty_term()];
    let got = mutated(LocalAndRemote, &cs, &plain());
    assert_pod_eq("S1", &got, &local_only(vec![tv()], vec![]));
    assert_eq!(
        gate("shop", Some(&nsoff(LocalAndRemote, &cs))),
        Verdict::allow()
    );
    reconciler_selects_nothing(LocalAndRemote, &cs);
}

#[test]
fn s2_an_invalid_selector_keeps_local_and_remote_pods_local() {
    let cs = exists_with_values();
    let got = mutated(LocalAndRemote, &cs, &plain());
    assert_pod_eq("S2", &got, &local_only(vec![tv()], vec![]));
    reconciler_selects_nothing(LocalAndRemote, &cs);
}

#[test]
fn s3_a_valid_term_beside_an_empty_one_does_not_widen() {
    let cs = [empty_term(), term(&[req("region", "In", &["eu"])])];
    let pod = pod_with(vec![], Some(required(vec![term(&p1())])), None);
    let got = mutated(LocalAndRemote, &cs, &pod);
    assert_pod_eq("S3", &got, &local_only(vec![tv()], p1()));
    reconciler_selects_nothing(LocalAndRemote, &cs);
}

#[test]
fn s4_s5_remote_pods_are_denied_by_the_gate() {
    for (name, cs) in [("S4", vec![empty_term()]), ("S5", in_without_values())] {
        let Verdict::Deny(message) = gate("shop", Some(&nsoff(Remote, &cs))) else {
            panic!("{name}: the gate admitted a Remote pod with a selector selecting nothing");
        };
        assert!(message.contains("clusterSelector"), "{name}: {message}");
        assert!(message.contains("invalid"), "{name}: {message}");
        // Fail closed even past the gate: the mutation refuses too.
        assert!(refused(Remote, &cs, &plain()).contains("selects no remote cluster"));
        reconciler_selects_nothing(Remote, &cs);
    }
}

#[test]
fn s6_runtime_class_pods_are_denied_when_no_cluster_is_selected() {
    let cs = exists_with_values();
    let pod = pod_with(vec![], None, Some(RC));
    let message = refused(LocalAndRemote, &cs, &pod);
    assert!(message.contains("RuntimeClass"), "{message}");
    assert!(message.contains("selects no remote cluster"), "{message}");
    // A pod of another RuntimeClass is an ordinary LocalAndRemote pod (S2).
    let other = pod_with(vec![], None, Some("other"));
    let got = mutated(LocalAndRemote, &cs, &other);
    let mut want = local_only(vec![tv()], vec![]);
    want.spec.as_mut().unwrap().runtime_class_name = Some("other".to_owned());
    assert_pod_eq("S6 (other RuntimeClass)", &got, &want);
}

#[test]
fn s7_local_changes_nothing_whatever_the_selector() {
    let cs = exists_with_values();
    let got = mutated(Local, &cs, &plain());
    assert_pod_eq("S7", &got, &plain());
    reconciler_selects_nothing(Local, &cs);
}
