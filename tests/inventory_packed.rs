//! The inventory parent beyond what plain lines fit in a ConfigMap (1 MiB), against
//! the real API server: the list is stored gzipped in `binaryData`, read back exactly,
//! and the ApplySet label and annotations kubectl reads are what they always were.
//! A parent an earlier hawser wrote (plain `data.inventory`) still loads, and is
//! rewritten in the packed form without keeping the old one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;

use hawser::inventory::{self, Member, Parent};
use support::cluster::{TestNamespace, get_field, kubectl};

/// `n` members whose plain list is ~80 bytes each: 20,000 are over 1 MiB.
fn many(n: usize) -> inventory::Members {
    std::sync::Arc::new(many_plain(n))
}

fn many_plain(n: usize) -> BTreeSet<Member> {
    (0..n)
        .map(|i| Member {
            group: if i % 3 == 0 {
                "apps".into()
            } else {
                String::new()
            },
            version: "v1".into(),
            kind: if i % 3 == 0 {
                "Deployment"
            } else {
                "ConfigMap"
            }
            .into(),
            namespace: Some(format!("tenant-{}", i % 11)),
            name: format!("object-with-a-rather-long-name-{i:06}"),
        })
        .collect()
}

fn plain_lines(members: &BTreeSet<Member>) -> usize {
    members
        .iter()
        .map(|m| serde_json::to_string(m).unwrap().len() + 1)
        .sum()
}

fn field(ns: &str, path: &str) -> Option<String> {
    get_field("configmap", ns, "hawser", path).filter(|v| !v.is_empty())
}

#[tokio::test(flavor = "current_thread")]
async fn a_member_list_over_one_mib_is_stored_packed_and_read_back() {
    let ns = TestNamespace::new("inv-packed");
    let client = hawser::cluster::connect().await.unwrap();
    let parent = Parent {
        namespace: ns.name.clone(),
        name: "hawser".into(),
    };
    let members = many(20_000);
    assert!(
        plain_lines(&members) > 1024 * 1024,
        "the test needs > 1 MiB of names"
    );

    let mut recorded = inventory::read(&client, &parent).await.unwrap();
    assert!(!recorded.exists);
    let wrote = inventory::write(&client, &parent, &mut recorded, &members, Some("{}"))
        .await
        .unwrap();
    assert!(wrote);
    let back = inventory::read(&client, &parent).await.unwrap();
    assert_eq!(back.members.len(), members.len());
    assert!(back.members == members, "the list read back differs");
    assert_eq!(back.status.as_deref(), Some("{}"));

    // What kubectl reads of an ApplySet parent.
    assert_eq!(
        field(&ns.name, r"{.metadata.labels.applyset\.kubernetes\.io/id}").as_deref(),
        Some(parent.id().as_str())
    );
    assert_eq!(
        field(
            &ns.name,
            r"{.metadata.annotations.applyset\.kubernetes\.io/contains-group-kinds}"
        )
        .as_deref(),
        Some("ConfigMap,Deployment.apps")
    );
    let namespaces = field(
        &ns.name,
        r"{.metadata.annotations.applyset\.kubernetes\.io/additional-namespaces}",
    )
    .unwrap();
    assert_eq!(namespaces.split(',').count(), 11, "{namespaces}");
    assert!(
        field(
            &ns.name,
            r"{.metadata.annotations.applyset\.kubernetes\.io/tooling}"
        )
        .unwrap()
        .starts_with("hawser/")
    );
    assert_eq!(
        field(&ns.name, "{.data.inventory}"),
        None,
        "not stored twice"
    );
    assert!(field(&ns.name, r"{.binaryData.inventory\.gz}").is_some());

    // Small again: plain, readable lines, and the packed form is gone.
    let few = many(3);
    let mut recorded = back;
    inventory::write(&client, &parent, &mut recorded, &few, None)
        .await
        .unwrap();
    assert_eq!(
        inventory::read(&client, &parent).await.unwrap().members,
        few
    );
    assert_eq!(field(&ns.name, r"{.binaryData.inventory\.gz}"), None);
    assert!(
        field(&ns.name, "{.data.inventory}")
            .unwrap()
            .contains("object-with-a-rather-long-name-000000")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_parent_an_earlier_hawser_wrote_loads_and_is_rewritten_packed() {
    let ns = TestNamespace::new("inv-upgrade");
    let client = hawser::cluster::connect().await.unwrap();
    let parent = Parent {
        namespace: ns.name.clone(),
        name: "hawser".into(),
    };
    // As hawser 0.1 wrote it: server-side applied by the `hawser` field manager.
    let old = many(2);
    let lines: String = old
        .iter()
        .map(|m| serde_json::to_string(m).unwrap() + "\n")
        .collect();
    let manifest = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "hawser",
            "namespace": ns.name,
            "labels": {"applyset.kubernetes.io/id": parent.id()},
            "annotations": {
                "applyset.kubernetes.io/tooling": "hawser/0.1.0",
                "applyset.kubernetes.io/contains-group-kinds": "ConfigMap",
                "applyset.kubernetes.io/additional-namespaces": "tenant-0,tenant-1",
            },
        },
        "data": {"inventory": lines},
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("parent.json");
    std::fs::write(&file, manifest.to_string()).unwrap();
    kubectl(&[
        "apply",
        "--server-side",
        "--field-manager=hawser",
        "-f",
        file.to_str().unwrap(),
    ]);

    let mut recorded = inventory::read(&client, &parent).await.unwrap();
    assert_eq!(*recorded.members, *old);

    let members = many(20_000);
    inventory::write(&client, &parent, &mut recorded, &members, None)
        .await
        .unwrap();
    assert_eq!(
        field(&ns.name, "{.data.inventory}"),
        None,
        "the old form is removed"
    );
    assert!(inventory::read(&client, &parent).await.unwrap().members == members);
}
