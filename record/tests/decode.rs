//! Decoding DynamoDB Streams records: values, records, batches.

use relay_record::dynamodb::{
    decode_item, decode_value, parse_record, parse_records, sequence_number, split_records,
    table_from_arn, DecodeError, InputError,
};
use relay_record::testing;
use relay_record::Operation;
use serde_json::{json, Value};

const ARN: &str =
    "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000";

fn av(text: &str) -> Value {
    serde_json::from_str(text).expect("test JSON")
}

fn decoded(text: &str) -> Value {
    decode_value(&av(text)).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Serialized output of the decoded attribute value.
fn out(text: &str) -> String {
    serde_json::to_string(&decoded(text)).unwrap()
}

fn reason(text: &str) -> String {
    match decode_value(&av(text)) {
        Ok(v) => panic!("{text} decoded to {v}, expected an error"),
        Err(e) => e.to_string(),
    }
}

// ---------------------------------------------------------------- values

#[test]
fn scalars() {
    assert_eq!(decoded(r#"{"S": "hello"}"#), json!("hello"));
    assert_eq!(decoded(r#"{"S": ""}"#), json!(""));
    assert_eq!(decoded(r#"{"BOOL": true}"#), json!(true));
    assert_eq!(decoded(r#"{"BOOL": false}"#), json!(false));
    assert_eq!(decoded(r#"{"NULL": true}"#), Value::Null);
    assert_eq!(out(r#"{"N": "42"}"#), "42");
    assert_eq!(out(r#"{"B": "AAEqQQ=="}"#), r#""AAEqQQ==""#);
    assert_eq!(out(r#"{"B": "test"}"#), r#""test""#);
    assert_eq!(out(r#"{"B": ""}"#), r#""""#);
}

#[test]
fn sets() {
    assert_eq!(
        decoded(r#"{"SS": ["Giraffe", "Zebra"]}"#),
        json!(["Giraffe", "Zebra"])
    );
    assert_eq!(
        out(r#"{"NS": ["1234", "567.8", "12345678901234567890123456789012345678"]}"#),
        "[1234,567.8,12345678901234567890123456789012345678]"
    );
    assert_eq!(
        out(r#"{"BS": ["AAEqQQ==", "QSoBAA=="]}"#),
        r#"["AAEqQQ==","QSoBAA=="]"#
    );
    // Empty sets are illegal in DynamoDB but decode to empty arrays.
    assert_eq!(decoded(r#"{"SS": []}"#), json!([]));
    assert_eq!(decoded(r#"{"NS": []}"#), json!([]));
    assert_eq!(decoded(r#"{"BS": []}"#), json!([]));
}

#[test]
fn nested_maps_and_lists() {
    let value = decoded(
        r#"{"M": {
            "name": {"S": "Joe"},
            "items": {"L": [
                {"M": {"sku": {"S": "A-1"}, "qty": {"N": "2"}, "tags": {"SS": ["x"]}}},
                {"L": [{"NULL": true}, {"BOOL": false}, {"L": []}, {"M": {}}]},
                {"N": "9.75"}
            ]},
            "empty_map": {"M": {}},
            "empty_list": {"L": []}
        }}"#,
    );
    assert_eq!(
        value,
        json!({
            "name": "Joe",
            "items": [
                {"sku": "A-1", "qty": 2, "tags": ["x"]},
                [null, false, [], {}],
                9.75
            ],
            "empty_map": {},
            "empty_list": []
        })
    );
    assert_eq!(out(r#"{"M": {}}"#), "{}");
    assert_eq!(out(r#"{"L": []}"#), "[]");
}

#[test]
fn numbers_keep_their_digits_byte_for_byte() {
    for text in [
        "0",
        "-0",
        "7",
        "-7",
        "123.45",
        "0.1",
        "-0.000000000000000000000000000000000000001",
        "0.000000000000000000000000000000000000001",
        "12345678901234567890123456789012345678",
        "-12345678901234567890123456789012345678",
        "99999999999999999999999999999999999999",
        "1234567890123456789012345678901234567.8",
        "0.12345678901234567890123456789012345678",
        "18446744073709551616",
        "-9223372036854775809",
        "1.5",
        "1.50",
        "1e-130",
        "1e+130",
        "9.9999999999999999999999999999999999999e+125",
        "-1e-130",
        "1472020859.327935",
    ] {
        let json = format!(r#"{{"N": "{text}"}}"#);
        assert_eq!(out(&json), text, "N {text}");
        let set = format!(r#"{{"NS": ["{text}"]}}"#);
        assert_eq!(out(&set), format!("[{text}]"), "NS {text}");
    }
}

#[test]
fn exponent_marker_is_written_lowercase_with_a_sign() {
    // serde_json stores exponents as `e` with an explicit sign; the digits
    // of mantissa and exponent are unchanged.
    for (text, expected) in [
        ("1E+130", "1e+130"),
        ("1E130", "1e+130"),
        ("1E-130", "1e-130"),
        ("-1E-130", "-1e-130"),
        (
            "9.9999999999999999999999999999999999999E+125",
            "9.9999999999999999999999999999999999999e+125",
        ),
        ("1.5e7", "1.5e+7"),
        ("2E007", "2e+007"),
    ] {
        assert_eq!(out(&format!(r#"{{"N": "{text}"}}"#)), expected, "N {text}");
    }
}

#[test]
fn number_forms_json_forbids_are_normalized_minimally() {
    for (text, expected) in [
        ("+5", "5"),
        ("007", "7"),
        ("-007", "-7"),
        ("00.5", "0.5"),
        ("-00.5", "-0.5"),
        (".5", "0.5"),
        ("-.5", "-0.5"),
        ("5.", "5"),
        ("5.e3", "5e+3"),
        ("000", "0"),
        ("+1E+2", "1e+2"),
    ] {
        assert_eq!(out(&format!(r#"{{"N": "{text}"}}"#)), expected, "N {text}");
    }
}

#[test]
fn bad_numbers_are_rejected() {
    for text in [
        "",
        "abc",
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "inf",
        "0x10",
        "1e",
        "1e+",
        "e5",
        ".",
        "-",
        "+",
        "1.2.3",
        "1e5e3",
        " 5",
        "5 ",
        "1,5",
        "١٢",
        "1_000",
        "--1",
        "1e1.5",
    ] {
        let message = reason(&format!(r#"{{"N": "{text}"}}"#));
        assert!(
            message.contains("is not a DynamoDB number"),
            "N {text:?}: {message}"
        );
        let message = reason(&format!(r#"{{"NS": ["1", "{text}"]}}"#));
        assert!(
            message.contains("attribute `[1]`"),
            "NS {text:?}: {message}"
        );
    }
    assert!(reason(r#"{"N": 5}"#).contains("N must hold a JSON string, found a number"));
    assert!(reason(r#"{"NS": [5]}"#).contains("NS members must be strings"));
}

#[test]
fn bad_base64_is_rejected() {
    for (text, why) in [
        ("AAEqQQ=", "multiple of 4"),
        ("AAE", "multiple of 4"),
        ("A===", "padding characters"),
        ("====", "padding characters"),
        ("AA=A", "padding may only appear at the end"),
        ("AAEq-Q==", "URL-safe"),
        ("AAEq_Q==", "URL-safe"),
        ("AAEq QQ=", "not in the standard alphabet"),
        ("AAEqQQ==\n", "multiple of 4"),
        ("AAEqQQ=\n", "not in the standard alphabet"),
        ("Ä==", "not in the standard alphabet"),
    ] {
        let message = reason(&serde_json::to_string(&json!({ "B": text })).unwrap());
        assert!(message.contains("is not base64"), "B {text:?}: {message}");
        assert!(message.contains(why), "B {text:?}: {message}");
    }
    let message = reason(r#"{"BS": ["AAEqQQ==", "bad!"]}"#);
    assert!(message.contains("attribute `[1]`"), "{message}");
    assert!(reason(r#"{"B": null}"#).contains("B must hold a JSON string, found null"));
}

#[test]
fn unicode_strings_survive() {
    let text = "Grüße 👋🏽 注文 ありがとう \u{0} \t\n\u{1f} \"quoted\" \\ \u{2028}";
    let value = decode_value(&json!({ "S": text })).unwrap();
    assert_eq!(value, json!(text));
    // Escaped control characters and surrogate pairs in the raw JSON.
    assert_eq!(
        decoded(r#"{"S": "a\u0000b\u001fc\ud83d\ude00d\u00e9"}"#),
        json!("a\u{0}b\u{1f}c😀dé")
    );
    assert_eq!(decoded(r#"{"SS": ["注文", "🛒"]}"#), json!(["注文", "🛒"]));
}

#[test]
fn attribute_names_with_slash_tilde_and_dots_are_kept() {
    let item = decode_item(&av(
        r#"{"a/b": {"S": "slash"}, "m~n": {"N": "1"}, "~0~1": {"BOOL": true},
            "x.y": {"M": {"p/q~r": {"S": "deep"}}}, "": {"S": "empty name"}}"#,
    ))
    .unwrap();
    assert_eq!(
        item,
        json!({"a/b": "slash", "m~n": 1, "~0~1": true, "x.y": {"p/q~r": "deep"}, "": "empty name"})
    );
    let err = decode_item(&av(r#"{"a/b": {"M": {"c~d": {"N": "x"}}}}"#)).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"attribute `["a/b"]["c~d"]` cannot be decoded: "x" is not a DynamoDB number"#
    );
}

#[test]
fn attribute_value_shape_errors() {
    let two = reason(r#"{"S": "a", "N": "1"}"#);
    assert!(two.contains("2 type keys (N, S)"), "{two}");
    assert!(two.contains("exactly one"), "{two}");
    let none = reason(r#"{}"#);
    assert!(none.contains("no type key"), "{none}");
    let unknown = reason(r#"{"X": "1"}"#);
    assert!(
        unknown.contains(r#"unknown attribute type key "X""#),
        "{unknown}"
    );
    let lower = reason(r#"{"s": "1"}"#);
    assert!(
        lower.contains(r#"unknown attribute type key "s""#),
        "{lower}"
    );
    assert!(reason(r#""plain""#).contains("expected an attribute value object"));
    assert!(reason(r#"{"NULL": false}"#).contains("NULL must be true, found false"));
    assert!(reason(r#"{"BOOL": "true"}"#).contains("BOOL must be true or false, found a string"));
    assert!(reason(r#"{"M": []}"#).contains("M must hold a JSON object, found an array"));
    assert!(reason(r#"{"L": {}}"#).contains("L must hold a JSON array, found an object"));
    assert!(reason(r#"{"S": 5}"#).contains("S must hold a JSON string"));
    assert!(reason(r#"{"SS": "a"}"#).contains("SS must hold a JSON array"));
    assert_eq!(
        reason(r#"{"X": 1}"#),
        "the attribute value cannot be decoded: unknown attribute type key \"X\" \
         (expected one of S, N, B, BOOL, NULL, M, L, SS, NS or BS)"
    );
}

#[test]
fn error_paths_point_at_the_value() {
    let raw = record_json(
        "MODIFY",
        "111",
        json!({
            "Keys": {"id": {"S": "1"}},
            "NewImage": {
                "id": {"S": "1"},
                "items": {"L": [
                    {"M": {"price": {"N": "1"}}},
                    {"M": {"price": {"N": "2"}}},
                    {"M": {"price": {"N": "abc"}}}
                ]}
            }
        }),
    );
    let err = parse_record(&raw).unwrap_err();
    assert_eq!(
        err,
        DecodeError::BadAttribute {
            path: "NewImage.items[2].price".into(),
            reason: r#""abc" is not a DynamoDB number"#.into()
        }
    );
    assert_eq!(
        err.to_string(),
        r#"attribute `NewImage.items[2].price` cannot be decoded: "abc" is not a DynamoDB number"#
    );
    assert!(!err.is_retriable());

    let raw = record_json(
        "REMOVE",
        "112",
        json!({"Keys": {"id": {"S": "1"}}, "OldImage": {"sig": {"B": "abc"}}}),
    );
    let err = parse_record(&raw).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("attribute `OldImage.sig` cannot be decoded: \"abc\" is not base64"),
        "{err}"
    );

    let raw = record_json("INSERT", "113", json!({"Keys": {"id": {"Q": "1"}}}));
    let err = parse_record(&raw).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("attribute `Keys.id` cannot be decoded"),
        "{err}"
    );
}

#[test]
fn decode_item_requires_an_object() {
    let err = decode_item(&json!([])).unwrap_err();
    assert!(err.to_string().contains("found an array"), "{err}");
    assert_eq!(decode_item(&json!({})).unwrap(), json!({}));
}

// ---------------------------------------------------------------- ARNs

#[test]
fn table_names_from_arns() {
    assert_eq!(table_from_arn(ARN), Some("orders"));
    assert_eq!(
        table_from_arn(
            "arn:aws:dynamodb:us-east-1:123456789012:table/Example-Table/stream/2016-12-01T00:00:00.000"
        ),
        Some("Example-Table")
    );
    assert_eq!(
        table_from_arn("arn:aws-cn:dynamodb:cn-north-1:123456789012:table/a.b_c/stream/x"),
        Some("a.b_c")
    );
    assert_eq!(
        table_from_arn("arn:aws:dynamodb:eu-central-1:123456789012:table/orders"),
        Some("orders")
    );
    for bad in [
        "",
        "stream-ARN",
        "arn:aws:kinesis:us-east-1:123456789012:stream/orders",
        "arn:aws:dynamodb:us-east-1:123456789012:table/",
        "arn:aws:dynamodb:us-east-1:123456789012:table//stream/x",
        "arn:aws:dynamodb:us-east-1:123456789012:table/orders/index/by-customer",
        "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/",
        "arn:aws:dynamodb:us-east-1:123456789012:global-table/orders",
        "arn:aws:dynamodb:us-east-1",
    ] {
        assert_eq!(table_from_arn(bad), None, "{bad}");
    }
}

// ---------------------------------------------------------------- records

fn record_json(event_name: &str, seq: &str, mut dynamodb: Value) -> Value {
    let ddb = dynamodb.as_object_mut().unwrap();
    ddb.insert("SequenceNumber".into(), json!(seq));
    ddb.entry("StreamViewType")
        .or_insert(json!("NEW_AND_OLD_IMAGES"));
    ddb.entry("SizeBytes").or_insert(json!(26));
    ddb.entry("ApproximateCreationDateTime")
        .or_insert(json!(1480642020));
    json!({
        "eventID": format!("evt-{seq}"),
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": dynamodb,
        "eventSourceARN": ARN,
    })
}

/// A Lambda event in the shape of AWS's documented example: a TTL identity on
/// an INSERT, every attribute type, an empty string set, `B` without padding.
const FIXTURE: &str = r#"{
  "Records": [
    {
      "eventID": "f07f8ca4b0b26cb9c4e5e77e69f274ee",
      "eventName": "INSERT",
      "eventVersion": "1.1",
      "eventSource": "aws:dynamodb",
      "awsRegion": "us-east-1",
      "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
      "dynamodb": {
        "ApproximateCreationDateTime": 1480642020,
        "Keys": {"val": {"S": "data"}, "key": {"S": "binary"}},
        "NewImage": {
          "val": {"S": "data"},
          "asdf1": {"B": "AAEqQQ=="},
          "asdf2": {"BS": ["AAEqQQ==", "QSoBAA=="]},
          "key": {"S": "binary"}
        },
        "SequenceNumber": "1405400000000002063282832",
        "SizeBytes": 54,
        "StreamViewType": "NEW_AND_OLD_IMAGES"
      },
      "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/Example-Table/stream/2016-12-01T00:00:00.000"
    },
    {
      "eventID": "f07f8ca4b0b26cb9c4e5e77e42f274ee",
      "eventName": "INSERT",
      "eventVersion": "1.1",
      "eventSource": "aws:dynamodb",
      "awsRegion": "us-east-1",
      "dynamodb": {
        "ApproximateCreationDateTime": 1480642020,
        "Keys": {"val": {"S": "data"}, "key": {"S": "binary"}},
        "NewImage": {
          "val": {"S": "data"},
          "b2": {"B": "test"},
          "key": {"S": "binary"},
          "Boolean": {"BOOL": true},
          "BinarySet": {"BS": ["AAEqQQ==", "AAEqQQ=="]},
          "List": {"L": [{"S": "Cookies"}, {"S": "Coffee"}, {"N": "9.75"}]},
          "Map": {"M": {"Name": {"S": "Joe"}, "Age": {"N": "35"}}},
          "FloatNumber": {"N": "123.45"},
          "NumberSet": {"NS": ["1234", "567.8"]},
          "Null": {"NULL": true},
          "StringSet": {"SS": ["Giraffe", "Zebra"]},
          "EmptyStringSet": {"SS": []}
        },
        "SequenceNumber": "1405400000000002063282833",
        "SizeBytes": 54,
        "StreamViewType": "NEW_AND_OLD_IMAGES"
      },
      "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/Example-Table/stream/2016-12-01T00:00:00.000"
    }
  ]
}"#;

#[test]
fn the_aws_example_event_parses() {
    let records = testing::records_from_str(FIXTURE);
    assert_eq!(records.len(), 2);
    let first = &records[0];
    assert_eq!(first.table, "Example-Table");
    assert_eq!(first.operation, Operation::Insert);
    assert_eq!(first.event_id, "f07f8ca4b0b26cb9c4e5e77e69f274ee");
    assert_eq!(first.sequence_number, "1405400000000002063282832");
    assert_eq!(first.approximate_creation_time_ms, Some(1_480_642_020_000));
    assert_eq!(first.keys, json!({"val": "data", "key": "binary"}));
    assert!(first.old_image.is_none());
    // The example puts a TTL identity on an INSERT: only a REMOVE is a TTL delete.
    assert!(!first.ttl_delete);
    let second = records[1].new_image.as_ref().unwrap();
    assert_eq!(second["NumberSet"], json!([1234, 567.8]));
    assert_eq!(second["Null"], Value::Null);
    assert_eq!(second["EmptyStringSet"], json!([]));
    assert_eq!(second["List"], json!(["Cookies", "Coffee", 9.75]));
    assert_eq!(second["Map"], json!({"Name": "Joe", "Age": 35}));
    assert_eq!(second["b2"], json!("test"));
}

#[test]
fn the_fixture_file_loads_by_path() {
    let path = std::env::temp_dir().join(format!("relay-sdk-decode-{}.json", std::process::id()));
    std::fs::write(&path, FIXTURE).unwrap();
    let records = testing::records(&path);
    let results = testing::record_results(&path);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(records.len(), 2);
    assert!(results.iter().all(Result::is_ok));
}

#[test]
fn a_full_record_parses() {
    let raw = record_json(
        "MODIFY",
        "4921000000000000000001",
        json!({
            "Keys": {"order_number": {"S": "ORD-000123"}},
            "OldImage": {"order_number": {"S": "ORD-000123"}, "status": {"S": "created"},
                         "ledger": {"N": "12345678901234567890123456789012345678"}},
            "NewImage": {"order_number": {"S": "ORD-000123"}, "status": {"S": "paid"},
                         "ledger": {"N": "12345678901234567890123456789012345679"}},
            "ApproximateCreationDateTime": 1768464000.25
        }),
    );
    let record = parse_record(&raw).unwrap();
    assert_eq!(record.table, "orders");
    assert_eq!(record.event_source_arn, ARN);
    assert_eq!(record.operation, Operation::Modify);
    assert_eq!(record.keys, json!({"order_number": "ORD-000123"}));
    assert_eq!(record.sequence_number, "4921000000000000000001");
    assert_eq!(record.event_id, "evt-4921000000000000000001");
    assert_eq!(record.approximate_creation_time_ms, Some(1_768_464_000_250));
    assert!(!record.ttl_delete);
    let old = record.old_image.as_ref().unwrap();
    let new = record.new_image.as_ref().unwrap();
    assert_eq!(
        serde_json::to_string(&old["ledger"]).unwrap(),
        "12345678901234567890123456789012345678"
    );
    assert_eq!(
        serde_json::to_string(&new["ledger"]).unwrap(),
        "12345678901234567890123456789012345679"
    );
    assert_ne!(old["ledger"], new["ledger"]);
    assert!(record.changed("ledger"));
}

#[test]
fn images_are_decoded_to_compact_text_with_sorted_keys() {
    let raw = record_json(
        "MODIFY",
        "1",
        json!({
            "Keys": {"id": {"S": "1"}},
            "NewImage": {
                "z": {"S": "q\"b\\s/ é😀 \u{0}\u{1f}\n"},
                "a/b~": {"M": {"y": {"NS": ["+007", ".5", "1E130", "-0.000"]}, "x": {"BOOL": false}}},
                "é": {"L": [{"NULL": true}, {"B": "AAH/"}, {"BS": ["AA==", ""]}, {"SS": ["b", "a"]}]},
                "n": {"N": "12345678901234567890123456789012345678"},
                "e": {"M": {}},
                "l": {"L": []}
            }
        }),
    );
    let record = parse_record(&raw).unwrap();
    let image = record.new_image.as_ref().unwrap();
    // Exactly what serializing the decoded value gives.
    assert_eq!(image.json(), image.value().to_string());
    assert_eq!(
        image.json(),
        r#"{"a/b~":{"x":false,"y":[7,0.5,1e+130,-0.000]},"e":{},"l":[],"n":12345678901234567890123456789012345678,"z":"q\"b\\s/ é😀 \u0000\u001f\n","é":[null,"AAH/",["AA==",""],["b","a"]]}"#
    );
}

#[test]
fn creation_time_forms() {
    for (value, expected) in [
        (json!(1480642020), Some(1_480_642_020_000)),
        (av("1480642020.123"), Some(1_480_642_020_123)),
        (av("1480642020.9999"), Some(1_480_642_020_999)),
        (av("1.480642020E9"), Some(1_480_642_020_000)),
        (json!("2026-01-15T08:00:00.123456"), Some(1_768_464_000_123)),
        (json!("1480642020"), Some(1_480_642_020_000)),
        (Value::Null, None),
    ] {
        let mut raw = record_json("INSERT", "1", json!({"Keys": {"id": {"S": "1"}}}));
        raw["dynamodb"]["ApproximateCreationDateTime"] = value.clone();
        let record = parse_record(&raw).unwrap_or_else(|e| panic!("{value}: {e}"));
        assert_eq!(record.approximate_creation_time_ms, expected, "{value}");
    }
    let mut raw = record_json("INSERT", "1", json!({"Keys": {"id": {"S": "1"}}}));
    raw["dynamodb"]
        .as_object_mut()
        .unwrap()
        .remove("ApproximateCreationDateTime");
    assert_eq!(
        parse_record(&raw).unwrap().approximate_creation_time_ms,
        None
    );
    for bad in [json!(-5), json!("yesterday"), json!(true), json!(1e30)] {
        raw["dynamodb"]["ApproximateCreationDateTime"] = bad.clone();
        let err = parse_record(&raw).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::BadField {
                    field: "dynamodb.ApproximateCreationDateTime",
                    ..
                }
            ),
            "{bad}: {err}"
        );
    }
}

#[test]
fn ttl_deletes_are_detected() {
    let mut raw = record_json(
        "REMOVE",
        "300",
        json!({"Keys": {"id": {"S": "1"}}, "OldImage": {"id": {"S": "1"}}}),
    );
    assert!(!parse_record(&raw).unwrap().ttl_delete);
    raw["userIdentity"] = json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"});
    let record = parse_record(&raw).unwrap();
    assert!(record.ttl_delete);
    assert_eq!(record.operation, Operation::Remove);
    assert!(record.new_image.is_none());
    assert_eq!(record.old_image.as_deref(), Some(&json!({"id": "1"})));
    raw["userIdentity"] = json!({"type": "Service", "principalId": "someone-else"});
    assert!(!parse_record(&raw).unwrap().ttl_delete);
    raw["userIdentity"] = Value::Null;
    assert!(!parse_record(&raw).unwrap().ttl_delete);
}

#[test]
fn missing_and_bad_fields() {
    let good = record_json("INSERT", "1", json!({"Keys": {"id": {"S": "1"}}}));
    let without = |pointer: &str| {
        let mut raw = good.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        raw.pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(key);
        parse_record(&raw).unwrap_err()
    };
    assert_eq!(
        without("/eventSourceARN"),
        DecodeError::MissingField("eventSourceARN")
    );
    assert_eq!(
        without("/eventName"),
        DecodeError::MissingField("eventName")
    );
    assert_eq!(without("/eventID"), DecodeError::MissingField("eventID"));
    assert_eq!(without("/dynamodb"), DecodeError::MissingField("dynamodb"));
    assert_eq!(
        without("/dynamodb/SequenceNumber"),
        DecodeError::MissingField("dynamodb.SequenceNumber")
    );
    assert_eq!(
        without("/dynamodb/Keys"),
        DecodeError::MissingField("dynamodb.Keys")
    );
    assert_eq!(
        without("/eventSourceARN").to_string(),
        "the record has no `eventSourceARN` field"
    );

    let with = |pointer: &str, value: Value| {
        let mut raw = good.clone();
        *raw.pointer_mut(pointer).unwrap() = value;
        parse_record(&raw).unwrap_err()
    };
    assert_eq!(
        with("/eventName", json!("UPSERT")).to_string(),
        "the record's eventName \"UPSERT\" is not INSERT, MODIFY or REMOVE"
    );
    assert_eq!(
        with("/eventSourceARN", json!("stream-ARN")),
        DecodeError::BadEventSourceArn("stream-ARN".into())
    );
    assert_eq!(
        with("/dynamodb/SequenceNumber", json!(111)).to_string(),
        "the record's `dynamodb.SequenceNumber` field is invalid: it is a number, expected a string"
    );
    assert!(matches!(
        with("/dynamodb/SequenceNumber", json!("")),
        DecodeError::BadField {
            field: "dynamodb.SequenceNumber",
            ..
        }
    ));
    assert!(matches!(
        with("/dynamodb", json!([])),
        DecodeError::BadField {
            field: "dynamodb",
            ..
        }
    ));
    assert!(matches!(
        with("/dynamodb/Keys", json!("id")),
        DecodeError::BadField {
            field: "dynamodb.Keys",
            ..
        }
    ));
    assert_eq!(
        parse_record(&json!([1])).unwrap_err().to_string(),
        "the record is an array, not a JSON object"
    );
}

// ---------------------------------------------------------------- batches

#[test]
fn one_bad_record_does_not_spoil_the_batch() {
    let good = |seq: &str| record_json("INSERT", seq, json!({"Keys": {"id": {"S": seq}}}));
    let bad_value = record_json("INSERT", "201", json!({"Keys": {"id": {"B": "no!"}}}));
    let mut no_seq = good("202");
    no_seq["dynamodb"]
        .as_object_mut()
        .unwrap()
        .remove("SequenceNumber");
    let event =
        json!({"Records": [good("100"), bad_value, good("101"), no_seq, "junk", good("102")]});
    let results = parse_records(&event.to_string()).unwrap();
    assert_eq!(results.len(), 6);
    let seqs: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|r| r.sequence_number.as_str())
        .collect();
    assert_eq!(seqs, ["100", "101", "102"]);

    let err = results[1].as_ref().unwrap_err();
    assert_eq!(err.index, 1);
    assert_eq!(err.sequence_number.as_deref(), Some("201"));
    assert!(
        err.to_string()
            .starts_with("record #1 (sequence number 201): attribute `Keys.id` cannot be decoded"),
        "{err}"
    );
    let err = results[3].as_ref().unwrap_err();
    assert_eq!(err.index, 3);
    assert_eq!(err.sequence_number, None);
    assert_eq!(
        err.to_string(),
        "record #3: the record has no `dynamodb.SequenceNumber` field"
    );
    let err = results[4].as_ref().unwrap_err();
    assert_eq!(
        err.to_string(),
        "record #4: the record is a string, not a JSON object"
    );
}

#[test]
fn sequence_number_is_read_best_effort() {
    assert_eq!(
        sequence_number(&json!({"dynamodb": {"SequenceNumber": "9"}})),
        Some("9")
    );
    assert_eq!(
        sequence_number(&json!({"dynamodb": {"SequenceNumber": ""}})),
        None
    );
    assert_eq!(
        sequence_number(&json!({"dynamodb": {"SequenceNumber": 9}})),
        None
    );
    assert_eq!(sequence_number(&json!("x")), None);
}

#[test]
fn split_accepts_an_event_or_a_single_record() {
    let one = record_json("INSERT", "1", json!({"Keys": {"id": {"S": "1"}}}));
    assert_eq!(split_records(&one.to_string()).unwrap(), vec![one.clone()]);
    let event = json!({"Records": [one.clone(), {"not": "a record"}]});
    let raw = split_records(&event.to_string()).unwrap();
    assert_eq!(raw.len(), 2);
    assert_eq!(
        split_records(r#"{"Records": []}"#).unwrap(),
        Vec::<Value>::new()
    );
    // Numbers in raw records keep their digits too.
    let raw =
        split_records(r#"{"dynamodb": {"SizeBytes": 123456789012345678901234567890}}"#).unwrap();
    assert_eq!(
        raw[0]["dynamodb"]["SizeBytes"].to_string(),
        "123456789012345678901234567890"
    );
}

#[test]
fn split_rejects_other_input_clearly() {
    let err = split_records("{not json").unwrap_err();
    assert!(matches!(err, InputError::NotJson(_)));
    assert!(
        err.to_string().starts_with("the input is not valid JSON: "),
        "{err}"
    );
    assert!(err.to_string().contains("line 1"), "{err}");
    assert_eq!(
        split_records(r#"{"Records": {}}"#).unwrap_err(),
        InputError::RecordsNotArray("an object")
    );
    assert_eq!(
        split_records(r#"{"records": []}"#).unwrap_err().to_string(),
        "the input is an object, but neither a Lambda DynamoDB Streams event \
         ({\"Records\": [...]}) nor a single stream record (an object with a \"dynamodb\" field)"
    );
    assert_eq!(
        split_records("[]").unwrap_err(),
        InputError::UnknownShape("an array")
    );
    assert!(!split_records("").unwrap_err().is_retriable());
    assert!(parse_records("42").is_err());
}

#[test]
#[should_panic(expected = "record #1 (sequence number 201): attribute `Keys.id` cannot be decoded")]
fn testing_helper_names_the_bad_record() {
    let good = record_json("INSERT", "200", json!({"Keys": {"id": {"S": "1"}}}));
    let bad = record_json("INSERT", "201", json!({"Keys": {"id": {"N": "x"}}}));
    testing::records_from_str(&json!({"Records": [good, bad]}).to_string());
}

#[test]
#[should_panic(expected = "cannot read fixture /nonexistent/fixture.json")]
fn testing_helper_names_a_missing_file() {
    testing::records("/nonexistent/fixture.json");
}
