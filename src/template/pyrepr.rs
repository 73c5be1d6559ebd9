//! Python's `str()` of JSON values, which embedded placeholders produce in Prefect.

use serde_json::{Number, Value};

/// Formats `value` as Python's `str()` would after `json.loads`: strings as they are,
/// `True`/`False`/`None`, floats as Python's `repr` (`1.0`, `1e-05`), lists and objects in
/// Python repr (`{'a': 1}`).
pub fn python_str(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => python_repr(other),
    }
}

fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Number(number) => number_repr(number),
        Value::String(text) => string_repr(text),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(python_repr).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(key, item)| format!("{}: {}", string_repr(key), python_repr(item)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

fn number_repr(number: &Number) -> String {
    if number.is_i64() || number.is_u64() {
        return number.to_string();
    }
    float_repr(number.as_f64().unwrap_or(f64::NAN))
}

/// Python's float repr: the shortest round-trip digits, in fixed notation when the decimal
/// exponent is in -4..16 (with `.0` on integral values), otherwise `d.ddde+XX`.
fn float_repr(value: f64) -> String {
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("`{:e}` output always has an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` exponent is an integer");
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if !(-4..16).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{fraction}e{exp_sign}{:02}", exponent.abs());
    }
    let point = exponent + 1;
    let body = if point <= 0 {
        format!("0.{}{}", "0".repeat(point.unsigned_abs() as usize), digits)
    } else if point as usize >= digits.len() {
        let zeros = "0".repeat(point as usize - digits.len());
        format!("{digits}{zeros}.0")
    } else {
        let (int_part, fraction) = digits.split_at(point as usize);
        format!("{int_part}.{fraction}")
    };
    format!("{sign}{body}")
}

/// Python's `repr` of a str: single quotes unless the text has `'` and no `"`.
/// NOTE: non-ASCII characters are treated as printable unless Unicode marks them as control
/// characters, a close but not exact match of Python's `str.isprintable`.
fn string_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&control_escape(c)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn control_escape(c: char) -> String {
    let code = c as u32;
    if code <= 0xff {
        format!("\\x{code:02x}")
    } else if code <= 0xffff {
        format!("\\u{code:04x}")
    } else {
        format!("\\U{code:08x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_match_python() {
        assert_eq!(python_str(&json!(true)), "True");
        assert_eq!(python_str(&json!(null)), "None");
        assert_eq!(python_str(&json!(1.0)), "1.0");
        assert_eq!(python_str(&json!(2.5)), "2.5");
        assert_eq!(python_str(&json!(0.0001)), "0.0001");
        assert_eq!(python_str(&json!(0.00001)), "1e-05");
        assert_eq!(python_str(&json!(1e16)), "1e+16");
        assert_eq!(python_str(&json!(1.5e16)), "1.5e+16");
        assert_eq!(python_str(&json!(123456789012345.0)), "123456789012345.0");
        assert_eq!(python_str(&json!(-0.5)), "-0.5");
        assert_eq!(python_str(&json!(7)), "7");
    }

    #[test]
    fn containers_use_python_repr() {
        let value = json!({"a": [1, "it's", null], "b": {"c": false}, "d": "x\ny"});
        assert_eq!(
            python_str(&value),
            r#"{'a': [1, "it's", None], 'b': {'c': False}, 'd': 'x\ny'}"#
        );
        assert_eq!(python_str(&json!(["a\"b'c"])), r#"['a"b\'c']"#);
    }
}
