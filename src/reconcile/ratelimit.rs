//! Client-side rate limiting of the reconciler's API requests: a token bucket per API server
//! (QPS and burst, as client-go's clients have).
//!
//! Reconcile concurrency bounds how many requests are in flight, not how many are sent per
//! second: against a fast API server, 16 reconciles of 10,000 objects would send thousands
//! of requests a second at start-up. The bucket caps the rate and lets bursts through. The
//! service is ready only once a token is due: under the client's request buffer, requests
//! leave in the order they were made (no retry loop, no starvation), and a request whose
//! token is not due yet waits in the buffer. Watches take one token when they start. The Lease and admission clients are
//! not limited: renewals and webhook answers must never wait behind reconciles.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;

use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

/// A token bucket: `qps` tokens a second, at most `burst` saved up.
#[derive(Debug)]
pub struct Bucket {
    qps: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    /// A full bucket. `qps` below 0.001 is raised to it, `burst` below 1 to 1.
    pub fn new(qps: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Bucket {
            qps: qps.max(0.001),
            burst,
            state: Mutex::new((burst, now)),
        }
    }

    /// Takes one token at `now`; how long the request must wait until its token is due.
    pub fn reserve(&self, now: Instant) -> Duration {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = *state;
        let refilled = now.saturating_duration_since(last).as_secs_f64() * self.qps;
        let left = (tokens + refilled).min(self.burst) - 1.0;
        *state = (left, now.max(last));
        if left >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-left / self.qps)
        }
    }
}

/// The rate limit of one API server's client (`serve --api-qps`, `--api-burst`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApiLimits {
    /// Requests a second, on average.
    pub qps: f64,
    /// Requests sent at once after a quiet time.
    pub burst: u32,
}

impl ApiLimits {
    /// A layer with a bucket of its own (one per API server).
    pub fn layer(&self) -> RateLimitLayer {
        RateLimitLayer::new(self.qps, self.burst)
    }
}

/// A tower layer that makes every request wait for a token of one shared [`Bucket`].
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    bucket: Arc<Bucket>,
}

impl RateLimitLayer {
    /// `qps` requests a second, bursts of `burst`.
    pub fn new(qps: f64, burst: u32) -> Self {
        RateLimitLayer {
            bucket: Arc::new(Bucket::new(qps, burst, Instant::now())),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            bucket: self.bucket.clone(),
            permit: Permit::None,
        }
    }
}

/// The service of [`RateLimitLayer`]: ready once its token is due and the inner service is.
#[derive(Debug)]
pub struct RateLimit<S> {
    inner: S,
    bucket: Arc<Bucket>,
    permit: Permit,
}

/// Where the next request stands with its token.
#[derive(Debug)]
enum Permit {
    /// None reserved yet.
    None,
    /// Reserved, due when the sleep ends.
    Waiting(Pin<Box<Sleep>>),
    /// Due: the next call may go.
    Due,
}

impl<S, R> Service<R> for RateLimit<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        loop {
            match &mut self.permit {
                Permit::None => {
                    let wait = self.bucket.reserve(Instant::now());
                    self.permit = if wait.is_zero() {
                        Permit::Due
                    } else {
                        Permit::Waiting(Box::pin(tokio::time::sleep(wait)))
                    };
                }
                Permit::Waiting(sleep) => {
                    std::task::ready!(sleep.as_mut().poll(cx));
                    self.permit = Permit::Due;
                }
                Permit::Due => return self.inner.poll_ready(cx),
            }
        }
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.permit = Permit::None;
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Equal within a microsecond (the bucket counts in floating point).
    fn close(got: &[Duration], want: &[Duration]) -> bool {
        got.len() == want.len()
            && got
                .iter()
                .zip(want)
                .all(|(g, w)| g.abs_diff(*w) < Duration::from_micros(1))
    }

    #[test]
    fn a_burst_goes_at_once_then_requests_are_spaced_by_the_rate() {
        let t0 = Instant::now();
        let bucket = Bucket::new(10.0, 3, t0);
        let waits: Vec<Duration> = (0..6).map(|_| bucket.reserve(t0)).collect();
        let want = [ms(0), ms(0), ms(0), ms(100), ms(200), ms(300)];
        assert!(close(&waits, &want), "{waits:?}");
    }

    #[test]
    fn tokens_come_back_with_time_up_to_the_burst() {
        let t0 = Instant::now();
        let bucket = Bucket::new(10.0, 2, t0);
        let mut waits = vec![bucket.reserve(t0), bucket.reserve(t0)];
        // 150 ms later one and a half tokens are back.
        waits.extend([bucket.reserve(t0 + ms(150)), bucket.reserve(t0 + ms(150))]);
        // A long pause refills to the burst only.
        let later = t0 + Duration::from_secs(60);
        waits.extend((0..3).map(|_| bucket.reserve(later)));
        let want = [ms(0), ms(0), ms(0), ms(50), ms(0), ms(0), ms(100)];
        assert!(close(&waits, &want), "{waits:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn requests_through_the_layer_wait_for_their_token() {
        let layer = RateLimitLayer::new(10.0, 1);
        let mut service = layer.layer(tower::service_fn(|n: u32| async move {
            Ok::<_, std::convert::Infallible>((n, Instant::now()))
        }));
        let start = Instant::now();
        let mut at = Vec::new();
        for n in 0..3 {
            std::future::poll_fn(|cx| service.poll_ready(cx))
                .await
                .unwrap();
            let (_, sent) = service.call(n).await.unwrap();
            at.push(sent - start);
        }
        assert!(close(&at, &[ms(0), ms(100), ms(200)]), "{at:?}");
    }
}
