//! Which cluster a command talks to, chosen the way kubectl chooses: `--kubeconfig`, else the
//! files named by `$KUBECONFIG`, else `~/.kube/config`, else the in-cluster service account;
//! `--context` picks a context instead of the current one.
//!
//! The search is done here rather than by kube-rs's `Config::infer` so that, when nothing
//! works, one line says what was tried (with the real paths), why each place failed and what
//! to do, instead of a nested chain of every attempt. As with kubectl, a missing file moves on
//! to the next place, but a file that exists and cannot be used stops the search: silently
//! talking to another cluster would be worse than the error.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::ctl::errors::{name_server, one_line};

/// Which cluster, as kubectl chooses it.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct KubeArgs {
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

impl KubeArgs {
    /// A client for the chosen cluster. A connection that takes longer than `connect_timeout`
    /// fails, and every transport failure names the API server.
    pub(crate) async fn client(
        &self,
        connect_timeout: Duration,
    ) -> Result<Client, KubeconfigError> {
        let env = Environment::current();
        let mut config = load(self.kubeconfig.as_deref(), self.context.as_deref(), &env).await?;
        config.connect_timeout = Some(
            config
                .connect_timeout
                .map_or(connect_timeout, |t| t.min(connect_timeout)),
        );
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_owned();
        let builder =
            kube::client::ClientBuilder::try_from(config).map_err(|e| KubeconfigError::Client {
                server: server.clone(),
                why: one_line(&e),
            })?;
        Ok(builder.with_layer(&name_server(server)).build())
    }
}

/// What the environment offers, read once, so the search is a plain function of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Environment {
    /// `$KUBECONFIG`, as set.
    pub kubeconfig: Option<OsString>,
    /// The home directory, where `~/.kube/config` lives.
    pub home: Option<PathBuf>,
    /// Whether `KUBERNETES_SERVICE_HOST` is set (running in a pod).
    pub in_cluster: bool,
}

impl Environment {
    /// The process's environment.
    pub(crate) fn current() -> Self {
        Environment {
            kubeconfig: std::env::var_os("KUBECONFIG"),
            home: std::env::home_dir(),
            in_cluster: std::env::var_os("KUBERNETES_SERVICE_HOST").is_some(),
        }
    }
}

/// A place a configuration may come from, in the order they are tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// `--kubeconfig FILE`: the only place looked at.
    Flag(PathBuf),
    /// The files of `$KUBECONFIG` (merged; missing ones are skipped, as kubectl does).
    Env(Vec<PathBuf>),
    /// `~/.kube/config`, when `$KUBECONFIG` is not set.
    Home(PathBuf),
    /// The pod's service account.
    InCluster,
}

/// The places to try, in order. With `--context`, only kubeconfig files (the in-cluster
/// configuration has no contexts).
pub(crate) fn search(flag: Option<&Path>, context: Option<&str>, env: &Environment) -> Vec<Source> {
    if let Some(path) = flag {
        return vec![Source::Flag(path.to_owned())];
    }
    let listed: Vec<PathBuf> = env
        .kubeconfig
        .as_ref()
        .map(|v| std::env::split_paths(v).filter(|p| !p.as_os_str().is_empty()))
        .into_iter()
        .flatten()
        .collect();
    let mut sources = Vec::new();
    if !listed.is_empty() {
        sources.push(Source::Env(listed));
    } else if let Some(home) = &env.home {
        sources.push(Source::Home(home.join(".kube").join("config")));
    }
    if context.is_none() {
        sources.push(Source::InCluster);
    }
    sources
}

/// Why no client configuration could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KubeconfigError {
    /// A kubeconfig file exists (or was named with --kubeconfig) but cannot be read.
    #[error("cannot read kubeconfig {path} ({origin}): {why}")]
    Unreadable {
        /// The file.
        path: String,
        /// Where its name came from: `--kubeconfig`, `$KUBECONFIG` or `~/.kube/config`.
        origin: &'static str,
        /// Why.
        why: String,
    },
    /// The kubeconfig was read but does not give a usable configuration.
    #[error("cannot use kubeconfig {paths}: {why}")]
    Unusable {
        /// The file or files.
        paths: String,
        /// Why (bad YAML, unknown context, missing credentials…).
        why: String,
    },
    /// Running in a pod, but its service account configuration cannot be used.
    #[error("cannot use the in-cluster configuration: {0}")]
    InCluster(String),
    /// Nothing found anywhere.
    #[error("no Kubernetes configuration found: {tried}; {advice}")]
    NotFound {
        /// Every place tried and why it did not work.
        tried: String,
        /// What to do.
        advice: String,
    },
    /// The configuration was found but no client could be made from it.
    #[error("cannot make a client for the API server at {server}: {why}")]
    Client {
        /// The API server's URL.
        server: String,
        /// Why (e.g. an unreadable client certificate).
        why: String,
    },
}

fn paths_text(paths: &[PathBuf]) -> String {
    let texts: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    texts.join(", ")
}

/// Reads one file: `Ok(None)` when it does not exist.
fn read(path: &Path, origin: &'static str) -> Result<Option<Kubeconfig>, KubeconfigError> {
    let unreadable = |why: String| KubeconfigError::Unreadable {
        path: path.display().to_string(),
        origin,
        why,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(one_line(&e))),
    };
    Kubeconfig::from_yaml(&text)
        .map(Some)
        .map_err(|e| unreadable(one_line(&e)))
}

/// Merges the files that exist, in order (the first to set a value wins).
fn read_all(paths: &[PathBuf]) -> Result<Option<Kubeconfig>, KubeconfigError> {
    let mut merged: Option<Kubeconfig> = None;
    for path in paths {
        if let Some(next) = read(path, "$KUBECONFIG")? {
            merged = Some(match merged {
                None => next,
                Some(m) => m.merge(next).map_err(|e| KubeconfigError::Unusable {
                    paths: paths_text(paths),
                    why: one_line(&e),
                })?,
            });
        }
    }
    Ok(merged)
}

/// The configuration of the first place that has one, as [`search`] orders them.
pub(crate) async fn load(
    flag: Option<&Path>,
    context: Option<&str>,
    env: &Environment,
) -> Result<Config, KubeconfigError> {
    let mut tried = Vec::new();
    for source in search(flag, context, env) {
        let (found, paths) = match &source {
            Source::Flag(path) => match read(path, "--kubeconfig")? {
                Some(kc) => (kc, path.display().to_string()),
                None => {
                    return Err(KubeconfigError::Unreadable {
                        path: path.display().to_string(),
                        origin: "--kubeconfig",
                        why: "no such file".to_owned(),
                    })
                }
            },
            Source::Env(paths) => match read_all(paths)? {
                Some(kc) => (kc, paths_text(paths)),
                None => {
                    tried.push(match paths.as_slice() {
                        [one] => {
                            format!("$KUBECONFIG names {}, which does not exist", one.display())
                        }
                        _ => format!(
                            "$KUBECONFIG names {}, none of which exists",
                            paths_text(paths)
                        ),
                    });
                    tried.push("~/.kube/config is not read when $KUBECONFIG is set".to_owned());
                    continue;
                }
            },
            Source::Home(path) => match read(path, "~/.kube/config")? {
                Some(kc) => (kc, path.display().to_string()),
                None => {
                    tried.push(format!("{} does not exist", path.display()));
                    continue;
                }
            },
            Source::InCluster => {
                if !env.in_cluster {
                    tried.push("not in a pod (KUBERNETES_SERVICE_HOST is not set)".to_owned());
                    continue;
                }
                let mut config =
                    Config::incluster().map_err(|e| KubeconfigError::InCluster(one_line(&e)))?;
                config.apply_debug_overrides();
                return Ok(config);
            }
        };
        let options = KubeConfigOptions {
            context: context.map(str::to_owned),
            ..KubeConfigOptions::default()
        };
        let mut config = Config::from_custom_kubeconfig(found, &options)
            .await
            .map_err(|e| KubeconfigError::Unusable {
                paths,
                why: one_line(&e),
            })?;
        config.apply_debug_overrides();
        return Ok(config);
    }
    Err(not_found(tried, context, env))
}

fn not_found(mut tried: Vec<String>, context: Option<&str>, env: &Environment) -> KubeconfigError {
    let env_set = search(None, None, env)
        .iter()
        .any(|s| matches!(s, Source::Env(_)));
    if !env_set && env.home.is_none() {
        tried.insert(
            0,
            "no home directory to look for ~/.kube/config in".to_owned(),
        );
    }
    if let Some(context) = context {
        tried.push(format!(
            "--context {context} needs a kubeconfig (the in-cluster configuration has no \
             contexts)"
        ));
    }
    let advice = if env_set {
        "point $KUBECONFIG at a kubeconfig file, or pass --kubeconfig FILE".to_owned()
    } else {
        "pass --kubeconfig FILE, set $KUBECONFIG, or create ~/.kube/config".to_owned()
    };
    KubeconfigError::NotFound {
        tried: tried.join("; "),
        advice,
    }
}

#[cfg(test)]
#[path = "kubeconfig_tests.rs"]
mod tests;
