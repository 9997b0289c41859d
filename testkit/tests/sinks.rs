//! The sink fakes driven by the real SDK clients (retries off), as the relay
//! will drive them.

use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use relay_testkit::sinks::{EntryFailure, EventBridgeEntry, Fault, Select};
use relay_testkit::{FakeCloudEvents, FakeEventBridge, FakeKinesis, FakeSns};
use serde_json::{json, Value};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An SDK config for `url`: test credentials, us-east-1, no retries, a 2 s
/// operation timeout.
macro_rules! sdk_config {
    ($sdk:ident, $url:expr) => {
        $sdk::Config::builder()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .region($sdk::config::Region::new("us-east-1"))
            .credentials_provider($sdk::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .endpoint_url($url)
            .retry_config($sdk::config::retry::RetryConfig::disabled())
            .timeout_config(
                $sdk::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(2))
                    .build(),
            )
            .build()
    };
}

fn eventbridge(fake: &FakeEventBridge) -> aws_sdk_eventbridge::Client {
    aws_sdk_eventbridge::Client::from_conf(sdk_config!(aws_sdk_eventbridge, fake.url()))
}

fn eb_entry(eid: &str, detail_bytes: usize) -> PutEventsRequestEntry {
    let detail = json!({"metadata": {"eid": eid}, "pad": "x".repeat(detail_bytes)});
    PutEventsRequestEntry::builder()
        .source("relay.test")
        .detail_type("order.changed")
        .event_bus_name("orders")
        .detail(detail.to_string())
        .build()
}

#[test]
fn eventbridge_accepts_a_batch() {
    let fake = FakeEventBridge::start();
    let client = eventbridge(&fake);
    let out = runtime()
        .block_on(
            client
                .put_events()
                .entries(eb_entry("a", 1))
                .entries(eb_entry("b", 1))
                .send(),
        )
        .expect("PutEvents");
    assert_eq!(out.failed_entry_count(), 0);
    assert_eq!(out.entries().len(), 2);
    assert!(out.entries().iter().all(|e| e.event_id().is_some()));
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[0].detail_type, "order.changed");
    assert_eq!(accepted[0].source, "relay.test");
    assert_eq!(accepted[0].bus, "orders");
    assert_eq!(accepted[1].detail["metadata"]["eid"], "b");
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].operation, "AWSEvents.PutEvents");
    assert_eq!(requests[0].entries.len(), 2);
}

#[test]
fn eventbridge_partial_failure_is_parsed_per_entry() {
    let fake = FakeEventBridge::start();
    let client = eventbridge(&fake);
    fake.script(vec![Fault::fail(
        Select::keys(["b"]),
        "ThrottlingException",
    )]);
    let out = runtime()
        .block_on(
            client
                .put_events()
                .entries(eb_entry("a", 1))
                .entries(eb_entry("b", 1))
                .entries(eb_entry("c", 1))
                .send(),
        )
        .expect("PutEvents");
    assert_eq!(out.failed_entry_count(), 1);
    let codes: Vec<Option<&str>> = out.entries().iter().map(|e| e.error_code()).collect();
    assert_eq!(codes, [None, Some("ThrottlingException"), None]);
    assert!(out.entries()[1].error_message().is_some());
    let eids: Vec<_> = fake
        .accepted()
        .iter()
        .map(|e| e.detail["metadata"]["eid"].clone())
        .collect();
    assert_eq!(eids, [json!("a"), json!("c")]);

    // The service's own per-entry checks: a malformed detail.
    let bad = PutEventsRequestEntry::builder()
        .source("relay.test")
        .detail_type("t")
        .detail("not json")
        .build();
    let out = runtime()
        .block_on(client.put_events().entries(bad).send())
        .expect("PutEvents");
    assert_eq!(out.entries()[0].error_code(), Some("MalformedDetail"));
}

#[test]
fn eventbridge_whole_request_errors_carry_their_code() {
    let fake = FakeEventBridge::start();
    let client = eventbridge(&fake);
    let rt = runtime();
    for (status, code) in [
        (400, "ThrottlingException"),
        (500, "InternalFailure"),
        (503, "ServiceUnavailable"),
    ] {
        fake.script(vec![Fault::error(status, code)]);
        let err = rt
            .block_on(client.put_events().entries(eb_entry("a", 1)).send())
            .expect_err("an injected error");
        let service = err.into_service_error();
        assert_eq!(
            aws_sdk_eventbridge::error::ProvideErrorMetadata::code(&service),
            Some(code)
        );
    }
    assert!(fake.accepted().is_empty());
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [400, 500, 503]);
}

#[test]
fn eventbridge_enforces_the_size_and_count_limits() {
    let fake = FakeEventBridge::start();
    let client = eventbridge(&fake);
    let rt = runtime();
    use aws_sdk_eventbridge::error::ProvideErrorMetadata;
    // Two entries of ~130 KiB each: each fits, together they do not.
    let err = rt
        .block_on(
            client
                .put_events()
                .entries(eb_entry("a", 130 * 1024))
                .entries(eb_entry("b", 130 * 1024))
                .send(),
        )
        .expect_err("over 256 KiB");
    let err = err.into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));
    assert_eq!(
        err.message(),
        Some("Total size of the entries in the request is over the limit.")
    );
    let mut request = client.put_events();
    for i in 0..11 {
        request = request.entries(eb_entry(&i.to_string(), 1));
    }
    let err = rt.block_on(request.send()).expect_err("11 entries");
    assert_eq!(err.into_service_error().code(), Some("ValidationException"));
    assert!(fake.accepted().is_empty());
    // The limit is the documented formula, not the request's bytes.
    let one = EventBridgeEntry {
        detail_type: "order.changed".into(),
        source: "relay.test".into(),
        bus: "orders".into(),
        detail: json!({}),
        detail_raw: Some("{}".into()),
        resources: vec!["arn:r".into()],
        time: Some(1.0),
        trace_header: None,
        event_id: None,
    };
    assert_eq!(one.size(), 14 + 10 + 13 + 2 + 5);
    fake.max_request_bytes(1024 * 1024);
    rt.block_on(
        client
            .put_events()
            .entries(eb_entry("a", 130 * 1024))
            .entries(eb_entry("b", 130 * 1024))
            .send(),
    )
    .expect("within 1 MiB");
    assert_eq!(fake.accepted().len(), 2);
}

#[test]
fn eventbridge_hangs_disconnects_and_goes_down() {
    let fake = FakeEventBridge::start();
    let client = eventbridge(&fake);
    let rt = runtime();
    let send = || {
        rt.block_on(client.put_events().entries(eb_entry("a", 1)).send())
            .map_err(|e| e.to_string())
    };
    // Hang: processed (accepted) but the client times out.
    fake.script(vec![Fault::Hang(Duration::from_secs(3))]);
    assert!(send().is_err());
    assert_eq!(fake.accepted().len(), 1);
    // Accepted, then the connection closes unanswered.
    fake.script(vec![Fault::AcceptThenDisconnect]);
    assert!(send().is_err());
    assert_eq!(fake.accepted().len(), 2);
    // Closed unanswered, nothing accepted.
    fake.script(vec![Fault::Disconnect]);
    assert!(send().is_err());
    assert_eq!(fake.accepted().len(), 2);
    // Down, then up again.
    fake.refuse_connections();
    assert!(send().is_err());
    fake.accept_connections();
    send().expect("up again");
    assert!(fake.wait_accepted(3, Duration::from_secs(1)));
}

#[test]
fn moto_eventbridge_routes_events_into_a_queue() {
    let moto = relay_testkit::Moto::start();
    let eb = relay_testkit::MotoEventBridge::new(&moto);
    eb.create_bus("orders");
    let queue = eb.route_to_queue("orders", "relay.test", "orders-events");
    let client =
        aws_sdk_eventbridge::Client::from_conf(sdk_config!(aws_sdk_eventbridge, moto.endpoint()));
    let other = PutEventsRequestEntry::builder()
        .source("someone.else")
        .detail_type("x")
        .event_bus_name("orders")
        .detail("{}")
        .build();
    let out = runtime()
        .block_on(
            client
                .put_events()
                .entries(eb_entry("a", 1))
                .entries(other)
                .entries(eb_entry("b", 1))
                .send(),
        )
        .expect("PutEvents to moto");
    assert_eq!(out.failed_entry_count(), 0);
    let delivered = eb.delivered(&queue);
    let eids: Vec<_> = delivered
        .iter()
        .map(|e| e["detail"]["metadata"]["eid"].clone())
        .collect();
    assert_eq!(eids, [json!("a"), json!("b")], "{delivered:?}");
    assert_eq!(delivered[0]["detail-type"], "order.changed");
    assert_eq!(delivered[0]["source"], "relay.test");
}

fn kinesis(url: String) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::from_conf(sdk_config!(aws_sdk_kinesis, url))
}

fn record(key: &str, data: &[u8]) -> PutRecordsRequestEntry {
    PutRecordsRequestEntry::builder()
        .partition_key(key)
        .data(Blob::new(data))
        .build()
        .unwrap()
}

#[test]
fn kinesis_accepts_records_into_shards() {
    let fake = FakeKinesis::with_shards(2);
    let client = kinesis(fake.url());
    let mut request = client.put_records().stream_name("orders");
    for i in 0..20 {
        request = request.records(record(
            &format!("key-{i}"),
            format!("{{\"n\":{i}}}").as_bytes(),
        ));
    }
    let out = runtime().block_on(request.send()).expect("PutRecords");
    assert_eq!(out.failed_record_count(), Some(0));
    assert_eq!(out.records().len(), 20);
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 20);
    assert_eq!(accepted[3].partition_key, "key-3");
    assert_eq!(accepted[3].json(), Some(json!({"n": 3})));
    assert_eq!(accepted[3].stream, "orders");
    // Both shards used, the same key always on the same shard.
    let shards: std::collections::HashSet<_> =
        accepted.iter().filter_map(|r| r.shard_id.clone()).collect();
    assert_eq!(shards.len(), 2);
    for (answer, record) in out.records().iter().zip(&accepted) {
        assert_eq!(answer.shard_id(), record.shard_id.as_deref());
        assert_eq!(answer.sequence_number(), record.sequence_number.as_deref());
    }
    assert_eq!(fake.requests()[0].operation, "Kinesis_20131202.PutRecords");
}

#[test]
fn kinesis_partial_failure_is_parsed_per_record() {
    let fake = FakeKinesis::start();
    let client = kinesis(fake.url());
    fake.fail_entries(vec![
        EntryFailure::new(
            Select::keys(["b"]),
            "ProvisionedThroughputExceededException",
        ),
        EntryFailure::new(Select::Positions([2].into()), "InternalFailure"),
    ]);
    let out = runtime()
        .block_on(
            client
                .put_records()
                .stream_name("orders")
                .records(record("a", b"1"))
                .records(record("b", b"2"))
                .records(record("c", b"3"))
                .records(record("d", b"4"))
                .send(),
        )
        .expect("PutRecords");
    assert_eq!(out.failed_record_count(), Some(2));
    let codes: Vec<_> = out.records().iter().map(|r| r.error_code()).collect();
    assert_eq!(
        codes,
        [
            None,
            Some("ProvisionedThroughputExceededException"),
            Some("InternalFailure"),
            None
        ]
    );
    assert_eq!(
        fake.accepted_data(),
        [
            ("a".to_string(), b"1".to_vec()),
            ("d".to_string(), b"4".to_vec())
        ]
    );
}

#[test]
fn kinesis_whole_request_throttling_carries_its_code() {
    use aws_sdk_kinesis::error::ProvideErrorMetadata;
    let fake = FakeKinesis::start();
    let client = kinesis(fake.url());
    fake.respond_error(400, "ProvisionedThroughputExceededException", Some(1));
    let request = client
        .put_records()
        .stream_name("orders")
        .records(record("a", b"1"));
    let err = runtime()
        .block_on(request.clone().send())
        .expect_err("throttled")
        .into_service_error();
    assert!(
        err.is_provisioned_throughput_exceeded_exception(),
        "{err:?}"
    );
    assert_eq!(err.code(), Some("ProvisionedThroughputExceededException"));
    runtime().block_on(request.send()).expect("healthy again");
    assert_eq!(fake.accepted().len(), 1);
}

#[test]
fn kinesis_enforces_the_size_and_count_limits() {
    use aws_sdk_kinesis::error::ProvideErrorMetadata;
    let fake = FakeKinesis::start();
    let client = kinesis(fake.url());
    let rt = runtime();
    // A record of 1 MiB of data plus its key is over the record limit.
    let err = rt
        .block_on(
            client
                .put_records()
                .stream_name("orders")
                .records(record("k", &vec![b'x'; 1 << 20]))
                .send(),
        )
        .expect_err("over 1 MiB")
        .into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));
    // 11 records of ~1 MiB each: each fits, the request (10 MiB) does not.
    let mut request = client.put_records().stream_name("orders");
    for i in 0..11 {
        request = request.records(record(&i.to_string(), &vec![b'x'; (1 << 20) - 10]));
    }
    let err = rt
        .block_on(request.send())
        .expect_err("over 10 MiB")
        .into_service_error();
    assert_eq!(err.code(), Some("InvalidArgumentException"));
    assert_eq!(err.message(), Some("Records size exceeds 10 MB limit"));
    // 501 records; a partition key of 257 characters.
    let mut request = client.put_records().stream_name("orders");
    for i in 0..501 {
        request = request.records(record(&i.to_string(), b"x"));
    }
    let err = rt
        .block_on(request.send())
        .expect_err("501")
        .into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));
    let err = rt
        .block_on(
            client
                .put_records()
                .stream_name("orders")
                .records(record(&"k".repeat(257), b"x"))
                .send(),
        )
        .expect_err("long key")
        .into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(fake.accepted().is_empty());
}

#[test]
fn moto_kinesis_reads_back_every_shard() {
    let moto = relay_testkit::Moto::start();
    let helper = relay_testkit::MotoKinesis::new(&moto);
    let arn = helper.create_stream("orders", 2);
    assert!(arn.ends_with("/orders"), "{arn}");
    assert_eq!(helper.shards("orders").len(), 2);
    let client = kinesis(moto.endpoint());
    let mut request = client.put_records().stream_arn(&arn);
    for i in 0..10 {
        request = request.records(record(&format!("key-{}", i % 3), format!("{i}").as_bytes()));
    }
    let out = runtime()
        .block_on(request.send())
        .expect("PutRecords to moto");
    assert_eq!(out.failed_record_count(), Some(0));
    let records = helper.records("orders");
    assert_eq!(records.len(), 10);
    // Per key, in the order sent.
    for key in ["key-0", "key-1", "key-2"] {
        let data: Vec<_> = records
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, d)| String::from_utf8(d.clone()).unwrap())
            .collect();
        let expected: Vec<_> = (0..10)
            .filter(|i| format!("key-{}", i % 3) == key)
            .map(|i| i.to_string())
            .collect();
        assert_eq!(data, expected);
    }
}

fn sns(url: String) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::from_conf(sdk_config!(aws_sdk_sns, url))
}

fn sns_entry(id: &str, message: &str, group: Option<&str>) -> PublishBatchRequestEntry {
    PublishBatchRequestEntry::builder()
        .id(id)
        .message(message)
        .set_message_group_id(group.map(str::to_owned))
        .message_attributes(
            "event_type",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("order.changed")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:orders";
const FIFO_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:orders.fifo";

#[test]
fn sns_accepts_a_batch_on_standard_and_fifo_topics() {
    let fake = FakeSns::start();
    let client = sns(fake.url());
    let rt = runtime();
    let out = rt
        .block_on(
            client
                .publish_batch()
                .topic_arn(TOPIC)
                .publish_batch_request_entries(sns_entry("0", r#"{"n":0}"#, None))
                .publish_batch_request_entries(sns_entry("1", "a & <b>", None))
                .send(),
        )
        .expect("PublishBatch");
    assert_eq!(out.successful().len(), 2);
    assert!(out.failed().is_empty());
    let accepted = fake.accepted();
    assert_eq!(accepted[0].json(), Some(json!({"n": 0})));
    assert_eq!(accepted[1].message, "a & <b>");
    assert_eq!(
        accepted[1].attributes["event_type"].string_value.as_deref(),
        Some("order.changed")
    );
    assert_eq!(
        out.successful()[0].message_id(),
        accepted[0].message_id.as_deref()
    );

    // FIFO: a group id is required for the whole request, a dedup id per
    // entry; a dedup id seen before is answered but not delivered again.
    let err = rt
        .block_on(
            client
                .publish_batch()
                .topic_arn(FIFO_TOPIC)
                .publish_batch_request_entries(sns_entry("0", "x", None))
                .send(),
        )
        .expect_err("no group id")
        .into_service_error();
    assert_eq!(
        aws_sdk_sns::error::ProvideErrorMetadata::code(&err),
        Some("InvalidParameter")
    );
    let mut with_dedup = sns_entry("a", "x", Some("g1"));
    with_dedup.message_deduplication_id = Some("d1".into());
    let out = rt
        .block_on(
            client
                .publish_batch()
                .topic_arn(FIFO_TOPIC)
                .publish_batch_request_entries(with_dedup.clone())
                .publish_batch_request_entries(sns_entry("b", "y", Some("g1")))
                .send(),
        )
        .expect("PublishBatch FIFO");
    assert_eq!(out.successful().len(), 1);
    assert!(out.successful()[0].sequence_number().is_some());
    assert_eq!(out.failed()[0].id(), "b");
    assert_eq!(out.failed()[0].code(), "InvalidParameter");
    assert!(out.failed()[0].sender_fault());
    let again = rt
        .block_on(
            client
                .publish_batch()
                .topic_arn(FIFO_TOPIC)
                .publish_batch_request_entries(with_dedup)
                .send(),
        )
        .expect("a duplicate");
    assert_eq!(
        again.successful()[0].message_id(),
        out.successful()[0].message_id()
    );
    let fifo: Vec<_> = fake
        .accepted()
        .into_iter()
        .filter(|m| m.topic_arn == FIFO_TOPIC)
        .collect();
    assert_eq!(fifo.len(), 1);
    assert_eq!(fifo[0].group_id.as_deref(), Some("g1"));
    assert_eq!(fifo[0].dedup_id.as_deref(), Some("d1"));
}

#[test]
fn sns_partial_failure_and_errors_are_parsed() {
    use aws_sdk_sns::error::ProvideErrorMetadata;
    let fake = FakeSns::start();
    let client = sns(fake.url());
    let rt = runtime();
    fake.script(vec![
        Fault::fail(Select::keys(["1"]), "InternalError"),
        Fault::error(400, "Throttling"),
    ]);
    let request = client
        .publish_batch()
        .topic_arn(TOPIC)
        .publish_batch_request_entries(sns_entry("0", "a", None))
        .publish_batch_request_entries(sns_entry("1", "b", None))
        .publish_batch_request_entries(sns_entry("2", "c", None));
    let out = rt.block_on(request.clone().send()).expect("PublishBatch");
    let ok: Vec<_> = out
        .successful()
        .iter()
        .map(|s| s.id().unwrap_or_default())
        .collect();
    assert_eq!(ok, ["0", "2"]);
    assert_eq!(out.failed()[0].id(), "1");
    assert_eq!(out.failed()[0].code(), "InternalError");
    assert!(!out.failed()[0].sender_fault());
    let err = rt
        .block_on(request.send())
        .expect_err("throttled")
        .into_service_error();
    assert_eq!(err.code(), Some("Throttling"));
    let messages: Vec<_> = fake.accepted().into_iter().map(|m| m.message).collect();
    assert_eq!(messages, ["a", "c"]);
}

#[test]
fn sns_enforces_the_batch_limits() {
    use aws_sdk_sns::error::ProvideErrorMetadata;
    let fake = FakeSns::start();
    let client = sns(fake.url());
    let rt = runtime();
    let big = "x".repeat(130 * 1024);
    let err = rt
        .block_on(
            client
                .publish_batch()
                .topic_arn(TOPIC)
                .publish_batch_request_entries(sns_entry("0", &big, None))
                .publish_batch_request_entries(sns_entry("1", &big, None))
                .send(),
        )
        .expect_err("over 256 KiB")
        .into_service_error();
    assert!(err.is_batch_request_too_long_exception(), "{err:?}");
    let mut request = client.publish_batch().topic_arn(TOPIC);
    for i in 0..11 {
        request = request.publish_batch_request_entries(sns_entry(&i.to_string(), "m", None));
    }
    let err = rt
        .block_on(request.send())
        .expect_err("11")
        .into_service_error();
    assert!(
        err.is_too_many_entries_in_batch_request_exception(),
        "{err:?}"
    );
    let err = rt
        .block_on(
            client
                .publish_batch()
                .topic_arn(TOPIC)
                .publish_batch_request_entries(sns_entry("0", "a", None))
                .publish_batch_request_entries(sns_entry("0", "b", None))
                .send(),
        )
        .expect_err("same ids")
        .into_service_error();
    assert_eq!(err.code(), Some("BatchEntryIdsNotDistinct"));
    assert!(fake.accepted().is_empty());
}

#[test]
fn moto_sns_delivers_to_subscribed_queues() {
    let moto = relay_testkit::Moto::start();
    let helper = relay_testkit::MotoSns::new(&moto);
    let client = sns(moto.endpoint());
    let rt = runtime();
    let topic = helper.create_topic("orders");
    let queue = helper.subscribe_queue(&topic, "orders-sub");
    let out = rt
        .block_on(
            client
                .publish_batch()
                .topic_arn(&topic)
                .publish_batch_request_entries(sns_entry("0", "a", None))
                .publish_batch_request_entries(sns_entry("1", "b", None))
                .send(),
        )
        .expect("PublishBatch to moto");
    assert_eq!(out.successful().len(), 2);
    let messages = helper.messages(&queue);
    let bodies: Vec<_> = messages
        .iter()
        .map(|m| m.body().unwrap_or_default())
        .collect();
    assert_eq!(bodies, ["a", "b"]);
    let attribute = messages[0]
        .message_attributes()
        .and_then(|a| a.get("event_type"))
        .and_then(|v| v.string_value());
    assert_eq!(attribute, Some("order.changed"));

    let fifo = helper.create_topic_with("orders.fifo", &[("ContentBasedDeduplication", "true")]);
    let queue = helper.subscribe_queue(&fifo, "orders-sub.fifo");
    rt.block_on(
        client
            .publish_batch()
            .topic_arn(&fifo)
            .publish_batch_request_entries(sns_entry("0", "c", Some("g")))
            .publish_batch_request_entries(sns_entry("1", "d", Some("g")))
            .send(),
    )
    .expect("PublishBatch to a FIFO topic");
    let messages = helper.messages(&queue);
    let bodies: Vec<_> = messages
        .iter()
        .map(|m| m.body().unwrap_or_default())
        .collect();
    assert_eq!(bodies, ["c", "d"]);
    let group = messages[0]
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId));
    assert_eq!(group.map(String::as_str), Some("g"));
}

/// POSTs `body` to the fake; the status and `Location`.
fn post(fake: &FakeCloudEvents, headers: &[(&str, &str)], body: &Value) -> (u16, Option<String>) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut request = client
        .post(format!("{}/events", fake.url()))
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    runtime().block_on(async {
        let response = request.send().await.expect("an answer");
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (response.status().as_u16(), location)
    })
}

fn cloud_event(id: &str) -> Value {
    json!({"specversion": "1.0", "id": id, "source": "/relay", "type": "order.changed", "data": {"n": 1}})
}

const BATCH: (&str, &str) = ("Content-Type", "application/cloudevents-batch+json");

#[test]
fn cloudevents_accepts_valid_batches_only() {
    let fake = FakeCloudEvents::start();
    fake.expect_token(Some("secret"));
    let auth = ("Authorization", "Bearer secret");
    let batch = json!([cloud_event("a"), cloud_event("b")]);
    assert_eq!(
        post(&fake, &[BATCH, auth, ("X-Team", "orders")], &batch).0,
        200
    );
    let ids: Vec<_> = fake.accepted().iter().map(|e| e["id"].clone()).collect();
    assert_eq!(ids, [json!("a"), json!("b")]);
    let log = &fake.requests()[0];
    assert_eq!(log.header("x-team"), Some("orders"));
    assert_eq!(log.header("authorization"), Some("Bearer secret"));
    assert_eq!(log.operation, "POST /events");
    // No token, the wrong media type, an invalid event.
    assert_eq!(post(&fake, &[BATCH], &batch).0, 401);
    assert_eq!(
        post(&fake, &[("Content-Type", "application/json"), auth], &batch).0,
        415
    );
    let mut bad = cloud_event("c");
    bad["specversion"] = json!("0.3");
    assert_eq!(
        post(&fake, &[BATCH, auth], &json!([cloud_event("d"), bad])).0,
        400
    );
    let mut no_type = cloud_event("e");
    no_type.as_object_mut().unwrap().remove("type");
    assert_eq!(post(&fake, &[BATCH, auth], &json!([no_type])).0, 400);
    assert_eq!(fake.accepted().len(), 2);
}

#[test]
fn cloudevents_faults_answer_any_status() {
    let fake = FakeCloudEvents::start();
    let batch = json!([cloud_event("a")]);
    fake.script(vec![
        Fault::Redirect {
            status: 302,
            location: "/login".into(),
        },
        Fault::error(429, "TooManyRequests"),
        Fault::error(503, "ServiceUnavailable"),
    ]);
    assert_eq!(post(&fake, &[BATCH], &batch), (302, Some("/login".into())));
    assert_eq!(post(&fake, &[BATCH], &batch).0, 429);
    assert_eq!(post(&fake, &[BATCH], &batch).0, 503);
    assert!(fake.accepted().is_empty());
    fake.success_status(202);
    assert_eq!(post(&fake, &[BATCH], &batch).0, 202);
    assert!(fake.wait_accepted(1, Duration::from_secs(1)));
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [302, 429, 503, 202]);
}
