//! Re-drive (issue 4) end to end: the real relay parks events and records in
//! moto's SQS while the fake Nakadi fails, then the real `relay redrive`
//! drains the queue back to the bus. Parked events keep their eid, parked
//! records go through the table's current transform, per item the stream
//! order holds, and nothing leaves the queue before the bus accepted it.

mod support;

use std::collections::{HashMap, HashSet};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use relay_record::Record;
use relay_testkit::Fault;
use serde_json::{json, Value};
use support::stack::{checkpoint, eid, insert, records, sample, Stack, StackOptions, EVENT_TYPE};

const INVOKE: Duration = Duration::from_secs(30);
/// How long a test waits for a condition it polls.
const WAIT: Duration = Duration::from_secs(20);

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Polls `done` until it holds or `timeout` passes.
fn wait_for(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `(visible, in flight)` messages of the fallback queue.
fn queue_counts(stack: &Stack) -> (usize, usize) {
    let count = |name| {
        stack
            .moto
            .attribute(&stack.queue, name)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (
        count(QueueAttributeName::ApproximateNumberOfMessages),
        count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

/// Every message of the queue, visible or not.
fn in_queue(stack: &Stack) -> usize {
    let (visible, hidden) = queue_counts(stack);
    visible + hidden
}

/// Waits until all `n` messages of the queue are visible again.
fn wait_visible(stack: &Stack, n: usize) {
    assert!(
        wait_for(WAIT, || queue_counts(stack) == (n, 0)),
        "expected {n} visible messages, the queue has {:?} (visible, in flight)",
        queue_counts(stack)
    );
}

/// The JSON summary `relay redrive` prints on stdout.
fn summary(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "relay redrive printed no JSON summary ({e}); status {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "relay redrive exit status; stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn eids_of(parked: &[Value]) -> Vec<String> {
    parked
        .iter()
        .filter_map(|p| p["eid"].as_str().map(str::to_owned))
        .collect()
}

/// Per eid: its item (table and keys) and its record's position in stream
/// order.
fn positions(recs: &[Record]) -> HashMap<String, (String, usize)> {
    recs.iter()
        .enumerate()
        .map(|(i, r)| (eid(r), (format!("{}/{}", r.table, r.keys), i)))
        .collect()
}

/// Per item, `accepted` must follow stream order.
fn assert_item_order(accepted: &[String], positions: &HashMap<String, (String, usize)>) {
    let mut last: HashMap<&str, usize> = HashMap::new();
    for e in accepted {
        let (item, i) = positions
            .get(e)
            .unwrap_or_else(|| panic!("published eid {e} is not one of the parked events"));
        if let Some(&previous) = last.get(item.as_str()) {
            assert!(
                previous < *i,
                "item {item}: record {i} was published after record {previous}"
            );
        }
        last.insert(item, *i);
    }
}

/// Each eid at most once.
fn assert_no_duplicates(eids: &[String]) {
    let mut seen = HashSet::new();
    for e in eids {
        assert!(seen.insert(e), "{e} was published twice in one re-drive");
    }
}

/// Items of a batch with their records' indices in stream order.
fn items(recs: &[Record]) -> Vec<Vec<usize>> {
    let mut order: Vec<String> = Vec::new();
    let mut by_item: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in recs.iter().enumerate() {
        let key = r.keys.to_string();
        if !by_item.contains_key(&key) {
            order.push(key.clone());
        }
        by_item.entry(key).or_default().push(i);
    }
    order
        .into_iter()
        .map(|k| by_item.remove(&k).unwrap())
        .collect()
}

/// Rewrites the stack's config file (only the re-drive process reads it
/// again; the running relay keeps what it loaded).
fn edit_config(stack: &Stack, edit: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(&stack.config).expect("read the config");
    let new = edit(text.clone());
    assert_ne!(new, text, "the config changed");
    std::fs::write(&stack.config, new).expect("write the config");
}

/// Parks a whole batch as events: the bus answers 503 throughout.
fn park_events(stack: &mut Stack, batch: &Value) -> Vec<Value> {
    stack.nakadi.respond_status(503, None);
    let response = stack.invoke(batch, INVOKE).expect("invocation succeeds");
    assert_eq!(checkpoint(&response), None, "parked counts as delivered");
    assert!(stack.nakadi.accepted().is_empty());
    stack.parked()
}

/// A record of `table` that removes the order (its old image had `status`).
fn remove(table: &str, seq: &str, order: &str) -> Value {
    let mut record = insert(table, seq, order, json!({}));
    record["eventName"] = json!("REMOVE");
    let image = record["dynamodb"]["NewImage"].take();
    record["dynamodb"]["OldImage"] = image;
    record["dynamodb"]
        .as_object_mut()
        .unwrap()
        .remove("NewImage");
    record
}

#[test]
fn redrive_drains_events_and_records_in_order_with_the_same_eids() {
    let mut stack = Stack::start("drain", StackOptions::default());
    let mut batch = sample(30, 11);
    let recs = records(&batch);
    // A record of a table without a route, and one that cannot be decoded.
    let payment = insert("payments", "100", "P-1", json!({}));
    let payment_eid = eid(&records(&json!({ "Records": [payment.clone()] }))[0]);
    let mut malformed = insert("orders", "200", "M-1", json!({}));
    malformed["dynamodb"]["NewImage"]["total"] = json!({"N": "twelve"});
    let list = batch["Records"].as_array_mut().unwrap();
    list.push(payment.clone());
    list.push(malformed);

    let parked = park_events(&mut stack, &batch);
    assert_eq!(parked.len(), 32);
    let event_eids: Vec<String> = recs.iter().map(eid).collect();
    assert_eq!(sorted(eids_of(&parked)), sorted(event_eids.clone()));
    assert_eq!(parked.iter().filter(|p| p["kind"] == "record").count(), 2);

    // The payments table gets a route before the re-drive; the malformed
    // record cannot be decoded by any transform.
    let module = relay_testkit::guest("data-change");
    edit_config(&stack, |text| {
        format!(
            "{text}\n[tables.payments]\nmodule = \"{}\"\nsettings = {{ data_type = \"payment\", event_type = \"payment.changed\" }}\n",
            module.display()
        )
    });
    stack.nakadi.healthy();
    stack.nakadi.clear_logs();
    let output = stack.redrive(&["--retry-base-secs", "1"]);
    assert_exit(&output, 1); // the malformed record still fails
    assert_eq!(
        summary(&output),
        json!({
            "received": 32, "republished": 30, "retransformed": 1,
            "retransformed_events": 1, "duplicates": 0, "deleted": 31, "still_failing": 1, "poison": 0
        })
    );

    let accepted = stack.nakadi.accepted_eids();
    assert_no_duplicates(&accepted);
    let mut expected = event_eids;
    expected.push(payment_eid.clone());
    assert_eq!(sorted(accepted.clone()), sorted(expected));
    let mut all = recs.clone();
    all.extend(records(&json!({ "Records": [payment] })));
    assert_item_order(&accepted, &positions(&all));
    assert_eq!(stack.nakadi.accepted_of(EVENT_TYPE).len(), 30);
    let payments = stack.nakadi.accepted_of("payment.changed");
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["metadata"]["eid"], payment_eid.as_str());
    assert_eq!(payments[0]["data_type"], "payment");
    // Republished bodies are the parked ones, unchanged.
    let parked_bodies: HashMap<String, &Value> = parked
        .iter()
        .filter_map(|p| Some((p["eid"].as_str()?.to_owned(), &p["body"])))
        .collect();
    for event in stack.nakadi.accepted_of(EVENT_TYPE) {
        let e = event["metadata"]["eid"].as_str().unwrap();
        assert_eq!(
            &event, parked_bodies[e],
            "the body of {e} is republished as parked"
        );
    }

    // Only the malformed record is left, postponed for a while.
    assert_eq!(in_queue(&stack), 1);
    wait_visible(&stack, 1);
    let left = stack.parked();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["kind"], "record");
    assert_eq!(left[0]["sequence_number"], "200");
}

#[test]
fn redrive_with_the_bus_still_down_keeps_everything() {
    let mut stack = Stack::start("still-down", StackOptions::default());
    let batch = sample(20, 12);
    let recs = records(&batch);
    let parked = park_events(&mut stack, &batch);
    assert_eq!(parked.len(), 20);
    stack.nakadi.clear_logs();

    let output = stack.redrive(&["--retry-base-secs", "1"]);
    assert_exit(&output, 1);
    let s = summary(&output);
    assert_eq!(s["received"], 20);
    assert_eq!(s["still_failing"], 20);
    assert_eq!(s["deleted"], 0);
    assert_eq!(s["republished"], 0);
    assert_eq!(s["poison"], 0);
    assert!(stack.nakadi.accepted().is_empty());

    // It tried, but only each item's first parked event: the rest waited.
    let requests = stack.nakadi.requests();
    assert!(!requests.is_empty(), "the re-drive tried the bus");
    let heads: HashSet<String> = items(&recs).iter().map(|i| eid(&recs[i[0]])).collect();
    for request in &requests {
        for e in &request.eids {
            assert!(heads.contains(e), "{e} is not the first event of its item");
        }
    }

    // Nothing deleted, nothing lost, nothing changed.
    assert_eq!(in_queue(&stack), 20);
    wait_visible(&stack, 20);
    let mut after = stack.parked();
    let mut before = parked;
    let by_eid = |v: &Value| v["eid"].as_str().unwrap().to_owned();
    before.sort_by_key(by_eid);
    after.sort_by_key(by_eid);
    assert_eq!(after, before);
}

#[test]
fn records_parked_by_a_broken_transform_publish_once_it_is_fixed() {
    let mut stack = Stack::start(
        "fixed",
        StackOptions {
            orders_module: "hostile",
            orders_settings: r#"{ mode = "error" }"#,
            ..StackOptions::default()
        },
    );
    let batch = sample(12, 13);
    let recs = records(&batch);
    let response = stack.invoke(&batch, INVOKE).expect("invocation succeeds");
    assert_eq!(checkpoint(&response), None);
    assert!(stack.nakadi.accepted().is_empty());
    let parked = stack.parked();
    assert_eq!(parked.len(), 12);
    for p in &parked {
        assert_eq!(p["kind"], "record", "{p}");
        assert!(
            p["last_error"].as_str().unwrap().contains("told to fail"),
            "{p}"
        );
    }

    let hostile = relay_testkit::guest("hostile").display().to_string();
    let data_change = relay_testkit::guest("data-change").display().to_string();
    edit_config(&stack, |text| {
        text.replace(&hostile, &data_change).replace(
            r#"{ mode = "error" }"#,
            r#"{ data_type = "payment-order", event_type = "payment-order.changed" }"#,
        )
    });
    stack.nakadi.clear_logs();
    let output = stack.redrive(&[]);
    assert_exit(&output, 0);
    assert_eq!(
        summary(&output),
        json!({
            "received": 12, "republished": 0, "retransformed": 12,
            "retransformed_events": 12, "duplicates": 0, "deleted": 12, "still_failing": 0, "poison": 0
        })
    );
    let accepted = stack.nakadi.accepted_eids();
    assert_no_duplicates(&accepted);
    let expected: Vec<String> = recs.iter().map(|r| relay_record::eid(r, 0)).collect();
    assert_eq!(sorted(accepted.clone()), sorted(expected));
    assert_item_order(&accepted, &positions(&recs));
    for event in stack.nakadi.accepted_of(EVENT_TYPE) {
        assert_eq!(event["data_type"], "payment-order");
    }
    assert_eq!(in_queue(&stack), 0, "the queue is empty");
}

#[test]
fn a_record_that_now_yields_no_event_does_not_stall_its_item() {
    // order-status emits nothing for a REMOVE: the records after it in the
    // item must still go through the transform, in order.
    let mut stack = Stack::start(
        "no-events",
        StackOptions {
            orders_module: "hostile",
            orders_settings: r#"{ mode = "error" }"#,
            ..StackOptions::default()
        },
    );
    let batch = json!({"Records": [
        insert("orders", "100", "A-1", json!({})),
        remove("orders", "200", "A-1"),
        insert("orders", "300", "A-1", json!({"status": {"S": "paid"}})),
        insert("orders", "400", "B-1", json!({})),
    ]});
    let recs = records(&batch);
    let response = stack.invoke(&batch, INVOKE).expect("invocation succeeds");
    assert_eq!(checkpoint(&response), None);
    assert_eq!(stack.parked().len(), 4);

    let hostile = relay_testkit::guest("hostile").display().to_string();
    let order_status = relay_testkit::guest("order-status").display().to_string();
    edit_config(&stack, |text| {
        text.replace(&hostile, &order_status)
            .replace(r#"{ mode = "error" }"#, "{}")
    });
    stack.nakadi.clear_logs();
    let output = stack.redrive(&[]);
    assert_exit(&output, 0);
    assert_eq!(
        summary(&output),
        json!({
            "received": 4, "republished": 0, "retransformed": 4,
            "retransformed_events": 3, "duplicates": 0, "deleted": 4, "still_failing": 0, "poison": 0
        })
    );
    let accepted = stack.nakadi.accepted_eids();
    let expected = vec![
        relay_record::eid(&recs[0], 0),
        relay_record::eid(&recs[2], 0),
        relay_record::eid(&recs[3], 0),
    ];
    assert_eq!(sorted(accepted.clone()), sorted(expected));
    assert_item_order(&accepted, &positions(&recs));
    let statuses: Vec<Value> = stack
        .nakadi
        .accepted_of("order.status-changed")
        .iter()
        .filter(|e| e["order_number"] == "A-1")
        .map(|e| e["status"].clone())
        .collect();
    assert_eq!(statuses, vec![json!("created"), json!("paid")]);
    assert_eq!(in_queue(&stack), 0);
}

#[test]
fn a_redrive_killed_midway_is_finished_by_the_next_run() {
    let mut stack = Stack::start("crash", StackOptions::default());
    let batch = sample(30, 14);
    let recs = records(&batch);
    let longest = items(&recs).iter().map(Vec::len).max().unwrap();
    assert!(
        longest >= 3,
        "an item with three changes, so there are three waves"
    );
    let parked = park_events(&mut stack, &batch);
    let n = parked.len();
    assert_eq!(n, 30);
    let expected: HashSet<String> = recs.iter().map(eid).collect();

    // The first wave goes through, the later requests are taken but never
    // answered, and the process dies before it could delete anything.
    stack.nakadi.healthy();
    stack.nakadi.clear_logs();
    stack.nakadi.hang(Duration::from_secs(15));
    stack.nakadi.script(vec![Fault::Healthy]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_relay"))
        .args(["redrive", "--visibility-timeout-secs", "2"])
        .envs(stack.env())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start relay redrive");
    assert!(
        stack.nakadi.wait_requests(2, WAIT),
        "the re-drive reached its second wave"
    );
    assert!(
        matches!(child.try_wait(), Ok(None)),
        "the re-drive is still waiting for the bus"
    );
    child.kill().expect("kill relay redrive");
    child.wait().expect("reap relay redrive");
    let first_run = stack.nakadi.accepted_eids();
    assert!(
        !first_run.is_empty() && first_run.len() < n,
        "{} of {n}",
        first_run.len()
    );

    // Nothing was deleted: every message comes back after its visibility
    // timeout, and the next run finishes the job.
    wait_visible(&stack, n);
    stack.nakadi.healthy();
    stack.nakadi.clear_logs();
    let output = stack.redrive(&[]);
    assert_exit(&output, 0);
    let s = summary(&output);
    assert_eq!(s["received"], n);
    assert_eq!(s["republished"], n);
    assert_eq!(s["deleted"], n);
    assert_eq!(in_queue(&stack), 0, "the queue is empty");

    let second_run = stack.nakadi.accepted_eids();
    assert_no_duplicates(&second_run);
    assert_item_order(&second_run, &positions(&recs));
    let union: HashSet<String> = first_run.iter().chain(&second_run).cloned().collect();
    assert_eq!(union, expected, "every parked event is published");
    // Duplicates only as the same eid: nothing outside the parked set.
    for e in first_run.iter().chain(&second_run) {
        assert!(expected.contains(e), "{e} was never parked");
    }
}

#[test]
fn dry_run_counts_and_changes_nothing() {
    let mut stack = Stack::start("dry-run", StackOptions::default());
    let mut batch = sample(8, 15);
    batch["Records"]
        .as_array_mut()
        .unwrap()
        .push(insert("payments", "100", "P-1", json!({})));
    let parked = park_events(&mut stack, &batch);
    assert_eq!(parked.len(), 9);
    stack.moto.send(&stack.queue, "garbage");
    wait_visible(&stack, 10);
    stack.nakadi.healthy();
    stack.nakadi.clear_logs();

    let output = stack.redrive(&["--dry-run"]);
    assert_exit(&output, 0);
    let report = summary(&output);
    assert_eq!(report["messages"], 10);
    assert_eq!(report["unreadable"], 1);
    assert_eq!(report["by_table"], json!({"orders": 8, "payments": 1}));
    assert_eq!(
        report["by_event_type"],
        json!({EVENT_TYPE: 8, "(raw record)": 1})
    );
    assert_eq!(report["by_age"], json!({"< 1 hour": 9}));
    let reasons = report["by_reason"].as_object().unwrap();
    assert_eq!(
        reasons.values().map(|v| v.as_u64().unwrap()).sum::<u64>(),
        9
    );
    assert_eq!(
        reasons[r#"no transform is configured for table "payments""#], 1,
        "{reasons:?}"
    );
    for reason in reasons.keys() {
        assert!(reason.chars().count() <= 80, "{reason}");
    }

    // Nothing published, nothing deleted, everything visible at once.
    assert!(stack.nakadi.requests().is_empty());
    assert_eq!(queue_counts(&stack), (10, 0));
}

#[test]
fn unreadable_and_too_often_received_messages_are_poison() {
    let mut stack = Stack::start("poison", StackOptions::default());
    // Received once already (the peek in park_events): poison with
    // --poison-receives 1.
    let old = sample(6, 16);
    let old_eids: Vec<String> = records(&old).iter().map(eid).collect();
    assert_eq!(park_events(&mut stack, &old).len(), 6);
    // Never received before the re-drive.
    let fresh = json!({"Records": [
        insert("orders", "100", "Z-1", json!({})),
        insert("orders", "200", "Z-2", json!({})),
    ]});
    let fresh_eids: Vec<String> = records(&fresh).iter().map(eid).collect();
    let response = stack.invoke(&fresh, INVOKE).expect("invocation succeeds");
    assert_eq!(checkpoint(&response), None);
    stack.moto.send(&stack.queue, "garbage");
    wait_visible(&stack, 9);
    stack.nakadi.healthy();
    stack.nakadi.clear_logs();

    // A short visibility timeout, so the poison shows up again soon.
    let output = stack.redrive(&["--poison-receives", "1", "--visibility-timeout-secs", "1"]);
    assert_exit(&output, 1);
    assert_eq!(
        summary(&output),
        json!({
            "received": 9, "republished": 2, "retransformed": 0,
            "retransformed_events": 0, "duplicates": 0, "deleted": 2, "still_failing": 0, "poison": 7
        })
    );
    let accepted = stack.nakadi.accepted_eids();
    assert_eq!(sorted(accepted), sorted(fresh_eids));
    // Poison is not deleted: it is left for the dead-letter policy.
    assert_eq!(in_queue(&stack), 7);
    wait_visible(&stack, 7);
    let left = stack.moto.peek_all(&stack.queue);
    assert_eq!(left.iter().filter(|b| *b == "garbage").count(), 1);
    let left_eids: Vec<String> = left
        .iter()
        .filter_map(|b| serde_json::from_str::<Value>(b).ok())
        .filter_map(|v| v["eid"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(sorted(left_eids), sorted(old_eids));
}

#[test]
fn an_item_whose_parked_event_still_fails_is_not_overtaken() {
    let mut stack = Stack::start("overtake", StackOptions::default());
    let batch = sample(40, 6);
    let recs = records(&batch);
    let all_items = items(&recs);
    // Item A fails at its first event, item B at its second.
    let a = all_items
        .iter()
        .find(|i| i.len() >= 2)
        .expect("an item with two changes");
    let b = all_items
        .iter()
        .find(|i| i.len() >= 3 && *i != a)
        .or_else(|| all_items.iter().find(|i| i.len() >= 2 && *i != a))
        .expect("a second item with several changes");
    let parked = park_events(&mut stack, &batch);
    assert_eq!(parked.len(), 40);

    stack.nakadi.healthy();
    stack.nakadi.fail_eids([eid(&recs[a[0]]), eid(&recs[b[1]])]);
    stack.nakadi.clear_logs();
    let output = stack.redrive(&["--retry-base-secs", "1"]);
    assert_exit(&output, 1);
    let stuck: Vec<String> = a.iter().chain(&b[1..]).map(|&i| eid(&recs[i])).collect();
    let s = summary(&output);
    assert_eq!(s["still_failing"], stuck.len());
    assert_eq!(s["republished"], 40 - stuck.len());
    assert_eq!(s["deleted"], 40 - stuck.len());

    let accepted = stack.nakadi.accepted_eids();
    assert_no_duplicates(&accepted);
    assert_item_order(&accepted, &positions(&recs));
    let published: HashSet<&String> = accepted.iter().collect();
    for e in &stuck {
        assert!(
            !published.contains(e),
            "{e} overtook the failing event of its item"
        );
    }
    assert!(
        published.contains(&eid(&recs[b[0]])),
        "B's first event went through"
    );
    assert_eq!(accepted.len(), 40 - stuck.len());

    // The stuck events stay parked, unchanged.
    assert_eq!(in_queue(&stack), stuck.len());
    wait_visible(&stack, stuck.len());
    assert_eq!(sorted(eids_of(&stack.parked())), sorted(stuck));
}

#[test]
fn a_poison_message_holds_back_the_rest_of_its_item() {
    let mut stack = Stack::start("poison-order", StackOptions::default());
    // Item X's first change is parked and received once (the peek), its
    // second change is parked by a later invocation.
    let first = json!({"Records": [insert("orders", "100", "X-1", json!({}))]});
    let second = json!({"Records": [
        insert("orders", "200", "X-1", json!({"status": {"S": "paid"}})),
        insert("orders", "300", "Y-1", json!({})),
    ]});
    let recs = records(&second);
    assert_eq!(park_events(&mut stack, &first).len(), 1);
    let response = stack.invoke(&second, INVOKE).expect("invocation succeeds");
    assert_eq!(checkpoint(&response), None);
    wait_visible(&stack, 3);
    stack.nakadi.healthy();
    stack.nakadi.clear_logs();

    let output = stack.redrive(&["--poison-receives", "1", "--retry-base-secs", "1"]);
    assert_exit(&output, 1);
    assert_eq!(
        summary(&output),
        json!({
            "received": 3, "republished": 1, "retransformed": 0,
            "retransformed_events": 0, "duplicates": 0, "deleted": 1, "still_failing": 1, "poison": 1
        })
    );
    // Only Y went out: X's second change waits behind its poison first one.
    assert_eq!(stack.nakadi.accepted_eids(), vec![eid(&recs[1])]);
    // Both of X stay parked.
    assert_eq!(in_queue(&stack), 2);
}
