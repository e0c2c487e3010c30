//! The scope flags, shared by `validate`, `diff`, `apply` and `run` (flattened into
//! each), so that every command checks a revision against the same scope.

use anyhow::bail;

use crate::manifests::Scope;

/// What a revision may touch. By default: namespaced objects in the agent's own
/// namespace, and nothing else.
#[derive(Debug, Clone, clap::Args)]
pub struct ScopeArgs {
    /// The agent's own namespace: always allowed, and given to namespaced objects that
    /// name no namespace.
    #[arg(long, env = "HAWSER_NAMESPACE", value_name = "NS")]
    pub namespace: String,

    /// Further namespaces objects may be in, comma-separated; `*` allows all.
    #[arg(
        long,
        env = "HAWSER_ALLOW_NAMESPACES",
        value_delimiter = ',',
        value_name = "NS,.."
    )]
    pub allow_namespaces: Vec<String>,

    /// Allow cluster-scoped objects (Namespaces, ClusterRoles, StorageClasses, …).
    #[arg(
        long,
        env = "HAWSER_ALLOW_CLUSTER_SCOPED",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_cluster_scoped: bool,

    /// Allow kinds that grant power, comma-separated, as `Kind` or `Kind.group`:
    /// ClusterRole, ClusterRoleBinding, RoleBinding (to a ClusterRole),
    /// Validating/MutatingWebhookConfiguration, Validating/MutatingAdmissionPolicy(Binding),
    /// CustomResourceDefinition, APIService.
    #[arg(
        long,
        env = "HAWSER_ALLOW_KINDS",
        value_delimiter = ',',
        value_name = "KIND,.."
    )]
    pub allow_kinds: Vec<String>,

    /// Refuse these kinds even where otherwise allowed, comma-separated, as `Kind` or
    /// `Kind.group`.
    #[arg(
        long,
        env = "HAWSER_DENY_KINDS",
        value_delimiter = ',',
        value_name = "KIND,.."
    )]
    pub deny_kinds: Vec<String>,
}

impl TryFrom<ScopeArgs> for Scope {
    type Error = anyhow::Error;

    fn try_from(args: ScopeArgs) -> anyhow::Result<Scope> {
        let ScopeArgs {
            namespace,
            allow_namespaces,
            allow_cluster_scoped,
            allow_kinds,
            deny_kinds,
        } = args;
        if !crate::manifests::valid_namespace(&namespace) {
            bail!("--namespace {namespace:?} is not a valid namespace name");
        }
        let allowed_namespaces = clean(allow_namespaces);
        if let Some(bad) = allowed_namespaces
            .iter()
            .find(|ns| *ns != "*" && !crate::manifests::valid_namespace(ns))
        {
            bail!("--allow-namespaces: {bad:?} is not a valid namespace name");
        }
        Ok(Scope {
            namespace,
            allowed_namespaces,
            allow_cluster_scoped,
            allow_kinds: clean(allow_kinds),
            deny_kinds: clean(deny_kinds),
        })
    }
}

/// Trims entries and drops empty ones (`a, b,` from a hand-written variable).
fn clean(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(namespace: &str) -> ScopeArgs {
        ScopeArgs {
            namespace: namespace.into(),
            allow_namespaces: vec![" a".into(), String::new(), "*".into()],
            allow_cluster_scoped: true,
            allow_kinds: vec!["ClusterRole ".into()],
            deny_kinds: vec![],
        }
    }

    #[test]
    fn converts_into_a_scope() {
        let scope = Scope::try_from(args("edge")).unwrap();
        assert_eq!(scope.namespace, "edge");
        assert_eq!(scope.allowed_namespaces, ["a", "*"]);
        assert!(scope.allow_cluster_scoped);
        assert_eq!(scope.allow_kinds, ["ClusterRole"]);
    }

    #[test]
    fn rejects_invalid_namespace_names() {
        let err = Scope::try_from(args("Edge")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--namespace \"Edge\" is not a valid namespace name"
        );
        let mut bad = args("edge");
        bad.allow_namespaces = vec!["a/b".into()];
        assert!(Scope::try_from(bad).is_err());
    }
}
