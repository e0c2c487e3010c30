//! Where a strategic merge is in the schema: which lists merge by key, and with which
//! keys. A thin view over the generated table in `merge_keys.rs`.
//!
//! kyaml walks its OpenAPI document alongside the documents; a field the document does
//! not know has no schema, and a list without schema is replaced whole. Types with no
//! merge list below them are collapsed into `Opaque` by the generator: their fields
//! have a schema, but nothing under them merges by key.

use super::merge_keys::{KINDS, OPAQUE, TYPES};

/// A position in the schema.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Node {
    /// A schema is present, but no list at or under it merges by key.
    Opaque,
    /// An object type with a merge list somewhere under it: an index into `TYPES`.
    Object(u16),
    /// A list whose patch strategy includes `merge`, with its merge keys (empty for a
    /// list of scalars merged as a set) and the schema of its elements.
    List {
        keys: &'static [&'static str],
        items: &'static Node,
    },
}

/// One named field of an object type; `*` stands for the values of a map.
#[derive(Debug)]
pub(crate) struct Field {
    pub name: &'static str,
    pub node: Node,
}

/// The schema of a built-in kind, as kyaml's `SchemaForResourceType` finds it.
pub(crate) fn for_kind(api_version: &str, kind: &str) -> Option<Node> {
    let i = KINDS
        .binary_search_by(|(v, k, _)| (*v, *k).cmp(&(api_version, kind)))
        .ok()?;
    let ty = KINDS[i].2;
    Some(if ty == OPAQUE {
        Node::Opaque
    } else {
        Node::Object(ty)
    })
}

impl Node {
    /// The schema of field `name` of a map at this position: a known property, else
    /// the map's value type, else none.
    pub(crate) fn field(self, name: &str) -> Option<Node> {
        match self {
            Node::Opaque => Some(Node::Opaque),
            Node::List { .. } => None,
            Node::Object(ty) => {
                let fields = TYPES.get(usize::from(ty))?;
                fields
                    .iter()
                    .find(|f| f.name == name)
                    .or_else(|| fields.iter().find(|f| f.name == "*"))
                    .map(|f| f.node)
            }
        }
    }

    /// The merge keys when this is a list that merges by key (kyaml's
    /// "associative" list).
    pub(crate) fn merge_keys(self) -> Option<&'static [&'static str]> {
        match self {
            Node::List { keys, .. } => Some(keys),
            _ => None,
        }
    }

    /// The schema of the elements of a merge list.
    pub(crate) fn elements(self) -> Option<Node> {
        match self {
            Node::List { items, .. } => Some(*items),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_merge_by_name_and_ports_by_port_and_protocol() {
        let deploy = for_kind("apps/v1", "Deployment").unwrap();
        let pod = deploy
            .field("spec")
            .and_then(|n| n.field("template"))
            .and_then(|n| n.field("spec"))
            .unwrap();
        let containers = pod.field("containers").unwrap();
        assert_eq!(containers.merge_keys(), Some(&["name"][..]));
        let ports = containers.elements().unwrap().field("ports").unwrap();
        assert_eq!(ports.merge_keys(), Some(&["containerPort", "protocol"][..]));
        // args is a plain list: replaced whole.
        let args = containers.elements().unwrap().field("args").unwrap();
        assert!(args.merge_keys().is_none());
        // An unknown field has no schema at all.
        assert!(pod.field("noSuchField").is_none());
    }

    #[test]
    fn finalizers_merge_as_a_set_and_custom_kinds_have_no_schema() {
        let meta = for_kind("v1", "ConfigMap")
            .unwrap()
            .field("metadata")
            .unwrap();
        assert_eq!(
            meta.field("finalizers").unwrap().merge_keys(),
            Some(&[][..])
        );
        assert!(for_kind("example.com/v1", "Widget").is_none());
    }
}
