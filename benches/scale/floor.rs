//! The floor of case `many`: the writes the reconciler must make for N NamespaceOffloadings
//! that select no cluster (the finalizer, the namespace's scheduling label, the status), made
//! by a plain client at the reconciler's default concurrency, in the same run: what the API
//! server allows, against which "every phase written" is read.

use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::Client;
use nsoffload::api::NamespaceOffloading;
use serde_json::json;

use crate::kit::{self, bulk};

/// Concurrency of the floor's client (the server's default reconcile concurrency).
const CONCURRENCY: usize = 16;

/// Creates N objects named `floor` (the reconciler would leave them alone, and it is stopped
/// anyway), then times the plain client's writes for all of them.
pub async fn many(home: &Client, n: usize) -> anyhow::Result<Duration> {
    // The server is stopped: its webhooks would refuse (fail closed) the floor's objects.
    absent(
        Api::<MutatingWebhookConfiguration>::all(home.clone())
            .delete("nsoffload", &DeleteParams::default())
            .await,
    )?;
    absent(
        Api::<ValidatingWebhookConfiguration>::all(home.clone())
            .delete("nsoffload", &DeleteParams::default())
            .await,
    )?;
    bulk(n, 32, |i| {
        kit::offloaded(home, format!("floor-{i}"), "floor")
    })
    .await?;
    let t = Instant::now();
    bulk(n, CONCURRENCY, |i| one(home, i)).await?;
    Ok(t.elapsed())
}

/// A deletion's outcome, where "not there" is fine.
fn absent<T>(r: Result<T, kube::Error>) -> Result<(), kube::Error> {
    match r {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other.map(|_| ()),
    }
}

async fn one(home: &Client, i: usize) -> anyhow::Result<()> {
    let ns = format!("floor-{i}");
    let pp = PatchParams::default();
    let api: Api<NamespaceOffloading> = Api::namespaced(home.clone(), &ns);
    let fin =
        json!({"metadata": {"finalizers": ["namespaceoffloading-controller.liqo.io/finalizer"]}});
    api.patch("floor", &pp, &Patch::Merge(&fin)).await?;
    let label = json!({"metadata": {"labels": {"liqo.io/scheduling-enabled": "true"}}});
    Api::<Namespace>::all(home.clone())
        .patch(&ns, &pp, &Patch::Merge(&label))
        .await?;
    let now = "2026-01-01T00:00:00Z";
    let status = json!({"status": {
        "offloadingPhase": "NoClusterSelected",
        "observedGeneration": 1,
        "remoteNamespaceName": format!("{ns}-home"),
        "conditions": [
            {"type": "SelectorValid", "status": "True", "reason": "Valid",
             "message": "the cluster selector is valid", "lastTransitionTime": now,
             "observedGeneration": 1},
            {"type": "Ready", "status": "False", "reason": "NoClusterSelected",
             "message": "no remote cluster is selected", "lastTransitionTime": now,
             "observedGeneration": 1},
        ],
    }});
    api.patch_status("floor", &pp, &Patch::Merge(&status))
        .await?;
    Ok(())
}
