//! Writes to the home cluster: the finalizer, the scheduling label, the status.
//!
//! Each write is as narrow as the change it makes. The finalizer is added and removed with
//! JSON patches guarded by `test` operations, so a finalizer another controller adds or
//! removes at the same moment is never overwritten; the status is replaced as a whole on the
//! status subresource (it is entirely ours, and stale map entries must disappear); the label
//! is a merge patch of one key, sent only when the cached namespace differs.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams};

use kube::{Client, ResourceExt};
use serde_json::{json, Value};

use crate::api::consts::{NSOFF_FINALIZER, SCHEDULING_ENABLED_LABEL};
use crate::api::{NamespaceOffloading, NamespaceOffloadingStatus};
use crate::cache::namespaces::Namespaces;
use crate::registration::FIELD_MANAGER;

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

fn json_patch(ops: Value) -> Patch<Value> {
    // Every caller builds a list of operations, which always reads as a JSON patch.
    let patch: json_patch::Patch =
        serde_json::from_value(ops).unwrap_or_else(|_| json_patch::Patch(Vec::new()));
    Patch::Json(patch)
}

fn api(client: &Client, nsoff: &NamespaceOffloading) -> Api<NamespaceOffloading> {
    Api::namespaced(client.clone(), &nsoff.namespace().unwrap_or_default())
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

fn home_error(doing: &'static str, reason: &'static str) -> impl FnOnce(kube::Error) -> HomeError {
    move |source| HomeError {
        doing: doing.to_owned(),
        reason,
        source,
    }
}

/// The JSON patch that appends our finalizer, guarded by the current list.
pub fn add_finalizer_ops(current: &[String]) -> Value {
    if current.is_empty() {
        json!([
            { "op": "test", "path": "/metadata/finalizers", "value": null },
            { "op": "add", "path": "/metadata/finalizers", "value": [NSOFF_FINALIZER] },
        ])
    } else {
        json!([
            { "op": "test", "path": "/metadata/finalizers", "value": current },
            { "op": "add", "path": "/metadata/finalizers/-", "value": NSOFF_FINALIZER },
        ])
    }
}

/// The JSON patch that removes our finalizer at its current index; `None` when absent.
pub fn remove_finalizer_ops(current: &[String]) -> Option<Value> {
    let i = current.iter().position(|f| f == NSOFF_FINALIZER)?;
    let path = format!("/metadata/finalizers/{i}");
    Some(json!([
        { "op": "test", "path": path, "value": NSOFF_FINALIZER },
        { "op": "remove", "path": path },
    ]))
}

/// Adds the finalizer; the resourceVersion written.
pub async fn add_finalizer(
    client: &Client,
    nsoff: &NamespaceOffloading,
) -> Result<Option<String>, HomeError> {
    let ops = add_finalizer_ops(nsoff.finalizers());
    api(client, nsoff)
        .patch(&nsoff.name_any(), &params(), &json_patch(ops))
        .await
        .map(|o| o.resource_version())
        .map_err(home_error("adding the finalizer", "finalizer"))
}

/// Removes the finalizer (the object then goes away).
pub async fn remove_finalizer(
    client: &Client,
    nsoff: &NamespaceOffloading,
) -> Result<(), HomeError> {
    let Some(ops) = remove_finalizer_ops(nsoff.finalizers()) else {
        return Ok(());
    };
    match api(client, nsoff)
        .patch(&nsoff.name_any(), &params(), &json_patch(ops))
        .await
    {
        Ok(_) => Ok(()),
        // Already gone.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(home_error("removing the finalizer", "finalizer")(e)),
    }
}

/// Replaces the status; the resourceVersion written.
pub async fn write_status(
    client: &Client,
    nsoff: &NamespaceOffloading,
    status: &NamespaceOffloadingStatus,
) -> Result<Option<String>, HomeError> {
    let ops = json!([{ "op": "add", "path": "/status", "value": status }]);
    api(client, nsoff)
        .patch_status(&nsoff.name_any(), &params(), &json_patch(ops))
        .await
        .map(|o| o.resource_version())
        .map_err(home_error("writing the status", "status"))
}

/// The merge patch that sets the scheduling label to `true`, or removes it.
pub fn label_patch(present: bool) -> Value {
    let value = if present { json!("true") } else { Value::Null };
    json!({ "metadata": { "labels": { SCHEDULING_ENABLED_LABEL: value } } })
}

/// Sets or removes the scheduling label on the local namespace, when the cached namespace
/// says it differs. A namespace that is gone (or being deleted, when adding) is left alone.
pub async fn sync_scheduling_label(
    client: &Client,
    namespaces: &Namespaces,
    namespace: &str,
    want: bool,
) -> Result<(), HomeError> {
    let Some(ns) = namespaces.get(namespace) else {
        return Ok(());
    };
    if ns.scheduling_enabled == want || (want && ns.terminating) {
        return Ok(());
    }
    let api: Api<Namespace> = Api::all(client.clone());
    match api
        .patch(namespace, &params(), &Patch::Merge(label_patch(want)))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(home_error(
            "updating the scheduling label of the namespace",
            "namespace_label",
        )(e)),
    }
}
