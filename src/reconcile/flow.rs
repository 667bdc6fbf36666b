//! One reconcile of one NamespaceOffloading (SPEC §7): the I/O around the pure decisions of
//! [`plan`] (observe the caches → plan → apply → settle → apply).
//!
//! The order is chosen so that a crash at any point is safe to resume: the finalizer is
//! ensured before any twin exists (so a deletion can never forget one), the twins are
//! converged on every cluster concurrently (one slow cluster costs one timeout, never the
//! others' progress), and the status is written last and only when it differs from the
//! stored one. Home-cluster writes that fail return an error so the controller retries with
//! backoff; per-cluster failures are status, not errors. Events are returned as
//! [`plan::Notice`]s for the caller to publish, which keeps this module testable against scripted clients.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use k8s_openapi::api::core::v1::{Namespace, Node};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use tokio::time::Instant;

use super::home::{self, HomeError};
use super::plan::{self, Notice, Visit};
use super::pods::{self, PodAudit};
use super::remotes::RemoteClusters;
use super::seen::{Found, SeenTwins};
use super::select::group_virtual_nodes;
use super::status::TwinState;
use super::twin::{self, Twin};
use crate::api::conditions::{reason, FALSE};
use crate::api::{NamespaceOffloading, NamespaceOffloadingStatus, OffloadingPhase};
use crate::cache::namespaces::Namespaces;

/// What a reconcile needs from the world.
pub struct Context {
    /// The home cluster.
    pub home: Client,
    /// The home cluster id.
    pub home_id: String,
    /// Virtual nodes of the home cluster.
    pub nodes: Store<Node>,
    /// Namespaces of the home cluster.
    pub namespaces: Arc<Namespaces>,
    /// Remote cluster clients.
    pub remotes: Arc<dyn RemoteClusters>,
    /// Deadline of each remote call.
    pub remote_timeout: Duration,
    /// The current time (fixed in tests).
    pub clock: fn() -> Time,
    /// Judges the namespace's pods for `PodsCompliant` (SPEC §12); `None` leaves the stored
    /// condition as it is.
    pub pods: Option<PodAudit>,
    /// Twins found ready a moment ago.
    pub seen: Arc<SeenTwins>,
}

/// The wall clock, in whole seconds (as stored in conditions).
pub fn system_clock() -> Time {
    let now = k8s_openapi::jiff::Timestamp::now();
    Time(k8s_openapi::jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
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

/// Reconciles one NamespaceOffloading: [`plan::intend`], the home writes that must come
/// first, every cluster's visit (concurrently), [`plan::settle`], the pod review, then the
/// release or the status write.
pub async fn reconcile(nsoff: &NamespaceOffloading, ctx: &Context) -> Result<Report, HomeError> {
    let nodes = ctx.nodes.state();
    let clusters = group_virtual_nodes(nodes.iter().map(|n| n.as_ref()));
    let credentials = ctx.remotes.with_credentials();
    let Some(intent) = plan::intend(nsoff, &clusters, &credentials, &ctx.home_id) else {
        // Never ours, or already released: nothing left to clean up.
        return Ok(Report::default());
    };
    let mut report = Report::default();
    if intent.add_finalizer {
        report.written = home::add_finalizer(&ctx.home, nsoff).await?;
    }
    let namespace = &intent.twin.local_namespace;
    home::sync_scheduling_label(
        &ctx.home,
        &ctx.namespaces,
        namespace,
        intent.scheduling_label,
    )
    .await?;
    let key = super::object_key(namespace, &nsoff.name_any());
    let generation = nsoff.metadata.generation;
    let visits = intent
        .visits
        .iter()
        .map(|(id, v)| visit(ctx, (&key, generation), id, &intent.twin, v));
    let found = intent
        .visits
        .keys()
        .cloned()
        .zip(join_all(visits).await)
        .collect();
    let plan = plan::settle(&intent, nsoff, &clusters, found, &(ctx.clock)());
    report.notices = plan.notices;
    report.reachable = plan.reachable;
    report.settling = plan.settling;
    report.phase = plan.status.offloading_phase;
    if plan.release {
        home::remove_finalizer(&ctx.home, nsoff).await?;
        ctx.seen.forget(&key);
        report.released = true;
        report.phase = None;
        report.written = None;
        return Ok(report);
    }
    let mut computed = plan.status;
    if !intent.deleting {
        let judge = plan.judge_pods;
        let selected = &intent.selection.selected;
        review_pods(
            ctx,
            nsoff,
            judge,
            selected,
            &nodes,
            &mut computed,
            &mut report,
        )
        .await;
    }
    if nsoff.status.as_ref() != Some(&computed) {
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
    judging: bool,
    selected: &BTreeSet<String>,
    nodes: &[Arc<Node>],
    computed: &mut NamespaceOffloadingStatus,
    report: &mut Report,
) {
    let stored = nsoff
        .status
        .as_ref()
        .and_then(|s| pods::stored(&s.conditions));
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
    let was_false = stored.is_some_and(|c| c.status == FALSE);
    if condition.status == FALSE && !was_false {
        report.notices.push(Notice {
            warning: true,
            reason: reason::PODS_VIOLATE_POLICY,
            message: condition.message.clone(),
        });
    }
    report.violating = Some(finding.count);
    computed.conditions.push(condition);
}

/// Carries out one cluster's visit: the twin made present or absent, or the known outcome
/// (a twin found ready a moment ago is not asked about again).
async fn visit(
    ctx: &Context,
    (key, generation): (&str, Option<i64>),
    cluster: &str,
    twin: &Twin,
    visit: &Visit,
) -> TwinState {
    let expected = match visit {
        Visit::Known(state) => return state.clone(),
        Visit::Ensure { expected } => Some(*expected),
        Visit::Remove => None,
    };
    let found = Found {
        twin: twin.name.clone(),
        generation,
    };
    if expected.is_some() && ctx.seen.ready(key, cluster, &found, Instant::now()) {
        return TwinState::Ready;
    }
    let state = match ctx.remotes.client(cluster).await {
        Err(f) => TwinState::Failed(f),
        Ok(client) => {
            let api: Api<Namespace> = Api::all(client);
            match expected {
                Some(expected) => {
                    twin::ensure(&api, cluster, twin, expected, ctx.remote_timeout).await
                }
                None => twin::remove(&api, cluster, twin, ctx.remote_timeout).await,
            }
        }
    };
    ctx.seen
        .record(key, cluster, &found, &state, Instant::now());
    state
}
