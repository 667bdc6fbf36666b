//! Quick offloading (SPEC §6) with the real API server: the `liqo.io/enabled=true` label
//! stands for a default NamespaceOffloading. A namespace created labelled gets one, a
//! namespace labelled later gets one, a label-made one deleted while the label stays comes
//! back, removing the label deletes it, and a hand-made one is never deleted by the label.

use std::time::Duration;

use anyhow::{ensure, Context as _};
use kube::api::{Api, DeleteParams};
use kube::{Client, ResourceExt as _};
use nsoffload::api::consts::OFFLOADING_ENABLED_LABEL;
use nsoffload::api::NamespaceOffloading;
use nsoffload::api::PodOffloadingStrategy::Remote;

use crate::fixtures::nsoff;
use crate::kit::{label_namespace, wait_until};
use crate::reconcile_expect::{create, wait_nsoff_gone};
use crate::remote::{check_remote, ReconcileEnv};

const MADE_BY_LABEL: &str = "offloading.liqo.io/created-by-label";

/// Waits until `ns` has a NamespaceOffloading made by the label (not being deleted).
async fn wait_label_made(client: &Client, ns: &str) -> anyhow::Result<NamespaceOffloading> {
    let api: Api<NamespaceOffloading> = Api::namespaced(client.clone(), ns);
    let what = format!("a label-made NamespaceOffloading in {ns}");
    wait_until(&what, Duration::from_secs(60), || {
        let api = api.clone();
        async move {
            let o = api.get_opt("offloading").await?;
            Ok(o.is_some_and(|o| {
                o.metadata.deletion_timestamp.is_none()
                    && o.annotations().get(MADE_BY_LABEL).map(String::as_str) == Some("true")
            }))
        }
    })
    .await?;
    Ok(api.get("offloading").await?)
}

async fn set_label(client: &Client, ns: &str, value: Option<&str>) -> anyhow::Result<()> {
    label_namespace(client, ns, OFFLOADING_ENABLED_LABEL, value)
        .await
        .with_context(|| format!("labelling namespace {ns}"))?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs real clusters: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG and NSOFFLOAD_E2E_REMOTE_KUBECONFIGS"]
async fn quick_offloading_follows_the_label() {
    let env = ReconcileEnv::get().await;
    check_remote(&env, "quick", |s, _| async move {
        // Created labelled, and labelled after creation.
        let born = s
            .namespace(&[("liqo.io/enabled", "true")])
            .await?
            .name_any();
        let later = s.namespace(&[]).await?.name_any();
        set_label(&s.client, &later, Some("true")).await?;
        let first = wait_label_made(&s.client, &born).await?;
        wait_label_made(&s.client, &later).await?;

        // Deleted while the label stays: made again (a new object).
        Api::<NamespaceOffloading>::namespaced(s.client.clone(), &born)
            .delete("offloading", &DeleteParams::default())
            .await?;
        let again = wait_label_made(&s.client, &born).await?;
        ensure!(
            again.uid() != first.uid(),
            "the NamespaceOffloading of {born} was not made again"
        );

        // The label removed: the label-made one goes.
        set_label(&s.client, &later, None).await?;
        wait_nsoff_gone(&s.client, &later).await?;

        // A hand-made one stays whatever the label says.
        let manual = s.namespace(&[]).await?.name_any();
        create(&s.client, &manual, &nsoff(Remote, None)).await?;
        set_label(&s.client, &manual, Some("true")).await?;
        set_label(&s.client, &manual, None).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let kept = Api::<NamespaceOffloading>::namespaced(s.client.clone(), &manual)
            .get_opt("offloading")
            .await?;
        ensure!(
            kept.is_some_and(|o| o.metadata.deletion_timestamp.is_none()
                && !o.annotations().contains_key(MADE_BY_LABEL)),
            "the hand-made NamespaceOffloading of {manual} was touched"
        );
        Ok(())
    })
    .await;
}
