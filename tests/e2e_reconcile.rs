//! Real-cluster end-to-end tests of the twin-namespace reconciler (SPEC §7): one
//! `nsoffload serve` in cluster mode with the reconciler on (`--reconcile=true
//! --leader-elect=true`), a home cluster and 1 to 3 real remote clusters; the tests create
//! NamespaceOffloadings and check what the reconciler does on every cluster. They never write a
//! status themselves (that is what `e2e.rs` does, with the reconciler off). `e2e/cli_tests.rs`
//! runs the `offload`/`unoffload namespace` commands through the same set-up, end to end.
//!
//! # Running
//!
//! - `NSOFFLOAD_E2E_KUBECONFIG`: the home cluster, as for `e2e.rs` (a disposable cluster
//!   without nsoffload or Liqo; its API server must reach the webhook URL, see
//!   `NSOFFLOAD_E2E_WEBHOOK_HOST` in `e2e.rs`).
//! - `NSOFFLOAD_E2E_REMOTE_KUBECONFIGS`: comma-separated `id=path` pairs, 1 to 3 remote
//!   clusters other than the home cluster, e.g. `r1=/tmp/r1.yaml,r2=/tmp/r2.yaml`. Each id is a
//!   DNS-1123 label; each kubeconfig must be self-contained (certificates inline) and
//!   cluster-admin, with a server address usable from this machine: the tests use it, and the
//!   server, which runs on this machine too, gets it in a credential Secret.
//!
//! The tests are `#[ignore]`d (a plain `cargo test` reports them as ignored); asked for
//! without both variables they fail, and R4 fails with fewer than two remote clusters. `make
//! e2e-local` starts a home cluster with a kube-scheduler and local workers, and `r1`, `r2`
//! (`tests/cluster/`). The placement tests (`e2e/placement_tests.rs`) need a scheduler and a
//! Ready local worker in the home cluster.
//!
//! With kind: the server process runs on the host, so the kubeconfigs `kind get kubeconfig`
//! prints (API servers on `127.0.0.1:<port>`) work for the tests and the server alike; only
//! the home API server, inside its container, needs the gateway address to call the webhooks.
//!
//! ```sh
//! for c in home r1 r2; do
//!   kind create cluster --name nsoff-$c
//!   kind get kubeconfig --name nsoff-$c > /tmp/nsoff-$c.yaml
//! done
//! export NSOFFLOAD_E2E_KUBECONFIG=/tmp/nsoff-home.yaml
//! export NSOFFLOAD_E2E_REMOTE_KUBECONFIGS=r1=/tmp/nsoff-r1.yaml,r2=/tmp/nsoff-r2.yaml
//! export NSOFFLOAD_E2E_WEBHOOK_HOST=$(docker network inspect kind -f '{{(index .IPAM.Config 0).Gateway}}')
//! cargo test --test e2e_reconcile -- --ignored --skip supervisor_entry --test-threads=1 --nocapture
//! ```
//!
//! (`make e2e` runs this binary after `e2e.rs`; a third cluster `r3` is added the same way.)
//!
//! # What the suite changes, and how it undoes it
//!
//! The set-up of `e2e.rs` (CRD, namespace `nsoffload-e2e`, webhook configurations, supervisor),
//! with the reconciler on; its Lease `nsoffload-reconciler` lives in `nsoffload-e2e`. Then, in
//! the home cluster, per remote cluster `<id>`: a fake virtual Node `e2e-virtual-<id>` and a
//! credential Secret `e2e-remote-<id>` in `nsoffload-e2e` (`e2e/remote.rs`). The reconciler
//! creates twin namespaces `e2e-<test>-<hex>-e2e` on the remote clusters (home cluster id
//! `e2e`), and R4 creates a namespace of its own on the second one. After each test, pass or
//! fail, its NamespaceOffloadings are deleted, the reconciler gets a bounded time to delete
//! their twins, and what of the test is still on a remote cluster is deleted. At exit the
//! supervisor deletes the suite's Nodes, Secrets and namespaces, and on every remote cluster
//! the namespaces owned by `e2e/e2e-…` or carrying the suite label. Logs:
//! `target/tmp/nsoffload-e2e/reconcile-server.log` and `reconcile-supervisor.log`.

// The modules are shared with `e2e.rs`; not every item is used by this binary.
#[path = "e2e/cli_tests.rs"]
mod cli_tests;
#[path = "e2e/consistency_tests.rs"]
mod consistency_tests;
#[path = "e2e/drift_tests.rs"]
mod drift_tests;
#[allow(dead_code)]
#[path = "e2e/fixtures.rs"]
mod fixtures;
#[allow(dead_code)]
#[path = "e2e/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "e2e/kit.rs"]
mod kit;
#[path = "e2e/placement_tests.rs"]
mod placement_tests;
#[path = "e2e/quick_tests.rs"]
mod quick_tests;
#[path = "e2e/reconcile_expect.rs"]
mod reconcile_expect;
#[path = "e2e/reconcile_tests.rs"]
mod reconcile_tests;
#[path = "e2e/remote.rs"]
mod remote;
#[allow(dead_code)]
#[path = "e2e/startup.rs"]
mod startup;
#[allow(dead_code)]
#[path = "e2e/supervisor.rs"]
mod supervisor;

/// Not a test: the entry point of the supervisor process (see `e2e/supervisor.rs`), which runs
/// it by name with `--ignored`; `make e2e` skips it.
#[test]
#[ignore = "not a test: the entry point of the e2e supervisor process"]
fn supervisor_entry() {
    let plan = supervisor::requested()
        .expect("supervisor_entry is started by the e2e suite itself, with a plan");
    supervisor::run(plan);
}
