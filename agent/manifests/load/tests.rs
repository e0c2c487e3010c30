use std::path::PathBuf;

use super::*;

/// A throwaway directory tree: (path, contents) pairs.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    dir
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";

fn files_of(loaded: &Loaded) -> Vec<String> {
    loaded
        .documents
        .iter()
        .map(|d| format!("{}#{}", d.location.file, d.location.document))
        .collect()
}

#[test]
fn loads_manifest_files_recursively_in_sorted_order() {
    let dir = tree(&[
        ("b.yaml", CM),
        ("a/z.yml", &format!("{CM}---\n{CM}")),
        ("a/m.json", "{\"kind\": \"x\"}"),
        ("c.txt", CM),
        ("README.md", "# hi"),
        ("yaml", CM),
        (".github/workflows/ci.yml", "on: push\n"),
        (".hidden.yaml", CM),
    ]);
    let loaded = load(dir.path(), None, &ParseLimits::default()).unwrap();
    assert_eq!(
        files_of(&loaded),
        ["a/m.json#1", "a/z.yml#1", "a/z.yml#2", "b.yaml#1"]
    );
    assert_eq!(loaded.files, 3);
    assert!(loaded.warnings.is_empty());
    assert_eq!(loaded.documents[2].location.line, Some(6));
}

#[test]
fn a_subpath_limits_the_walk_and_keeps_root_relative_names() {
    let dir = tree(&[
        ("clusters/edge/a.yaml", CM),
        ("clusters/other/a.yaml", CM),
        ("x.yaml", CM),
    ]);
    let loaded = load(
        dir.path(),
        Some(Path::new("clusters/edge")),
        &ParseLimits::default(),
    )
    .unwrap();
    assert_eq!(files_of(&loaded), ["clusters/edge/a.yaml#1"]);
    let loaded = load(
        dir.path(),
        Some(Path::new("./clusters/edge/")),
        &ParseLimits::default(),
    )
    .unwrap();
    assert_eq!(files_of(&loaded), ["clusters/edge/a.yaml#1"]);
}

#[test]
fn a_subpath_must_stay_inside_the_root() {
    let dir = tree(&[("clusters/edge/a.yaml", CM)]);
    for bad in ["../x", "clusters/../../x", "/etc"] {
        let err = load(dir.path(), Some(Path::new(bad)), &ParseLimits::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{bad}: --path must be a relative path inside the directory")
        );
    }
    let err = load(
        dir.path(),
        Some(Path::new("clusters/edge/a.yaml")),
        &ParseLimits::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "clusters/edge/a.yaml: not a directory (symlinks are not followed)"
    );
    let err = load(dir.path(), Some(Path::new("nope")), &ParseLimits::default()).unwrap_err();
    assert!(err.to_string().starts_with("cannot read nope"), "{err}");
}

#[test]
fn hawserignore_excludes_paths_at_every_level() {
    let dir = tree(&[
        (
            ".hawserignore",
            "# drafts\ndrafts/\n*.json\n!keep.json\n/top.yaml\n",
        ),
        ("top.yaml", CM),
        ("apps/top.yaml", CM),
        ("apps/drafts/a.yaml", CM),
        ("apps/x.json", "{}"),
        ("apps/keep.json", "{}"),
        ("apps/.hawserignore", "local-*.yaml\n"),
        ("apps/local-1.yaml", CM),
        ("local-2.yaml", CM),
    ]);
    let loaded = load(dir.path(), None, &ParseLimits::default()).unwrap();
    assert_eq!(
        files_of(&loaded),
        ["apps/keep.json#1", "apps/top.yaml#1", "local-2.yaml#1"]
    );
    // Ignore files above the subpath apply too.
    let loaded = load(dir.path(), Some(Path::new("apps")), &ParseLimits::default()).unwrap();
    assert_eq!(files_of(&loaded), ["apps/keep.json#1", "apps/top.yaml#1"]);
}

#[test]
fn kustomizations_are_skipped_or_rejected_when_alone() {
    let dir = tree(&[
        ("base/kustomization.yaml", "resources: [cm.yaml]\n"),
        ("base/cm.yaml", CM),
    ]);
    let loaded = load(dir.path(), None, &ParseLimits::default()).unwrap();
    assert_eq!(files_of(&loaded), ["base/cm.yaml#1"]);
    assert_eq!(
        loaded.warnings,
        [
            "base/kustomization.yaml: skipped: kustomizations are not rendered; the other files here are applied as they are"
        ]
    );

    let dir = tree(&[(
        "overlays/prod/kustomization.yaml",
        "resources: [../../base]\n",
    )]);
    let err = load(dir.path(), None, &ParseLimits::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "overlays/prod: only a kustomization is here, and kustomizations are not rendered; commit the output of `kustomize build` instead"
    );
    let dir = tree(&[("kustomization.yml", "resources: []\n")]);
    let err = load(dir.path(), None, &ParseLimits::default()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(".: only a kustomization is here"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn symlinks_are_not_followed() {
    let outside = tree(&[("secret.yaml", CM)]);
    let dir = tree(&[("a.yaml", CM)]);
    std::os::unix::fs::symlink(
        outside.path().join("secret.yaml"),
        dir.path().join("link.yaml"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("linkdir")).unwrap();
    let loaded = load(dir.path(), None, &ParseLimits::default()).unwrap();
    assert_eq!(files_of(&loaded), ["a.yaml#1"]);
    assert_eq!(
        loaded.warnings,
        [
            "link.yaml: skipped: symlinks are not followed",
            "linkdir: skipped: symlinks are not followed"
        ]
    );
}

#[test]
fn file_and_total_sizes_are_bounded() {
    let dir = tree(&[("a.yaml", CM), ("b.yaml", CM)]);
    let limits = ParseLimits {
        max_file_bytes: 10,
        ..ParseLimits::default()
    };
    assert_eq!(
        load_dir(dir.path(), None, &limits).unwrap_err().to_string(),
        format!(
            "a.yaml: file is {} bytes, larger than the limit of 10 bytes",
            CM.len()
        )
    );
    let limits = ParseLimits {
        max_total_bytes: CM.len() as u64 + 1,
        ..ParseLimits::default()
    };
    assert_eq!(
        load_dir(dir.path(), None, &limits).unwrap_err().to_string(),
        format!(
            "b.yaml: manifests total more than the limit of {} bytes",
            CM.len() + 1
        )
    );
    let limits = ParseLimits {
        max_files: 1,
        ..ParseLimits::default()
    };
    assert_eq!(
        load_dir(dir.path(), None, &limits).unwrap_err().to_string(),
        "b.yaml: more than 1 manifest files"
    );
}

#[test]
fn non_utf8_files_are_rejected() {
    let dir = tree(&[]);
    fs::write(dir.path().join("a.yaml"), b"a: \xff\n").unwrap();
    assert_eq!(
        load_dir(dir.path(), None, &ParseLimits::default())
            .unwrap_err()
            .to_string(),
        "a.yaml: file is not valid UTF-8"
    );
}

#[test]
fn the_root_must_be_a_directory() {
    let dir = tree(&[("a.yaml", CM)]);
    let file: PathBuf = dir.path().join("a.yaml");
    let err = load_dir(&file, None, &ParseLimits::default()).unwrap_err();
    assert!(
        err.to_string().ends_with("a.yaml: not a directory"),
        "{err}"
    );
}

#[test]
fn names_with_control_characters_are_skipped() {
    let dir = tree(&[("a.yaml", CM), ("b\nc.yaml", CM)]);
    let loaded = load(dir.path(), None, &ParseLimits::default()).unwrap();
    assert_eq!(files_of(&loaded), ["a.yaml#1"]);
    assert_eq!(
        loaded.warnings,
        [".: skipped \"b\\nc.yaml\": the name contains control characters"]
    );
}

#[test]
fn directory_depth_is_bounded() {
    let deep = vec!["d"; MAX_DIR_DEPTH + 1].join("/");
    let dir = tree(&[(&format!("{deep}/a.yaml"), CM)]);
    let err = load_dir(dir.path(), None, &ParseLimits::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{deep}: directories nest more than {MAX_DIR_DEPTH} deep")
    );
    let ok = vec!["d"; MAX_DIR_DEPTH].join("/");
    let dir = tree(&[(&format!("{ok}/a.yaml"), CM)]);
    assert_eq!(
        load_dir(dir.path(), None, &ParseLimits::default())
            .unwrap()
            .len(),
        1
    );
}
