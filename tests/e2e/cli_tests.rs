//! The client commands against the real clusters (SPEC §9): the `nsoffload` binary, run as
//! an operator runs it, with the suite's home kubeconfig.
//!
//! One round trip: `--output` writes nothing; `offload namespace` exits 0 only once the
//! reconciler reports Ready on every remote cluster, and the twins are really there; running
//! it again changes nothing; `unoffload namespace --yes` exits 0 only once the
//! NamespaceOffloading is gone, and then no twin is left anywhere. Every run of the binary is
//! bounded (its own `--timeout`, and a kill 30 s after that), and a failure prints the
//! command, its exit status and both of its output streams.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context as _};
use kube::api::Api;
use kube::ResourceExt as _;
use nsoffload::api::{NamespaceOffloading, OffloadingPhase};

use crate::reconcile_expect::{all, default_twin, expect_absent, expect_twin, wait_status, Want};
use crate::remote::{check_remote, ReconcileEnv};

/// One finished run of the binary.
pub(crate) struct Run {
    pub command: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {:?}\n--- stdout\n{}--- stderr\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `nsoffload args… --kubeconfig kubeconfig`, killed if still running after `bound`.
pub(crate) async fn nsoffload(
    kubeconfig: &Path,
    args: &[&str],
    bound: Duration,
) -> anyhow::Result<Run> {
    let command = format!(
        "nsoffload {} --kubeconfig {}",
        args.join(" "),
        kubeconfig.display()
    );
    let child = Command::new(env!("CARGO_BIN_EXE_nsoffload"))
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {command}"))?;
    let pid = child.id();
    let waiting = tokio::task::spawn_blocking(move || child.wait_with_output());
    let output = match tokio::time::timeout(bound, waiting).await {
        Ok(joined) => joined?.with_context(|| format!("cannot wait for {command}"))?,
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            anyhow::bail!("{command} was still running after {bound:?} and was killed");
        }
    };
    Ok(Run {
        command,
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// The round trip: offload → Ready → offload again (unchanged) → unoffload → gone.
#[tokio::test]
#[ignore = "needs real clusters: make e2e-local, or make e2e with NSOFFLOAD_E2E_KUBECONFIG and NSOFFLOAD_E2E_REMOTE_KUBECONFIGS"]
async fn cli_offload_ready_unoffload_gone() {
    let env = ReconcileEnv::get().await;
    let kubeconfig: PathBuf = env.e2e.setup.kubeconfig.clone();
    check_remote(&env, "cli", |s, remotes| async move {
        let ns = s.namespace(&[]).await?.name_any();
        let twin = default_twin(&ns);
        let api: Api<NamespaceOffloading> = Api::namespaced(s.client.clone(), &ns);
        let kill_after = |timeout: u64| Duration::from_secs(timeout + 30);

        let printed = nsoffload(
            &kubeconfig,
            &["offload", "namespace", &ns, "-o", "yaml"],
            kill_after(0),
        )
        .await?;
        ensure!(printed.code == Some(0), "--output failed: {printed}");
        ensure!(
            printed.stdout.contains(&format!("namespace: {ns}\n")),
            "--output did not print the NamespaceOffloading of {ns}: {printed}"
        );
        ensure!(
            api.get_opt("offloading").await?.is_none(),
            "--output must write nothing, but {ns}/offloading exists: {printed}"
        );

        let offload = ["offload", "namespace", ns.as_str(), "--timeout", "60s"];
        let run = nsoffload(&kubeconfig, &offload, kill_after(60)).await?;
        // The command lists clusters in id order.
        let mut ids: Vec<&str> = remotes.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        let ready_line = format!("{ns}: Ready: namespace {twin} on {}\n", ids.join(", "));
        ensure!(run.code == Some(0), "offload should succeed: {run}");
        ensure!(
            run.stdout
                .contains(&format!("{ns}: NamespaceOffloading created")),
            "offload should report the creation: {run}"
        );
        ensure!(
            run.stdout.ends_with(&ready_line),
            "offload should end with {ready_line:?}: {run}"
        );
        // The command judged the real status, and the twins are really there.
        let want = all(&remotes, Want::Twin);
        wait_status(&s.client, &ns, OffloadingPhase::Ready, &twin, &want).await?;
        for r in &remotes {
            expect_twin(r, &twin, &ns).await?;
        }

        let again = nsoffload(&kubeconfig, &offload, kill_after(60)).await?;
        ensure!(
            again.code == Some(0),
            "offloading again should succeed: {again}"
        );
        ensure!(
            again
                .stdout
                .contains(&format!("{ns}: NamespaceOffloading unchanged")),
            "the same flags should leave the object unchanged: {again}"
        );

        let unoffload = [
            "unoffload",
            "namespace",
            ns.as_str(),
            "--yes",
            "--timeout",
            "120s",
        ];
        let run = nsoffload(&kubeconfig, &unoffload, kill_after(120)).await?;
        ensure!(run.code == Some(0), "unoffload should succeed: {run}");
        ensure!(
            run.stdout.ends_with(&format!("{ns}: unoffloaded\n")),
            "unoffload should end with \"{ns}: unoffloaded\": {run}"
        );
        ensure!(
            api.get_opt("offloading").await?.is_none(),
            "unoffload returned, but {ns}/offloading still exists: {run}"
        );
        for r in &remotes {
            let why = "unoffload waited until the NamespaceOffloading was gone, and the \
                       reconciler releases it only once every twin is deleted";
            expect_absent(r, &twin, why).await?;
        }
        Ok(())
    })
    .await;
}
