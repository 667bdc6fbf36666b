//! Watches of the twin namespaces on every remote cluster, so that a twin's deletion wakes
//! its NamespaceOffloading at once.
//!
//! Deleting a namespace takes its cluster's namespace controller seconds to minutes (every
//! object inside is deleted first). Polling each Terminating NamespaceOffloading every 2 s
//! cost three reads per object and poll, against the very API servers busy deleting, and
//! still released up to 2 s late. Here one metadata-only watch per remote cluster, restricted
//! to the twins of this home cluster (label `liqo.io/remote-cluster-id=<home id>`), turns each
//! twin's deletion into a trigger of the NamespaceOffloading named by its
//! `liqo.io/original-name` annotation; a twin that a re-list no longer shows (deleted while
//! the watch was down) wakes it too ([`Twins`]). The poll is only a fallback (see
//! [`super::plan::wake_fallback`]).
//! A twin deleted behind our back is recreated at once for the same reason.
//!
//! The set of watches follows the credential Secrets: [`plan_watches`] (pure) compares the
//! Secrets with the running watches and says which to start and stop; a cluster whose
//! watch cannot be built is tried again at the next look.

use std::collections::{BTreeMap, HashMap, HashSet};
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

/// The NamespaceOffloading `twin` belongs to, when it is one of ours (owner annotation
/// `<home id>/<namespace>`, agreeing with its original-name annotation).
fn owner_of(twin: &TwinMeta, home_id: &str) -> Option<ObjectRef<NamespaceOffloading>> {
    let annotations = twin.metadata.annotations.as_ref()?;
    let namespace = annotations.get(ORIGINAL_NAME_ANNOTATION)?;
    let owner = annotations.get(OWNER_ANNOTATION)?;
    (*owner == format!("{home_id}/{namespace}"))
        .then(|| ObjectRef::new(NSOFF_NAME).within(namespace))
}

/// Our twins one watch has seen, so that a re-list no longer showing one counts as its
/// deletion: a watch that was down (a remote API server restarting, a network cut) delivers
/// no deletion event for a twin deleted meanwhile, and without this its NamespaceOffloading
/// would wait for the fallback look.
#[derive(Debug)]
pub(crate) struct Twins {
    home_id: String,
    /// Twin name → the NamespaceOffloading it belongs to.
    known: HashMap<String, ObjectRef<NamespaceOffloading>>,
    /// During a (re-)list: the twins listed so far.
    listing: Option<HashSet<String>>,
}

impl Twins {
    pub(crate) fn new(home_id: &str) -> Self {
        Twins {
            home_id: home_id.to_owned(),
            known: HashMap::new(),
            listing: None,
        }
    }

    /// The NamespaceOffloadings `event` wakes: those whose twin it shows deleted.
    pub(crate) fn on(&mut self, event: &Event<TwinMeta>) -> Vec<ObjectRef<NamespaceOffloading>> {
        match event {
            Event::Init => {
                self.listing = Some(HashSet::new());
                Vec::new()
            }
            Event::InitApply(twin) | Event::Apply(twin) => {
                let name = twin.metadata.name.clone().unwrap_or_default();
                match owner_of(twin, &self.home_id) {
                    Some(nsoff) => {
                        if let Some(listed) = self.listing.as_mut() {
                            listed.insert(name.clone());
                        }
                        self.known.insert(name, nsoff);
                    }
                    // No longer ours: not our twin, its fate is not ours to follow.
                    None => {
                        self.known.remove(&name);
                    }
                }
                Vec::new()
            }
            Event::Delete(twin) => {
                if let Some(name) = &twin.metadata.name {
                    self.known.remove(name);
                }
                owner_of(twin, &self.home_id).into_iter().collect()
            }
            Event::InitDone => {
                let Some(listed) = self.listing.take() else {
                    return Vec::new();
                };
                let gone: Vec<String> = self
                    .known
                    .keys()
                    .filter(|name| !listed.contains(*name))
                    .cloned()
                    .collect();
                let woken = gone.iter().filter_map(|n| self.known.remove(n)).collect();
                self.known.shrink_to_fit();
                woken
            }
        }
    }
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
    let mut twins = Twins::new(&wake.home_id);
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => {
                for nsoff in twins.on(&event) {
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

    /// Our twin of `original`.
    fn ours(original: &str) -> TwinMeta {
        twin(&format!("home/{original}"), original)
    }

    fn shop() -> Vec<ObjectRef<NamespaceOffloading>> {
        vec![ObjectRef::new(NSOFF_NAME).within("shop")]
    }

    #[test]
    fn only_the_deletion_of_our_own_twin_wakes_its_offloading() {
        let ours = twin("home/shop", "shop");
        let mut twins = Twins::new("home");
        assert_eq!(twins.on(&Event::Delete(ours.clone())), shop());
        for (what, event) in [
            ("created or changed", Event::Apply(ours.clone())),
            ("listed", Event::InitApply(ours.clone())),
            ("another home's", Event::Delete(twin("other/shop", "shop"))),
            (
                "owner and name disagree",
                Event::Delete(twin("home/cart", "shop")),
            ),
        ] {
            assert_eq!(twins.on(&event), [], "{what}");
        }
        let bare: TwinMeta = serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap();
        assert_eq!(twins.on(&Event::Delete(bare)), [], "no annotations");
    }

    #[test]
    fn a_twin_missing_from_a_relist_counts_as_deleted() {
        let mut twins = Twins::new("home");
        // The first list: nothing known before, nothing woken.
        twins.on(&Event::Init);
        for original in ["shop", "cart", "mail"] {
            twins.on(&Event::InitApply(ours(original)));
        }
        // Another home's twin, and one of ours whose owner annotation was changed.
        twins.on(&Event::InitApply(twin("other/blog", "blog")));
        assert_eq!(twins.on(&Event::InitDone), [], "a first list wakes nothing");
        twins.on(&Event::Apply(twin("someone/mail", "mail")));
        twins.on(&Event::Apply(twin("home/news", "news")));

        // The watch was down: cart's twin was deleted meanwhile; the re-list shows the rest.
        twins.on(&Event::Init);
        for original in ["shop", "news"] {
            twins.on(&Event::InitApply(ours(original)));
        }
        assert_eq!(
            twins.on(&Event::InitDone),
            [ObjectRef::new(NSOFF_NAME).within("cart")],
            "only ours, and only the one gone"
        );
        // A second re-list showing the same twins wakes nothing more.
        twins.on(&Event::Init);
        for original in ["shop", "news"] {
            twins.on(&Event::InitApply(ours(original)));
        }
        assert_eq!(twins.on(&Event::InitDone), []);
        assert_eq!(twins.on(&Event::Delete(twin("home/shop", "shop"))), shop());
        assert_eq!(twins.known.len(), 1, "news only");
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
