//! nsoffload: admission webhooks and reconciler for Kubernetes namespace offloading.
//!
//! The crate is split by dependency direction: `api` (types and constants) and `policy`
//! (pure decisions) know nothing about HTTP or the API server; `admission` adapts
//! AdmissionReviews to those decisions; `server` and `state` do the I/O.
#![forbid(unsafe_code)]

pub mod admission;
pub mod api;
pub mod cache;
pub mod cli;
pub mod ctl;
pub mod install;
pub mod metrics;
pub mod policy;
pub mod reconcile;
pub mod registration;
pub mod server;
pub mod state;
