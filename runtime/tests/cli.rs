//! The `relay` binary as a user runs it: `sample`, `test` (with `--expect`)
//! and `compile`, on the example transforms and their checked-in fixtures,
//! and `bus`.

use std::path::PathBuf;
use std::process::Command;

#[path = "support/run.rs"]
mod run;
use run::{relay, s, text};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relay-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Each example transform with its fixture, settings and expected output.
const EXAMPLES: &[(&str, &str, &str, &str)] = &[
    (
        "data-change",
        "transforms/data-change/fixtures/orders.json",
        "transforms/data-change/fixtures/settings.json",
        "transforms/data-change/fixtures/orders.expected.jsonl",
    ),
    (
        "data-change",
        "transforms/data-change/fixtures/edge-cases.json",
        "transforms/data-change/fixtures/settings.json",
        "transforms/data-change/fixtures/edge-cases.expected.jsonl",
    ),
    (
        "order-status",
        "transforms/order-status/fixtures/orders.json",
        "transforms/order-status/fixtures/settings.json",
        "transforms/order-status/fixtures/orders.expected.jsonl",
    ),
];

#[test]
fn examples_match_their_checked_in_expectations() {
    for (package, event, settings, expected) in EXAMPLES {
        let wasm = relay_testkit::guest(package);
        let out = relay(&[
            "test",
            "--transform",
            s(&wasm),
            "--event",
            s(&relay_testkit::fixture(event)),
            "--settings",
            s(&relay_testkit::fixture(settings)),
            "--expect",
            s(&relay_testkit::fixture(expected)),
        ]);
        assert!(
            out.status.success(),
            "{package} on {event}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains("match"), "{}", text(&out.stderr));
    }
}

#[test]
fn expect_fails_with_a_readable_diff_on_mismatch() {
    let (package, event, settings, expected) = EXAMPLES[0];
    let expected = std::fs::read_to_string(relay_testkit::fixture(expected)).unwrap();
    let mut lines: Vec<String> = expected.lines().map(str::to_owned).collect();
    // Change one field deep inside the second event's body.
    let mut second: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    second["body"]["data_type"] = "something-else".into();
    lines[1] = second.to_string();
    lines.pop(); // and one event fewer than produced
    let dir = scratch("mismatch");
    let tampered = dir.join("expected.jsonl");
    std::fs::write(&tampered, lines.join("\n")).unwrap();

    let out = relay(&[
        "test",
        "-t",
        s(&relay_testkit::guest(package)),
        "-e",
        s(&relay_testkit::fixture(event)),
        "-s",
        s(&relay_testkit::fixture(settings)),
        "--expect",
        s(&tampered),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("2 of"), "{stderr}");
    // Per event the record that made it, per differing JSON Pointer the
    // expected → actual values; never the two whole lines.
    assert!(
        stderr.contains(r#"  /body/data_type: "something-else" → "payment-order""#),
        "{stderr}"
    );
    assert!(stderr.contains("event 2 (record "), "{stderr}");
    assert!(stderr.contains("produced but not expected"), "{stderr}");
    assert!(!stderr.contains(&lines[1]), "no whole lines: {stderr}");
}

#[test]
fn relay_test_as_people_use_it() {
    let wasm = relay_testkit::guest("data-change");
    let dir = scratch("as-used");
    // AWS's own example record: no SequenceNumber, no eventSourceARN, the
    // table in tableName, the creation time in milliseconds.
    let record = r#"{"awsRegion":"us-east-1","eventID":"c81e728d9d4c2f636f067f89cc14862c",
        "eventName":"INSERT","userIdentity":null,"recordFormat":"application/json",
        "tableName":"Music","dynamodb":{"ApproximateCreationDateTime":1685986340120,
        "Keys":{"Artist":{"S":"No One You Know"},"SongTitle":{"S":"Call Me Today"}},
        "NewImage":{"Artist":{"S":"No One You Know"},"SongTitle":{"S":"Call Me Today"}},
        "SizeBytes":102},"eventSource":"aws:dynamodb"}"#;
    // Read from stdin, without settings (data-change names the data type
    // after the table).
    let mut child = Command::new(env!("CARGO_BIN_EXE_relay"))
        .args(["test", "-t", s(&wasm), "-e", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), record.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let event: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(event["event_type"], "Music");
    assert_eq!(event["body"]["data_type"], "Music");
    assert_eq!(
        event["body"]["metadata"]["occurred_at"], "2023-06-05T17:32:20.120Z",
        "milliseconds are read as milliseconds"
    );
    assert!(
        text(&out.stderr).contains("has no dynamodb.SequenceNumber: using the stand-in"),
        "{}",
        text(&out.stderr)
    );

    // --bless writes the expectation; --expect then passes.
    let input = dir.join("record.json");
    std::fs::write(&input, record).unwrap();
    let expected = dir.join("expected.jsonl");
    let test = |extra: &[&str]| {
        let mut args = vec![
            "test",
            "-t",
            s(&wasm),
            "-e",
            s(&input),
            "--expect",
            s(&expected),
        ];
        args.extend_from_slice(extra);
        relay(&args)
    };
    let out = test(&["--bless"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("wrote 1 events of 1 records"),
        "{}",
        text(&out.stderr)
    );
    let out = test(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // An expectation that is not JSON is an error (3), not a mismatch (1).
    std::fs::write(&expected, "not json\n").unwrap();
    let out = test(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("line 1 is not JSON"),
        "{}",
        text(&out.stderr)
    );

    // `-s '[1]'` is bad settings, not a missing file.
    let out = relay(&["test", "-t", s(&wasm), "-e", s(&input), "-s", "[1]"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("inline settings must be a JSON object, not an array"),
        "{}",
        text(&out.stderr)
    );

    // Wrong usage is clap's 2.
    let out = relay(&["test", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn same_input_twice_gives_identical_output_eids_included() {
    let dir = scratch("determinism");
    let sample = dir.join("sample.json");
    let out = relay(&["sample", "--count", "60", "--seed", "9", "-o", s(&sample)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = || {
        let out = relay(&[
            "test",
            "-t",
            s(&relay_testkit::guest("data-change")),
            "-e",
            s(&sample),
            "-s",
            r#"{"data_type":"payment-order"}"#,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let (first, second) = (run(), run());
    assert_eq!(
        first.lines().count(),
        60,
        "one data change event per record"
    );
    assert_eq!(first, second);
    let eids: std::collections::HashSet<String> = first
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["body"]["metadata"]["eid"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(eids.len(), 60, "eids are unique per record");
}

#[test]
fn sample_is_deterministic_per_seed() {
    let a = relay(&["sample", "--count", "25", "--seed", "3"]);
    let b = relay(&["sample", "--count", "25", "--seed", "3"]);
    let c = relay(&["sample", "--count", "25", "--seed", "4"]);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    assert_ne!(a.stdout, c.stdout);
    let event: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(event["Records"].as_array().unwrap().len(), 25);
}

#[test]
fn bad_records_are_named_and_the_good_ones_still_map() {
    let dir = scratch("bad-records");
    let input = dir.join("event.json");
    let good = |seq: &str| {
        serde_json::json!({
            "eventID": format!("id-{seq}"),
            "eventName": "INSERT",
            "eventSource": "aws:dynamodb",
            "eventSourceARN": "arn:aws:dynamodb:eu-central-1:123456789012:table/orders/stream/2026-01-01T00:00:00.000",
            "dynamodb": {
                "ApproximateCreationDateTime": 1768435200,
                "Keys": {"order_number": {"S": "ORD-1"}},
                "NewImage": {"order_number": {"S": "ORD-1"}, "status": {"S": "created"}},
                "SequenceNumber": seq,
                "SizeBytes": 50,
                "StreamViewType": "NEW_AND_OLD_IMAGES"
            }
        })
    };
    let mut bad = good("222");
    bad["dynamodb"]["NewImage"]["total"] = serde_json::json!({"N": "twelve"});
    let event = serde_json::json!({"Records": [good("111"), bad, good("333")]});
    std::fs::write(&input, event.to_string()).unwrap();

    let out = relay(&[
        "test",
        "-t",
        s(&relay_testkit::guest("data-change")),
        "-e",
        s(&input),
        "-s",
        r#"{"data_type":"payment-order"}"#,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout).lines().count(), 2, "the good records map");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("222"), "names the record: {stderr}");
    assert!(stderr.contains("total"), "names the attribute: {stderr}");
    assert!(stderr.contains("1 of 3 records failed"), "{stderr}");
}

#[test]
fn precompiled_artifact_gives_the_same_events() {
    let dir = scratch("compile");
    let artifact = dir.join("data_change.cwasm");
    let out = relay(&[
        "compile",
        s(&relay_testkit::guest("data-change")),
        "-o",
        s(&artifact),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (_, event, settings, expected) = EXAMPLES[0];
    let (event, settings, expected) = (
        relay_testkit::fixture(event),
        relay_testkit::fixture(settings),
        relay_testkit::fixture(expected),
    );
    let test = |trust: &[&str]| {
        let mut args = vec![
            "test",
            "-t",
            s(&artifact),
            "-e",
            s(&event),
            "-s",
            s(&settings),
            "--expect",
            s(&expected),
        ];
        args.extend_from_slice(trust);
        relay(&args)
    };
    // An artifact is native code: only with the user's word for it.
    let out = test(&[]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("data-change is a precompiled artifact, not WebAssembly")
            && stderr.contains("pass --trust-artifact"),
        "{stderr}"
    );
    let out = test(&["--trust-artifact"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn unusable_inputs_get_clear_errors() {
    let wasm = relay_testkit::guest("data-change");
    let event = relay_testkit::fixture(EXAMPLES[0].1);

    // Settings the transform refuses.
    let out = relay(&[
        "test",
        "-t",
        s(&wasm),
        "-e",
        s(&event),
        "-s",
        r#"{"colour":"red"}"#,
    ]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("data-change refused its settings"),
        "{stderr}"
    );

    // Settings that are not JSON.
    let out = relay(&["test", "-t", s(&wasm), "-e", s(&event), "-s", "{nope"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("not JSON"),
        "{}",
        text(&out.stderr)
    );

    // A file that is not a component.
    let out = relay(&["test", "-t", s(&event), "-e", s(&event)]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("not a usable WebAssembly component"),
        "{}",
        text(&out.stderr)
    );

    // Input that is neither a Lambda event nor a record.
    let dir = scratch("bad-input");
    let junk = dir.join("junk.json");
    std::fs::write(&junk, r#"{"hello": "world"}"#).unwrap();
    let out = relay(&[
        "test",
        "-t",
        s(&wasm),
        "-e",
        s(&junk),
        "-s",
        r#"{"data_type":"x"}"#,
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("junk.json"),
        "{}",
        text(&out.stderr)
    );
}

/// One HTTP/1.1 POST with `Connection: close`; the answer's status.
fn post(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

#[test]
fn bus_prints_and_counts_plain_and_gzip_events() {
    use std::io::Write;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let bus = Command::new(env!("CARGO_BIN_EXE_relay"))
        .args(["bus", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start relay bus");
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "relay bus never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    let path = "/event-types/order.changed/events";
    let plain = r#"[{"metadata":{"eid":"e-1"},"data_op":"C","data":{"n":1}}]"#;
    assert_eq!(post(port, path, &[], plain.as_bytes()), 200);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(br#"[{"metadata":{"eid":"e-2"},"data_op":"U"},{"metadata":{"eid":"e-3"}}]"#)
        .unwrap();
    let gzip = gz.finish().unwrap();
    assert_eq!(
        post(port, path, &[("Content-Encoding", "gzip")], &gzip),
        200
    );
    assert_eq!(post(port, "/elsewhere", &[], plain.as_bytes()), 404);
    assert_eq!(post(port, path, &[], b"{\"not\": \"an array\"}"), 400);

    let interrupted = Command::new("kill")
        .args(["-INT", &bus.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let out = bus.wait_with_output().expect("relay bus stops on Ctrl-C");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        vec![
            r#"order.changed C e-1 {"data":{"n":1},"data_op":"C","metadata":{"eid":"e-1"}}"#,
            r#"order.changed U e-2 {"data_op":"U","metadata":{"eid":"e-2"}}"#,
            r#"order.changed e-3 {"metadata":{"eid":"e-3"}}"#,
        ]
    );
    assert!(
        text(&out.stderr).contains("3 events received"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn fixtures_read_the_same_with_the_community_types() {
    // The checked-in Lambda events are what Lambda sends: aws_lambda_events
    // reads them too, and finds the records and sequence numbers ours does.
    for (_, event, _, _) in EXAMPLES {
        let text = std::fs::read_to_string(relay_testkit::fixture(event)).unwrap();
        let theirs: aws_lambda_events::event::dynamodb::Event =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{event}: {e}"));
        let ours = relay_record::dynamodb::parse_records(&text).unwrap();
        assert_eq!(theirs.records.len(), ours.len(), "{event}");
        for (t, o) in theirs.records.iter().zip(&ours) {
            let o = o.as_ref().unwrap();
            assert_eq!(
                t.change.sequence_number.as_deref(),
                Some(o.sequence_number.as_str())
            );
            assert_eq!(t.event_id, o.event_id);
        }
    }
}

#[test]
fn relay_test_compiles_a_wasm_once_into_the_module_cache() {
    let dir = scratch("test-cache");
    let cache = dir.join("cache");
    let (_, event, settings, expected) = EXAMPLES[0];
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_relay"))
            .args(["test", "-t"])
            .arg(relay_testkit::guest("data-change"))
            .arg("-e")
            .arg(relay_testkit::fixture(event))
            .arg("-s")
            .arg(relay_testkit::fixture(settings))
            .arg("--expect")
            .arg(relay_testkit::fixture(expected))
            .env("RELAY_MODULE_CACHE", &cache)
            .output()
            .expect("run relay test")
    };
    let cached = || -> Vec<(PathBuf, std::time::SystemTime)> {
        std::fs::read_dir(&cache)
            .map(|entries| {
                entries
                    .map(|e| {
                        let e = e.unwrap();
                        (e.path(), e.metadata().unwrap().modified().unwrap())
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let out = run();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first = cached();
    assert_eq!(first.len(), 1, "one artifact for the one .wasm: {first:?}");
    assert!(first[0].0.to_string_lossy().ends_with(".cwasm"));
    // The second run loads it: the same file, not written again.
    let out = run();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(cached(), first);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_shows_where_each_table_publishes_and_refuses_an_unknown_sink() {
    let dir = scratch("check-sinks");
    let wasm = relay_testkit::guest("data-change");
    let config = |routing: &str| {
        format!(
            r#"
[bus]
url = "http://127.0.0.1:9"

[fallback]
queue_url = "http://127.0.0.1:9/123456789012/fallback"

[sinks.events]
kind = "eventbridge"
source = "relay.test"

[sinks.stream]
kind = "kinesis"
stream_name = "orders"

[tables.orders]
module = "{}"
settings = {{ data_type = "order", event_type = "order.changed" }}
{routing}
"#,
            wasm.display()
        )
    };
    let path = dir.join("relay.toml");
    std::fs::write(&path, config(r#"sinks = ["nakadi", "events"]"#)).unwrap();
    let out = relay(&["check", "--config", s(&path)]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{said}");
    for line in [
        "sink events: eventbridge bus default (source relay.test) (tables orders)",
        "sink nakadi: nakadi http://127.0.0.1:9 (tables orders)",
        "sink stream: kinesis stream orders (no table; kept for re-drive",
    ] {
        assert!(said.contains(line), "{line:?} missing in:\n{said}");
    }

    std::fs::write(&path, config(r#"sinks = ["nakadi", "audit"]"#)).unwrap();
    let out = relay(&["check", "--config", s(&path)]);
    let said = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains(
            "tables.orders.sinks: names \"audit\", which is not configured (configured: events, nakadi, stream)"
        ),
        "{said}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
