//! Tables for the plan: what a reconcile decides before the clusters answer (finalizer,
//! scheduling label, each cluster's visit) and after (release, reachability, settling, pod
//! review, when to look again).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{json, Value};

use super::*;
use crate::api::OffloadingPhase::*;
use TwinState as T;

fn nsoff(spec: Value, meta: Value, status: Value) -> NamespaceOffloading {
    let mut metadata = json!({"name": "offloading", "namespace": "shop", "generation": 1});
    for (k, v) in meta.as_object().unwrap() {
        metadata[k] = v.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "offloading.liqo.io/v1beta1", "kind": "NamespaceOffloading",
        "metadata": metadata, "spec": spec, "status": status,
    }))
    .unwrap()
}

fn ours() -> Value {
    json!({"finalizers": [NSOFF_FINALIZER]})
}

fn deleting(extra: Value) -> Value {
    let mut m =
        json!({"finalizers": [NSOFF_FINALIZER], "deletionTimestamp": "2026-12-05T10:00:00Z"});
    for (k, v) in extra.as_object().unwrap() {
        m[k] = v.clone();
    }
    m
}

/// Clusters with one virtual node each, labelled `region=<region>`.
fn clusters(ids: &[(&str, &str)]) -> Clusters {
    ids.iter()
        .map(|(id, region)| {
            let labels = BTreeMap::from([("region".to_owned(), (*region).to_owned())]);
            ((*id).to_owned(), vec![(format!("vk-{id}"), labels)])
        })
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

fn visits(intent: &Intent) -> Vec<(&str, &Visit)> {
    intent
        .visits
        .iter()
        .map(|(id, v)| (id.as_str(), v))
        .collect()
}

fn eu_only() -> Value {
    json!({"clusterSelector": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "region", "operator": "In", "values": ["eu"]}]}]}})
}

#[test]
fn a_deleted_object_that_is_not_ours_needs_nothing() {
    let o = nsoff(
        json!({}),
        json!({"deletionTimestamp": "2026-12-05T10:00:00Z"}),
        json!({}),
    );
    assert_eq!(
        intend(&o, &clusters(&[("r1", "eu")]), &set(&["r1"]), "home"),
        None
    );
}

#[test]
fn before_the_clusters_answer() {
    let both = clusters(&[("r1", "eu"), ("r2", "us")]);
    let creds = set(&["r1", "r2"]);
    let failed = |m: &str| {
        Visit::Known(T::Failed(Failure {
            message: m.to_owned(),
            unreachable: false,
        }))
    };
    let bad_name = "the twin namespace name \"Bad_Name\" is not valid: must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
    type Case<'a> = (
        &'a str,
        NamespaceOffloading,
        Clusters,
        BTreeSet<String>,
        bool,
        bool,
        Vec<(&'a str, Visit)>,
    );
    let cases: Vec<Case> = vec![
        (
            "new object: finalizer first, label, twins everywhere",
            nsoff(json!({}), json!({}), json!({})),
            both.clone(),
            creds.clone(),
            true,
            true,
            vec![("r1", Visit::Ensure { expected: false }), ("r2", Visit::Ensure { expected: false })],
        ),
        (
            "selector: the other cluster's twin is removed",
            nsoff(eu_only(), ours(), json!({})),
            both.clone(),
            creds.clone(),
            false,
            true,
            vec![("r1", Visit::Ensure { expected: false }), ("r2", Visit::Remove)],
        ),
        (
            "Local: no scheduling label",
            nsoff(json!({"podOffloadingStrategy": "Local"}), ours(), json!({})),
            both.clone(),
            creds.clone(),
            false,
            false,
            vec![("r1", Visit::Ensure { expected: false }), ("r2", Visit::Ensure { expected: false })],
        ),
        (
            "deleting: every twin removed, label removed",
            nsoff(json!({}), deleting(json!({})), json!({})),
            both.clone(),
            creds.clone(),
            false,
            false,
            vec![("r1", Visit::Remove), ("r2", Visit::Remove)],
        ),
        (
            "credentials without nodes: looked at (a twin may be left there)",
            nsoff(json!({}), ours(), json!({})),
            clusters(&[("r1", "eu")]),
            creds.clone(),
            false,
            true,
            vec![("r1", Visit::Ensure { expected: false }), ("r2", Visit::Remove)],
        ),
        (
            "only in the stored status: gone for good, nothing to ask",
            nsoff(
                json!({}),
                ours(),
                json!({"remoteNamespacesConditions": {"r9": []}}),
            ),
            clusters(&[("r1", "eu")]),
            set(&["r1"]),
            false,
            true,
            vec![("r1", Visit::Ensure { expected: false }), ("r9", Visit::Known(T::Absent))],
        ),
        (
            "a twin the status saw created is read first; a new one is created at once",
            nsoff(
                json!({}),
                ours(),
                json!({"remoteNamespacesConditions": {"r1": [
                    {"type": "Ready", "status": "True", "reason": "NamespaceCreated",
                     "message": "", "lastTransitionTime": "2026-12-05T09:00:00Z"}]}}),
            ),
            both.clone(),
            creds.clone(),
            false,
            true,
            vec![
                ("r1", Visit::Ensure { expected: true }),
                ("r2", Visit::Ensure { expected: false }),
            ],
        ),
        (
            "nodes without credentials: still visited (the failure is reported there)",
            nsoff(json!({}), ours(), json!({})),
            both.clone(),
            set(&[]),
            false,
            true,
            vec![("r1", Visit::Ensure { expected: false }), ("r2", Visit::Ensure { expected: false })],
        ),
        (
            "an invalid twin name fails where selected, asks nothing elsewhere",
            nsoff(
                json!({"namespaceMappingStrategy": "SelectedName", "remoteNamespaceName": "Bad_Name"})
                    .as_object()
                    .map(|m| {
                        let mut m = m.clone();
                        m.extend(eu_only().as_object().unwrap().clone());
                        Value::Object(m)
                    })
                    .unwrap(),
                ours(),
                json!({}),
            ),
            both.clone(),
            creds.clone(),
            false,
            true,
            vec![("r1", failed(bad_name)), ("r2", Visit::Known(T::Absent))],
        ),
    ];
    for (name, o, cs, creds, finalizer, label, want) in cases {
        let intent = intend(&o, &cs, &creds, "home").expect(name);
        assert_eq!(intent.add_finalizer, finalizer, "{name}: finalizer");
        assert_eq!(intent.scheduling_label, label, "{name}: label");
        let want: Vec<(&str, &Visit)> = want.iter().map(|(id, v)| (*id, v)).collect();
        assert_eq!(visits(&intent), want, "{name}: visits");
    }
}

#[test]
fn the_twin_is_named_by_the_mapping_strategy() {
    let o = nsoff(json!({}), ours(), json!({}));
    let intent = intend(&o, &clusters(&[]), &set(&[]), "home").unwrap();
    assert_eq!(intent.twin.name, "shop-home");
    assert_eq!(intent.twin.local_namespace, "shop");
    let o = nsoff(
        json!({"namespaceMappingStrategy": "EnforceSameName"}),
        ours(),
        json!({}),
    );
    assert_eq!(
        intend(&o, &clusters(&[]), &set(&[]), "home")
            .unwrap()
            .twin
            .name,
        "shop"
    );
}

fn now() -> Time {
    Time("2026-12-05T10:00:00Z".parse().unwrap())
}

fn unreachable() -> TwinState {
    T::Failed(Failure {
        message: "dial tcp: connection refused".to_owned(),
        unreachable: true,
    })
}

fn found(states: &[(&str, TwinState)]) -> BTreeMap<String, TwinState> {
    states
        .iter()
        .map(|(id, s)| ((*id).to_owned(), s.clone()))
        .collect()
}

fn settled(o: &NamespaceOffloading, cs: &Clusters, states: &[(&str, TwinState)]) -> Plan {
    let creds: BTreeSet<String> = cs.keys().cloned().collect();
    let intent = intend(o, cs, &creds, "home").unwrap();
    settle(&intent, o, cs, found(states), &now())
}

#[test]
fn after_the_clusters_answer() {
    let both = clusters(&[("r1", "eu"), ("r2", "us")]);
    let live = nsoff(eu_only(), ours(), json!({}));
    let p = settled(&live, &both, &[("r1", T::Ready), ("r2", T::Terminating)]);
    assert_eq!(p.status.offloading_phase, Some(Ready));
    assert!(p.settling, "r2's twin is still going");
    assert!(p.judge_pods);
    assert!(!p.release);
    assert_eq!(
        p.reachable,
        BTreeMap::from([("r1".into(), true), ("r2".into(), true)])
    );

    let p = settled(&live, &both, &[("r1", unreachable()), ("r2", T::Absent)]);
    assert_eq!(p.status.offloading_phase, Some(AllFailed));
    assert!(
        !p.judge_pods,
        "pods are judged only when they can run remotely"
    );
    assert!(!p.settling);
    assert_eq!(
        p.reachable,
        BTreeMap::from([("r1".into(), false), ("r2".into(), true)])
    );
    assert_eq!(
        p.notices.iter().map(|n| n.reason).collect::<Vec<_>>(),
        ["TwinFailed", "AllFailed"]
    );
}

#[test]
fn release_waits_for_every_twin_unless_orphaning_is_allowed() {
    let both = clusters(&[("r1", "eu"), ("r2", "us")]);
    let going = nsoff(json!({}), deleting(json!({})), json!({}));
    type Case<'a> = (
        &'a str,
        &'a NamespaceOffloading,
        Vec<(&'a str, TwinState)>,
        bool,
        Vec<&'a str>,
    );
    let orphaning = nsoff(
        json!({}),
        deleting(json!({"annotations": {"offloading.liqo.io/orphan-unreachable": "true"}})),
        json!({}),
    );
    let cases: Vec<Case> = vec![
        (
            "every twin gone",
            &going,
            vec![("r1", T::Absent), ("r2", T::Absent)],
            true,
            vec!["Terminating"],
        ),
        (
            "one still terminating",
            &going,
            vec![("r1", T::Terminating), ("r2", T::Absent)],
            false,
            vec!["TwinDeleting", "Terminating"],
        ),
        (
            "one unreachable",
            &going,
            vec![("r1", unreachable()), ("r2", T::Absent)],
            false,
            vec!["TwinDeletionFailed", "Terminating"],
        ),
        (
            "unreachable, orphaning allowed",
            &orphaning,
            vec![("r1", unreachable()), ("r2", T::Absent)],
            true,
            vec!["TwinDeletionFailed", "Terminating", "OrphanedUnreachable"],
        ),
        (
            "a refusal is never orphaned",
            &orphaning,
            vec![
                (
                    "r1",
                    T::Failed(Failure {
                        message: "forbidden".into(),
                        unreachable: false,
                    }),
                ),
                ("r2", T::Absent),
            ],
            false,
            vec!["TwinDeletionFailed", "Terminating"],
        ),
    ];
    for (name, o, states, release, reasons) in cases {
        let p = settled(o, &both, &states);
        assert_eq!(p.release, release, "{name}");
        assert!(!p.judge_pods, "{name}: no pod review while deleting");
        assert_eq!(
            p.notices.iter().map(|n| n.reason).collect::<Vec<_>>(),
            reasons,
            "{name}"
        );
    }
}

#[test]
fn when_to_look_again() {
    let cases = [
        (None, false, NextLook::OnChange),
        (Some(Ready), false, NextLook::Resync),
        (Some(NoClusterSelected), false, NextLook::Resync),
        (Some(Ready), true, NextLook::OnTwinDeletion),
        (Some(InProgress), false, NextLook::Soon),
        (Some(Terminating), false, NextLook::OnTwinDeletion),
        (Some(SomeFailed), false, NextLook::Backoff),
        (Some(AllFailed), false, NextLook::Backoff),
        (Some(SomeFailed), true, NextLook::OnTwinDeletion),
    ];
    for (phase, settling, want) in cases {
        assert_eq!(
            next_look(phase, settling),
            want,
            "{phase:?} settling={settling}"
        );
    }
}

#[test]
fn waits_for_twin_deletions_grow_to_a_minute() {
    let waits: Vec<u64> = (0..6).map(|n| wake_fallback(n).as_secs()).collect();
    assert_eq!(waits, [10, 20, 40, 60, 60, 60]);
    assert_eq!(wake_fallback(u32::MAX), WAKE_FALLBACK_MAX);
}
