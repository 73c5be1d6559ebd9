//! Block-document and variable resolution, the two passes Prefect runs after `apply_values`.
//!
//! Each pass first collects the references in the tree, fetches them, then substitutes
//! without IO, so the recursive walk stays synchronous.

use std::collections::HashMap;

use serde_json::Value;

use crate::template::error::TemplateError;
use crate::template::lookup::{BlockDocument, TemplateLookup};
use crate::template::placeholder::{self, BLOCK_PREFIX, Kind, VARIABLE_PREFIX};
use crate::template::pyrepr::python_str;
use crate::template::secrets::SecretValues;

/// Block documents fetched for one render, by id and by `(slug, name)`.
#[derive(Default)]
struct BlockCache {
    by_id: HashMap<String, BlockDocument>,
    by_name: HashMap<(String, String), BlockDocument>,
}

/// Returns the `block_document_id` of a `{"$ref": {"block_document_id": ...}}` object.
fn block_ref_id(map: &serde_json::Map<String, Value>) -> Option<&str> {
    let id = map.get("$ref")?.get("block_document_id")?.as_str()?;
    (!id.is_empty()).then_some(id)
}

/// Splits `prefect.blocks.<slug>.<name>[.<keypath>]` into its three parts.
fn block_parts(name: &str) -> Result<(String, String, Option<String>), TemplateError> {
    let rest = name.replace(BLOCK_PREFIX, "");
    let mut parts = rest.splitn(3, '.');
    let slug = parts.next().unwrap_or_default().to_string();
    let Some(doc_name) = parts.next() else {
        return Err(TemplateError::InvalidBlockPlaceholder(name.to_string()));
    };
    Ok((slug, doc_name.to_string(), parts.next().map(str::to_string)))
}

fn collect_block_refs(value: &Value, ids: &mut Vec<String>, names: &mut Vec<String>) {
    match value {
        Value::Object(map) => match block_ref_id(map) {
            Some(id) => ids.push(id.to_string()),
            None => map.values().for_each(|v| collect_block_refs(v, ids, names)),
        },
        Value::Array(items) => items.iter().for_each(|v| collect_block_refs(v, ids, names)),
        Value::String(text) => names.extend(
            placeholder::find(text)
                .into_iter()
                .filter(|p| p.kind == Kind::Block)
                .map(|p| p.name),
        ),
        _ => {}
    }
}

fn lookup_failed(what: String) -> impl FnOnce(crate::template::LookupError) -> TemplateError {
    move |source| TemplateError::Lookup { what, source }
}

async fn fetch_blocks<L: TemplateLookup>(
    value: &Value,
    lookup: &L,
) -> Result<BlockCache, TemplateError> {
    let (mut ids, mut names) = (Vec::new(), Vec::new());
    collect_block_refs(value, &mut ids, &mut names);
    let mut cache = BlockCache::default();
    for id in ids {
        if cache.by_id.contains_key(&id) {
            continue;
        }
        let what = format!("block document id `{id}`");
        let doc = lookup
            .block_document(&id)
            .await
            .map_err(lookup_failed(what))?;
        let doc = doc.ok_or_else(|| TemplateError::BlockNotFound(format!("id `{id}`")))?;
        cache.by_id.insert(id, doc);
    }
    for name in names {
        let (slug, doc_name, _) = block_parts(&name)?;
        let key = (slug.clone(), doc_name.clone());
        if cache.by_name.contains_key(&key) {
            continue;
        }
        let what = format!("block `{doc_name}` of type `{slug}`");
        let doc = lookup
            .block_document_by_name(&slug, &doc_name)
            .await
            .map_err(lookup_failed(what))?;
        let missing = || TemplateError::BlockNotFound(format!("`{doc_name}` of type `{slug}`"));
        cache.by_name.insert(key, doc.ok_or_else(missing)?);
    }
    Ok(cache)
}

/// Resolves every block reference in `value`, recording the secrets of each block used.
pub async fn resolve_blocks<L: TemplateLookup>(
    value: Value,
    lookup: &L,
    secrets: &mut SecretValues,
) -> Result<Value, TemplateError> {
    let cache = fetch_blocks(&value, lookup).await?;
    substitute_blocks(value, &cache, secrets)
}

fn substitute_blocks(
    value: Value,
    cache: &BlockCache,
    secrets: &mut SecretValues,
) -> Result<Value, TemplateError> {
    match value {
        Value::Object(map) => {
            if let Some(id) = block_ref_id(&map) {
                let doc = &cache.by_id[id];
                secrets.extend(&doc.secret_values());
                return Ok(doc.data.clone());
            }
            let mut out = serde_json::Map::new();
            for (key, item) in map {
                out.insert(key, substitute_blocks(item, cache, secrets)?);
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .into_iter()
            .map(|item| substitute_blocks(item, cache, secrets))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::String(text) => substitute_block_text(text, cache, secrets),
        other => Ok(other),
    }
}

fn substitute_block_text(
    text: String,
    cache: &BlockCache,
    secrets: &mut SecretValues,
) -> Result<Value, TemplateError> {
    let found = placeholder::find(&text);
    if !found.iter().any(|p| p.kind == Kind::Block) {
        return Ok(Value::String(text));
    }
    if let Some(only) = placeholder::whole(&text).filter(|p| p.kind == Kind::Block) {
        return block_value(&only.name, cache, secrets);
    }
    // Prefect substitutes embedded block placeholders one after another with str.replace.
    let mut result = text;
    for p in found.iter().filter(|p| p.kind == Kind::Block) {
        let value = block_value(&p.name, cache, secrets)?;
        if value.is_object() || value.is_array() {
            return Err(TemplateError::BlockNotScalar(p.full_match.clone()));
        }
        result = result.replace(&p.full_match, &python_str(&value));
    }
    Ok(Value::String(result))
}

/// Returns the value a block placeholder names. A block whose data is only `{value: x}`
/// yields `x`, unless the keypath itself starts at `value`.
fn block_value(
    name: &str,
    cache: &BlockCache,
    secrets: &mut SecretValues,
) -> Result<Value, TemplateError> {
    let (slug, doc_name, keypath) = block_parts(name)?;
    let doc = &cache.by_name[&(slug, doc_name)];
    secrets.extend(&doc.secret_values());
    let mut data = &doc.data;
    let only_value = data
        .as_object()
        .is_some_and(|m| m.len() == 1 && m.contains_key("value"));
    let keypath_starts_at_value = keypath
        .as_deref()
        .is_some_and(|k| k == "value" || k.starts_with("value.") || k.starts_with("value["));
    if only_value && !keypath_starts_at_value {
        data = &data["value"];
    }
    let Some(keypath) = keypath else {
        return Ok(data.clone());
    };
    placeholder::get_path(data, &keypath).ok_or_else(|| TemplateError::BlockKeypathNotFound {
        placeholder: name.to_string(),
        keypath,
    })
}

fn collect_variable_names(value: &Value, names: &mut Vec<String>) {
    match value {
        Value::Object(map) => map.values().for_each(|v| collect_variable_names(v, names)),
        Value::Array(items) => items.iter().for_each(|v| collect_variable_names(v, names)),
        Value::String(text) => names.extend(
            placeholder::find(text)
                .into_iter()
                .filter(|p| p.kind == Kind::Variable)
                .map(|p| p.name.replace(VARIABLE_PREFIX, "")),
        ),
        _ => {}
    }
}

/// Resolves `{{ prefect.variables.NAME }}`. A missing variable becomes `""`, whole or
/// embedded, as in Prefect.
pub async fn resolve_variables<L: TemplateLookup>(
    value: Value,
    lookup: &L,
) -> Result<Value, TemplateError> {
    let mut names = Vec::new();
    collect_variable_names(&value, &mut names);
    let mut values: HashMap<String, Option<Value>> = HashMap::new();
    for name in names {
        if values.contains_key(&name) {
            continue;
        }
        let what = format!("variable `{name}`");
        let found = lookup.variable(&name).await.map_err(lookup_failed(what))?;
        values.insert(name, found);
    }
    Ok(substitute_variables(value, &values))
}

fn substitute_variables(value: Value, values: &HashMap<String, Option<Value>>) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, substitute_variables(v, values)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| substitute_variables(v, values))
                .collect(),
        ),
        Value::String(text) => substitute_variable_text(text, values),
        other => other,
    }
}

fn substitute_variable_text(text: String, values: &HashMap<String, Option<Value>>) -> Value {
    let lookup = |name: &str| values[&name.replace(VARIABLE_PREFIX, "")].clone();
    if let Some(only) = placeholder::whole(&text).filter(|p| p.kind == Kind::Variable) {
        return lookup(&only.name).unwrap_or_else(|| Value::String(String::new()));
    }
    let mut result = text.clone();
    for p in placeholder::find(&text)
        .iter()
        .filter(|p| p.kind == Kind::Variable)
    {
        let inserted = lookup(&p.name).map(|v| python_str(&v)).unwrap_or_default();
        result = result.replace(&p.full_match, &inserted);
    }
    Value::String(result)
}
