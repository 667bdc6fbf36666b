//! Tables for the status computation: the phase rules, the condition catalogue, transition
//! times, stale and vanished entries, and the top-level conditions.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::status::*;
use crate::api::conditions::{OFFLOADING_REQUIRED, READY, SELECTOR_VALID};
use crate::api::OffloadingPhase::{self, *};
use TwinState as T;

fn t(s: &str) -> Time {
    Time(s.parse().expect("timestamp"))
}

fn fail(unreachable: bool) -> TwinState {
    TwinState::Failed(Failure {
        message: "boom".to_owned(),
        unreachable,
    })
}

fn view(selected: bool, twin: TwinState) -> ClusterView {
    ClusterView {
        exists: true,
        selected,
        twin,
    }
}

fn clusters(views: &[(&str, ClusterView)]) -> BTreeMap<String, ClusterView> {
    views
        .iter()
        .map(|(id, v)| ((*id).to_owned(), v.clone()))
        .collect()
}

#[test]
fn phase_rules_count_only_selected_clusters() {
    type Case<'a> = (&'a str, bool, Vec<(&'a str, ClusterView)>, OffloadingPhase);
    let cases: Vec<Case> = vec![
        (
            "R1 all ready",
            false,
            vec![("r1", view(true, T::Ready)), ("r2", view(true, T::Ready))],
            Ready,
        ),
        (
            "R2 one selected, ready",
            false,
            vec![("r1", view(true, T::Ready)), ("r2", view(false, T::Absent))],
            Ready,
        ),
        (
            "unselected failures do not count",
            false,
            vec![
                ("r1", view(true, T::Ready)),
                ("r2", view(false, fail(true))),
            ],
            Ready,
        ),
        (
            "R3 nothing selected",
            false,
            vec![("r1", view(false, T::Absent))],
            NoClusterSelected,
        ),
        ("R8 no clusters", false, vec![], NoClusterSelected),
        (
            "R4/R5 some failed",
            false,
            vec![
                ("r1", view(true, T::Ready)),
                ("r2", view(true, fail(false))),
            ],
            SomeFailed,
        ),
        (
            "failing and creating",
            false,
            vec![
                ("r1", view(true, T::Creating)),
                ("r2", view(true, fail(true))),
            ],
            SomeFailed,
        ),
        (
            "all failed",
            false,
            vec![
                ("r1", view(true, fail(true))),
                ("r2", view(true, fail(false))),
            ],
            AllFailed,
        ),
        (
            "in progress",
            false,
            vec![
                ("r1", view(true, T::Ready)),
                ("r2", view(true, T::Creating)),
            ],
            InProgress,
        ),
        (
            "recreating a terminating twin",
            false,
            vec![("r1", view(true, T::Terminating))],
            InProgress,
        ),
        (
            "R7 deleting wins",
            true,
            vec![("r1", view(true, T::Ready))],
            Terminating,
        ),
        ("deleting with nothing", true, vec![], Terminating),
    ];
    for (name, deleting, views, want) in cases {
        assert_eq!(phase(deleting, &clusters(&views)), want, "{name}");
    }
}

fn compute_with(
    views: &BTreeMap<String, ClusterView>,
    previous: Option<&crate::api::NamespaceOffloadingStatus>,
    now: &Time,
) -> crate::api::NamespaceOffloadingStatus {
    compute(&StatusInput {
        generation: Some(4),
        deleting: false,
        twin_name: "shop-home",
        selector_error: None,
        clusters: views,
        previous,
        now,
    })
}

fn condition<'a>(
    s: &'a crate::api::NamespaceOffloadingStatus,
    id: &str,
    type_: &str,
) -> Option<&'a crate::api::RemoteNamespaceCondition> {
    s.remote_namespaces_conditions
        .get(id)?
        .iter()
        .find(|c| c.type_ == type_)
}

#[test]
fn the_condition_catalogue() {
    use TwinState::*;
    let cases = [
        (
            view(true, Ready),
            ("True", "ClusterSelected"),
            Some(("True", "NamespaceCreated")),
        ),
        (
            view(true, Absent),
            ("True", "ClusterSelected"),
            Some(("False", "Creating")),
        ),
        (
            view(true, Creating),
            ("True", "ClusterSelected"),
            Some(("False", "Creating")),
        ),
        (
            view(true, fail(false)),
            ("True", "ClusterSelected"),
            Some(("False", "CreationLoopBackOff")),
        ),
        (
            view(true, Terminating),
            ("True", "ClusterSelected"),
            Some(("False", "Terminating")),
        ),
        (
            view(false, Terminating),
            ("False", "ClusterNotSelected"),
            Some(("False", "Terminating")),
        ),
        (
            view(false, Ready),
            ("False", "ClusterNotSelected"),
            Some(("False", "Terminating")),
        ),
        (
            view(false, fail(true)),
            ("False", "ClusterNotSelected"),
            Some(("False", "Terminating")),
        ),
        (view(false, Absent), ("False", "ClusterNotSelected"), None),
    ];
    let now = t("2026-11-22T10:00:00Z");
    for (v, required, ready) in cases {
        let views = clusters(&[("r1", v.clone())]);
        let s = compute_with(&views, None, &now);
        let r = condition(&s, "r1", OFFLOADING_REQUIRED).expect("always an OffloadingRequired");
        assert_eq!((r.status.as_str(), r.reason.as_str()), required, "{v:?}");
        let got = condition(&s, "r1", READY).map(|c| (c.status.as_str(), c.reason.as_str()));
        assert_eq!(got, ready, "{v:?}");
        if let TwinState::Failed(_) = v.twin {
            assert!(condition(&s, "r1", READY).unwrap().message.contains("boom"));
        }
    }
}

#[test]
fn transition_times_move_only_when_status_or_reason_does() {
    let t1 = t("2026-11-01T00:00:00Z");
    let t2 = t("2026-11-22T10:00:00Z");
    let creating = clusters(&[("r1", view(true, fail(true)))]);
    let first = compute_with(&creating, None, &t1);
    // Same reason, new message: the time stays.
    let mut again = creating.clone();
    again.get_mut("r1").unwrap().twin = TwinState::Failed(Failure {
        message: "another cause".to_owned(),
        unreachable: true,
    });
    let second = compute_with(&again, Some(&first), &t2);
    let ready = condition(&second, "r1", READY).unwrap();
    assert_eq!(ready.last_transition_time, Some(t1.clone()));
    assert_eq!(ready.message, "another cause");
    // Now ready: Ready moves, OffloadingRequired stays.
    let done = clusters(&[("r1", view(true, TwinState::Ready))]);
    let third = compute_with(&done, Some(&second), &t2);
    assert_eq!(
        condition(&third, "r1", READY).unwrap().last_transition_time,
        Some(t2.clone())
    );
    assert_eq!(
        condition(&third, "r1", OFFLOADING_REQUIRED)
            .unwrap()
            .last_transition_time,
        Some(t1.clone())
    );
    let top_ready = third.conditions.iter().find(|c| c.type_ == READY).unwrap();
    assert_eq!(
        (top_ready.status.as_str(), &top_ready.last_transition_time),
        ("True", &t2)
    );
    // Computing the same again gives an identical status (so nothing is written).
    assert_eq!(
        compute_with(&done, Some(&third), &t("2027-01-01T00:00:00Z")),
        third
    );
}

#[test]
fn vanished_clusters_and_stale_conditions_are_dropped() {
    let now = t("2026-11-22T10:00:00Z");
    let before = compute_with(
        &clusters(&[
            ("r1", view(true, TwinState::Ready)),
            ("r2", view(true, TwinState::Ready)),
        ]),
        None,
        &now,
    );
    let gone = ClusterView {
        exists: false,
        selected: false,
        twin: TwinState::Absent,
    };
    let leaving = ClusterView {
        exists: false,
        selected: false,
        twin: TwinState::Terminating,
    };
    let after = compute_with(
        &clusters(&[("r1", gone), ("r2", leaving)]),
        Some(&before),
        &now,
    );
    assert!(
        !after.remote_namespaces_conditions.contains_key("r1"),
        "a vanished cluster without twin has no entry"
    );
    let r2 = condition(&after, "r2", OFFLOADING_REQUIRED).unwrap();
    assert_eq!(r2.message, "the cluster has no virtual node any more");
    assert_eq!(after.offloading_phase, Some(NoClusterSelected));
}

#[test]
fn top_level_conditions_say_what_to_do() {
    let now = t("2026-11-22T10:00:00Z");
    let views = clusters(&[("r1", view(false, TwinState::Absent))]);
    let s = compute(&StatusInput {
        generation: Some(7),
        deleting: false,
        twin_name: "shop-home",
        selector_error: Some("spec.clusterSelector.nodeSelectorTerms[0].matchExpressions[0].operator: unknown operator \"Near\""),
        clusters: &views,
        previous: None,
        now: &now,
    });
    assert_eq!(s.observed_generation, Some(7));
    assert_eq!(s.offloading_phase, Some(NoClusterSelected));
    let sel = &s.conditions[0];
    assert_eq!(
        (sel.type_.as_str(), sel.status.as_str(), sel.reason.as_str()),
        (SELECTOR_VALID, "False", "InvalidSelector")
    );
    assert!(sel.message.contains("Near"), "{}", sel.message);
    assert_eq!(sel.observed_generation, Some(7));
    let ready = &s.conditions[1];
    assert_eq!(
        (
            ready.type_.as_str(),
            ready.status.as_str(),
            ready.reason.as_str()
        ),
        (READY, "False", "NoClusterSelected")
    );
    assert_eq!(
        condition(&s, "r1", OFFLOADING_REQUIRED).unwrap().message,
        "the cluster selector is invalid, so no cluster is selected"
    );
}

#[test]
fn progress_names_the_clusters_waited_for() {
    let now = t("2026-11-22T10:00:00Z");
    let views = clusters(&[
        ("r1", view(true, TwinState::Ready)),
        ("r2", view(true, TwinState::Creating)),
        ("r3", view(true, TwinState::Terminating)),
    ]);
    let s = compute_with(&views, None, &now);
    assert_eq!(s.offloading_phase, Some(InProgress));
    assert_eq!(
        s.conditions[1].message,
        "waiting for namespace shop-home on: r2, r3"
    );
}
