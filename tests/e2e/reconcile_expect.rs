//! What the reconciler tests expect, and the bounded waits for it (SPEC §2 and §7).
//!
//! A status is awaited as a whole: [`wait_status`] polls until the phase, the generation it
//! was computed for, the twin name and every cluster's conditions are all as expected, and on
//! timeout reports the first difference and the status last seen. Expected values are
//! written from the SPEC here, not computed with the crate's code.

use std::collections::BTreeMap;

use anyhow::{anyhow, ensure, Context as _};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt as _};
use nsoffload::api::{NamespaceOffloading, OffloadingPhase, RemoteNamespaceCondition};
use serde_json::json;

use crate::fixtures::{pod, tv, unprocessed};
use crate::harness::HOME_CLUSTER_ID;
use crate::kit::{api_status, retry, trimmed, wait_until, Attempt};
use crate::remote::{
    Remote, CLUSTER_ID_LABEL, ORIGINAL_NAME_ANNOTATION, OWNER_ANNOTATION, SCHEDULING_LABEL, TIMEOUT,
};

/// What a test expects of one remote cluster in the status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// Selected, and the twin is there.
    Twin,
    /// Not selected, and no twin (so no `Ready` condition either).
    NotSelected,
    /// Selected, but a namespace of the twin's name is not ours.
    Conflict,
    /// Selected, but the cluster cannot be reached (the message names the cause).
    Unreachable,
}

impl Want {
    /// The conditions as type → (status, reason).
    fn conditions(self) -> BTreeMap<&'static str, (&'static str, &'static str)> {
        let selected = ("OffloadingRequired", ("True", "ClusterSelected"));
        match self {
            Want::Twin => BTreeMap::from([selected, ("Ready", ("True", "NamespaceCreated"))]),
            Want::NotSelected => {
                BTreeMap::from([("OffloadingRequired", ("False", "ClusterNotSelected"))])
            }
            Want::Conflict | Want::Unreachable => {
                BTreeMap::from([selected, ("Ready", ("False", "CreationLoopBackOff"))])
            }
        }
    }
}

/// Every remote cluster with the same expectation.
pub fn all(remotes: &[Remote], want: Want) -> BTreeMap<String, Want> {
    remotes.iter().map(|r| (r.id.clone(), want)).collect()
}

/// The twin name of the `DefaultName` strategy.
pub fn default_twin(local: &str) -> String {
    format!("{local}-{HOME_CLUSTER_ID}")
}

fn cluster_conditions(list: &[RemoteNamespaceCondition]) -> BTreeMap<&str, (&str, &str)> {
    list.iter()
        .map(|c| (c.type_.as_str(), (c.status.as_str(), c.reason.as_str())))
        .collect()
}

/// Checks `o`'s status against the expectation; `Err` says the first difference.
fn status_matches(
    o: &NamespaceOffloading,
    phase: OffloadingPhase,
    twin: &str,
    want: &BTreeMap<String, Want>,
) -> Result<(), String> {
    let status = o.status.as_ref().ok_or("no status yet")?;
    if status.offloading_phase != Some(phase) {
        return Err(format!(
            "phase {:?}, expected {phase}",
            status.offloading_phase
        ));
    }
    if status.observed_generation != o.metadata.generation {
        return Err(format!(
            "observedGeneration {:?}, expected the object's generation {:?}",
            status.observed_generation, o.metadata.generation
        ));
    }
    if status.remote_namespace_name.as_deref() != Some(twin) {
        return Err(format!(
            "remoteNamespaceName {:?}, expected {twin:?}",
            status.remote_namespace_name
        ));
    }
    let ids: Vec<&String> = status.remote_namespaces_conditions.keys().collect();
    if !ids.iter().copied().eq(want.keys()) {
        return Err(format!(
            "remoteNamespacesConditions has clusters {ids:?}, expected exactly {:?}",
            want.keys().collect::<Vec<_>>()
        ));
    }
    for (id, expected) in want {
        let list = &status.remote_namespaces_conditions[id];
        let got = cluster_conditions(list);
        let wanted = expected.conditions();
        if got != wanted || list.len() != wanted.len() {
            return Err(format!(
                "cluster {id}: conditions (type: status, reason) {got:?}, expected {wanted:?}"
            ));
        }
        let ready = list.iter().find(|c| c.type_ == "Ready").map(|c| &c.message);
        let message = ready.map(String::as_str).unwrap_or_default();
        if *expected == Want::Unreachable && message.trim().is_empty() {
            return Err(format!(
                "cluster {id}: the CreationLoopBackOff condition should carry the cause"
            ));
        }
        if *expected == Want::Conflict && !(message.contains("owner") || message.contains("owned"))
        {
            return Err(format!(
                "cluster {id}: the CreationLoopBackOff message should say that the \
                 existing namespace is not owned by us: {message:?}"
            ));
        }
    }
    let top = |t: &str| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == t)
            .map(|c| c.status.as_str())
    };
    let ready = if phase == OffloadingPhase::Ready {
        "True"
    } else {
        "False"
    };
    if top("SelectorValid") != Some("True") || top("Ready") != Some(ready) {
        return Err(format!(
            "top-level conditions SelectorValid={:?} Ready={:?}, expected True and {ready}",
            top("SelectorValid"),
            top("Ready")
        ));
    }
    Ok(())
}

/// Creates `o` in `ns` and checks the stored spec.
pub async fn create(client: &Client, ns: &str, o: &NamespaceOffloading) -> anyhow::Result<()> {
    let api: Api<NamespaceOffloading> = Api::namespaced(client.clone(), ns);
    let created = api
        .create(&PostParams::default(), o)
        .await
        .with_context(|| format!("creating {ns}/offloading"))?;
    ensure!(
        created.spec == o.spec,
        "the stored spec differs from the one sent: {}",
        trimmed(&created)
    );
    Ok(())
}

/// Waits until `ns/offloading` has the expected status for its current generation.
pub async fn wait_status(
    client: &Client,
    ns: &str,
    phase: OffloadingPhase,
    twin: &str,
    want: &BTreeMap<String, Want>,
) -> anyhow::Result<NamespaceOffloading> {
    let api: Api<NamespaceOffloading> = Api::namespaced(client.clone(), ns);
    let what = format!(
        "the reconciler to write the status of {ns}/offloading: phase {phase} for the current \
         generation, twin {twin}, clusters {want:?}"
    );
    retry(&what, TIMEOUT, || {
        let api = api.clone();
        async move {
            match api.get_opt("offloading").await {
                Err(e) => Attempt::Retry(e.into()),
                Ok(None) => Attempt::Fail(anyhow!("{ns}/offloading does not exist")),
                Ok(Some(o)) => match status_matches(&o, phase, twin, want) {
                    Ok(()) => Attempt::Done(o),
                    Err(why) => {
                        let seen = json!({"generation": o.metadata.generation,
                            "finalizers": o.metadata.finalizers, "status": o.status});
                        Attempt::Retry(anyhow!("{why}; last seen: {seen}"))
                    }
                },
            }
        }
    })
    .await
}

/// The namespace's labels and annotations, less `kubernetes.io/metadata.name` (1.21+).
fn metadata(
    ns: &Namespace,
) -> anyhow::Result<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    let mut labels = ns.labels().clone();
    if let Some(own) = labels.remove("kubernetes.io/metadata.name") {
        ensure!(own == ns.name_any(), "kubernetes.io/metadata.name={own}");
    }
    Ok((labels, ns.annotations().clone()))
}

/// The twin `name` of local namespace `local` on `remote`: present, not being deleted, with
/// exactly the label and annotations of SPEC §7 step 4.
pub async fn expect_twin(remote: &Remote, name: &str, local: &str) -> anyhow::Result<Namespace> {
    let id = &remote.id;
    let ns = Api::<Namespace>::all(remote.client.clone())
        .get_opt(name)
        .await
        .with_context(|| format!("cluster {id}: reading namespace {name}"))?
        .with_context(|| {
            format!("cluster {id}: the twin namespace {name} does not exist, but should")
        })?;
    ensure!(
        ns.metadata.deletion_timestamp.is_none(),
        "cluster {id}: the twin namespace {name} is being deleted, but should stay"
    );
    let (labels, annotations) = metadata(&ns)?;
    let want_labels = BTreeMap::from([(CLUSTER_ID_LABEL.to_owned(), HOME_CLUSTER_ID.to_owned())]);
    ensure!(
        labels == want_labels,
        "cluster {id}: twin {name} has labels {labels:?}, expected exactly {want_labels:?}"
    );
    let want_annotations = BTreeMap::from([
        (ORIGINAL_NAME_ANNOTATION.to_owned(), local.to_owned()),
        (
            OWNER_ANNOTATION.to_owned(),
            format!("{HOME_CLUSTER_ID}/{local}"),
        ),
    ]);
    ensure!(
        annotations == want_annotations,
        "cluster {id}: twin {name} has annotations {annotations:?}, expected exactly \
         {want_annotations:?}"
    );
    Ok(ns)
}

/// No namespace `name` on `remote`, now.
pub async fn expect_absent(remote: &Remote, name: &str, why: &str) -> anyhow::Result<()> {
    let found = Api::<Namespace>::all(remote.client.clone())
        .get_opt(name)
        .await
        .with_context(|| format!("cluster {}: reading namespace {name}", remote.id))?;
    if let Some(ns) = found {
        let seen = json!({"uid": ns.metadata.uid, "deletionTimestamp": ns.metadata.deletion_timestamp,
            "annotations": ns.metadata.annotations});
        anyhow::bail!(
            "cluster {}: namespace {name} exists ({seen}), but {why}",
            remote.id
        );
    }
    Ok(())
}

/// Waits until namespace `name` is gone from `remote` (through Terminating, if need be).
pub async fn wait_gone(remote: &Remote, name: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(remote.client.clone());
    let what = format!(
        "the reconciler to delete namespace {name} on cluster {} (until it is gone)",
        remote.id
    );
    wait_until(&what, TIMEOUT, || {
        let api = api.clone();
        async move {
            match api.get_opt(name).await? {
                None => Ok(true),
                Some(ns) if ns.metadata.deletion_timestamp.is_some() => {
                    Err(anyhow!("{name} is Terminating"))
                }
                Some(_) => Err(anyhow!("{name} exists and is not being deleted")),
            }
        }
    })
    .await
}

/// The value of the scheduling label on local namespace `ns`.
async fn scheduling_label(client: &Client, ns: &str) -> anyhow::Result<Option<String>> {
    let got = Api::<Namespace>::all(client.clone()).get(ns).await?;
    Ok(got.labels().get(SCHEDULING_LABEL).cloned())
}

/// Waits until the reconciler has put `liqo.io/scheduling-enabled=true` on `ns`.
pub async fn wait_scheduling_label(client: &Client, ns: &str) -> anyhow::Result<()> {
    let what = format!("the reconciler to label namespace {ns} {SCHEDULING_LABEL}=true");
    wait_until(&what, TIMEOUT, || async move {
        match scheduling_label(client, ns).await?.as_deref() {
            Some("true") => Ok(true),
            other => Err(anyhow!("the label is {other:?}")),
        }
    })
    .await
}

/// `ns` has no scheduling label, now.
pub async fn expect_no_scheduling_label(
    client: &Client,
    ns: &str,
    why: &str,
) -> anyhow::Result<()> {
    let got = scheduling_label(client, ns).await?;
    ensure!(
        got.is_none(),
        "namespace {ns} still has {SCHEDULING_LABEL}={got:?}, but {why}"
    );
    Ok(())
}

/// Waits (dry runs, nothing stored) until a pod created in `ns` is admitted and carries the
/// virtual-node toleration: the API server calls the pod webhook for `ns` (it has seen the
/// scheduling label) and the gate is open (the server has seen the status). A denial other
/// than "not processed yet" fails at once.
pub async fn wait_gate_open(client: &Client, ns: &str) -> anyhow::Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let probe = pod("probe", vec![], None, None);
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let what = format!("pods in {ns} to be admitted and mutated by the pod webhook");
    retry(&what, TIMEOUT, || {
        let (api, probe, dry) = (api.clone(), &probe, &dry);
        async move {
            match api.create(dry, probe).await {
                Ok(p) => {
                    let tolerations = p.spec.and_then(|s| s.tolerations).unwrap_or_default();
                    if tolerations.contains(&tv()) {
                        Attempt::Done(())
                    } else {
                        Attempt::Retry(anyhow!(
                            "admitted without the virtual-node toleration (the API server has \
                             not seen the scheduling label yet?)"
                        ))
                    }
                }
                Err(e) => match api_status(&e) {
                    Some((_, m)) if unprocessed(m) => Attempt::Retry(e.into()),
                    Some(_) => {
                        Attempt::Fail(anyhow::Error::from(e).context("a dry-run pod was refused"))
                    }
                    None => Attempt::Retry(e.into()),
                },
            }
        }
    })
    .await
}

/// Waits until `ns/offloading` is gone: the reconciler has cleaned up and released it.
pub async fn wait_nsoff_gone(client: &Client, ns: &str) -> anyhow::Result<()> {
    let api: Api<NamespaceOffloading> = Api::namespaced(client.clone(), ns);
    let what = format!(
        "the deleted {ns}/offloading to disappear (the reconciler deletes its twins, then \
         removes its finalizer)"
    );
    wait_until(&what, TIMEOUT, || {
        let api = api.clone();
        async move {
            match api.get_opt("offloading").await? {
                None => Ok(true),
                Some(o) => {
                    let seen = json!({"deletionTimestamp": o.metadata.deletion_timestamp,
                        "finalizers": o.metadata.finalizers, "status": o.status});
                    Err(anyhow!("still there: {seen}"))
                }
            }
        }
    })
    .await
}
