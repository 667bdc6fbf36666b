//! The twin-namespace reconciler (SPEC §6 and §7).
//!
//! It runs inside `serve` in cluster mode, next to the webhooks, but only on the replica that
//! holds the Lease ([`leader`]). The pieces are split by how they can be tested: [`select`]
//! and [`status`] are pure decisions checked as tables; [`twin`], [`home`] and [`flow`] do
//! the API calls of one reconcile against clients that tests script; [`remotes`] turns
//! credential Secrets into clients; [`controller`] wires kube-runtime watches, backoff, events
//! and metrics; [`quick`] implements quick offloading from the `liqo.io/enabled` label.

pub mod controller;
pub mod flow;
pub mod home;
pub mod leader;
pub mod quick;
pub mod remotes;
pub mod select;
pub mod status;
pub mod twin;

pub use controller::{run, ReconcilerConfig};
