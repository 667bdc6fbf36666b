//! A readiness-aware TCP balancer, standing in for a Service in front of webhook replicas.
//!
//! Why our own: the rollout test needs what kube-proxy and the endpoints controller give a
//! real installation, and nothing more: a new connection goes to a replica whose `/readyz`
//! answered 200 at the last probe (every [`PROBE_EVERY`]), an established connection stays
//! with its replica for its whole life, and nothing is retried (a connection that cannot
//! reach its replica fails, as it would in a cluster). With no ready replica, new
//! connections are closed at once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// How often each replica's readiness is probed (the endpoints' lag, roughly).
pub const PROBE_EVERY: Duration = Duration::from_millis(250);

/// One replica: its webhook and admin addresses, and whether it was ready at the last probe.
pub struct Backend {
    pub web: SocketAddr,
    pub admin: SocketAddr,
    ready: AtomicBool,
}

/// A running balancer; stops when dropped.
pub struct Balancer {
    pub addr: SocketAddr,
    backends: Arc<Vec<Backend>>,
    stop: CancellationToken,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Balancer {
    /// Listens on a free port of 127.0.0.1 in front of `backends` (webhook, admin).
    pub async fn start(backends: Vec<(SocketAddr, SocketAddr)>) -> anyhow::Result<Balancer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let backends: Arc<Vec<Backend>> = Arc::new(
            backends
                .into_iter()
                .map(|(web, admin)| Backend {
                    web,
                    admin,
                    ready: AtomicBool::new(false),
                })
                .collect(),
        );
        let stop = CancellationToken::new();
        tokio::spawn(probe(backends.clone(), stop.clone()));
        tokio::spawn(accept(listener, backends.clone(), stop.clone()));
        Ok(Balancer {
            addr,
            backends,
            stop,
        })
    }

    /// Whether each replica was ready at the last probe.
    pub fn ready(&self) -> Vec<bool> {
        self.backends
            .iter()
            .map(|b| b.ready.load(Ordering::SeqCst))
            .collect()
    }
}

async fn probe(backends: Arc<Vec<Backend>>, stop: CancellationToken) {
    while !stop.is_cancelled() {
        for b in backends.iter() {
            let ready = tokio::time::timeout(Duration::from_secs(1), readyz(b.admin))
                .await
                .is_ok_and(|r| r.is_ok_and(|code| code == 200));
            b.ready.store(ready, Ordering::SeqCst);
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(PROBE_EVERY) => {}
        }
    }
}

/// `GET /readyz`: the status code.
pub async fn readyz(admin: SocketAddr) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(admin).await?;
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).await?;
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP status line"))
}

async fn accept(listener: TcpListener, backends: Arc<Vec<Backend>>, stop: CancellationToken) {
    let next = AtomicUsize::new(0);
    loop {
        let client = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => client,
                Err(_) => continue,
            },
        };
        let n = backends.len();
        let start = next.fetch_add(1, Ordering::Relaxed);
        let chosen = (0..n)
            .map(|i| &backends[(start + i) % n])
            .find(|b| b.ready.load(Ordering::SeqCst))
            .map(|b| b.web);
        let Some(web) = chosen else {
            continue; // no ready replica: the connection is closed
        };
        let stop = stop.clone();
        tokio::spawn(async move {
            let Ok(mut upstream) = TcpStream::connect(web).await else {
                return;
            };
            let mut client = client;
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
            }
        });
    }
}
