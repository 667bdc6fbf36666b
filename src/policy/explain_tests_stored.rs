//! Pods already stored (SPEC §11 on existing pods): created before offloading or the label,
//! following the policy, or without one, against the policy now.

use super::*;

#[test]
fn stored_pods_and_the_policy_now() {
    let remote_c2 = nsoff(
        Remote,
        vec![c2()],
        Some(Ready),
        &[("r2", "True", "NamespaceCreated", "")],
    );
    // Mutated under `Remote` with selector [c1]: Tv and c1+In.
    let old = pod(json!({"tolerations": [tv()], "affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "region", "operator": "In", "values": ["A", "B"]},
            {"key": "provider", "operator": "Exists"},
            {"key": "liqo.io/type", "operator": "In", "values": ["virtual-node"]}
        ]}]}
    }}}));
    let old = creation(old, "2026-03-01T00:00:00Z", true);
    let template = pod(json!({}));
    let w = world(Some(remote_c2));
    let outdated = Admission::Outdated {
        why: OutdatedReason::PolicyChanged,
        toleration_missing: false,
        required_affinity_now: texts(&["region=C,gpu,liqo.io/type=virtual-node"]),
        controlled: true,
    };
    let e = w.explain(Subject::Existing {
        pod: &old,
        template: Some(&template),
    });
    let local = affinity(vec![fails(0, "region in (A,B)", None)]);
    assert_eq!(e.admission, outdated);
    assert_eq!(
        blockers(&e),
        vec![
            ("l1", local.clone()),
            ("l2", local),
            ("v1", no_twin("r1", TwinState::Absent)),
            ("v2", affinity(vec![fails(0, "region in (A,B)", Some("C"))])),
        ]
    );
    assert_eq!(e.verdict, no_node(Change::RecreatePod));
    // Without its template, the stored pod stands for it: recreating it would keep c1 and
    // add c2, which no node satisfies; selecting r1 again is what helps it as it is.
    let e = w.explain(Subject::Existing {
        pod: &old,
        template: None,
    });
    assert_eq!(
        e.verdict,
        no_node(Change::WidenSelector {
            clusters: vec!["r1".to_owned()]
        })
    );
}

#[test]
fn stored_pods_created_before_offloading_or_the_label() {
    let w = world(Some(ready(Remote, vec![])));
    let before = creation(pod(json!({})), "2026-01-01T00:00:00Z", true);
    let e = w.explain(Subject::Existing {
        pod: &before,
        template: None,
    });
    assert_eq!(
        e.admission,
        Admission::Outdated {
            why: OutdatedReason::CreatedBeforeOffloading,
            toleration_missing: true,
            required_affinity_now: texts(&["liqo.io/type=virtual-node"]),
            controlled: true,
        }
    );
    // Unmutated, it may still run on local nodes, which the policy now forbids.
    assert_eq!(e.verdict, may_run(&[(None, &["l1", "l2"])]));

    let w = world(Some(ready(LocalAndRemote, vec![])));
    let unlabelled = creation(gpu_pod(), "2026-03-01T00:00:00Z", false);
    let e = w.explain(Subject::Existing {
        pod: &unlabelled,
        template: None,
    });
    assert_eq!(
        e.admission,
        Admission::Outdated {
            why: OutdatedReason::CreatedBeforeLabel,
            toleration_missing: true,
            required_affinity_now: None,
            controlled: false,
        }
    );
    assert_eq!(e.blockers_of("v2"), tv_taint());
    assert_eq!(e.verdict, no_node(Change::RecreatePod));
}

#[test]
fn stored_pods_that_follow_the_policy() {
    let creating = nsoff(
        Remote,
        vec![],
        Some(InProgress),
        &[
            ("r1", "False", "Creating", ""),
            ("r2", "False", "Creating", ""),
        ],
    );
    let mutated = pod(json!({"tolerations": [tv()], "affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "liqo.io/type", "operator": "In", "values": ["virtual-node"]}
        ]}]}
    }}}));
    let mut bound = mutated.clone();
    bound["spec"]["nodeName"] = json!("v1");
    let w = world(Some(creating));
    let e = w.explain(Subject::Existing {
        pod: &bound,
        template: None,
    });
    assert_eq!(
        (&e.admission, e.bound_to.as_deref()),
        (&Admission::UpToDate, Some("v1"))
    );
    assert_eq!(
        e.blockers_of("v1"),
        no_twin("r1", not_ready("Creating", ""))
    );
    assert_eq!(
        e.verdict,
        no_node(Change::WaitForOffloading {
            message: "the twin namespace on cluster r1 is not created yet".to_owned()
        })
    );
    // A change to the pod reaches a stored pod only once it is recreated.
    let mut mars = mutated;
    mars["spec"]["nodeSelector"] = json!({"zone": "mars"});
    let e = world(Some(ready(Remote, vec![]))).explain(Subject::Existing {
        pod: &mars,
        template: None,
    });
    assert_eq!(e.admission, Admission::UpToDate);
    assert_eq!(
        e.verdict,
        super::super::Verdict::NoNode {
            change: Change::DropNodeSelector {
                keys: vec!["zone".to_owned()]
            },
            then_recreate: true,
        }
    );
}

#[test]
fn stored_pods_without_a_policy_or_refused_by_it() {
    let plain = pod(json!({}));
    let existing = Subject::Existing {
        pod: &plain,
        template: None,
    };
    assert_eq!(
        world(None).explain(existing).admission,
        Admission::NotOffloaded
    );
    let invalid = nsoff(
        Remote,
        vec![NodeSelectorTerm::default()],
        Some(NoClusterSelected),
        &[],
    );
    let e = world(Some(invalid)).explain(existing);
    let Admission::Refused { message } = &e.admission else {
        panic!("expected a refusal, got {:?}", e.admission);
    };
    assert!(message.contains("selects no remote cluster"), "{message}");
    assert_eq!(
        e.offloading.selector_error.as_deref(),
        Some(
            "spec.clusterSelector.nodeSelectorTerms[0]: a term needs at least one \
             matchExpressions or matchFields entry (an empty term matches no cluster)"
        )
    );
    assert_eq!(e.offloading.selector, vec!["(nothing)".to_owned()]);
}
