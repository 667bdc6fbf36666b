//! `nsoffload manifests`: the install manifests, generated from the Rust types.
//!
//! Without flags it prints (or with `--out` writes) exactly the checked-in `manifests/`. With
//! `--cluster-id`, `--image` or `--replicas`, it prints a set configured for one installation,
//! ready for `kubectl apply -f -`, for those who do not use kustomize; nobody needs to edit a
//! generated file.

use std::path::PathBuf;

use anyhow::Context as _;

use super::args::{ClusterId, ImageRef};
use crate::install::{all_with, stream, Options, CLUSTER_ID, IMAGE, REPLICAS};

const EXAMPLES: &str = "\
Examples:
  # Install for the home cluster id eu-1 with an image from your registry
  nsoffload manifests --cluster-id eu-1 --image registry.example.com/nsoffload:0.1.0 \\
      | kubectl apply -f -

  # Three replicas, written as files (with a kustomization.yaml) instead of printed
  nsoffload manifests --cluster-id eu-1 --replicas 3 --out ./nsoffload-eu-1

  # What the repository's manifests/ holds (make manifests)
  nsoffload manifests --out manifests";

/// Arguments of `nsoffload manifests`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct ManifestsArgs {
    /// Write each manifest into this directory instead of printing them all.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The home cluster id (a DNS-1123 label; part of DefaultName twin namespace names).
    #[arg(long, value_name = "ID", default_value = CLUSTER_ID)]
    cluster_id: ClusterId,
    /// The container image to run.
    #[arg(long, value_name = "REF", default_value = IMAGE)]
    image: ImageRef,
    /// Replicas of the Deployment (1 to 100; every replica serves admission).
    #[arg(long, value_name = "N", default_value_t = REPLICAS,
          value_parser = clap::value_parser!(i32).range(1..=100))]
    replicas: i32,
}

impl ManifestsArgs {
    pub(super) fn run(self) -> anyhow::Result<()> {
        let ManifestsArgs {
            out,
            cluster_id,
            image,
            replicas,
        } = self;
        let options = Options {
            cluster_id: cluster_id.0,
            image: image.0,
            replicas,
        };
        match out {
            None => print!("{}", stream(&options)),
            Some(dir) => {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                for (name, content) in all_with(&options) {
                    let path = dir.join(name);
                    std::fs::write(&path, content)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
            }
        }
        Ok(())
    }
}
