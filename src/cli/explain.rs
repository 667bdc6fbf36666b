//! `nsoffload explain pod NAME` and `nsoffload explain -f FILE` (SPEC §11): parse, read the
//! file, connect, run the `ctl::explain` reads, print, and turn the verdict into the exit
//! status (0 when every pod explained may run somewhere, 1 when one may not, 2 on a usage
//! error).
//!
//! A file is read and checked before connecting, so a wrong file is a usage error even with no
//! cluster at hand. `pod NAME` is positional, as in `kubectl get pod NAME`, so the flags may
//! come before or after it.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use super::exit::{usage, FAILED};
use super::kubeconfig::KubeArgs;
use crate::api::consts::DEFAULT_RUNTIME_CLASS;
use crate::ctl::explain::manifest::{manifests, Manifest};
use crate::ctl::explain::{explain_manifests, explain_pod, render, Options, Report};
use crate::policy::naming::check_dns1123_label;

pub(super) const EXAMPLES: &str = "\
Examples:
  # Why is this pod Pending?
  nsoffload explain pod web-7d4b9c-x2x8p -n shop

  # Where would the pods of this Deployment run, before creating it?
  nsoffload explain -f deployment.yaml -n shop

  # Every document of a file, from stdin, as JSON
  kubectl kustomize overlays/prod | nsoffload explain -f - -o json

Exit status: 0 when every pod explained may run on some node, 1 when one may not run anywhere
(or the cluster could not be read), 2 on a usage error.";

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum ExplainFormat {
    /// Short aligned sections for people (coloured on a terminal).
    Text,
    /// One JSON document per pod; several pods (`-f` with several documents) as one array.
    Json,
}

/// `explain …`
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// `pod` (explain a pod that exists), followed by its name.
    #[arg(value_name = "KIND", requires = "name", conflicts_with = "file")]
    kind: Option<String>,
    /// The pod's name.
    #[arg(value_name = "NAME")]
    name: Option<String>,
    /// A manifest to explain before creating it (`-` for stdin): Pods, and the pod templates
    /// of Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs and CronJobs; every
    /// document in turn.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    file: Option<PathBuf>,
    /// The namespace (default: the document's own, else the kubeconfig context's).
    #[arg(short, long, value_name = "NAMESPACE")]
    namespace: Option<String>,
    /// Output format.
    #[arg(short, long, value_name = "FORMAT", default_value = "text")]
    output: ExplainFormat,
    /// The webhook's RuntimeClass (as its `serve --runtime-class`).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_RUNTIME_CLASS)]
    runtime_class: String,
    #[command(flatten)]
    kube: KubeArgs,
}

/// What to explain, once the arguments are checked.
enum Target {
    Pod(String),
    Manifests(Vec<Manifest>),
}

/// How long connecting to the API server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl ExplainArgs {
    /// Checks the arguments and reads the file: every failure here is a usage error.
    fn target(&self) -> anyhow::Result<Target> {
        if let Some(ns) = &self.namespace {
            check_dns1123_label(ns)
                .map_err(|e| usage(format!("{ns:?} is not a namespace name: it {e}")))?;
        }
        match (&self.kind, &self.name, &self.file) {
            (Some(kind), Some(name), None) => {
                if !matches!(kind.to_ascii_lowercase().as_str(), "pod" | "pods" | "po") {
                    return Err(usage(format!(
                        "explain takes `pod NAME` or `-f FILE`, not {kind:?}; for a workload, \
                         explain its manifest with -f"
                    )));
                }
                Ok(Target::Pod(name.clone()))
            }
            (None, None, Some(path)) => {
                let text = read(path).map_err(usage)?;
                let found = manifests(&text, self.namespace.as_deref())
                    .map_err(|e| usage(format!("{}: {e}", shown(path))))?;
                Ok(Target::Manifests(found))
            }
            _ => Err(usage(
                "say what to explain: `pod NAME` (a pod that exists) or `-f FILE` (a manifest)",
            )),
        }
    }

    /// Runs `explain`.
    pub fn run(self) -> anyhow::Result<()> {
        let target = self.target()?;
        let options = Options {
            runtime_class: self.runtime_class.clone(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let reports: Vec<Report> = runtime.block_on(async {
            let client = self.kube.client(CONNECT_TIMEOUT).await?;
            let default = client.default_namespace().to_owned();
            let ns = self.namespace.as_deref().unwrap_or(&default);
            anyhow::Ok(match &target {
                Target::Pod(name) => vec![explain_pod(&client, ns, name, &options).await?],
                Target::Manifests(found) => {
                    explain_manifests(&client, found, &default, &options).await?
                }
            })
        })?;
        let mut out = std::io::stdout();
        let text = match self.output {
            ExplainFormat::Text => render::human(&reports, out.is_terminal()),
            ExplainFormat::Json => render::json(&reports),
        };
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .context("cannot write the explanation")?;
        if !reports.iter().all(|r| r.explanation.may_run()) {
            // The verdict just printed says why; an error line would only repeat it.
            std::process::exit(i32::from(FAILED));
        }
        Ok(())
    }
}

/// The file's name as the user knows it.
fn shown(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "stdin".to_owned()
    } else {
        path.display().to_string()
    }
}

/// The file's text; `-` is stdin.
fn read(path: &Path) -> Result<String, String> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
    } else {
        text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    }
    Ok(text)
}
