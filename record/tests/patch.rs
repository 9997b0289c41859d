//! `json_patch(old, new)` applied to `old` gives `new`, checked against an
//! independent RFC 6902 `apply` for random documents.

use proptest::prelude::*;
use relay_record::json_patch;
use serde_json::{json, Map, Value};

/// Applies an RFC 6902 patch (add, remove, replace) to `doc`.
fn apply(doc: &Value, patch: &Value) -> Result<Value, String> {
    let mut doc = doc.clone();
    for op in patch.as_array().ok_or("patch is not an array")? {
        let path = op["path"].as_str().ok_or("op without path")?;
        let tokens = parse_pointer(path)?;
        match op["op"].as_str().ok_or("op without name")? {
            "add" => add(
                &mut doc,
                &tokens,
                op.get("value").ok_or("add without value")?,
            )?,
            "remove" => remove(&mut doc, &tokens)?,
            "replace" => {
                let value = op.get("value").ok_or("replace without value")?.clone();
                *target(&mut doc, &tokens)? = value;
            }
            other => return Err(format!("unexpected op {other}")),
        }
    }
    Ok(doc)
}

/// RFC 6901: `""` is the root; otherwise `/`-separated tokens with `~1` → `/`
/// and then `~0` → `~`.
fn parse_pointer(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(vec![]);
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| format!("pointer {path:?} does not start with /"))?;
    rest.split('/')
        .map(|t| {
            // Every `~` must start `~0` or `~1`.
            let bytes = t.as_bytes();
            for (i, b) in bytes.iter().enumerate() {
                if *b == b'~' && !matches!(bytes.get(i + 1), Some(b'0' | b'1')) {
                    return Err(format!("bad escape in {path:?}"));
                }
            }
            Ok(t.replace("~1", "/").replace("~0", "~"))
        })
        .collect()
}

fn index(token: &str, len: usize) -> Result<usize, String> {
    if token != "0" && token.starts_with('0') {
        return Err(format!("index {token:?} has a leading zero"));
    }
    let i: usize = token.parse().map_err(|_| format!("bad index {token:?}"))?;
    if i >= len {
        return Err(format!("index {i} out of bounds ({len})"));
    }
    Ok(i)
}

fn target<'a>(doc: &'a mut Value, tokens: &[String]) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for t in tokens {
        cur = match cur {
            Value::Object(m) => m.get_mut(t).ok_or_else(|| format!("no key {t:?}"))?,
            Value::Array(a) => {
                let i = index(t, a.len())?;
                &mut a[i]
            }
            _ => return Err(format!("cannot descend into a scalar at {t:?}")),
        };
    }
    Ok(cur)
}

fn add(doc: &mut Value, tokens: &[String], value: &Value) -> Result<(), String> {
    let Some((last, parent)) = tokens.split_last() else {
        *doc = value.clone();
        return Ok(());
    };
    match target(doc, parent)? {
        Value::Object(m) => {
            m.insert(last.clone(), value.clone());
        }
        Value::Array(a) => {
            let i = if last == "-" {
                a.len()
            } else {
                index(last, a.len() + 1)?
            };
            a.insert(i, value.clone());
        }
        _ => return Err("add into a scalar".into()),
    }
    Ok(())
}

fn remove(doc: &mut Value, tokens: &[String]) -> Result<(), String> {
    let (last, parent) = tokens.split_last().ok_or("cannot remove the root")?;
    match target(doc, parent)? {
        Value::Object(m) => m
            .remove(last)
            .map(drop)
            .ok_or_else(|| format!("no key {last:?} to remove")),
        Value::Array(a) => {
            let i = index(last, a.len())?;
            a.remove(i);
            Ok(())
        }
        _ => Err("remove from a scalar".into()),
    }
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        // Up to 38 significant digits, with fraction and exponent: never f64.
        (
            "-?[1-9][0-9]{0,37}",
            "(\\.[0-9]{1,5})?",
            "(e-?[1-9][0-9]?)?"
        )
            .prop_map(|(int, frac, exp)| format!("{int}{frac}{exp}")),
        Just("0".to_string()),
    ]
    .prop_map(|text| serde_json::from_str(&text).expect("generated number parses"))
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["a", "b", "c", "", "/", "~", "a/b", "~1", "~0", "m~n/"])
            .prop_map(str::to_string),
        "[a-z~/]{1,4}",
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        "[a-z~/ ]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A document and a variant of it that shares most of its structure.
fn related_pair() -> impl Strategy<Value = (Value, Value)> {
    (json(), json(), any::<prop::sample::Index>()).prop_map(|(old, graft, at)| {
        let mut new = old.clone();
        // Replace one randomly chosen sub-document by `graft`.
        let mut nodes = Vec::new();
        collect_pointers(&new, String::new(), &mut nodes);
        let pointer = &nodes[at.index(nodes.len())];
        *new.pointer_mut(pointer).unwrap() = graft;
        (old, new)
    })
}

fn collect_pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                let escaped = k.replace('~', "~0").replace('/', "~1");
                collect_pointers(v, format!("{at}/{escaped}"), out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                collect_pointers(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn patch_turns_old_into_new(old in json(), new in json()) {
        let patch = json_patch(&old, &new);
        prop_assert_eq!(apply(&old, &patch), Ok(new));
    }

    #[test]
    fn patch_of_related_documents_turns_old_into_new((old, new) in related_pair()) {
        let patch = json_patch(&old, &new);
        prop_assert_eq!(apply(&old, &patch), Ok(new.clone()));
        // Only `replace` may target the root, and only when the root changes.
        if old == new {
            prop_assert_eq!(patch, json!([]));
        }
    }

    #[test]
    fn patch_of_a_document_with_itself_is_empty(doc in json()) {
        prop_assert_eq!(json_patch(&doc, &doc), json!([]));
    }
}

#[test]
fn apply_handles_escapes_and_the_dash_index() {
    let doc = json!({"a/b": {"~": [1]}});
    let patch = json!([
        {"op": "add", "path": "/a~1b/~0/-", "value": 2},
        {"op": "replace", "path": "/a~1b/~0/0", "value": 0},
    ]);
    assert_eq!(apply(&doc, &patch), Ok(json!({"a/b": {"~": [0, 2]}})));
}

#[test]
fn big_numbers_keep_their_digits() {
    let old: Value = serde_json::from_str(r#"{"n": [1e130, 0.1]}"#).unwrap();
    let new: Value =
        serde_json::from_str(r#"{"n": [1e130, 0.10, 99999999999999999999999999999999999999]}"#)
            .unwrap();
    let patch = json_patch(&old, &new);
    assert_eq!(
        serde_json::to_string(&patch).unwrap(),
        r#"[{"op":"replace","path":"/n/1","value":0.10},{"op":"add","path":"/n/2","value":99999999999999999999999999999999999999}]"#
    );
    assert_eq!(apply(&old, &patch), Ok(new));
}

#[test]
fn removing_several_tail_elements_keeps_indices_valid() {
    let old = json!([[1, 2, 3, 4, 5], {"x": [true, false]}]);
    let new = json!([[1], {"x": []}]);
    let patch = json_patch(&old, &new);
    assert_eq!(apply(&old, &patch), Ok(new));
}
