//! The `PodsCompliant` condition (SPEC §12): which pods of an offloaded namespace no longer
//! follow its policy.
//!
//! The reconciler has no pod cache on purpose: a cluster-wide pod watch would hold every pod
//! of the cluster in memory, for a question asked once per policy change and once per
//! resync. Instead, when a NamespaceOffloading in phase `Ready` or `SomeFailed` has a new
//! generation, a new selection of clusters, or its resync has come, its namespace's pods are
//! read with one paginated list and judged by [`crate::policy::drift`], the rules `evict`
//! and `offload` use too. Between two looks the stored condition stands. After a restart, a
//! condition already computed for the current generation is trusted until a resync, and the
//! resyncs of thousands of namespaces are spread over the interval, so a restart does not
//! list every namespace at once. `evict namespace` marks the NamespaceOffloading with an
//! annotation when it has evicted pods, which makes a look due at once (the condition turns
//! `True` when the pods have moved, not a resync later). A failed list keeps the stored condition and is retried at
//! the next reconcile.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, ListParams};
use kube::Client;
use tokio::time::Instant;

use crate::api::conditions::{reason, FALSE, PODS_COMPLIANT, TRUE};
use crate::api::consts::PODS_EVICTED_ANNOTATION;
use crate::api::{NamespaceOffloading, NamespaceOffloadingSpec};
use crate::policy::drift::{violation, CurrentPolicy, NodeKinds};

/// How many pod names the condition's message carries.
pub const NAMES_SHOWN: usize = 5;
/// A look is due after this share of the resync interval: reconciles requeued for the resync
/// arrive a little before a whole interval has passed since the look.
const DUE_AFTER: f64 = 0.9;
/// Pods per page of the list.
const PAGE: u32 = 500;

/// When each namespace's pods were last judged, and under what.
#[derive(Debug)]
pub struct PodAudit {
    runtime_class: String,
    resync: Duration,
    checked: Mutex<HashMap<String, Checked>>,
}

#[derive(Debug, Clone, Copy)]
struct Checked {
    generation: Option<i64>,
    /// A hash of the selected clusters (a set per namespace would cost memory at scale).
    selection: u64,
    at: Instant,
}

/// The violating pods of one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finding {
    /// How many pods violate the policy.
    pub count: usize,
    /// The first [`NAMES_SHOWN`] of them, by name.
    pub names: Vec<String>,
}

fn hash_of(value: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

impl PodAudit {
    /// Judges pods with the webhook's RuntimeClass name, looking again every `resync`.
    pub fn new(runtime_class: &str, resync: Duration) -> Self {
        PodAudit {
            runtime_class: runtime_class.to_owned(),
            resync,
            checked: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Checked>> {
        self.checked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `namespace`'s pods are due for a look: never looked at (unless `stored`, the
    /// stored condition, was computed for this generation: then at a point of the resync
    /// interval fixed by the name), or looked at under another generation or `selected`
    /// (the selected clusters, and the eviction mark), or at least (nearly) a resync ago.
    pub fn due(
        &self,
        namespace: &str,
        generation: Option<i64>,
        selected: &impl Hash,
        stored: Option<&Condition>,
        now: Instant,
    ) -> bool {
        let selection = hash_of(selected);
        let mut checked = self.lock();
        match checked.get(namespace) {
            Some(c) => {
                c.generation != generation
                    || c.selection != selection
                    || now.saturating_duration_since(c.at) >= self.resync.mul_f64(DUE_AFTER)
            }
            None if stored.is_some_and(|c| c.observed_generation == generation) => {
                let fraction = (hash_of(&namespace) % 1000) as f64 / 1000.0;
                let spread = self.resync.mul_f64(DUE_AFTER * fraction);
                let at = now.checked_sub(spread).unwrap_or(now);
                let entry = Checked {
                    generation,
                    selection,
                    at,
                };
                checked.insert(namespace.to_owned(), entry);
                false
            }
            None => true,
        }
    }

    /// Records a look at `namespace`'s pods.
    pub fn record(
        &self,
        namespace: &str,
        generation: Option<i64>,
        selected: &impl Hash,
        now: Instant,
    ) {
        let entry = Checked {
            generation,
            selection: hash_of(selected),
            at: now,
        };
        self.lock().insert(namespace.to_owned(), entry);
    }

    /// Forgets a namespace that is no longer offloaded.
    pub fn forget(&self, namespace: &str) {
        self.lock().remove(namespace);
    }

    /// Judges the pods of `nsoff`'s namespace when they are due ([`Self::due`]); `None` when
    /// they are not, or when the list failed (logged; the stored condition stands).
    pub async fn review(
        &self,
        home: &Client,
        nsoff: &NamespaceOffloading,
        selected: &BTreeSet<String>,
        nodes: &[std::sync::Arc<Node>],
        stored: Option<&Condition>,
    ) -> Option<Finding> {
        let namespace = nsoff.metadata.namespace.as_deref().unwrap_or_default();
        let generation = nsoff.metadata.generation;
        let now = Instant::now();
        // A new eviction mark counts as a new selection: judged again at once.
        let evicted = nsoff
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(PODS_EVICTED_ANNOTATION));
        let key = (selected, evicted);
        if !self.due(namespace, generation, &key, stored, now) {
            return None;
        }
        match self
            .find(home, namespace, &nsoff.spec, selected, nodes)
            .await
        {
            Ok(finding) => {
                self.record(namespace, generation, &key, now);
                Some(finding)
            }
            Err(e) => {
                tracing::warn!(namespace, error = %e, "cannot list the namespace's pods");
                None
            }
        }
    }

    /// Lists `namespace`'s pods, page by page, and judges each against the policy, with
    /// `nodes` the virtual nodes (any other node is local).
    pub async fn find(
        &self,
        home: &Client,
        namespace: &str,
        spec: &NamespaceOffloadingSpec,
        selected: &BTreeSet<String>,
        nodes: &[std::sync::Arc<Node>],
    ) -> Result<Finding, kube::Error> {
        let kinds = NodeKinds::new(nodes.iter().map(|n| n.as_ref()));
        let kind = |name: &str| kinds.kind(name);
        let policy = CurrentPolicy {
            spec,
            selected,
            runtime_class: &self.runtime_class,
        };
        let api: Api<Pod> = Api::namespaced(home.clone(), namespace);
        let mut names = Vec::new();
        let mut params = ListParams::default().limit(PAGE);
        loop {
            let page = api.list(&params).await?;
            names.extend(
                page.items
                    .iter()
                    .filter(|p| violation(p, &policy, kind).is_some())
                    .map(|p| p.metadata.name.clone().unwrap_or_default()),
            );
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
        names.sort();
        let count = names.len();
        names.truncate(NAMES_SHOWN);
        Ok(Finding { count, names })
    }
}

/// The `PodsCompliant` condition for `finding`, evaluated for `generation`; the transition
/// time is kept from `stored` when status and reason are unchanged.
pub fn condition(
    finding: &Finding,
    namespace: &str,
    stored: Option<&Condition>,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let (status, reason, message) = if finding.count == 0 {
        (
            TRUE,
            reason::PODS_FOLLOW_POLICY,
            "every pod follows the pod offloading policy".to_owned(),
        )
    } else {
        let more = finding.count.saturating_sub(finding.names.len());
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        (
            FALSE,
            reason::PODS_VIOLATE_POLICY,
            format!(
                "{} pod(s) do not follow the pod offloading policy: {}{tail}; move them with: \
                 nsoffload evict namespace {namespace}",
                finding.count,
                finding.names.join(", ")
            ),
        )
    };
    let kept = stored
        .filter(|c| c.status == status && c.reason == reason)
        .map(|c| c.last_transition_time.clone());
    Condition {
        type_: PODS_COMPLIANT.to_owned(),
        status: status.to_owned(),
        last_transition_time: kept.unwrap_or_else(|| now.clone()),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
    }
}

/// The stored `PodsCompliant` condition among `conditions`.
pub fn stored(conditions: &[Condition]) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == PODS_COMPLIANT)
}

#[cfg(test)]
#[path = "pods_tests.rs"]
mod tests;
