//! Every sink against the relay's guarantees, end to end: the real `relay`
//! binary under the Lambda Runtime API harness, moto for SQS (and for the
//! AWS sinks' happy path, the real services as moto serves them), and a
//! fault-injecting fake speaking each sink's wire protocol (moto never
//! answers a partial failure, a throttle or a size limit).
//!
//! Each sink gets the same scenarios ([`scenarios!`]): happy path, partial
//! failure, down (then re-drive to the same sink), oversize, and per-item
//! order behind a parked event.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use relay::park::envelope::{decode, Stored};
use relay_testkit::sinks::{EntryFailure, Select};
use relay_testkit::{FakeCloudEvents, FakeEventBridge, FakeKinesis, FakeSns};
use serde_json::{json, Value};
use support::stack::{batch, checkpoint, eid, insert, modify, pairs, records, Stack, StackOptions};

const INVOKE: Duration = Duration::from_secs(30);

/// One sink kind under test: its fake, the config section that points the
/// relay at it, and what it delivered, read back as the relay's events.
trait Target: Sized {
    /// The sink's `kind`.
    const KIND: &'static str;
    /// Whether it answers per entry (else a request is all or nothing).
    const PER_ENTRY: bool = true;
    /// Its per-event limit, in bytes of the event body.
    const MAX_EVENT_BYTES: usize;
    fn start() -> Self;
    /// The `[sinks.out]` fields after `kind`.
    fn fields(&self) -> String;
    /// Environment pointing the relay's client at the fake.
    fn env(&self) -> Vec<(String, String)>;
    /// The event bodies it took, in arrival order, with their event types.
    fn delivered(&self) -> Vec<(String, Value)>;
    /// Fails the event with this eid (retryably) on every request, or, for
    /// all-or-nothing sinks, every request.
    fn fail(&self, eid: &str);
    /// Fails the event with this eid (or, all or nothing, the request) once.
    fn fail_once(&self, eid: &str);
    /// The body size of each request it got.
    fn request_sizes(&self) -> Vec<usize>;
    fn healthy(&self);
    fn down(&self);
    fn up(&self);
}

fn eid_of(body: &Value) -> Option<&str> {
    body.pointer("/metadata/eid").and_then(Value::as_str)
}

fn aws_env(service: &str, url: String) -> Vec<(String, String)> {
    vec![(format!("AWS_ENDPOINT_URL_{service}"), url)]
}

impl Target for FakeEventBridge {
    const KIND: &'static str = "eventbridge";
    const MAX_EVENT_BYTES: usize = 256_000;
    fn start() -> Self {
        FakeEventBridge::start()
    }
    fn fields(&self) -> String {
        "source = \"com.example.orders\"\nevent_bus_name = \"orders\"\n".into()
    }
    fn env(&self) -> Vec<(String, String)> {
        aws_env("EVENTBRIDGE", self.url())
    }
    fn delivered(&self) -> Vec<(String, Value)> {
        self.accepted()
            .into_iter()
            .map(|e| {
                assert_eq!(e.source, "com.example.orders");
                assert_eq!(e.bus, "orders");
                (e.detail_type, e.detail)
            })
            .collect()
    }
    fn fail(&self, eid: &str) {
        let eid = eid.to_owned();
        self.fail_entries(vec![EntryFailure::new(
            Select::when(move |e: &relay_testkit::sinks::EventBridgeEntry| {
                eid_of(&e.detail) == Some(&eid)
            }),
            "ThrottlingException",
        )]);
    }
    fn fail_once(&self, eid: &str) {
        let eid = eid.to_owned();
        self.script(vec![relay_testkit::sinks::Fault::fail(
            Select::when(move |e: &relay_testkit::sinks::EventBridgeEntry| {
                eid_of(&e.detail) == Some(&eid)
            }),
            "ThrottlingException",
        )]);
    }
    fn request_sizes(&self) -> Vec<usize> {
        self.requests().iter().map(|r| r.body_len).collect()
    }
    fn healthy(&self) {
        FakeEventBridge::healthy(self)
    }
    fn down(&self) {
        self.refuse_connections()
    }
    fn up(&self) {
        self.accept_connections()
    }
}

impl Target for FakeKinesis {
    const KIND: &'static str = "kinesis";
    const MAX_EVENT_BYTES: usize = 1 << 20;
    fn start() -> Self {
        FakeKinesis::with_shards(2)
    }
    fn fields(&self) -> String {
        "stream_name = \"orders\"\n".into()
    }
    fn env(&self) -> Vec<(String, String)> {
        aws_env("KINESIS", self.url())
    }
    fn delivered(&self) -> Vec<(String, Value)> {
        self.accepted()
            .into_iter()
            .map(|r| {
                let body = r.json().expect("a JSON record");
                // The partition key is the transform's key: the item's key.
                let key = format!(
                    "{{\"order_number\":\"{}\"}}",
                    body["data"]["order_number"].as_str().unwrap()
                );
                assert_eq!(r.partition_key, key);
                ("?".to_owned(), body)
            })
            .collect()
    }
    fn fail(&self, eid: &str) {
        let eid = eid.to_owned();
        self.fail_entries(vec![EntryFailure::new(
            Select::when(move |r: &relay_testkit::sinks::KinesisRecord| {
                r.json().as_ref().and_then(|b| eid_of(b).map(str::to_owned)) == Some(eid.clone())
            }),
            "ProvisionedThroughputExceededException",
        )]);
    }
    fn fail_once(&self, eid: &str) {
        let eid = eid.to_owned();
        self.script(vec![relay_testkit::sinks::Fault::fail(
            Select::when(move |e: &relay_testkit::sinks::KinesisRecord| {
                e.json().as_ref().and_then(|b| eid_of(b).map(str::to_owned)) == Some(eid.clone())
            }),
            "InternalFailure",
        )]);
    }
    fn request_sizes(&self) -> Vec<usize> {
        self.requests().iter().map(|r| r.body_len).collect()
    }
    fn healthy(&self) {
        FakeKinesis::healthy(self)
    }
    fn down(&self) {
        self.refuse_connections()
    }
    fn up(&self) {
        self.accept_connections()
    }
}

/// A FIFO topic: group by key, deduplication by eid.
impl Target for FakeSns {
    const KIND: &'static str = "sns";
    const MAX_EVENT_BYTES: usize = 262_144;
    fn start() -> Self {
        FakeSns::start()
    }
    fn fields(&self) -> String {
        "topic_arn = \"arn:aws:sns:eu-central-1:123456789012:orders.fifo\"\n".into()
    }
    fn env(&self) -> Vec<(String, String)> {
        aws_env("SNS", self.url())
    }
    fn delivered(&self) -> Vec<(String, Value)> {
        self.accepted()
            .into_iter()
            .map(|m| {
                let body: Value = serde_json::from_str(&m.message).expect("a JSON message");
                assert_eq!(m.dedup_id.as_deref(), eid_of(&body), "dedup id is the eid");
                let group = format!(
                    "{{\"order_number\":\"{}\"}}",
                    body["data"]["order_number"].as_str().unwrap()
                );
                assert_eq!(m.group_id.as_deref(), Some(group.as_str()));
                let event_type = m
                    .attributes
                    .get("event_type")
                    .and_then(|a| a.string_value.clone())
                    .unwrap_or_default();
                (event_type, body)
            })
            .collect()
    }
    fn fail(&self, eid: &str) {
        let eid = eid.to_owned();
        self.fail_entries(vec![EntryFailure::new(
            Select::when(move |m: &relay_testkit::sinks::SnsMessage| {
                m.dedup_id.as_deref() == Some(eid.as_str())
            }),
            "InternalError",
        )]);
    }
    fn fail_once(&self, eid: &str) {
        let eid = eid.to_owned();
        self.script(vec![relay_testkit::sinks::Fault::fail(
            Select::when(move |e: &relay_testkit::sinks::SnsMessage| {
                e.dedup_id.as_deref() == Some(eid.as_str())
            }),
            "InternalError",
        )]);
    }
    fn request_sizes(&self) -> Vec<usize> {
        self.requests().iter().map(|r| r.body_len).collect()
    }
    fn healthy(&self) {
        FakeSns::healthy(self)
    }
    fn down(&self) {
        self.refuse_connections()
    }
    fn up(&self) {
        self.accept_connections()
    }
}

impl Target for FakeCloudEvents {
    const KIND: &'static str = "http";
    const PER_ENTRY: bool = false;
    const MAX_EVENT_BYTES: usize = 1 << 20;
    fn start() -> Self {
        let fake = FakeCloudEvents::start();
        fake.expect_token(Some("secret-token"));
        fake
    }
    fn fields(&self) -> String {
        format!(
            "url = \"{}/events\"\nsource = \"/relay/orders\"\nheaders = {{ X-Team = \"payments\" }}\n",
            self.url()
        )
    }
    fn env(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    fn delivered(&self) -> Vec<(String, Value)> {
        self.accepted()
            .into_iter()
            .map(|ce| {
                assert_eq!(ce["specversion"], "1.0");
                assert_eq!(ce["source"], "/relay/orders");
                assert_eq!(ce["id"].as_str(), eid_of(&ce["data"]), "id is the eid");
                (ce["type"].as_str().unwrap().to_owned(), ce["data"].clone())
            })
            .collect()
    }
    fn fail(&self, _eid: &str) {
        self.respond_error(503, "ServiceUnavailable", None);
    }
    fn fail_once(&self, _eid: &str) {
        self.script(vec![relay_testkit::sinks::Fault::error(
            503,
            "ServiceUnavailable",
        )]);
    }
    fn request_sizes(&self) -> Vec<usize> {
        self.requests().iter().map(|r| r.body_len).collect()
    }
    fn healthy(&self) {
        FakeCloudEvents::healthy(self)
    }
    fn down(&self) {
        self.refuse_connections()
    }
    fn up(&self) {
        self.accept_connections()
    }
}

/// The relay with table `orders` publishing to the fake only (sink `out`).
fn stack<T: Target>(name: &str, fake: &T, registry: bool) -> Stack {
    let mut extra = format!("sinks = [\"out\"]\n\n[sinks.out]\nkind = \"{}\"\n", T::KIND);
    extra.push_str(&fake.fields());
    if T::KIND == "http" {
        extra.push_str(&format!(
            "token_file = \"{}\"\n",
            std::env::temp_dir()
                .join(format!("relay-stack-{}-{name}/token", std::process::id()))
                .display()
        ));
    }
    Stack::start(
        name,
        StackOptions {
            registry,
            extra,
            env: fake.env(),
            max_attempts: 2,
            ..StackOptions::default()
        },
    )
}

/// `(order, status)` of each delivered event, in arrival order.
fn statuses<T: Target>(fake: &T) -> Vec<(String, String)> {
    fake.delivered()
        .into_iter()
        .map(|(_, body)| {
            (
                body["data"]["order_number"].as_str().unwrap().to_owned(),
                body["data"]["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn redrive(stack: &Stack, args: &[&str]) -> Value {
    let out = stack.redrive(args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "re-drive printed no summary ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn happy_path<T: Target>(name: &str) {
    let fake = T::start();
    let mut stack = stack(name, &fake, false);
    let events = batch(vec![
        insert("orders", "100", "o-1", json!({})),
        insert("orders", "200", "o-2", json!({})),
        modify("300", "o-1", "created", "PAID"),
    ]);
    let response = stack.invoke(&events, INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None, "{}", stack.log());
    let delivered = fake.delivered();
    assert_eq!(delivered.len(), 3, "{delivered:?}");
    let eids: HashSet<String> = records(&events).iter().map(eid).collect();
    for (event_type, body) in &delivered {
        if event_type != "?" {
            assert_eq!(event_type, "payment-order.changed");
        }
        assert!(eids.contains(eid_of(body).unwrap()), "{body}");
    }
    let o1: Vec<_> = statuses(&fake)
        .into_iter()
        .filter(|(o, _)| o == "o-1")
        .collect();
    assert_eq!(o1, pairs(&[("o-1", "created"), ("o-1", "PAID")]));
    assert!(stack.parked().is_empty());
}

fn partial_failure<T: Target>(name: &str) {
    let fake = T::start();
    let mut stack = stack(name, &fake, false);
    let events = batch(vec![
        insert("orders", "100", "o-1", json!({})),
        insert("orders", "200", "o-2", json!({})),
        insert("orders", "300", "o-3", json!({})),
    ]);
    let failing = eid(&records(&events)[1]);
    fake.fail(&failing);
    let response = stack.invoke(&events, INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None, "{}", stack.log());
    let parked = stack.parked();
    if T::PER_ENTRY {
        // Entry by entry: the others are delivered, the failing one parked.
        let mut got = statuses(&fake);
        got.sort();
        assert_eq!(got, pairs(&[("o-1", "created"), ("o-3", "created")]));
        assert_eq!(parked.len(), 1, "{parked:?}");
        assert_eq!(parked[0]["eid"], failing.as_str());
    } else {
        assert!(statuses(&fake).is_empty());
        assert_eq!(parked.len(), 3, "{parked:?}");
    }
    for p in &parked {
        assert_eq!(p["sink"], "out", "{p}");
        assert!(p["attempts"].as_u64().unwrap() >= 2, "retried first: {p}");
    }
    // A failure that clears up within the retries is no failure.
    fake.healthy();
    let next = batch(vec![insert("orders", "400", "o-4", json!({}))]);
    fake.fail_once(&eid(&records(&next)[0]));
    let response = stack.invoke(&next, INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None, "{}", stack.log());
    assert!(
        statuses(&fake).contains(&("o-4".to_owned(), "created".to_owned())),
        "delivered on the retry"
    );
    assert_eq!(stack.parked().len(), parked.len(), "nothing more parked");
}

fn down_then_redrive_to_the_same_sink<T: Target>(name: &str) {
    let fake = T::start();
    let mut stack = stack(name, &fake, true);
    fake.down();
    let events = batch(vec![
        insert("orders", "100", "o-1", json!({})),
        insert("orders", "200", "o-2", json!({})),
        modify("300", "o-1", "created", "PAID"),
    ]);
    let response = stack.invoke(&events, INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None, "{}", stack.log());
    let parked = stack.parked();
    assert_eq!(parked.len(), 3, "{parked:?}");
    for p in &parked {
        assert_eq!(p["sink"], "out", "{p}");
    }
    // Still down: re-drive keeps everything, postponed 1 s × 2^(receives − 1)
    // (the peek above was a receive too).
    let summary = redrive(&stack, &["--retry-base-secs", "1"]);
    assert_eq!(summary["deleted"], 0, "{summary}");
    assert_eq!(summary["still_failing"], 3, "{summary}");
    fake.up();
    let mut republished = 0;
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(2_500));
        let summary = redrive(&stack, &["--retry-base-secs", "1"]);
        republished += summary["republished"].as_u64().unwrap();
        if republished == 3 {
            break;
        }
    }
    assert_eq!(republished, 3, "{}", stack.log());
    assert!(stack.parked().is_empty());
    let o1: Vec<_> = statuses(&fake)
        .into_iter()
        .filter(|(o, _)| o == "o-1")
        .collect();
    assert_eq!(
        o1,
        pairs(&[("o-1", "created"), ("o-1", "PAID")]),
        "in order"
    );
    assert_eq!(statuses(&fake).len(), 3);
}

fn oversize_is_parked_never_sent<T: Target>(name: &str) {
    let fake = T::start();
    let mut stack = stack(name, &fake, false);
    // The event holds the new image and a patch adding each attribute: twice
    // the attribute. Compressible, so the parked envelope fits SQS.
    let big = "x".repeat(T::MAX_EVENT_BYTES / 2 + 1_000);
    let events = batch(vec![
        insert("orders", "100", "o-1", json!({"note": {"S": big}})),
        insert("orders", "200", "o-2", json!({})),
    ]);
    let response = stack.invoke(&events, INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None, "{}", stack.log());
    assert_eq!(statuses(&fake), pairs(&[("o-2", "created")]));
    for request in fake.request_sizes() {
        assert!(request < T::MAX_EVENT_BYTES, "an oversize event was sent");
    }
    let parked = stack.moto.peek_all(&stack.queue);
    assert_eq!(parked.len(), 1, "{parked:?}");
    // Too large for the queue as it is: parked gzipped.
    let Ok(Stored::Envelope(envelope)) = decode(&parked[0]) else {
        panic!("an envelope in the message: {}", &parked[0][..200]);
    };
    assert!(
        envelope.last_error.contains("limit"),
        "{}",
        envelope.last_error
    );
    assert_eq!(envelope.attempts, 0, "never sent: {}", envelope.last_error);
    assert_eq!(envelope.sink.as_deref(), Some("out"));
}

fn order_holds_behind_a_parked_event<T: Target>(name: &str) {
    let fake = T::start();
    let mut stack = stack(name, &fake, true);
    let events = batch(vec![
        insert("orders", "100", "o-1", json!({})),
        insert("orders", "200", "o-2", json!({})),
        modify("300", "o-1", "created", "PAID"),
        modify("400", "o-1", "PAID", "SHIPPED"),
    ]);
    fake.fail(&eid(&records(&events)[0]));
    let response = stack.invoke(&events, INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None, "{}", stack.log());
    assert!(
        statuses(&fake).iter().all(|(o, _)| o != "o-1"),
        "nothing of o-1 overtakes its parked first change: {:?}",
        statuses(&fake)
    );
    // A later batch: o-1 is held behind what is parked (the registry).
    fake.healthy();
    let later = batch(vec![modify("500", "o-1", "SHIPPED", "DONE")]);
    let response = stack.invoke(&later, INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None, "{}", stack.log());
    assert!(statuses(&fake).iter().all(|(o, _)| o != "o-1"));
    let summary = redrive(&stack, &[]);
    assert!(stack.parked().is_empty(), "{summary}");
    let o1: Vec<_> = statuses(&fake)
        .into_iter()
        .filter(|(o, _)| o == "o-1")
        .collect();
    assert_eq!(
        o1,
        pairs(&[
            ("o-1", "created"),
            ("o-1", "PAID"),
            ("o-1", "SHIPPED"),
            ("o-1", "DONE")
        ]),
        "re-drive delivers o-1 in stream order"
    );
}

/// The five scenarios for one sink, as tests of their own.
macro_rules! scenarios {
    ($sink:ident, $fake:ty) => {
        mod $sink {
            use super::*;

            #[test]
            fn happy_path() {
                super::happy_path::<$fake>(concat!(stringify!($sink), "-happy"));
            }

            #[test]
            fn partial_failure() {
                super::partial_failure::<$fake>(concat!(stringify!($sink), "-partial"));
            }

            #[test]
            fn down_then_redrive_to_the_same_sink() {
                super::down_then_redrive_to_the_same_sink::<$fake>(concat!(
                    stringify!($sink),
                    "-down"
                ));
            }

            #[test]
            fn oversize_is_parked_never_sent() {
                super::oversize_is_parked_never_sent::<$fake>(concat!(
                    stringify!($sink),
                    "-oversize"
                ));
            }

            #[test]
            fn order_holds_behind_a_parked_event() {
                super::order_holds_behind_a_parked_event::<$fake>(concat!(
                    stringify!($sink),
                    "-order"
                ));
            }
        }
    };
}

scenarios!(eventbridge, FakeEventBridge);
scenarios!(kinesis, FakeKinesis);
scenarios!(sns_fifo, FakeSns);
scenarios!(http_cloudevents, FakeCloudEvents);

/// A stack whose table `orders` publishes to sink `out` on moto itself.
fn moto_stack(name: &str, fields: &str) -> Stack {
    Stack::start(
        name,
        StackOptions {
            extra: format!("sinks = [\"out\"]\n\n[sinks.out]\n{fields}"),
            ..StackOptions::default()
        },
    )
}

fn three_orders() -> Value {
    batch(vec![
        insert("orders", "100", "o-1", json!({})),
        insert("orders", "200", "o-2", json!({})),
        modify("300", "o-1", "created", "PAID"),
    ])
}

#[test]
fn eventbridge_on_moto_delivers_through_a_rule_to_sqs() {
    let mut stack = moto_stack(
        "moto-eventbridge",
        "kind = \"eventbridge\"\nsource = \"com.example.orders\"\nevent_bus_name = \"orders\"\n",
    );
    let events_bridge = relay_testkit::MotoEventBridge::new(&stack.moto);
    events_bridge.create_bus("orders");
    let queue = events_bridge.route_to_queue("orders", "com.example.orders", "delivered");
    let response = stack.invoke(&three_orders(), INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None, "{}", stack.log());
    let delivered = events_bridge.delivered(&queue);
    assert_eq!(delivered.len(), 3, "{delivered:?}\n{}", stack.log());
    for event in &delivered {
        assert_eq!(event["source"], "com.example.orders");
        assert_eq!(event["detail-type"], "payment-order.changed");
        assert!(eid_of(&event["detail"]).is_some(), "{event}");
    }
    assert!(stack.parked().is_empty());
}

#[test]
fn kinesis_on_moto_keeps_each_keys_order() {
    let mut stack = moto_stack(
        "moto-kinesis",
        "kind = \"kinesis\"\nstream_name = \"orders\"\n",
    );
    let kinesis = relay_testkit::MotoKinesis::new(&stack.moto);
    kinesis.create_stream("orders", 2);
    let response = stack.invoke(&three_orders(), INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None, "{}", stack.log());
    let records = kinesis.records("orders");
    assert_eq!(records.len(), 3, "{}", stack.log());
    let o1: Vec<String> = records
        .iter()
        .filter(|(key, _)| key == r#"{"order_number":"o-1"}"#)
        .map(|(_, data)| {
            let body: Value = serde_json::from_slice(data).unwrap();
            body["data"]["status"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(o1, ["created", "PAID"]);
}

#[test]
fn sns_on_moto_reaches_a_subscribed_queue() {
    let mut stack = moto_stack(
        "moto-sns",
        "kind = \"sns\"\ntopic_arn = \"arn:aws:sns:us-east-1:123456789012:orders\"\n",
    );
    let sns = relay_testkit::MotoSns::new(&stack.moto);
    let topic = sns.create_topic("orders");
    assert_eq!(
        topic, "arn:aws:sns:us-east-1:123456789012:orders",
        "moto's region and account"
    );
    let queue = sns.subscribe_queue(&topic, "orders-subscriber");
    let response = stack.invoke(&three_orders(), INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None, "{}", stack.log());
    let bodies = sns.bodies(&queue);
    assert_eq!(bodies.len(), 3, "{}", stack.log());
    for body in &bodies {
        let event: Value = serde_json::from_str(body).unwrap();
        assert!(eid_of(&event).is_some(), "{event}");
    }
}

#[test]
fn a_parked_event_of_a_sink_no_longer_configured_is_kept_until_it_is() {
    let fake = FakeCloudEvents::start();
    fake.expect_token(Some("secret-token"));
    let mut stack = stack("unknown-sink", &fake, false);
    fake.down();
    let events = batch(vec![insert("orders", "100", "o-1", json!({}))]);
    let response = stack.invoke(&events, INVOKE).expect("answers");
    assert_eq!(checkpoint(&response), None, "{}", stack.log());
    assert_eq!(stack.parked().len(), 1);
    fake.up();
    // The sink is renamed in the config: the parked event names `out`.
    let original = std::fs::read_to_string(&stack.config).unwrap();
    let renamed = original
        .replace("[sinks.out]", "[sinks.renamed]")
        .replace("sinks = [\"out\"]", "sinks = [\"renamed\"]");
    std::fs::write(&stack.config, &renamed).unwrap();
    let out = stack.redrive(&["--retry-base-secs", "1"]);
    let summary: Value = serde_json::from_slice(&out.stdout).expect("a summary");
    assert_eq!(summary["deleted"], 0, "{summary}");
    assert_eq!(summary["still_failing"], 1, "{summary}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("parked event names a sink that is not configured"),
        "{said}"
    );
    assert!(fake.accepted().is_empty(), "never sent elsewhere");
    // Configured again: delivered.
    std::fs::write(&stack.config, &original).unwrap();
    std::thread::sleep(Duration::from_millis(2_500));
    let summary = redrive(&stack, &["--retry-base-secs", "1"]);
    assert_eq!(summary["republished"], 1, "{summary}");
    assert_eq!(fake.accepted().len(), 1);
}
