//! One kustomization, built as `kustomize build` builds it.
//!
//! Per level (`api/internal/target/kusttarget.go`): resources (files, and
//! directories built as their own levels) → `configurations` → generators →
//! components (which work on this level's objects) → the built-in transformers
//! (patchesStrategicMerge, patches, namespace, prefix, suffix, labels, annotations,
//! patchesJson6902, replicas, images, replacements) → `transformers:`. Only at the
//! root, afterwards: hash suffixes, name references, dropping local-config objects,
//! and the output order.
//!
//! What can go wrong is a [`RenderError`] naming the kustomization file and field:
//! refused fields, paths outside the revision, cycles, components nested too deep, two
//! objects with the same id.

use serde_json::Value;

use crate::manifests::yaml::{Dialect, Parser};
use crate::manifests::{Document, Location, ParseLimits};

use super::behavior::absorb_generated;
use super::fieldspec::{Config, FieldSpec};
use super::files::{Files, Kind, is_within, parent};
use super::generate::{GenKind, generate, hash_suffix};
use super::kustomization::{FileKind, Kustomization, Patch, is_remote};
use super::resource::{ResMap, Resource};
use super::{RenderError, nameref, order, patches, replace, transform, transformers};

/// How deep kustomizations may include one another (resources and components).
pub const MAX_DEPTH: usize = 32;
/// How deep components may nest in components.
pub const MAX_COMPONENT_DEPTH: usize = 8;

/// One level's objects and the field specs its transformers use.
#[derive(Debug, Default)]
pub struct Level {
    pub res: ResMap,
    pub config: Config,
}

pub struct Builder<'a> {
    pub files: Files<'a>,
    builtin: Config,
    parser: Parser<'a>,
    /// Directories being built, outermost first: a directory met again is a cycle.
    stack: Vec<String>,
    components: usize,
}

impl<'a> Builder<'a> {
    pub fn new(root: &std::path::Path, limits: &'a ParseLimits) -> Result<Self, RenderError> {
        Ok(Self {
            files: Files::new(root, limits),
            builtin: Config::builtin().map_err(|e| RenderError::file("fieldspecs.yaml", e))?,
            parser: Parser::new(limits),
            stack: Vec::new(),
            components: 0,
        })
    }

    /// Builds the kustomization in `dir` as the root: the documents `kustomize build`
    /// prints, in its order.
    pub fn root(&mut self, dir: &str) -> Result<Vec<Document>, RenderError> {
        let (kfile, k, kind) = self.load(dir)?;
        if kind == FileKind::Component {
            return Err(RenderError::field(
                &kfile,
                "kind",
                "a Component cannot be built on its own; list it under components".into(),
            ));
        }
        // A level's field specs start empty, as kustomize's accumulator's do: its
        // resources' levels merge theirs in, then its own (below, `configurations`).
        let mut level = Level::default();
        self.stack.push(dir.to_string());
        self.target(dir, &kfile, &k, &mut level)?;
        self.stack.pop();

        // Hash suffixes, then references to every renamed object.
        for r in &mut level.res.items {
            if r.needs_hash {
                let suffix = hash_suffix(&r.value);
                r.store_previous();
                let name = format!("{}-{suffix}", r.name());
                r.set_name(name);
            }
        }
        nameref::fix(&mut level.res.items, &level.config.name_reference)?;
        level.res.items.retain(|r| {
            r.value
                .pointer("/metadata/annotations/config.kubernetes.io~1local-config")
                .and_then(Value::as_str)
                != Some("true")
        });
        let mut items = level.res.items;
        order::sort(&mut items, k.sort_options.as_ref(), &kfile)?;
        Ok(items.into_iter().map(Resource::into_document).collect())
    }

    fn load(&mut self, dir: &str) -> Result<(String, Kustomization, FileKind), RenderError> {
        let Some(kfile) = self.files.kustomization_in(dir)? else {
            return Err(RenderError::file(
                if dir.is_empty() { "." } else { dir },
                "no kustomization.yaml, kustomization.yml or Kustomization here".to_string(),
            ));
        };
        let text = self.files.read_text(&kfile)?;
        let mut docs = self.parser.yaml_as(&text, &kfile, Dialect::Kustomization)?;
        if docs.len() != 1 {
            return Err(RenderError::file(
                &kfile,
                "a kustomization must be one YAML document",
            ));
        }
        let value = docs.remove(0).value;
        let (k, kind) = Kustomization::parse(value, &kfile)?;
        Ok((kfile, k, kind))
    }

    /// Accumulates one kustomization into `level` (a fresh level for a kustomization,
    /// the including level for a component).
    fn target(
        &mut self,
        dir: &str,
        kfile: &str,
        k: &Kustomization,
        level: &mut Level,
    ) -> Result<(), RenderError> {
        if self.stack.len() > MAX_DEPTH {
            return Err(RenderError::field(
                kfile,
                "resources",
                format!("kustomizations nest more than {MAX_DEPTH} deep"),
            ));
        }
        for path in &k.resources {
            self.resource(dir, kfile, path, level)?;
        }
        // kustomize's MakeTransformerConfig: the defaults merged with the files'
        // specs (merged among themselves first), then merged into the level's.
        let mut own = self.builtin.clone();
        if !k.configurations.is_empty() {
            let mut files = Config::default();
            for path in &k.configurations {
                let rel = self.local_file(dir, kfile, "configurations", path)?;
                let text = self.files.read_text(&rel)?;
                for doc in self.parser.yaml(&text, &rel)? {
                    let config: Config = serde_json::from_value(doc.value).map_err(|e| {
                        RenderError::field(kfile, "configurations", format!("{path}: {e}"))
                    })?;
                    files.merge(config);
                }
            }
            own.merge(files);
        }
        level.config.merge(own);
        let decryption = self.files.decryption.clone();
        for (kind, list) in [
            (GenKind::ConfigMap, &k.config_map_generator),
            (GenKind::Secret, &k.secret_generator),
        ] {
            for args in list {
                let generated = generate(
                    &mut self.files,
                    kfile,
                    kind,
                    args,
                    k.generator_options.as_ref(),
                    &decryption,
                )?;
                absorb_generated(&mut level.res, generated, kfile)?;
            }
        }
        for path in &k.components {
            self.component(dir, kfile, path, level)?;
        }
        self.builtins(kfile, k, level)?;
        for entry in &k.transformers {
            transformers::run(self, dir, kfile, entry, level)?;
        }
        Ok(())
    }

    fn builtins(
        &mut self,
        kfile: &str,
        k: &Kustomization,
        level: &mut Level,
    ) -> Result<(), RenderError> {
        for entry in &k.patches_strategic_merge {
            // Each entry is a file or inline text, applied without a target.
            // kustomize tries the entry as a file first, then as inline YAML.
            let dir = parent(kfile);
            let is_file = !entry.contains('\n')
                && self
                    .files
                    .join(dir, entry, kfile, "patchesStrategicMerge")
                    .ok()
                    .and_then(|rel| {
                        self.files
                            .kind(&rel, kfile, "patchesStrategicMerge")
                            .ok()
                            .flatten()
                    })
                    == Some(Kind::File);
            let (path, patch) = if is_file {
                (entry.clone(), String::new())
            } else {
                (String::new(), entry.clone())
            };
            let p = Patch {
                path,
                patch,
                target: None,
                options: None,
            };
            patches::apply(
                &mut self.files,
                &mut level.res,
                kfile,
                "patchesStrategicMerge",
                &p,
            )?;
        }
        for p in &k.patches {
            patches::apply(&mut self.files, &mut level.res, kfile, "patches", p)?;
        }
        let config = &level.config;
        let items = &mut level.res.items;
        if !k.namespace.is_empty() {
            transform::namespace(items, &k.namespace, &config.namespace)?;
        }
        if !k.name_prefix.is_empty() {
            transform::affix(items, &k.name_prefix, true, &config.name_prefix)?;
        }
        if !k.name_suffix.is_empty() {
            transform::affix(items, &k.name_suffix, false, &config.name_suffix)?;
        }
        for label in &k.labels {
            let mut specs: Vec<FieldSpec> = Vec::new();
            for value in &label.fields {
                let spec: FieldSpec = serde_json::from_value(value.clone())
                    .map_err(|e| RenderError::field(kfile, "labels", format!("fields: {e}")))?;
                specs.push(spec);
            }
            add_all(&mut specs, &config.labels);
            if label.include_selectors {
                add_all(&mut specs, &config.common_labels);
            } else {
                if label.include_templates {
                    add_all(&mut specs, &config.template_labels);
                }
                add_all(&mut specs, &[FieldSpec::at("metadata/labels", true)]);
            }
            transform::pairs(items, &label.pairs, &specs)?;
        }
        transform::pairs(items, &k.common_labels, &config.common_labels)?;
        transform::pairs(items, &k.common_annotations, &config.common_annotations)?;
        for p in &k.patches_json6902 {
            patches::apply(&mut self.files, &mut level.res, kfile, "patchesJson6902", p)?;
        }
        let config = &level.config;
        let items = &mut level.res.items;
        transform::replicas(kfile, items, &k.replicas, &config.replicas)?;
        transform::images(items, &k.images, &config.images)?;
        if !k.replacements.is_empty() {
            replace::run(self, parent(kfile), kfile, &k.replacements, level)?;
        }
        Ok(())
    }

    fn resource(
        &mut self,
        dir: &str,
        kfile: &str,
        path: &str,
        level: &mut Level,
    ) -> Result<(), RenderError> {
        if is_remote(path) {
            return Err(RenderError::field(
                kfile,
                "resources",
                format!("{path:?}: remote resources are refused; vendor them into the repository"),
            ));
        }
        let rel = self.files.join(dir, path, kfile, "resources")?;
        match self.files.kind(&rel, kfile, "resources")? {
            Some(Kind::File) => {
                if !is_within(&rel, dir) {
                    return Err(RenderError::field(
                        kfile,
                        "resources",
                        format!(
                            "{path:?}: security; file is not in or below the kustomization's directory"
                        ),
                    ));
                }
                for r in self.read_resources(&rel)? {
                    level.res.append(r)?;
                }
                Ok(())
            }
            Some(Kind::Dir) => {
                let (sub_file, sub, kind) = self.enter(&rel, kfile, "resources", path)?;
                if kind == FileKind::Component {
                    self.stack.pop();
                    return Err(RenderError::field(
                        kfile,
                        "resources",
                        format!("{path:?} is a Component; list it under components"),
                    ));
                }
                let mut sub_level = Level::default();
                self.target(&rel, &sub_file, &sub, &mut sub_level)?;
                self.stack.pop();
                level.res.absorb(sub_level.res)?;
                level.config.merge(sub_level.config);
                Ok(())
            }
            None => Err(RenderError::field(
                kfile,
                "resources",
                format!("{path:?}: no such file or directory"),
            )),
        }
    }

    fn component(
        &mut self,
        dir: &str,
        kfile: &str,
        path: &str,
        level: &mut Level,
    ) -> Result<(), RenderError> {
        if is_remote(path) {
            return Err(RenderError::field(
                kfile,
                "components",
                format!("{path:?}: remote components are refused"),
            ));
        }
        let rel = self.files.join(dir, path, kfile, "components")?;
        if self.files.kind(&rel, kfile, "components")? != Some(Kind::Dir) {
            return Err(RenderError::field(
                kfile,
                "components",
                format!("{path:?}: components must be directories"),
            ));
        }
        self.components += 1;
        if self.components > MAX_COMPONENT_DEPTH {
            return Err(RenderError::field(
                kfile,
                "components",
                format!("{path:?}: components nest more than {MAX_COMPONENT_DEPTH} deep"),
            ));
        }
        let (sub_file, sub, kind) = self.enter(&rel, kfile, "components", path)?;
        if kind != FileKind::Component {
            return Err(RenderError::field(
                kfile,
                "components",
                format!("{path:?}: expected kind 'Component'"),
            ));
        }
        self.target(&rel, &sub_file, &sub, level)?;
        self.stack.pop();
        self.components -= 1;
        Ok(())
    }

    /// Loads the kustomization of a directory about to be built, refusing cycles.
    fn enter(
        &mut self,
        rel: &str,
        kfile: &str,
        field: &str,
        path: &str,
    ) -> Result<(String, Kustomization, FileKind), RenderError> {
        if self.stack.iter().any(|d| d == rel) {
            return Err(RenderError::field(
                kfile,
                field,
                format!(
                    "{path:?}: cycle detected: {} is already being built",
                    shown_dir(rel)
                ),
            ));
        }
        if self.files.kustomization_in(rel)?.is_none() {
            return Err(RenderError::field(
                kfile,
                field,
                format!(
                    "{path:?}: unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in directory"
                ),
            ));
        }
        let loaded = self.load(rel)?;
        self.stack.push(rel.to_string());
        Ok(loaded)
    }

    /// A file a kustomization reads (patch, configuration): inside its directory.
    pub fn local_file(
        &mut self,
        dir: &str,
        kfile: &str,
        field: &str,
        path: &str,
    ) -> Result<String, RenderError> {
        let rel = self.files.join(dir, path, kfile, field)?;
        if !is_within(&rel, dir) {
            return Err(RenderError::field(
                kfile,
                field,
                format!(
                    "{path:?}: security; file is not in or below the kustomization's directory"
                ),
            ));
        }
        match self.files.kind(&rel, kfile, field)? {
            Some(Kind::File) => Ok(rel),
            _ => Err(RenderError::field(
                kfile,
                field,
                format!("{path:?}: no such file"),
            )),
        }
    }

    /// The objects of one resource file; `List`s are flattened as kustomize does.
    fn read_resources(&mut self, rel: &str) -> Result<Vec<Resource>, RenderError> {
        let text = self.files.read_text(rel)?;
        let docs = if rel.ends_with(".json") {
            self.parser.json(&text, rel)?
        } else {
            self.parser.yaml_as(&text, rel, Dialect::Kyaml)?
        };
        let mut out = Vec::new();
        for doc in docs {
            let location = Location {
                file: rel.to_string(),
                document: doc.document,
                line: Some(doc.line),
                item: None,
            };
            if !doc.value.is_object() {
                return Err(RenderError::Resource {
                    location,
                    reason: "document is not a mapping".into(),
                });
            }
            let is_list = doc.value["kind"]
                .as_str()
                .is_some_and(|k| k.ends_with("List"))
                && doc.value.get("items").is_some_and(Value::is_array);
            if is_list {
                if let Some(items) = doc.value.get("items").and_then(Value::as_array) {
                    for (i, item) in items.iter().enumerate() {
                        let location = Location {
                            item: Some(i + 1),
                            ..location.clone()
                        };
                        out.push(Resource::new(item.clone(), location));
                    }
                }
                continue;
            }
            if doc
                .value
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(RenderError::Resource {
                    location,
                    reason: "missing metadata.name".into(),
                });
            }
            out.push(Resource::new(doc.value, location));
        }
        Ok(out)
    }

    pub fn parser(&mut self) -> &mut Parser<'a> {
        &mut self.parser
    }
}

fn add_all(into: &mut Vec<FieldSpec>, from: &[FieldSpec]) {
    for spec in from {
        if !into.contains(spec) {
            into.push(spec.clone());
        }
    }
}

fn shown_dir(rel: &str) -> &str {
    if rel.is_empty() { "." } else { rel }
}
