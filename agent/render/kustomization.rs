//! The kustomization file: its fields, as kustomize v5 reads them, and the refusals.
//!
//! In: one parsed YAML document. Out: a [`Kustomization`] whose every field is one
//! hawser renders. Unknown fields are an error, as in kustomize; fields hawser does not
//! render (`vars`, `helmCharts`, plugins, `openapi`, …) are refused by name rather
//! than ignored, because ignoring them would apply something else than the author
//! meant.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::RenderError;

/// `kind: Kustomization` or `kind: Component`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Kustomization,
    Component,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Kustomization {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    /// Accepted and unused, as in kustomize.
    #[allow(dead_code)]
    metadata: Option<Value>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub bases: Vec<String>,
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub name_prefix: String,
    #[serde(default)]
    pub name_suffix: String,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: Vec<Label>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub images: Vec<Image>,
    /// Deprecated spelling of `images`.
    #[serde(default)]
    pub image_tags: Vec<Image>,
    #[serde(default)]
    pub replicas: Vec<Replica>,
    #[serde(default)]
    pub patches: Vec<Patch>,
    #[serde(default)]
    pub patches_strategic_merge: Vec<String>,
    #[serde(default)]
    pub patches_json6902: Vec<Patch>,
    #[serde(default)]
    pub config_map_generator: Vec<GeneratorArgs>,
    #[serde(default)]
    pub secret_generator: Vec<GeneratorArgs>,
    pub generator_options: Option<GeneratorOptions>,
    #[serde(default)]
    pub configurations: Vec<String>,
    #[serde(default)]
    pub transformers: Vec<String>,
    #[serde(default)]
    pub replacements: Vec<Value>,
    pub sort_options: Option<SortOptions>,

    // Refused: present only so that the refusal can name them.
    vars: Option<Value>,
    helm_charts: Option<Value>,
    helm_globals: Option<Value>,
    helm_chart_inflation_generator: Option<Value>,
    generators: Option<Value>,
    validators: Option<Value>,
    openapi: Option<Value>,
    crds: Option<Value>,
    build_metadata: Option<Value>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Label {
    #[serde(default)]
    pub pairs: BTreeMap<String, String>,
    #[serde(default)]
    pub include_selectors: bool,
    #[serde(default)]
    pub include_templates: bool,
    #[serde(default)]
    pub fields: Vec<Value>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Image {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub new_name: String,
    #[serde(default)]
    pub new_tag: String,
    #[serde(default)]
    pub digest: String,
    #[serde(default)]
    pub tag_suffix: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replica {
    #[serde(default)]
    pub name: String,
    pub count: i64,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub patch: String,
    pub target: Option<Selector>,
    pub options: Option<BTreeMap<String, bool>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selector {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub label_selector: String,
    #[serde(default)]
    pub annotation_selector: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GeneratorArgs {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub behavior: String,
    #[serde(default)]
    pub literals: Vec<String>,
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub envs: Vec<String>,
    #[serde(default)]
    pub env: String,
    pub options: Option<GeneratorOptions>,
    /// Secrets only.
    #[serde(default, rename = "type")]
    pub kind: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GeneratorOptions {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub disable_name_suffix_hash: Option<bool>,
    pub immutable: Option<bool>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SortOptions {
    #[serde(default)]
    pub order: String,
    pub legacy_sort_options: Option<LegacySortOptions>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LegacySortOptions {
    #[serde(default)]
    pub order_first: Vec<String>,
    #[serde(default)]
    pub order_last: Vec<String>,
}

const API_VERSIONS: &[&str] = &[
    "kustomize.config.k8s.io/v1beta1",
    "kustomize.config.k8s.io/v1alpha1",
];

impl Kustomization {
    /// Reads and checks one kustomization document; `file` names it in errors.
    pub fn parse(value: Value, file: &str) -> Result<(Self, FileKind), RenderError> {
        if !value.is_object() {
            return Err(RenderError::file(file, "a kustomization must be a mapping"));
        }
        let mut k: Kustomization = serde_json::from_value(value)
            // serde quotes unknown keys as written; a key holding a newline must not
            // break the error's one line.
            .map_err(|e| {
                let e = e.to_string().replace('\n', "\\n");
                RenderError::file(file, format!("invalid kustomization: {e}"))
            })?;
        let refused: [(&str, bool, &str); 9] = [
            (
                "vars",
                k.vars.is_some(),
                "vars are not rendered; use replacements",
            ),
            (
                "helmCharts",
                k.helm_charts.is_some(),
                "Helm charts are not rendered",
            ),
            (
                "helmGlobals",
                k.helm_globals.is_some(),
                "Helm charts are not rendered",
            ),
            (
                "helmChartInflationGenerator",
                k.helm_chart_inflation_generator.is_some(),
                "Helm charts are not rendered",
            ),
            (
                "generators",
                k.generators.is_some(),
                "generator plugins are refused",
            ),
            (
                "validators",
                k.validators.is_some(),
                "validator plugins are refused",
            ),
            (
                "openapi",
                k.openapi.is_some(),
                "custom OpenAPI schemas are refused",
            ),
            (
                "crds",
                k.crds.is_some(),
                "crds (CRD-driven field specs) are not rendered",
            ),
            (
                "buildMetadata",
                k.build_metadata.is_some(),
                "buildMetadata is not rendered",
            ),
        ];
        if let Some((field, _, reason)) = refused.iter().find(|(_, present, _)| *present) {
            return Err(RenderError::field(file, field, (*reason).to_string()));
        }
        if let Some(version) = &k.api_version
            && !API_VERSIONS.contains(&version.as_str())
        {
            return Err(RenderError::field(
                file,
                "apiVersion",
                format!("{version:?} is not a kustomization apiVersion"),
            ));
        }
        let kind = match k.kind.as_deref() {
            None | Some("") | Some("Kustomization") => FileKind::Kustomization,
            Some("Component") => FileKind::Component,
            Some(other) => {
                return Err(RenderError::field(
                    file,
                    "kind",
                    format!("{other:?} is neither Kustomization nor Component"),
                ));
            }
        };
        // Deprecated spellings, merged as kustomize's `FixKustomization` does.
        let bases = std::mem::take(&mut k.bases);
        k.resources.extend(bases);
        let tags = std::mem::take(&mut k.image_tags);
        k.images.extend(tags);
        Ok((k, kind))
    }
}

/// Whether a resource entry names a remote base (git or HTTP), which is refused.
pub fn is_remote(path: &str) -> bool {
    path.contains("://")
        || path.starts_with("git@")
        || path.starts_with("github.com/")
        || path.starts_with("gitlab.com/")
        || path.starts_with("bitbucket.org/")
        || path.contains("?ref=")
        || path.contains(".git//")
}
