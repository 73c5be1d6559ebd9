//! Conversion of a Python-worker pool's `arm_template` into a container group request body.
//!
//! Pools created by the Python worker embed an ARM deployment template whose first
//! container group resource is the flow-run group. This worker sends that resource directly
//! to the container group API, so the few ARM template expressions it uses are evaluated
//! here and any other expression is rejected.

use serde_json::{Map, Value};

use crate::template::error::TemplateError;

/// Resource type of a container group in an ARM template (compared case-insensitively).
const CONTAINER_GROUP_TYPE: &str = "Microsoft.ContainerInstance/containerGroups";
/// Resource keys that describe the container group itself; any other key (such as
/// `dependsOn` or `copy`) needs ARM's deployment engine and is rejected.
const KNOWN_RESOURCE_KEYS: [&str; 9] = [
    "type",
    "apiVersion",
    "name",
    "location",
    "identity",
    "properties",
    "tags",
    "zones",
    "comments",
];
/// Body keys taken from the resource; `name`, `type` and `apiVersion` go in the request URL.
const BODY_KEYS: [&str; 5] = ["location", "identity", "properties", "tags", "zones"];
/// Limit on parameter defaults that refer to other parameters, against reference cycles.
const MAX_PARAMETER_DEPTH: usize = 8;

/// Values the expressions of an `arm_template` may refer to.
#[derive(Debug, Clone)]
pub struct ArmContext<'a> {
    /// Container group name; overrides the `container_group_name` parameter.
    pub group_name: &'a str,
    /// Azure region; overrides the `location` parameter and `resourceGroup().location`.
    pub location: &'a str,
    /// Container name; overrides the `container_name` parameter, so the worker can name the container in log reads.
    pub container_name: &'a str,
    pub resource_group_name: &'a str,
    pub subscription_id: &'a str,
}

/// Returns the container group resource of `template` as a request body (`location`,
/// `identity`, `properties`, `tags`, `zones`), with every ARM expression evaluated.
pub fn container_group_body(
    template: &Value,
    ctx: &ArmContext<'_>,
) -> Result<Map<String, Value>, TemplateError> {
    let resource = find_container_group(template)?;
    if let Some(key) = resource
        .keys()
        .find(|k| !KNOWN_RESOURCE_KEYS.contains(&k.as_str()))
    {
        let message = format!("container group resource key `{key}` is not supported");
        return Err(TemplateError::InvalidArmTemplate(message));
    }
    let evaluator = Evaluator {
        parameters: parameter_values(template, ctx)?,
        ctx,
    };
    let mut body = Map::new();
    for key in BODY_KEYS {
        if let Some(value) = resource.get(key) {
            body.insert(key.to_string(), evaluator.resolve_value(value, 0)?);
        }
    }
    body.insert("location".into(), Value::String(ctx.location.to_string()));
    Ok(body)
}

fn find_container_group(template: &Value) -> Result<&Map<String, Value>, TemplateError> {
    let resources = template
        .get("resources")
        .and_then(Value::as_array)
        .ok_or_else(|| TemplateError::InvalidArmTemplate("`resources` is not a list".into()))?;
    resources
        .iter()
        .filter_map(Value::as_object)
        .find(|r| {
            r.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case(CONTAINER_GROUP_TYPE))
        })
        .ok_or_else(|| {
            let message = format!("no resource of type {CONTAINER_GROUP_TYPE} in `resources`");
            TemplateError::InvalidArmTemplate(message)
        })
}

/// Collects parameter values: each declared `defaultValue`, then this worker's overrides.
fn parameter_values(
    template: &Value,
    ctx: &ArmContext<'_>,
) -> Result<Map<String, Value>, TemplateError> {
    let mut values = Map::new();
    let declared = template.get("parameters").and_then(Value::as_object);
    for (name, spec) in declared.into_iter().flatten() {
        if let Some(default) = spec.get("defaultValue") {
            values.insert(name.clone(), default.clone());
        }
    }
    values.insert("container_group_name".into(), ctx.group_name.into());
    values.insert("location".into(), ctx.location.into());
    if declared.is_some_and(|d| d.contains_key("container_name")) {
        values.insert("container_name".into(), ctx.container_name.into());
    }
    Ok(values)
}

struct Evaluator<'a> {
    parameters: Map<String, Value>,
    ctx: &'a ArmContext<'a>,
}

/// An evaluated expression term.
enum Term {
    Text(String),
    Json(Value),
    ResourceGroup,
    Subscription,
}

impl Evaluator<'_> {
    fn resolve_value(&self, value: &Value, depth: usize) -> Result<Value, TemplateError> {
        match value {
            Value::String(text) => self.resolve_string(text, depth),
            Value::Array(items) => items.iter().map(|v| self.resolve_value(v, depth)).collect(),
            Value::Object(map) => {
                let mut out = Map::new();
                for (key, item) in map {
                    out.insert(key.clone(), self.resolve_value(item, depth)?);
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    /// Evaluates `[expression]`; `[[text` is the literal `[text`, as in ARM. A string that
    /// starts with `[` but does not end with `]` is a literal in ARM, and stays one here.
    fn resolve_string(&self, text: &str, depth: usize) -> Result<Value, TemplateError> {
        if let Some(literal) = text.strip_prefix("[[") {
            return Ok(Value::String(format!("[{literal}")));
        }
        let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) else {
            return Ok(Value::String(text.to_string()));
        };
        let unsupported = || TemplateError::UnsupportedArmExpression(text.to_string());
        let expression = parse(inner).ok_or_else(unsupported)?;
        match self
            .evaluate(&expression, depth)
            .map_err(|_| unsupported())?
        {
            Term::Text(value) => Ok(Value::String(value)),
            Term::Json(value) => Ok(value),
            Term::ResourceGroup | Term::Subscription => Err(unsupported()),
        }
    }

    fn evaluate(&self, expression: &Expr, depth: usize) -> Result<Term, TemplateError> {
        match expression {
            Expr::Text(text) => Ok(Term::Text(text.clone())),
            Expr::Call(name, args) => self.call(name, args, depth),
            Expr::Property(target, property) => {
                match (self.evaluate(target, depth)?, property.as_str()) {
                    (Term::ResourceGroup, "location") => Ok(Term::Text(self.ctx.location.into())),
                    (Term::ResourceGroup, "name") => {
                        Ok(Term::Text(self.ctx.resource_group_name.into()))
                    }
                    (Term::ResourceGroup, "id") => Ok(Term::Text(format!(
                        "/subscriptions/{}/resourceGroups/{}",
                        self.ctx.subscription_id, self.ctx.resource_group_name
                    ))),
                    (Term::Subscription, "subscriptionId") => {
                        Ok(Term::Text(self.ctx.subscription_id.into()))
                    }
                    _ => Err(TemplateError::UnsupportedArmExpression(property.clone())),
                }
            }
        }
    }

    fn call(&self, name: &str, args: &[Expr], depth: usize) -> Result<Term, TemplateError> {
        let fail = || TemplateError::UnsupportedArmExpression(name.to_string());
        match (name.to_ascii_lowercase().as_str(), args) {
            ("resourcegroup", []) => Ok(Term::ResourceGroup),
            ("subscription", []) => Ok(Term::Subscription),
            ("parameters", [arg]) => {
                let Term::Text(parameter) = self.evaluate(arg, depth)? else {
                    return Err(fail());
                };
                let value = self.parameters.get(&parameter).ok_or_else(fail)?;
                if depth >= MAX_PARAMETER_DEPTH {
                    return Err(fail());
                }
                Ok(Term::Json(self.resolve_value(value, depth + 1)?))
            }
            ("uniquestring", args) if !args.is_empty() => {
                let mut parts = Vec::new();
                for arg in args {
                    match self.evaluate(arg, depth)? {
                        Term::Text(text) => parts.push(text),
                        Term::Json(Value::String(text)) => parts.push(text),
                        _ => return Err(fail()),
                    }
                }
                Ok(Term::Text(unique_string(&parts)))
            }
            _ => Err(fail()),
        }
    }
}

/// A parsed ARM template expression.
#[derive(Debug, PartialEq)]
enum Expr {
    Text(String),
    Call(String, Vec<Expr>),
    Property(Box<Expr>, String),
}

/// Parses an ARM expression (the text between `[` and `]`); `None` when malformed.
fn parse(input: &str) -> Option<Expr> {
    let mut parser = Parser {
        chars: input.chars().collect(),
        at: 0,
    };
    let expression = parser.expression()?;
    parser.skip_spaces();
    (parser.at == parser.chars.len()).then_some(expression)
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn eat(&mut self, expected: char) -> bool {
        self.skip_spaces();
        let matched = self.peek() == Some(expected);
        if matched {
            self.at += 1;
        }
        matched
    }

    fn identifier(&mut self) -> Option<String> {
        self.skip_spaces();
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.at += 1;
        }
        (self.at > start).then(|| self.chars[start..self.at].iter().collect())
    }

    /// Reads `'text'`, where `''` stands for one quote.
    fn string(&mut self) -> Option<String> {
        let mut text = String::new();
        loop {
            let c = self.peek()?;
            self.at += 1;
            if c != '\'' {
                text.push(c);
            } else if self.peek() == Some('\'') {
                self.at += 1;
                text.push('\'');
            } else {
                return Some(text);
            }
        }
    }

    fn expression(&mut self) -> Option<Expr> {
        let mut expression = if self.eat('\'') {
            Expr::Text(self.string()?)
        } else {
            let name = self.identifier()?;
            if !self.eat('(') {
                return None;
            }
            let mut args = Vec::new();
            if !self.eat(')') {
                loop {
                    args.push(self.expression()?);
                    if self.eat(')') {
                        break;
                    }
                    if !self.eat(',') {
                        return None;
                    }
                }
            }
            Expr::Call(name, args)
        };
        while self.eat('.') {
            expression = Expr::Property(Box::new(expression), self.identifier()?);
        }
        Some(expression)
    }
}

/// Lowercase base-32 alphabet of the 13-character result.
const UNIQUE_STRING_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Returns a deterministic 13-character `[a-z2-7]` string for the arguments, the shape of
/// ARM's `uniqueString`.
///
/// NOTE: the value does not match what ARM computes for the same arguments, because ARM's
/// hash is not reproduced here. It keeps only the properties templates rely on. The same
/// arguments give the same string, and different arguments almost surely a different one.
pub fn unique_string(parts: &[String]) -> String {
    let joined = parts.join("-");
    let high = fnv1a(joined.as_bytes(), 0xcbf2_9ce4_8422_2325);
    let low = fnv1a(joined.as_bytes(), 0x8422_2325_cbf2_9ce4);
    let bits = (u128::from(high) << 64) | u128::from(low);
    (0..13)
        .map(|i| UNIQUE_STRING_ALPHABET[((bits >> (i * 5)) & 0x1f) as usize] as char)
        .collect()
}

fn fnv1a(bytes: &[u8], offset: u64) -> u64 {
    bytes.iter().fold(offset, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
#[path = "arm_template_tests.rs"]
mod tests;
