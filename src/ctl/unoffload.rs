//! `unoffload namespace`: delete the NamespaceOffloading of each namespace and wait until it
//! is gone, which happens when the reconciler has deleted every twin namespace it owns and
//! released its finalizer.
//!
//! Gone is the only success: a NamespaceOffloading that still exists may still hold twin
//! namespaces on remote clusters, with workloads in them. While waiting, each cluster whose
//! twin is deleted gets a line; at the deadline the command lists the clusters that still
//! hold one, with the status message (an unreachable cluster says so), and the way out for a
//! cluster that is gone for good (the orphan annotation). A namespace that was not offloaded
//! is already in the state asked for, and succeeds. A namespace offloaded by its
//! `liqo.io/enabled=true` label (quick offloading) loses the label first; otherwise the
//! NamespaceOffloading would be created again as soon as it is gone.

use std::collections::BTreeMap;

use tokio::time::Instant;

use super::progress::Reporter;
use super::watch::{self, Removal};
use super::{api, bounded, human, in_order, poll, CtlError, Outcome, Step, WaitOptions};
use crate::api::consts::{OFFLOADING_ENABLED_LABEL, ORPHAN_UNREACHABLE_ANNOTATION};

/// Deletes and awaits every namespace's NamespaceOffloading; outcomes in the order given.
pub async fn unoffload(
    client: &kube::Client,
    namespaces: &[String],
    wait: WaitOptions,
    report: &mut Reporter<'_>,
) -> Vec<(String, Outcome)> {
    const DOING: &str = "delete its NamespaceOffloading";
    let deadline = Instant::now() + wait.timeout;
    let mut outcomes = Vec::new();
    let mut deleted = Vec::new();
    for ns in namespaces {
        if let Err(e) = release_quick_offloading(client, ns, deadline, wait, report).await {
            report.error_line(&format!("error: {e}"));
            outcomes.push((ns.clone(), Outcome::Failed));
            continue;
        }
        let call = api::delete(client, ns);
        match bounded(deadline, wait.timeout, ns, DOING, call).await {
            Ok(answer) => {
                for warning in &answer.warnings {
                    report.warning(warning);
                }
                if answer.value {
                    report.line(&format!("{ns}: NamespaceOffloading deleted"));
                    deleted.push(ns.clone());
                } else {
                    report.line(&format!("{ns}: not offloaded (no NamespaceOffloading)"));
                    outcomes.push((ns.clone(), Outcome::Done));
                }
            }
            Err(e) => {
                report.error_line(&format!("error: {e}"));
                outcomes.push((ns.clone(), Outcome::Failed));
            }
        }
    }
    if !deleted.is_empty() {
        report.line(&format!(
            "waiting up to {} for the twin namespaces to be deleted",
            human(wait.timeout)
        ));
    }
    let mut last: BTreeMap<String, Removal> = BTreeMap::new();
    let (settled, left) = poll(
        client,
        deleted,
        deadline,
        wait,
        report,
        |ns, object, report| {
            if let Some(status) = object.and_then(|o| o.status.as_ref()) {
                report.clusters(ns, &watch::clusters(status), true);
            }
            let removal = watch::assess_removal(object);
            let step = match &removal {
                Removal::Gone => {
                    report.line(&format!("{ns}: unoffloaded"));
                    Step::Done(Outcome::Done)
                }
                Removal::Pending { holding, .. } if holding.is_empty() => {
                    Step::Pending("waiting for the finalizer to be released".to_owned())
                }
                Removal::Pending { holding, .. } => {
                    let ids: Vec<&str> = holding.iter().map(|(id, _)| id.as_str()).collect();
                    Step::Pending(format!(
                        "waiting for the twin namespaces on {}",
                        ids.join(", ")
                    ))
                }
            };
            last.insert(ns.to_owned(), removal);
            step
        },
    )
    .await;
    outcomes.extend(settled);
    for (ns, why) in left {
        report.error_line(&format!(
            "{ns}: still offloaded after {}: {why}",
            human(wait.timeout)
        ));
        match last.get(&ns) {
            Some(Removal::Pending { holding, .. }) if !holding.is_empty() => {
                report.error_line("  clusters still holding a twin namespace:");
                for (id, message) in holding {
                    report.error_line(&format!("  {id}: {message}"));
                }
                report.error_line(&format!(
                    "  if a cluster is gone for good, release it with: kubectl annotate \
                     namespaceoffloading -n {ns} offloading {ORPHAN_UNREACHABLE_ANNOTATION}=true"
                ));
            }
            Some(Removal::Pending { started: false, .. }) => report.error_line(
                "  the reconciler has not started the deletion: is the nsoffload reconciler \
                 running (serve --reconcile=true)?",
            ),
            _ => {}
        }
        outcomes.push((ns, Outcome::Failed));
    }
    report.finish();
    in_order(outcomes, namespaces)
}

/// Removes the quick-offloading label of `ns` if it is set: with it, quick offloading would
/// create the NamespaceOffloading again right after the delete.
async fn release_quick_offloading(
    client: &kube::Client,
    ns: &str,
    deadline: Instant,
    wait: WaitOptions,
    report: &mut Reporter<'_>,
) -> Result<(), CtlError> {
    let read = api::quick_offloading(client, ns);
    if !bounded(deadline, wait.timeout, ns, "read the namespace", read).await? {
        return Ok(());
    }
    let drop = api::drop_quick_label(client, ns);
    bounded(deadline, wait.timeout, ns, "remove its label", drop).await?;
    report.line(&format!(
        "{ns}: label {OFFLOADING_ENABLED_LABEL}=true removed (quick offloading would \
         recreate the NamespaceOffloading)"
    ));
    Ok(())
}
