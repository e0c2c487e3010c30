//! hawser: a small GitOps pull agent for Kubernetes.
//!
//! A revision travels one way through the pipeline, one module per stage:
//!
//! ```text
//! source ──► verify ──► cache ──► manifests ──► plan ──► apply ──► health ──► report
//! ```
//!
//! `cli` parses the command line once into validated configuration and drives the
//! stages; the middle stages are pure and know nothing about a cluster or a network.

pub mod admin;
pub mod apply;
pub mod cache;
pub mod cli;
pub mod cluster;
pub mod duration;
pub mod encoding;
pub mod errors;
pub mod health;
pub mod inventory;
pub mod manifests;
pub mod pipeline;
pub mod plan;
pub mod reconcile;
pub mod render;
pub mod report;
pub mod source;
