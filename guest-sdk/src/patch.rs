//! RFC 6902 JSON Patch between two JSON documents.

use serde_json::{json, Map, Value};

/// The RFC 6902 JSON Patch (an array of operations) that turns `old` into `new`.
///
/// ```
/// use serde_json::json;
/// let patch = relay_sdk::json_patch(&json!({"a": 1, "b/c": [1, 2]}), &json!({"a": 2, "b/c": [1]}));
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

/// Appends `/token` with RFC 6901 escaping (`~` → `~0` first, then `/` → `~1`).
fn push_token(path: &mut String, token: &str) {
    path.push('/');
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
}
