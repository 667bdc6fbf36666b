//! Case `remotes`: N NamespaceOffloadings over three real remote clusters, beside floors
//! measured in the same run by a plain client.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{Namespace, Node, ObjectReference, Secret};
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use nsoffload::api::{NamespaceOffloading, OffloadingPhase};
use nsoffload::reconcile::events::Events;
use nsoffload::reconcile::plan::Notice;
use serde_json::json;

use crate::kit::{self, bulk, Server};

/// Concurrency of the floor's client (the server's default reconcile concurrency).
const FLOOR_CONCURRENCY: usize = 16;

type Remote = (String, String, Client);

async fn peer(home: &Client, id: &str, kubeconfig: &str) -> anyhow::Result<()> {
    let node: Node = serde_json::from_value(json!({"metadata": {"name": format!("vk-{id}"),
        "labels": {"liqo.io/type": "virtual-node", "liqo.io/remote-cluster-id": id}}}))?;
    Api::<Node>::all(home.clone())
        .create(&PostParams::default(), &node)
        .await?;
    let mut secret: Secret = serde_json::from_value(json!({"metadata": {
        "name": format!("remote-{id}"), "namespace": kit::SYSTEM,
        "labels": {"liqo.io/remote-cluster-id": id}}}))?;
    let data = std::fs::read(kubeconfig)?;
    secret.data = Some([("kubeconfig".to_owned(), ByteString(data))].into());
    Api::<Secret>::namespaced(home.clone(), kit::SYSTEM)
        .create(&PostParams::default(), &secret)
        .await?;
    Ok(())
}

/// The writes the reconciler makes for one object, done by a plain client.
async fn floor_one(home: &Client, remotes: &[Remote], i: usize) -> anyhow::Result<()> {
    let ns = format!("floor-{i}");
    let api: Api<NamespaceOffloading> = Api::namespaced(home.clone(), &ns);
    let fin =
        json!({"metadata": {"finalizers": ["namespaceoffloading-controller.liqo.io/finalizer"]}});
    api.patch("floor", &PatchParams::default(), &Patch::Merge(&fin))
        .await?;
    for (id, _, client) in remotes {
        let twin: Namespace = serde_json::from_value(
            json!({"metadata": {"name": format!("{ns}-home"),
            "labels": {"liqo.io/remote-cluster-id": "home"},
            "annotations": {"liqo.io/original-name": ns, "offloading.liqo.io/owner": format!("home/{ns}")}}}),
        )?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &twin)
            .await
            .with_context(|| format!("twin on {id}"))?;
    }
    let status = json!({"status": {"offloadingPhase": "Ready", "remoteNamespaceName": format!("{ns}-home")}});
    api.patch_status("floor", &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// The reconciler's other writes for one object: the scheduling label on the namespace and
/// the Events of the transitions (a twin ready on each cluster, the phase), the same objects
/// through the same code (`reconcile::events`).
async fn floor_rest(
    home: &Client,
    events: &Events,
    remotes: &[Remote],
    i: usize,
) -> anyhow::Result<()> {
    let ns = format!("floor-{i}");
    let label = json!({"metadata": {"labels": {"liqo.io/scheduling-enabled": "true"}}});
    Api::<Namespace>::all(home.clone())
        .patch(&ns, &PatchParams::default(), &Patch::Merge(&label))
        .await?;
    let regarding = ObjectReference {
        api_version: Some("offloading.liqo.io/v1beta1".to_owned()),
        kind: Some("NamespaceOffloading".to_owned()),
        name: Some("floor".to_owned()),
        namespace: Some(ns.clone()),
        ..ObjectReference::default()
    };
    let mut notices: Vec<Notice> = remotes
        .iter()
        .map(|(id, _, _)| Notice {
            warning: false,
            reason: "TwinReady",
            message: format!("namespace {ns}-home is ready on cluster {id}"),
        })
        .collect();
    notices.push(Notice {
        warning: false,
        reason: "Ready",
        message: "every selected cluster has the namespace".to_owned(),
    });
    for notice in &notices {
        events.publish(&regarding, notice).await?;
    }
    Ok(())
}

/// Remote namespaces named with `prefix`, on all clusters.
async fn remaining(remotes: &[Remote], prefix: &str) -> anyhow::Result<usize> {
    let mut n = 0;
    for (_, _, c) in remotes {
        let list = Api::<Namespace>::all(c.clone())
            .list(&ListParams::default())
            .await?;
        n += list
            .items
            .iter()
            .filter(|ns| {
                ns.metadata
                    .name
                    .as_deref()
                    .is_some_and(|m| m.starts_with(prefix))
            })
            .count();
    }
    Ok(n)
}

async fn wait_gone(remotes: &[Remote], prefix: &str, within: Duration) -> anyhow::Result<Duration> {
    let start = Instant::now();
    while remaining(remotes, prefix).await? > 0 {
        anyhow::ensure!(
            start.elapsed() < within,
            "{prefix}* namespaces not gone within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(start.elapsed())
}

pub async fn run(
    home: &Client,
    kubeconfig: &str,
    remotes: &[Remote],
    n: usize,
    log: &Path,
) -> anyhow::Result<()> {
    kit::install(home).await?;
    for (id, path, _) in remotes {
        peer(home, id, path).await?;
    }
    let k = remotes.len();
    bulk(n, 32, |i| {
        kit::offloaded(home, format!("floor-{i}"), "floor")
    })
    .await?;
    let t = Instant::now();
    bulk(n, FLOOR_CONCURRENCY, |i| floor_one(home, remotes, i)).await?;
    let floor_core = t.elapsed();
    let events = Events::new(home.clone(), "nsoffload-floor", "bench");
    let t = Instant::now();
    bulk(n, FLOOR_CONCURRENCY, |i| {
        floor_rest(home, &events, remotes, i)
    })
    .await?;
    let floor = floor_core + t.elapsed();
    println!(
        "remotes: floor: {n} objects ready by a plain client: finalizer, twins, status ({} writes) in {:.1} s; with the scheduling label and the Events too ({} writes) in {:.1} s",
        n * (2 + k),
        floor_core.as_secs_f64(),
        n * (2 + k + 1 + k + 1),
        floor.as_secs_f64()
    );

    bulk(n, 32, |i| {
        kit::offloaded(home, format!("scale-{i}"), "offloading")
    })
    .await?;
    let mut server = Server::start(Path::new(kubeconfig), log)?;
    let ready = server.wait_ready(Duration::from_secs(300)).await?;
    let mut peak = server.usage().0;
    let all_ready = kit::wait_offloadings(
        home,
        Duration::from_secs(900),
        "all Ready",
        |o| {
            o.status.as_ref().and_then(|s| s.offloading_phase) == Some(OffloadingPhase::Ready)
                && o.status
                    .as_ref()
                    .is_some_and(|s| s.observed_generation == o.metadata.generation)
        },
        |total, ready| total >= n && ready == total,
    );
    tokio::pin!(all_ready);
    let took = loop {
        tokio::select! {
            r = &mut all_ready => break r?,
            _ = tokio::time::sleep(Duration::from_secs(1)) => peak = peak.max(server.usage().0),
        }
    };
    println!(
        "remotes: {n} x {k} to Ready in {:.1} s after ready ({:.1} s to ready); floor {:.1} s, ratio {:.2} (without label and Events: floor {:.1} s, ratio {:.2}); peak RSS {peak:.1} MiB",
        took.as_secs_f64(), ready.as_secs_f64(), floor.as_secs_f64(), took.as_secs_f64() / floor.as_secs_f64(),
        floor_core.as_secs_f64(), took.as_secs_f64() / floor_core.as_secs_f64()
    );

    // Unoffloading, beside the time the remote namespace controllers need for as many.
    let on_remotes_before = remote_requests(remotes).await?;
    let t = Instant::now();
    bulk(n, FLOOR_CONCURRENCY, |i| async move {
        for (_, _, c) in remotes {
            Api::<Namespace>::all(c.clone())
                .delete(&format!("floor-{i}-home"), &DeleteParams::default())
                .await?;
        }
        Ok::<_, anyhow::Error>(())
    })
    .await?;
    let floor_gone = t.elapsed() + wait_gone(remotes, "floor-", Duration::from_secs(900)).await?;
    let on_remotes_floor = remote_requests(remotes).await?;
    let cpu_before = server.usage().2;
    let t = Instant::now();
    bulk(n, FLOOR_CONCURRENCY, |i| {
        let api: Api<NamespaceOffloading> = Api::namespaced(home.clone(), &format!("scale-{i}"));
        async move {
            api.delete("offloading", &DeleteParams::default()).await?;
            Ok(())
        }
    })
    .await?;
    kit::wait_offloadings(
        home,
        Duration::from_secs(900),
        "all unoffloaded",
        |_| true,
        |total, _| total == 0,
    )
    .await?;
    let unoffload = t.elapsed();
    let cpu = server.usage().2 - cpu_before;
    let on_remotes_after = remote_requests(remotes).await?;
    println!(
        "remotes: unoffload {n} x {k} in {:.1} s (server CPU {cpu:.1} s); remote namespace controllers alone {:.1} s; ratio {:.2}",
        unoffload.as_secs_f64(), floor_gone.as_secs_f64(), unoffload.as_secs_f64() / floor_gone.as_secs_f64()
    );
    println!(
        "remotes: requests to the remote API servers (all clients, {k} clusters): floor's deletions {}; unoffload {}",
        kit::verbs_delta(&on_remotes_before, &on_remotes_floor),
        kit::verbs_delta(&on_remotes_floor, &on_remotes_after)
    );
    server.stop().await?;
    Ok(())
}

/// [`kit::requests_by_verb`] summed over the remote clusters.
async fn remote_requests(remotes: &[Remote]) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut sum = BTreeMap::new();
    for (_, _, client) in remotes {
        for (verb, n) in kit::requests_by_verb(client).await? {
            *sum.entry(verb).or_default() += n;
        }
    }
    Ok(sum)
}
