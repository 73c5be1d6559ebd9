//! Typed readers for the fields of a rendered job configuration; each error names the
//! variable, the value and what was expected.

use serde_json::{Map, Value};

use crate::template::error::TemplateError;

/// Maximum length, in characters, of a value quoted in an error message. Longer values are cut.
const MAX_QUOTED_VALUE: usize = 120;

/// Quotes a value for an error message, cut to [`MAX_QUOTED_VALUE`] characters.
pub fn quote(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= MAX_QUOTED_VALUE {
        return text;
    }
    let cut: String = text.chars().take(MAX_QUOTED_VALUE).collect();
    format!("{cut}...")
}

/// Builds the wrong-type error for `variable`.
pub fn invalid(variable: &str, value: &Value, expected: &str) -> TemplateError {
    TemplateError::InvalidVariable {
        variable: variable.to_string(),
        value: quote(value),
        expected: expected.to_string(),
    }
}

/// Puts `parent.` in front of the variable an error names, for fields of nested objects.
pub fn prefixed(parent: &str, error: TemplateError) -> TemplateError {
    match error {
        TemplateError::InvalidVariable {
            variable,
            value,
            expected,
        } => TemplateError::InvalidVariable {
            variable: format!("{parent}.{variable}"),
            value,
            expected,
        },
        TemplateError::MissingVariable { variable, hint } => TemplateError::MissingVariable {
            variable: format!("{parent}.{variable}"),
            hint,
        },
        other => other,
    }
}

/// Reader over the rendered configuration object.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Self { map }
    }

    /// Returns the value of `name`, with null treated as absent.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, TemplateError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(invalid(name, other, "a string")),
        }
    }

    /// Reads a required, non-empty string. `hint` describes how to set it.
    pub fn required_string(&self, name: &str, hint: &str) -> Result<String, TemplateError> {
        match self.string(name)? {
            Some(text) if !text.trim().is_empty() => Ok(text),
            _ => Err(TemplateError::MissingVariable {
                variable: name.to_string(),
                hint: hint.to_string(),
            }),
        }
    }

    /// Reads a number; numeric strings are accepted as pydantic's lax mode accepts them.
    pub fn number(&self, name: &str, default: f64) -> Result<f64, TemplateError> {
        let Some(value) = self.get(name) else {
            return Ok(default);
        };
        let parsed = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(text) => text.trim().parse::<f64>().ok(),
            _ => None,
        };
        parsed
            .filter(|n| n.is_finite())
            .ok_or_else(|| invalid(name, value, "a number"))
    }

    /// Reads a whole number; integral floats and numeric strings are accepted.
    pub fn integer(&self, name: &str) -> Result<Option<i64>, TemplateError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let parsed = match value {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                    .map(|f| f as i64)
            }),
            Value::String(text) => text.trim().parse::<i64>().ok(),
            _ => None,
        };
        parsed
            .map(Some)
            .ok_or_else(|| invalid(name, value, "an integer"))
    }

    /// Reads a boolean; `"true"`/`"false"` (any case) are accepted as pydantic accepts them.
    pub fn boolean(&self, name: &str, default: bool) -> Result<bool, TemplateError> {
        let Some(value) = self.get(name) else {
            return Ok(default);
        };
        match value {
            Value::Bool(b) => Ok(*b),
            Value::String(text) if text.eq_ignore_ascii_case("true") => Ok(true),
            Value::String(text) if text.eq_ignore_ascii_case("false") => Ok(false),
            other => Err(invalid(name, other, "true or false")),
        }
    }

    /// Reads a list of strings; absent or null gives an empty list.
    pub fn string_list(&self, name: &str) -> Result<Vec<String>, TemplateError> {
        let Some(value) = self.get(name) else {
            return Ok(Vec::new());
        };
        let Value::Array(items) = value else {
            return Err(invalid(name, value, "a list of strings"));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(text) => Ok(text.clone()),
                other => Err(invalid(&format!("{name}[{i}]"), other, "a string")),
            })
            .collect()
    }

    /// Reads an object; absent or null gives `None`.
    pub fn object(&self, name: &str) -> Result<Option<&'a Map<String, Value>>, TemplateError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(other) => Err(invalid(name, other, "an object")),
        }
    }
}
