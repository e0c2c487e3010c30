//! `transformers:` entries: builtin transformer configs (`apiVersion: builtin`),
//! from files or inline, run after the kustomization's own transformers. Anything
//! else is a plugin, and refused.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::build::{Builder, Level};
use super::fieldspec::FieldSpec;
use super::kustomization::{Image, Patch, Replica, Selector};
use super::{RenderError, patches, transform};

const FIELD: &str = "transformers";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Builtin {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    field_specs: Vec<FieldSpec>,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    suffix: String,
    image_tag: Option<Image>,
    replica: Option<Replica>,
    #[serde(default)]
    path: String,
    #[serde(default)]
    patch: String,
    target: Option<Selector>,
    options: Option<BTreeMap<String, bool>>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    patches: String,
    #[serde(default)]
    json_op: String,
    #[serde(default)]
    unset_only: bool,
    #[serde(default)]
    replacements: Vec<Value>,
}

/// Runs one entry of `transformers:` on the level.
pub fn run(
    b: &mut Builder<'_>,
    dir: &str,
    kfile: &str,
    entry: &str,
    level: &mut Level,
) -> Result<(), RenderError> {
    let (text, source) = if entry.contains('\n') {
        (entry.to_string(), format!("{kfile} (inline transformer)"))
    } else {
        if super::kustomization::is_remote(entry) {
            return Err(RenderError::field(
                kfile,
                FIELD,
                format!("{entry:?}: remote transformers are refused"),
            ));
        }
        let rel = b.local_file(dir, kfile, FIELD, entry)?;
        (b.files.read_text(&rel)?, rel)
    };
    let docs = b.parser().yaml(&text, &source)?;
    for doc in docs {
        let api_version = doc.value["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = doc.value["kind"].as_str().unwrap_or_default().to_string();
        if api_version != "builtin" {
            return Err(RenderError::field(
                kfile,
                FIELD,
                format!(
                    "{source}: {kind} ({api_version}) is a plugin; only builtin transformer configs are rendered"
                ),
            ));
        }
        let namespace = doc
            .value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let config: Builtin = serde_json::from_value(doc.value)
            .map_err(|e| RenderError::field(kfile, FIELD, format!("{source}: {kind}: {e}")))?;
        let items = &mut level.res.items;
        match kind.as_str() {
            "LabelTransformer" => transform::pairs(items, &config.labels, &config.field_specs)?,
            "AnnotationsTransformer" => {
                transform::pairs(items, &config.annotations, &config.field_specs)?
            }
            "NamespaceTransformer" => {
                if config.unset_only {
                    return Err(RenderError::field(
                        kfile,
                        FIELD,
                        format!("{source}: NamespaceTransformer unsetOnly is not rendered"),
                    ));
                }
                if !namespace.is_empty() {
                    transform::namespace(items, &namespace, &config.field_specs)?;
                }
            }
            "PrefixTransformer" | "SuffixTransformer" | "PrefixSuffixTransformer" => {
                if !config.prefix.is_empty() {
                    transform::affix(items, &config.prefix, true, &config.field_specs)?;
                }
                if !config.suffix.is_empty() {
                    transform::affix(items, &config.suffix, false, &config.field_specs)?;
                }
            }
            "ImageTagTransformer" => {
                let image = config.image_tag.unwrap_or_default();
                transform::images(items, &[image], &config.field_specs)?;
            }
            "ReplicaCountTransformer" => {
                let replica = config.replica.unwrap_or_default();
                transform::replicas(kfile, items, &[replica], &config.field_specs)?;
            }
            "PatchTransformer" | "PatchJson6902Transformer" => {
                let patch = if kind == "PatchJson6902Transformer" && !config.json_op.is_empty() {
                    config.json_op
                } else {
                    config.patch
                };
                let entry = Patch {
                    path: config.path,
                    patch,
                    target: config.target,
                    options: config.options,
                };
                patches::apply(&mut b.files, &mut level.res, kfile, FIELD, &entry)?;
            }
            "PatchStrategicMergeTransformer" => {
                for path in config.paths {
                    let entry = Patch {
                        path,
                        ..Patch::default()
                    };
                    patches::apply(&mut b.files, &mut level.res, kfile, FIELD, &entry)?;
                }
                if !config.patches.trim().is_empty() {
                    let entry = Patch {
                        patch: config.patches,
                        ..Patch::default()
                    };
                    patches::apply(&mut b.files, &mut level.res, kfile, FIELD, &entry)?;
                }
            }
            "ReplacementTransformer" => {
                super::replace::run(b, dir, kfile, &config.replacements, level)?;
            }
            other => {
                return Err(RenderError::field(
                    kfile,
                    FIELD,
                    format!("{source}: builtin {other} is not rendered"),
                ));
            }
        }
    }
    Ok(())
}
