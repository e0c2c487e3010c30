//! Telling the outcome of a revision where operators look: the Git forge's commit
//! statuses (one per cluster), the cluster, the logs and the metrics.

pub mod forge;
