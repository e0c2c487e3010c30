//! The last stage: telling the outcome of a revision where operators look: the Git
//! forge's commit statuses (one per cluster), the cluster (the inventory parent's
//! status and Events), the logs and the metrics.

pub mod cluster;
pub mod evidence;
pub mod export;
pub mod forge;
pub mod metrics;
pub mod outcome;
pub mod teller;

pub use outcome::{Failure, Occasion, RevisionOutcome};
pub use teller::{Reconcile, Standing, Teller, TellerConfig};
