//! The benchmark's fixture state, its servers (one OS thread, one current-thread runtime) and
//! the answer every request must get back.

use std::hint::black_box as bb;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::routing::post;
use axum::Router;
use base64::Engine as _;
use bytes::Bytes;
use k8s_openapi::api::core::v1::{NodeSelector, NodeSelectorRequirement, NodeSelectorTerm};
use nsoffload::admission::review::{self, Decision};
use nsoffload::admission::{pod, Admission, Webhook};
use nsoffload::api::consts::NSOFF_NAME;
use nsoffload::api::{
    NamespaceMappingStrategy, NamespaceOffloading, NamespaceOffloadingSpec,
    NamespaceOffloadingStatus, OffloadingPhase, PodOffloadingStrategy,
};
use nsoffload::policy::mutate::{mutate, PodView};
use nsoffload::server::router::{router, App, MAX_BODY_BYTES};
use nsoffload::state::Snapshot;
use serde_json::value::RawValue;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::http;
use crate::load::ThreadClock;

/// The namespace of the fixture's request.
pub const NAMESPACE: &str = "shop";
/// The RuntimeClass configured by `http::app`.
const RUNTIME_CLASS: &str = "liqo";

fn req(key: &str, operator: &str, values: &[String]) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: key.to_owned(),
        operator: operator.to_owned(),
        values: (!values.is_empty()).then(|| values.to_vec()),
    }
}

fn offloading(
    namespace: &str,
    spec: NamespaceOffloadingSpec,
    phase: OffloadingPhase,
) -> NamespaceOffloading {
    let mut n = NamespaceOffloading::new(NSOFF_NAME, spec);
    n.metadata.namespace = Some(namespace.to_owned());
    n.metadata.generation = Some(1);
    n.status = Some(NamespaceOffloadingStatus {
        offloading_phase: Some(phase),
        observed_generation: Some(1),
        ..Default::default()
    });
    n
}

/// `shop`: Remote, Ready, clusterSelector `[region In [A,B], provider Exists] OR
/// [region In [C], gpu Exists]` (c1, c2 of SPEC §3), so the pod gets a toleration and a
/// two-term node affinity.
fn shop() -> NamespaceOffloading {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let terms = vec![
        NodeSelectorTerm {
            match_expressions: Some(vec![
                req("region", "In", &s(&["A", "B"])),
                req("provider", "Exists", &[]),
            ]),
            match_fields: None,
        },
        NodeSelectorTerm {
            match_expressions: Some(vec![
                req("region", "In", &s(&["C"])),
                req("gpu", "Exists", &[]),
            ]),
            match_fields: None,
        },
    ];
    let spec = NamespaceOffloadingSpec {
        pod_offloading_strategy: PodOffloadingStrategy::Remote,
        cluster_selector: Some(NodeSelector {
            node_selector_terms: terms,
        }),
        ..Default::default()
    };
    offloading(NAMESPACE, spec, OffloadingPhase::Ready)
}

/// `ns-<i>`: strategies, mapping strategies, phases and 0–3 selector terms vary with `i`.
fn other(i: usize) -> NamespaceOffloading {
    use NamespaceMappingStrategy as M;
    use PodOffloadingStrategy as S;
    let strategy = [S::Remote, S::LocalAndRemote, S::Local][i % 3];
    let mapping = [M::DefaultName, M::EnforceSameName, M::SelectedName][i % 3];
    let terms: Vec<NodeSelectorTerm> = (0..i % 4)
        .map(|t| NodeSelectorTerm {
            match_expressions: Some(vec![
                req("region", "In", &[format!("r{}", (i + t) % 7)]),
                req(&format!("tier-{}", t), "Exists", &[]),
            ]),
            match_fields: None,
        })
        .collect();
    let spec = NamespaceOffloadingSpec {
        namespace_mapping_strategy: mapping,
        remote_namespace_name: (mapping == M::SelectedName).then(|| format!("twin-{i}")),
        pod_offloading_strategy: strategy,
        cluster_selector: (!terms.is_empty()).then_some(NodeSelector {
            node_selector_terms: terms,
        }),
    };
    let phase = match i % 10 {
        0 => OffloadingPhase::InProgress,
        1 => OffloadingPhase::SomeFailed,
        _ => OffloadingPhase::Ready,
    };
    offloading(&format!("ns-{i}"), spec, phase)
}

/// A snapshot with `shop` and `others` more namespaces; checks they were all kept.
pub fn snapshot(others: usize) -> Snapshot {
    let nsoffs = std::iter::once(shop()).chain((0..others).map(other));
    let snap = Snapshot::new(nsoffs, vec![], vec![]);
    if snap.offloading_count() != others + 1 {
        crate::fail(format!(
            "the snapshot holds {} NamespaceOffloadings, expected {}",
            snap.offloading_count(),
            others + 1
        ));
    }
    snap
}

/// The webhook router plus `POST /constant`, which reads the body and answers `constant`:
/// the same stack (axum, body limit, hyper, rustls) without the admission work.
pub fn routes(app: Arc<App>, constant: Bytes) -> Router {
    let extra = Router::new()
        .route(
            "/constant",
            post(move |_body: Bytes| {
                let answer = constant.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], answer) }
            }),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    router(app).merge(extra)
}

/// The answer of `/mutate/pod` to `body`, computed in-process the way the handler does.
pub fn expected_answer(adm: &Admission, body: &[u8]) -> Bytes {
    let review = review::decode(body).unwrap_or_else(|e| crate::fail(e));
    let decision = ready(pod::review(adm, &review.request));
    review::encode(review.api_version, &review.request.uid, &decision).into()
}

/// Checks that `answer` allows the request `uid` with the mutation SPEC §3 asks for (the
/// virtual-node toleration and a two-term required node affinity), so the benchmark measures
/// real work.
pub fn check_answer(answer: &[u8], uid: &str) -> Result<(), String> {
    let text = std::str::from_utf8(answer).map_err(|e| e.to_string())?;
    if !text.contains("\"allowed\":true") {
        return Err(format!("the answer does not allow the pod: {text}"));
    }
    let v: Value = serde_json::from_str(text).map_err(|e| format!("{e}: {text}"))?;
    let resp = &v["response"];
    let ok = v["apiVersion"] == "admission.k8s.io/v1"
        && v["kind"] == "AdmissionReview"
        && resp["uid"] == uid
        && resp["patchType"] == "JSONPatch";
    if !ok {
        return Err(format!("unexpected answer envelope: {text}"));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(resp["patch"].as_str().unwrap_or(""))
        .map_err(|e| format!("the patch is not base64: {e}"))?;
    let patch: Vec<Value> = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
    let op = |path: &str| patch.iter().find(|o| o["op"] == "add" && o["path"] == path);
    let tolerates = op("/spec/tolerations/-")
        .is_some_and(|o| o["value"]["key"] == "virtual-node.liqo.io/not-allowed");
    let terms = op("/spec/affinity/nodeAffinity")
        .and_then(|o| {
            o["value"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
                .as_array()
        })
        .cloned()
        .unwrap_or_default();
    let virtual_node = serde_json::json!({
        "key": "liqo.io/type", "operator": "In", "values": ["virtual-node"]
    });
    let remote_only = terms.len() == 2
        && terms.iter().all(|t| {
            t["matchExpressions"]
                .as_array()
                .is_some_and(|e| e.contains(&virtual_node))
        });
    if patch.len() != 2 || !tolerates || !remote_only {
        return Err(format!(
            "unexpected patch: {}",
            String::from_utf8_lossy(&raw)
        ));
    }
    Ok(())
}

/// In-process cost of each step of a `/mutate/pod` decision, in µs per call (no HTTP, no
/// TLS): where the handler's time goes. Each figure is the median of 9 windows that together
/// last `each`, because this machine's speed drifts by tens of percent within a second.
pub fn breakdown(
    app: &Arc<App>,
    body: &[u8],
    constant: &Bytes,
    each: Duration,
) -> Vec<(&'static str, f64)> {
    fn per_call(each: Duration, mut f: impl FnMut()) -> f64 {
        let mut windows: Vec<f64> = (0..9)
            .map(|_| {
                let (start, mut n) = (Instant::now(), 0u64);
                while start.elapsed() < each / 9 {
                    for _ in 0..16 {
                        f();
                    }
                    n += 16;
                }
                start.elapsed().as_secs_f64() * 1e6 / n as f64
            })
            .collect();
        windows.sort_by(f64::total_cmp);
        windows[windows.len() / 2]
    }
    let adm = &app.admission;
    let review = review::decode::<PodView>(body).unwrap_or_else(|e| crate::fail(e));
    let snapshot = adm.store.load();
    let entry = snapshot
        .offloading(NAMESPACE)
        .unwrap_or_else(|| crate::fail("no entry for the namespace"));
    let view = review
        .request
        .object
        .as_ref()
        .unwrap_or_else(|| crate::fail("no pod in the fixture"));
    let decision = ready(pod::review(adm, &review.request));
    if !matches!(&decision, Decision::Allow { patch, .. } if !patch.is_empty()) {
        crate::fail(format!("unexpected decision {decision:?}"));
    }
    let whole = || drop(bb(ready(adm.handle(Webhook::MutatePod, bb(body)))));
    per_call(each, whole); // warm-up
    vec![
        (
            "decode the envelope only, pod kept raw (review::decode)",
            per_call(each, || drop(bb(review::decode::<&RawValue>(bb(body))))),
        ),
        (
            "decode with the pod's fields, one pass (review::decode)",
            per_call(each, || drop(bb(review::decode::<PodView>(bb(body))))),
        ),
        (
            "build the patch (policy::mutate + Decision::patched)",
            per_call(each, || {
                let ops = mutate(bb(view), &entry.policy, RUNTIME_CLASS);
                drop(bb(ops.map(|o| Decision::patched(&o))))
            }),
        ),
        (
            "encode the answer (review::encode)",
            per_call(each, || {
                let (v, uid) = (review.api_version, &review.request.uid);
                drop(bb(review::encode(v, uid, bb(&decision))));
            }),
        ),
        ("whole decision (Admission::handle)", per_call(each, whole)),
        (
            "router → /mutate/pod (tower oneshot, no TLS/HTTP)",
            per_call(
                each,
                through_router(app, constant, body, "/mutate/pod?timeout=10s"),
            ),
        ),
        (
            "router → /constant (tower oneshot, no TLS/HTTP)",
            per_call(
                each,
                through_router(app, constant, body, "/constant?timeout=10s"),
            ),
        ),
    ]
}

/// One request through the webhook router plus `/constant` answering `constant`, on a current-thread runtime: what the
/// handler costs beyond the decision (extractors, span, metrics, response), without I/O.
fn through_router<'a>(
    app: &Arc<App>,
    constant: &Bytes,
    body: &'a [u8],
    path: &'a str,
) -> impl FnMut() + 'a {
    use tower::ServiceExt as _;
    let routes = routes(app.clone(), constant.clone());
    let body = Bytes::copy_from_slice(body);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a Tokio runtime");
    move || {
        let req = http::post(path, body.clone()).map(axum::body::Body::new);
        rt.block_on(async {
            let resp = routes
                .clone()
                .oneshot(req)
                .await
                .unwrap_or_else(|e| match e {});
            let status = resp.status();
            let got = http_body_util::BodyExt::collect(resp.into_body()).await;
            if status != axum::http::StatusCode::OK || got.is_err() {
                crate::fail(format!("{path} answered {status} in-process"));
            }
            drop(bb(got));
        })
    }
}

/// The servers under test, all on one OS thread running a current-thread Tokio runtime.
pub struct Servers {
    /// Address and CA (PEM) of each server, in the order of the routes given.
    pub endpoints: Vec<(SocketAddr, String)>,
    /// CPU clock of the server thread.
    pub clock: ThreadClock,
    /// Whether the server thread is pinned to CPU 1.
    pub pinned: bool,
    stop: CancellationToken,
    thread: std::thread::JoinHandle<()>,
}

impl Servers {
    /// Starts one TLS server per router (via `http::start`) on a new thread, pinned to CPU 1
    /// when `pin`.
    pub fn spawn(routes: Vec<Router>, pin: bool) -> Servers {
        let stop = CancellationToken::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let token = stop.clone();
        let thread = std::thread::Builder::new()
            .name("nsoff-server".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a Tokio runtime");
                let pinned = pin && crate::load::pin_current_thread(1);
                rt.block_on(async move {
                    let mut servers = Vec::new();
                    for r in routes {
                        servers.push(http::start(r).await);
                    }
                    let endpoints = servers
                        .iter()
                        .map(|s| (s.addr, s.certs.ca_cert_pem.clone()))
                        .collect::<Vec<_>>();
                    let _ = tx.send((endpoints, ThreadClock::current(), pinned));
                    token.cancelled().await;
                    for s in &servers {
                        s.shutdown.cancel();
                    }
                    for s in servers {
                        let _ = s.task.await;
                    }
                });
            })
            .expect("a server thread");
        let (endpoints, clock, pinned) = rx
            .recv()
            .unwrap_or_else(|_| crate::fail("the server thread died while starting"));
        Servers {
            endpoints,
            clock,
            pinned,
            stop,
            thread,
        }
    }

    /// Stops the servers (after the clients have closed their connections) and joins the thread.
    pub fn stop(self) {
        self.stop.cancel();
        if self.thread.join().is_err() {
            crate::fail("the server thread panicked");
        }
    }
}

/// The request's uid, read from the fixture.
pub fn request_uid(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or_else(|e| crate::fail(e));
    v["request"]["uid"]
        .as_str()
        .unwrap_or_else(|| crate::fail("the fixture has no request.uid"))
        .to_owned()
}

/// The output of a future that completes without waiting (a cache hit does no I/O).
fn ready<T>(f: impl std::future::Future<Output = T>) -> T {
    futures_util::FutureExt::now_or_never(f)
        .unwrap_or_else(|| crate::fail("the decision waited on I/O"))
}
