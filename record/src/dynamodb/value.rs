//! Attribute values to plain JSON text: the one decoder walk, writing compact
//! JSON as it goes, with the path of a bad value for its error.

use serde_json::{Map, Value};

use super::number::Decimal;
use super::{json_kind, DecodeError};
use crate::patch::push_json_string;

/// The attribute type keys DynamoDB uses, for error messages.
const TYPE_KEYS: &str = "S, N, B, BOOL, NULL, M, L, SS, NS or BS";

/// Decodes an item image: a JSON object of attribute name → attribute value.
pub fn decode_item(map: &Value) -> Result<Value, DecodeError> {
    let obj = map.as_object().ok_or_else(|| DecodeError::BadAttribute {
        path: String::new(),
        reason: format!(
            "an item must be a JSON object of attribute names to attribute values, found {}",
            json_kind(map)
        ),
    })?;
    let mut out = String::new();
    decode_attributes(obj, &Path::Root(""), &mut out)?;
    Ok(parse_decoded(out))
}

/// Decodes one DynamoDB attribute value such as `{"N": "1.5"}` to plain JSON.
///
/// The value must be an object with exactly one known type key. Error paths
/// are relative to `av`.
pub fn decode_value(av: &Value) -> Result<Value, DecodeError> {
    let mut out = String::new();
    decode_at(av, &Path::Root(""), &mut out)?;
    Ok(parse_decoded(out))
}

/// Decodes an image (or the keys) of a record to compact JSON text.
pub(super) fn decode_image(
    value: &Value,
    root: &'static str,
    field: &'static str,
) -> Result<String, DecodeError> {
    let obj = value.as_object().ok_or_else(|| DecodeError::BadField {
        field,
        reason: format!(
            "it is {}, not a JSON object of attribute names to attribute values",
            json_kind(value)
        ),
    })?;
    let mut out = String::with_capacity(1024);
    decode_attributes(obj, &Path::Root(root), &mut out)?;
    Ok(out)
}

/// The decoder's text as a value; it always is JSON.
pub(super) fn parse_decoded(text: String) -> Value {
    serde_json::from_str(&text).expect("the decoder writes JSON")
}

/// Where a value sits, built on the stack as the walk descends and rendered
/// only when an error needs it.
enum Path<'a> {
    Root(&'static str),
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) {
        match self {
            Path::Root(root) => out.push_str(root),
            Path::Key(parent, key) => {
                parent.render_into(out);
                let plain = !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
                if plain {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                } else {
                    out.push('[');
                    out.push_str(&Value::String((*key).to_owned()).to_string());
                    out.push(']');
                }
            }
            Path::Index(parent, index) => {
                parent.render_into(out);
                out.push_str(&format!("[{index}]"));
            }
        }
    }

    fn error(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError::BadAttribute {
            path: self.render(),
            reason: reason.into(),
        }
    }
}

// The one decoder: it writes compact JSON text, as `Value::to_string` would
// write the decoded value (keys in `Map` order, serde_json's string
// escaping), and the `Value` functions above parse that text.

fn decode_attributes(
    obj: &Map<String, Value>,
    path: &Path<'_>,
    out: &mut String,
) -> Result<(), DecodeError> {
    // `obj` iterates in `Map` order, the order of the decoded object's keys.
    out.push('{');
    for (i, (name, av)) in obj.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(out, name);
        out.push(':');
        decode_at(av, &Path::Key(path, name), out)?;
    }
    out.push('}');
    Ok(())
}

fn decode_at(av: &Value, path: &Path<'_>, out: &mut String) -> Result<(), DecodeError> {
    let obj = av.as_object().ok_or_else(|| {
        path.error(format!(
            "expected an attribute value object such as {{\"S\": \"text\"}}, found {}",
            json_kind(av)
        ))
    })?;
    let mut entries = obj.iter();
    let (type_key, inner) = match (entries.next(), entries.next()) {
        (Some(entry), None) => entry,
        (None, _) => {
            return Err(path.error(format!(
                "the attribute value has no type key (expected one of {TYPE_KEYS})"
            )))
        }
        (Some(_), Some(_)) => {
            let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
            return Err(path.error(format!(
                "the attribute value has {} type keys ({}); it must have exactly one",
                keys.len(),
                keys.join(", ")
            )));
        }
    };
    match type_key.as_str() {
        "S" => {
            push_json_string(out, expect_str(inner, "S", path)?);
            Ok(())
        }
        "N" => number(expect_str(inner, "N", path)?, out).map_err(|reason| path.error(reason)),
        "B" => binary(expect_str(inner, "B", path)?, out).map_err(|reason| path.error(reason)),
        "BOOL" => match inner {
            Value::Bool(b) => {
                out.push_str(if *b { "true" } else { "false" });
                Ok(())
            }
            other => Err(path.error(format!(
                "BOOL must be true or false, found {}",
                json_kind(other)
            ))),
        },
        "NULL" => match inner {
            Value::Bool(true) => {
                out.push_str("null");
                Ok(())
            }
            other => Err(path.error(format!("NULL must be true, found {}", describe_json(other)))),
        },
        "M" => {
            let map = inner.as_object().ok_or_else(|| {
                path.error(format!(
                    "M must hold a JSON object, found {}",
                    json_kind(inner)
                ))
            })?;
            decode_attributes(map, path, out)
        }
        "L" => {
            let list = expect_array(inner, "L", path)?;
            out.push('[');
            for (i, av) in list.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                decode_at(av, &Path::Index(path, i), out)?;
            }
            out.push(']');
            Ok(())
        }
        "SS" => set(inner, "SS", path, out, |s, out| {
            push_json_string(out, s);
            Ok(())
        }),
        "NS" => set(inner, "NS", path, out, number),
        "BS" => set(inner, "BS", path, out, binary),
        other => Err(path.error(format!(
            "unknown attribute type key {other:?} (expected one of {TYPE_KEYS})"
        ))),
    }
}

fn set(
    inner: &Value,
    type_key: &str,
    path: &Path<'_>,
    out: &mut String,
    member: impl Fn(&str, &mut String) -> Result<(), String>,
) -> Result<(), DecodeError> {
    let list = expect_array(inner, type_key, path)?;
    out.push('[');
    for (i, v) in list.iter().enumerate() {
        let here = Path::Index(path, i);
        let text = v.as_str().ok_or_else(|| {
            here.error(format!(
                "{type_key} members must be strings, found {}",
                json_kind(v)
            ))
        })?;
        if i > 0 {
            out.push(',');
        }
        member(text, out).map_err(|reason| here.error(reason))?;
    }
    out.push(']');
    Ok(())
}

fn expect_str<'v>(
    inner: &'v Value,
    type_key: &str,
    path: &Path<'_>,
) -> Result<&'v str, DecodeError> {
    inner.as_str().ok_or_else(|| {
        path.error(format!(
            "{type_key} must hold a JSON string, found {}",
            json_kind(inner)
        ))
    })
}

fn expect_array<'v>(
    inner: &'v Value,
    type_key: &str,
    path: &Path<'_>,
) -> Result<&'v Vec<Value>, DecodeError> {
    inner.as_array().ok_or_else(|| {
        path.error(format!(
            "{type_key} must hold a JSON array, found {}",
            json_kind(inner)
        ))
    })
}

/// Appends a DynamoDB number's text as an exact JSON number (see the
/// `dynamodb` module docs for the normalization of forms JSON forbids).
pub(super) fn number(text: &str, out: &mut String) -> Result<(), String> {
    if is_json_number(text) {
        // What JSON accepts as it is, `write_json` would write unchanged.
        out.push_str(text);
        return Ok(());
    }
    let decimal =
        Decimal::parse(text).ok_or_else(|| format!("{text:?} is not a DynamoDB number"))?;
    decimal.write_json(out);
    Ok(())
}

/// Whether `text` is a number as JSON writes it, with no exponent:
/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, most of DynamoDB's numbers.
fn is_json_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut at = usize::from(bytes.first() == Some(&b'-'));
    match bytes.get(at) {
        Some(b'0') => at += 1,
        Some(b'1'..=b'9') => {
            while bytes.get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
            }
        }
        _ => return false,
    }
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        let fraction = at;
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == fraction {
            return false;
        }
    }
    at == bytes.len()
}

/// Standard base64 with padding: length a multiple of 4, alphabet
/// `A–Z a–z 0–9 + /`, at most two `=` at the end. Appends the text as a JSON
/// string, unchanged.
pub(super) fn binary(text: &str, out: &mut String) -> Result<(), String> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return Err(format!(
            "{} is not base64: its length {} is not a multiple of 4 \
             (standard base64 with = padding is expected)",
            preview(text),
            bytes.len()
        ));
    }
    let padding = bytes.iter().rev().take_while(|&&b| b == b'=').count();
    if padding > 2 {
        return Err(format!(
            "{} is not base64: it ends in {padding} padding characters, at most 2 are allowed",
            preview(text)
        ));
    }
    let body = &bytes[..bytes.len() - padding];
    if let Some(at) = body
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'+' || b == b'/'))
    {
        let c = text[at..].chars().next().unwrap_or('?');
        let hint = match c {
            '-' | '_' => " (URL-safe base64 is not accepted)",
            '=' => " (padding may only appear at the end)",
            _ => "",
        };
        return Err(format!(
            "{} is not base64: character {c:?} at offset {at} is not in the standard alphabet{hint}",
            preview(text)
        ));
    }
    push_json_string(out, text);
    Ok(())
}

/// At most 40 characters of a value, quoted, for error messages.
fn preview(text: &str) -> String {
    if text.chars().count() <= 40 {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(40).collect();
        format!("{head:?}… ({} bytes)", text.len())
    }
}

fn describe_json(value: &Value) -> String {
    match value {
        Value::Bool(_) | Value::Null | Value::Number(_) => value.to_string(),
        other => json_kind(other).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn numbers_json_writes_as_is_go_out_as_the_decimal_writes_them(
            text in "[-+]?[0-9]{0,4}(\\.[0-9]{0,3})?([eE][-+]?[0-9]{0,2})?|[-+.0-9eE]{0,6}"
        ) {
            let mut slow = String::new();
            let parsed = Decimal::parse(&text).map(|d| d.write_json(&mut slow));
            let mut fast = String::new();
            proptest::prop_assert_eq!(number(&text, &mut fast).is_ok(), parsed.is_some());
            if parsed.is_some() {
                proptest::prop_assert_eq!(&fast, &slow);
            }
            if is_json_number(&text) {
                proptest::prop_assert_eq!(&slow, &text);
            }
        }
    }

    #[test]
    fn json_numbers_are_recognized() {
        for text in [
            "0",
            "-0",
            "7",
            "-12.50",
            "0.001",
            "12345678901234567890123456789012345678",
        ] {
            assert!(is_json_number(text), "{text}");
        }
        for text in [
            "", "-", "007", "+5", ".5", "5.", "1e5", "1.5E-3", "0x1", "1 ", "--1",
        ] {
            assert!(!is_json_number(text), "{text}");
        }
    }

    #[test]
    fn paths_render_like_accessors() {
        let root = Path::Root("NewImage");
        let items = Path::Key(&root, "items");
        let second = Path::Index(&items, 2);
        let price = Path::Key(&second, "price");
        assert_eq!(price.render(), "NewImage.items[2].price");
        let odd = Path::Key(&root, "a.b/c~d");
        assert_eq!(odd.render(), r#"NewImage["a.b/c~d"]"#);
        let bare = Path::Root("");
        assert_eq!(Path::Key(&bare, "price").render(), "price");
        assert_eq!(Path::Index(&bare, 0).render(), "[0]");
    }
}
