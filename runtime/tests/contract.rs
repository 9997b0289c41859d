//! The WIT contract across versions: what `relay:transform@0.2.0` added
//! (`record-patch`, the host's patch of the record being transformed), and
//! components of 0.1.0 still loading and mapping as before.

use std::sync::Arc;

use relay::transform::{Limits, TransformEngine, TransformModule};
use relay_record::{Operation, Record};
use serde_json::{json, Value};

fn engine() -> &'static TransformEngine {
    static ENGINE: std::sync::OnceLock<TransformEngine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| TransformEngine::new().expect("engine"))
}

fn module(path: &std::path::Path) -> Arc<TransformModule> {
    engine().load(path).expect("the component loads")
}

fn body(event: &relay::transform::Event) -> Value {
    serde_json::from_str(event.body.get()).expect("bodies are JSON")
}

#[test]
fn record_patch_is_the_hosts_patch_prepared_for_a_guest_that_asked_and_handed_over_once() {
    let records = [
        relay_record::testing::record(
            Operation::Modify,
            json!({"id": "A-1"}),
            Some(json!({"id": "A-1", "n": 1, "tags": ["a", "b"], "gone": true})),
            Some(json!({"id": "A-1", "n": 2, "tags": ["a"], "new": {"x": "é/~"}})),
        ),
        relay_record::testing::record(
            Operation::Insert,
            json!({"id": "A-2"}),
            None,
            Some(json!({"id": "A-2"})),
        ),
        relay_record::testing::record(
            Operation::Remove,
            json!({"id": "A-3"}),
            Some(json!({"id": "A-3", "n": 1.50})),
            None,
        ),
    ];
    let hostile = module(&relay_testkit::guest("hostile"));
    // A guest that asked in `init` (answered none) finds the patch ready
    // from its first record; one that did not finds nothing prepared on
    // its very first ask, and the patch ready from then on.
    for (settings, unprepared_calls) in [
        (r#"{"mode":"record-patch","ask_in_init":true}"#, 0),
        (r#"{"mode":"record-patch"}"#, 1),
    ] {
        let mut instance = hostile
            .instantiate(settings, Limits::default())
            .expect("hostile guest starts");
        for call in 0..2 * records.len() {
            let record = &records[call % records.len()];
            let events = instance
                .transform(record)
                .expect("the guest maps the record");
            let said = body(&events[0]);
            let expected = record.patch();
            if call < unprepared_calls {
                assert_eq!(
                    said["first"],
                    Value::Null,
                    "{settings}: nothing prepared yet"
                );
            } else {
                let first = said["first"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{settings}, call {call}: the host answers: {said}"));
                let first: Value = serde_json::from_str(first).expect("the host's patch is JSON");
                assert_eq!(
                    first, expected,
                    "{settings}: the host's patch is Record::patch"
                );
            }
            assert_eq!(
                said["second"],
                Value::Null,
                "asked again in the same call: none"
            );
            assert_eq!(said["in_init"], Value::Null, "no record during init: none");
            assert_eq!(said["sdk"], expected, "the SDK then diffs the texts itself");
        }
    }
}

/// The records of the `data-change` fixtures, `relay test`'s input.
fn fixture_records() -> Vec<Record> {
    ["orders.json", "edge-cases.json"]
        .iter()
        .flat_map(|file| {
            relay_record::testing::records(relay_testkit::fixture(&format!(
                "transforms/data-change/fixtures/{file}"
            )))
        })
        .collect()
}

#[test]
fn components_of_0_1_0_still_load_and_map_as_the_current_ones() {
    let settings = std::fs::read_to_string(relay_testkit::fixture(
        "transforms/data-change/fixtures/settings.json",
    ))
    .expect("settings fixture");
    let old = module(&relay_testkit::fixture(
        "runtime/tests/contract/data_change_0_1_0.wasm",
    ));
    let new = module(&relay_testkit::guest("data-change"));
    let mut old = old
        .instantiate(&settings, Limits::default())
        .expect("a 0.1.0 component starts");
    let mut new = new
        .instantiate(&settings, Limits::default())
        .expect("the current component starts");
    let records = fixture_records();
    assert!(records.len() > 5, "the fixtures hold records");
    for record in &records {
        let (a, b) = (old.transform(record), new.transform(record));
        match (a, b) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.len(), b.len(), "record {}", record.sequence_number);
                for (a, b) in a.iter().zip(&b) {
                    assert_eq!(a.event_type, b.event_type);
                    assert_eq!(a.key, b.key);
                    assert_eq!(
                        a.body.get(),
                        b.body.get(),
                        "record {}: the same body byte for byte",
                        record.sequence_number
                    );
                }
            }
            (Err(a), Err(b)) => assert_eq!(a.kind.to_string(), b.kind.to_string()),
            (a, b) => panic!("record {}: {a:?} against {b:?}", record.sequence_number),
        }
    }
}
