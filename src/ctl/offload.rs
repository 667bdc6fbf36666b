//! `offload namespace`: apply the NamespaceOffloading of each namespace, then wait until the
//! reconciler reports on the applied generation.
//!
//! Every namespace is applied first and then all are awaited together, so a slow cluster
//! does not hold the others back and one `--timeout` bounds the whole command. A namespace
//! that cannot be applied (invalid, immutable field, webhook denial) is reported and the
//! others proceed. The result is judged only on a status for the current generation (see
//! `watch`): `Ready` and `NoClusterSelected` succeed (the latter with a warning: the command
//! worked, but no pod will leave the cluster), `SomeFailed`/`AllFailed` fail with each
//! failing cluster's message. Pods already running keep the placement they were created
//! with: when the reconciler reports, for this generation, pods that violate the policy,
//! they are named with the command that moves them (`evict namespace`).

use std::collections::BTreeMap;

use tokio::time::Instant;

use super::intent::Intent;
use super::progress::Reporter;
use super::watch::{self, ClusterState, Offload};
use super::{api, bounded, human, in_order, poll, CtlError, Outcome, Step, WaitOptions};
use crate::api::conditions::{FALSE, PODS_COMPLIANT};
use crate::api::NamespaceOffloading;

/// Applies and awaits every namespace of `intent`; the outcomes are in the order given.
pub async fn offload(
    client: &kube::Client,
    intent: &Intent,
    wait: WaitOptions,
    report: &mut Reporter<'_>,
) -> Vec<(String, Outcome)> {
    let deadline = Instant::now() + wait.timeout;
    let mut outcomes = Vec::new();
    let mut applied = Vec::new();
    for ns in &intent.namespaces {
        match apply_one(client, intent, ns, deadline, wait, report).await {
            Ok(()) => applied.push(ns.clone()),
            Err(e) => {
                report.error_line(&format!("error: {e}"));
                outcomes.push((ns.clone(), Outcome::Failed));
            }
        }
    }
    if !applied.is_empty() {
        report.line(&format!(
            "waiting up to {} for the twin namespaces",
            human(wait.timeout)
        ));
    }
    let mut last: BTreeMap<String, Offload> = BTreeMap::new();
    let (settled, left) = poll(
        client,
        applied,
        deadline,
        wait,
        report,
        |ns, object, report| {
            let view = watch::assess(object);
            if let Some(status) = object.and_then(watch::current_status) {
                report.clusters(ns, &watch::clusters(status), false);
            }
            let step = judge(ns, &view, report);
            if matches!(step, Step::Done(_)) {
                if let Some(message) = object.and_then(violating_pods) {
                    report.warning(&format!("{ns}: {message}"));
                }
            }
            last.insert(ns.to_owned(), view);
            step
        },
    )
    .await;
    outcomes.extend(settled);
    for (ns, why) in left {
        report.error_line(&format!(
            "{ns}: not offloaded within {}: {why}",
            human(wait.timeout)
        ));
        match last.get(&ns) {
            Some(Offload::Waiting {
                processed: true,
                clusters,
                ..
            }) => {
                for (id, state) in clusters {
                    if let ClusterState::Pending(m) | ClusterState::Failing(m) = state {
                        report.error_line(&format!("  {id}: {m}"));
                    }
                }
            }
            Some(Offload::Waiting {
                processed: false, ..
            }) => report.error_line(
                "  the status was never written for this generation: is the nsoffload \
                 reconciler running (serve --reconcile=true)?",
            ),
            _ => {}
        }
        outcomes.push((ns, Outcome::Failed));
    }
    report.finish();
    in_order(outcomes, &intent.namespaces)
}

/// The `PodsCompliant` message when the reconciler judged the pods under this generation
/// and found some that violate it (SPEC §12): running pods keep the placement they were
/// created with, so a stricter policy leaves them where it no longer allows.
fn violating_pods(object: &NamespaceOffloading) -> Option<String> {
    let status = object.status.as_ref()?;
    let condition = status
        .conditions
        .iter()
        .find(|c| c.type_ == PODS_COMPLIANT)?;
    let current = condition.observed_generation == object.metadata.generation;
    (current && condition.status == FALSE).then(|| condition.message.clone())
}

/// Reads the current object (for the immutable fields), applies the new one, prints warnings.
async fn apply_one(
    client: &kube::Client,
    intent: &Intent,
    ns: &str,
    deadline: Instant,
    wait: WaitOptions,
    report: &mut Reporter<'_>,
) -> Result<(), CtlError> {
    let read = api::get(client, ns);
    let existing = bounded(
        deadline,
        wait.timeout,
        ns,
        "read its NamespaceOffloading",
        read,
    )
    .await?;
    if existing
        .as_ref()
        .is_some_and(|o| o.metadata.deletion_timestamp.is_some())
    {
        return Err(CtlError::Immutable {
            namespace: ns.to_owned(),
            message: "its NamespaceOffloading is being deleted; wait until it is gone \
                      (unoffload namespace waits for that), then offload again"
                .to_owned(),
        });
    }
    let object = intent.object(ns, existing.as_ref().map(|o| &o.spec))?;
    let apply = api::apply(client, &object);
    let answer = bounded(
        deadline,
        wait.timeout,
        ns,
        "apply its NamespaceOffloading",
        apply,
    )
    .await?;
    for warning in &answer.warnings {
        report.warning(warning);
    }
    let generation = answer.value.metadata.generation;
    let verb = match existing.as_ref().map(|o| o.metadata.generation) {
        None => "created",
        Some(g) if g == generation => "unchanged",
        Some(_) => "configured",
    };
    let generation = generation.map_or_else(String::new, |g| format!(" (generation {g})"));
    report.line(&format!("{ns}: NamespaceOffloading {verb}{generation}"));
    Ok(())
}

/// What a view means for the command, printing the end result when there is one.
fn judge(ns: &str, view: &Offload, report: &mut Reporter<'_>) -> Step {
    match view {
        Offload::Missing => {
            report.error_line(&format!(
                "error: {ns}: the NamespaceOffloading was deleted while waiting"
            ));
            Step::Done(Outcome::Failed)
        }
        Offload::Deleting => {
            report.error_line(&format!(
                "error: {ns}: the NamespaceOffloading is being deleted while waiting"
            ));
            Step::Done(Outcome::Failed)
        }
        Offload::Waiting { why, .. } => Step::Pending(why.clone()),
        Offload::Ready { twin, clusters } => {
            report.line(&format!(
                "{ns}: Ready: namespace {twin} on {}",
                clusters.join(", ")
            ));
            Step::Done(Outcome::Done)
        }
        Offload::NoClusterSelected { why } => {
            report.line(&format!("{ns}: NoClusterSelected"));
            report.warning(&format!("{ns}: {why}"));
            Step::Done(Outcome::Done)
        }
        Offload::Failed { phase, failing } => {
            report.error_line(&format!(
                "{ns}: {phase}: the twin namespace cannot be created on {} cluster(s):",
                failing.len()
            ));
            for (id, message) in failing {
                report.error_line(&format!("  {id}: {message}"));
            }
            Step::Done(Outcome::Failed)
        }
    }
}
