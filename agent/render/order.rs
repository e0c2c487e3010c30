//! The output order of `kustomize build`: `sortOptions`, by default kustomize's
//! legacy order (kinds in a fixed order, then by id).

use super::RenderError;
use super::kustomization::SortOptions;
use super::resource::Resource;

/// kustomize's `SortOrderTransformer` defaults (also the order of its field specs).
pub(super) const FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
pub(super) const LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Sorts the root's objects as `sortOptions` (or the legacy default) says.
pub fn sort(
    items: &mut [Resource],
    options: Option<&SortOptions>,
    kfile: &str,
) -> Result<(), RenderError> {
    let (order, legacy) = match options {
        None => ("legacy", None),
        Some(o) => (
            if o.order.is_empty() {
                "legacy"
            } else {
                o.order.as_str()
            },
            o.legacy_sort_options.as_ref(),
        ),
    };
    match order {
        "fifo" => {
            if legacy.is_some() {
                return Err(RenderError::field(
                    kfile,
                    "sortOptions",
                    "legacySortOptions need order: legacy".into(),
                ));
            }
            Ok(())
        }
        "legacy" => {
            let first: Vec<&str> = match legacy {
                Some(l) if !l.order_first.is_empty() || !l.order_last.is_empty() => {
                    l.order_first.iter().map(String::as_str).collect()
                }
                _ => FIRST.to_vec(),
            };
            let last: Vec<&str> = match legacy {
                Some(l) if !l.order_first.is_empty() || !l.order_last.is_empty() => {
                    l.order_last.iter().map(String::as_str).collect()
                }
                _ => LAST.to_vec(),
            };
            let rank = |kind: &str| -> i64 {
                if let Some(i) = first.iter().position(|k| *k == kind) {
                    i as i64 - first.len() as i64
                } else if let Some(i) = last.iter().position(|k| *k == kind) {
                    1 + i as i64
                } else {
                    0
                }
            };
            items.sort_by(|a, b| {
                let (ga, gb) = (a.gvk(), b.gvk());
                if ga != gb {
                    let by_rank = rank(&ga.kind).cmp(&rank(&gb.kind));
                    if by_rank.is_ne() {
                        return by_rank;
                    }
                    let by_gvk = gvk_string(&ga).cmp(&gvk_string(&gb));
                    // kustomize sorts core Namespaces after others of the same name.
                    if ga.kind == "Namespace"
                        && gb.kind == "Namespace"
                        && (ga.group.is_empty() || gb.group.is_empty())
                    {
                        return by_gvk.reverse();
                    }
                    return by_gvk;
                }
                id_string(a).cmp(&id_string(b))
            });
            Ok(())
        }
        other => Err(RenderError::field(
            kfile,
            "sortOptions",
            format!("unknown order {other:?}: legacy or fifo"),
        )),
    }
}

/// kustomize compares ids by their string form after the kind order.
fn gvk_string(gvk: &super::resource::Gvk) -> String {
    let or = |s: &str, empty: &str| {
        if s.is_empty() {
            empty.to_string()
        } else {
            s.to_string()
        }
    };
    format!(
        "{}_{}_{}",
        or(&gvk.group, "~G"),
        or(&gvk.version, "~V"),
        or(&gvk.kind, "~K")
    )
}

fn id_string(r: &Resource) -> String {
    let gvk = r.gvk();
    let or = |s: &str, empty: &str| {
        if s.is_empty() {
            empty.to_string()
        } else {
            s.to_string()
        }
    };
    format!(
        "{}_{}_{}|{}|{}",
        or(&gvk.kind, "~K"),
        or(&gvk.version, "~V"),
        or(&gvk.group, "[noGrp]"),
        or(r.namespace(), "~X"),
        or(r.name(), "~N")
    )
}
