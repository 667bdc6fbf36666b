//! nsoffload: admission webhooks and reconciler for Kubernetes namespace offloading.
//!
//! The crate is split by dependency direction: `api` (types and constants) and `policy`
//! (pure decisions) know nothing about HTTP or the API server; `admission` adapts
//! AdmissionReviews to those decisions; `server` and `state` do the I/O; `cache` holds the
//! watches every subsystem reads, `reconcile` writes what they decide, `metrics` counts.
//!
//! Visibility is `pub(crate)` by default: a module is public only when the binary, the
//! integration tests or the benchmarks use it, and `unreachable_pub` keeps every item of a
//! crate-private module crate-private, so the compiler reports code nothing uses.
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

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
