//! Delivery guarantees, each against the hostile case that once broke it:
//! the real `relay` binary under the Lambda Runtime API harness, moto for
//! SQS, S3 and the DynamoDB registry (through a fault-injecting proxy where
//! AWS must fail or enforce its real limits), and the fake Nakadi.

mod support;

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use relay_testkit::{Fault, MotoS3, ProxyFault};
use serde_json::{json, Value};
use support::stack::{
    batch, checkpoint, eid, insert, modify, pairs, records, sample, Stack, StackOptions,
    CLAIM_CHECK_BUCKET,
};

const INVOKE: Duration = Duration::from_secs(30);

/// `(order, status)` of every data change event the bus accepted, in order.
fn published(stack: &Stack) -> Vec<(String, String)> {
    stack
        .nakadi
        .accepted()
        .into_iter()
        .map(|(_, body)| {
            (
                body["data"]["order_number"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned(),
                body["data"]["status"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect()
}

fn redrive_ok(stack: &Stack, args: &[&str]) -> Value {
    let out = stack.redrive(args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "relay redrive {args:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        out.status.code(),
        Some(101),
        "re-drive panicked: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "re-drive printed no summary ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn a_redirecting_bus_is_no_acknowledgement() {
    let mut stack = Stack::start("redirect", StackOptions::default());
    stack.nakadi.script(vec![Fault::Redirect(302); 20]);
    let response = stack
        .invoke(
            &batch(vec![
                insert("orders", "100", "o-1", json!({})),
                insert("orders", "200", "o-2", json!({})),
            ]),
            INVOKE,
        )
        .expect("answers");
    assert_eq!(checkpoint(&response), None, "{}", stack.log());
    assert!(stack.nakadi.accepted().is_empty());
    let followed: Vec<_> = stack
        .nakadi
        .requests()
        .into_iter()
        .filter(|r| r.event_type.is_empty())
        .collect();
    assert!(
        followed.is_empty(),
        "the relay followed a redirect: {followed:?}"
    );
    let parked = stack.parked();
    assert_eq!(parked.len(), 2, "{parked:?}");
    assert!(
        parked[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("redirect"),
        "{}",
        parked[0]
    );

    // Re-drive uses the same client: a redirect deletes nothing.
    stack.nakadi.script(vec![Fault::Redirect(307); 20]);
    let summary = redrive_ok(&stack, &["--retry-base-secs", "1"]);
    assert_eq!(summary["deleted"], 0, "{summary}");
    assert_eq!(summary["still_failing"], 2, "{summary}");
    assert!(stack.nakadi.accepted().is_empty());
    stack.nakadi.healthy();
    // Postponed for 1 s × 2^(receives − 1): the peek above was a receive too.
    std::thread::sleep(Duration::from_millis(2500));
    let summary = redrive_ok(&stack, &[]);
    assert_eq!(summary["republished"], 2, "{summary}");
    assert_eq!(stack.nakadi.accepted().len(), 2);
}

#[test]
fn an_item_parked_in_one_batch_holds_back_its_next_batch() {
    let mut stack = Stack::start(
        "hold",
        StackOptions {
            registry: true,
            ..StackOptions::default()
        },
    );
    let registry = stack.registry.clone().unwrap();
    // Batch 1: the bus is down, o-1 PAID is parked.
    stack.nakadi.respond_status(503, None);
    let first = batch(vec![insert(
        "orders",
        "100",
        "o-1",
        json!({"status": {"S": "PAID"}}),
    )]);
    let response = stack.invoke(&first, INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None);
    assert_eq!(stack.moto.registered_units(&registry).len(), 1);

    // Batch 2: the bus is back. o-2 goes out; o-1 SHIPPED waits behind PAID.
    stack.nakadi.healthy();
    let second = batch(vec![
        modify("200", "o-1", "PAID", "SHIPPED"),
        insert("orders", "210", "o-2", json!({"status": {"S": "NEW"}})),
    ]);
    let response = stack.invoke(&second, INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None);
    assert_eq!(
        published(&stack),
        pairs(&[("o-2", "NEW")]),
        "o-1 SHIPPED must not overtake the parked PAID"
    );
    let units = stack.moto.registered_units(&registry);
    assert_eq!(units.len(), 1, "{units:?}");
    assert_eq!(units.values().next().unwrap().len(), 2, "{units:?}");

    // Re-drive: PAID, then SHIPPED; nothing left parked or registered.
    let summary = redrive_ok(&stack, &[]);
    assert_eq!(summary["republished"], 2, "{summary}");
    assert_eq!(
        published(&stack),
        pairs(&[("o-2", "NEW"), ("o-1", "PAID"), ("o-1", "SHIPPED")])
    );
    assert!(stack.parked().is_empty());
    assert!(stack.moto.registered_units(&registry).is_empty());

    // Batch 3: nothing parked any more, so o-1 publishes directly.
    let third = batch(vec![modify("300", "o-1", "SHIPPED", "DELIVERED")]);
    let response = stack.invoke(&third, INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None);
    assert_eq!(
        published(&stack).last().unwrap(),
        &("o-1".into(), "DELIVERED".into())
    );
}

/// Hides the parked message holding `status` for `secs` and makes every
/// other visible one visible at once; returns the hidden one's receipt.
fn hide_message(stack: &Stack, status: &str, secs: i32) -> Option<String> {
    let client = stack.moto.client();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let out = stack
            .moto
            .block_on(
                client
                    .receive_message()
                    .queue_url(&stack.queue)
                    .max_number_of_messages(10)
                    .visibility_timeout(30)
                    .message_system_attribute_names(MessageSystemAttributeName::All)
                    .send(),
            )
            .expect("receive");
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        seen.extend(messages);
    }
    let mut hidden = None;
    for m in &seen {
        let body = m.body().unwrap_or_default();
        let hide = match body.contains(&format!("\"status\":\"{status}\"")) {
            true => {
                hidden = m.receipt_handle().map(str::to_owned);
                secs
            }
            false => 0,
        };
        set_visibility(stack, m.receipt_handle().unwrap(), hide);
    }
    hidden
}

fn set_visibility(stack: &Stack, receipt: &str, secs: i32) {
    stack
        .moto
        .block_on(
            stack
                .moto
                .client()
                .change_message_visibility()
                .queue_url(&stack.queue)
                .receipt_handle(receipt)
                .visibility_timeout(secs)
                .send(),
        )
        .expect("change visibility");
}

#[test]
fn redrive_keeps_an_items_order_across_runs() {
    let mut stack = Stack::start(
        "runs",
        StackOptions {
            registry: true,
            ..StackOptions::default()
        },
    );
    let events = batch(vec![
        insert("orders", "100", "o-1", json!({"status": {"S": "PAID"}})),
        modify("200", "o-1", "PAID", "SHIPPED"),
    ]);
    let paid_eid = eid(&records(&events)[0]);
    stack.nakadi.respond_status(503, None);
    let response = stack.invoke(&events, INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None);
    assert_eq!(stack.parked().len(), 2);

    // Run 1: the bus rejects PAID; SHIPPED must wait behind it.
    stack.nakadi.healthy();
    stack.nakadi.reject_eids([paid_eid.clone()]);
    let summary = redrive_ok(&stack, &["--retry-base-secs", "1"]);
    assert_eq!(summary["still_failing"], 2, "{summary}");
    assert!(published(&stack).is_empty(), "{:?}", published(&stack));

    // Run 2: SHIPPED is visible before PAID (a poison or slower-backing-off
    // predecessor). The registry still says PAID goes first.
    std::thread::sleep(Duration::from_millis(2500));
    let paid = hide_message(&stack, "PAID", 60).expect("PAID is parked");
    stack.nakadi.healthy();
    let summary = redrive_ok(&stack, &["--retry-base-secs", "1"]);
    assert_eq!(summary["republished"], 0, "{summary}");
    assert!(
        published(&stack).is_empty(),
        "SHIPPED overtook PAID across runs: {:?}",
        published(&stack)
    );

    // Later runs, PAID visible again: PAID, then SHIPPED (once its own
    // postponement is over).
    set_visibility(&stack, &paid, 0);
    let deadline = Instant::now() + Duration::from_secs(40);
    while published(&stack).len() < 2 && Instant::now() < deadline {
        redrive_ok(&stack, &["--retry-base-secs", "1"]);
        std::thread::sleep(Duration::from_millis(1000));
    }
    assert_eq!(
        published(&stack),
        pairs(&[("o-1", "PAID"), ("o-1", "SHIPPED")])
    );
    assert!(stack
        .moto
        .registered_units(stack.registry.as_deref().unwrap())
        .is_empty());
}

#[test]
fn an_undecodable_record_keeps_its_items_place() {
    let mut stack = Stack::start("undecodable", StackOptions::default());
    let mut broken = insert(
        "orders",
        "100",
        "o-1",
        json!({"blob": {"B": "not base64!"}}),
    );
    broken["eventName"] = "MODIFY".into();
    let events = batch(vec![
        broken,
        modify("200", "o-1", "created", "PAID"),
        insert("orders", "300", "o-2", json!({})),
    ]);
    let response = stack.invoke(&events, INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None);
    assert_eq!(
        published(&stack),
        pairs(&[("o-2", "created")]),
        "o-1's change must wait behind its undecodable predecessor"
    );
    let parked = stack.parked();
    assert_eq!(parked.len(), 2, "{parked:?}");
    for p in &parked {
        assert_eq!(p["item"], r#"orders/{"order_number":"o-1"}"#, "{p}");
    }
}

#[test]
fn fifo_fallback_keeps_distinct_records_without_sequence_numbers() {
    let mut stack = Stack::start(
        "fifo",
        StackOptions {
            fifo: true,
            ..StackOptions::default()
        },
    );
    let mut a = insert("orders", "x", "o-2", json!({"note": {"S": "first"}}));
    a["dynamodb"]
        .as_object_mut()
        .unwrap()
        .remove("SequenceNumber");
    let mut b = insert("orders", "x", "o-3", json!({"note": {"S": "second"}}));
    b["dynamodb"]
        .as_object_mut()
        .unwrap()
        .remove("SequenceNumber");
    let events = batch(vec![insert("orders", "100", "o-1", json!({})), a, b]);
    let response = stack.invoke(&events, INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None, "{}", stack.log());
    let parked = stack.parked();
    assert_eq!(
        parked.len(),
        2,
        "a FIFO queue deduplicated two different records: {parked:?}"
    );
}

#[test]
fn parked_batches_count_message_attributes() {
    let mut stack = Stack::start(
        "attributes",
        StackOptions {
            proxy: true,
            max_message_bytes: Some(4096),
            ..StackOptions::default()
        },
    );
    stack.proxy.as_ref().unwrap().strict_sqs(4096);
    stack.nakadi.respond_status(503, None);
    // Small events of varying size: batches packed by body size alone land
    // within a few hundred bytes of the limit, where the attributes tip
    // them over.
    let records: Vec<Value> = (0..60)
        .map(|i| {
            let pad = "x".repeat(40 + (i * 37) % 300);
            insert(
                "orders",
                &format!("{}", 1000 + i),
                &format!("o-{i}"),
                json!({"pad": {"S": pad}}),
            )
        })
        .collect();
    let response = stack.invoke(&batch(records), INVOKE).expect("answers");
    assert_eq!(
        checkpoint(&response),
        None,
        "SQS refused a batch whose bodies fit but whose attributes did not:\n{}",
        stack.log()
    );
    assert_eq!(stack.parked().len(), 60);
}

/// Hex noise that gzip cannot shrink much.
fn noise(len: usize, seed: u64) -> String {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_digit((x % 16) as u32, 16).unwrap()
        })
        .collect()
}

#[test]
fn an_oversized_record_is_claim_checked_in_s3() {
    let mut stack = Stack::start(
        "oversized",
        StackOptions {
            claim_check: true,
            max_message_bytes: Some(1024),
            ..StackOptions::default()
        },
    );
    let events = batch(vec![insert(
        "orders",
        "100",
        "o-1",
        json!({"blob": {"S": noise(3000, 7)}}),
    )]);
    let expected = eid(&records(&events)[0]);
    stack.nakadi.respond_status(503, None);
    let response = stack.invoke(&events, INVOKE).expect("answers");
    assert_eq!(
        checkpoint(&response),
        None,
        "an oversized record must be parked, not handed back forever:\n{}",
        stack.log()
    );
    let bodies = stack.moto.peek_all(&stack.queue);
    assert_eq!(bodies.len(), 1);
    let pointer: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(pointer["encoding"], "s3", "{pointer}");
    let s3 = MotoS3::new(&stack.moto);
    assert_eq!(s3.keys(CLAIM_CHECK_BUCKET, "").len(), 1);

    stack.nakadi.healthy();
    let summary = redrive_ok(&stack, &[]);
    assert_eq!(summary["republished"], 1, "{summary}");
    assert_eq!(stack.nakadi.accepted_eids(), vec![expected]);
    assert!(stack.parked().is_empty());
    assert!(
        s3.keys(CLAIM_CHECK_BUCKET, "").is_empty(),
        "the payload is deleted with its message"
    );
}

#[test]
fn a_looping_transform_answers_before_the_deadline() {
    let mut stack = Stack::start(
        "looping",
        StackOptions {
            orders_module: "hostile",
            orders_settings: r#"{ mode = "loop" }"#,
            ..StackOptions::default()
        },
    );
    // 150 records × a 100 ms CPU budget each would take 15 s.
    let deadline = Duration::from_secs(6);
    let started = Instant::now();
    let response = stack
        .invoke(&sample(150, 3), deadline)
        .expect("answers in time");
    let took = started.elapsed();
    assert!(
        took < deadline,
        "took {took:?} with a {deadline:?} deadline"
    );
    let reported = checkpoint(&response).expect("the untransformed rest is handed back");
    let seqs: Vec<String> = records(&sample(150, 3))
        .into_iter()
        .map(|r| r.sequence_number)
        .collect();
    assert!(seqs.contains(&reported));
    assert_ne!(
        seqs[0], reported,
        "some records were transformed (and parked)"
    );
}

#[test]
fn bus_down_and_sqs_hanging_answer_before_the_deadline() {
    let mut stack = Stack::start(
        "hanging-sqs",
        StackOptions {
            proxy: true,
            ..StackOptions::default()
        },
    );
    stack.nakadi.respond_status(503, None);
    stack.proxy.as_ref().unwrap().fail(
        "AmazonSQS.",
        ProxyFault::Hang(Duration::from_secs(30)),
        None,
    );
    let deadline = Duration::from_secs(5);
    let events = sample(20, 4);
    let started = Instant::now();
    let response = stack.invoke(&events, deadline).expect("answers in time");
    let took = started.elapsed();
    assert!(
        took < deadline,
        "took {took:?} with a {deadline:?} deadline"
    );
    assert_eq!(
        checkpoint(&response),
        Some(records(&events)[0].sequence_number.clone())
    );
}

#[test]
fn a_malformed_parked_message_is_poison_not_a_crash() {
    let mut stack = Stack::start("poison", StackOptions::default());
    stack.nakadi.respond_status(503, None);
    let events = batch(vec![insert("orders", "100", "o-1", json!({}))]);
    let expected = eid(&records(&events)[0]);
    let response = stack.invoke(&events, INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None);
    stack.moto.send(&stack.queue, "hello");
    stack.moto.send(
        &stack.queue,
        &json!({"version": 1, "kind": "event", "table": "orders", "sequence_number": "7",
                "item": "orders/{}", "attempts": 1, "last_error": "x",
                "parked_at": "2026-01-01T00:00:00.000Z"})
        .to_string(),
    );
    stack.nakadi.healthy();
    let out = stack.redrive(&[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("a summary");
    assert_eq!(summary["poison"], 2, "{summary}");
    assert_eq!(summary["republished"], 1, "{summary}");
    assert_eq!(stack.nakadi.accepted_eids(), vec![expected]);
    let count = |name| {
        stack
            .moto
            .attribute(&stack.queue, name)
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0)
    };
    let left = count(QueueAttributeName::ApproximateNumberOfMessages)
        + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible);
    assert_eq!(left, 2, "poison stays for the dead-letter queue");
}

#[test]
fn the_dynamodb_registry_counts_units_and_drops_empty_rows() {
    use relay::park::{DynamoRegistry, Part, Registry, UnitId};
    let moto = relay_testkit::Moto::start();
    moto.create_registry_table("registry");
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "moto",
        ))
        .endpoint_url(moto.endpoint())
        .build();
    let registry = DynamoRegistry::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        "registry".into(),
    );
    let unit = |seq: &str| UnitId::new(Some(seq), Part::Event(0), "");
    let a = r#"orders/{"order_number":"a"}"#;
    let b = r#"orders/{"order_number":"b"}"#;
    let other = r#"payments/{"id":"c"}"#;
    let deadline = || Instant::now() + Duration::from_secs(10);
    let counter = |table: &str| -> i64 {
        moto.scan("registry")
            .iter()
            .find(|row| row["item"]["S"] == format!("#parked/{table}"))
            .and_then(|row| row["n"]["N"].as_str()?.parse().ok())
            .unwrap_or(0)
    };
    moto.block_on(async {
        // Nothing parked: nothing found.
        assert!(registry
            .lookup(&[a, b, other], deadline())
            .await
            .unwrap()
            .is_empty());
        registry
            .register(a, &[unit("20"), unit("10")], deadline())
            .await
            .unwrap();
        // Registering again changes nothing (and does not inflate the count).
        registry
            .register(a, &[unit("10")], deadline())
            .await
            .unwrap();
        let found = registry.lookup(&[a, b, other], deadline()).await.unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let units: Vec<UnitId> = found[a].iter().map(|r| r.unit.clone()).collect();
        assert_eq!(units, [unit("10"), unit("20")], "lowest first");
    });
    assert_eq!(counter("orders"), 2);
    assert_eq!(counter("payments"), 0);
    moto.block_on(async {
        registry
            .unregister(a, &[unit("10")], deadline())
            .await
            .unwrap();
        // Unknown units and unknown items are harmless.
        registry
            .unregister(a, &[unit("99")], deadline())
            .await
            .unwrap();
        registry
            .unregister(b, &[unit("10")], deadline())
            .await
            .unwrap();
        let found = registry.lookup(&[a], deadline()).await.unwrap();
        assert_eq!(found[a].len(), 1);
        registry
            .unregister(a, &[unit("20")], deadline())
            .await
            .unwrap();
        assert!(registry
            .lookup(&[a, b], deadline())
            .await
            .unwrap()
            .is_empty());
    });
    assert_eq!(counter("orders"), 0);
    let rows: Vec<Value> = moto
        .scan("registry")
        .into_iter()
        .filter(|row| {
            !row["item"]["S"]
                .as_str()
                .unwrap_or("")
                .starts_with("#parked/")
        })
        .collect();
    assert!(
        rows.is_empty(),
        "an item with nothing parked has no row: {rows:?}"
    );
}

#[test]
fn final_answers_are_parked_without_retries() {
    let mut stack = Stack::start("final", StackOptions::default());
    // 404: the event type does not exist. Retrying cannot help.
    stack.nakadi.respond_status(404, None);
    let events = batch(vec![insert("orders", "100", "o-1", json!({}))]);
    let response = stack.invoke(&events, INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None);
    assert_eq!(stack.nakadi.requests().len(), 1, "not retried");
    let parked = stack.parked();
    assert_eq!(parked.len(), 1);
    let reason = parked[0]["last_error"].as_str().unwrap();
    assert!(
        reason.contains("not retried") && reason.contains("404"),
        "{reason}"
    );

    // 401 twice: the token file is read again once, then it is final.
    stack.nakadi.healthy();
    stack.nakadi.clear_logs();
    stack.nakadi.expect_token("another-token");
    let events = batch(vec![insert("orders", "200", "o-2", json!({}))]);
    let response = stack.invoke(&events, INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None);
    assert_eq!(
        stack.nakadi.requests().len(),
        2,
        "one retry with the token read anew"
    );
    let parked = stack.parked();
    let reason = parked
        .iter()
        .find(|p| p["sequence_number"] == "200")
        .and_then(|p| p["last_error"].as_str())
        .unwrap()
        .to_owned();
    assert!(reason.contains("refused the token twice"), "{reason}");

    // A token put right between the two tries is used by the second.
    stack.nakadi.clear_logs();
    std::fs::write(stack.dir.join("token"), "another-token\n").unwrap();
    let events = batch(vec![insert("orders", "300", "o-3", json!({}))]);
    let response = stack.invoke(&events, INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None);
    assert_eq!(stack.nakadi.accepted().len(), 1, "{}", stack.log());
}

#[test]
fn a_fan_out_parks_for_the_failing_sink_only_and_redrives_to_it() {
    let audit = relay_testkit::FakeNakadi::start();
    let options = StackOptions {
        registry: true,
        extra: format!(
            "sinks = [\"nakadi\", \"audit\"]\n\n[sinks.audit]\nkind = \"nakadi\"\nurl = \"{}\"\n",
            audit.url()
        ),
        ..StackOptions::default()
    };
    let mut stack = Stack::start("fan-out", options);
    let first = batch(vec![
        insert("orders", "100", "o-1", json!({})),
        insert("orders", "200", "o-2", json!({})),
        modify("300", "o-2", "created", "PAID"),
        insert("orders", "400", "o-3", json!({})),
    ]);
    // The audit bus refuses o-2's first event for good; the main bus is healthy.
    let o2 = eid(&records(&first)[1]);
    audit.script(vec![Fault::FailEids([o2.clone()].into()); 10]);
    let response = stack.invoke(&first, INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None, "{}", stack.log());
    let statuses = |bus: &relay_testkit::FakeNakadi| -> Vec<(String, String)> {
        bus.accepted()
            .into_iter()
            .map(|(_, b)| {
                (
                    b["data"]["order_number"].as_str().unwrap().to_owned(),
                    b["data"]["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let mut all = pairs(&[
        ("o-1", "created"),
        ("o-2", "created"),
        ("o-2", "PAID"),
        ("o-3", "created"),
    ]);
    all.sort();
    let mut main = published(&stack);
    main.sort();
    assert_eq!(main, all, "the healthy sink gets everything");
    let mut audited = statuses(&audit);
    audited.sort();
    assert_eq!(
        audited,
        pairs(&[("o-1", "created"), ("o-3", "created")]),
        "o-2's later change waits behind its parked one at the failing sink"
    );
    let parked = stack.parked();
    assert_eq!(parked.len(), 2, "{parked:?}");
    for p in &parked {
        assert_eq!(p["sink"], "audit", "{p}");
        assert_eq!(p["item"], r#"orders/{"order_number":"o-2"}"#, "{p}");
    }

    // A later change of o-2: held at both sinks behind what is parked
    // (the registry keeps items, not sinks).
    let second = batch(vec![modify("500", "o-2", "PAID", "SHIPPED")]);
    let response = stack.invoke(&second, INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None, "{}", stack.log());
    assert_eq!(published(&stack).len(), 4, "held at the main sink too");
    let parked = stack.parked();
    let sinks: Vec<&str> = parked.iter().map(|p| p["sink"].as_str().unwrap()).collect();
    assert_eq!(sinks.len(), 4, "{parked:?}");

    // Re-drive sends each parked event back to its own sink, in item order,
    // and nothing twice.
    audit.healthy();
    let summary = redrive_ok(&stack, &[]);
    assert_eq!(summary["republished"], 4, "{summary}");
    let main = published(&stack);
    assert_eq!(
        main.len(),
        5,
        "the main sink gets only o-2's held change: {main:?}"
    );
    assert_eq!(main[4], ("o-2".to_owned(), "SHIPPED".to_owned()));
    let o2_audit: Vec<(String, String)> = statuses(&audit)
        .into_iter()
        .filter(|(o, _)| o == "o-2")
        .collect();
    assert_eq!(
        o2_audit,
        pairs(&[("o-2", "created"), ("o-2", "PAID"), ("o-2", "SHIPPED")]),
        "the audit sink gets o-2's changes in order"
    );
    assert_eq!(statuses(&audit).len(), 5);
    assert!(stack.parked().is_empty());
}
