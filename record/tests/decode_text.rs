//! The one-pass decoder (`parse_record_text`) against the tree path
//! (`parse_record` on the parsed text): the same record, byte for byte, or
//! the same error, on generated records and on mutilated ones.

use proptest::prelude::*;
use relay_record::dynamodb::{decode_record_text, parse_record, parse_record_text};
use serde_json::Value;

/// The tree path's answer, with images as their exact texts.
fn tree(text: &str) -> Result<String, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => parse_record(&value)
            .map(|r| format!("{r:?}"))
            .map_err(|e| e.to_string()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// Asserts that the fast path, when it answers, answers as the tree path,
/// and that `parse_record_text` always does; returns whether it answered.
fn agree(text: &str) -> bool {
    let expected = tree(text);
    let fast = decode_record_text(text).map(|r| format!("{r:?}"));
    if let Some(fast) = &fast {
        assert_eq!(Ok(fast), expected.as_ref(), "one-pass decoder on {text}");
    }
    let full = parse_record_text(text).map(|r| format!("{r:?}"));
    match (&full, &expected) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
        (Err(_), Err(b)) if b.starts_with("not JSON") => {}
        (Err(a), Err(b)) => assert_eq!(&a.to_string(), b, "{text}"),
        _ => panic!("parse_record_text {full:?} but the tree path {expected:?} on {text}"),
    }
    fast.is_some()
}

/// Optional whitespace between tokens.
fn ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![4 => Just(""), 1 => Just(" "), 1 => Just("\n\t")]
}

/// A JSON string literal, some characters written as escapes.
fn string_literal() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(("a", "a")),
        Just(("a", "\\u0061")),
        Just(("b", "b")),
        Just(("/", "/")),
        Just(("/", "\\/")),
        Just(("~", "~")),
        Just(("é", "é")),
        Just(("é", "\\u00e9")),
        Just(("\"", "\\\"")),
        Just(("\\", "\\\\")),
        Just(("\n", "\\n")),
        Just(("😀", "😀")),
        Just(("😀", "\\ud83d\\ude00")),
        Just(("\u{7f}", "\u{7f}")),
    ];
    proptest::collection::vec(piece, 0..4).prop_map(|pieces| {
        let written: String = pieces.iter().map(|(_, w)| *w).collect();
        format!("\"{written}\"")
    })
}

/// Attribute names: unique once unescaped, each written with or without
/// escapes, in any order.
fn names(max: usize) -> impl Strategy<Value = Vec<String>> {
    proptest::collection::btree_set("[a-c~/é]{0,3}", 0..max)
        .prop_flat_map(|set| {
            let n = set.len();
            (Just(set), proptest::collection::vec(any::<bool>(), n)).prop_map(|(set, escape)| {
                set.into_iter()
                    .zip(escape)
                    .map(|(name, escape)| match escape {
                        true => name
                            .chars()
                            .map(|c| format!("\\u{:04x}", c as u32))
                            .collect::<String>(),
                        false => name,
                    })
                    .map(|name| format!("\"{name}\""))
                    .collect()
            })
        })
        .prop_shuffle()
}

fn number_text() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("1"),
        Just("-0.5"),
        Just("007"),
        Just("+5"),
        Just(".5"),
        Just("5."),
        Just("1E+130"),
        Just("1e-5"),
        Just("12345678901234567890123456789012345678"),
        Just("-0.000000000000000000000000000000000000001"),
        Just("1..2"),
        Just(""),
    ]
}

fn base64_text() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("AAEqQQ=="),
        Just(""),
        Just("dGVzdA=="),
        Just("test"),
        Just("no t"),
        Just("a-b_"),
    ]
}

/// One attribute value's text, sometimes a bad one.
fn attribute_value() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        (ws(), string_literal()).prop_map(|(w, s)| format!("{{{w}\"S\"{w}:{w}{s}{w}}}")),
        number_text().prop_map(|n| format!(r#"{{"N":"{n}"}}"#)),
        base64_text().prop_map(|b| format!(r#"{{"B":"{b}"}}"#)),
        any::<bool>().prop_map(|b| format!(r#"{{"BOOL":{b}}}"#)),
        Just(r#"{"NULL":true}"#.to_owned()),
        Just(r#"{"NULL":false}"#.to_owned()),
        proptest::collection::vec(string_literal(), 0..3)
            .prop_map(|s| format!(r#"{{"SS":[{}]}}"#, s.join(","))),
        proptest::collection::vec(number_text(), 0..3).prop_map(|n| format!(
            r#"{{"NS":[{}]}}"#,
            n.iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(",")
        )),
        proptest::collection::vec(base64_text(), 0..3).prop_map(|b| format!(
            r#"{{"BS":[{}]}}"#,
            b.iter()
                .map(|b| format!("\"{b}\""))
                .collect::<Vec<_>>()
                .join(",")
        )),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            map(inner.clone().boxed()).prop_map(|m| format!(r#"{{"M":{m}}}"#)),
            proptest::collection::vec(inner, 0..4)
                .prop_map(|l| format!(r#"{{"L": [{}]}}"#, l.join(", "))),
        ]
    })
    .boxed()
}

/// Attribute names to values, as an object text.
fn map(value: BoxedStrategy<String>) -> BoxedStrategy<String> {
    names(5)
        .prop_flat_map(move |names| {
            let n = names.len();
            (
                Just(names),
                proptest::collection::vec(value.clone(), n),
                ws(),
            )
                .prop_map(|(names, values, w)| {
                    let entries: Vec<String> = names
                        .iter()
                        .zip(&values)
                        .map(|(name, value)| format!("{name}{w}:{w}{value}"))
                        .collect();
                    format!("{{{w}{}{w}}}", entries.join(&format!(",{w}")))
                })
        })
        .boxed()
}

/// A whole stream record text, fields in any order, sometimes bad.
fn record() -> impl Strategy<Value = String> {
    let event_name = prop_oneof![
        4 => Just("\"INSERT\""),
        4 => Just("\"MODIFY\""),
        4 => Just("\"REMOVE\""),
        1 => Just("\"UPSERT\""),
        1 => Just("null"),
    ];
    let arn = prop_oneof![
        8 => Just("\"arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000\""),
        1 => Just("\"arn:aws:sqs:us-east-1:1:q\""),
        1 => Just("7"),
    ];
    let time = prop_oneof![
        Just(Some("1480642020")),
        Just(Some("1480642020.123")),
        Just(Some("1.480642020123e9")),
        Just(Some("\"2024-03-01T12:34:56.789Z\"")),
        Just(Some("null")),
        Just(Some("\"yesterday\"")),
        Just(None),
    ];
    let seq = prop_oneof![
        8 => Just("\"4000000000000000000001\""),
        1 => Just("\"\""),
        1 => Just("12"),
    ];
    let identity = prop_oneof![
        Just(None),
        Just(Some(
            r#"{"type": "Service", "principalId": "dynamodb.amazonaws.com"}"#
        )),
        Just(Some(r#"{"type": "User", "principalId": "x"}"#)),
        Just(Some("null")),
        Just(Some("[]")),
    ];
    let image = prop_oneof![
        4 => map(attribute_value()).prop_map(Some),
        1 => Just(Some("null".to_owned())),
        1 => Just(None),
    ]
    .boxed();
    (
        (event_name, arn, seq, time, identity),
        (map(attribute_value()), image.clone(), image),
        ws(),
    )
        .prop_flat_map(|((name, arn, seq, time, identity), (keys, new, old), w)| {
            let mut ddb = vec![
                format!("\"Keys\":{w}{keys}"),
                format!("\"SequenceNumber\":{seq}"),
                "\"StreamViewType\":\"NEW_AND_OLD_IMAGES\"".to_owned(),
                "\"SizeBytes\":{w}26".replace("{w}", w),
            ];
            ddb.extend(new.map(|n| format!("\"NewImage\":{n}")));
            ddb.extend(old.map(|o| format!("\"OldImage\":{o}")));
            ddb.extend(time.map(|t| format!("\"ApproximateCreationDateTime\":{t}")));
            let mut top = vec![
                "\"eventID\":\"evt-1\"".to_owned(),
                format!("\"eventName\":{name}"),
                "\"eventVersion\":\"1.1\"".to_owned(),
                format!("\"eventSourceARN\":{arn}"),
                r#""extra":{"a":[1,-2.5e+3,true,false,null,"x\"y"],"b":{}}"#.to_owned(),
            ];
            top.extend(identity.map(|i| format!("\"userIdentity\":{i}")));
            (Just(top), Just(ddb).prop_shuffle(), Just(w))
                .prop_flat_map(|(top, ddb, w)| {
                    let mut top = top;
                    top.push(format!("\"dynamodb\":{w}{{{}}}", ddb.join(",")));
                    (Just(top).prop_shuffle(), Just(w))
                })
                .prop_map(|(top, w)| format!("{{{w}{}{w}}}", top.join(&format!(",{w}"))))
        })
}

/// Edits that break (or oddly keep) a record's JSON.
fn edit() -> impl Strategy<Value = (usize, usize, &'static str)> {
    (
        any::<usize>(),
        0usize..4,
        prop_oneof![
            Just(""),
            Just("{"),
            Just("}"),
            Just("["),
            Just("]"),
            Just("\""),
            Just(","),
            Just(":"),
            Just("\\"),
            Just(" "),
            Just("null"),
            Just("1"),
            Just(r#""S""#),
            Just(r#"{"S":"x"}"#),
            Just(r#""a":{"S":"x"},"#),
            Just("\u{1}"),
        ],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn the_one_pass_decoder_gives_what_the_tree_path_gives(text in record()) {
        let fast = agree(&text);
        // Every record the tree path takes, the one-pass decoder takes too
        // (the generator never writes a key twice).
        prop_assert_eq!(fast, tree(&text).is_ok(), "{}", text);
    }

    #[test]
    fn mutilated_records_are_never_taken_wrongly(
        text in record(),
        edits in proptest::collection::vec(edit(), 1..3),
    ) {
        let mut text = text;
        for (at, cut, insert) in edits {
            let mut at = at % (text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let mut end = (at + cut).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            text.replace_range(at..end, insert);
        }
        agree(&text);
    }
}

#[test]
fn duplicate_keys_go_the_tree_path_and_keep_the_last() {
    let ddb = r#""dynamodb":{"Keys":{"id":{"S":"a"}},"SequenceNumber":"1","NewImage":{"x":{"N":"1"},"x":{"N":"2"}}}"#;
    let head = r#""eventID":"e","eventSourceARN":"arn:aws:dynamodb:us-east-1:1:table/t/stream/s""#;
    for text in [
        format!(r#"{{{head},"eventName":"INSERT",{ddb}}}"#),
        format!(r#"{{{head},"eventName":"REMOVE","eventName":"INSERT",{ddb}}}"#),
        format!(
            r#"{{{head},"eventName":"INSERT","dynamodb":{{"Keys":{{"id":{{"S":"a","S":"b"}}}},"SequenceNumber":"1"}}}}"#
        ),
    ] {
        assert!(decode_record_text(&text).is_none(), "{text}");
        assert!(!agree(&text), "the tree path answers");
        let record = parse_record_text(&text).unwrap();
        assert_eq!(record.operation, relay_record::Operation::Insert);
    }
}

#[test]
fn not_json_is_a_clear_error() {
    let err = parse_record_text(r#"{"eventID": "#).unwrap_err();
    assert!(err.to_string().contains("record"), "{err}");
}

/// Records as Lambda delivers them, from the fixture files the example
/// transforms and `relay new` ship, plus AWS's documented shapes (a TTL
/// delete among them): every one is taken by the one-pass decoder, as
/// the tree path reads it.
#[test]
fn records_as_aws_publishes_them_take_the_one_pass_decoder() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut texts: Vec<String> = Vec::new();
    for file in [
        "transforms/data-change/fixtures/orders.json",
        "transforms/data-change/fixtures/edge-cases.json",
        "transforms/order-status/fixtures/orders.json",
        "runtime/src/dev/template/fixtures/records.json",
    ] {
        let text = std::fs::read_to_string(root.join(file)).expect(file);
        let raws = relay_record::dynamodb::split_raw_records(&text).expect(file);
        texts.extend(raws.iter().map(|raw| raw.get().to_owned()));
    }
    texts.push(
        r#"{"eventID":"c4ca4238a0b923820dcc509a6f75849b","eventName":"REMOVE","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"eu-central-1","dynamodb":{"ApproximateCreationDateTime":1.709296496789E9,"Keys":{"Id":{"N":"101"}},"OldImage":{"Message":{"S":"New item!"},"Id":{"N":"101"},"Tags":{"SS":["b","a"]},"Blob":{"B":"AAEqQQ=="},"Nested":{"M":{"z":{"L":[{"N":"1E+5"},{"NULL":true},{"BOOL":false}]},"a":{"NS":["007","-0.5"]}}}},"SequenceNumber":"111","SizeBytes":26,"StreamViewType":"NEW_AND_OLD_IMAGES"},"userIdentity":{"type":"Service","principalId":"dynamodb.amazonaws.com"},"eventSourceARN":"arn:aws:dynamodb:eu-central-1:123456789012:table/ExampleTableWithStream/stream/2015-06-27T00:48:05.899"}"#
            .to_owned(),
    );
    assert!(texts.len() > 50, "{} records", texts.len());
    for text in &texts {
        assert!(tree(text).is_ok(), "{text}");
        assert!(agree(text), "the one-pass decoder did not take {text}");
    }
    let ttl = parse_record_text(texts.last().unwrap()).unwrap();
    assert!(ttl.ttl_delete);
    assert_eq!(
        ttl.old_image.unwrap().json(),
        r#"{"Blob":"AAEqQQ==","Id":101,"Message":"New item!","Nested":{"a":[7,-0.5],"z":[1e+5,null,false]},"Tags":["b","a"]}"#
    );
}
