//! Status → what the waiting person is told, for every phase and for stale statuses.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::ObjectMeta;

use super::*;
use crate::api::{NamespaceOffloadingSpec, RemoteNamespaceCondition};

fn cond(type_: &str, status: &str, reason: &str, message: &str) -> RemoteNamespaceCondition {
    RemoteNamespaceCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        last_transition_time: None,
        reason: reason.to_owned(),
        message: message.to_owned(),
    }
}

fn selected() -> RemoteNamespaceCondition {
    cond(OFFLOADING_REQUIRED, "True", reason::CLUSTER_SELECTED, "")
}

fn ready() -> Vec<RemoteNamespaceCondition> {
    vec![
        selected(),
        cond(READY, "True", reason::NAMESPACE_CREATED, "ok"),
    ]
}

fn creating() -> Vec<RemoteNamespaceCondition> {
    vec![
        selected(),
        cond(
            READY,
            "False",
            reason::CREATING,
            "creating namespace shop-home",
        ),
    ]
}

fn failing(m: &str) -> Vec<RemoteNamespaceCondition> {
    vec![
        selected(),
        cond(READY, "False", reason::CREATION_LOOP_BACK_OFF, m),
    ]
}

fn not_selected() -> Vec<RemoteNamespaceCondition> {
    vec![cond(
        OFFLOADING_REQUIRED,
        "False",
        reason::CLUSTER_NOT_SELECTED,
        "",
    )]
}

fn object(
    generation: i64,
    observed: Option<i64>,
    phase: Option<OffloadingPhase>,
    clusters: &[(&str, Vec<RemoteNamespaceCondition>)],
) -> NamespaceOffloading {
    NamespaceOffloading {
        metadata: ObjectMeta {
            name: Some("offloading".into()),
            namespace: Some("shop".into()),
            generation: Some(generation),
            ..ObjectMeta::default()
        },
        spec: NamespaceOffloadingSpec::default(),
        status: Some(NamespaceOffloadingStatus {
            offloading_phase: phase,
            remote_namespace_name: Some("shop-home".into()),
            remote_namespaces_conditions: clusters
                .iter()
                .map(|(id, c)| ((*id).to_owned(), c.clone()))
                .collect(),
            observed_generation: observed,
            conditions: Vec::new(),
        }),
    }
}

fn top(type_: &str, status: &str, message: &str) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        last_transition_time: Time(Default::default()),
        reason: "R".to_owned(),
        message: message.to_owned(),
        observed_generation: None,
    }
}

#[test]
fn cluster_states_from_the_condition_catalogue() {
    let o = object(
        1,
        Some(1),
        Some(OffloadingPhase::InProgress),
        &[
            ("r1", ready()),
            ("r2", creating()),
            ("r3", failing("refused")),
            ("r4", not_selected()),
            ("r5", vec![selected()]),
            (
                "r6",
                [
                    not_selected(),
                    vec![cond(READY, "False", reason::TERMINATING, "deleting")],
                ]
                .concat(),
            ),
        ],
    );
    let states = clusters(o.status.as_ref().unwrap());
    let expected: BTreeMap<String, ClusterState> = [
        ("r1", ClusterState::Ready),
        (
            "r2",
            ClusterState::Pending("creating namespace shop-home".into()),
        ),
        ("r3", ClusterState::Failing("refused".into())),
        ("r4", ClusterState::NotSelected),
        ("r5", ClusterState::Pending(String::new())),
        ("r6", ClusterState::Deleting("deleting".into())),
    ]
    .into_iter()
    .map(|(id, s)| (id.to_owned(), s))
    .collect();
    assert_eq!(states, expected);
}

#[test]
fn a_status_for_another_generation_is_not_an_answer() {
    // Ready, but for generation 1 while the object is at 2: keep waiting, show no clusters.
    let stale = object(2, Some(1), Some(OffloadingPhase::Ready), &[("r1", ready())]);
    assert_eq!(
        assess(Some(&stale)),
        Offload::Waiting {
            why: "waiting for the reconciler to process generation 2 (the status is for \
                  generation 1)"
                .into(),
            processed: false,
            clusters: BTreeMap::new(),
        }
    );
    assert!(current_status(&stale).is_none());
    let never = object(1, None, None, &[]);
    assert_eq!(
        assess(Some(&never)),
        Offload::Waiting {
            why: "waiting for the reconciler to process generation 1".into(),
            processed: false,
            clusters: BTreeMap::new(),
        }
    );
    let mut unprocessed = object(1, None, None, &[]);
    unprocessed.status = None;
    assert!(matches!(
        assess(Some(&unprocessed)),
        Offload::Waiting { .. }
    ));
}

#[test]
fn every_phase_of_a_current_status() {
    let ready_obj = object(
        3,
        Some(3),
        Some(OffloadingPhase::Ready),
        &[("r1", ready()), ("r2", not_selected()), ("r3", ready())],
    );
    assert_eq!(
        assess(Some(&ready_obj)),
        Offload::Ready {
            twin: "shop-home".into(),
            clusters: vec!["r1".into(), "r3".into()],
        }
    );

    let mut none = object(1, Some(1), Some(OffloadingPhase::NoClusterSelected), &[]);
    assert_eq!(
        assess(Some(&none)),
        Offload::NoClusterSelected {
            why: "no remote cluster matches the cluster selector".into()
        }
    );
    none.status.as_mut().unwrap().conditions = vec![
        top(SELECTOR_VALID, "False", "the selector is invalid: x"),
        top(READY, "False", "no remote cluster is selected"),
    ];
    assert_eq!(
        assess(Some(&none)),
        Offload::NoClusterSelected {
            why: "the selector is invalid: x".into()
        }
    );

    let some = object(
        1,
        Some(1),
        Some(OffloadingPhase::SomeFailed),
        &[
            ("r1", ready()),
            ("r2", failing("conflict")),
            ("r3", creating()),
        ],
    );
    assert_eq!(
        assess(Some(&some)),
        Offload::Failed {
            phase: OffloadingPhase::SomeFailed,
            failing: vec![("r2".into(), "conflict".into())],
        }
    );

    let mut progress = object(
        1,
        Some(1),
        Some(OffloadingPhase::InProgress),
        &[("r1", creating())],
    );
    progress.status.as_mut().unwrap().conditions = vec![top(
        READY,
        "False",
        "waiting for namespace shop-home on: r1",
    )];
    let Offload::Waiting {
        why,
        processed: true,
        clusters,
    } = assess(Some(&progress))
    else {
        panic!("waiting expected");
    };
    assert_eq!(why, "waiting for namespace shop-home on: r1");
    assert_eq!(clusters.len(), 1);

    let terminating = object(1, Some(1), Some(OffloadingPhase::Terminating), &[]);
    assert_eq!(assess(Some(&terminating)), Offload::Deleting);
    assert_eq!(assess(None), Offload::Missing);
}

#[test]
fn removal_lists_the_clusters_still_holding_a_twin() {
    assert_eq!(assess_removal(None), Removal::Gone);
    let not_started = object(1, Some(1), Some(OffloadingPhase::Ready), &[("r1", ready())]);
    assert_eq!(
        assess_removal(Some(&not_started)),
        Removal::Pending {
            started: false,
            holding: vec![("r1".into(), "the twin namespace is still there".into())],
        }
    );
    let terminating = object(
        1,
        Some(1),
        Some(OffloadingPhase::Terminating),
        &[
            ("r1", not_selected()),
            (
                "r2",
                [
                    not_selected(),
                    vec![cond(
                        READY,
                        "False",
                        reason::TERMINATING,
                        "cannot delete: unreachable",
                    )],
                ]
                .concat(),
            ),
        ],
    );
    assert_eq!(
        assess_removal(Some(&terminating)),
        Removal::Pending {
            started: true,
            holding: vec![("r2".into(), "cannot delete: unreachable".into())],
        }
    );
}
