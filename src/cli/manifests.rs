//! `nsoffload manifests`: the install manifests, generated from the Rust types.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::install::all;

/// Arguments of `nsoffload manifests`.
#[derive(Debug, clap::Args)]
pub struct ManifestsArgs {
    /// Write each manifest into this directory instead of printing them all.
    #[arg(long)]
    out: Option<PathBuf>,
}

impl ManifestsArgs {
    pub(super) fn run(self) -> anyhow::Result<()> {
        let ManifestsArgs { out } = self;
        match out {
            None => {
                let docs: Vec<String> = all().into_iter().map(|(_, c)| c).collect();
                print!("{}", docs.join("---\n"));
            }
            Some(dir) => {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                for (name, content) in all() {
                    let path = dir.join(name);
                    std::fs::write(&path, content)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
            }
        }
        Ok(())
    }
}
