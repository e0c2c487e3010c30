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

pub mod apply;
pub mod cli;
pub mod cluster;
pub mod inventory;
pub mod manifests;
pub mod pipeline;
pub mod plan;
pub mod report;
