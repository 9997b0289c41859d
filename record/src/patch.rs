//! RFC 6902 JSON Patch between two JSON documents: on values
//! ([`json_patch`]) and, for the images the SDK keeps as text, straight on
//! JSON texts ([`write_patch`]), with the same operations in the same order.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, Visitor};
use serde_json::value::RawValue;
use serde_json::{json, Map, Number, Value};

use crate::scan::{order, same, Scan};

/// The RFC 6902 JSON Patch (an array of operations) that turns `old` into `new`.
///
/// ```
/// use serde_json::json;
/// let patch = relay_record::json_patch(&json!({"a": 1, "b/c": [1, 2]}), &json!({"a": 2, "b/c": [1]}));
/// assert_eq!(patch, json!([
///     {"op": "replace", "path": "/a", "value": 2},
///     {"op": "remove", "path": "/b~1c/1"},
/// ]));
/// ```
///
/// Objects are compared key by key (`add`, `remove`, recursion on common
/// keys); arrays element by element on their common prefix, then `add` at the
/// tail or `remove` from the end backwards so every index stays valid while
/// the patch is applied; anything else that differs is a `replace`. Equal
/// documents give `[]`. Numbers are compared by their exact digits.
pub fn json_patch(old: &Value, new: &Value) -> Value {
    diff(old, new)
}

/// See [`json_patch`].
pub(crate) fn diff(old: &Value, new: &Value) -> Value {
    let mut ops = Vec::new();
    let mut path = String::new();
    diff_into(old, new, &mut path, &mut ops);
    Value::Array(ops)
}

fn diff_into(old: &Value, new: &Value, path: &mut String, ops: &mut Vec<Value>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => diff_objects(a, b, path, ops),
        (Value::Array(a), Value::Array(b)) => diff_arrays(a, b, path, ops),
        _ if old == new => {}
        _ => ops.push(json!({"op": "replace", "path": path.as_str(), "value": new})),
    }
}

fn diff_objects(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    path: &mut String,
    ops: &mut Vec<Value>,
) {
    let base = path.len();
    for (key, old_value) in old {
        push_token(path, key);
        match new.get(key) {
            Some(new_value) => diff_into(old_value, new_value, path, ops),
            None => ops.push(json!({"op": "remove", "path": path.as_str()})),
        }
        path.truncate(base);
    }
    for (key, new_value) in new {
        if !old.contains_key(key) {
            push_token(path, key);
            ops.push(json!({"op": "add", "path": path.as_str(), "value": new_value}));
            path.truncate(base);
        }
    }
}

fn diff_arrays(old: &[Value], new: &[Value], path: &mut String, ops: &mut Vec<Value>) {
    let base = path.len();
    let common = old.len().min(new.len());
    for (index, (a, b)) in old.iter().zip(new).enumerate() {
        push_index(path, index);
        diff_into(a, b, path, ops);
        path.truncate(base);
    }
    // Remove surplus elements from the end backwards so indices stay valid.
    for index in (common..old.len()).rev() {
        push_index(path, index);
        ops.push(json!({"op": "remove", "path": path.as_str()}));
        path.truncate(base);
    }
    for (index, value) in new.iter().enumerate().skip(common) {
        push_index(path, index);
        ops.push(json!({"op": "add", "path": path.as_str(), "value": value}));
        path.truncate(base);
    }
}

/// Appends the RFC 6902 patch from JSON text `old` to JSON text `new` to
/// `out` as compact JSON text: the same operations, in the same order, as
/// [`json_patch`] on the parsed values.
///
/// Objects are compared key by key in `serde_json::Map` order (byte order
/// of the keys), descending only where the raw texts differ; strings are
/// compared by value and numbers by their exact digits. A `value` is the
/// new text verbatim, so canonical input (compact, as serde_json writes it)
/// gives byte for byte what serializing [`json_patch`]'s result gives.
///
/// `old` and `new` must be JSON, as [`Image`](crate::Image)s always are:
/// values are found by their brackets and quotes alone, so for other text
/// the result is unspecified (it may panic, or not be a patch).
pub(crate) fn write_patch(old: &str, new: &str, out: &mut String) {
    out.push('[');
    let mut writer = PatchWriter {
        out,
        path: String::new(),
        first: true,
    };
    writer.diff(trim(old), trim(new));
    out.push(']');
}

/// Writes operations as they are found, with the JSON Pointer of the value
/// under comparison in `path`.
struct PatchWriter<'o> {
    out: &'o mut String,
    path: String,
    first: bool,
}

impl PatchWriter<'_> {
    fn diff(&mut self, old: &str, new: &str) {
        if same(old, new) {
            return;
        }
        match (old.as_bytes()[0], new.as_bytes()[0]) {
            (b'{', b'{') => self.diff_objects(old, new),
            (b'[', b'[') => self.diff_arrays(old, new),
            // Texts that differ are different strings unless one has
            // escapes, and different numbers unless one has an exponent
            // (JSON's integers and fractions have one spelling per value
            // in serde_json's `Number`): only those are parsed.
            (b'"', b'"')
                if (has(old, b'\\') || has(new, b'\\'))
                    && parse::<Key>(old) == parse::<Key>(new) => {}
            (a, b)
                if is_number(a)
                    && is_number(b)
                    && (has_exponent(old) || has_exponent(new))
                    && parse::<Number>(old) == parse::<Number>(new) => {}
            _ => self.op("replace", Some(new)),
        }
    }

    fn diff_objects(&mut self, old: &str, new: &str) {
        let (written, first) = (self.out.len(), self.first);
        if self.diff_sorted_objects(old, new).is_none() {
            // Not sorted, a key written twice, or not taken by the scanner:
            // start this object over from member lists.
            self.out.truncate(written);
            self.first = first;
            self.diff_objects_by_lists(old, new);
        }
    }

    /// The object diff as one merge walk over both texts, for objects whose
    /// keys are written in strictly increasing order (as the host writes
    /// images): each old value is read once and the new text compared with
    /// it in place, no lists are built. `None` (with `self.path` restored)
    /// for any other text; the operations written so far are then void.
    fn diff_sorted_objects(&mut self, old: &str, new: &str) -> Option<()> {
        let base = self.path.len();
        let result = self.merge_objects(old, new, base);
        self.path.truncate(base);
        result
    }

    fn merge_objects(&mut self, old: &str, new: &str, base: usize) -> Option<()> {
        let mut old = SortedMembers::open(old)?;
        let mut new = SortedMembers::open(new)?;
        // New keys missing from the old object, added after everything
        // else as the list walk does; while old keys remain they wait here.
        let mut adds: Vec<(Cow<'_, str>, &str)> = Vec::new();
        loop {
            let step = match (&old.key, &new.key) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(a), Some(b)) => order(a, b),
            };
            match step {
                std::cmp::Ordering::Less => {
                    old.scan.value_unchecked()?;
                    self.member_op(old.key.as_deref()?, "remove", None);
                    old.advance()?;
                }
                std::cmp::Ordering::Greater => {
                    let value = new.scan.value_unchecked()?;
                    let key = new.key.clone()?;
                    if old.key.is_none() && adds.is_empty() {
                        self.member_op(&key, "add", Some(value));
                    } else {
                        adds.push((key, value));
                    }
                    new.advance()?;
                }
                std::cmp::Ordering::Equal => {
                    let old_value = old.scan.value_unchecked()?;
                    if new.scan.same_value(old_value).is_none() {
                        let new_value = new.scan.value_unchecked()?;
                        push_token(&mut self.path, old.key.as_deref()?);
                        self.diff(old_value, new_value);
                        self.path.truncate(base);
                    }
                    old.advance()?;
                    new.advance()?;
                }
            }
            if old.key.is_none() && !adds.is_empty() {
                for (key, value) in adds.drain(..) {
                    self.member_op(&key, "add", Some(value));
                }
            }
        }
        Some(())
    }

    fn diff_objects_by_lists(&mut self, old: &str, new: &str) {
        let old = members(old);
        let new = members(new);
        let base = self.path.len();
        // Both sorted by key: each side's keys are looked up in the other by
        // walking it along.
        let mut at = 0;
        for (key, old_value) in &old {
            while new.get(at).is_some_and(|(k, _)| k < key) {
                at += 1;
            }
            push_token(&mut self.path, &key.0);
            match new.get(at) {
                Some((k, new_value)) if k == key => self.diff(old_value, new_value),
                _ => self.op("remove", None),
            }
            self.path.truncate(base);
        }
        let mut at = 0;
        for (key, new_value) in &new {
            while old.get(at).is_some_and(|(k, _)| k < key) {
                at += 1;
            }
            if old.get(at).is_none_or(|(k, _)| k != key) {
                self.member_op(&key.0, "add", Some(new_value));
            }
        }
    }

    fn diff_arrays(&mut self, old: &str, new: &str) {
        let old = elements(old);
        let new = elements(new);
        let base = self.path.len();
        let common = old.len().min(new.len());
        for (index, (a, b)) in old.iter().zip(&new).enumerate() {
            push_index(&mut self.path, index);
            self.diff(a, b);
            self.path.truncate(base);
        }
        // Remove surplus elements from the end backwards so indices stay valid.
        for index in (common..old.len()).rev() {
            push_index(&mut self.path, index);
            self.op("remove", None);
            self.path.truncate(base);
        }
        for (index, value) in new.iter().enumerate().skip(common) {
            push_index(&mut self.path, index);
            self.op("add", Some(value));
            self.path.truncate(base);
        }
    }

    /// [`PatchWriter::op`] on the member `key` of the value at `self.path`.
    fn member_op(&mut self, key: &str, op: &str, value: Option<&str>) {
        let base = self.path.len();
        push_token(&mut self.path, key);
        self.op(op, value);
        self.path.truncate(base);
    }

    /// `{"op":…,"path":…[,"value":…]}`: the keys in `json!`'s (sorted) order.
    fn op(&mut self, op: &str, value: Option<&str>) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push_str("{\"op\":\"");
        self.out.push_str(op);
        self.out.push_str("\",\"path\":");
        push_json_string(self.out, &self.path);
        if let Some(value) = value {
            self.out.push_str(",\"value\":");
            self.out.push_str(value);
        }
        self.out.push('}');
    }
}

/// An object text's members read in order, for [`PatchWriter::merge_objects`]:
/// the current key (`None` after the last member) and the scanner at its
/// value. Refuses (`None`) a key not strictly greater than the one before.
struct SortedMembers<'a> {
    scan: Scan<'a>,
    key: Option<Cow<'a, str>>,
    last: Option<Cow<'a, str>>,
}

impl<'a> SortedMembers<'a> {
    fn open(text: &'a str) -> Option<Self> {
        let mut scan = Scan::new(text);
        scan.open(b'{')?;
        let key = if scan.empty(b'}') {
            scan.at_end().then_some(())?;
            None
        } else {
            Some(scan.key()?)
        };
        Some(SortedMembers {
            scan,
            key,
            last: None,
        })
    }

    /// After the current member's value has been read: on to the next key.
    fn advance(&mut self) -> Option<()> {
        if let Some(key) = self.key.take() {
            self.last = Some(key);
        }
        if !self.scan.next_entry(b'}')? {
            return self.scan.at_end().then_some(());
        }
        let key = self.scan.key()?;
        if self
            .last
            .as_ref()
            .is_some_and(|last| order(last, &key).is_ge())
        {
            return None;
        }
        self.key = Some(key);
        Some(())
    }
}

/// A string of JSON text (an object key or a string value), borrowed from
/// the text when it has no escapes.
struct Key<'a>(Cow<'a, str>);

// Keys are compared often and are short: on wasm32 the C library's
// byte-by-byte `memcmp` would dominate.
impl PartialEq for Key<'_> {
    fn eq(&self, other: &Self) -> bool {
        same(&self.0, &other.0)
    }
}

impl Eq for Key<'_> {}

impl PartialOrd for Key<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        order(&self.0, &other.0)
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// An object text's members as (key, value text), sorted by key as
/// `serde_json::Map` keeps them; of a key written twice, the last value (as
/// serde_json keeps it). Read by the scanner, or by serde_json when the
/// scanner does not take the text (which then panics if it is not JSON).
fn members(text: &str) -> Vec<(Key<'_>, &str)> {
    let scanned = || {
        let mut scan = Scan::new(text);
        let mut members = Vec::new();
        scan.object(|scan, key| {
            members.push((Key(key), scan.value_unchecked()?));
            Some(())
        })?;
        scan.at_end().then_some(members)
    };
    let Some(mut members) = scanned() else {
        let map: BTreeMap<Key, &RawValue> = parse(text);
        return map.into_iter().map(|(k, v)| (k, v.get())).collect();
    };
    if !members.windows(2).all(|pair| pair[0].0 < pair[1].0) {
        // Stable: of equal keys the last one written stays last.
        members.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(Key<'_>, &str)> = Vec::with_capacity(members.len());
        for member in members {
            match kept.last_mut() {
                Some(last) if last.0 == member.0 => *last = member,
                _ => kept.push(member),
            }
        }
        members = kept;
    }
    members
}

/// An array text's elements' texts, read like [`members`].
fn elements(text: &str) -> Vec<&str> {
    let scanned = || {
        let mut scan = Scan::new(text);
        let mut elements = Vec::new();
        scan.array(|scan, _| {
            elements.push(scan.value_unchecked()?);
            Some(())
        })?;
        scan.at_end().then_some(elements)
    };
    scanned().unwrap_or_else(|| {
        let raw: Vec<&RawValue> = parse(text);
        raw.into_iter().map(RawValue::get).collect()
    })
}

/// Parses a part of a JSON text that is known to be valid.
fn parse<'a, T: Deserialize<'a>>(text: &'a str) -> T {
    match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => panic!("not JSON ({e}): {text}"),
    }
}

/// Whether `text` holds `byte`.
fn has(text: &str, byte: u8) -> bool {
    text.bytes().any(|b| b == byte)
}

/// Whether a number's text has an exponent (`e` or `E`).
fn has_exponent(number: &str) -> bool {
    number.bytes().any(|b| b | 0x20 == b'e')
}

fn is_number(first: u8) -> bool {
    first == b'-' || first.is_ascii_digit()
}

/// JSON text without the whitespace JSON allows around a value.
fn trim(text: &str) -> &str {
    text.trim_matches([' ', '\t', '\n', '\r'])
}

/// Appends `value` as compact JSON text with object members sorted by key:
/// what `serde_json::to_string` writes for it (without `preserve_order`).
pub(crate) fn push_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => out.push_str(number.as_str()),
        Value::String(text) => push_json_string(out, text),
        Value::Array(elements) => {
            out.push('[');
            for (index, element) in elements.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                push_json(out, element);
            }
            out.push(']');
        }
        Value::Object(members) => {
            let mut push_members = |members: &mut dyn Iterator<Item = (&String, &Value)>| {
                out.push('{');
                for (index, (key, member)) in members.enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    push_json_string(out, key);
                    out.push(':');
                    push_json(out, member);
                }
                out.push('}');
            };
            let keys = || members.keys();
            if keys().zip(keys().skip(1)).all(|(a, b)| a < b) {
                push_members(&mut members.iter());
            } else {
                let mut sorted: Vec<_> = members.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(b.0));
                push_members(&mut sorted.into_iter());
            }
        }
    }
}

/// Appends `s` as a JSON string, escaped exactly as serde_json escapes it:
/// `"`, `\\`, and control characters (`\b \t \n \f \r`, others `\u00xx`).
pub(crate) fn push_json_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    loop {
        // Runs of bytes that stand for themselves are copied whole.
        let at = crate::scan::plain_run(bytes, start);
        out.push_str(&s[start..at]);
        let Some(&b) = bytes.get(at) else { break };
        let escape = ESCAPE[usize::from(b)];
        out.push('\\');
        out.push(char::from(escape));
        if escape == b'u' {
            out.push_str("00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        start = at + 1;
    }
    out.push('"');
}

/// For each byte, the letter after `\` that escapes it in a JSON string, or
/// 0 when it stands for itself.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Appends `/token` with RFC 6901 escaping (`~` → `~0` first, then `/` → `~1`).
fn push_token(path: &mut String, token: &str) {
    path.push('/');
    if !token.contains(['~', '/']) {
        path.push_str(token);
        return;
    }
    for c in token.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
}

fn push_index(path: &mut String, index: usize) {
    path.push('/');
    path.push_str(&index.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_documents_give_an_empty_patch() {
        let doc = json!({"a": [1, {"b": null}], "c": "x"});
        assert_eq!(diff(&doc, &doc), json!([]));
    }

    #[test]
    fn objects_add_remove_replace() {
        let old = json!({"keep": 1, "gone": true, "change": "a", "nested": {"x": 1}});
        let new = json!({"keep": 1, "change": "b", "nested": {"x": 2}, "new": [1]});
        assert_eq!(
            diff(&old, &new),
            json!([
                {"op": "replace", "path": "/change", "value": "b"},
                {"op": "remove", "path": "/gone"},
                {"op": "replace", "path": "/nested/x", "value": 2},
                {"op": "add", "path": "/new", "value": [1]},
            ])
        );
    }

    #[test]
    fn arrays_shrink_from_the_end_and_grow_at_the_tail() {
        assert_eq!(
            diff(&json!([1, 2, 3, 4]), &json!([1, 5])),
            json!([
                {"op": "replace", "path": "/1", "value": 5},
                {"op": "remove", "path": "/3"},
                {"op": "remove", "path": "/2"},
            ])
        );
        assert_eq!(
            diff(&json!([1]), &json!([1, 2, {"a": 3}])),
            json!([
                {"op": "add", "path": "/1", "value": 2},
                {"op": "add", "path": "/2", "value": {"a": 3}},
            ])
        );
    }

    #[test]
    fn keys_are_escaped_tilde_first() {
        let old = json!({"a/b": 1, "m~n": 1, "~1": 1});
        let new = json!({"a/b": 2, "m~n": 2, "~1": 2});
        assert_eq!(
            diff(&old, &new),
            json!([
                {"op": "replace", "path": "/a~1b", "value": 2},
                {"op": "replace", "path": "/m~0n", "value": 2},
                {"op": "replace", "path": "/~01", "value": 2},
            ])
        );
    }

    #[test]
    fn type_change_and_root_replace() {
        assert_eq!(
            diff(&json!({"a": {"b": 1}}), &json!({"a": [1]})),
            json!([{"op": "replace", "path": "/a", "value": [1]}])
        );
        assert_eq!(
            diff(&json!(1), &json!("1")),
            json!([{"op": "replace", "path": "", "value": "1"}])
        );
    }

    #[test]
    fn big_numbers_differ_by_their_last_digit() {
        let old: Value =
            serde_json::from_str(r#"{"n": 12345678901234567890123456789012345678}"#).unwrap();
        let new: Value =
            serde_json::from_str(r#"{"n": 12345678901234567890123456789012345679}"#).unwrap();
        let patch = diff(&old, &new);
        assert_eq!(
            serde_json::to_string(&patch).unwrap(),
            r#"[{"op":"replace","path":"/n","value":12345678901234567890123456789012345679}]"#
        );
    }

    /// The text diff as compact text.
    fn text_patch(old: &str, new: &str) -> String {
        let mut out = String::new();
        write_patch(old, new, &mut out);
        out
    }

    #[test]
    fn text_patch_matches_the_value_patch_on_examples() {
        let old = r#"{"a/b":1,"gone":[1,2,3],"m~n":{"x":"é\n"},"n":1.10,"s":"x"}"#;
        let new = r#"{"a/b":2,"gone2":true,"m~n":{"x":"é\t"},"n":1.1,"s":"x"}"#;
        let expected = diff(
            &serde_json::from_str(old).unwrap(),
            &serde_json::from_str(new).unwrap(),
        );
        assert_eq!(
            text_patch(old, new),
            serde_json::to_string(&expected).unwrap()
        );
        assert_eq!(text_patch("{}", "{}"), "[]");
        assert_eq!(
            text_patch(r#"{"a":1}"#, r#" {"a" : 1.0 } "#),
            r#"[{"op":"replace","path":"/a","value":1.0}]"#
        );
    }

    #[test]
    fn text_patch_compares_strings_and_numbers_by_value() {
        // Escaped and unescaped forms of the same string, the same number.
        assert_eq!(
            text_patch(
                r#"{"s":"é/","n":1E5,"l":[ 1 ]}"#,
                r#"{"s":"\u00e9\/","n":1e+5,"l":[1]}"#
            ),
            "[]"
        );
        assert_eq!(
            text_patch(r#"{"\u0061":1}"#, r#"{"a":2}"#),
            r#"[{"op":"replace","path":"/a","value":2}]"#
        );
    }

    #[test]
    fn of_a_key_written_twice_the_last_value_counts_as_in_serde_json() {
        for (old, new) in [
            (r#"{"a":1,"b":0,"a":2}"#, r#"{"b":0,"a":2}"#),
            (r#"{"a":1,"a":2}"#, r#"{"a":3,"a":1}"#),
            (
                r#"{"b":[1,{"x":1,"x":2}]}"#,
                r#"{"b":[1,{"x":1}],"b":[1,{"x":2}]}"#,
            ),
        ] {
            let expected = diff(
                &serde_json::from_str(old).unwrap(),
                &serde_json::from_str(new).unwrap(),
            );
            assert_eq!(
                text_patch(old, new),
                serde_json::to_string(&expected).unwrap(),
                "{old} → {new}"
            );
        }
        assert_eq!(
            text_patch(r#"{"a":1,"b":0,"a":2}"#, r#"{"b":0,"a":2}"#),
            "[]"
        );
    }

    #[test]
    fn values_are_written_as_serde_json_writes_them() {
        for text in [
            r#"{"pk":"a\"b\u0001é","sk":1.50,"z":[true,false,null,{"b":1,"a":-2e5}],"e":{}}"#,
            r#"[]"#,
            r#""x""#,
            r#"123456789012345678901234567890"#,
        ] {
            let value: Value = serde_json::from_str(text).unwrap();
            let mut out = String::new();
            push_json(&mut out, &value);
            assert_eq!(out, serde_json::to_string(&value).unwrap());
        }
    }

    #[test]
    fn json_strings_are_escaped_as_serde_json_does() {
        for s in [
            "",
            "plain",
            "q\"b\\s/",
            "\u{0}\u{1f}\u{7f}\u{8}\t\n\u{c}\r",
            "é€😀",
        ] {
            let mut out = String::new();
            push_json_string(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap());
        }
    }

    mod prop {
        use proptest::prelude::*;
        use serde_json::{Map, Value};

        use super::super::diff;
        use super::text_patch;

        fn number() -> impl Strategy<Value = Value> {
            prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                // Up to 40 digits, fraction and exponent: never through f64.
                (
                    "-?[1-9][0-9]{0,39}",
                    "(\\.[0-9]{1,5})?",
                    "([eE][+-]?[1-9][0-9]?)?"
                )
                    .prop_map(|(int, frac, exp)| format!("{int}{frac}{exp}")),
                prop::sample::select(vec!["0", "-0", "0.0", "1.0", "1.00", "1e5", "1E+5"])
                    .prop_map(str::to_string),
            ]
            .prop_map(|text| serde_json::from_str(&text).expect("generated number parses"))
        }

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-c~/ ]{0,4}",
                // Quotes, backslashes, control characters, non-ASCII, astral.
                "[a\"\\\\\u{0}-\u{1f}\u{7f}é€😀/]{0,5}",
            ]
        }

        fn key() -> impl Strategy<Value = String> {
            prop_oneof![
                prop::sample::select(vec!["a", "b", "", "/", "~", "a/b", "~1", "~0", "m~n/", "é"])
                    .prop_map(str::to_string),
                text(),
            ]
        }

        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                number(),
                text().prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::btree_map(key(), inner, 0..6)
                        .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
                ]
            })
        }

        /// An object and a variant of it: some members changed, removed or
        /// added, nested documents edited the same way.
        fn pair() -> impl Strategy<Value = (Value, Value)> {
            (json(), json(), any::<u64>()).prop_map(|(old, other, seed)| {
                let old = Value::Object([("d".to_string(), old)].into_iter().collect());
                let mut new = old.clone();
                mutate(&mut new, &other, seed);
                (old, new)
            })
        }

        fn mutate(value: &mut Value, graft: &Value, seed: u64) {
            let pick = seed % 7;
            match value {
                Value::Object(m) => {
                    let keys: Vec<String> = m.keys().cloned().collect();
                    for (i, k) in keys.iter().enumerate() {
                        let s = seed.rotate_left(i as u32 * 5 + 3);
                        match s % 5 {
                            0 => {
                                m.remove(k);
                            }
                            1 => mutate(m.get_mut(k).unwrap(), graft, s / 5),
                            2 => {
                                m.insert(k.clone(), graft.clone());
                            }
                            _ => {}
                        }
                    }
                    if pick == 0 {
                        m.insert(format!("new~/{seed}"), graft.clone());
                    }
                }
                Value::Array(a) => {
                    for (i, v) in a.iter_mut().enumerate() {
                        mutate(v, graft, seed.rotate_left(i as u32 * 7 + 1) / 3);
                    }
                    match pick {
                        0 => a.push(graft.clone()),
                        1 => {
                            a.pop();
                        }
                        _ => {}
                    }
                }
                other if pick == 2 => *other = graft.clone(),
                _ => {}
            }
        }

        /// `value` as valid but non-canonical JSON text: whitespace, keys in
        /// reverse order, every non-ASCII character and `/` as `\u` escapes.
        fn loose(value: &Value, out: &mut String) {
            match value {
                Value::Object(m) => {
                    out.push_str("{ ");
                    for (i, (k, v)) in m.iter().rev().enumerate() {
                        if i > 0 {
                            out.push_str(" ,\n");
                        }
                        escaped(k, out);
                        out.push_str(" : ");
                        loose(v, out);
                    }
                    out.push_str(" }");
                }
                Value::Array(a) => {
                    out.push_str("[ ");
                    for (i, v) in a.iter().enumerate() {
                        if i > 0 {
                            out.push_str("\t, ");
                        }
                        loose(v, out);
                    }
                    out.push(']');
                }
                Value::String(s) => escaped(s, out),
                other => out.push_str(&other.to_string()),
            }
        }

        fn escaped(s: &str, out: &mut String) {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if c.is_ascii() && c != '/' && !c.is_ascii_control() => out.push(c),
                    c => {
                        let mut units = [0u16; 2];
                        for unit in c.encode_utf16(&mut units) {
                            out.push_str(&format!("\\u{unit:04X}"));
                        }
                    }
                }
            }
            out.push('"');
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]

            /// On canonical text, byte for byte what the value diff serializes to.
            #[test]
            fn text_patch_equals_value_patch((old, new) in pair()) {
                let expected = serde_json::to_string(&diff(&old, &new)).unwrap();
                prop_assert_eq!(text_patch(&old.to_string(), &new.to_string()), expected);
            }

            /// Unrelated documents, too.
            #[test]
            fn text_patch_equals_value_patch_on_any_documents(old in json(), new in json()) {
                let expected = serde_json::to_string(&diff(&old, &new)).unwrap();
                prop_assert_eq!(text_patch(&old.to_string(), &new.to_string()), expected);
            }

            /// Values as serde_json writes them (the keys' text).
            #[test]
            fn values_are_written_as_serde_json_writes_them_on_any_documents(value in json()) {
                let mut out = String::new();
                super::super::push_json(&mut out, &value);
                prop_assert_eq!(out, value.to_string());
            }

            /// On loose text (escapes, whitespace, any key order), the same
            /// operations as values.
            #[test]
            fn text_patch_of_loose_text_equals_value_patch((old, new) in pair()) {
                let (mut old_text, mut new_text) = (String::new(), String::new());
                loose(&old, &mut old_text);
                loose(&new, &mut new_text);
                prop_assert_eq!(serde_json::from_str::<Value>(&old_text).unwrap(), old.clone());
                let patch: Value = serde_json::from_str(&text_patch(&old_text, &new_text)).unwrap();
                prop_assert_eq!(patch, diff(&old, &new));
            }
        }
    }
}
