//! `json_patch(old, new)` applied to `old` gives `new`, checked with the
//! `json-patch` crate's RFC 6902 `patch` for random documents.

use proptest::prelude::*;
use relay_record::json_patch;
use serde_json::{json, Map, Value};

/// Applies an RFC 6902 patch to `doc` with the `json-patch` crate: an
/// implementation independent of ours is the reference.
fn apply(doc: &Value, patch: &Value) -> Result<Value, String> {
    // Through the text: numbers keep every digit (serde_json's
    // arbitrary_precision), which `from_value` would not hand on.
    let patch: json_patch_crate::Patch =
        serde_json::from_str(&patch.to_string()).map_err(|e| format!("not a patch: {e}"))?;
    let mut doc = doc.clone();
    json_patch_crate::patch(&mut doc, &patch).map_err(|e| e.to_string())?;
    Ok(doc)
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
