//! The reconciler against real remote clusters: the vectors of SPEC §7.
//!
//! No test writes a status or a finalizer: everything checked here was done by the server's
//! reconciler, which sees the remote clusters only through the virtual nodes and credential
//! Secrets of `remote.rs`. Each vector works in its own local namespace `e2e-<test>-<hex>`,
//! so the twins are `e2e-<test>-<hex>-e2e` (strategy `DefaultName`, home cluster id `e2e`).
//! Every wait is bounded by `remote::TIMEOUT`; a timeout names what was expected and what was
//! last seen, and the failure dump adds the local and remote namespaces and the server log.
//!
//! Not covered here: R5 (missing credentials) and R8 (no virtual nodes) change the suite's
//! shared set-up, which the other tests rely on.

use anyhow::{ensure, Context as _};
use k8s_openapi::api::core::v1::{Namespace, NodeSelectorTerm};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::ResourceExt as _;
use nsoffload::api::NamespaceMappingStrategy::EnforceSameName;
use nsoffload::api::NamespaceOffloading;
use nsoffload::api::OffloadingPhase;
use nsoffload::api::PodOffloadingStrategy::LocalAndRemote;
use serde_json::json;

use crate::fixtures::{compare, nsoff, pod, pod_pair, req, term, Expect};
use crate::harness::SUITE_LABEL;
use crate::kit::wait_until;
use crate::reconcile_expect::{
    all, create, default_twin, expect_absent, expect_no_scheduling_label, expect_twin,
    wait_gate_open, wait_gone, wait_nsoff_gone, wait_scheduling_label, wait_status, Want,
};
use crate::remote::{check_remote, ReconcileEnv, Remote, FINALIZER, NAME_LABEL, TIMEOUT};

/// A cluster selector that matches the virtual node of `remote` only.
fn only(remote: &Remote) -> Vec<NodeSelectorTerm> {
    vec![term(&[&[req(NAME_LABEL, "In", &[remote.id.as_str()])]])]
}

/// R1: without a selector every cluster gets its twin, the namespace its scheduling label,
/// and the pod gate opens.
#[tokio::test]
#[ignore = "needs real clusters: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG and NSOFFLOAD_E2E_REMOTE_KUBECONFIGS"]
async fn r1_every_cluster_without_selector() {
    let env = ReconcileEnv::get().await;
    check_remote(&env, "r1", |s, remotes| async move {
        let ns = s.pod_namespace(&[]).await?;
        create(&s.client, &ns, &nsoff(LocalAndRemote, None)).await?;
        let twin = default_twin(&ns);
        let want = all(&remotes, Want::Twin);
        let got = wait_status(&s.client, &ns, OffloadingPhase::Ready, &twin, &want).await?;
        ensure!(
            got.finalizers().iter().any(|f| f == FINALIZER),
            "the reconciler has not added its finalizer {FINALIZER}: {:?}",
            got.finalizers()
        );
        for r in &remotes {
            expect_twin(r, &twin, &ns).await?;
        }
        wait_scheduling_label(&s.client, &ns).await?;
        // Until now pods were denied ("not been processed") or not sent to the webhook at all
        // (no scheduling label); now they must be admitted and mutated (SPEC §3 P5).
        wait_gate_open(&s.client, &ns).await?;
        let control = s.pod_namespace(&[]).await?;
        let r1 = pod("r1", vec![], None, None);
        let (twin_pod, mutated) = pod_pair(&s.client, &control, &ns, &r1).await?;
        let p5 = Expect {
            adds_tv: true,
            required: None,
        };
        compare("R1 (P5)", &twin_pod, &mutated, &p5)
    })
    .await;
}

/// R2: a selector matching the first cluster only.
#[tokio::test]
#[ignore = "needs real clusters: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG and NSOFFLOAD_E2E_REMOTE_KUBECONFIGS"]
async fn r2_selector_matches_one_cluster() {
    let env = ReconcileEnv::get().await;
    check_remote(&env, "r2", |s, remotes| async move {
        let ns = s.namespace(&[]).await?.name_any();
        let (first, rest) = remotes.split_first().context("no remote cluster")?;
        create(&s.client, &ns, &nsoff(LocalAndRemote, Some(only(first)))).await?;
        let twin = default_twin(&ns);
        let mut want = all(&remotes, Want::NotSelected);
        want.insert(first.id.clone(), Want::Twin);
        wait_status(&s.client, &ns, OffloadingPhase::Ready, &twin, &want).await?;
        expect_twin(first, &twin, &ns).await?;
        for r in rest {
            expect_absent(r, &twin, "the cluster is not selected").await?;
        }
        Ok(())
    })
    .await;
}

/// A twin deleted on its remote cluster comes back at once: its deletion wakes the
/// NamespaceOffloading through the reconciler's watch of its twins (the resync is 5 minutes
/// away, and a Ready object is not looked at before it).
#[tokio::test]
#[ignore = "needs real clusters: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG and NSOFFLOAD_E2E_REMOTE_KUBECONFIGS"]
async fn a_deleted_twin_is_recreated_without_waiting_for_a_resync() {
    let env = ReconcileEnv::get().await;
    check_remote(&env, "twin-watch", |s, remotes| async move {
        let ns = s.namespace(&[]).await?.name_any();
        let (first, _) = remotes.split_first().context("no remote cluster")?;
        create(&s.client, &ns, &nsoff(LocalAndRemote, Some(only(first)))).await?;
        let twin = default_twin(&ns);
        let mut want = all(&remotes, Want::NotSelected);
        want.insert(first.id.clone(), Want::Twin);
        wait_status(&s.client, &ns, OffloadingPhase::Ready, &twin, &want).await?;
        let before = expect_twin(first, &twin, &ns).await?.metadata.uid;
        Api::<Namespace>::all(first.client.clone())
            .delete(&twin, &DeleteParams::default())
            .await
            .context("deleting the twin behind the reconciler's back")?;
        let what = format!(
            "the reconciler to recreate twin {twin} on cluster {}",
            first.id
        );
        wait_until(&what, TIMEOUT, || async {
            // Err while the old twin terminates or none exists yet.
            let now = expect_twin(first, &twin, &ns).await?;
            ensure!(now.metadata.uid != before, "still the deleted twin");
            Ok(true)
        })
        .await
    })
    .await;
}

/// R3: a selector matching no cluster.
#[tokio::test]
#[ignore = "needs real clusters: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG and NSOFFLOAD_E2E_REMOTE_KUBECONFIGS"]
async fn r3_selector_matches_nothing() {
    let env = ReconcileEnv::get().await;
    check_remote(&env, "r3", |s, remotes| async move {
        let ns = s.namespace(&[]).await?.name_any();
        let none = vec![term(&[&[req(NAME_LABEL, "In", &["no-such-cluster"])]])];
        create(&s.client, &ns, &nsoff(LocalAndRemote, Some(none))).await?;
        let twin = default_twin(&ns);
        let want = all(&remotes, Want::NotSelected);
        let phase = OffloadingPhase::NoClusterSelected;
        wait_status(&s.client, &ns, phase, &twin, &want).await?;
        for r in &remotes {
            expect_absent(r, &twin, "no cluster is selected").await?;
        }
        Ok(())
    })
    .await;
}

/// The namespace `before` is still there on the cluster of `api`, exactly as it was.
async fn untouched(api: &Api<Namespace>, before: &Namespace, when: &str) -> anyhow::Result<()> {
    let name = before.name_any();
    let now = api.get_opt(&name).await?.with_context(|| {
        format!("the pre-existing namespace {name} was deleted {when}; it is not ours to delete")
    })?;
    let view = |ns: &Namespace| {
        json!({"uid": ns.metadata.uid, "labels": ns.metadata.labels,
            "annotations": ns.metadata.annotations,
            "deletionTimestamp": ns.metadata.deletion_timestamp})
    };
    ensure!(
        view(&now) == view(before),
        "the pre-existing namespace {name} was changed {when}; it must be left untouched:\n\
         before: {}\nnow:    {}",
        view(before),
        view(&now)
    );
    Ok(())
}

/// R4: `EnforceSameName`, and the namespace already exists on the second cluster without our
/// owner annotation: never adopted, changed or deleted.
#[tokio::test]
#[ignore = "needs real clusters: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG and NSOFFLOAD_E2E_REMOTE_KUBECONFIGS"]
async fn r4_existing_namespace_is_not_adopted() {
    let env = ReconcileEnv::get().await;
    assert!(
        env.remotes.len() >= 2,
        "r4 needs 2 remote clusters in NSOFFLOAD_E2E_REMOTE_KUBECONFIGS"
    );
    check_remote(&env, "r4", |s, remotes| async move {
        let ns = s.namespace(&[]).await?.name_any();
        let victim = &remotes[1];
        let on_victim: Api<Namespace> = Api::all(victim.client.clone());
        let foreign: Namespace = serde_json::from_value(json!({"metadata": {"name": ns,
            "labels": {SUITE_LABEL: "true", "e2e.nsoffload/pre-existing": "true"},
            "annotations": {"e2e.nsoffload/note": "created before the NamespaceOffloading"}}}))?;
        let before = on_victim
            .create(&PostParams::default(), &foreign)
            .await
            .with_context(|| format!("creating namespace {ns} on cluster {}", victim.id))?;

        let mut o = nsoff(LocalAndRemote, None);
        o.spec.namespace_mapping_strategy = EnforceSameName;
        create(&s.client, &ns, &o).await?;
        let mut want = all(&remotes, Want::Twin);
        want.insert(victim.id.clone(), Want::Conflict);
        wait_status(&s.client, &ns, OffloadingPhase::SomeFailed, &ns, &want).await?;
        let others: Vec<&Remote> = remotes.iter().filter(|r| r.id != victim.id).collect();
        for r in &others {
            expect_twin(r, &ns, &ns).await?;
        }
        untouched(&on_victim, &before, "while the NamespaceOffloading exists").await?;

        let api: Api<NamespaceOffloading> = Api::namespaced(s.client.clone(), &ns);
        api.delete("offloading", &DeleteParams::default()).await?;
        wait_nsoff_gone(&s.client, &ns).await?;
        for r in &others {
            let why = "the NamespaceOffloading is gone, so its twins must be too";
            expect_absent(r, &ns, why).await?;
        }
        untouched(
            &on_victim,
            &before,
            "when the NamespaceOffloading was deleted",
        )
        .await
    })
    .await;
}

/// R6: the selector narrowed from every cluster to the first one.
#[tokio::test]
#[ignore = "needs real clusters: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG and NSOFFLOAD_E2E_REMOTE_KUBECONFIGS"]
async fn r6_narrowed_selector_deletes_twins() {
    let env = ReconcileEnv::get().await;
    check_remote(&env, "r6", |s, remotes| async move {
        let ns = s.namespace(&[]).await?.name_any();
        create(&s.client, &ns, &nsoff(LocalAndRemote, None)).await?;
        let twin = default_twin(&ns);
        let want = all(&remotes, Want::Twin);
        let before = wait_status(&s.client, &ns, OffloadingPhase::Ready, &twin, &want).await?;
        let (first, rest) = remotes.split_first().context("no remote cluster")?;
        let kept = expect_twin(first, &twin, &ns).await?;
        for r in rest {
            expect_twin(r, &twin, &ns).await?;
        }

        let api: Api<NamespaceOffloading> = Api::namespaced(s.client.clone(), &ns);
        let narrow = json!({"spec": {"clusterSelector": {"nodeSelectorTerms": only(first)}}});
        let patched = api
            .patch(
                "offloading",
                &PatchParams::default(),
                &Patch::Merge(&narrow),
            )
            .await
            .context("narrowing the cluster selector")?;
        ensure!(
            patched.metadata.generation > before.metadata.generation,
            "changing the spec did not raise the generation ({:?} -> {:?})",
            before.metadata.generation,
            patched.metadata.generation
        );
        for r in rest {
            wait_gone(r, &twin).await?;
        }
        let mut want = all(&remotes, Want::NotSelected);
        want.insert(first.id.clone(), Want::Twin);
        wait_status(&s.client, &ns, OffloadingPhase::Ready, &twin, &want)
            .await
            .context(
                "the twins of the deselected clusters are gone, so their Ready conditions must \
                 be removed (SPEC §2) without waiting for a periodic resync",
            )?;
        let still = expect_twin(first, &twin, &ns).await?;
        ensure!(
            still.metadata.uid == kept.metadata.uid,
            "cluster {}: the twin {twin} was deleted and recreated (uid {:?}, before {:?}); \
             the cluster stayed selected",
            first.id,
            still.metadata.uid,
            kept.metadata.uid
        );
        Ok(())
    })
    .await;
}

/// R7: deleting the NamespaceOffloading deletes every twin and the scheduling label, then the
/// object itself.
#[tokio::test]
#[ignore = "needs real clusters: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG and NSOFFLOAD_E2E_REMOTE_KUBECONFIGS"]
async fn r7_deletion_cleans_up() {
    let env = ReconcileEnv::get().await;
    check_remote(&env, "r7", |s, remotes| async move {
        let ns = s.namespace(&[]).await?.name_any();
        create(&s.client, &ns, &nsoff(LocalAndRemote, None)).await?;
        let twin = default_twin(&ns);
        let want = all(&remotes, Want::Twin);
        wait_status(&s.client, &ns, OffloadingPhase::Ready, &twin, &want).await?;
        for r in &remotes {
            expect_twin(r, &twin, &ns).await?;
        }
        wait_scheduling_label(&s.client, &ns).await?;

        let api: Api<NamespaceOffloading> = Api::namespaced(s.client.clone(), &ns);
        api.delete("offloading", &DeleteParams::default()).await?;
        wait_nsoff_gone(&s.client, &ns).await?;
        for r in &remotes {
            let why = "the reconciler released its finalizer, which it may do only once every \
                       twin is gone (SPEC §7, deletion)";
            expect_absent(r, &twin, why).await?;
        }
        let why = "the reconciler removes it first when the NamespaceOffloading is deleted";
        expect_no_scheduling_label(&s.client, &ns, why).await
    })
    .await;
}
