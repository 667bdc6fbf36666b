//! One reconcile of one NamespaceOffloading (SPEC §7): the I/O around the pure decisions.
//!
//! The order is chosen so that a crash at any point is safe to resume: the finalizer is
//! ensured before any twin exists (so a deletion can never forget one), the twins are
//! converged on every cluster concurrently (one slow cluster costs one timeout, never the
//! others' progress), and the status is written last and only when it differs from the
//! stored one. Home-cluster writes that fail return an error so the controller retries with
//! backoff; per-cluster failures are status, not errors. Events are returned as [`Notice`]s
//! for the caller to publish, which keeps this module testable against scripted clients.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use k8s_openapi::api::core::v1::{Namespace, Node};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};

use super::home;
use super::pods::{self, PodAudit};
use super::remotes::RemoteClusters;
use super::select::{group_virtual_nodes, select};
use super::status::{self, ClusterView, Failure, StatusInput, TwinState};
use super::twin::{self, Twin};
use crate::api::consts::{NSOFF_FINALIZER, ORPHAN_UNREACHABLE_ANNOTATION};
use crate::api::{
    NamespaceOffloading, NamespaceOffloadingStatus, OffloadingPhase, PodOffloadingStrategy,
};
use crate::cache::NamespaceMeta;
use crate::policy::naming::{check_dns1123_label, twin_namespace_name};

/// What a reconcile needs from the world.
pub struct Context {
    /// The home cluster.
    pub home: Client,
    /// The home cluster id.
    pub home_id: String,
    /// Virtual nodes of the home cluster.
    pub nodes: Store<Node>,
    /// Namespaces of the home cluster.
    pub namespaces: Store<NamespaceMeta>,
    /// Remote cluster clients.
    pub remotes: Arc<dyn RemoteClusters>,
    /// Deadline of each remote call.
    pub remote_timeout: Duration,
    /// The current time (fixed in tests).
    pub clock: fn() -> Time,
    /// Judges the namespace's pods for `PodsCompliant` (SPEC §12); `None` leaves the stored
    /// condition as it is.
    pub pods: Option<PodAudit>,
}

/// The wall clock, in whole seconds (as stored in conditions).
pub fn system_clock() -> Time {
    let now = k8s_openapi::jiff::Timestamp::now();
    Time(k8s_openapi::jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// A Kubernetes Event to publish about the NamespaceOffloading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `Warning` rather than `Normal`.
    pub warning: bool,
    /// Short PascalCase reason.
    pub reason: &'static str,
    /// What happened.
    pub message: String,
}

/// What one reconcile did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// The phase written (or unchanged); `None` when the object was released or not ours.
    pub phase: Option<OffloadingPhase>,
    /// The finalizer was removed: the object is going away.
    pub released: bool,
    /// The status was written.
    pub status_written: bool,
    /// Events to publish.
    pub notices: Vec<Notice>,
    /// Per cluster visited: whether it answered.
    pub reachable: BTreeMap<String, bool>,
    /// A twin of a cluster that is not selected is still being deleted: look again soon,
    /// even though the phase (which counts selected clusters only) may be final.
    pub settling: bool,
    /// How many pods violate the policy, when they were judged in this reconcile.
    pub violating: Option<usize>,
    /// The resourceVersion of this reconcile's last write to the NamespaceOffloading: the
    /// cache is stale until it shows that version.
    pub written: Option<String>,
}

/// A failed write to the home cluster; the controller retries with backoff.
#[derive(Debug, thiserror::Error)]
#[error("{doing}: {source}")]
pub struct HomeError {
    /// What was being done, e.g. `adding the finalizer`.
    pub doing: String,
    /// Short label for metrics.
    pub reason: &'static str,
    /// The API error.
    #[source]
    pub source: kube::Error,
}

/// Reconciles one NamespaceOffloading.
pub async fn reconcile(nsoff: &NamespaceOffloading, ctx: &Context) -> Result<Report, HomeError> {
    let namespace = nsoff.namespace().unwrap_or_default();
    let deleting = nsoff.metadata.deletion_timestamp.is_some();
    let has_finalizer = nsoff.finalizers().iter().any(|f| f == NSOFF_FINALIZER);
    if deleting && !has_finalizer {
        // Never ours, or already released: nothing left to clean up.
        return Ok(Report::default());
    }
    let mut written = None;
    if !deleting && !has_finalizer {
        written = home::add_finalizer(&ctx.home, nsoff).await?;
    }
    let want_label =
        !deleting && nsoff.spec.pod_offloading_strategy != PodOffloadingStrategy::Local;
    home::sync_scheduling_label(&ctx.home, &ctx.namespaces, &namespace, want_label).await?;

    let nodes = ctx.nodes.state();
    let clusters = group_virtual_nodes(nodes.iter().map(|n| n.as_ref()));
    let selection = if deleting {
        Default::default()
    } else {
        select(&nsoff.spec, &clusters)
    };
    let name = twin_namespace_name(&nsoff.spec, &namespace, &ctx.home_id);
    let twin = Twin {
        name: name.clone(),
        home_id: ctx.home_id.clone(),
        local_namespace: namespace.clone(),
    };
    let name_error = check_dns1123_label(&name)
        .err()
        .map(|e| format!("the twin namespace name {name:?} is not valid: {e}"));

    // Every cluster that could hold a twin: with virtual nodes, in the stored status, or with
    // credentials (a twin created just before a lost status write is still found).
    let previous = nsoff.status.as_ref();
    let mut ids: BTreeSet<String> = clusters.keys().cloned().collect();
    ids.extend(
        previous
            .iter()
            .flat_map(|s| s.remote_namespaces_conditions.keys().cloned()),
    );
    let credentials = ctx.remotes.with_credentials();
    ids.extend(credentials.iter().cloned());
    let visits = ids.iter().map(|id| {
        let want = selection.is_selected(id);
        // Gone for good (SPEC §7.10): no virtual node and no credentials. Nothing can be
        // reached there, so its entry leaves the status instead of failing forever.
        let gone = !clusters.contains_key(id) && !credentials.contains(id);
        visit(ctx, id, &twin, want && !gone, name_error.as_deref(), gone)
    });
    let states = join_all(visits).await;
    let mut views = BTreeMap::new();
    let mut report = Report {
        written,
        ..Report::default()
    };
    for (id, twin_state) in ids.iter().zip(states) {
        if let TwinState::Failed(f) = &twin_state {
            report.reachable.insert(id.clone(), !f.unreachable);
        } else if twin_state != TwinState::Absent || clusters.contains_key(id) {
            report.reachable.insert(id.clone(), true);
        }
        let view = ClusterView {
            exists: clusters.contains_key(id),
            selected: selection.is_selected(id),
            twin: twin_state,
        };
        views.insert(id.clone(), view);
    }

    let now = (ctx.clock)();
    let mut computed = status::compute(&StatusInput {
        generation: nsoff.metadata.generation,
        deleting,
        twin_name: &name,
        selector_error: selection.error.as_deref(),
        clusters: &views,
        previous,
        now: &now,
    });
    report.notices = notices(previous, &computed, &views, &name);
    report.settling = views
        .values()
        .any(|v| !v.selected && !matches!(v.twin, TwinState::Absent | TwinState::Failed(_)));
    report.phase = computed.offloading_phase;
    if !deleting {
        review_pods(
            ctx,
            nsoff,
            &selection.selected,
            &nodes,
            &mut computed,
            &mut report,
        )
        .await;
    }

    if deleting {
        let orphan = nsoff
            .annotations()
            .get(ORPHAN_UNREACHABLE_ANNOTATION)
            .is_some_and(|v| v == "true");
        let blocking: Vec<&String> = views
            .iter()
            .filter(|(_, v)| match &v.twin {
                TwinState::Absent => false,
                TwinState::Failed(Failure {
                    unreachable: true, ..
                }) => !orphan,
                _ => true,
            })
            .map(|(id, _)| id)
            .collect();
        if blocking.is_empty() {
            let orphaned: Vec<&String> = views
                .iter()
                .filter(|(_, v)| matches!(v.twin, TwinState::Failed(_)))
                .map(|(id, _)| id)
                .collect();
            if !orphaned.is_empty() {
                report.notices.push(Notice {
                    warning: true,
                    reason: "OrphanedUnreachable",
                    message: format!(
                        "released without deleting namespace {name} on unreachable cluster(s): {}",
                        join(&orphaned)
                    ),
                });
            }
            home::remove_finalizer(&ctx.home, nsoff).await?;
            report.released = true;
            report.phase = None;
            report.written = None;
            return Ok(report);
        }
    }
    if previous != Some(&computed) {
        report.written = home::write_status(&ctx.home, nsoff, &computed).await?;
        report.status_written = true;
    }
    Ok(report)
}

/// Adds the `PodsCompliant` condition to `computed`: judged anew when the phase lets pods run
/// remotely and a look is due, else the stored one; a Warning when violations appear.
async fn review_pods(
    ctx: &Context,
    nsoff: &NamespaceOffloading,
    selected: &BTreeSet<String>,
    nodes: &[Arc<Node>],
    computed: &mut NamespaceOffloadingStatus,
    report: &mut Report,
) {
    let stored = nsoff
        .status
        .as_ref()
        .and_then(|s| pods::stored(&s.conditions));
    let judging = matches!(
        computed.offloading_phase,
        Some(OffloadingPhase::Ready | OffloadingPhase::SomeFailed)
    );
    let finding = match &ctx.pods {
        Some(audit) if judging => {
            audit
                .review(&ctx.home, nsoff, selected, nodes, stored)
                .await
        }
        _ => None,
    };
    let Some(finding) = finding else {
        computed.conditions.extend(stored.cloned());
        return;
    };
    let namespace = nsoff.namespace().unwrap_or_default();
    let now = (ctx.clock)();
    let condition = pods::condition(
        &finding,
        &namespace,
        stored,
        nsoff.metadata.generation,
        &now,
    );
    let was_false = stored.is_some_and(|c| c.status == "False");
    if condition.status == "False" && !was_false {
        report.notices.push(Notice {
            warning: true,
            reason: pods::PODS_VIOLATE_POLICY,
            message: condition.message.clone(),
        });
    }
    report.violating = Some(finding.count);
    computed.conditions.push(condition);
}

fn join(ids: &[&String]) -> String {
    ids.iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Converges one cluster: the twin present when `want`, absent otherwise.
async fn visit(
    ctx: &Context,
    cluster: &str,
    twin: &Twin,
    want: bool,
    name_error: Option<&str>,
    gone: bool,
) -> TwinState {
    if gone {
        return TwinState::Absent;
    }
    if let Some(e) = name_error {
        // No twin can have an invalid name, so there is nothing to delete either.
        return if want {
            TwinState::Failed(Failure {
                message: e.to_owned(),
                unreachable: false,
            })
        } else {
            TwinState::Absent
        };
    }
    let client = match ctx.remotes.client(cluster).await {
        Ok(c) => c,
        Err(f) => return TwinState::Failed(f),
    };
    let api: Api<Namespace> = Api::all(client);
    if want {
        twin::ensure(&api, cluster, twin, ctx.remote_timeout).await
    } else {
        twin::remove(&api, cluster, twin, ctx.remote_timeout).await
    }
}

/// Events for the transitions between the stored status and the computed one.
fn notices(
    previous: Option<&NamespaceOffloadingStatus>,
    computed: &NamespaceOffloadingStatus,
    views: &BTreeMap<String, ClusterView>,
    twin: &str,
) -> Vec<Notice> {
    let mut out = Vec::new();
    let old_reason = |id: &str, type_: &str| {
        previous
            .and_then(|s| s.remote_namespaces_conditions.get(id))
            .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
            .map(|c| c.reason.clone())
    };
    for (id, conditions) in &computed.remote_namespaces_conditions {
        let Some(ready) = conditions.iter().find(|c| c.type_ == status::READY) else {
            continue;
        };
        if old_reason(id, status::READY).as_deref() == Some(ready.reason.as_str()) {
            continue;
        }
        let (warning, reason, message) = match ready.reason.as_str() {
            status::reason::NAMESPACE_CREATED => (
                false,
                "TwinReady",
                format!("namespace {twin} is ready on cluster {id}"),
            ),
            status::reason::CREATION_LOOP_BACK_OFF => (
                true,
                "TwinFailed",
                format!("cluster {id}: {}", ready.message),
            ),
            status::reason::TERMINATING
                if views
                    .get(id)
                    .is_some_and(|v| matches!(v.twin, TwinState::Failed(_))) =>
            {
                (
                    true,
                    "TwinDeletionFailed",
                    format!("cluster {id}: {}", ready.message),
                )
            }
            status::reason::TERMINATING => (
                false,
                "TwinDeleting",
                format!("deleting namespace {twin} on cluster {id}"),
            ),
            _ => continue,
        };
        out.push(Notice {
            warning,
            reason,
            message,
        });
    }
    let top = |s: &NamespaceOffloadingStatus, type_: &str| {
        s.conditions.iter().find(|c| c.type_ == type_).cloned()
    };
    if let Some(sel) = top(computed, status::SELECTOR_VALID).filter(|c| c.status == "False") {
        let was_invalid = previous
            .and_then(|p| top(p, status::SELECTOR_VALID))
            .is_some_and(|c| c.status == "False");
        if !was_invalid {
            out.push(Notice {
                warning: true,
                reason: "InvalidSelector",
                message: sel.message,
            });
        }
    }
    let phase = computed.offloading_phase;
    let was = previous.and_then(|p| p.offloading_phase);
    // A first phase of NoClusterSelected reports that nothing happened: the status says it,
    // and an Event for each new NamespaceOffloading that selects nothing (thousands at once
    // when many namespaces are created) would only load the API server.
    let first_and_idle = was.is_none() && phase == Some(OffloadingPhase::NoClusterSelected);
    if was != phase && !first_and_idle {
        if let (Some(phase), Some(ready)) = (phase, top(computed, status::READY)) {
            let warning = matches!(
                phase,
                OffloadingPhase::SomeFailed | OffloadingPhase::AllFailed
            );
            out.push(Notice {
                warning,
                reason: phase.as_str(),
                message: ready.message,
            });
        }
    }
    out
}
