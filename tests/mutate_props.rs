//! Properties of the pod mutation over random pods and policies: idempotent, touches only
//! `/spec/tolerations` and `/spec/affinity`, keeps everything else (including fields this
//! build's Kubernetes types do not know), and always admits the imposed clusters.

mod common;

use common::*;
use k8s_openapi::api::core::v1::{NodeSelectorTerm, Toleration};
use nsoffload::api::PodOffloadingStrategy;
use nsoffload::policy::mutate::mutate_json;
use nsoffload::policy::selector::parse_terms;
use proptest::prelude::*;
use serde_json::{json, Value};

fn arb_req() -> impl Strategy<Value = R> {
    let keys = prop::sample::select(vec!["region", "provider", "gpu", "liqo.io/type", "zone"]);
    let vals = prop::collection::vec(
        prop::sample::select(vec!["A", "B", "virtual-node", "aws"]),
        0..3,
    );
    let ops = prop::sample::select(vec!["In", "NotIn", "Exists", "DoesNotExist"]);
    (keys, ops, vals).prop_map(|(k, op, v)| {
        let v: Vec<&str> = if matches!(op, "Exists" | "DoesNotExist") {
            vec![]
        } else if v.is_empty() {
            vec!["A"]
        } else {
            v
        };
        req(k, op, &v)
    })
}

fn arb_term() -> impl Strategy<Value = NodeSelectorTerm> {
    (
        prop::collection::vec(arb_req(), 0..3),
        prop::option::of(prop::sample::select(vec!["n1", "n2"])),
    )
        .prop_map(|(exprs, field)| NodeSelectorTerm {
            match_expressions: (!exprs.is_empty() || field.is_none()).then_some(exprs),
            match_fields: field.map(|n| vec![req("metadata.name", "In", &[n])]),
        })
}

fn arb_strategy() -> impl Strategy<Value = PodOffloadingStrategy> {
    prop::sample::select(PodOffloadingStrategy::ALL.to_vec())
}

fn arb_tolerations() -> impl Strategy<Value = Vec<Toleration>> {
    let one = prop_oneof![
        Just(tv()),
        Just(Toleration {
            key: Some("test".into()),
            ..Default::default()
        }),
        Just(Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        }),
        Just(Toleration {
            toleration_seconds: Some(30),
            ..tv()
        }),
    ];
    prop::collection::vec(one, 0..3)
}

fn arb_pod() -> impl Strategy<Value = Value> {
    let terms = prop::option::of(prop::collection::vec(arb_term(), 0..3));
    let rc = prop::option::of(prop::sample::select(vec![RC, "other"]));
    (arb_tolerations(), terms, rc).prop_map(|(tols, terms, rc)| {
        let mut v = serde_json::to_value(pod_with(tols, terms.map(required), rc)).unwrap();
        // Fields a newer API server might send, at the top, in the spec and inside a term.
        v["spec"]["futureField"] = json!({"keep": true});
        v["futureTopLevel"] = json!(1);
        if let Some(t) = v.pointer_mut("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0") {
            t["futureTermField"] = json!("kept");
        }
        v
    })
}

/// The pod without the two subtrees the mutation may change.
fn outside(pod: &Value) -> Value {
    let mut v = pod.clone();
    let spec = v["spec"].as_object_mut().unwrap();
    spec.remove("tolerations");
    spec.remove("affinity");
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn idempotent_and_confined(pod in arb_pod(), strategy in arb_strategy(), cs in prop::collection::vec(arb_term(), 0..3)) {
        let pol = policy(strategy, &cs);
        if let Err(refusal) = mutate_json(&pod, &pol, RC) {
            // Only a selector that selects no cluster refuses (SPEC §3), and only the pods
            // that could never run: `Remote` ones and those of the RuntimeClass.
            prop_assert!(parse_terms(&cs).is_err(), "refused with a valid selector: {}", refusal);
            let rc = pod["spec"]["runtimeClassName"] == json!(RC);
            prop_assert!(strategy == PodOffloadingStrategy::Remote || rc, "{}", refusal);
            prop_assert!(refusal.contains("selects no remote cluster"), "{}", refusal);
            return Ok(());
        }
        let once = apply_mutation(&pod, &pol);
        let again = mutate_json(&once, &pol, RC).unwrap();
        prop_assert!(again.is_empty(), "second pass patched: {:?}\npod: {}", again, pretty(&once));
        prop_assert_eq!(outside(&once), outside(&pod));
        // Existing tolerations are kept in order; at most one is appended.
        let before = pod["spec"]["tolerations"].as_array().cloned().unwrap_or_default();
        let after = once["spec"]["tolerations"].as_array().cloned().unwrap_or_default();
        prop_assert_eq!(&after[..before.len()], &before[..]);
        prop_assert!(after.len() <= before.len() + 1);
        // Fields unknown to the typed API survive inside the merged terms.
        let had = pod.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/futureTermField").is_some();
        if had {
            let kept = once.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/futureTermField");
            prop_assert_eq!(kept, Some(&json!("kept")));
        }
        // podAffinity, podAntiAffinity and preferred node terms are never touched.
        for p in ["/spec/affinity/podAffinity", "/spec/affinity/podAntiAffinity", "/spec/affinity/nodeAffinity/preferredDuringSchedulingIgnoredDuringExecution"] {
            prop_assert_eq!(pod.pointer(p), once.pointer(p));
        }
    }

    #[test]
    fn local_never_patches(pod in arb_pod(), cs in prop::collection::vec(arb_term(), 0..3)) {
        prop_assert!(mutate_json(&pod, &policy(PodOffloadingStrategy::Local, &cs), RC).unwrap().is_empty());
    }
}

#[test]
fn malformed_scheduling_fields_are_reported_not_panicked() {
    let pol = policy(PodOffloadingStrategy::Remote, &[]);
    for (pod, field) in [
        (json!({"spec": {"affinity": "x"}}), "spec.affinity"),
        (
            json!({"spec": {"affinity": {"nodeAffinity": 3}}}),
            "spec.affinity.nodeAffinity",
        ),
        (
            json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": {}}}}}}),
            "nodeSelectorTerms",
        ),
        (json!({"metadata": {}}), "spec"),
    ] {
        let err = mutate_json(&pod, &pol, RC).unwrap_err();
        assert!(err.contains(field), "{err}");
    }
    assert!(mutate_json(&json!({"spec": {"tolerations": "nope"}}), &pol, RC).is_err());
}
