//! kustomize's built-in transformers other than patches and replacements: namespace,
//! name prefix and suffix, labels, annotations, replicas and images.
//!
//! In: the objects of one kustomization level and the field specs ([`Config`]).
//! Out: the objects changed in place, with renames recorded for name references.
//! What can go wrong: a field spec meeting a scalar where it expects a mapping.

use std::collections::BTreeMap;

use serde_json::Value;

use super::RenderError;
use super::fieldspec::{FieldSpec, Leaf, visit};
use super::kustomization::{Image, Replica};
use super::resource::{Gvk, Resource};
use super::scope::is_cluster_scoped;

fn apply(
    res: &mut Resource,
    gvk: &Gvk,
    spec: &FieldSpec,
    leaf: Leaf,
    set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), RenderError> {
    if !spec.selects(gvk) {
        return Ok(());
    }
    visit(&mut res.value, spec, leaf, set).map_err(|reason| RenderError::Resource {
        location: res.location.clone(),
        reason: format!("{}: {reason}", res.shown()),
    })
}

/// `namespace:` (the NamespaceTransformer with kustomize's defaults: every
/// namespaced object, `Namespace` objects renamed, binding subjects named `default`).
pub fn namespace(items: &mut [Resource], ns: &str, specs: &[FieldSpec]) -> Result<(), RenderError> {
    for res in items.iter_mut() {
        let gvk = res.gvk();
        res.store_previous();
        if !is_cluster_scoped(&gvk)
            && let Some(meta) = res.value.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.insert("namespace".into(), Value::String(ns.to_string()));
        }
        if (gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding")
            && let Some(subjects) = res.value.get_mut("subjects").and_then(Value::as_array_mut)
        {
            for subject in subjects {
                if subject.get("name").and_then(Value::as_str) == Some("default")
                    && let Some(map) = subject.as_object_mut()
                {
                    map.insert("namespace".into(), Value::String(ns.to_string()));
                }
            }
        }
        let api_version = res.value["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for spec in specs {
            if spec.path == "metadata/namespace"
                || (spec.path == "metadata/name" && api_version != "v1")
                || ((gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding")
                    && spec.path == "subjects/namespace")
            {
                continue;
            }
            apply(res, &gvk, spec, Leaf::Scalar, &mut |v| {
                *v = Value::String(ns.to_string());
                Ok(())
            })?;
        }
    }
    let mut seen = std::collections::HashSet::new();
    for res in items.iter() {
        if !seen.insert(res.id()) {
            return Err(RenderError::Resource {
                location: res.location.clone(),
                reason: format!(
                    "namespace transformation produces ID conflict: {}",
                    res.shown()
                ),
            });
        }
    }
    Ok(())
}

/// Kinds whose names never take a prefix or suffix.
fn skips_affix(gvk: &Gvk) -> bool {
    gvk.kind == "CustomResourceDefinition"
        || gvk.kind == "Namespace"
        || (gvk.group == "apiregistration.k8s.io" && gvk.kind == "APIService")
}

/// `namePrefix:` / `nameSuffix:`.
pub fn affix(
    items: &mut [Resource],
    affix: &str,
    prefix: bool,
    specs: &[FieldSpec],
) -> Result<(), RenderError> {
    for res in items {
        if skips_affix(&res.original().gvk) {
            continue;
        }
        let original = res.original().gvk;
        for spec in specs {
            if !spec.selects(&original) {
                continue;
            }
            if spec.path == "metadata/name" {
                if prefix {
                    res.prefixes.push(affix.to_string());
                } else {
                    res.suffixes.push(affix.to_string());
                }
                res.store_previous();
            }
            let gvk = res.gvk();
            apply(res, &gvk, spec, Leaf::Scalar, &mut |v| {
                if let Value::String(s) = v {
                    *s = if prefix {
                        format!("{affix}{s}")
                    } else {
                        format!("{s}{affix}")
                    };
                }
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// Labels or annotations: every pair set on every map the specs reach.
pub fn pairs(
    items: &mut [Resource],
    pairs: &BTreeMap<String, String>,
    specs: &[FieldSpec],
) -> Result<(), RenderError> {
    if pairs.is_empty() {
        return Ok(());
    }
    for res in items {
        let gvk = res.gvk();
        for spec in specs {
            apply(res, &gvk, spec, Leaf::Map, &mut |v| match v {
                Value::Object(map) => {
                    for (k, val) in pairs {
                        map.insert(k.clone(), Value::String(val.clone()));
                    }
                    Ok(())
                }
                _ => Err("expected a mapping".to_string()),
            })?;
        }
    }
    Ok(())
}

/// `replicas:`: objects whose current or earlier name matches get the count.
pub fn replicas(
    kfile: &str,
    items: &mut [Resource],
    replicas: &[Replica],
    specs: &[FieldSpec],
) -> Result<(), RenderError> {
    for replica in replicas {
        let mut found = false;
        for res in items.iter_mut() {
            let named =
                res.name() == replica.name || res.previous.iter().any(|id| id.name == replica.name);
            if !named {
                continue;
            }
            for spec in specs {
                if !spec.selects(&res.gvk()) {
                    continue;
                }
                found = true;
                let gvk = res.gvk();
                apply(res, &gvk, spec, Leaf::Scalar, &mut |v| {
                    *v = Value::from(replica.count);
                    Ok(())
                })?;
            }
        }
        if !found {
            return Err(RenderError::field(
                kfile,
                "replicas",
                format!(
                    "resource with name {} does not match a config with a replicas field",
                    replica.name
                ),
            ));
        }
    }
    Ok(())
}

/// `images:`: image references in the image field specs, and (as kustomize's legacy
/// filter does) in any `containers` or `initContainers` list anywhere in any kind.
pub fn images(
    items: &mut [Resource],
    images: &[Image],
    specs: &[FieldSpec],
) -> Result<(), RenderError> {
    for image in images {
        for res in items.iter_mut() {
            let gvk = res.gvk();
            for spec in specs {
                // The spec paths create nothing here: a missing image stays missing.
                let spec = FieldSpec {
                    create: false,
                    ..spec.clone()
                };
                apply(res, &gvk, &spec, Leaf::Scalar, &mut |v| {
                    update_image(v, image);
                    Ok(())
                })?;
            }
            legacy_containers(&mut res.value, image);
        }
    }
    Ok(())
}

fn legacy_containers(node: &mut Value, image: &Image) {
    match node {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if (key == "containers" || key == "initContainers")
                    && let Value::Array(list) = value
                {
                    for container in list.iter_mut() {
                        if let Some(v) = container.get_mut("image") {
                            update_image(v, image);
                        }
                    }
                }
                legacy_containers(value, image);
            }
        }
        Value::Array(list) => list.iter_mut().for_each(|v| legacy_containers(v, image)),
        _ => {}
    }
}

/// Splits an image reference into name, tag and digest, where a colon before the
/// last slash belongs to a registry port.
pub fn split_image(image: &str) -> (&str, &str, &str) {
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, digest),
        None => (image, ""),
    };
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], &rest[slash + i + 1..], digest),
        None => (rest, "", digest),
    }
}

fn update_image(v: &mut Value, image: &Image) {
    let Value::String(current) = v else {
        return;
    };
    let (name, tag, digest) = split_image(current);
    if name != image.name {
        return;
    }
    let mut name = name.to_string();
    let (mut tag, mut digest) = (tag.to_string(), digest.to_string());
    if !image.new_name.is_empty() {
        name = image.new_name.clone();
    }
    if !image.new_tag.is_empty() && !image.digest.is_empty() {
        tag = image.new_tag.clone();
        digest = image.digest.clone();
    } else if !image.new_tag.is_empty() {
        tag = image.new_tag.clone();
        digest.clear();
    } else if !image.digest.is_empty() {
        tag.clear();
        digest = image.digest.clone();
    }
    if !image.tag_suffix.is_empty() {
        tag.push_str(&image.tag_suffix);
    }
    let mut out = name;
    if !tag.is_empty() {
        out.push(':');
        out.push_str(&tag);
    }
    if !digest.is_empty() {
        out.push('@');
        out.push_str(&digest);
    }
    *current = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_around_registry_ports() {
        assert_eq!(split_image("nginx"), ("nginx", "", ""));
        assert_eq!(split_image("reg:5000/app:1.2"), ("reg:5000/app", "1.2", ""));
        assert_eq!(split_image("app@sha256:ab"), ("app", "", "sha256:ab"));
        assert_eq!(split_image("reg:5000/app"), ("reg:5000/app", "", ""));
    }
}
