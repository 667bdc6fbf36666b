//! Leader election with a coordination.k8s.io Lease (SPEC §7: one reconciler at a time).
//!
//! Every replica serves admission, but only the Lease holder reconciles: two reconcilers
//! would race on the same twins and status. The rules follow client-go's: the holder renews
//! every retry period; another replica takes the Lease over only after it has watched the
//! record stay unchanged for a whole lease duration (measured on its own monotonic clock, so
//! clock skew between nodes does not matter); a holder that cannot renew within the renew
//! deadline — shorter than the lease duration — stops leading before anyone can take over.
//! On shutdown the holder releases the Lease so a successor starts at once.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::Client;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Timing of the election.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long a Lease stays valid without renewal.
    pub lease_duration: Duration,
    /// A holder that has not renewed for this long stops leading (< lease duration).
    pub renew_deadline: Duration,
    /// How often the Lease is read and renewed.
    pub retry_period: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What to do with the Lease as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// There is none: create it, holding it.
    Create,
    /// We hold it: renew it.
    Renew,
    /// Free or expired: take it over.
    TakeOver,
    /// Someone else holds it.
    Follow(String),
}

/// The part of a Lease whose change proves its holder alive: holder and renew time.
type Record = (Option<String>, Option<String>);

/// The [`Record`] of a Lease.
fn record(spec: &LeaseSpec) -> Record {
    (
        spec.holder_identity.clone(),
        spec.renew_time.as_ref().map(|t| t.0.to_string()),
    )
}

/// Decides from the Lease read, who we are, and for how long this very record has been
/// observed unchanged.
pub fn decide(lease: Option<&LeaseSpec>, me: &str, unchanged_for: Duration) -> Step {
    let Some(spec) = lease else {
        return Step::Create;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64);
    if holder == me {
        Step::Renew
    } else if holder.is_empty() || unchanged_for >= duration {
        Step::TakeOver
    } else {
        Step::Follow(holder.to_owned())
    }
}

/// A Lease-based elector for one identity.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    /// The record last read and when it was first seen.
    observed: Option<(Record, Instant)>,
    last_renewal: Option<Instant>,
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

impl Elector {
    /// Elects among replicas using the Lease `namespace/name`.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: String,
        timing: Timing,
    ) -> Self {
        Elector {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity,
            timing,
            observed: None,
            last_renewal: None,
        }
    }

    fn spec(&self, previous: Option<&LeaseSpec>, taking_over: bool) -> LeaseSpec {
        let t = now();
        let mut spec = previous.cloned().unwrap_or_default();
        if taking_over || previous.is_none() {
            spec.acquire_time = Some(t.clone());
            spec.lease_transitions = Some(
                previous
                    .and_then(|p| p.lease_transitions)
                    .map_or(0, |n| n + 1),
            );
        }
        spec.holder_identity = Some(self.identity.clone());
        spec.lease_duration_seconds = Some(self.timing.lease_duration.as_secs() as i32);
        spec.renew_time = Some(t);
        spec
    }

    /// One round: read, decide, write. Returns whether we lead afterwards.
    pub async fn round(&mut self) -> Result<bool, kube::Error> {
        let lease = self.api.get_opt(&self.name).await?;
        let spec = lease.as_ref().and_then(|l| l.spec.as_ref());
        let unchanged_for = match (spec.map(record), &self.observed) {
            (Some(r), Some((seen, at))) if *seen == r => at.elapsed(),
            (Some(r), _) => {
                self.observed = Some((r, Instant::now()));
                Duration::ZERO
            }
            (None, _) => Duration::ZERO,
        };
        let step = decide(spec, &self.identity, unchanged_for);
        let written = match (&step, lease) {
            (Step::Follow(_), _) => return Ok(false),
            (Step::Create, _) | (_, None) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.spec(None, true)),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (Step::Renew | Step::TakeOver, Some(mut lease)) => {
                lease.spec = Some(self.spec(lease.spec.as_ref(), step == Step::TakeOver));
                // resourceVersion is kept, so a concurrent writer makes this fail with 409.
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match written {
            Ok(_) => {
                self.last_renewal = Some(Instant::now());
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up if we hold it, so a successor need not wait for it to expire.
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now());
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map(drop)
    }

    /// Runs rounds until `cancel`, publishing whether we lead; releases the Lease at the end.
    pub async fn run(mut self, leading: watch::Sender<bool>, cancel: CancellationToken) {
        loop {
            // Bounded, so a hung API server cannot keep us leading past the renew deadline.
            let bound = self.timing.renew_deadline / 2;
            let round = tokio::time::timeout(bound, self.round()).await;
            let lead = match round {
                Ok(Ok(lead)) => lead,
                failed => {
                    let error = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("no answer within {bound:?}"),
                    };
                    tracing::warn!(lease = %self.name, %error, "cannot read or renew the lease");
                    // Keep leading only while the last renewal is recent enough.
                    *leading.borrow()
                        && self
                            .last_renewal
                            .is_some_and(|t| t.elapsed() < self.timing.renew_deadline)
                }
            };
            if lead != *leading.borrow() {
                tracing::info!(identity = %self.identity, leading = lead, "leadership changed");
                leading.send_replace(lead);
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(self.timing.retry_period) => {}
            }
        }
        leading.send_replace(false);
        // Shutdown must finish within 2 s (SPEC §8): a release that does not get through by
        // then is given up, and the successor waits for the Lease to expire instead.
        let bound = RELEASE_TIMEOUT.min(self.timing.renew_deadline);
        match tokio::time::timeout(bound, self.release()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(lease = %self.name, error = %e, "cannot release the lease")
            }
            Err(_) => tracing::warn!(lease = %self.name, "timed out releasing the lease"),
        }
    }
}

/// How long the release of the Lease may take at shutdown.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(1);

/// An identity unique to this process: the pod name (or host name) and a random suffix.
pub fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "nsoffload".to_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{host}_{:08x}", nanos ^ std::process::id().rotate_left(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, seconds: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: Some(seconds),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn decisions() {
        let s = Duration::from_secs;
        let cases = [
            (None, s(0), Step::Create),
            (Some(spec(Some("me"), 15)), s(0), Step::Renew),
            (Some(spec(Some("me"), 15)), s(60), Step::Renew),
            (Some(spec(None, 15)), s(0), Step::TakeOver),
            (Some(spec(Some(""), 15)), s(0), Step::TakeOver),
            (
                Some(spec(Some("other"), 15)),
                s(14),
                Step::Follow("other".to_owned()),
            ),
            (Some(spec(Some("other"), 15)), s(15), Step::TakeOver),
            (Some(spec(Some("other"), 1)), s(2), Step::TakeOver),
        ];
        for (lease, unchanged, want) in cases {
            assert_eq!(
                decide(lease.as_ref(), "me", unchanged),
                want,
                "{lease:?} {unchanged:?}"
            );
        }
    }

    #[test]
    fn the_holder_gives_up_before_anyone_may_take_over() {
        let t = Timing::default();
        assert!(t.renew_deadline < t.lease_duration);
        assert!(t.retry_period < t.renew_deadline);
    }
}
