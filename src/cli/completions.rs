//! `nsoffload completions bash|zsh|fish`: shell completion scripts generated from the same
//! clap definition that parses the arguments, so they never drift from the real flags.

use clap::CommandFactory as _;

/// Shells with completion scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Shell {
    /// Bash: `source <(nsoffload completions bash)`.
    Bash,
    /// Zsh: `nsoffload completions zsh > "${fpath[1]}/_nsoffload"`.
    Zsh,
    /// Fish: `nsoffload completions fish > ~/.config/fish/completions/nsoffload.fish`.
    Fish,
}

/// Arguments of `nsoffload completions`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  source <(nsoffload completions bash)
  nsoffload completions zsh > \"${fpath[1]}/_nsoffload\"
  nsoffload completions fish > ~/.config/fish/completions/nsoffload.fish")]
pub struct CompletionsArgs {
    /// The shell.
    shell: Shell,
}

impl CompletionsArgs {
    /// Prints the script to stdout.
    pub fn run(self) -> anyhow::Result<()> {
        let shell = match self.shell {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        };
        let mut command = super::Cli::command();
        clap_complete::generate(shell, &mut command, "nsoffload", &mut std::io::stdout());
        Ok(())
    }
}
