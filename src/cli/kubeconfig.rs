//! `--kubeconfig` and `--context` for the client commands, resolved the way kubectl does:
//! an explicit file, else `$KUBECONFIG` or `~/.kube/config`, else the in-cluster
//! configuration; `--context` picks a context instead of the current one.

use std::path::PathBuf;

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Which cluster, as kubectl chooses it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KubeArgs {
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

impl KubeArgs {
    /// A client for the chosen cluster.
    pub async fn client(&self) -> anyhow::Result<Client> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = match (&self.kubeconfig, &self.context) {
            (Some(path), _) => {
                let kc = Kubeconfig::read_from(path)
                    .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
                Config::from_custom_kubeconfig(kc, &options)
                    .await
                    .with_context(|| format!("invalid kubeconfig {}", path.display()))?
            }
            (None, Some(context)) => Config::from_kubeconfig(&options)
                .await
                .with_context(|| format!("cannot use kubeconfig context {context:?}"))?,
            (None, None) => Config::infer().await.context(
                "no Kubernetes configuration: pass --kubeconfig, set $KUBECONFIG, or write \
                 ~/.kube/config",
            )?,
        };
        Client::try_from(config).context("cannot build the Kubernetes client")
    }
}
