//! SOPS's dotenv form: `KEY=VALUE` lines (`\n` escapes newlines), `#` comments, and
//! the metadata flattened into `sops_…` keys (`sops_age__list_0__map_recipient`), as
//! sops's `stores/dotenv` and `stores/flatten.go` write them.
//!
//! In: the file's text. Out: one mapping, the entries in file order and the
//! metadata rebuilt under `sops`. What can go wrong: a line without `=`, or a
//! flattened key that does not describe a tree; the reason names the line number.

use super::tree::Node;

const MAP: &str = "__map_";
const LIST: &str = "__list_";

pub fn parse(text: &str) -> Result<Node, String> {
    let mut items = Vec::new();
    let mut sops = Node::Map(Vec::new());
    for (i, line) in text.split('\n').enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: not KEY=VALUE", i + 1))?;
        let value = Node::Str(value.replace("\\n", "\n"));
        match key.strip_prefix("sops_") {
            Some(flat) => insert(&mut sops, flat, value)
                .ok_or_else(|| format!("line {}: malformed sops metadata key", i + 1))?,
            None => items.push((key.to_string(), value)),
        }
    }
    items.push(("sops".to_string(), sops));
    Ok(Node::Map(items))
}

/// Inserts `value` at the flattened path `flat` (its first token a map key).
fn insert(node: &mut Node, flat: &str, value: Node) -> Option<()> {
    let (token, rest) = split(flat);
    let rest_token = rest.map(|r| (r.starts_with(LIST), r));
    let Node::Map(items) = node else {
        return None;
    };
    let pos = match items.iter().position(|(k, _)| k == token) {
        Some(p) => p,
        None => {
            let fresh = match rest_token {
                None => value.clone(),
                Some((true, _)) => Node::Seq(Vec::new()),
                Some((false, _)) => Node::Map(Vec::new()),
            };
            items.push((token.to_string(), fresh));
            if rest_token.is_none() {
                return Some(());
            }
            items.len() - 1
        }
    };
    match rest_token {
        None => None, // the same key twice
        Some((_, rest)) => descend(&mut items[pos].1, rest, value),
    }
}

/// `rest` starts with `__map_` or `__list_`.
fn descend(node: &mut Node, rest: &str, value: Node) -> Option<()> {
    if let Some(after) = rest.strip_prefix(MAP) {
        return insert(node, after, value);
    }
    let after = rest.strip_prefix(LIST)?;
    let (index, more) = split(after);
    let index: usize = index.parse().ok()?;
    let Node::Seq(items) = node else {
        return None;
    };
    if index > items.len() {
        return None;
    }
    if index == items.len() {
        let Some(m) = more else {
            items.push(value);
            return Some(());
        };
        items.push(if m.starts_with(LIST) {
            Node::Seq(Vec::new())
        } else {
            Node::Map(Vec::new())
        });
    }
    match more {
        None => None,
        Some(m) => descend(&mut items[index], m, value),
    }
}

/// The first token of a flattened path, and what follows it (starting with a
/// separator), if anything.
fn split(flat: &str) -> (&str, Option<&str>) {
    let next = [flat.find(MAP), flat.find(LIST)]
        .into_iter()
        .flatten()
        .min();
    match next {
        Some(i) => (&flat[..i], Some(&flat[i..])),
        None => (flat, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_unflattened() {
        let text = "# c\nA=ENC[x]\nsops_age__list_0__map_recipient=age1a\nsops_age__list_0__map_enc=one\\ntwo\nsops_age__list_1__map_recipient=age1b\nsops_mac=m\n";
        let node = parse(text).unwrap();
        assert_eq!(node.get("A"), Some(&Node::Str("ENC[x]".into())));
        let sops = node.get("sops").unwrap();
        let Some(Node::Seq(age)) = sops.get("age") else {
            panic!("{sops:?}")
        };
        assert_eq!(age.len(), 2);
        assert_eq!(age[0].get("enc"), Some(&Node::Str("one\ntwo".into())));
        assert_eq!(age[1].get("recipient"), Some(&Node::Str("age1b".into())));
        assert_eq!(sops.get("mac"), Some(&Node::Str("m".into())));
    }

    #[test]
    fn broken_lines_are_refused() {
        assert!(parse("NOEQUALS\n").unwrap_err().contains("line 1"));
        assert!(parse("sops_age__list_3__map_x=1\n").is_err());
    }
}
