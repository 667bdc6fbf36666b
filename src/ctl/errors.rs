//! Errors told in one line: what failed, with each cause said once, and for a request that
//! got no answer, which API server and why (refused, timed out, unknown host, TLS).
//!
//! kube-rs reports a refused connection as `ServiceError: client error (Connect)`: the address
//! and the reason are buried in a chain of sources, and several errors repeat their cause
//! (`No such file or directory (os error 2): No such file or directory (os error 2)`). The
//! commands build their client with [`name_server`], a layer that turns every transport failure
//! into an [`ApiServerError`] naming the server; [`describe`] and [`one_line`] then walk a chain
//! and drop the causes already said.

use std::error::Error as StdError;
use std::io;

use tower::util::MapErrLayer;
use tower::BoxError;

/// The text of `error` and its sources, joined with `: `, without a cause whose text was
/// already said (kube-rs and std errors often print their source in their own message too),
/// on one line.
pub(crate) fn one_line(error: &(dyn StdError + 'static)) -> String {
    let mut text = String::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let part = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !part.is_empty() && !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        next = e.source();
    }
    text
}

/// A kube-rs error in one line; a transport failure of a client built with [`name_server`]
/// names the API server.
pub(crate) fn describe(error: &kube::Error) -> String {
    match error {
        // "ServiceError: " is kube-rs's wrapper, not information.
        kube::Error::Service(inner) => one_line(inner.as_ref()),
        other => one_line(other),
    }
}

/// A request that got no answer from the API server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ApiServerError {
    /// No connection could be made.
    #[error(
        "cannot connect to the API server at {server}: {cause}; check that the cluster is up \
         and that the kubeconfig (--kubeconfig, --context) points at it"
    )]
    Connect {
        /// The API server's URL.
        server: String,
        /// What happened, e.g. `connection refused`.
        cause: String,
    },
    /// The connection was made, but the request failed on it.
    #[error("the request to the API server at {server} failed: {cause}")]
    Request {
        /// The API server's URL.
        server: String,
        /// What happened, e.g. `timed out`.
        cause: String,
    },
}

impl ApiServerError {
    /// Classifies a transport failure of a request to `server`.
    pub(crate) fn new(server: &str, error: &(dyn StdError + 'static)) -> Self {
        let (server, cause) = (server.to_owned(), cause(error));
        if is_connect(error) {
            ApiServerError::Connect { server, cause }
        } else {
            ApiServerError::Request { server, cause }
        }
    }
}

/// Whether the chain says the connection itself failed.
fn is_connect(error: &(dyn StdError + 'static)) -> bool {
    chain(error).any(|e| {
        e.downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(|e| e.is_connect())
    })
}

fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |e: &&'a (dyn StdError + 'static)| {
        (*e).source()
    })
}

/// What happened, from the deepest I/O error (the socket's view), else the whole chain.
fn cause(error: &(dyn StdError + 'static)) -> String {
    let Some(io_error) = chain(error)
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .last()
    else {
        return one_line(error);
    };
    let text = match io_error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::TimedOut => "timed out".to_owned(),
        io::ErrorKind::ConnectionReset => "connection reset by the server".to_owned(),
        io::ErrorKind::ConnectionAborted => "connection aborted".to_owned(),
        io::ErrorKind::HostUnreachable => "host unreachable".to_owned(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".to_owned(),
        _ => one_line(io_error),
    };
    // "(os error 111)" says nothing more to a person.
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_owned(),
        _ => text,
    }
}

/// A layer for a `kube::Client` that wraps every transport failure (anything that is not
/// already a `kube::Error`) into an [`ApiServerError`] naming `server`.
pub(crate) fn name_server(
    server: String,
) -> MapErrLayer<impl Fn(BoxError) -> BoxError + Clone + Send + Sync + 'static> {
    MapErrLayer::new(move |error: BoxError| -> BoxError {
        if error.is::<kube::Error>() || error.is::<ApiServerError>() {
            return error;
        }
        Box::new(ApiServerError::new(&server, &*error))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a message and an optional source, like the ones kube-rs nests.
    #[derive(Debug)]
    struct Nested(&'static str, Option<Box<dyn StdError + Send + Sync>>);

    impl std::fmt::Display for Nested {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl StdError for Nested {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    fn nested(parts: &[&'static str]) -> Nested {
        let (last, rest) = parts.split_last().unwrap();
        rest.iter().rev().fold(Nested(last, None), |source, text| {
            Nested(text, Some(Box::new(source)))
        })
    }

    #[test]
    fn causes_already_said_are_dropped() {
        let cases: [(&[&str], &str); 4] = [
            (
                &[
                    "cannot read x: No such file or directory (os error 2)",
                    "No such file or directory (os error 2)",
                ],
                "cannot read x: No such file or directory (os error 2)",
            ),
            (
                &[
                    "invalid certificate or key: keys may not be consistent: KeyMismatch",
                    "keys may not be consistent: KeyMismatch",
                    "KeyMismatch",
                ],
                "invalid certificate or key: keys may not be consistent: KeyMismatch",
            ),
            (
                &["cannot start", "bad flag", "bad flag"],
                "cannot start: bad flag",
            ),
            (&["two\n  lines", "", "new cause"], "two lines: new cause"),
        ];
        for (parts, want) in cases {
            assert_eq!(one_line(&nested(parts)), want, "{parts:?}");
        }
    }

    #[test]
    fn socket_errors_read_as_words() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let wrapped = Nested("tcp connect error", Some(Box::new(refused)));
        assert_eq!(cause(&wrapped), "connection refused");
        let timed_out = io::Error::new(io::ErrorKind::TimedOut, "deadline has elapsed");
        assert_eq!(cause(&timed_out), "timed out");
        let os = io::Error::from_raw_os_error(2);
        assert!(!cause(&os).contains("os error"), "{}", cause(&os));
        assert_eq!(cause(&nested(&["a", "b"])), "a: b");
    }

    #[test]
    fn transport_errors_name_the_server() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let error = ApiServerError::new("https://127.0.0.1:1", &refused);
        assert_eq!(
            error,
            ApiServerError::Request {
                server: "https://127.0.0.1:1".into(),
                cause: "connection refused".into()
            }
        );
        let kube_error = kube::Error::Service(Box::new(ApiServerError::Connect {
            server: "https://10.0.0.1:6443".into(),
            cause: "timed out".into(),
        }));
        assert_eq!(
            describe(&kube_error),
            "cannot connect to the API server at https://10.0.0.1:6443: timed out; check that \
             the cluster is up and that the kubeconfig (--kubeconfig, --context) points at it"
        );
    }
}
