//! Shared by the removal flows (`reconcile_cleanup.rs`, `reconcile_release.rs`): objects with
//! a stored status or being deleted, three reachable clusters, and remote scripts that delete
//! a twin or find it gone.
// Each binary uses a part.
#![allow(dead_code)]

use http::Method;
use nsoffload::api::{NamespaceOffloading, NamespaceOffloadingStatus};
use serde_json::{json, Value};

use super::common::mock_api::ApiServer;
use super::world::*;

pub const FINALIZER_REMOVAL: &str = r#"[
    {"op": "test", "path": "/metadata/finalizers/0", "value": "namespaceoffloading-controller.liqo.io/finalizer"},
    {"op": "remove", "path": "/metadata/finalizers/0"}
]"#;

/// The home cluster of a release: one PATCH that removes the finalizer, and nothing else.
pub async fn releases_finalizer(mut home: ApiServer) {
    let call = home.expect(Method::PATCH, NSOFF_PATH).await;
    assert_eq!(
        call.body,
        serde_json::from_str::<Value>(FINALIZER_REMOVAL).unwrap()
    );
    call.ok(&nsoff_body());
    home.expect_done().await;
}

pub fn three_ready() -> Value {
    let per_cluster = json!([
        required(true, SELECTED),
        ready("True", "NamespaceCreated", "namespace shop-home exists")
    ]);
    json!({
        "offloadingPhase": "Ready",
        "remoteNamespaceName": TWIN,
        "remoteNamespacesConditions": {"r1": per_cluster, "r2": per_cluster, "r3": per_cluster},
        "observedGeneration": 3,
        "conditions": top("True", "Ready", "namespace shop-home is ready on 3 remote cluster(s)"),
    })
}

pub fn with_status(mut nsoff: NamespaceOffloading, status: Value) -> NamespaceOffloading {
    nsoff.status =
        Some(serde_json::from_value::<NamespaceOffloadingStatus>(status).expect("status"));
    nsoff
}

pub fn deleting(mut nsoff: NamespaceOffloading, orphan: bool) -> NamespaceOffloading {
    nsoff.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        NOW.parse().unwrap(),
    ));
    if orphan {
        nsoff.metadata.annotations = Some(
            [(
                "offloading.liqo.io/orphan-unreachable".to_owned(),
                "true".to_owned(),
            )]
            .into(),
        );
    }
    nsoff
}

pub fn three_clusters(w: &mut World) {
    for (id, region) in [("r1", "eu"), ("r2", "us"), ("r3", "ap")] {
        w.node(vnode(id, region)).reachable(id);
    }
}

/// Our twin is there; expect exactly one guarded DELETE of it.
pub async fn deletes_twin(mut s: ApiServer) {
    s.expect(Method::GET, TWIN_PATH)
        .await
        .ok(&remote_namespace(TWIN, ours(), false));
    let call = s.expect(Method::DELETE, TWIN_PATH).await;
    assert_eq!(
        call.body["preconditions"],
        json!({"uid": "uid-shop-home", "resourceVersion": "7"}),
        "the DELETE is guarded by the uid and resourceVersion just read"
    );
    call.ok(&remote_namespace(TWIN, ours(), true));
    s.expect_done().await;
}

/// Our twin is already gone.
pub async fn twin_gone(mut s: ApiServer) {
    s.expect(Method::GET, TWIN_PATH).await.fail(404, "NotFound");
    s.expect_done().await;
}
