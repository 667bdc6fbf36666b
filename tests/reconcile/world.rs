//! A scripted world for reconcile flows: a home API server, one API server per remote
//! cluster, and the caches (virtual nodes, namespaces) a reconcile reads.
// Shared by several test binaries, each using a part.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{join_all, BoxFuture};
use futures_util::FutureExt;
use http::Method;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::reflector;
use kube::runtime::watcher::Event;
use kube::Client;
use nsoffload::api::NamespaceOffloading;
use nsoffload::cache::namespaces::{NamespaceFacts, Namespaces};
use nsoffload::cache::NamespaceMeta;
use nsoffload::reconcile::flow::{self, Context, Report};
use nsoffload::reconcile::home::HomeError;
use nsoffload::reconcile::pods::PodAudit;
use nsoffload::reconcile::remotes::{ClientFuture, RemoteClusters};
use nsoffload::reconcile::seen::SeenTwins;
use nsoffload::reconcile::status::Failure;
use serde_json::{json, Value};

use crate::common::mock_api::{pair, ApiServer};

pub const HOME: &str = "home";
pub const NS: &str = "shop";
pub const TWIN: &str = "shop-home";
pub const NOW: &str = "2026-11-22T10:00:00Z";
pub const NSOFF_PATH: &str =
    "/apis/offloading.liqo.io/v1beta1/namespaces/shop/namespaceoffloadings/offloading";
pub const STATUS_PATH: &str =
    "/apis/offloading.liqo.io/v1beta1/namespaces/shop/namespaceoffloadings/offloading/status";
pub const TWIN_PATH: &str = "/api/v1/namespaces/shop-home";

fn clock() -> Time {
    Time(NOW.parse().expect("timestamp"))
}

/// Remote clients handed out by id; a missing entry answers with a failure.
pub struct FakeRemotes(pub BTreeMap<String, Result<Client, Failure>>);

impl RemoteClusters for FakeRemotes {
    /// Like the credential Secrets: usable or not.
    fn with_credentials(&self) -> BTreeSet<String> {
        self.0.keys().cloned().collect()
    }
    fn client<'a>(&'a self, cluster: &'a str) -> ClientFuture<'a> {
        let found = self.0.get(cluster).cloned().unwrap_or_else(|| {
            Err(Failure {
                message: format!("no credentials for cluster {cluster}"),
                unreachable: true,
            })
        });
        Box::pin(async move { found })
    }
}

/// A virtual node of `cluster` with a `region` label.
pub fn vnode(cluster: &str, region: &str) -> Node {
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("vk-{cluster}"),
            "labels": {
                "liqo.io/type": "virtual-node",
                "liqo.io/remote-cluster-id": cluster,
                "region": region,
            },
        },
    }))
    .expect("node")
}

/// The local namespace as the reconciler caches it (metadata only), with the scheduling label
/// or not.
pub fn local_namespace(labelled: bool) -> NamespaceMeta {
    let labels = if labelled {
        json!({"liqo.io/scheduling-enabled": "true"})
    } else {
        json!({})
    };
    serde_json::from_value(json!({"metadata": {"name": NS, "labels": labels}})).expect("namespace")
}

/// A NamespaceOffloading in `shop` from its JSON `spec`, with or without our finalizer.
pub fn nsoff(spec: Value, finalizer: bool) -> NamespaceOffloading {
    let finalizers = if finalizer {
        json!(["namespaceoffloading-controller.liqo.io/finalizer"])
    } else {
        Value::Null
    };
    serde_json::from_value(json!({
        "apiVersion": "offloading.liqo.io/v1beta1",
        "kind": "NamespaceOffloading",
        "metadata": {
            "name": "offloading",
            "namespace": NS,
            "uid": "nsoff-uid",
            "generation": 3,
            "resourceVersion": "100",
            "finalizers": finalizers,
        },
        "spec": spec,
    }))
    .expect("nsoff")
}

/// An API server's answer carrying the NamespaceOffloading.
pub fn nsoff_body() -> Value {
    serde_json::to_value(nsoff(json!({}), true)).expect("JSON")
}

/// A remote namespace named `name` with the given annotations.
pub fn remote_namespace(name: &str, annotations: Value, deleting: bool) -> Value {
    let mut ns = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "resourceVersion": "7", "annotations": annotations},
        "status": {"phase": "Active"},
    });
    if deleting {
        ns["metadata"]["deletionTimestamp"] = json!(NOW);
        ns["status"]["phase"] = json!("Terminating");
    }
    ns
}

/// Our owner annotations.
pub fn ours() -> Value {
    json!({"liqo.io/original-name": NS, "offloading.liqo.io/owner": "home/shop"})
}

/// The twin namespace the reconciler creates.
pub fn twin_object() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": TWIN,
            "labels": {"liqo.io/remote-cluster-id": HOME},
            "annotations": ours(),
        },
    })
}

/// A scripted world: build with [`World::new`], add remote clusters, then [`World::run`].
pub struct World {
    nodes: reflector::Store<Node>,
    nodes_writer: reflector::store::Writer<Node>,
    namespaces: Arc<Namespaces>,
    remotes: BTreeMap<String, Result<Client, Failure>>,
    servers: BTreeMap<String, ApiServer>,
    pods: Option<PodAudit>,
    seen: Arc<SeenTwins>,
}

impl World {
    pub fn new(local: NamespaceMeta) -> Self {
        let (nodes, nodes_writer) = reflector::store();
        let name = local.metadata.name.clone().unwrap_or_default();
        let namespaces = Namespaces::filled([(name.as_str(), NamespaceFacts::of(&local.metadata))]);
        World {
            nodes,
            nodes_writer,
            namespaces,
            remotes: BTreeMap::new(),
            servers: BTreeMap::new(),
            pods: None,
            // Disabled: each scripted run expects every request.
            seen: Arc::new(SeenTwins::new(Duration::ZERO)),
        }
    }

    /// Shares `seen` (twins found ready) with this run, as the controller does across runs.
    pub fn seen(&mut self, seen: Arc<SeenTwins>) -> &mut Self {
        self.seen = seen;
        self
    }

    /// Adds a virtual node (a remote cluster as the home cluster sees it).
    pub fn node(&mut self, node: Node) -> &mut Self {
        self.nodes_writer.apply_watcher_event(&Event::Apply(node));
        self
    }

    /// Judges the namespace's pods (SPEC §12) with `audit`; without, no pod is listed.
    pub fn audit_pods(&mut self, audit: PodAudit) -> &mut Self {
        self.pods = Some(audit);
        self
    }

    /// Gives `cluster` credentials that lead to a scripted API server.
    pub fn reachable(&mut self, cluster: &str) -> &mut Self {
        let (client, server) = pair();
        self.remotes.insert(cluster.to_owned(), Ok(client));
        self.servers.insert(cluster.to_owned(), server);
        self
    }

    /// Makes `cluster`'s credentials fail with `message`.
    pub fn broken(&mut self, cluster: &str, message: &str) -> &mut Self {
        let failure = Failure {
            message: message.to_owned(),
            unreachable: true,
        };
        self.remotes.insert(cluster.to_owned(), Err(failure));
        self
    }

    /// Reconciles `nsoff` once while `home` and `remote` script the API servers (`remote`
    /// gets each reachable cluster's id and server). Every script must end its server with
    /// `expect_done`, so an unexpected call fails the test.
    pub async fn run<H, R>(
        self,
        nsoff: &NamespaceOffloading,
        home: H,
        remote: R,
    ) -> Result<Report, HomeError>
    where
        H: FnOnce(ApiServer) -> BoxFuture<'static, ()>,
        R: Fn(String, ApiServer) -> BoxFuture<'static, ()>,
    {
        // Namespaces stay in the store; keep the writers alive until the end.
        let _keep = self.nodes_writer;
        let (home_client, home_server) = pair();
        let mut scripts = vec![tokio::spawn(home(home_server))];
        for (id, server) in self.servers {
            scripts.push(tokio::spawn(remote(id, server)));
        }
        let ctx = Context {
            home: home_client,
            home_id: HOME.to_owned(),
            nodes: self.nodes,
            namespaces: self.namespaces,
            remotes: Arc::new(FakeRemotes(self.remotes)),
            remote_timeout: Duration::from_millis(500),
            clock,
            pods: self.pods,
            seen: self.seen,
        };
        let out = tokio::time::timeout(Duration::from_secs(2), flow::reconcile(nsoff, &ctx))
            .await
            .expect("the reconcile finished within 2 s");
        drop(ctx);
        let results = tokio::time::timeout(Duration::from_secs(2), join_all(scripts))
            .await
            .expect("every API server script finished within 2 s");
        for result in results {
            if let Err(e) = result {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        out
    }
}

// Expected requests and statuses shared by the flow tests.

/// The status the reconciler wrote, from a JSON patch `add /status`.
pub fn written_status(body: &Value) -> Value {
    assert_eq!(body[0]["op"], "add", "{body}");
    assert_eq!(body[0]["path"], "/status", "{body}");
    body[0]["value"].clone()
}

pub fn required(selected: bool, message: &str) -> Value {
    let (status, reason) = if selected {
        ("True", "ClusterSelected")
    } else {
        ("False", "ClusterNotSelected")
    };
    json!({"type": "OffloadingRequired", "status": status, "lastTransitionTime": NOW, "reason": reason, "message": message})
}

pub fn ready(status: &str, reason: &str, message: &str) -> Value {
    json!({"type": "Ready", "status": status, "lastTransitionTime": NOW, "reason": reason, "message": message})
}

pub fn top(ready_status: &str, reason: &str, message: &str) -> Value {
    json!([
        {"type": "SelectorValid", "status": "True", "lastTransitionTime": NOW, "reason": "Valid",
         "message": "the cluster selector is valid", "observedGeneration": 3},
        {"type": "Ready", "status": ready_status, "lastTransitionTime": NOW, "reason": reason,
         "message": message, "observedGeneration": 3},
    ])
}

pub const SELECTED: &str = "the cluster matches the cluster selector";
pub const NOT_SELECTED: &str = "no virtual node of this cluster matches the cluster selector";

/// Home script of a first reconcile: finalizer, scheduling label, then the status (checked
/// whole against `expected`).
pub fn first_pass_home(
    expected: Value,
) -> impl FnOnce(ApiServer) -> futures_util::future::BoxFuture<'static, ()> {
    move |mut home: ApiServer| {
        async move {
            let call = home.expect(Method::PATCH, NSOFF_PATH).await;
            assert_eq!(call.content_type, "application/json-patch+json");
            assert_eq!(
                call.body,
                json!([
                    {"op": "test", "path": "/metadata/finalizers", "value": null},
                    {"op": "add", "path": "/metadata/finalizers", "value": ["namespaceoffloading-controller.liqo.io/finalizer"]},
                ])
            );
            call.ok(&nsoff_body());
            let call = home.expect(Method::PATCH, "/api/v1/namespaces/shop").await;
            assert_eq!(call.content_type, "application/merge-patch+json");
            assert_eq!(call.body, json!({"metadata": {"labels": {"liqo.io/scheduling-enabled": "true"}}}));
            call.ok(&remote_namespace(NS, json!({}), false));
            let call = home.expect(Method::PATCH, STATUS_PATH).await;
            assert_eq!(written_status(&call.body), expected);
            call.ok(&nsoff_body());
            home.expect_done().await;
        }
        .boxed()
    }
}

/// Home script of a reconcile that writes nothing but the status, with phase `phase`.
pub fn writes_phase(
    phase: &'static str,
) -> impl Fn(ApiServer) -> futures_util::future::BoxFuture<'static, ()> + Copy {
    move |mut home: ApiServer| {
        async move {
            let call = home.expect(Method::PATCH, STATUS_PATH).await;
            assert_eq!(written_status(&call.body)["offloadingPhase"], phase);
            call.ok(&nsoff_body());
            home.expect_done().await;
        }
        .boxed()
    }
}

/// A remote cluster where the status says the twin was created, but it is gone: read, then
/// created again.
pub async fn recreates_twin(mut server: ApiServer) {
    server
        .expect(Method::GET, TWIN_PATH)
        .await
        .fail(404, "NotFound");
    creates_twin(server).await;
}

/// A remote cluster where the twin is missing and gets created (the status has never seen
/// it: created at once, without a read).
pub async fn creates_twin(mut server: ApiServer) {
    let call = server.expect(Method::POST, "/api/v1/namespaces").await;
    assert_eq!(call.body, twin_object());
    call.reply(
        http::StatusCode::CREATED,
        &remote_namespace(TWIN, ours(), false),
    );
    server.expect_done().await;
}

/// A remote cluster that must not be called at all.
pub async fn untouched(server: ApiServer) {
    server.expect_done().await;
}
