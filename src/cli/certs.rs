//! `nsoffload certs`: a development CA and serving certificate for local runs and tests.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::registration::certs::generate;

const EXAMPLES: &str = "\
Examples:
  # certs/ca.crt, ca.key, tls.crt, tls.key for localhost and 127.0.0.1, valid a year
  nsoffload certs

  # For a server other machines reach by name or address, valid 30 days
  nsoffload certs --out /tmp/webhook-certs --host webhook.example --host 192.0.2.10 --days 30";

/// Arguments of `nsoffload certs`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct CertsArgs {
    /// Directory to write ca.crt, ca.key, tls.crt and tls.key into.
    #[arg(long, default_value = "certs")]
    out: PathBuf,
    /// DNS name or IP address the serving certificate is valid for (repeatable).
    #[arg(long = "host", default_values_t = ["localhost".to_owned(), "127.0.0.1".to_owned()])]
    hosts: Vec<String>,
    /// Validity of the serving certificate, in days, from 1 to 3650 (the CA gets three times
    /// as long). `serve` refuses an expired certificate and warns a week before the end.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(i64).range(1..=3650))]
    days: i64,
}

impl CertsArgs {
    pub(super) fn run(self) -> anyhow::Result<()> {
        let CertsArgs { out, hosts, days } = self;
        let c = generate(&hosts, days.saturating_mul(3), days)?;
        std::fs::create_dir_all(&out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        write(&out.join("ca.crt"), &c.ca_cert_pem, false)?;
        write(&out.join("ca.key"), &c.ca_key_pem, true)?;
        write(&out.join("tls.crt"), &c.cert_pem, false)?;
        write(&out.join("tls.key"), &c.key_pem, true)?;
        println!(
            "wrote {}/{{ca.crt,ca.key,tls.crt,tls.key}} for {}",
            out.display(),
            hosts.join(", ")
        );
        Ok(())
    }
}

fn write(path: &Path, content: &str, secret: bool) -> anyhow::Result<()> {
    std::fs::write(path, content).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = secret;
    Ok(())
}
