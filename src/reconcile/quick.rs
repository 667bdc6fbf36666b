//! Quick offloading (SPEC §6): the `liqo.io/enabled=true` namespace label stands for a
//! default NamespaceOffloading.
//!
//! The label is the desired state: a labelled namespace without a NamespaceOffloading gets
//! one (`DefaultName`, `LocalAndRemote`, every cluster) marked with the created-by-label
//! annotation; once the label is gone, only a NamespaceOffloading carrying that annotation is
//! deleted — a hand-made one never is, whatever the label says. The decision is a pure
//! function of the namespace and the cached NamespaceOffloading; the deletion is guarded by
//! the cached object's uid, so a hand-made replacement created meanwhile survives. It reads
//! the reconciler's namespace cache and the process-wide NamespaceOffloading cache, so
//! neither kind is watched or held twice; a NamespaceOffloading's change, its deletion
//! included, triggers its namespace.

use std::collections::BTreeMap;
use std::sync::Arc;

use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::{future, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Client;
use tokio_util::sync::CancellationToken;

use crate::api::consts::{CREATED_BY_LABEL_ANNOTATION, NSOFF_NAME};
use crate::api::{NamespaceOffloading, NamespaceOffloadingSpec};
use crate::cache::namespaces::{NamespaceFacts, Namespaces};
use crate::cache::{self, Synced};

/// What quick offloading does for one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QuickAction {
    /// Create the default NamespaceOffloading.
    Create,
    /// Delete the label-made NamespaceOffloading with this uid.
    Delete(Option<String>),
    /// Nothing to do.
    Nothing,
}

/// The decision for a namespace (what is read of it) and its (cached) NamespaceOffloading
/// named `offloading`.
pub(crate) fn decide(namespace: &NamespaceFacts, nsoff: Option<&ObjectMeta>) -> QuickAction {
    if namespace.terminating {
        return QuickAction::Nothing;
    }
    match (namespace.offloading_enabled, nsoff) {
        (true, None) => QuickAction::Create,
        (false, Some(meta)) if made_by_label(meta) && meta.deletion_timestamp.is_none() => {
            QuickAction::Delete(meta.uid.clone())
        }
        _ => QuickAction::Nothing,
    }
}

fn made_by_label(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(CREATED_BY_LABEL_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// The default NamespaceOffloading of quick offloading.
pub(crate) fn default_offloading(namespace: &str) -> NamespaceOffloading {
    let mut nsoff = NamespaceOffloading::new(NSOFF_NAME, NamespaceOffloadingSpec::default());
    nsoff.metadata.namespace = Some(namespace.to_owned());
    nsoff.metadata.annotations = Some(BTreeMap::from([(
        CREATED_BY_LABEL_ANNOTATION.to_owned(),
        "true".to_owned(),
    )]));
    nsoff
}

/// Applies the decision for `namespace`.
pub(crate) async fn apply(
    client: &Client,
    namespace: &str,
    action: QuickAction,
) -> Result<(), kube::Error> {
    let api: Api<NamespaceOffloading> = Api::namespaced(client.clone(), namespace);
    match action {
        QuickAction::Nothing => Ok(()),
        QuickAction::Create => match api
            .create(&PostParams::default(), &default_offloading(namespace))
            .await
        {
            Ok(_) => {
                tracing::info!(
                    namespace,
                    "created the default NamespaceOffloading (quick offloading)"
                );
                Ok(())
            }
            // One exists already (hand-made or ours): never replaced.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(e),
        },
        QuickAction::Delete(uid) => {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid,
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match api.delete(NSOFF_NAME, &params).await {
                Ok(_) => {
                    tracing::info!(
                        namespace,
                        "deleted the label-made NamespaceOffloading (quick offloading)"
                    );
                    Ok(())
                }
                // Gone, or replaced by another object: nothing of ours to delete.
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
                Err(e) => Err(e),
            }
        }
    }
}

/// What quick offloading reads: the reconciler's own caches.
pub(crate) struct QuickCaches {
    /// Namespaces (shared with the reconciler); quick offloading subscribes to their changes.
    pub namespaces: Arc<Namespaces>,
    /// NamespaceOffloadings (shared with the reconciler).
    pub nsoffs: Store<NamespaceOffloading>,
    /// The NamespaceOffloadings that changed or went (the cache's subscription).
    pub nsoff_changes: BoxStream<'static, ObjectRef<NamespaceOffloading>>,
    /// Readiness of both stores, which every reconcile observes.
    pub synced: [Synced; 2],
}

struct QuickContext {
    client: Client,
    nsoffs: Store<NamespaceOffloading>,
    synced: [Synced; 2],
    resync: Duration,
}

/// How long a reconcile waits for the caches before it is retried.
const SYNC_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
#[error("quick offloading of namespace {namespace}: {source}")]
struct QuickError {
    namespace: String,
    #[source]
    source: kube::Error,
}

/// One pass over one namespace; `Ok(None)`: nothing more until it changes.
async fn reconcile(
    name: String,
    ns: NamespaceFacts,
    ctx: &QuickContext,
) -> Result<Option<Duration>, QuickError> {
    let [namespaces, nsoffs] = &ctx.synced;
    if !cache::all_synced(&[namespaces, nsoffs], SYNC_WAIT).await {
        // Not known yet whether the namespace has a NamespaceOffloading: look again soon
        // (waiting for a change of the namespace could wait forever).
        return Ok(Some(Duration::from_secs(5)));
    }
    let cached = ctx.nsoffs.get(&ObjectRef::new(NSOFF_NAME).within(&name));
    let meta = cached.as_ref().map(|o| &o.metadata);
    let action = decide(&ns, meta);
    apply(&ctx.client, &name, action)
        .await
        .map_err(|source| QuickError {
            namespace: name,
            source,
        })?;
    // A labelled namespace is looked at again at each resync, in case a change was missed
    // while the watch was down.
    Ok(ns.offloading_enabled.then_some(ctx.resync))
}

/// How soon a failed pass is retried.
const RETRY: Duration = Duration::from_secs(10);

/// Runs the quick-offloading controller on the reconciler's caches until `cancel`, with at
/// most `concurrency` namespaces at once.
pub(crate) async fn controller(
    client: Client,
    caches: QuickCaches,
    concurrency: u16,
    resync: Duration,
    cancel: CancellationToken,
) {
    let ctx = Arc::new(QuickContext {
        client,
        nsoffs: caches.nsoffs,
        synced: caches.synced,
        resync,
    });
    let triggers = futures_util::stream::select(
        caches.namespaces.subscribe(),
        caches
            .nsoff_changes
            .filter_map(|r| future::ready(r.namespace)),
    );
    let namespaces = caches.namespaces;
    let pass = move |name: String| {
        let (ctx, namespaces) = (ctx.clone(), namespaces.clone());
        async move {
            // A namespace gone from the cache has nothing left to offload.
            let ns = namespaces.get(&name)?;
            match reconcile(name, ns, &ctx).await {
                Ok(again) => again,
                Err(error) => {
                    tracing::warn!(error = %error, "quick offloading failed; retrying");
                    Some(RETRY)
                }
            }
        }
    };
    super::runner::drive(triggers, usize::from(concurrency), pass, cancel).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ns(labels: serde_json::Value, deleting: bool) -> ObjectMeta {
        let mut v = json!({"name": "shop", "labels": labels});
        if deleting {
            v["deletionTimestamp"] = json!("2026-11-22T10:00:00Z");
        }
        serde_json::from_value(v).unwrap()
    }

    fn meta(annotations: serde_json::Value, deleting: bool) -> ObjectMeta {
        let mut v = json!({"name": "offloading", "uid": "u1", "annotations": annotations});
        if deleting {
            v["deletionTimestamp"] = json!("2026-11-22T10:00:00Z");
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn decisions() {
        let on = json!({"liqo.io/enabled": "true"});
        let off = json!({});
        let auto = json!({"offloading.liqo.io/created-by-label": "true"});
        let hand = json!({});
        let delete = QuickAction::Delete(Some("u1".to_owned()));
        let cases = [
            (
                "labelled, none",
                ns(on.clone(), false),
                None,
                QuickAction::Create,
            ),
            (
                "labelled, hand-made exists",
                ns(on.clone(), false),
                Some(meta(hand.clone(), false)),
                QuickAction::Nothing,
            ),
            (
                "labelled, label-made exists",
                ns(on.clone(), false),
                Some(meta(auto.clone(), false)),
                QuickAction::Nothing,
            ),
            (
                "label false",
                ns(json!({"liqo.io/enabled": "false"}), false),
                Some(meta(auto.clone(), false)),
                delete.clone(),
            ),
            (
                "label removed, label-made",
                ns(off.clone(), false),
                Some(meta(auto.clone(), false)),
                delete,
            ),
            (
                "label removed, hand-made is never deleted",
                ns(off.clone(), false),
                Some(meta(hand, false)),
                QuickAction::Nothing,
            ),
            (
                "label removed, already deleting",
                ns(off.clone(), false),
                Some(meta(auto.clone(), true)),
                QuickAction::Nothing,
            ),
            (
                "label removed, none",
                ns(off, false),
                None,
                QuickAction::Nothing,
            ),
            (
                "namespace being deleted",
                ns(on, true),
                None,
                QuickAction::Nothing,
            ),
        ];
        for (name, namespace, nsoff, want) in cases {
            let facts = NamespaceFacts::of(&namespace);
            assert_eq!(decide(&facts, nsoff.as_ref()), want, "{name}");
        }
    }

    #[test]
    fn the_default_offloading_is_marked_as_made_by_the_label() {
        let value = serde_json::to_value(default_offloading("shop")).unwrap();
        assert_eq!(
            value,
            json!({
                "apiVersion": "offloading.liqo.io/v1beta1",
                "kind": "NamespaceOffloading",
                "metadata": {
                    "name": "offloading",
                    "namespace": "shop",
                    "annotations": {"offloading.liqo.io/created-by-label": "true"},
                },
                "spec": {"namespaceMappingStrategy": "DefaultName", "podOffloadingStrategy": "LocalAndRemote"},
            })
        );
    }
}
