//! Placeholder syntax and the nested-key helpers that Prefect's templating uses.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

/// Prefect's placeholder pattern: `{{ name }}`, where the name may contain word characters,
/// dots, dashes, brackets and `$` (prefect 3.9.1, `prefect.utilities.templating`).
static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(\{\{\s*([\w.\-\[\]$]+)\s*\}\})").expect("placeholder regex compiles")
});

pub const BLOCK_PREFIX: &str = "prefect.blocks.";
pub const VARIABLE_PREFIX: &str = "prefect.variables.";
pub const ENV_PREFIX: char = '$';

/// Kind of value a placeholder refers to, decided by its name's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Standard,
    Block,
    Variable,
    EnvVar,
}

/// One distinct placeholder in a string: the full `{{ ... }}` text and the name inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    pub full_match: String,
    pub name: String,
    pub kind: Kind,
}

fn kind_of(name: &str) -> Kind {
    if name.starts_with(BLOCK_PREFIX) {
        Kind::Block
    } else if name.starts_with(VARIABLE_PREFIX) {
        Kind::Variable
    } else if name.starts_with(ENV_PREFIX) {
        Kind::EnvVar
    } else {
        Kind::Standard
    }
}

/// Returns the distinct placeholders of `text` in order of first appearance.
pub fn find(text: &str) -> Vec<Placeholder> {
    let mut found: Vec<Placeholder> = Vec::new();
    for caps in PLACEHOLDER.captures_iter(text) {
        let full_match = caps[1].to_string();
        if found.iter().any(|p| p.full_match == full_match) {
            continue;
        }
        let name = caps[2].to_string();
        let kind = kind_of(&name);
        found.push(Placeholder {
            full_match,
            name,
            kind,
        });
    }
    found
}

/// Returns the only placeholder of `text` when it is the whole string.
pub fn whole(text: &str) -> Option<Placeholder> {
    let mut found = find(text);
    if found.len() == 1 && found[0].full_match == text {
        found.pop()
    } else {
        None
    }
}

/// Replaces each placeholder occurrence in one pass, so inserted text is never expanded.
/// `replace` returns `None` to keep the occurrence as it is.
pub fn substitute(text: &str, mut replace: impl FnMut(&str) -> Option<String>) -> String {
    PLACEHOLDER
        .replace_all(text, |caps: &regex::Captures<'_>| {
            replace(&caps[1]).unwrap_or_else(|| caps[1].to_string())
        })
        .into_owned()
}

/// Splits a key path as Prefect does: `a.b[0]` becomes `a`, `b`, `0`.
pub fn split_path(path: &str) -> Vec<String> {
    path.replace('[', ".")
        .replace(']', "")
        .split('.')
        .map(str::to_string)
        .collect()
}

/// Parses a path segment as Python's `int()` would for the characters a placeholder may
/// contain: an optional `-`, then digits with single underscores between them.
fn python_int(segment: &str) -> Option<i64> {
    let digits = segment.strip_prefix('-').unwrap_or(segment);
    let valid = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.chars().all(|c| c.is_ascii_digit() || c == '_');
    if !valid {
        return None;
    }
    segment.replace('_', "").parse().ok()
}

/// Resolves a Python-style index (negative counts from the end) into `0..len`.
fn index_into(len: usize, index: i64) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let resolved = if index < 0 { len + index } else { index };
    (0..len).contains(&resolved).then_some(resolved as usize)
}

/// Looks up a dotted path the way Prefect's `get_from_dict` does: keys in objects, integer
/// indexes (negative from the end) in lists and in strings (one character). Returns `None`
/// where Python raises KeyError, IndexError or TypeError.
pub fn get_path(root: &Value, path: &str) -> Option<Value> {
    let mut current = root.clone();
    for segment in split_path(path) {
        current = match current {
            Value::Object(map) => map.get(&segment)?.clone(),
            Value::Array(items) => {
                let at = index_into(items.len(), python_int(&segment)?)?;
                items[at].clone()
            }
            Value::String(text) => {
                let chars: Vec<char> = text.chars().collect();
                let at = index_into(chars.len(), python_int(&segment)?)?;
                Value::String(chars[at].to_string())
            }
            _ => return None,
        };
    }
    Some(current)
}

/// Sets `value` at a dotted key path, creating objects on the way (Prefect's `set_in_dict`).
/// Fails when a step of the path already contains something other than an object.
pub fn set_path(root: &mut Map<String, Value>, path: &str, value: Value) -> Result<(), String> {
    let keys = split_path(path);
    let (last, parents) = keys.split_last().expect("split always yields one key");
    let mut current = root;
    for key in parents {
        let slot = current
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        current = match slot {
            Value::Object(map) => map,
            _ => {
                return Err(format!(
                    "`{key}` already holds a value that is not an object"
                ));
            }
        };
    }
    current.insert(last.clone(), value);
    Ok(())
}

/// Merges `overlay` into `base` recursively: objects merge, anything else replaces.
pub fn deep_merge(base: &Map<String, Value>, overlay: &Map<String, Value>) -> Map<String, Value> {
    let mut result = base.clone();
    for (key, value) in overlay {
        let merged = match (result.get(key), value) {
            (Some(Value::Object(old)), Value::Object(new)) => Value::Object(deep_merge(old, new)),
            _ => value.clone(),
        };
        result.insert(key.clone(), merged);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn find_classifies_names() {
        let found = find("{{ a }} {{$HOME}} {{ prefect.blocks.s.n }} {{ prefect.variables.v }}");
        let kinds: Vec<Kind> = found.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            [Kind::Standard, Kind::EnvVar, Kind::Block, Kind::Variable]
        );
    }

    #[test]
    fn whole_requires_exact_match() {
        assert!(whole("{{ a }}").is_some());
        assert!(whole(" {{ a }}").is_none());
        assert!(whole("{{ a }}{{ a }}").is_none());
    }

    #[test]
    fn get_path_follows_python_rules() {
        let root = json!({"a": {"b": [1, {"c": "xyz"}]}, "2026": 5});
        assert_eq!(get_path(&root, "a.b[0]"), Some(json!(1)));
        assert_eq!(get_path(&root, "a.b[-1].c"), Some(json!("xyz")));
        assert_eq!(get_path(&root, "a.b.1.c.0"), Some(json!("x")));
        assert_eq!(get_path(&root, "2026"), Some(json!(5)));
        assert_eq!(get_path(&root, "a.b[2]"), None);
        assert_eq!(get_path(&root, "a.b.x"), None);
        assert_eq!(get_path(&root, "a.b[0].c"), None);
    }

    #[test]
    fn set_path_rejects_non_object_step() {
        let mut root = Map::new();
        set_path(&mut root, "env.FOO", json!("x")).unwrap();
        assert_eq!(Value::Object(root.clone()), json!({"env": {"FOO": "x"}}));
        assert!(set_path(&mut root, "env.FOO.BAR", json!("y")).is_err());
    }
}
