//! The relay as it runs in production: the real binary as a Lambda function
//! under a Runtime API harness, moto as SQS, and a Nakadi-compatible bus
//! that can be told to fail. Every change must end up published, parked or
//! reported back to Lambda.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use relay_testkit::Fault;
use serde_json::{json, Value};
use support::stack::{checkpoint, eid, insert, records, sample, Stack, StackOptions, EVENT_TYPE};

const INVOKE: Duration = Duration::from_secs(30);

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn eids_of(parked: &[Value]) -> Vec<String> {
    parked
        .iter()
        .filter_map(|p| p["eid"].as_str().map(str::to_owned))
        .collect()
}

/// Per item, the bus must have accepted events in stream order.
fn assert_item_order(stack: &Stack, recs: &[relay_record::Record]) {
    let position: HashMap<String, usize> =
        recs.iter().enumerate().map(|(i, r)| (eid(r), i)).collect();
    let mut last: HashMap<String, usize> = HashMap::new();
    for accepted in stack.nakadi.accepted_eids() {
        let i = position[&accepted];
        let item = recs[i].keys.to_string();
        if let Some(&previous) = last.get(&item) {
            assert!(
                previous < i,
                "item {item}: record {i} was published after record {previous}"
            );
        }
        last.insert(item, i);
    }
}

#[test]
fn happy_path_publishes_every_record_in_order() {
    let mut stack = Stack::start("happy", StackOptions::default());
    let batch = sample(60, 1);
    let response = stack.invoke(&batch, INVOKE).expect("invocation succeeds");
    assert_eq!(response, json!({"batchItemFailures": []}));
    let recs = records(&batch);
    assert_eq!(
        sorted(stack.nakadi.accepted_eids()),
        sorted(recs.iter().map(eid).collect())
    );
    assert_item_order(&stack, &recs);
    assert!(stack.parked().is_empty());
    for request in stack.nakadi.requests() {
        assert_eq!(request.auth.as_deref(), Some("Bearer secret-token"));
        assert!(request.flow_id.is_some(), "X-Flow-Id is sent");
        assert_eq!(request.event_type, EVENT_TYPE);
    }
    // A warm second invocation reuses everything.
    let batch = sample(10, 2);
    let response = stack.invoke(&batch, INVOKE).expect("second invocation");
    assert_eq!(checkpoint(&response), None);
    assert!(
        stack.log().contains("\"request_id\""),
        "logs carry the request id"
    );
    assert!(
        stack.log().contains("\"RecordsIn\":10"),
        "an EMF metrics line per invocation"
    );
}

#[test]
fn bus_flaps_then_recovers() {
    let mut stack = Stack::start(
        "flaps",
        StackOptions {
            max_attempts: 5,
            ..StackOptions::default()
        },
    );
    stack.nakadi.script(vec![
        Fault::Status(503),
        Fault::Disconnect,
        Fault::Status(429),
        Fault::Status(500),
    ]);
    let batch = sample(20, 3);
    let response = stack.invoke(&batch, INVOKE).expect("invocation succeeds");
    assert_eq!(checkpoint(&response), None);
    let recs = records(&batch);
    assert_eq!(
        sorted(stack.nakadi.accepted_eids()),
        sorted(recs.iter().map(eid).collect())
    );
    assert_item_order(&stack, &recs);
    assert!(stack.parked().is_empty(), "nothing needed parking");
    assert!(stack.nakadi.requests().len() >= 5, "it retried");
}

#[test]
fn bus_down_parks_everything_and_reports_success() {
    let mut stack = Stack::start("bus-down", StackOptions::default());
    stack.nakadi.respond_status(503, None);
    let batch = sample(25, 4);
    let response = stack.invoke(&batch, INVOKE).expect("invocation succeeds");
    assert_eq!(checkpoint(&response), None, "parked counts as delivered");
    assert!(stack.nakadi.accepted().is_empty());
    let parked = stack.parked();
    let mut parked_eids = eids_of(&parked);
    parked_eids.sort();
    let mut expected: Vec<String> = records(&batch).iter().map(eid).collect();
    expected.sort();
    assert_eq!(parked_eids, expected, "every event is parked, once");
    for envelope in &parked {
        assert_eq!(envelope["version"], 1);
        assert_eq!(envelope["kind"], "event");
        assert_eq!(envelope["table"], "orders");
        assert_eq!(envelope["event_type"], EVENT_TYPE);
        assert!(envelope["body"]["metadata"]["eid"].is_string());
        assert!(envelope["sequence_number"].is_string());
        assert!(envelope["parked_at"].is_string());
        assert!(envelope["attempts"].as_u64().unwrap() <= 3);
    }
    // The first event of each item was tried; the rest waited behind it.
    assert!(parked
        .iter()
        .any(|p| p["last_error"].as_str().unwrap().contains("status 503")));
}

#[test]
fn bus_down_and_sqs_down_reports_the_first_record() {
    let mut stack = Stack::start("all-down", StackOptions::default());
    stack.nakadi.refuse_connections();
    stack.moto.stop();
    let batch = sample(15, 5);
    let first = records(&batch)[0].sequence_number.clone();
    let response = stack.invoke(&batch, INVOKE).expect("invocation answers");
    assert_eq!(checkpoint(&response), Some(first));
    assert!(stack.log().contains("could neither publish nor park"));
}

#[test]
fn partial_207_publishes_the_rest_and_parks_the_failed_item() {
    let mut stack = Stack::start("partial", StackOptions::default());
    let batch = sample(40, 6);
    let recs = records(&batch);
    // The first event of one item with several changes keeps failing.
    let mut counts: HashMap<String, usize> = HashMap::new();
    for r in &recs {
        *counts.entry(r.keys.to_string()).or_default() += 1;
    }
    let victim = recs
        .iter()
        .find(|r| counts[&r.keys.to_string()] >= 2)
        .expect("an item with two changes");
    stack.nakadi.fail_eids([eid(victim)]);
    let response = stack.invoke(&batch, INVOKE).expect("invocation succeeds");
    assert_eq!(checkpoint(&response), None);

    let item_events: Vec<String> = recs
        .iter()
        .filter(|r| r.keys == victim.keys)
        .map(eid)
        .collect();
    let parked = eids_of(&stack.parked());
    assert_eq!(
        parked.len(),
        item_events.len(),
        "only the victim's item is parked"
    );
    let parked_set: HashSet<&String> = parked.iter().collect();
    for e in &item_events {
        assert!(parked_set.contains(e), "{e} of the failing item is parked");
    }
    let accepted = stack.nakadi.accepted_eids();
    assert_eq!(accepted.len() + parked.len(), recs.len());
    for e in &item_events {
        assert!(!accepted.contains(e), "no event overtakes the failed one");
    }
    assert_item_order(&stack, &recs);
}

#[test]
fn unprocessable_batch_parks_only_the_invalid_event() {
    let mut stack = Stack::start("unprocessable", StackOptions::default());
    let batch = sample(12, 7);
    let recs = records(&batch);
    let invalid = eid(&recs[3]);
    stack.nakadi.reject_eids([invalid.clone()]);
    let response = stack.invoke(&batch, INVOKE).expect("invocation succeeds");
    assert_eq!(checkpoint(&response), None);
    let parked = stack.parked();
    let item_of_invalid: Vec<String> = recs
        .iter()
        .filter(|r| r.keys == recs[3].keys && r.sequence_number >= recs[3].sequence_number)
        .map(eid)
        .collect();
    let mut parked_eids = eids_of(&parked);
    parked_eids.sort();
    let mut expected = item_of_invalid.clone();
    expected.sort();
    assert_eq!(parked_eids, expected);
    let invalid_envelope = parked
        .iter()
        .find(|p| p["eid"] == invalid.as_str())
        .unwrap();
    assert!(
        invalid_envelope["last_error"]
            .as_str()
            .unwrap()
            .starts_with("rejected by the bus:"),
        "{invalid_envelope}"
    );
    assert_eq!(
        stack.nakadi.accepted_eids().len() + parked.len(),
        recs.len(),
        "the good events of the rejected batch were resent"
    );
}

#[test]
fn transform_trap_parks_the_raw_record_with_the_reason() {
    let mut stack = Stack::start(
        "trap",
        StackOptions {
            orders_module: "hostile",
            orders_settings: r#"{ mode = "ok" }"#,
            ..StackOptions::default()
        },
    );
    let batch = json!({"Records": [
        insert("orders", "100", "A", json!({})),
        insert("orders", "200", "B", json!({"mode": {"S": "panic"}})),
        insert("orders", "300", "C", json!({})),
    ]});
    let response = stack.invoke(&batch, INVOKE).expect("invocation succeeds");
    assert_eq!(checkpoint(&response), None);
    assert_eq!(stack.nakadi.accepted().len(), 2);
    let parked = stack.parked();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0]["kind"], "record");
    assert_eq!(parked[0]["sequence_number"], "200");
    assert_eq!(
        parked[0]["record"]["eventID"], "ev-200",
        "the raw record is kept"
    );
    let reason = parked[0]["last_error"].as_str().unwrap();
    assert!(
        reason.contains("transform hostile failed on record 200")
            && reason.contains("hostile panic"),
        "{reason}"
    );
}

#[test]
fn malformed_record_and_unknown_table_are_parked_not_dropped() {
    let mut stack = Stack::start("malformed", StackOptions::default());
    let mut malformed = insert("orders", "200", "B", json!({}));
    malformed["dynamodb"]["NewImage"]["total"] = json!({"N": "twelve"});
    let batch = json!({"Records": [
        insert("orders", "100", "A", json!({})),
        malformed,
        insert("payments", "300", "C", json!({})),
        insert("orders", "400", "D", json!({})),
    ]});
    let response = stack.invoke(&batch, INVOKE).expect("invocation succeeds");
    assert_eq!(checkpoint(&response), None);
    assert_eq!(stack.nakadi.accepted().len(), 2);
    let mut parked = stack.parked();
    parked.sort_by_key(|p| p["sequence_number"].as_str().unwrap().to_owned());
    assert_eq!(parked.len(), 2);
    assert_eq!(parked[0]["kind"], "record");
    let reason = parked[0]["last_error"].as_str().unwrap();
    assert!(
        reason.contains("cannot decode") && reason.contains("total"),
        "{reason}"
    );
    assert_eq!(parked[1]["table"], "payments");
    assert!(
        parked[1]["last_error"]
            .as_str()
            .unwrap()
            .contains("no transform is configured for table \"payments\""),
        "{}",
        parked[1]
    );
}

#[test]
fn a_hanging_bus_is_given_up_before_the_deadline() {
    let mut stack = Stack::start(
        "deadline",
        StackOptions {
            max_attempts: 50,
            request_timeout_ms: 10_000,
            deadline_margin_ms: 1_500,
            ..StackOptions::default()
        },
    );
    stack.nakadi.hang(Duration::from_secs(20));
    let batch = sample(10, 8);
    let started = Instant::now();
    let response = stack
        .invoke(&batch, Duration::from_secs(4))
        .expect("invocation answers");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "answered before the deadline, took {took:?}"
    );
    assert_eq!(checkpoint(&response), None);
    // The hanging requests may or may not have been accepted in the end
    // (the outcome of a timeout is unknown); every event is parked anyway.
    assert_eq!(eids_of(&stack.parked()).len(), 10);
}

#[test]
fn not_a_stream_event_fails_the_invocation() {
    let mut stack = Stack::start("garbage", StackOptions::default());
    let err = stack
        .invoke(&json!({"hello": "world"}), INVOKE)
        .expect_err("the whole batch is handed back");
    assert!(
        format!("{err:?}").contains("not a DynamoDB Streams event"),
        "{err:?}"
    );
}

/// The Rust Lambda community's local loop, as the README shows it:
/// `cargo lambda watch --only-lambda-apis` as the Runtime API and `cargo
/// lambda invoke --data-file` as the caller. cargo-lambda sends the deadline
/// as a duration (600000), not an epoch time; the relay must still publish
/// every event instead of parking them all as "too near the deadline".
#[test]
fn the_cargo_lambda_local_loop_publishes_a_300_record_batch() {
    use std::process::{Command, Stdio};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo_lambda = std::env::var_os("RELAY_CARGO_LAMBDA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join(".venv/bin/cargo-lambda"));
    assert!(
        cargo_lambda.exists(),
        "{} is missing: scripts/setup installs cargo-lambda into .venv",
        cargo_lambda.display()
    );
    let stack = Stack::start("cargo-lambda", StackOptions::default());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
        .to_string();
    let watch_log = std::fs::File::create(stack.dir.join("cargo-lambda.log")).unwrap();
    // `watch` reads the workspace's metadata, so it runs in the workspace.
    let mut watch = Command::new(&cargo_lambda)
        .args([
            "lambda",
            "watch",
            "--only-lambda-apis",
            "-A",
            "127.0.0.1",
            "-P",
            &port,
        ])
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(watch_log.try_clone().unwrap())
        .stderr(watch_log)
        .spawn()
        .expect("start cargo lambda watch");
    let started = Instant::now();
    while std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "cargo lambda watch never listened: {}",
            std::fs::read_to_string(stack.dir.join("cargo-lambda.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The variables `watch --only-lambda-apis` says to set.
    let relay_log = std::fs::File::create(stack.dir.join("relay-cargo-lambda.log")).unwrap();
    let mut relay = Command::new(env!("CARGO_BIN_EXE_relay"))
        .envs(stack.env())
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{port}/.rt"),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "4096")
        .stdin(Stdio::null())
        .stdout(relay_log.try_clone().unwrap())
        .stderr(relay_log)
        .spawn()
        .expect("start relay");
    let batch = sample(300, 14);
    let data = stack.dir.join("batch.json");
    std::fs::write(&data, batch.to_string()).unwrap();
    let invoked = Command::new(&cargo_lambda)
        .args([
            "lambda",
            "invoke",
            "-A",
            "127.0.0.1",
            "-P",
            &port,
            "--output-format",
            "json",
            "--data-file",
        ])
        .arg(&data)
        .current_dir(&root)
        .output()
        .expect("run cargo lambda invoke");
    let relay_said = std::fs::read_to_string(stack.dir.join("relay-cargo-lambda.log")).unwrap();
    let _ = relay.kill();
    let _ = watch.kill();
    let _ = (relay.wait(), watch.wait());
    assert!(
        invoked.status.success(),
        "cargo lambda invoke failed: {}\nrelay log:\n{relay_said}",
        String::from_utf8_lossy(&invoked.stderr)
    );
    let response: Value = serde_json::from_slice(&invoked.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&invoked.stdout)));
    assert_eq!(checkpoint(&response), None, "relay log:\n{relay_said}");
    let recs = records(&batch);
    assert_eq!(
        sorted(stack.nakadi.accepted_eids()),
        sorted(recs.iter().map(eid).collect()),
        "every event reaches the bus; relay log:\n{relay_said}"
    );
    assert_item_order(&stack, &recs);
    assert!(stack.parked().is_empty(), "nothing parked");
    assert!(
        relay_said.contains("deadline"),
        "the odd deadline is warned about: {relay_said}"
    );
}

/// The invocation's output budget (`[invocation] max_output_bytes`) stops
/// mapping at the same record whether one thread maps the batch or two:
/// the records before it are published, it and the rest are handed back.
#[test]
fn the_output_budget_defers_the_same_rest_on_one_thread_or_two() {
    let batch = sample(60, 7);
    let recs = records(&batch);
    let mut cuts = Vec::new();
    for threads in [1, 2] {
        let mut stack = Stack::start(
            &format!("budget-{threads}"),
            StackOptions {
                extra: format!(
                    "\n[invocation]\nmax_output_bytes = 60000\ntransform_threads = {threads}\n"
                ),
                ..StackOptions::default()
            },
        );
        let response = stack.invoke(&batch, INVOKE).expect("invocation succeeds");
        let reported = checkpoint(&response).expect("the rest of the batch is handed back");
        let at = recs
            .iter()
            .position(|r| r.sequence_number == reported)
            .expect("the checkpoint is a record of the batch");
        assert!(at > 0, "some records fit the budget");
        assert_eq!(
            sorted(stack.nakadi.accepted_eids()),
            sorted(recs[..at].iter().map(eid).collect()),
            "{threads} thread(s): exactly the records before the checkpoint are published"
        );
        assert_item_order(&stack, &recs);
        assert!(stack.parked().is_empty(), "nothing parked");
        assert!(
            stack.log().contains("output budget used up"),
            "the log says why: {}",
            stack.log()
        );
        cuts.push(at);
    }
    assert_eq!(cuts[0], cuts[1], "the same cut on one thread and two");
}
