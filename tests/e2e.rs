//! Real-cluster end-to-end tests: one `nsoffload serve` in cluster mode, registered with a
//! real API server, exercised through ordinary API requests; the stored objects are checked
//! exactly.
//!
//! Why: the in-process tests prove the decisions; only a real API server proves the parts
//! between them and a user: registration (caBundle, URL, selectors, rules), the API server's
//! own admission plugins running before the webhook, the JSON Patch as the API server applies
//! it, denials and warnings as a client sees them, and the watch caches.
//!
//! # Running
//!
//! Every test is `#[ignore]`d, so a plain `cargo test` reports them as ignored. `make
//! e2e-local` runs them against local control planes it starts (`tests/cluster/`); against a
//! cluster of your own:
//!
//! ```sh
//! NSOFFLOAD_E2E_KUBECONFIG=~/.kube/e2e.yaml cargo test --test e2e -- --ignored \
//!     --skip supervisor_entry --test-threads=1 --nocapture
//! ```
//!
//! (`make e2e` runs this binary and the reconciler suite `e2e_reconcile.rs`, which needs
//! remote clusters too.)
//!
//! - `NSOFFLOAD_E2E_KUBECONFIG` (required; without it every test fails): a cluster-admin kubeconfig of a disposable cluster, Kubernetes
//!   1.19 or later, without nsoffload installed (the suite refuses to take over the webhook
//!   configurations `nsoffload` of a real installation).
//! - `NSOFFLOAD_E2E_WEBHOOK_HOST` (default `127.0.0.1`): an address of this machine that the
//!   API server can reach; the server listens on `0.0.0.0` and registers
//!   `https://HOST:PORT` with a self-managed CA.
//! - `NSOFFLOAD_E2E_WEBHOOK_PORT` (default: a free port): for firewalls that open one port.
//!
//! With kind, the API server runs in a container, so 127.0.0.1 is the container itself; the
//! host is reachable at the gateway of the `kind` docker network:
//!
//! ```sh
//! kind create cluster --kubeconfig /tmp/kind-e2e.yaml
//! export NSOFFLOAD_E2E_KUBECONFIG=/tmp/kind-e2e.yaml
//! export NSOFFLOAD_E2E_WEBHOOK_HOST=$(docker network inspect kind -f '{{(index .IPAM.Config 0).Gateway}}')
//! make e2e
//! ```
//! (a host firewall must let the container reach that port).
//!
//! # What the suite changes, and how it undoes it
//!
//! Once per process (`e2e/harness.rs`, `e2e/startup.rs`): the CRD is server-side applied,
//! the namespace `nsoffload-e2e` created, and the server started; set-up ends when the API
//! server is seen calling both webhooks. Each test works in its own namespaces
//! `e2e-<test>-<hex>`, deleted when it ends, pass or fail (`e2e/kit.rs`). The server lives in
//! a supervisor process (`e2e/supervisor.rs`) that notices when this process exits, however
//! it ends, stops the server and deletes what the suite created; files are under
//! `target/tmp/nsoffload-e2e/` (`server.log`, `supervisor.log`). Tests run one at a time
//! (`--test-threads=1`) to keep the load on a small cluster predictable; they do not depend
//! on each other or on their order.
//!
//! This suite checks the webhooks alone: its server runs with `--reconcile=false`, and the
//! tests write each NamespaceOffloading's status themselves through the status subresource,
//! as the reconciler would (a running reconciler would overwrite those statuses). The
//! reconciler is exercised, against real remote clusters, by `e2e_reconcile.rs`.

#[path = "e2e/balancer.rs"]
mod balancer;
#[path = "e2e/fixtures.rs"]
mod fixtures;
#[path = "e2e/harness.rs"]
mod harness;
#[path = "e2e/kit.rs"]
mod kit;
#[path = "e2e/policy_tests.rs"]
mod policy_tests;
#[path = "e2e/rollout_tests.rs"]
mod rollout_tests;
#[path = "e2e/startup.rs"]
mod startup;
#[path = "e2e/supervisor.rs"]
mod supervisor;

use anyhow::Context as _;
use fixtures::*;
use harness::E2e;
use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelectorTerm, Pod, PodAntiAffinity, PreferredSchedulingTerm,
    WeightedPodAffinityTerm,
};
use kit::{check, Scope};
use nsoffload::api::PodOffloadingStrategy::{self, *};

/// Not a test: the entry point of the supervisor process (see `e2e/supervisor.rs`), which runs
/// it by name with `--ignored`; `make e2e` skips it.
#[test]
#[ignore = "not a test: the entry point of the e2e supervisor process"]
fn supervisor_entry() {
    let plan = supervisor::requested()
        .expect("supervisor_entry is started by the e2e suite itself, with a plan");
    supervisor::run(plan);
}

/// An offloaded namespace (phase Ready) plus a control namespace the webhook ignores.
async fn namespaces(
    s: &Scope,
    strategy: PodOffloadingStrategy,
    cs: Option<Vec<NodeSelectorTerm>>,
) -> anyhow::Result<(String, String)> {
    let ns = offloaded_namespace(s, strategy, cs, Some("Ready")).await?;
    Ok((ns, s.pod_namespace(&[]).await?))
}

/// Creates each vector's pod in both namespaces and compares.
async fn vectors(
    s: &Scope,
    ns: &str,
    control: &str,
    cases: Vec<(&str, Pod, Expect)>,
) -> anyhow::Result<()> {
    for (vector, pod, expect) in cases {
        let (twin, got) = pod_pair(&s.client, control, ns, &pod)
            .await
            .with_context(|| vector.to_owned())?;
        compare(vector, &twin, &got, &expect)?;
    }
    Ok(())
}

fn required(terms: Vec<NodeSelectorTerm>) -> Expect {
    Expect {
        adds_tv: true,
        required: Some(terms),
    }
}

/// Preferred node affinity and pod anti-affinity, which the mutation must keep as they are.
fn other_affinity() -> Affinity {
    let preferred = PreferredSchedulingTerm {
        weight: 10,
        preference: term(&[&[req("disk", "In", &["ssd"])]]),
    };
    let anti = WeightedPodAffinityTerm {
        weight: 20,
        pod_affinity_term: serde_json::from_value(serde_json::json!({
            "topologyKey": "kubernetes.io/hostname",
            "labelSelector": {"matchLabels": {"app": "web"}},
        }))
        .expect("a valid PodAffinityTerm"),
    };
    Affinity {
        node_affinity: Some(NodeAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![preferred]),
            ..NodeAffinity::default()
        }),
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![anti]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    }
}

#[tokio::test]
#[ignore = "needs a real cluster: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG"]
async fn mutation_remote() {
    let env = E2e::get().await;
    check(&env, "remote", |s| async move {
        let (ns, control) = namespaces(&s, Remote, Some(cs())).await?;
        let (c1, c2, p1, p2, vin) = (c1(), c2(), p1(), p2(), vin());
        let remote = || vec![term(&[&c1, &vin]), term(&[&c2, &vin])];
        let mut p13 = pod("p13", vec![], None, None);
        p13.spec.as_mut().unwrap().affinity = Some(other_affinity());
        let cases = vec![
            ("P2", pod("p2", vec![], None, None), required(remote())),
            (
                "P6",
                pod(
                    "p6",
                    vec![tt()],
                    Some(vec![term(&[&p1]), term(&[&p2])]),
                    None,
                ),
                required(vec![
                    term(&[&p1, &c1, &vin]),
                    term(&[&p1, &c2, &vin]),
                    term(&[&p2, &c1, &vin]),
                    term(&[&p2, &c2, &vin]),
                ]),
            ),
            (
                "P8",
                pod("p8", vec![tv()], None, None),
                Expect {
                    adds_tv: false,
                    required: Some(remote()),
                },
            ),
            ("P13-like", p13, required(remote())),
            (
                "P15",
                pod("p15", vec![], Some(vec![term(&[&p1, &vin])]), None),
                required(vec![term(&[&p1, &vin, &c1]), term(&[&p1, &vin, &c2])]),
            ),
        ];
        vectors(&s, &ns, &control, cases).await
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a real cluster: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG"]
async fn mutation_remote_without_selector() {
    let env = E2e::get().await;
    check(&env, "remote-all", |s| async move {
        let (ns, control) = namespaces(&s, Remote, None).await?;
        let pinned = NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![req("metadata.name", "In", &["n1"])]),
        };
        let pinned_remote = NodeSelectorTerm {
            match_expressions: Some(vin()),
            ..pinned.clone()
        };
        let cases = vec![
            (
                "P3",
                pod("p3", vec![], None, None),
                required(vec![term(&[&vin()])]),
            ),
            (
                "P12",
                pod("p12", vec![], Some(vec![pinned]), None),
                required(vec![pinned_remote]),
            ),
        ];
        vectors(&s, &ns, &control, cases).await
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a real cluster: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG"]
async fn mutation_local_and_remote() {
    let env = E2e::get().await;
    check(&env, "lar", |s| async move {
        let (ns, control) = namespaces(&s, LocalAndRemote, Some(cs())).await?;
        let (c1, c2, p1, p2, notin) = (c1(), c2(), p1(), p2(), vnotin());
        let cases = vec![
            (
                "P4",
                pod("p4", vec![], None, None),
                required(vec![term(&[&c1]), term(&[&c2]), term(&[&notin])]),
            ),
            (
                "P7",
                pod(
                    "p7",
                    vec![tt()],
                    Some(vec![term(&[&p1]), term(&[&p2])]),
                    None,
                ),
                required(vec![
                    term(&[&p1, &c1]),
                    term(&[&p1, &c2]),
                    term(&[&p1, &notin]),
                    term(&[&p2, &c1]),
                    term(&[&p2, &c2]),
                    term(&[&p2, &notin]),
                ]),
            ),
        ];
        vectors(&s, &ns, &control, cases).await
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a real cluster: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG"]
async fn mutation_local_and_remote_without_selector() {
    let env = E2e::get().await;
    check(&env, "lar-all", |s| async move {
        let (ns, control) = namespaces(&s, LocalAndRemote, None).await?;
        let p5 = Expect {
            adds_tv: true,
            required: None,
        };
        vectors(
            &s,
            &ns,
            &control,
            vec![("P5", pod("p5", vec![], None, None), p5)],
        )
        .await
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a real cluster: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG"]
async fn mutation_local() {
    let env = E2e::get().await;
    check(&env, "local", |s| async move {
        let (ns, control) = namespaces(&s, Local, Some(cs())).await?;
        let p1_pod = pod(
            "p1",
            vec![tt()],
            Some(vec![term(&[&p1()]), term(&[&p2()])]),
            None,
        );
        let unchanged = Expect {
            adds_tv: false,
            required: None,
        };
        vectors(&s, &ns, &control, vec![("P1", p1_pod, unchanged)]).await
    })
    .await;
}

/// P9: a pod of the RuntimeClass `liqo` gets no toleration from us (the RuntimeClass
/// admission plugin may add the RuntimeClass's own, which then appears in the control twin
/// too) but is still restricted to the selected clusters.
#[tokio::test]
#[ignore = "needs a real cluster: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG"]
async fn mutation_runtime_class() {
    let env = E2e::get().await;
    check(&env, "runtime-class", |s| async move {
        ensure_runtime_class(&s).await?;
        let (ns, control) = namespaces(&s, Remote, Some(cs())).await?;
        let (c1, c2, vin) = (c1(), c2(), vin());
        let p9 = Expect {
            adds_tv: false,
            required: Some(vec![term(&[&c1, &vin]), term(&[&c2, &vin])]),
        };
        let cases = vec![("P9", pod("p9", vec![], None, Some("liqo")), p9)];
        vectors(&s, &ns, &control, cases).await
    })
    .await;
}
