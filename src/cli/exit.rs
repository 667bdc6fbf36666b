//! How a command ends: its exit status, and the one line that says why it failed.
//!
//! Scripts branch on the status, so it follows kubectl's convention and is the same for every
//! command: 0 success, 1 the operation failed, 2 a usage error (a flag or argument is wrong,
//! and nothing was done). clap's own parse errors already exit 2; [`UsageError`] marks the
//! ones found after parsing (a selector, a namespace name, flags that contradict each other).

use std::fmt;
use std::process::ExitCode;

use crate::ctl::errors::one_line;

/// The operation failed (the cluster refused, a namespace ended in `SomeFailed`, a file could
/// not be read…).
pub const FAILED: u8 = 1;
/// A flag or argument is wrong; nothing was done.
pub const USAGE: u8 = 2;

/// The table printed at the end of `nsoffload --help`.
pub const STATUS_HELP: &str = "\
Exit status:
  0  success
  1  the operation failed (the cluster could not be reached or refused, a namespace did not
     end as asked, a file could not be used)
  2  usage error: a flag or argument is wrong (nothing was done)";

/// A flag or argument that cannot work, found after parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// An [`anyhow::Error`] that exits with [`USAGE`].
pub fn usage(message: impl fmt::Display) -> anyhow::Error {
    UsageError(message.to_string()).into()
}

/// The exit status for `error`.
pub fn status(error: &anyhow::Error) -> u8 {
    if error.chain().any(|e| e.is::<UsageError>()) {
        USAGE
    } else {
        FAILED
    }
}

/// What `main` prints for `error`: one line, each cause said once.
pub fn message(error: &anyhow::Error) -> String {
    one_line(error.as_ref())
}

/// Prints `error` on stderr and returns its exit status.
pub fn report(error: &anyhow::Error) -> ExitCode {
    eprintln!("error: {}", message(error));
    ExitCode::from(status(error))
}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;

    use super::*;

    #[test]
    fn usage_errors_exit_2_also_under_context() {
        assert_eq!(status(&usage("--selector: bad")), USAGE);
        let wrapped = Err::<(), _>(usage("bad"))
            .context("cannot start")
            .unwrap_err();
        assert_eq!(status(&wrapped), USAGE);
        assert_eq!(status(&anyhow::anyhow!("refused")), FAILED);
    }

    #[test]
    fn messages_say_each_cause_once() {
        let io = std::io::Error::from_raw_os_error(2);
        let text = io.to_string();
        let error = anyhow::Error::new(io)
            .context(format!("cannot read tls.crt: {text}"))
            .context("cannot load the serving certificate");
        assert_eq!(
            message(&error),
            format!("cannot load the serving certificate: cannot read tls.crt: {text}")
        );
    }
}
