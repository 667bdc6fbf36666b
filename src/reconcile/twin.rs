//! Twin namespaces on one remote cluster: create, check, delete (SPEC §7 steps 4 and 5).
//!
//! Ownership is the safety rule of the whole reconciler: a namespace is ours only when its
//! `offloading.liqo.io/owner` annotation is exactly `<home-cluster-id>/<local-namespace>`.
//! [`remove`] is the only code that deletes a namespace anywhere, and it deletes only an
//! object it has just read and found ours, with the API server checking (by uid and
//! resourceVersion preconditions) that it is still that very object. A namespace that exists
//! without our annotation is reported as a conflict and never adopted, labelled or deleted.
//! Every call is bounded by a timeout, so an unreachable cluster costs one timeout and is
//! reported, instead of stalling the clusters that answer.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};

use super::status::{Failure, TwinState};
use crate::api::consts::{ORIGINAL_NAME_ANNOTATION, OWNER_ANNOTATION, REMOTE_CLUSTER_ID_LABEL};

/// The twin namespace wanted on every selected cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Twin {
    /// Name on the remote clusters.
    pub name: String,
    /// The home cluster id (label value on the twin).
    pub home_id: String,
    /// The local namespace (original-name annotation).
    pub local_namespace: String,
}

impl Twin {
    /// The owner annotation value: `<home-cluster-id>/<local-namespace>`.
    pub fn owner(&self) -> String {
        format!("{}/{}", self.home_id, self.local_namespace)
    }

    /// The namespace object to create.
    pub fn object(&self) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                labels: Some(BTreeMap::from([(
                    REMOTE_CLUSTER_ID_LABEL.to_owned(),
                    self.home_id.clone(),
                )])),
                annotations: Some(BTreeMap::from([
                    (
                        ORIGINAL_NAME_ANNOTATION.to_owned(),
                        self.local_namespace.clone(),
                    ),
                    (OWNER_ANNOTATION.to_owned(), self.owner()),
                ])),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }
    }

    /// Whether `ns` carries exactly our owner annotation.
    pub fn owns(&self, ns: &Namespace) -> bool {
        ns.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(OWNER_ANNOTATION))
            .is_some_and(|owner| *owner == self.owner())
    }
}

/// Classifies an API error: an answer from the API server is a refusal; anything else
/// (connection, TLS, credentials, timeouts) means the cluster is unreachable.
fn failure(cluster: &str, doing: &str, error: &kube::Error) -> Failure {
    match error {
        kube::Error::Api(status) => Failure {
            message: format!("{doing}: {} ({})", status.message, status.code),
            // The API server answered, but a 5xx or throttling is not the user's doing either.
            unreachable: status.code >= 500,
        },
        other => Failure {
            message: format!("cluster {cluster} is unreachable: {other}"),
            unreachable: true,
        },
    }
}

/// Runs one call with a deadline, mapping errors to a [`Failure`].
async fn bounded<T>(
    cluster: &str,
    doing: &str,
    timeout: Duration,
    call: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(failure(cluster, doing, &e)),
        Err(_) => Err(Failure {
            message: format!(
                "cluster {cluster} is unreachable: no answer within {}s",
                timeout.as_secs_f32()
            ),
            unreachable: true,
        }),
    }
}

/// Reads the namespace named like the twin, bounded.
async fn read(
    api: &Api<Namespace>,
    cluster: &str,
    twin: &Twin,
    timeout: Duration,
) -> Result<Option<Namespace>, Failure> {
    let doing = format!("reading namespace {}", twin.name);
    bounded(cluster, &doing, timeout, api.get_opt(&twin.name)).await
}

fn is_not_found(f: &kube::Error) -> bool {
    matches!(f, kube::Error::Api(s) if s.code == 404)
}

/// Makes sure the twin exists on `cluster`: creates it when missing, reports a conflict when
/// a namespace of that name is not ours. Never modifies an existing namespace. When the
/// twin is not `expected` to exist (the stored status has never seen it), it is created at
/// once and read only if the name is taken: one request for a new twin instead of two.
pub(crate) async fn ensure(
    api: &Api<Namespace>,
    cluster: &str,
    twin: &Twin,
    expected: bool,
    timeout: Duration,
) -> TwinState {
    if !expected {
        match create(api, cluster, twin, timeout).await {
            // The name is taken: by our twin (a status write was lost), or by someone else's
            // namespace; the read tells which.
            TwinState::Creating => {}
            done => return done,
        }
    }
    match read(api, cluster, twin, timeout).await {
        Err(f) => TwinState::Failed(f),
        Ok(Some(ns)) if !twin.owns(&ns) => TwinState::Failed(Failure {
            message: format!(
                "namespace {} already exists on cluster {cluster} and is not owned by this \
                 namespace (annotation {OWNER_ANNOTATION} is not {}); it is left untouched: \
                 delete or rename it there, or choose another namespace mapping strategy",
                twin.name,
                twin.owner()
            ),
            unreachable: false,
        }),
        Ok(Some(ns)) if ns.metadata.deletion_timestamp.is_some() => TwinState::Terminating,
        Ok(Some(_)) => TwinState::Ready,
        // Gone between the create and the read (or never there): created on the next pass.
        Ok(None) if !expected => TwinState::Creating,
        Ok(None) => create(api, cluster, twin, timeout).await,
    }
}

async fn create(api: &Api<Namespace>, cluster: &str, twin: &Twin, timeout: Duration) -> TwinState {
    let doing = format!("creating namespace {}", twin.name);
    let call = async {
        match api.create(&PostParams::default(), &twin.object()).await {
            // The name is taken (created since our read, or never read): judged by a read.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(TwinState::Creating),
            Err(e) => Err(e),
            Ok(_) => Ok(TwinState::Ready),
        }
    };
    bounded(cluster, &doing, timeout, call)
        .await
        .unwrap_or_else(TwinState::Failed)
}

/// Makes sure our twin is gone from `cluster`: deletes it only when it carries our owner
/// annotation, with preconditions so a namespace recreated meanwhile by someone else is not
/// deleted. A namespace that is not ours counts as absent (it is not our twin).
pub(crate) async fn remove(
    api: &Api<Namespace>,
    cluster: &str,
    twin: &Twin,
    timeout: Duration,
) -> TwinState {
    let ns = match read(api, cluster, twin, timeout).await {
        Err(f) => return TwinState::Failed(f),
        Ok(None) => return TwinState::Absent,
        Ok(Some(ns)) if !twin.owns(&ns) => return TwinState::Absent,
        Ok(Some(ns)) => ns,
    };
    if ns.metadata.deletion_timestamp.is_some() {
        return TwinState::Terminating;
    }
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: ns.metadata.uid.clone(),
            resource_version: ns.metadata.resource_version.clone(),
        }),
        ..DeleteParams::default()
    };
    let doing = format!("deleting namespace {}", twin.name);
    let call = async {
        match api.delete(&twin.name, &params).await {
            Ok(_) => Ok(TwinState::Terminating),
            Err(e) if is_not_found(&e) => Ok(TwinState::Absent),
            // Changed since read (precondition failed): judged again on the next pass.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(TwinState::Terminating),
            Err(e) => Err(e),
        }
    };
    bounded(cluster, &doing, timeout, call)
        .await
        .unwrap_or_else(TwinState::Failed)
}
