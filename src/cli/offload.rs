//! `nsoffload offload namespace` and `nsoffload unoffload namespace`: parse, connect, run
//! the `ctl` flows, and turn their outcomes into the exit status (0 only when every named
//! namespace ended as asked).
//!
//! Unoffloading deletes the twin namespaces and what runs in them, so it asks first; when
//! nobody can answer (stdin is not a terminal, as in CI) it refuses unless `--yes` is given,
//! rather than waiting on a prompt nobody sees or guessing.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use anyhow::bail;
use clap::builder::{PossibleValuesParser, TypedValueParser};

use super::args::HumanDuration;
use super::exit::usage;
use super::kubeconfig::KubeArgs;
use crate::api::{NamespaceMappingStrategy, PodOffloadingStrategy};
use crate::ctl::intent::{render, Flags, Format, Intent};
use crate::ctl::progress::Reporter;
use crate::ctl::{offload, unoffload, CtlError, Outcome, WaitOptions};
use crate::policy::naming::check_dns1123_label;

const OFFLOAD_EXAMPLES: &str = "\
Examples:
  # Offload to every remote cluster; pods run locally or remotely
  nsoffload offload namespace shop

  # Only European clusters that are not staging; pods run only remotely
  nsoffload offload namespace shop --selector 'region in (europe),!staging' \\
      --pod-offloading-strategy Remote

  # Clusters of either provider (a repeated --selector ORs)
  nsoffload offload namespace shop --selector provider=aws --selector provider=gcp

  # Choose the twin namespace's name (implies --namespace-mapping-strategy SelectedName)
  nsoffload offload namespace shop --remote-namespace-name shop-eu

  # Print the NamespaceOffloadings without writing anything
  nsoffload offload namespace shop web --selector region=europe --output yaml";

const UNOFFLOAD_EXAMPLES: &str = "\
Examples:
  # Asks for confirmation, then waits up to 2 minutes
  nsoffload unoffload namespace shop

  # In scripts (stdin is not a terminal), confirm with --yes
  nsoffload unoffload namespace shop web --yes --timeout 5m";

/// A parser that lists `names` in `--help` and completions and parses with `FromStr`.
fn enum_parser<T>(names: Vec<&'static str>) -> impl TypedValueParser<Value = T>
where
    T: std::str::FromStr<Err = crate::api::UnknownValue> + Clone + Send + Sync + 'static,
{
    PossibleValuesParser::new(names).try_map(|s| s.parse::<T>())
}

/// `offload …`
#[derive(Debug, clap::Args)]
pub struct OffloadArgs {
    #[command(subcommand)]
    target: OffloadTarget,
}

#[derive(Debug, clap::Subcommand)]
enum OffloadTarget {
    /// Offload namespaces onto remote clusters and wait until their twins are ready.
    ///
    /// Creates or updates (server-side apply) the NamespaceOffloading of each namespace, prints
    /// the webhooks' warnings, then waits until the reconciler reports on this version: Ready
    /// succeeds, NoClusterSelected succeeds with a warning, SomeFailed or AllFailed fail with
    /// each failing cluster's message. The command states the whole offloading: omitted flags
    /// take their defaults, except the immutable mapping strategy and remote namespace name,
    /// which are kept from an existing NamespaceOffloading.
    #[command(after_help = OFFLOAD_EXAMPLES)]
    Namespace(OffloadNamespace),
}

#[derive(Debug, clap::Args)]
struct OffloadNamespace {
    /// The namespaces to offload.
    #[arg(required = true, value_name = "NAME")]
    namespaces: Vec<String>,
    /// How twin namespaces are named: DefaultName (<namespace>-<home cluster id>),
    /// EnforceSameName (the same name), SelectedName (--remote-namespace-name). Immutable.
    #[arg(long, value_name = "STRATEGY",
          value_parser = enum_parser::<NamespaceMappingStrategy>(NamespaceMappingStrategy::names()))]
    namespace_mapping_strategy: Option<NamespaceMappingStrategy>,
    /// Name of the twin namespace (one namespace only; implies SelectedName). Immutable.
    #[arg(long, value_name = "NAME")]
    remote_namespace_name: Option<String>,
    /// Where pods may run: LocalAndRemote (default), Remote, Local.
    #[arg(long, value_name = "STRATEGY",
          value_parser = enum_parser::<PodOffloadingStrategy>(PodOffloadingStrategy::names()))]
    pod_offloading_strategy: Option<PodOffloadingStrategy>,
    /// Remote clusters to use, in label-selector syntax over their virtual nodes' labels:
    /// `,` ANDs (`region=europe,!staging`), a repeated flag ORs. Operators: `=`, `==`, `!=`,
    /// `in (a,b)`, `notin (a,b)`, `key` (exists), `!key` (does not exist). Default: every
    /// remote cluster.
    #[arg(long = "selector", value_name = "SELECTOR")]
    selectors: Vec<String>,
    /// Print the NamespaceOffloadings instead of applying them (nothing is written).
    #[arg(short, long, value_name = "FORMAT")]
    output: Option<Format>,
    /// How long to wait for the result (e.g. 20s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "20s")]
    timeout: HumanDuration,
    #[command(flatten)]
    kube: KubeArgs,
}

/// `unoffload …`
#[derive(Debug, clap::Args)]
pub struct UnoffloadArgs {
    #[command(subcommand)]
    target: UnoffloadTarget,
}

#[derive(Debug, clap::Subcommand)]
enum UnoffloadTarget {
    /// Stop offloading namespaces: delete their twin namespaces on every remote cluster.
    ///
    /// Deletes the NamespaceOffloading of each namespace and waits until it is gone, which
    /// happens once the reconciler has deleted every twin namespace (and everything running
    /// in them). Clusters still holding a twin at the deadline are listed.
    #[command(after_help = UNOFFLOAD_EXAMPLES)]
    Namespace(UnoffloadNamespace),
}

#[derive(Debug, clap::Args)]
struct UnoffloadNamespace {
    /// The namespaces to unoffload.
    #[arg(required = true, value_name = "NAME")]
    namespaces: Vec<String>,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(short, long)]
    yes: bool,
    /// How long to wait until the twin namespaces are deleted (e.g. 120s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "120s")]
    timeout: HumanDuration,
    #[command(flatten)]
    kube: KubeArgs,
}

/// How long a connection to the API server may take: half the command's timeout, within
/// 1 to 10 seconds, so an unreachable server is reported by its address before the command's
/// own deadline ends the wait.
pub(super) fn connect_timeout(timeout: Duration) -> Duration {
    (timeout / 2).clamp(Duration::from_secs(1), Duration::from_secs(10))
}

/// Connects, then runs `flow` on a small runtime, reporting to stdout (progress) and stderr
/// (warnings, failures); the spinner is drawn only when stdout is a terminal.
fn run_flow<F>(
    kube: &KubeArgs,
    timeout: HumanDuration,
    flow: F,
) -> anyhow::Result<Vec<(String, Outcome)>>
where
    F: for<'r> AsyncFnOnce(&kube::Client, WaitOptions, &mut Reporter<'r>) -> Vec<(String, Outcome)>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = kube.client(connect_timeout(timeout.0)).await?;
        let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
        let tty = out.is_terminal();
        let mut report = Reporter::new(&mut out, &mut err, tty);
        Ok(flow(&client, WaitOptions::new(timeout.0), &mut report).await)
    })
}

/// Exit status from outcomes: an error naming how many namespaces did not end as asked.
pub(super) fn verdict(outcomes: &[(String, Outcome)], what: &str) -> anyhow::Result<()> {
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|(_, o)| *o == Outcome::Failed)
        .map(|(ns, _)| ns.as_str())
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    bail!(
        "{} of {} namespace(s) not {what}: {}",
        failed.len(),
        outcomes.len(),
        failed.join(", ")
    )
}

impl OffloadArgs {
    /// Runs `offload namespace`.
    pub fn run(self) -> anyhow::Result<()> {
        let OffloadTarget::Namespace(a) = self.target;
        let flags = Flags {
            mapping: a.namespace_mapping_strategy,
            remote_namespace_name: a.remote_namespace_name,
            pod: a.pod_offloading_strategy,
            selectors: a.selectors,
        };
        let intent = Intent::new(flags, &a.namespaces).map_err(usage)?;
        if let Some(format) = a.output {
            let objects = intent
                .namespaces
                .iter()
                .map(|ns| intent.object(ns, None))
                .collect::<Result<Vec<_>, CtlError>>()
                .map_err(|e| match e {
                    CtlError::Invalid(_) => usage(e),
                    other => other.into(),
                })?;
            print!("{}", render(&objects, format)?);
            return Ok(());
        }
        let outcomes = run_flow(&a.kube, a.timeout, async |client, wait, report| {
            offload::offload(client, &intent, wait, report).await
        })?;
        verdict(&outcomes, "offloaded")
    }
}

/// Whether to ask before unoffloading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Confirm {
    /// `--yes`: go ahead.
    Proceed,
    /// Ask on the terminal.
    Ask,
    /// Nobody can answer: refuse.
    Refuse,
}

/// The confirmation rule: `--yes` proceeds; otherwise ask, but only on a terminal.
pub(crate) fn confirmation(yes: bool, stdin_is_terminal: bool) -> Confirm {
    match (yes, stdin_is_terminal) {
        (true, _) => Confirm::Proceed,
        (false, true) => Confirm::Ask,
        (false, false) => Confirm::Refuse,
    }
}

/// Whether an answer to the prompt is a yes (`y` or `yes`, any case); anything else is no.
pub(crate) fn accepted(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

fn ask(namespaces: &[String]) -> anyhow::Result<bool> {
    let mut err = std::io::stderr();
    write!(
        err,
        "Unoffload {}? The twin namespaces on remote clusters, and everything running in \
         them, will be deleted. [y/N]: ",
        namespaces.join(", ")
    )?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(accepted(&answer))
}

/// The named namespaces, each once, in order; a usage error for a name that cannot be one.
pub(super) fn namespace_names(names: Vec<String>) -> anyhow::Result<Vec<String>> {
    let mut namespaces: Vec<String> = Vec::new();
    for ns in names {
        if let Err(e) = check_dns1123_label(&ns) {
            return Err(usage(format!("{ns:?} is not a namespace name: it {e}")));
        }
        if !namespaces.contains(&ns) {
            namespaces.push(ns);
        }
    }
    Ok(namespaces)
}

impl UnoffloadArgs {
    /// Runs `unoffload namespace`.
    pub fn run(self) -> anyhow::Result<()> {
        let UnoffloadTarget::Namespace(a) = self.target;
        let namespaces = namespace_names(a.namespaces)?;
        match confirmation(a.yes, std::io::stdin().is_terminal()) {
            Confirm::Proceed => {}
            Confirm::Refuse => {
                return Err(usage(
                    "unoffloading deletes the twin namespaces and everything in them; stdin is \
                     not a terminal to confirm, so pass --yes",
                ))
            }
            Confirm::Ask => {
                if !ask(&namespaces)? {
                    bail!("not confirmed; nothing was changed");
                }
            }
        }
        let outcomes = run_flow(&a.kube, a.timeout, async |client, wait, report| {
            unoffload::unoffload(client, &namespaces, wait, report).await
        })?;
        verdict(&outcomes, "unoffloaded")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmation_rules() {
        assert_eq!(confirmation(true, false), Confirm::Proceed);
        assert_eq!(confirmation(true, true), Confirm::Proceed);
        assert_eq!(confirmation(false, true), Confirm::Ask);
        assert_eq!(confirmation(false, false), Confirm::Refuse);
    }

    #[test]
    fn only_yes_is_yes() {
        for yes in ["y", "Y", "yes", "YES\n", "  yes  "] {
            assert!(accepted(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yess", "ok", "y e s"] {
            assert!(!accepted(no), "{no:?}");
        }
    }

    #[test]
    fn connections_give_up_before_the_command_does() {
        let secs = Duration::from_secs;
        assert_eq!(connect_timeout(secs(20)), secs(10));
        assert_eq!(connect_timeout(secs(120)), secs(10));
        assert_eq!(connect_timeout(secs(6)), secs(3));
        assert_eq!(connect_timeout(secs(0)), secs(1));
    }

    #[test]
    fn verdicts() {
        let ok = ("a".to_owned(), Outcome::Done);
        let bad = ("b".to_owned(), Outcome::Failed);
        assert!(verdict(std::slice::from_ref(&ok), "offloaded").is_ok());
        let err = verdict(&[ok, bad], "offloaded").unwrap_err();
        assert_eq!(err.to_string(), "1 of 2 namespace(s) not offloaded: b");
    }
}
