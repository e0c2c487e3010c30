//! PLACEHOLDER until the manifests branch lands its ScopeArgs.
use crate::manifests::Scope;
#[derive(Debug, clap::Args)]
pub struct ScopeArgs {
    /// The agent's namespace.
    #[arg(long, env = "HAWSER_NAMESPACE")]
    pub namespace: String,
}
impl ScopeArgs {
    pub fn into_scope(self) -> Scope {
        Scope { namespace: self.namespace, ..Default::default() }
    }
}
