//! hawser: a small GitOps pull agent for Kubernetes.
//!
//! A revision travels one way through the pipeline, one module per stage:
//!
//! ```text
//! source ──► verify ──► cache ──► render ──► manifests ──► plan ──► apply ──► health ──► report
//! ```
//!
//! Two values carry it and cannot be made anywhere else: a [`source::Revision`]
//! (parsed once where text enters: a source's answer, `state.json`, `meta.json`,
//! the parent's status) names it from the poll to the report, and a
//! [`source::Snapshot`] (only a verifying fetch makes one) is all
//! [`cache::Cache::store`] takes, returning an [`cache::Entry`] whose fields only
//! the cache sets.
//!
//! # Layers
//!
//! Each layer may import the layers below it, never one above. `cargo test` does
//! not check this; keep it true when adding a stage (and change this list with it).
//!
//! 1. **Command line** — `cli` (and `main.rs`): parses flags once, maps clap's types
//!    to the settings below ([`reconcile::Settings`], [`pipeline::Target`], …) and
//!    runs a command. Nothing below imports `cli`.
//! 2. **Loop and servers** — `reconcile` drives the stages on timers, webhooks and
//!    drift ticks: decide (run the pipeline), record (the cache's state), tell
//!    (`report`). `admin` serves /healthz, /readyz, /metrics and /hook.
//! 3. **Report** — `report` turns one [`report::RevisionOutcome`] into the log,
//!    metrics, the forge's commit status, the parent's status and Events. It reads
//!    the stages' typed results (`apply`, `health`, `pipeline`) but not `cache`:
//!    the loop hands it what the cache records.
//! 4. **Stages** — in pipeline order, each importing only earlier stages and the
//!    layers below: `source` (with bundle verification), `gate` (promotion after
//!    canaries, pure; the loop asks it before fetching), `cache`, `render`,
//!    `pipeline` (manifests → plan → apply for one tree), `plan`, `apply`, `health`.
//!    Two type-only exceptions, both data kept in `state.json`: `cache` names
//!    `health::Healthy` (the proof `State::record_good` asks for) and
//!    `report::forge::Posted` (the reporter's history survives restarts there).
//!    New stages (signature verification, promotion gates before a revision becomes
//!    a candidate, render between cache and manifests) slot in here as one module
//!    each, taking the previous stage's value and handing on their own.
//! 5. **Kubernetes** — `cluster` (connection, discovery, `api_for`, `api_reason`,
//!    `is_transient`, [`cluster::list`]) and `inventory` (the ApplySet parent and
//!    its annotations). They know object identities and nothing of plans or
//!    outcomes.
//! 6. **Objects** — `manifests`, the pure stage that parses and describes objects
//!    (`ObjectRef`, `Namespacing`, `worth_watching`): below the Kubernetes layer so
//!    that every layer names objects the same way. It imports nothing of the crate.
//! 7. **Bottom** — `errors` (one-line error text), `encoding`, `duration`,
//!    `memory` (returning freed heap to the system): no imports from the crate.
//!
//! The middle is pure: `manifests`, `render`, diffing, ordering, status wording
//! (`report::outcome`, `report::forge::describe`) are plain functions over plain
//! data; only `plan`/`apply`/`health`/`cluster`/`inventory` talk to the API server,
//! only `source` and `report` talk HTTP.

pub mod admin;
pub mod apply;
pub mod cache;
pub mod cli;
pub mod cluster;
pub mod duration;
pub mod encoding;
pub mod errors;
pub mod gate;
pub mod health;
pub mod inventory;
pub mod manifests;
pub mod memory;
pub mod pipeline;
pub mod plan;
pub mod reconcile;
pub mod render;
pub mod report;
pub mod source;
pub mod verify;
pub mod window;
