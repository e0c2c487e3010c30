//! The last stage: telling the outcome of a revision to the forge, the cluster, the
//! logs and the metrics.

pub mod cluster;
pub mod metrics;
