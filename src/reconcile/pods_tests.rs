//! When pods are judged again, and what the condition says.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use tokio::time::Instant;

use super::*;

const RESYNC: Duration = Duration::from_secs(300);

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn time(s: &str) -> Time {
    Time(s.parse().expect("timestamp"))
}

fn stored(generation: i64) -> Condition {
    condition(
        &Finding::default(),
        "shop",
        None,
        Some(generation),
        &time("2026-12-01T00:00:00Z"),
    )
}

#[test]
fn a_namespace_never_judged_is_due() {
    let audit = PodAudit::new("liqo", RESYNC);
    assert!(audit.due("shop", Some(3), &set(&["r1"]), None, Instant::now()));
    // A condition of an older generation does not count.
    let old = stored(2);
    assert!(audit.due("shop", Some(3), &set(&["r1"]), Some(&old), Instant::now()));
}

#[test]
fn after_a_restart_a_condition_of_this_generation_holds_until_its_spread_resync() {
    let audit = PodAudit::new("liqo", RESYNC);
    let now = Instant::now() + RESYNC * 2;
    let current = stored(3);
    assert!(!audit.due("shop", Some(3), &set(&["r1"]), Some(&current), now));
    assert!(!audit.due("shop", Some(3), &set(&["r1"]), Some(&current), now));
    // At the latest a resync later, it is due again.
    assert!(audit.due("shop", Some(3), &set(&["r1"]), Some(&current), now + RESYNC));
}

#[test]
fn restarts_spread_the_resyncs_of_many_namespaces() {
    let audit = PodAudit::new("liqo", RESYNC);
    let now = Instant::now() + RESYNC * 2;
    let current = stored(3);
    let names: Vec<String> = (0..200).map(|i| format!("ns-{i}")).collect();
    for ns in &names {
        assert!(!audit.due(ns, Some(3), &set(&[]), Some(&current), now));
    }
    // A quarter of the interval later, some but far from all are due.
    let later = now + RESYNC / 4;
    let due = names
        .iter()
        .filter(|ns| audit.due(ns, Some(3), &set(&[]), Some(&current), later))
        .count();
    assert!((20..=80).contains(&due), "{due} of 200 due after a quarter");
}

#[test]
fn a_new_generation_or_selection_or_a_resync_makes_a_look_due() {
    let audit = PodAudit::new("liqo", RESYNC);
    let now = Instant::now();
    audit.record("shop", Some(3), &set(&["r1"]), now);
    assert!(!audit.due("shop", Some(3), &set(&["r1"]), None, now));
    assert!(!audit.due("shop", Some(3), &set(&["r1"]), None, now + RESYNC / 2));
    assert!(audit.due("shop", Some(4), &set(&["r1"]), None, now));
    assert!(audit.due("shop", Some(3), &set(&["r1", "r2"]), None, now));
    assert!(audit.due("shop", Some(3), &set(&["r1"]), None, now + RESYNC));
    audit.forget("shop");
    assert!(audit.due("shop", Some(3), &set(&["r1"]), None, now));
}

#[test]
fn the_condition_counts_and_names_at_most_five() {
    let now = time("2026-12-05T10:00:00Z");
    let finding = Finding {
        count: 7,
        names: ["a", "b", "c", "d", "e"].map(String::from).to_vec(),
    };
    let c = condition(&finding, "shop", None, Some(3), &now);
    assert_eq!(
        (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
        ("PodsCompliant", "False", "PodsViolatePolicy")
    );
    assert_eq!(
        c.message,
        "7 pod(s) do not follow the pod offloading policy: a, b, c, d, e and 2 more; move them \
         with: nsoffload evict namespace shop"
    );
    assert_eq!(c.observed_generation, Some(3));
    let two = Finding {
        count: 2,
        names: vec!["a".into(), "b".into()],
    };
    let c = condition(&two, "shop", None, Some(3), &now);
    assert!(c
        .message
        .starts_with("2 pod(s) do not follow the pod offloading policy: a, b;"));
}

#[test]
fn the_transition_time_moves_only_with_the_status() {
    let before = time("2026-12-01T00:00:00Z");
    let now = time("2026-12-05T10:00:00Z");
    let one = Finding {
        count: 1,
        names: vec!["a".into()],
    };
    let first = condition(&one, "shop", None, Some(3), &before);
    let more = Finding {
        count: 2,
        names: vec!["a".into(), "b".into()],
    };
    let again = condition(&more, "shop", Some(&first), Some(4), &now);
    assert_eq!(again.last_transition_time, before);
    let fixed = condition(&Finding::default(), "shop", Some(&again), Some(4), &now);
    assert_eq!(
        (fixed.status.as_str(), fixed.reason.as_str()),
        ("True", "PodsFollowPolicy")
    );
    assert_eq!(fixed.last_transition_time, now);
}
