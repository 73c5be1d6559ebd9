//! Evaluates the ARM template expressions of a template's resources with sample parameter
//! values, so a resource body can be validated as ARM would send it to the provider.
//!
//! Parameters take their override, else their `defaultValue`, else a placeholder of their
//! declared type (int 1, string and securestring "x", bool true, object {}, array []).
//! Only the functions the deploy/ templates use are known. Any other function is an error
//! that names it, so a new template function shows up here instead of being guessed.

use serde_json::{Map, Value, json};

/// Keys of a template resource that ARM consumes itself and does not send to the provider.
const TEMPLATE_ONLY_KEYS: [&str; 7] = [
    "type",
    "apiVersion",
    "name",
    "dependsOn",
    "condition",
    "copy",
    "comments",
];

/// Stand-in for `resourceGroup()`: the deployment's resource group.
fn sample_resource_group() -> Value {
    json!({
        "id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg",
        "name": "rg",
        "location": "westeurope",
    })
}

/// A template with parameter values fixed for evaluation.
pub struct Template<'a> {
    parameters: &'a Map<String, Value>,
    variables: &'a Map<String, Value>,
    overrides: Map<String, Value>,
}

impl<'a> Template<'a> {
    /// Wraps `template`. Each member of `overrides` sets the parameter of that name, as a
    /// parameters file does.
    pub fn new(template: &'a Value, overrides: Map<String, Value>) -> Result<Self, String> {
        let parameters = template["parameters"]
            .as_object()
            .ok_or("the template has no `parameters` object")?;
        let variables = template["variables"]
            .as_object()
            .ok_or("the template has no `variables` object")?;
        for name in overrides.keys() {
            if !parameters.contains_key(name) {
                return Err(format!("override for undeclared parameter `{name}`"));
            }
        }
        Ok(Template {
            parameters,
            variables,
            overrides,
        })
    }

    /// Returns `resource` as ARM sends it: expressions evaluated, null members dropped and
    /// the template-only keys removed.
    pub fn resource_body(&self, resource: &Value) -> Result<Value, String> {
        let mut body = self.evaluate(resource)?;
        let map = body.as_object_mut().ok_or("a resource must be an object")?;
        for key in TEMPLATE_ONLY_KEYS {
            map.remove(key);
        }
        Ok(body)
    }

    /// Evaluates every expression in `value`, including those in object keys.
    // NOTE: members that evaluate to null are dropped on the assumption, not checked
    // against live ARM, that ACI treats an explicit null like an absent property.
    pub fn evaluate(&self, value: &Value) -> Result<Value, String> {
        match value {
            Value::String(text) => self.evaluate_string(text),
            Value::Array(items) => items.iter().map(|item| self.evaluate(item)).collect(),
            Value::Object(map) => {
                let mut evaluated = Map::new();
                for (key, item) in map {
                    let key = match self.evaluate_string(key)? {
                        Value::String(key) => key,
                        other => return Err(format!("key `{key}` evaluates to {other}")),
                    };
                    let item = self.evaluate(item)?;
                    if !item.is_null() {
                        evaluated.insert(key, item);
                    }
                }
                Ok(Value::Object(evaluated))
            }
            other => Ok(other.clone()),
        }
    }

    /// Evaluates a string: `[expr]` is an expression, `[[...` a literal starting with `[`.
    fn evaluate_string(&self, text: &str) -> Result<Value, String> {
        if let Some(literal) = text.strip_prefix("[[") {
            return Ok(Value::String(format!("[{literal}")));
        }
        let Some(source) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) else {
            return Ok(Value::String(text.to_owned()));
        };
        let tokens = tokenize(source).map_err(|e| format!("in `{text}`: {e}"))?;
        let mut parser = Parser {
            tokens: &tokens,
            position: 0,
            template: self,
        };
        let value = parser
            .expression()
            .map_err(|e| format!("in `{text}`: {e}"))?;
        if parser.position != tokens.len() {
            return Err(format!("in `{text}`: unexpected text after the expression"));
        }
        Ok(value)
    }

    fn parameter(&self, name: &str) -> Result<Value, String> {
        if let Some(value) = self.overrides.get(name) {
            return Ok(value.clone());
        }
        let declaration = self
            .parameters
            .get(name)
            .ok_or_else(|| format!("parameter `{name}` is not declared"))?;
        if let Some(default) = declaration.get("defaultValue") {
            return self.evaluate(default);
        }
        let kind = declaration["type"].as_str().unwrap_or_default();
        match kind.to_ascii_lowercase().as_str() {
            "int" => Ok(json!(1)),
            "string" | "securestring" => Ok(json!("x")),
            "bool" => Ok(json!(true)),
            "object" | "secureobject" => Ok(json!({})),
            "array" => Ok(json!([])),
            _ => Err(format!("parameter `{name}` has unknown type `{kind}`")),
        }
    }

    fn variable(&self, name: &str) -> Result<Value, String> {
        let value = self
            .variables
            .get(name)
            .ok_or_else(|| format!("variable `{name}` is not declared"))?;
        self.evaluate(value)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Identifier(String),
    Text(String),
    Integer(i64),
    Symbol(char),
}

fn tokenize(source: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = source.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    None => return Err("unterminated string literal".to_owned()),
                    // Two single quotes inside a literal stand for one.
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                        text.push('\'');
                    }
                    Some('\'') => break,
                    Some(other) => text.push(other),
                }
            }
            tokens.push(Token::Text(text));
        } else if c.is_ascii_digit() || c == '-' {
            let mut digits = String::from(c);
            chars.next();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(d);
                chars.next();
            }
            let number = digits
                .parse()
                .map_err(|_| format!("invalid integer `{digits}`"))?;
            tokens.push(Token::Integer(number));
        } else if c.is_ascii_alphabetic() {
            let mut name = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_alphanumeric()) {
                name.push(d);
                chars.next();
            }
            tokens.push(Token::Identifier(name));
        } else if "(),.[]".contains(c) {
            tokens.push(Token::Symbol(c));
            chars.next();
        } else {
            return Err(format!("unexpected character `{c}`"));
        }
    }
    Ok(tokens)
}

/// A recursive-descent parser that evaluates while it parses.
struct Parser<'t, 'a> {
    tokens: &'t [Token],
    position: usize,
    template: &'t Template<'a>,
}

impl Parser<'_, '_> {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token
    }

    fn peek_symbol(&self, symbol: char) -> bool {
        self.tokens.get(self.position) == Some(&Token::Symbol(symbol))
    }

    fn expect_symbol(&mut self, symbol: char) -> Result<(), String> {
        match self.next() {
            Some(Token::Symbol(found)) if found == symbol => Ok(()),
            other => Err(format!("expected `{symbol}`, found {other:?}")),
        }
    }

    /// expression := primary ( '.' identifier | '[' expression ']' )*
    fn expression(&mut self) -> Result<Value, String> {
        let mut value = self.primary()?;
        loop {
            if self.peek_symbol('.') {
                self.position += 1;
                let Some(Token::Identifier(member)) = self.next() else {
                    return Err("expected a property name after `.`".to_owned());
                };
                value = value
                    .get(&member)
                    .cloned()
                    .ok_or_else(|| format!("{value} has no property `{member}`"))?;
            } else if self.peek_symbol('[') {
                self.position += 1;
                let index = self.expression()?;
                self.expect_symbol(']')?;
                value = index_into(&value, &index)?;
            } else {
                return Ok(value);
            }
        }
    }

    fn primary(&mut self) -> Result<Value, String> {
        match self.next() {
            Some(Token::Text(text)) => Ok(Value::String(text)),
            Some(Token::Integer(number)) => Ok(json!(number)),
            Some(Token::Identifier(name)) => {
                self.expect_symbol('(')?;
                let mut arguments = Vec::new();
                if self.peek_symbol(')') {
                    self.position += 1;
                } else {
                    loop {
                        arguments.push(self.expression()?);
                        match self.next() {
                            Some(Token::Symbol(',')) => {}
                            Some(Token::Symbol(')')) => break,
                            other => return Err(format!("expected `,` or `)`, found {other:?}")),
                        }
                    }
                }
                self.call(&name, arguments)
            }
            other => Err(format!("expected a value, found {other:?}")),
        }
    }

    /// Calls a template function. ARM function names are case-insensitive.
    fn call(&self, name: &str, arguments: Vec<Value>) -> Result<Value, String> {
        let text = |i: usize| -> Result<&str, String> {
            arguments
                .get(i)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{name}() needs a string as argument {}", i + 1))
        };
        match name.to_ascii_lowercase().as_str() {
            "parameters" => self.template.parameter(text(0)?),
            "variables" => self.template.variable(text(0)?),
            "resourcegroup" => Ok(sample_resource_group()),
            "concat" => concat(&arguments),
            "string" => Ok(match arguments.first() {
                Some(Value::String(s)) => Value::String(s.clone()),
                Some(other) => Value::String(other.to_string()),
                None => return Err("string() needs one argument".to_owned()),
            }),
            "json" => serde_json::from_str(text(0)?).map_err(|e| format!("json(): {e}")),
            "if" => match arguments.as_slice() {
                [Value::Bool(condition), yes, no] => {
                    Ok(if *condition { yes.clone() } else { no.clone() })
                }
                _ => Err("if() needs a boolean and two values".to_owned()),
            },
            "not" => match arguments.as_slice() {
                [Value::Bool(b)] => Ok(Value::Bool(!b)),
                _ => Err("not() needs one boolean".to_owned()),
            },
            "empty" => Ok(Value::Bool(match arguments.first() {
                Some(Value::String(s)) => s.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Object(o)) => o.is_empty(),
                Some(Value::Null) => true,
                _ => return Err("empty() needs a string, array or object".to_owned()),
            })),
            "equals" => match arguments.as_slice() {
                [a, b] => Ok(Value::Bool(a == b)),
                _ => Err("equals() needs two values".to_owned()),
            },
            "createarray" => Ok(Value::Array(arguments)),
            "createobject" => create_object(arguments),
            "null" => Ok(Value::Null),
            other => Err(format!(
                "template function `{other}()` is not known to the test evaluator; add it to \
                 tests/deploy_checks/arm_template.rs"
            )),
        }
    }
}

fn index_into(value: &Value, index: &Value) -> Result<Value, String> {
    let found = match index {
        Value::String(key) => value.get(key.as_str()),
        Value::Number(n) => n.as_u64().and_then(|i| value.get(i as usize)),
        _ => None,
    };
    found
        .cloned()
        .ok_or_else(|| format!("{value} has no member {index}"))
}

fn concat(arguments: &[Value]) -> Result<Value, String> {
    if arguments.iter().all(Value::is_array) {
        let items = arguments
            .iter()
            .flat_map(|a| a.as_array().into_iter().flatten().cloned())
            .collect();
        return Ok(Value::Array(items));
    }
    let mut joined = String::new();
    for argument in arguments {
        match argument {
            Value::String(s) => joined.push_str(s),
            Value::Number(n) => joined.push_str(&n.to_string()),
            other => return Err(format!("concat() cannot join {other} into a string")),
        }
    }
    Ok(Value::String(joined))
}

fn create_object(arguments: Vec<Value>) -> Result<Value, String> {
    if !arguments.len().is_multiple_of(2) {
        return Err("createObject() needs key and value pairs".to_owned());
    }
    let mut object = Map::new();
    let mut pairs = arguments.into_iter();
    while let (Some(key), Some(value)) = (pairs.next(), pairs.next()) {
        let Value::String(key) = key else {
            return Err(format!("createObject() key {key} is not a string"));
        };
        object.insert(key, value);
    }
    Ok(Value::Object(object))
}
