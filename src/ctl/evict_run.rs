//! The evictions of one namespace, then the wait and the second judgement (see `evict`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use super::drift::{self, Judged, Offender};
use super::evict::{action, evict_pod, still_there, Action, EvictOptions, Evicted};
use super::progress::Reporter;
use super::{api, bounded, human, CtlError, Outcome};

/// Evicts the offenders of `ns` that have a controller (or all with `--include-unmanaged`),
/// retrying refusals until `deadline`, waits until the evicted pods are gone, and judges the
/// namespace again.
pub(super) async fn evict_namespace(
    client: &kube::Client,
    version: &str,
    ns: &str,
    judged: Judged,
    options: &EvictOptions,
    deadline: Instant,
    report: &mut Reporter<'_>,
) -> Outcome {
    let mut pending: Vec<&Offender> = judged
        .offenders
        .iter()
        .filter(|o| action(o, options.include_unmanaged) == Action::Evict)
        .collect();
    let mut evicted: BTreeSet<String> = BTreeSet::new();
    let mut refused: BTreeMap<String, String> = BTreeMap::new();
    let mut failed = false;
    loop {
        for o in std::mem::take(&mut pending) {
            let call = evict_pod(client, version, ns, &o.name);
            match bounded(deadline, options.timeout, ns, "evict a pod", call).await {
                Ok(Evicted::Done) => {
                    report.line(&format!("{ns}: evicted pod {}", o.name));
                    refused.remove(&o.name);
                    evicted.insert(o.uid.clone());
                }
                Ok(Evicted::Refused(message)) => {
                    if !refused.contains_key(&o.name) {
                        report.line(&format!(
                            "{ns}: eviction of pod {} refused for now, retrying: {message}",
                            o.name
                        ));
                    }
                    refused.insert(o.name.clone(), message);
                    pending.push(o);
                }
                Err(CtlError::Timeout { .. }) => pending.push(o),
                Err(e) => {
                    report.error_line(&format!("error: {e}"));
                    failed = true;
                }
            }
        }
        let now = Instant::now();
        if pending.is_empty() || now >= deadline {
            break;
        }
        report.waiting(&format!(
            "{ns}: retrying {} eviction(s) refused by a PodDisruptionBudget",
            pending.len()
        ));
        tokio::time::sleep_until((now + options.poll).min(deadline)).await;
    }
    for o in &pending {
        let why = refused.get(&o.name).map_or("no answer", String::as_str);
        report.error_line(&format!(
            "{ns}: pod {} not evicted within {}: {why}",
            o.name,
            human(options.timeout)
        ));
    }
    let Some(last) = settle(client, ns, &evicted, options, deadline, report).await else {
        return Outcome::Failed;
    };
    if !evicted.is_empty() {
        // Without the mark, the reconciler's condition would change only at its next resync.
        let mark = api::mark_evicted(client, ns);
        let read_by = deadline.max(Instant::now() + options.timeout.min(LAST_READ));
        if let Err(e) = bounded(read_by, options.timeout, ns, "mark it", mark).await {
            report.warning(&format!(
                "{e}; its PodsCompliant condition changes at the reconciler's next resync"
            ));
        }
    }
    if last.offenders.is_empty() {
        report.line(&format!("{ns}: every pod follows the policy now"));
        return if failed || !pending.is_empty() {
            Outcome::Failed
        } else {
            Outcome::Done
        };
    }
    report.error_line(&format!(
        "{ns}: {} pod(s) still do not follow the policy:",
        last.offenders.len()
    ));
    for o in &last.offenders {
        let note = if judged.seen.contains(&o.uid) {
            match action(o, options.include_unmanaged) {
                Action::Evict if evicted.contains(&o.uid) => "evicted, still there",
                Action::Evict => "not evicted",
                Action::DaemonSet => "DaemonSet pod, not evicted",
                Action::Unmanaged => "no controller, not evicted",
            }
        } else {
            "a replacement that violates the policy again, not evicted: check its \
             controller's pod template and that the webhook mutates pods of this namespace"
        };
        report.error_line(&format!("  {} {} [{note}]", o.name, o.violation));
    }
    Outcome::Failed
}

/// The most a look at the pods may take once the deadline has passed.
const LAST_READ: Duration = Duration::from_secs(10);

/// Waits until the pods of `evicted` are gone (or the deadline), then returns the namespace
/// judged again; `None` when it could not be read (reported).
async fn settle(
    client: &kube::Client,
    ns: &str,
    evicted: &BTreeSet<String>,
    options: &EvictOptions,
    deadline: Instant,
    report: &mut Reporter<'_>,
) -> Option<Judged> {
    loop {
        // The last look still happens after a deadline spent on refused evictions.
        let read_by = deadline.max(Instant::now() + options.timeout.min(LAST_READ));
        let judge = drift::judge(client, ns, &options.runtime_class);
        match bounded(read_by, options.timeout, ns, "list its pods", judge).await {
            Ok(judged) => {
                let left = still_there(evicted, &judged);
                if left == 0 || Instant::now() >= deadline {
                    if left > 0 {
                        report.error_line(&format!(
                            "{ns}: {left} evicted pod(s) still terminating after {}",
                            human(options.timeout)
                        ));
                    }
                    return Some(judged);
                }
                report.waiting(&format!(
                    "{ns}: waiting for {left} evicted pod(s) to terminate"
                ));
            }
            Err(e) => {
                report.error_line(&format!("error: {e}"));
                return None;
            }
        }
        let now = Instant::now();
        tokio::time::sleep_until((now + options.poll).min(deadline)).await;
    }
}
