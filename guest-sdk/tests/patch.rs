//! `relay_sdk::patch` and `Record::patch` agree: each turns a record's old
//! image into its new one.

use relay_sdk::patch::{apply, diff, Patch};
use relay_sdk::testing::record;
use relay_sdk::Operation;
use serde_json::{json, Value};

fn pairs() -> Vec<(Value, Value)> {
    vec![
        (
            json!({"id": "o-1", "status": "NEW"}),
            json!({"id": "o-1", "status": "PAID"}),
        ),
        (
            json!({"id": "o-2", "lines": [1, 2, 3], "a/b": {"c~d": 1}}),
            json!({"id": "o-2", "lines": [3], "a/b": {"c~d": 2, "e": null}}),
        ),
        (
            json!({"id": "o-3", "total": 12.50, "tags": ["x"]}),
            json!({"id": "o-3", "tags": ["x", "y"], "note": "gift"}),
        ),
        (json!({"id": "o-4"}), json!({"id": "o-4"})),
    ]
}

#[test]
fn record_patches_agree_with_json_patch() {
    for (old, new) in pairs() {
        let keys = json!({"id": old["id"].clone()});
        let rec = record(
            Operation::Modify,
            keys,
            Some(old.clone()),
            Some(new.clone()),
        );

        let ours: Patch = serde_json::from_value(rec.patch()).expect("an RFC 6902 patch");
        let mut doc = old.clone();
        apply(&mut doc, &ours).expect("Record::patch applies");
        assert_eq!(doc, new, "Record::patch turns {old} into {new}");

        let theirs = diff(&old, &new);
        let mut doc = old.clone();
        apply(&mut doc, &theirs).expect("diff applies");
        assert_eq!(doc, new, "patch::diff turns {old} into {new}");
    }
}

#[test]
fn a_patch_that_does_not_fit_is_an_error() {
    let patch: Patch =
        serde_json::from_value(json!([{"op": "remove", "path": "/missing"}])).unwrap();
    let mut doc = json!({"id": "o-1"});
    assert!(apply(&mut doc, &patch).is_err());
}
