//! Watches of the twin namespaces on every remote cluster, so that a twin's deletion wakes
//! its NamespaceOffloading at once.
//!
//! Deleting a namespace takes its cluster's namespace controller seconds to minutes (every
//! object inside is deleted first). Polling each Terminating NamespaceOffloading every 2 s
//! cost three reads per object and poll, against the very API servers busy deleting, and
//! still released up to 2 s late. Here one metadata-only watch per remote cluster, restricted
//! to the twins of this home cluster (label `liqo.io/remote-cluster-id=<home id>`), turns each
//! twin's deletion into a trigger of the NamespaceOffloading named by its
//! `liqo.io/original-name` annotation; the poll is only a fallback (see [`super::plan`]).
//! A twin deleted behind our back is recreated at once for the same reason.
//!
//! The set of watches follows the credential Secrets: [`plan_watches`] (pure) compares the
//! Secrets with the running watches and says which to start and stop; a cluster whose
//! watch cannot be built is tried again at the next look.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ratelimit::ApiLimits;
use super::remotes::{client_for_watch, credentials};
use super::seen::SeenTwins;
use crate::api::consts::{
    NSOFF_NAME, ORIGINAL_NAME_ANNOTATION, OWNER_ANNOTATION, REMOTE_CLUSTER_ID_LABEL,
};
use crate::api::NamespaceOffloading;

/// A twin as watched: its metadata only.
type TwinMeta = PartialObjectMeta<Namespace>;

/// How often the credential Secrets are compared with the running watches.
const LOOK_EVERY: Duration = Duration::from_secs(5);

/// The NamespaceOffloading a twin-namespace event concerns: a deletion of one of our twins
/// (owner annotation `<home id>/<namespace>`).
pub(crate) fn woken(
    event: &Event<TwinMeta>,
    home_id: &str,
) -> Option<ObjectRef<NamespaceOffloading>> {
    let Event::Delete(twin) = event else {
        return None;
    };
    let annotations = twin.metadata.annotations.as_ref()?;
    let namespace = annotations.get(ORIGINAL_NAME_ANNOTATION)?;
    let owner = annotations.get(OWNER_ANNOTATION)?;
    (*owner == format!("{home_id}/{namespace}"))
        .then(|| ObjectRef::new(NSOFF_NAME).within(namespace))
}

/// Which watches to start (cluster → Secret version) and which to stop, given the clusters
/// with credentials now (cluster → Secret version) and the running ones.
pub(crate) fn plan_watches(
    wanted: &BTreeMap<String, String>,
    running: &BTreeMap<String, String>,
) -> (Vec<(String, String)>, Vec<String>) {
    let start = wanted
        .iter()
        .filter(|(cluster, version)| running.get(*cluster) != Some(*version))
        .map(|(c, v)| (c.clone(), v.clone()))
        .collect();
    let stop = running
        .iter()
        .filter(|(cluster, version)| wanted.get(*cluster) != Some(*version))
        .map(|(c, _)| c.clone())
        .collect();
    (start, stop)
}

/// The NamespaceOffloadings woken by twin deletions on every remote cluster with credentials
/// in `secrets`, until `cancel`.
/// The deleted twin is forgotten by `seen` first, so the reconcile it wakes asks again.
pub(crate) fn twin_deletions(
    secrets: Store<Secret>,
    home_id: String,
    limits: ApiLimits,
    seen: Arc<SeenTwins>,
    cancel: CancellationToken,
) -> impl Stream<Item = ObjectRef<NamespaceOffloading>> + Send + 'static {
    let (tx, rx) = mpsc::unbounded_channel();
    let wake = Wake { tx, seen, home_id };
    tokio::spawn(supervise(secrets, limits, wake, cancel));
    futures_util::stream::unfold(rx, |mut rx| async move { Some((rx.recv().await?, rx)) })
}

/// Where a twin's deletion goes: the memory of twins found ready, then the trigger.
#[derive(Clone)]
struct Wake {
    tx: mpsc::UnboundedSender<ObjectRef<NamespaceOffloading>>,
    seen: Arc<SeenTwins>,
    home_id: String,
}

/// A running watch: the Secret version it was built from, and its task.
struct Running {
    version: String,
    task: JoinHandle<()>,
}

async fn supervise(
    secrets: Store<Secret>,
    limits: ApiLimits,
    wake: Wake,
    cancel: CancellationToken,
) {
    let mut running: HashMap<String, Running> = HashMap::new();
    loop {
        let found = credentials(&secrets);
        let wanted: BTreeMap<String, String> = found
            .iter()
            .map(|(cluster, (version, _))| (cluster.clone(), version.clone()))
            .collect();
        let now: BTreeMap<String, String> = running
            .iter()
            .filter(|(_, r)| !r.task.is_finished())
            .map(|(c, r)| (c.clone(), r.version.clone()))
            .collect();
        let (start, stop) = plan_watches(&wanted, &now);
        for cluster in stop {
            if let Some(r) = running.remove(&cluster) {
                r.task.abort();
            }
        }
        for (cluster, version) in start {
            let Some((_, secret)) = found.get(&cluster) else {
                continue;
            };
            // Long polls: no read timeout (the remote calls' deadline would cut every watch).
            let client = match client_for_watch(secret, limits).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(cluster, error = %e, "no twin watch for the cluster yet");
                    continue;
                }
            };
            let task = tokio::spawn(watch_one(client, cluster.clone(), wake.clone()));
            if let Some(old) = running.insert(cluster, Running { version, task }) {
                old.task.abort();
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
    for (_, r) in running {
        r.task.abort();
    }
}

async fn watch_one(client: kube::Client, cluster: String, wake: Wake) {
    let ours = format!("{REMOTE_CLUSTER_ID_LABEL}={}", wake.home_id);
    let events = watcher::watcher(
        Api::<TwinMeta>::all(client),
        watcher::Config::default().labels(&ours),
    )
    .default_backoff();
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => {
                if let Some(nsoff) = woken(&event, &wake.home_id) {
                    let namespace = nsoff.namespace.as_deref().unwrap_or_default();
                    let key = super::object_key(namespace, &nsoff.name);
                    wake.seen.forget_one(&key, &cluster);
                    if wake.tx.send(nsoff).is_err() {
                        return;
                    }
                }
            }
            Err(e) => tracing::debug!(cluster, error = %e, "twin watch failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn twin(owner: &str, original: &str) -> TwinMeta {
        serde_json::from_value(json!({"metadata": {"name": format!("{original}-home"),
            "annotations": {OWNER_ANNOTATION: owner, ORIGINAL_NAME_ANNOTATION: original}}}))
        .unwrap()
    }

    #[test]
    fn only_the_deletion_of_our_own_twin_wakes_its_offloading() {
        let ours = twin("home/shop", "shop");
        assert_eq!(
            woken(&Event::Delete(ours.clone()), "home"),
            Some(ObjectRef::new(NSOFF_NAME).within("shop"))
        );
        for (what, event) in [
            ("created or changed", Event::Apply(ours.clone())),
            ("listed", Event::InitApply(ours.clone())),
            ("another home's", Event::Delete(twin("other/shop", "shop"))),
            (
                "owner and name disagree",
                Event::Delete(twin("home/cart", "shop")),
            ),
        ] {
            assert_eq!(woken(&event, "home"), None, "{what}");
        }
        let bare: TwinMeta = serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap();
        assert_eq!(woken(&Event::Delete(bare), "home"), None, "no annotations");
    }

    #[test]
    fn watches_follow_the_credentials() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(c, v)| ((*c).to_owned(), (*v).to_owned()))
                .collect()
        };
        let (start, stop) = plan_watches(
            &map(&[("r1", "u1:5"), ("r2", "u2:9"), ("r3", "u3:1")]),
            &map(&[("r1", "u1:5"), ("r2", "u2:7"), ("r4", "u4:1")]),
        );
        assert_eq!(
            start,
            [
                ("r2".to_owned(), "u2:9".to_owned()),
                ("r3".to_owned(), "u3:1".to_owned())
            ]
        );
        assert_eq!(stop, ["r2", "r4"]);
        let (start, stop) = plan_watches(&map(&[("r1", "a")]), &map(&[("r1", "a")]));
        assert!(start.is_empty() && stop.is_empty());
    }
}
