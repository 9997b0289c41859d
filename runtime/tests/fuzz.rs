//! Fuzzing with proptest (cargo-fuzz needs nightly): the DynamoDB decoder
//! (`relay_record::dynamodb`, and the host's intake that uses it) and the
//! settings path (the configuration file, and the settings text every
//! example transform's `init` receives) take arbitrary bytes, mutated seeds
//! and generated attribute values without panicking, and what they accept
//! is well formed.
//!
//! The SQS envelope reader (what re-drive reads back from the queue: plain,
//! compressed, claim-check pointers) takes the same treatment.
//!
//! The seeds are kept in `runtime/tests/fuzz/{dynamodb,settings,config,envelope}/`;
//! [`the_corpus_replays`] runs each of them, and the proptests mutate them.
//! An input that once broke something belongs there. Proptest keeps its own
//! shrunk failures in `fuzz.proptest-regressions`. More cases:
//! `PROPTEST_CASES=100000 cargo test -p relay --test fuzz`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use relay::config::{Overrides, RawConfig};
use relay::transform::{Limits, LoadError, TransformEngine, TransformErrorKind, TransformModule};
use relay_record::Record;
use serde_json::value::RawValue;
use serde_json::Value;

fn corpus(kind: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(kind);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

fn seeds(kind: &str) -> Vec<Vec<u8>> {
    corpus(kind).into_iter().map(|(_, bytes)| bytes).collect()
}

// ---- Targets ----------------------------------------------------------

/// A decoded record is well formed: its images are JSON objects (as text),
/// its keys an object.
fn well_formed(record: &Record) {
    assert!(record.keys.is_object(), "keys {}", record.keys);
    for image in [&record.old_image, &record.new_image].into_iter().flatten() {
        let value: Value = serde_json::from_str(image.json())
            .unwrap_or_else(|e| panic!("image text is not JSON ({e}): {}", image.json()));
        assert!(
            value.is_object(),
            "image is not an object: {}",
            image.json()
        );
    }
}

/// The decoder on `bytes`: as `relay test` reads a file, and as the Lambda
/// reads its event. Deterministic, and what it accepts is well formed.
fn decode(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let first = relay_record::dynamodb::parse_records(&text);
    let again = relay_record::dynamodb::parse_records(&text);
    assert_eq!(
        format!("{first:?}"),
        format!("{again:?}"),
        "not deterministic"
    );
    if let Ok(records) = first {
        records.iter().flatten().for_each(well_formed);
    }
    if let Ok(event) = serde_json::from_str::<Box<RawValue>>(&text) {
        if let Ok(batch) = relay::pipeline::intake::split(&event) {
            for incoming in &batch {
                // The label is what logs and the response use.
                assert!(!incoming.label().is_empty());
                if let Ok(record) = &incoming.decoded {
                    well_formed(record);
                }
            }
        }
    }
}

/// A parked message body, as re-drive reads it from the queue: an envelope
/// (plain, compressed) or a claim-check pointer, or refused with a reason;
/// never a panic. What it accepts is complete and writes back the same.
fn unpark(bytes: &[u8]) {
    use relay::park::envelope::{decode, encode, to_json, Stored};
    let text = String::from_utf8_lossy(bytes);
    match decode(&text) {
        Ok(Stored::Envelope(envelope)) => {
            envelope
                .validate()
                .expect("accepted envelopes are complete");
            let unit = envelope.unit();
            let body = encode(&to_json(&envelope), 1 << 20).expect("fits a queue");
            match decode(&body) {
                Ok(Stored::Envelope(again)) => assert_eq!(again.unit(), unit),
                other => panic!("a written envelope reads back as {other:?}"),
            }
        }
        Ok(Stored::Pointer(pointer)) => {
            assert!(relay::park::UnitId::parse(&pointer.unit).is_some());
            // A payload that is not the one pointed at is refused.
            assert!(pointer.open(bytes).is_err() || pointer.sha256.len() == 64);
        }
        Err(reason) => assert!(!reason.is_empty()),
    }
}

/// The configuration file: parsed and validated, or refused with a message.
fn configure(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    match RawConfig::parse(&text) {
        Ok(raw) => match raw.validate(Path::new("/etc/relay"), &Overrides::default()) {
            Ok(config) => {
                for table in config.tables.values() {
                    // Settings reach the guest as a JSON object text.
                    let settings: Value = serde_json::from_str(&table.settings).unwrap();
                    assert!(settings.is_object(), "{}", table.settings);
                }
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        },
        Err(message) => assert!(!message.is_empty()),
    }
}

fn engine() -> &'static TransformEngine {
    static ENGINE: OnceLock<TransformEngine> = OnceLock::new();
    ENGINE.get_or_init(|| TransformEngine::new().expect("engine"))
}

/// The example transforms and the hostile guest.
fn guests() -> &'static [Arc<TransformModule>] {
    static GUESTS: OnceLock<Vec<Arc<TransformModule>>> = OnceLock::new();
    GUESTS.get_or_init(|| {
        ["data-change", "order-status", "hostile"]
            .iter()
            .map(|name| {
                engine()
                    .load(&relay_testkit::guest(name))
                    .expect("guest loads")
            })
            .collect()
    })
}

/// Settings text handed to every guest's `init` (WIT strings are UTF-8):
/// accepted, or refused as invalid settings; never a trap or a timeout.
fn settle(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for module in guests() {
        match module.instantiate(&text, Limits::default()) {
            Ok(_) => {}
            Err(LoadError::Init {
                reason: TransformErrorKind::Guest(message),
                ..
            }) => assert!(
                message.starts_with("invalid settings"),
                "{}: {message}",
                module.name()
            ),
            Err(other) => panic!("{} on settings {text:?}: {other}", module.name()),
        }
    }
}

// ---- Inputs -----------------------------------------------------------

/// Fragments worth splicing into JSON: DynamoDB type keys, odd numbers and
/// base64, escapes, structure.
const TOKENS: &[&str] = &[
    r#"{"N":"1e400"}"#,
    r#"{"N":"-"}"#,
    r#"{"N":"99999999999999999999999999999999999999999"}"#,
    r#"{"N":"1E+"}"#,
    r#"{"N":" 1"}"#,
    r#"{"B":"=="}"#,
    r#"{"B":"QQ="}"#,
    r#"{"BS":[null]}"#,
    r#"{"NULL":false}"#,
    r#"{"M":{"":{"S":""}}}"#,
    r#"{"L":[{"L":[{"L":[]}]}]}"#,
    r#"{"SS":[]}"#,
    r#""\ud800""#,
    r#""\u0000""#,
    r#""NewImage":null"#,
    r#""OldImage":{}"#,
    r#""Keys":[]"#,
    r#""SequenceNumber":"""#,
    r#""SequenceNumber":1"#,
    r#""eventName":"REMOVE""#,
    r#""eventSourceARN":"arn:aws:dynamodb:x:1:table//stream/x""#,
    r#""ApproximateCreationDateTime":-1e308"#,
    "[[[[[[[[[[[[[[[[",
    "}}}}",
    ",",
    ":",
    "\"",
    "\\",
    "1e99999",
    "-0",
    "true",
    "é",
];

/// One of `seeds`, with a few byte edits and spliced tokens.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let edit = (
        0u8..5,
        any::<prop::sample::Index>(),
        any::<u8>(),
        0..TOKENS.len(),
    );
    (
        any::<prop::sample::Index>(),
        prop::collection::vec(edit, 1..8),
    )
        .prop_map(move |(seed, edits)| {
            let mut bytes = seed.get(&seeds).clone();
            for (op, at, byte, token) in edits {
                let at = if bytes.is_empty() {
                    0
                } else {
                    at.index(bytes.len())
                };
                match op {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    2 => bytes.insert(at, byte),
                    3 => {
                        bytes.splice(at..at, TOKENS[token].bytes());
                    }
                    // Cut the input short.
                    _ => bytes.truncate(at),
                }
            }
            bytes
        })
}

/// A DynamoDB attribute value, mostly well formed, sometimes not.
fn attribute_value() -> impl Strategy<Value = Value> {
    use serde_json::json;
    let number = prop_oneof![
        "-?[0-9]{1,40}(\\.[0-9]{0,40})?([eE][-+]?[0-9]{1,4})?",
        "[-+.0-9eE]{0,6}",
        ".{0,8}",
    ];
    let base64 = prop_oneof!["([A-Za-z0-9+/]{4}){0,4}([A-Za-z0-9+/]{2}==)?", ".{0,8}"];
    let leaf = prop_oneof![
        ".{0,12}".prop_map(|s| json!({ "S": s })),
        number.clone().prop_map(|n| json!({ "N": n })),
        base64.clone().prop_map(|b| json!({ "B": b })),
        any::<bool>().prop_map(|b| json!({ "BOOL": b })),
        any::<bool>().prop_map(|b| json!({ "NULL": b })),
        prop::collection::vec(".{0,6}", 0..4).prop_map(|v| json!({ "SS": v })),
        prop::collection::vec(number, 0..4).prop_map(|v| json!({ "NS": v })),
        prop::collection::vec(base64, 0..4).prop_map(|v| json!({ "BS": v })),
        Just(json!({})),
        Just(json!({"S": "a", "N": "1"})),
        Just(json!({"X": 1})),
        Just(json!(null)),
        Just(json!("S")),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| serde_json::json!({ "L": v })),
            prop::collection::btree_map(".{0,6}", inner, 0..6)
                .prop_map(|m| serde_json::json!({ "M": m })),
        ]
    })
}

// ---- Tests ------------------------------------------------------------

#[test]
fn the_corpus_replays() {
    let dynamodb = corpus("dynamodb");
    let settings = corpus("settings");
    let config = corpus("config");
    assert!(dynamodb.len() >= 10 && settings.len() >= 5 && config.len() >= 2);
    for (path, bytes) in &dynamodb {
        eprintln!("{}", path.display());
        decode(bytes);
    }
    for (path, bytes) in &settings {
        eprintln!("{}", path.display());
        settle(bytes);
    }
    for (path, bytes) in &config {
        eprintln!("{}", path.display());
        configure(bytes);
    }
    let envelopes = corpus("envelope");
    assert!(envelopes.len() >= 4);
    for (path, bytes) in &envelopes {
        eprintln!("{}", path.display());
        unpark(bytes);
        // Every envelope seed is one re-drive reads.
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            relay::park::envelope::decode(&text).is_ok(),
            "{}",
            path.display()
        );
    }
    // The good seeds are still good, so the mutations start from inputs
    // that reach deep into the decoder and the settings.
    let seed = |files: &[(PathBuf, Vec<u8>)], name: &str| {
        let (_, bytes) = files.iter().find(|(p, _)| p.ends_with(name)).unwrap();
        String::from_utf8(bytes.clone()).unwrap()
    };
    let records =
        relay_record::dynamodb::parse_records(&seed(&dynamodb, "edge-cases.json")).unwrap();
    assert!(records.iter().all(Result::is_ok));
    RawConfig::parse(&seed(&config, "relay.toml"))
        .unwrap()
        .validate(Path::new("/etc/relay"), &Overrides::default())
        .expect("the seed config is valid");
    guests()[0]
        .instantiate(&seed(&settings, "data-change.json"), Limits::default())
        .expect("data-change takes its seed settings");
}

proptest! {
    #[test]
    fn the_decoder_takes_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode(&bytes);
    }

    #[test]
    fn the_decoder_takes_mutated_records(bytes in mutated(seeds("dynamodb"))) {
        decode(&bytes);
    }

    #[test]
    fn attribute_values_decode_or_fail_cleanly(value in attribute_value()) {
        let first = relay_record::dynamodb::decode_value(&value);
        prop_assert_eq!(format!("{first:?}"), format!("{:?}", relay_record::dynamodb::decode_value(&value)));
        if let Ok(decoded) = first {
            // What it produces survives a round trip through JSON text.
            let text = serde_json::to_string(&decoded).unwrap();
            let back: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(serde_json::to_string(&back).unwrap(), text);
        }
        // The same value as an item image inside a whole record.
        let record = serde_json::json!({"Records": [{
            "eventID": "1", "eventName": "INSERT",
            "eventSourceARN": "arn:aws:dynamodb:eu-central-1:1:table/orders/stream/x",
            "dynamodb": {"Keys": {"id": {"S": "k"}}, "SequenceNumber": "1",
                         "NewImage": {"id": {"S": "k"}, "v": value}}
        }]});
        decode(record.to_string().as_bytes());
    }

    #[test]
    fn parked_messages_take_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        unpark(&bytes);
    }

    #[test]
    fn parked_messages_take_mutated_envelopes(bytes in mutated(seeds("envelope"))) {
        unpark(&bytes);
    }

    #[test]
    fn the_config_takes_arbitrary_text(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        configure(&bytes);
    }

    #[test]
    fn the_config_takes_mutated_files(bytes in mutated(seeds("config"))) {
        configure(&bytes);
    }
}

proptest! {
    // Each case instantiates three guests: fewer cases (PROPTEST_CASES
    // still sets them).
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
    ))]

    #[test]
    fn settings_are_accepted_or_refused_never_a_trap(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
        settle(&bytes);
    }

    #[test]
    fn mutated_settings_are_accepted_or_refused_never_a_trap(bytes in mutated(seeds("settings"))) {
        settle(&bytes);
    }
}
