//! `evict namespace`: move the pods that no longer follow their namespace's policy (SPEC §12).
//!
//! Evictions go through the Eviction API, so PodDisruptionBudgets hold: an eviction a budget
//! refuses (429) is tried again until the deadline, then reported. A pod is evicted only when
//! something recreates it, mutated by the current policy: pods of a DaemonSet are reported and
//! left (the DaemonSet would put them back on the same node), pods without a controller are
//! skipped unless asked for (an eviction deletes them for good). After the evictions the
//! command waits until the evicted pods are gone and judges the namespace again; a
//! replacement that violates the policy again is reported, never evicted in a loop. Success
//! is only that: no violating pod is left.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use http::{Method, StatusCode};
use tokio::time::Instant;

use super::drift::{self, Judged, Offender};
use super::progress::Reporter;
use super::{api, bounded, in_order, CtlError, Outcome};
use crate::policy::drift::Controller;

/// How `evict` runs.
#[derive(Debug, Clone)]
pub struct EvictOptions {
    /// Only list what would be evicted.
    pub dry_run: bool,
    /// Evict pods without a controller too (they are deleted for good).
    pub include_unmanaged: bool,
    /// The whole command's deadline.
    pub timeout: Duration,
    /// Pause between two rounds of refused evictions, and between two looks at the pods.
    pub poll: Duration,
    /// The webhook's RuntimeClass name.
    pub runtime_class: String,
}

/// What to do with an offender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Evict it.
    Evict,
    /// Leave it: its DaemonSet would recreate it on the same node.
    DaemonSet,
    /// Leave it: nothing would recreate it (`--include-unmanaged` evicts it).
    Unmanaged,
}

/// The action for `offender` under `options`.
pub fn action(offender: &Offender, include_unmanaged: bool) -> Action {
    match offender.controller {
        Controller::Workload { .. } => Action::Evict,
        Controller::DaemonSet { .. } => Action::DaemonSet,
        Controller::None if include_unmanaged => Action::Evict,
        Controller::None => Action::Unmanaged,
    }
}

fn describe(offender: &Offender, action: Action) -> String {
    let what = match action {
        Action::Evict => "evict".to_owned(),
        Action::DaemonSet => match &offender.controller {
            Controller::DaemonSet { name } => format!(
                "skip: DaemonSet {name} would recreate it on the same node; change the \
                 DaemonSet's node selection instead"
            ),
            _ => "skip: DaemonSet".to_owned(),
        },
        Action::Unmanaged => {
            "skip: no controller would recreate it (--include-unmanaged evicts it for good)"
                .to_owned()
        }
    };
    format!("  {} {} [{what}]", offender.name, offender.violation)
}

/// The Eviction API version the API server serves: `policy/v1` (Kubernetes 1.22+), else
/// `policy/v1beta1`.
pub async fn eviction_version(client: &kube::Client) -> Result<&'static str, CtlError> {
    const DOING: &str = "discover the Eviction API";
    let req = api::request(Method::GET, "/apis/policy/v1".to_owned(), "", Vec::new())?;
    Ok(match api::call(client, "", DOING, req).await? {
        Some(_) => "policy/v1",
        None => "policy/v1beta1",
    })
}

/// One eviction's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evicted {
    /// Accepted (or the pod was already gone).
    Done,
    /// Refused for now (a PodDisruptionBudget, 429): try again later.
    Refused(String),
}

/// Asks the API server to evict `pod` of `namespace`.
pub async fn evict_pod(
    client: &kube::Client,
    version: &str,
    namespace: &str,
    pod: &str,
) -> Result<Evicted, CtlError> {
    const DOING: &str = "evict a pod";
    let body = serde_json::json!({
        "apiVersion": version,
        "kind": "Eviction",
        "metadata": {"name": pod, "namespace": namespace},
    });
    let uri = format!("/api/v1/namespaces/{namespace}/pods/{pod}/eviction");
    let req = api::request(
        Method::POST,
        uri,
        "application/json",
        body.to_string().into_bytes(),
    )?;
    match api::call(client, namespace, DOING, req).await {
        Ok(_) => Ok(Evicted::Done),
        Err(CtlError::Refused { code, message, .. })
            if code == StatusCode::TOO_MANY_REQUESTS.as_u16() =>
        {
            Ok(Evicted::Refused(message))
        }
        Err(e) => Err(e),
    }
}

/// Evicts the violating pods of every namespace; outcomes in the order given. `confirm` is
/// asked once, with the number of pods to evict, before anything is evicted.
pub async fn evict(
    client: &kube::Client,
    namespaces: &[String],
    options: &EvictOptions,
    report: &mut Reporter<'_>,
    confirm: &mut dyn FnMut(usize) -> bool,
) -> Vec<(String, Outcome)> {
    let deadline = Instant::now() + options.timeout;
    let mut outcomes = Vec::new();
    let mut found: BTreeMap<String, Judged> = BTreeMap::new();
    for ns in namespaces {
        let judge = drift::judge(client, ns, &options.runtime_class);
        match bounded(deadline, options.timeout, ns, "list its pods", judge).await {
            Ok(judged) => {
                print_found(ns, &judged, options.include_unmanaged, report);
                if judged.offenders.is_empty() {
                    outcomes.push((ns.clone(), Outcome::Done));
                } else {
                    found.insert(ns.clone(), judged);
                }
            }
            Err(e) => {
                report.error_line(&format!("error: {e}"));
                outcomes.push((ns.clone(), Outcome::Failed));
            }
        }
    }
    let to_evict: usize = found
        .values()
        .flat_map(|j| &j.offenders)
        .filter(|o| action(o, options.include_unmanaged) == Action::Evict)
        .count();
    let go = !found.is_empty() && !options.dry_run && to_evict > 0 && confirm(to_evict);
    if options.dry_run && !found.is_empty() {
        report.line(&format!(
            "dry run: {to_evict} pod(s) would be evicted; nothing was"
        ));
    }
    if !go {
        if !options.dry_run && to_evict > 0 {
            report.error_line("not confirmed; nothing was evicted");
        } else if !options.dry_run && !found.is_empty() {
            report.error_line("no violating pod can be evicted (see above); nothing was evicted");
        }
        outcomes.extend(found.into_keys().map(|ns| (ns, Outcome::Failed)));
        return in_order(outcomes, namespaces);
    }
    let version = match bounded(
        deadline,
        options.timeout,
        "",
        "discover the Eviction API",
        eviction_version(client),
    )
    .await
    {
        Ok(v) => v,
        Err(e) => {
            report.error_line(&format!("error: {e}"));
            outcomes.extend(found.into_keys().map(|ns| (ns, Outcome::Failed)));
            return in_order(outcomes, namespaces);
        }
    };
    for (ns, judged) in found {
        let outcome = super::evict_run::evict_namespace(
            client, version, &ns, judged, options, deadline, report,
        )
        .await;
        outcomes.push((ns, outcome));
    }
    report.finish();
    in_order(outcomes, namespaces)
}

/// Prints what was found in `ns`.
fn print_found(ns: &str, judged: &Judged, include_unmanaged: bool, report: &mut Reporter<'_>) {
    if !judged.offloaded {
        report.line(&format!("{ns}: not offloaded; no pod to judge"));
        return;
    }
    if judged.offenders.is_empty() {
        report.line(&format!("{ns}: every pod follows the policy"));
        return;
    }
    report.line(&format!(
        "{ns}: {} pod(s) do not follow the policy:",
        judged.offenders.len()
    ));
    for o in &judged.offenders {
        report.line(&describe(o, action(o, include_unmanaged)));
    }
}

/// Pods of `uids` still present in `judged`'s listing.
pub(super) fn still_there(uids: &BTreeSet<String>, judged: &Judged) -> usize {
    uids.intersection(&judged.seen).count()
}
