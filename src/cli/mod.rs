//! Command-line interface: one file per subcommand.
//!
//! `serve`, `certs` and `manifests` run the server side; `offload`, `unoffload`, `explain`,
//! `evict` and `completions` are the operator's client commands (their logic lives in `ctl`).
//! Every flag of `serve` can also come from an `NSOFFLOAD_*` environment variable, which is how
//! the Deployment configures it. Every command's `--help` ends with examples; the exit
//! statuses are the same for all (`exit`).

pub(crate) mod args;
mod certs;
mod completions;
mod evict;
pub mod exit;
mod explain;
pub(crate) mod kubeconfig;
mod logs;
mod manifests;
pub(crate) mod offload;
mod serve;
mod sources;

use clap::{Parser, Subcommand};

const SERVE_EXAMPLES: &str = "\
Examples:
  # Without a cluster: admission from a file of NamespaceOffloadings, Namespaces and Nodes
  nsoffload certs --out certs
  nsoffload serve --standalone manifests/examples/standalone.yaml --cluster-id home \\
      --tls-cert-file certs/tls.crt --tls-key-file certs/tls.key

  # Outside the cluster it serves: self-managed certificates, webhooks registered at a URL
  nsoffload serve --cluster-id home --kubeconfig ~/.kube/config \\
      --webhook-url https://192.0.2.10:8443

  # In the cluster (what the Deployment runs): every flag also reads NSOFFLOAD_* variables
  NSOFFLOAD_CLUSTER_ID=home NSOFFLOAD_LOG_FORMAT=json nsoffload serve";

/// nsoffload: extend Kubernetes namespaces onto peered remote clusters.
#[derive(Debug, Parser)]
#[command(name = "nsoffload", version, about, long_about = None, after_help = exit::STATUS_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the admission webhooks (and, in cluster mode, run the reconciler).
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(Box<serve::ServeArgs>),
    /// Write a development CA and serving certificate.
    Certs(certs::CertsArgs),
    /// Print (or write) the install manifests, generated from code.
    Manifests(manifests::ManifestsArgs),
    /// Offload a namespace onto remote clusters.
    Offload(offload::OffloadArgs),
    /// Stop offloading a namespace.
    Unoffload(offload::UnoffloadArgs),
    /// Explain where a pod can run, and why not elsewhere (reads the cluster, writes nothing).
    #[command(after_help = explain::EXAMPLES)]
    Explain(explain::ExplainArgs),
    /// Evict the pods that no longer follow their namespace's policy.
    Evict(evict::EvictArgs),
    /// Print a shell completion script.
    Completions(completions::CompletionsArgs),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Serve(a) => a.run(),
            Command::Certs(a) => a.run(),
            Command::Manifests(a) => a.run(),
            Command::Offload(a) => a.run(),
            Command::Unoffload(a) => a.run(),
            Command::Explain(a) => a.run(),
            Command::Evict(a) => a.run(),
            Command::Completions(a) => a.run(),
        }
    }
}
