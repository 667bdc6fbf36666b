//! Metric bookkeeping of the controller.

use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::metrics::Metrics;

#[test]
fn the_violating_pods_series_follows_the_namespace_and_goes_with_it() {
    let metrics = Metrics::new();
    let audit = PodAudit::new("liqo", Duration::from_secs(300));
    let series = "nsoffload_violating_pods{namespace=\"shop\"}";
    let judged = |n: Option<usize>, phase: Option<OffloadingPhase>| Report {
        phase,
        violating: n,
        ..Report::default()
    };
    let ready = Some(OffloadingPhase::Ready);
    track_violating(
        &metrics.reconcile,
        Some(&audit),
        "shop",
        &judged(Some(3), ready),
    );
    assert!(metrics.encode().contains(&format!("{series} 3")));
    // Not judged this time: the last count stands.
    track_violating(
        &metrics.reconcile,
        Some(&audit),
        "shop",
        &judged(None, ready),
    );
    assert!(metrics.encode().contains(&format!("{series} 3")));
    track_violating(
        &metrics.reconcile,
        Some(&audit),
        "shop",
        &judged(Some(0), ready),
    );
    assert!(metrics.encode().contains(&format!("{series} 0")));
    // Released: the series goes, and the audit forgets the namespace.
    let now = Instant::now();
    audit.record("shop", Some(1), &"r1", now);
    track_violating(
        &metrics.reconcile,
        Some(&audit),
        "shop",
        &judged(None, None),
    );
    assert!(!metrics.encode().contains(series), "{}", metrics.encode());
    assert!(audit.due("shop", Some(1), &"r1", None, now));
}

#[test]
fn phase_counts_move_with_each_object() {
    let metrics = Metrics::new();
    let phases = Mutex::new(HashMap::new());
    let count = |phase: &str| -> String {
        let text = metrics.encode();
        let series = format!("nsoffload_namespace_offloadings{{phase=\"{phase}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series).map(str::to_owned))
            .unwrap_or_default()
    };
    use OffloadingPhase::*;
    track_phase(
        &metrics.reconcile,
        &phases,
        "a/offloading",
        Some(InProgress),
    );
    track_phase(
        &metrics.reconcile,
        &phases,
        "b/offloading",
        Some(InProgress),
    );
    assert_eq!(count("InProgress"), "2");
    track_phase(&metrics.reconcile, &phases, "a/offloading", Some(Ready));
    track_phase(&metrics.reconcile, &phases, "a/offloading", Some(Ready));
    assert_eq!(
        (count("InProgress"), count("Ready")),
        ("1".into(), "1".into())
    );
    // Released: the object leaves every count.
    track_phase(&metrics.reconcile, &phases, "a/offloading", None);
    track_phase(&metrics.reconcile, &phases, "a/offloading", None);
    assert_eq!(
        (count("InProgress"), count("Ready")),
        ("1".into(), "0".into())
    );
}
