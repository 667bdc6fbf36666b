//! `nsoffload evict namespace`: parse, confirm, connect, run the `ctl` flow (SPEC §12).
//!
//! An eviction stops a running pod, so the command lists what it found and asks before
//! evicting, as `unoffload` does; when nobody can answer (stdin is not a terminal) it
//! refuses unless `--yes` is given. `--dry-run` lists and never asks.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::bail;

use super::args::HumanDuration;
use super::exit::usage;
use super::kubeconfig::KubeArgs;
use super::offload::{accepted, confirmation, connect_timeout, namespace_names, verdict, Confirm};
use crate::api::consts::DEFAULT_RUNTIME_CLASS;
use crate::ctl::evict::{evict, EvictOptions};
use crate::ctl::progress::Reporter;
use crate::ctl::WaitOptions;

const EXAMPLES: &str = "\
Examples:
  # List the pods that no longer follow the policy, without evicting
  nsoffload evict namespace shop --dry-run

  # Evict them (asks first); their controllers recreate them where the policy says
  nsoffload evict namespace shop

  # In scripts, with pods that have no controller too (they are deleted for good)
  nsoffload evict namespace shop web --yes --include-unmanaged --timeout 10m";

/// `evict …`
#[derive(Debug, clap::Args)]
pub struct EvictArgs {
    #[command(subcommand)]
    target: EvictTarget,
}

#[derive(Debug, clap::Subcommand)]
enum EvictTarget {
    /// Evict the pods that no longer follow their namespace's policy.
    ///
    /// A pod violates the policy when it runs on a virtual node while the strategy is Local
    /// (without the offloading RuntimeClass), on a local node while it is Remote, on a
    /// cluster the selector does not select, or when it is not scheduled and lacks what the
    /// webhook gives pods now. They are evicted through the Eviction API, so
    /// PodDisruptionBudgets hold (a refused eviction is retried until --timeout). DaemonSet
    /// pods are reported, never evicted; pods without a controller are skipped unless
    /// --include-unmanaged. Exits 0 only when no violating pod is left (with --dry-run: when
    /// none was found).
    #[command(after_help = EXAMPLES)]
    Namespace(EvictNamespace),
}

#[derive(Debug, clap::Args)]
struct EvictNamespace {
    /// The namespaces whose pods to evict.
    #[arg(required = true, value_name = "NAME")]
    namespaces: Vec<String>,
    /// List the violating pods and what would be done; evict nothing.
    #[arg(long)]
    dry_run: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(short, long)]
    yes: bool,
    /// Evict pods without a controller too (nothing recreates them).
    #[arg(long)]
    include_unmanaged: bool,
    /// How long to keep retrying refused evictions and waiting for pods to go (e.g. 5m).
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    timeout: HumanDuration,
    /// The RuntimeClass whose pods may run remotely whatever the strategy (the webhook's
    /// --runtime-class).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_RUNTIME_CLASS)]
    runtime_class: String,
    #[command(flatten)]
    kube: KubeArgs,
}

fn ask(count: usize, namespaces: &[String]) -> bool {
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "Evict {count} pod(s) from {}? Their controllers recreate them where the policy \
         says. [y/N]: ",
        namespaces.join(", ")
    );
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok() && accepted(&answer)
}

impl EvictArgs {
    /// Runs `evict namespace`.
    pub fn run(self) -> anyhow::Result<()> {
        let EvictTarget::Namespace(a) = self.target;
        let namespaces = namespace_names(a.namespaces)?;
        let confirm = confirmation(a.yes || a.dry_run, std::io::stdin().is_terminal());
        if confirm == Confirm::Refuse {
            return Err(usage(
                "evicting stops running pods; stdin is not a terminal to confirm, so pass \
                 --yes (or --dry-run to only list them)",
            ));
        }
        let options = EvictOptions {
            dry_run: a.dry_run,
            include_unmanaged: a.include_unmanaged,
            timeout: a.timeout.0,
            poll: WaitOptions::DEFAULT_POLL * 4,
            runtime_class: a.runtime_class,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let outcomes = runtime.block_on(async {
            let client = a.kube.client(connect_timeout(a.timeout.0)).await?;
            let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
            let tty = out.is_terminal();
            let mut report = Reporter::new(&mut out, &mut err, tty);
            let names = namespaces.clone();
            let mut confirm = move |count: usize| match confirm {
                Confirm::Ask => ask(count, &names),
                _ => true,
            };
            anyhow::Ok(evict(&client, &namespaces, &options, &mut report, &mut confirm).await)
        })?;
        if outcomes.is_empty() {
            bail!("no namespace was judged");
        }
        verdict(&outcomes, "free of violating pods")
    }
}
