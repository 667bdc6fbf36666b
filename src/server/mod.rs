//! The HTTPS webhook server and the plain-HTTP admin server, with ordered shutdown.
//!
//! Connections are accepted by hand (rather than through `axum::serve`) so that the TLS
//! handshake runs in the connection's own task, where a slow client cannot hold up others,
//! and so that shutdown can wind down without failing a request (SPEC §8): first, for the
//! shutdown delay, keep accepting and answering but close each HTTP/1.1 connection after its
//! next response (`Connection: close`) and send GOAWAY on HTTP/2, so clients reconnect to
//! other replicas while the Service endpoints update; then stop accepting, tell every
//! connection to finish its current request, and wait at most the drain timeout. An idle
//! keep-alive connection is never closed while clients may still pick it: a request sent on
//! it at that moment would fail with EOF (what a plain graceful shutdown does).

pub mod admin;
pub mod router;
pub mod tls;
pub(crate) mod x509;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send request headers. hyper also applies it to idle
/// keep-alive connections, so it must exceed the API server's idle timeout (90 s): if the
/// server closed first, a POST sent at that moment would fail instead of being retried.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(120);

/// The two moments of the webhook port's shutdown (SPEC §8).
#[derive(Clone, Debug, Default)]
pub struct Winding {
    /// From now on every HTTP/1.1 response carries `Connection: close` and HTTP/2
    /// connections get GOAWAY, while new connections are still accepted and answered: clients
    /// move to other replicas as the Service endpoints update, without a request failing.
    pub closing: CancellationToken,
    /// Stop accepting; in-flight requests finish within the drain timeout.
    pub stop: CancellationToken,
}

impl Winding {
    /// Both moments at once (no delay), on `token`.
    pub fn at_once(token: CancellationToken) -> Winding {
        Winding {
            closing: token.clone(),
            stop: token,
        }
    }
}

/// Serves `router` over TLS on `listener` until `shutdown` fires, then drains open
/// connections for at most `drain`.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    shutdown: CancellationToken,
    drain: Duration,
) {
    serve_tls_winding(listener, tls, router, Winding::at_once(shutdown), drain).await
}

/// Serves `router` over TLS on `listener`, winding down as [`Winding`] says; once `stop`
/// fires, open connections get at most `drain` to finish.
pub async fn serve_tls_winding(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    winding: Winding,
    drain: Duration,
) {
    let acceptor = TlsAcceptor::from(tls);
    let connections = TaskTracker::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    loop {
        let (tcp, peer) = tokio::select! {
            _ = winding.stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Typically EMFILE; back off briefly rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, builder, router, winding) = (
            acceptor.clone(),
            builder.clone(),
            router.clone(),
            winding.clone(),
        );
        connections.spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            };
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            let service = closing_service(router, winding.closing.clone());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = wind_down(conn.into_owned(), h2, &winding).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    tokio::select! {
        _ = connections.wait() => tracing::info!("webhook connections drained"),
        _ = tokio::time::sleep(drain) => tracing::warn!(timeout = ?drain, "drain timed out; closing remaining connections"),
    }
}

/// The router, answering `Connection: close` to HTTP/1 requests once `closing` has fired
/// (hyper then closes the connection after that response). HTTP/2 has no such header; its
/// connections get GOAWAY instead ([`wind_down`]).
fn closing_service(
    router: Router,
    closing: CancellationToken,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl std::future::Future<
        Output = Result<axum::response::Response, std::convert::Infallible>,
    > + Send
                 + 'static,
> {
    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let http1 = req.version() < http::Version::HTTP_2;
        let answer = tower::ServiceExt::oneshot(router.clone(), req);
        let closing = closing.clone();
        async move {
            let mut response = answer.await?;
            if http1 && closing.is_cancelled() {
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            Ok(response)
        }
    })
}

/// Drives one connection to its end: an HTTP/2 connection is asked to shut down gracefully
/// (GOAWAY, in-flight streams finish) as soon as `closing` fires; an HTTP/1 connection only
/// at `stop` (before that it is closed by its next response's `Connection: close`, so that a
/// request the client is sending on an idle connection is never cut off).
async fn wind_down<C>(conn: C, h2: bool, winding: &Winding) -> Result<(), C::Error>
where
    C: GracefulConnection,
{
    let mut conn = std::pin::pin!(conn);
    let mut asked = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => return result,
            _ = winding.closing.cancelled(), if h2 && !asked => {
                conn.as_mut().graceful_shutdown();
                asked = true;
            }
            _ = winding.stop.cancelled(), if !asked => {
                conn.as_mut().graceful_shutdown();
                asked = true;
            }
        }
    }
}

/// Serves the admin router over plain HTTP until `shutdown` fires.
pub async fn serve_admin(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        _ = term => tracing::info!("SIGTERM received, shutting down"),
    }
}
