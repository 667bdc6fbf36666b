//! Cluster mode's live read: the one admission decision that may go to the API server.
//!
//! The cached state itself comes from the process-wide NamespaceOffloading cache
//! ([`crate::cache::offloadings`]); this is the cache-miss path of the pod gate (SPEC §4).

use std::fmt::Debug;

use kube::api::Api;
use kube::Client;

use super::{LiveLookup, LookupError, LookupFuture};
use crate::api::consts::NSOFF_NAME;
use crate::api::NamespaceOffloading;

/// Live reads through the API server (the cache-miss path of the pod gate).
#[derive(Clone)]
pub struct KubeLookup {
    client: Client,
}

impl KubeLookup {
    /// Reads with `client`.
    pub fn new(client: Client) -> Self {
        KubeLookup { client }
    }
}

impl Debug for KubeLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KubeLookup")
    }
}

impl LiveLookup for KubeLookup {
    fn namespace_offloading<'a>(&'a self, namespace: &'a str) -> LookupFuture<'a> {
        Box::pin(async move {
            let api: Api<NamespaceOffloading> = Api::namespaced(self.client.clone(), namespace);
            api.get_opt(NSOFF_NAME)
                .await
                .map_err(|e| LookupError(e.to_string()))
        })
    }
}
