//! The pod admission gate (SPEC §4), NamespaceOffloading validation (§5) and the namespace
//! webhook (§6), as a client of a real API server sees them.
//!
//! Denials are checked as the API server reports them: HTTP 403 with the prefix naming our
//! webhook, so a refusal by something else (an admission plugin, another webhook) cannot pass
//! for ours, and nothing stored afterwards. Where the server's watch cache legitimately lags
//! (a status just written, an nsoff just deleted), the test first polls with dry-run requests,
//! which call the webhooks but store nothing, until the answer no longer reflects the stale
//! view, and only then makes the real request whose answer is asserted. Warnings are read
//! from the `Warning` response headers, which kube's typed API does not expose, so those
//! PATCHes are sent with `Client::send`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context as _};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource as _, ResourceExt as _};
use nsoffload::api::NamespaceOffloading;
use nsoffload::api::PodOffloadingStrategy::{LocalAndRemote, Remote};
use serde_json::{json, Value};

use crate::fixtures::{cs, nsoff, offloaded_namespace, pod, req, term, unprocessed};
use crate::harness::{E2e, NSOFF_WEBHOOK, POD_WEBHOOK, SUITE_LABEL};
use crate::kit::{api_status, check, expect_denied, label_namespace, retry, Attempt};

/// Waits (dry runs) while `stale` says an outcome reflects a lagging cache (`None`: admitted;
/// `Some(message)`: refused), then expects a real pod creation in `ns` to be denied by the pod
/// webhook with a message containing `needle`.
async fn expect_gate_denial(
    client: &Client,
    ns: &str,
    needle: &str,
    stale: &dyn Fn(Option<&str>) -> bool,
) -> anyhow::Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let gated = pod("gated", vec![], None, None);
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let what = format!("the gate of {ns} to see the latest NamespaceOffloading");
    retry(&what, Duration::from_secs(30), || {
        let (api, gated, dry) = (api.clone(), &gated, &dry);
        async move {
            match api.create(dry, gated).await {
                Ok(_) if stale(None) => Attempt::Retry(anyhow!("admitted (stale view)")),
                Ok(_) => Attempt::Done(()),
                Err(e) => match api_status(&e) {
                    Some((_, m)) if stale(Some(m)) => Attempt::Retry(e.into()),
                    Some(_) => Attempt::Done(()),
                    None => Attempt::Retry(e.into()),
                },
            }
        }
    })
    .await?;
    let created = api.create(&PostParams::default(), &gated).await;
    let message = expect_denied(created, POD_WEBHOOK)?;
    ensure!(
        message.contains(needle),
        "the denial should mention {needle:?}: {message}"
    );
    ensure!(
        api.get_opt("gated").await?.is_none(),
        "a denied pod is stored"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs a real cluster: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG"]
async fn gate_denies_without_nsoff() {
    let env = E2e::get().await;
    check(&env, "gate-none", |s| async move {
        let ns = s
            .pod_namespace(&[("liqo.io/scheduling-enabled", "true")])
            .await?;
        expect_gate_denial(&s.client, &ns, "has no NamespaceOffloading", &|_| false).await
    })
    .await;
}

/// Strict on purpose: a just-created nsoff missing from the cache is read live (SPEC §4), so
/// the answer is "not processed" from the first request, never "no NamespaceOffloading".
#[tokio::test]
#[ignore = "needs a real cluster: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG"]
async fn gate_denies_unprocessed_nsoff() {
    let env = E2e::get().await;
    check(&env, "gate-unprocessed", |s| async move {
        let ns = offloaded_namespace(&s, LocalAndRemote, None, None).await?;
        expect_gate_denial(&s.client, &ns, "not been processed", &|_| false).await
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a real cluster: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG"]
async fn gate_denies_remote_without_cluster() {
    let env = E2e::get().await;
    check(&env, "gate-remote", |s| async move {
        let ns = offloaded_namespace(&s, Remote, Some(cs()), Some("NoClusterSelected")).await?;
        let stale = |o: Option<&str>| o.is_some_and(unprocessed);
        expect_gate_denial(&s.client, &ns, "podOffloadingStrategy Remote", &stale).await
    })
    .await;
}

/// An nsoff held by a finalizer (the cleanup releases it) and deleted.
#[tokio::test]
#[ignore = "needs a real cluster: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG"]
async fn gate_denies_terminating_nsoff() {
    let env = E2e::get().await;
    check(&env, "gate-deleting", |s| async move {
        let ns = offloaded_namespace(&s, LocalAndRemote, None, Some("Ready")).await?;
        let api: Api<NamespaceOffloading> = Api::namespaced(s.client.clone(), &ns);
        let hold = json!({"metadata": {"finalizers": ["e2e.nsoffload.liqo.io/hold"]}});
        api.patch("offloading", &PatchParams::default(), &Patch::Merge(&hold))
            .await?;
        api.delete("offloading", &DeleteParams::default()).await?;
        let stored = api.get("offloading").await?;
        ensure!(
            stored.meta().deletion_timestamp.is_some(),
            "not being deleted"
        );
        let stale = |o: Option<&str>| o.is_none();
        expect_gate_denial(&s.client, &ns, "being deleted", &stale).await
    })
    .await;
}

/// The text of a `Warning: 299 - "text"` header.
fn warning_text(header: &str) -> String {
    match (header.find('"'), header.rfind('"')) {
        (Some(a), Some(b)) if b > a => header[a + 1..b].replace("\\\"", "\""),
        _ => header.to_owned(),
    }
}

/// Merge-patches `ns/offloading`; returns the stored object and the response's warnings.
async fn patch_with_warnings(
    client: &Client,
    ns: &str,
    patch: &Value,
) -> anyhow::Result<(NamespaceOffloading, Vec<String>)> {
    let url = NamespaceOffloading::url_path(&(), Some(ns));
    let request = kube::core::Request::new(url).patch(
        "offloading",
        &PatchParams::default(),
        &Patch::Merge(patch),
    )?;
    let response = client.send(request.map(kube::client::Body::from)).await?;
    let status = response.status();
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| warning_text(&String::from_utf8_lossy(v.as_bytes())))
        .collect();
    let body = response.into_body().collect_bytes().await?;
    if !status.is_success() {
        bail!(
            "PATCH {patch} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok((serde_json::from_slice(&body)?, warnings))
}

#[tokio::test]
#[ignore = "needs a real cluster: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG"]
async fn validation_of_namespace_offloadings() {
    let env = E2e::get().await;
    check(&env, "validation", |s| async move {
        let ns = s.namespace(&[]).await?.name_any();
        let api: Api<NamespaceOffloading> = Api::namespaced(s.client.clone(), &ns);
        let pp = PostParams::default();

        let mut foo = nsoff(LocalAndRemote, None);
        foo.metadata.name = Some("foo".to_owned());
        let message = expect_denied(api.create(&pp, &foo).await, NSOFF_WEBHOOK).context("V1")?;
        ensure!(message.contains("metadata.name"), "V1: {message}");
        ensure!(api.get_opt("foo").await?.is_none(), "V1: foo is stored");

        let exists_with_values = vec![term(&[&[req("region", "Exists", &["eu"])]])];
        let bad = nsoff(LocalAndRemote, Some(exists_with_values));
        let message = expect_denied(api.create(&pp, &bad).await, NSOFF_WEBHOOK).context("V11")?;
        ensure!(message.contains("spec.clusterSelector"), "V11: {message}");

        api.create(&pp, &nsoff(LocalAndRemote, None)).await?;
        let immutable = json!({"spec": {"namespaceMappingStrategy": "EnforceSameName"}});
        let patched = api
            .patch(
                "offloading",
                &PatchParams::default(),
                &Patch::Merge(&immutable),
            )
            .await;
        let message = expect_denied(patched, NSOFF_WEBHOOK).context("V5")?;
        ensure!(
            message.contains("immutable") && message.contains("namespaceMappingStrategy"),
            "V5: {message}"
        );
        let stored = serde_json::to_value(api.get("offloading").await?.spec)?;
        ensure!(
            stored["namespaceMappingStrategy"] == "DefaultName",
            "V5: stored {stored}"
        );

        // (vector, spec change, the warning's old and new strategy)
        let steps = [
            (
                "V7",
                json!({"podOffloadingStrategy": "Remote"}),
                Some(("LocalAndRemote", "Remote")),
            ),
            (
                "V8",
                json!({"podOffloadingStrategy": "Local"}),
                Some(("Remote", "Local")),
            ),
            (
                "V9",
                json!({"podOffloadingStrategy": "LocalAndRemote"}),
                None,
            ),
            (
                "V10",
                json!({"clusterSelector": {"nodeSelectorTerms": cs()}}),
                None,
            ),
        ];
        for (vector, spec, warning) in steps {
            let (stored, warnings) =
                patch_with_warnings(&s.client, &ns, &json!({"spec": spec})).await?;
            let stored = serde_json::to_value(&stored.spec)?;
            for (field, value) in spec.as_object().into_iter().flatten() {
                ensure!(&stored[field] == value, "{vector}: stored spec {stored}");
            }
            let names_both = |w: &String, (old, new): (&str, &str)| {
                w.contains("podOffloadingStrategy") && w.contains(old) && w.contains(new)
            };
            match (warning, warnings.as_slice()) {
                (None, []) => {}
                (Some(change), [one]) if names_both(one, change) => {}
                _ => bail!("{vector}: expected one warning about {warning:?}, got {warnings:?}"),
            }
        }
        Ok(())
    })
    .await;
}

/// The namespace's labels, less the `kubernetes.io/metadata.name` the API server adds (1.21+).
fn labels(ns: &Namespace) -> anyhow::Result<BTreeMap<String, String>> {
    let mut labels = ns.labels().clone();
    if let Some(own) = labels.remove("kubernetes.io/metadata.name") {
        ensure!(own == ns.name_any(), "kubernetes.io/metadata.name={own}");
    }
    Ok(labels)
}

fn expect_labels(what: &str, ns: &Namespace, want: &[(&str, &str)]) -> anyhow::Result<()> {
    let want: BTreeMap<String, String> = want
        .iter()
        .chain(&[(SUITE_LABEL, "true")])
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let got = labels(ns)?;
    ensure!(got == want, "{what}: labels {got:?}, expected {want:?}");
    Ok(())
}

#[tokio::test]
#[ignore = "needs a real cluster: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG"]
async fn namespace_quick_offloading_label() {
    let env = E2e::get().await;
    check(&env, "namespace", |s| async move {
        let api: Api<Namespace> = Api::all(s.client.clone());
        let (enabled, scheduling) = (
            ("liqo.io/enabled", "true"),
            ("liqo.io/scheduling-enabled", "true"),
        );
        let created = s.namespace(&[enabled]).await?;
        expect_labels(
            "created with liqo.io/enabled",
            &created,
            &[enabled, scheduling],
        )?;
        let quick = api.get(&created.name_any()).await?;
        expect_labels(
            "stored with liqo.io/enabled",
            &quick,
            &[enabled, scheduling],
        )?;

        let plain = s.namespace(&[]).await?;
        let plain = api.get(&plain.name_any()).await?;
        expect_labels("created without liqo.io/enabled", &plain, &[])?;

        let updated =
            label_namespace(&s.client, &plain.name_any(), enabled.0, Some(enabled.1)).await?;
        expect_labels(
            "update adding liqo.io/enabled",
            &updated,
            &[enabled, scheduling],
        )?;

        // Another update of an enabled namespace (the reconciler removing the scheduling
        // label for the Local strategy) must not be undone.
        let updated = label_namespace(&s.client, &quick.name_any(), scheduling.0, None).await?;
        expect_labels("update removing the scheduling label", &updated, &[enabled])?;
        let stored = api.get(&quick.name_any()).await?;
        expect_labels(
            "stored after removing the scheduling label",
            &stored,
            &[enabled],
        )
    })
    .await;
}
