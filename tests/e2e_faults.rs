//! Fault tests on local control planes (`make e2e-local`): the home API server stopped while
//! admission runs, a remote API server stopped mid-reconcile, a cluster gone for good (see
//! `e2e/fault_tests.rs`). They stop and start API servers with `tests/cluster/localkube.sh`
//! (named by `NSOFFLOAD_E2E_LOCALKUBE`), so they cannot run against other clusters; like the
//! other real-cluster suites they are `#[ignore]`d, and fail when asked for without their
//! environment. The set-up is the reconciler suite's (`e2e_reconcile.rs`), with its own
//! server and logs (`target/tmp/nsoffload-e2e/faults-server.log`).

// The modules are shared with the other suites; not every item is used by this binary.
#[path = "e2e/balancer.rs"]
#[allow(dead_code)]
mod balancer;
#[path = "e2e/fault_tests.rs"]
mod fault_tests;
#[allow(dead_code)]
#[path = "e2e/fixtures.rs"]
mod fixtures;
#[allow(dead_code)]
#[path = "e2e/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "e2e/kit.rs"]
mod kit;
#[allow(dead_code)]
#[path = "e2e/reconcile_expect.rs"]
mod reconcile_expect;
#[allow(dead_code)]
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
