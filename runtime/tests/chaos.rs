//! Randomized fault schedules against the delivery guarantees, in process:
//! the relay's own pipeline and re-drive, the real data-change component,
//! the fake Nakadi over HTTP fanned out with one more sink (EventBridge,
//! Kinesis, SNS FIFO or CloudEvents over HTTP, by seed, each its
//! fault-injecting fake), and in-memory stand-ins for SQS and the
//! parked-items registry that fail at random (before or after taking
//! effect), with the relay killed at random points (its future dropped
//! mid-flight, all its state gone) and Lambda's redelivery: consecutive
//! batches of one shard, redelivered from the reported checkpoint, or whole
//! after a kill. After the outage, re-drive drains the queue.
//!
//! Invariants after every schedule:
//! - every record's event reached the bus and the other sink;
//! - every reported itemIdentifier is a sequence number of its batch;
//! - per item, each sink first sees versions in stream order and ends on
//!   the newest;
//! - nothing is left parked or registered.
//!
//! `RELAY_CHAOS_SCHEDULES` (default 1000) sets how many schedules run,
//! `RELAY_CHAOS_SEED` the first seed; a failure prints the seed that
//! replays it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use relay::config::{InvocationConfig, NakadiConfig, RetryConfig};
use relay::park::envelope::{decode, encode, to_json, Stored};
use relay::park::registry::Registered;
use relay::park::{
    Envelope, ParkError, ParkedMessage, ParkingLot, Registry, RegistryError, UnitId,
};
use relay::pipeline::Relay;
use relay::redrive::RedriveOptions;
use relay::sinks::nakadi::NakadiSink;
use relay::sinks::RawSink;
use relay::transform::{Limits, TransformEngine, TransformModule};
use relay_testkit::sinks::{
    EventBridgeEntry, Fault as SinkFault, Keyed, KinesisRecord, Select, SnsMessage,
};
use relay_testkit::{
    FakeCloudEvents, FakeEventBridge, FakeKinesis, FakeNakadi, FakeSns, Fault, Rng,
};
use serde_json::{json, Value};

const ARN: &str =
    "arn:aws:dynamodb:eu-central-1:123456789012:table/orders/stream/2026-01-15T08:00:00.000";
const EVENT_TYPE: &str = "order.changed";

/// How a stand-in answers one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// Fails without effect.
    FailBefore,
    /// Takes effect, then fails: the caller cannot know.
    FailAfter,
}

/// The fault dice shared by the stand-ins.
#[derive(Clone)]
struct Dice(Arc<Mutex<(Rng, u64)>>);

impl Dice {
    fn new(seed: u64) -> Dice {
        Dice(Arc::new(Mutex::new((Rng(seed), 0))))
    }

    fn set_failure_percent(&self, percent: u64) {
        self.0.lock().unwrap().1 = percent;
    }

    fn roll(&self) -> Outcome {
        let mut guard = self.0.lock().unwrap();
        let percent = guard.1;
        let rng = &mut guard.0;
        if !rng.chance(percent) {
            Outcome::Ok
        } else if rng.chance(50) {
            Outcome::FailBefore
        } else {
            Outcome::FailAfter
        }
    }
}

/// A standard SQS queue in memory: visibility timeouts on a virtual clock,
/// receipt handles (a stale one deletes nothing, as in SQS), receive counts.
#[derive(Clone)]
struct MemoryLot {
    state: Arc<Mutex<LotState>>,
    dice: Dice,
}

#[derive(Default)]
struct LotState {
    messages: Vec<Stored_>,
    next: u64,
    /// Virtual seconds.
    now: u64,
}

struct Stored_ {
    id: String,
    receipt: String,
    body: String,
    visible_at: u64,
    receives: u32,
}

impl MemoryLot {
    fn new(dice: Dice) -> MemoryLot {
        MemoryLot {
            state: Arc::new(Mutex::new(LotState::default())),
            dice,
        }
    }

    fn advance(&self, seconds: u64) {
        self.state.lock().unwrap().now += seconds;
    }

    fn len(&self) -> usize {
        self.state.lock().unwrap().messages.len()
    }
}

#[async_trait::async_trait]
impl ParkingLot for MemoryLot {
    fn location(&self) -> &str {
        "memory"
    }

    fn keeps_item_order(&self) -> bool {
        false
    }

    async fn park(&self, envelopes: &[Envelope], _deadline: Instant) -> Vec<Result<(), ParkError>> {
        let mut results = Vec::new();
        for envelope in envelopes {
            tokio::task::yield_now().await;
            let outcome = self.dice.roll();
            if outcome != Outcome::FailBefore {
                let body = encode(&to_json(envelope), 1 << 20).expect("fits");
                let mut state = self.state.lock().unwrap();
                state.next += 1;
                let id = format!("m{}", state.next);
                let now = state.now;
                state.messages.push(Stored_ {
                    receipt: String::new(),
                    id,
                    body,
                    visible_at: now,
                    receives: 0,
                });
            }
            tokio::task::yield_now().await;
            results.push(match outcome {
                Outcome::Ok => Ok(()),
                _ => Err(ParkError::Unavailable("injected".into())),
            });
        }
        results
    }

    async fn receive(
        &self,
        max: usize,
        _max_bytes: usize,
        visibility: Duration,
        _deadline: Instant,
    ) -> Result<Vec<ParkedMessage>, ParkError> {
        tokio::task::yield_now().await;
        if self.dice.roll() == Outcome::FailBefore {
            return Err(ParkError::Unavailable("injected receive failure".into()));
        }
        let mut state = self.state.lock().unwrap();
        let now = state.now;
        let mut next = state.next;
        let mut out = Vec::new();
        for message in state.messages.iter_mut() {
            if out.len() >= max || message.visible_at > now {
                continue;
            }
            next += 1;
            message.receipt = format!("r{next}");
            message.receives += 1;
            message.visible_at = now + visibility.as_secs();
            let envelope = match decode(&message.body) {
                Ok(Stored::Envelope(e)) => Ok(e),
                other => panic!("the memory lot holds only envelopes: {other:?}"),
            };
            out.push(ParkedMessage {
                id: message.id.clone(),
                receipt: message.receipt.clone(),
                receives: message.receives,
                envelope,
                claim: None,
            });
        }
        state.next = next;
        Ok(out)
    }

    async fn delete(&self, messages: &[&ParkedMessage]) -> Vec<Result<(), ParkError>> {
        let mut results = Vec::new();
        for message in messages {
            tokio::task::yield_now().await;
            let outcome = self.dice.roll();
            if outcome != Outcome::FailBefore {
                let mut state = self.state.lock().unwrap();
                // A stale receipt "succeeds" but deletes nothing.
                state.messages.retain(|m| m.receipt != message.receipt);
            }
            results.push(match outcome {
                Outcome::Ok => Ok(()),
                _ => Err(ParkError::Unavailable("injected".into())),
            });
        }
        results
    }

    async fn postpone(&self, messages: &[(&ParkedMessage, Duration)]) {
        for (message, hide) in messages {
            tokio::task::yield_now().await;
            if self.dice.roll() == Outcome::FailBefore {
                continue;
            }
            let mut state = self.state.lock().unwrap();
            let now = state.now;
            if let Some(m) = state
                .messages
                .iter_mut()
                .find(|m| m.receipt == message.receipt)
            {
                m.visible_at = now + hide.as_secs();
            }
        }
    }
}

/// The parked-items registry in memory.
#[derive(Clone)]
struct MemoryRegistry {
    items: Arc<Mutex<BTreeMap<String, BTreeSet<UnitId>>>>,
    dice: Dice,
}

impl MemoryRegistry {
    fn injected(outcome: Outcome) -> Result<(), RegistryError> {
        match outcome {
            Outcome::Ok => Ok(()),
            _ => Err(RegistryError::Unavailable("injected".into())),
        }
    }
}

#[async_trait::async_trait]
impl Registry for MemoryRegistry {
    fn location(&self) -> &str {
        "memory"
    }

    async fn lookup(
        &self,
        items: &[&str],
        _deadline: Instant,
    ) -> Result<HashMap<String, Vec<Registered>>, RegistryError> {
        tokio::task::yield_now().await;
        if self.dice.roll() != Outcome::Ok {
            return Err(RegistryError::Unavailable("injected lookup failure".into()));
        }
        let map = self.items.lock().unwrap();
        Ok(items
            .iter()
            .filter_map(|item| {
                let units = map.get(*item).filter(|u| !u.is_empty())?;
                Some((
                    (*item).to_owned(),
                    units
                        .iter()
                        .map(|unit| Registered {
                            unit: unit.clone(),
                            since_ms: u64::MAX / 2,
                        })
                        .collect(),
                ))
            })
            .collect())
    }

    async fn register(
        &self,
        item: &str,
        units: &[UnitId],
        _deadline: Instant,
    ) -> Result<(), RegistryError> {
        tokio::task::yield_now().await;
        let outcome = self.dice.roll();
        if outcome != Outcome::FailBefore {
            let mut map = self.items.lock().unwrap();
            map.entry(item.to_owned())
                .or_default()
                .extend(units.iter().cloned());
        }
        tokio::task::yield_now().await;
        Self::injected(outcome)
    }

    async fn unregister(
        &self,
        item: &str,
        units: &[UnitId],
        _deadline: Instant,
    ) -> Result<(), RegistryError> {
        tokio::task::yield_now().await;
        let outcome = self.dice.roll();
        if outcome != Outcome::FailBefore {
            let mut map = self.items.lock().unwrap();
            if let Some(set) = map.get_mut(item) {
                for unit in units {
                    set.remove(unit);
                }
                if set.is_empty() {
                    map.remove(item);
                }
            }
        }
        tokio::task::yield_now().await;
        Self::injected(outcome)
    }
}

/// Drops the inner future after a number of polls: the relay is killed
/// there, mid-flight, and everything it held in memory is gone.
struct KillAfter<F: Future> {
    inner: Pin<Box<F>>,
    polls_left: Option<u32>,
}

impl<F: Future> Future for KillAfter<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(left) = self.polls_left.as_mut() {
            if *left == 0 {
                return Poll::Ready(None);
            }
            *left -= 1;
        }
        self.inner.as_mut().poll(cx).map(Some)
    }
}

fn killable<F: Future>(future: F, polls: Option<u32>) -> KillAfter<F> {
    KillAfter {
        inner: Box::pin(future),
        polls_left: polls,
    }
}

/// One record: item `order` at `version`.
fn record(seq: u64, order: &str, version: u32) -> Value {
    let image = |v: u32| json!({"order_number": {"S": order}, "status": {"S": format!("v{v}")}});
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": 1768464000,
        "Keys": {"order_number": {"S": order}},
        "NewImage": image(version),
        "SequenceNumber": seq.to_string(),
        "SizeBytes": 60,
        "StreamViewType": "NEW_AND_OLD_IMAGES"
    });
    if version > 0 {
        dynamodb["OldImage"] = image(version - 1);
    }
    json!({
        "eventID": format!("ev-{seq}"),
        "eventName": if version == 0 { "INSERT" } else { "MODIFY" },
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-central-1",
        "eventSourceARN": ARN,
        "dynamodb": dynamodb,
    })
}

struct World {
    module: Arc<TransformModule>,
    nakadi: FakeNakadi,
    /// The other sink of the fan-out, one kind per schedule.
    others: Others,
    runtime: tokio::runtime::Runtime,
}

/// The fakes of the sinks a schedule fans out to besides Nakadi.
struct Others {
    eventbridge: FakeEventBridge,
    kinesis: FakeKinesis,
    sns: FakeSns,
    cloudevents: FakeCloudEvents,
}

/// Which sink a schedule fans out to besides Nakadi.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Other {
    EventBridge,
    Kinesis,
    SnsFifo,
    CloudEvents,
}

fn eid_in(body: &Value) -> Option<String> {
    body.pointer("/metadata/eid")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Random faults of an AWS-style fake for one invocation: whole-request
/// errors, per-entry failures of random events, hangs, cut connections.
fn aws_faults<E: Keyed + 'static>(
    rng: &mut Rng,
    eids: &[String],
    entry_code: &str,
    eid_of: fn(&E) -> Option<String>,
) -> Vec<SinkFault<E>> {
    (0..rng.below(8))
        .map(|_| match rng.below(9) {
            0 => SinkFault::error(500, "InternalFailure"),
            1 => SinkFault::error(400, "ThrottlingException"),
            2 => SinkFault::error(503, "ServiceUnavailable"),
            3 => SinkFault::Disconnect,
            4 => SinkFault::AcceptThenDisconnect,
            5 | 6 => {
                let picked: std::collections::HashSet<String> = (0..1 + rng.below(3))
                    .filter_map(|_| eids.get(rng.below(eids.len() as u64) as usize).cloned())
                    .collect();
                SinkFault::fail(
                    Select::when(move |e: &E| eid_of(e).is_some_and(|eid| picked.contains(&eid))),
                    entry_code,
                )
            }
            7 if rng.chance(30) => SinkFault::Hang(Duration::from_millis(300)),
            _ => SinkFault::Healthy,
        })
        .collect()
}

impl Others {
    fn start() -> Others {
        Others {
            eventbridge: FakeEventBridge::start(),
            kinesis: FakeKinesis::with_shards(2),
            sns: FakeSns::start(),
            cloudevents: FakeCloudEvents::start(),
        }
    }

    /// The sink's settings (as `[sinks.<name>]` has them) and its endpoint.
    fn section(&self, other: Other) -> (String, String) {
        match other {
            Other::EventBridge => (
                "kind = \"eventbridge\"\nsource = \"chaos\"".into(),
                self.eventbridge.url(),
            ),
            Other::Kinesis => (
                "kind = \"kinesis\"\nstream_name = \"orders\"".into(),
                self.kinesis.url(),
            ),
            Other::SnsFifo => (
                "kind = \"sns\"\ntopic_arn = \"arn:aws:sns:eu-central-1:123456789012:orders.fifo\""
                    .into(),
                self.sns.url(),
            ),
            Other::CloudEvents => (
                format!(
                    "kind = \"http\"\nurl = \"{}/events\"\nsource = \"/chaos\"",
                    self.cloudevents.url()
                ),
                self.cloudevents.url(),
            ),
        }
    }

    fn sink(&self, other: Other, retry: RetryConfig) -> Box<dyn relay::sinks::Sink> {
        let (section, endpoint) = self.section(other);
        let raw: RawSink = toml::from_str(&format!("{section}\nrequest_timeout_ms = 150"))
            .expect("a sink section");
        let configs = relay::sinks::validate_sinks(
            None,
            None,
            None,
            [("other".to_owned(), raw)].into(),
            false,
        )
        .expect("valid");
        configs["other"]
            .build("other", retry, &relay::aws::local_config(&endpoint))
            .expect("the sink")
    }

    fn reset(&self) {
        self.eventbridge.healthy();
        self.eventbridge.clear_logs();
        self.kinesis.healthy();
        self.kinesis.clear_logs();
        self.sns.healthy();
        self.sns.clear_logs();
        self.cloudevents.healthy();
        self.cloudevents.clear_logs();
    }

    fn healthy(&self, other: Other) {
        match other {
            Other::EventBridge => self.eventbridge.healthy(),
            Other::Kinesis => self.kinesis.healthy(),
            Other::SnsFifo => self.sns.healthy(),
            Other::CloudEvents => self.cloudevents.healthy(),
        }
    }

    fn misbehave(&self, other: Other, rng: &mut Rng, eids: &[String]) {
        match other {
            Other::EventBridge => self.eventbridge.script(aws_faults(
                rng,
                eids,
                "ThrottlingException",
                |e: &EventBridgeEntry| eid_in(&e.detail),
            )),
            Other::Kinesis => self.kinesis.script(aws_faults(
                rng,
                eids,
                "ProvisionedThroughputExceededException",
                |r: &KinesisRecord| r.json().as_ref().and_then(eid_in),
            )),
            Other::SnsFifo => {
                self.sns
                    .script(aws_faults(rng, eids, "InternalError", |m: &SnsMessage| {
                        m.dedup_id.clone()
                    }))
            }
            Other::CloudEvents => self.cloudevents.script(
                aws_faults(rng, eids, "unused", |ce: &Value| eid_in(&ce["data"]))
                    .into_iter()
                    .map(|fault| match fault {
                        // All or nothing: a per-entry failure is a 5xx.
                        SinkFault::FailEntries(_) => SinkFault::error(502, "BadGateway"),
                        other => other,
                    })
                    .collect(),
            ),
        }
    }

    /// The event bodies the sink took, in arrival order.
    fn bodies(&self, other: Other) -> Vec<Value> {
        match other {
            Other::EventBridge => self.eventbridge.accepted_details(),
            Other::Kinesis => self
                .kinesis
                .accepted()
                .iter()
                .map(|r| r.json().unwrap_or(Value::Null))
                .collect(),
            Other::SnsFifo => self
                .sns
                .accepted()
                .iter()
                .map(|m| serde_json::from_str(&m.message).unwrap_or(Value::Null))
                .collect(),
            Other::CloudEvents => self
                .cloudevents
                .accepted()
                .into_iter()
                .map(|ce| ce["data"].clone())
                .collect(),
        }
    }
}

impl World {
    fn relay(&self, lot: &MemoryLot, registry: &MemoryRegistry, other: Other) -> Relay {
        let instance = self
            .module
            .instantiate(
                r#"{"data_type":"order","event_type":"order.changed"}"#,
                Limits::default(),
            )
            .expect("instantiate");
        let bus = NakadiConfig {
            url: self.nakadi.url(),
            token_file: None,
            request_timeout: Duration::from_millis(150),
            gzip: false,
            batch_max_events: 1_000,
            batch_max_bytes: 4 << 20,
            max_event_bytes: 999_000,
        };
        let retry = RetryConfig {
            max_attempts: 3,
            initial_backoff_ms: 1,
            max_backoff_ms: 5,
            deadline_margin_ms: 200,
        };
        Relay::assemble(
            [("orders".to_owned(), (instance, vec![0, 1]))].into(),
            vec![
                Box::new(NakadiSink::new(&bus, retry).expect("the Nakadi sink")),
                self.others.sink(other, retry),
            ],
            Box::new(lot.clone()),
            Some(Box::new(registry.clone())),
            InvocationConfig::default(),
        )
    }
}

/// A random bus misbehaviour for one invocation.
fn bus_faults(rng: &mut Rng, eids: &[String]) -> Vec<Fault> {
    let pick = |rng: &mut Rng| -> std::collections::HashSet<String> {
        (0..1 + rng.below(3))
            .filter_map(|_| eids.get(rng.below(eids.len() as u64) as usize).cloned())
            .collect()
    };
    (0..rng.below(8))
        .map(|_| match rng.below(11) {
            0 => Fault::Status(500),
            1 => Fault::Status(503),
            2 => Fault::Status(429),
            3 => Fault::Redirect(302),
            4 => Fault::Disconnect,
            5 => Fault::AcceptThenDisconnect,
            6 => Fault::FailEids(pick(rng)),
            7 => Fault::FailEidsAbortAfterFirst(pick(rng)),
            8 => Fault::RejectEids(pick(rng)),
            9 if rng.chance(30) => Fault::Hang(Duration::from_millis(300)),
            _ => Fault::Healthy,
        })
        .collect()
}

/// Runs one schedule; returns a description of what it covered.
fn schedule(world: &World, seed: u64, base_seq: u64) -> Result<Coverage, String> {
    let mut rng = Rng(seed);
    let dice = Dice::new(seed ^ 0xD1CE);
    let lot = MemoryLot::new(dice.clone());
    let registry = MemoryRegistry {
        items: Arc::new(Mutex::new(BTreeMap::new())),
        dice: dice.clone(),
    };
    let nakadi = &world.nakadi;
    nakadi.healthy();
    nakadi.clear_logs();
    nakadi.accept_connections();
    let others = &world.others;
    others.reset();
    let other = [
        Other::EventBridge,
        Other::Kinesis,
        Other::SnsFifo,
        Other::CloudEvents,
    ][(seed % 4) as usize];

    // The shard: items changing in turn, versions counting up per item.
    let items = 1 + rng.below(4) as usize;
    let count = 3 + rng.below(14) as usize;
    let mut versions = vec![0u32; items];
    let mut stream = Vec::new();
    for i in 0..count {
        let item = rng.below(items as u64) as usize;
        stream.push((base_seq + i as u64 * 10, item, versions[item]));
        versions[item] += 1;
    }
    let raw: Vec<Value> = stream
        .iter()
        .map(|(seq, item, version)| record(*seq, &format!("o-{item}"), *version))
        .collect();
    let eids: Vec<String> =
        relay_record::testing::records_from_str(&json!({"Records": raw}).to_string())
            .iter()
            .map(|r| relay_record::eid(r, 0))
            .collect();

    let mut coverage = Coverage::default();
    let mut relay = world.relay(&lot, &registry, other);
    let mut position = 0;
    let outage_invocations = 2 + rng.below(10);
    let mut invocation = 0;
    while position < count {
        invocation += 1;
        if invocation > 200 {
            return Err("the shard made no progress in 200 invocations".into());
        }
        let outage = invocation <= outage_invocations;
        let size = 1 + rng.below(6) as usize;
        let batch: Vec<Value> = raw[position..(position + size).min(count)].to_vec();
        let seqs: Vec<String> = stream[position..(position + size).min(count)]
            .iter()
            .map(|(s, _, _)| s.to_string())
            .collect();
        nakadi.healthy();
        others.healthy(other);
        let mut kill = None;
        if outage {
            nakadi.script(bus_faults(&mut rng, &eids));
            others.misbehave(other, &mut rng, &eids);
            if rng.chance(15) {
                nakadi.respond_status(503, None);
                coverage.bus_down += 1;
            }
            dice.set_failure_percent(rng.below(35));
            if rng.chance(30) {
                kill = Some(rng.below(60) as u32);
            }
        } else {
            dice.set_failure_percent(0);
        }
        let event = serde_json::value::RawValue::from_string(json!({"Records": batch}).to_string())
            .expect("json");
        let deadline = Instant::now() + Duration::from_millis(1_500 + rng.below(1_500));
        let answer = world
            .runtime
            .block_on(killable(relay.handle(&event, deadline, "chaos"), kill));
        if trace() {
            let items: Vec<String> = stream[position..(position + size).min(count)]
                .iter()
                .map(|(s, i, v)| format!("{s}:o-{i}v{v}"))
                .collect();
            eprintln!(
                "invocation {invocation} outage={outage} kill={kill:?} batch={items:?} → {:?}; bus so far {:?}; registry {:?}",
                answer.as_ref().map(|a| a.as_ref().map(|o| (&o.response, o.stats.events_published, o.stats.events_parked, o.stats.events_held)).map_err(|e| e.to_string())),
                versions_seen(nakadi),
                registry.items.lock().unwrap().values().map(|u| u.len()).collect::<Vec<_>>(),
            );
        }
        match answer {
            None => {
                coverage.kills += 1;
                relay = world.relay(&lot, &registry, other); // a cold start
            }
            Some(Err(e)) => {
                coverage.failed_invocations += 1;
                let _ = e; // Lambda delivers the whole batch again.
            }
            Some(Ok(outcome)) => {
                let failures = outcome.response.batch_item_failures;
                if failures.len() > 1 {
                    return Err(format!("more than one itemIdentifier: {failures:?}"));
                }
                match failures.first() {
                    None => position += seqs.len(),
                    Some(f) => {
                        let Some(at) = seqs
                            .iter()
                            .position(|s| Some(s) == f.item_identifier.as_ref())
                        else {
                            return Err(format!(
                                "reported itemIdentifier {:?} is not in the batch {seqs:?}",
                                f.item_identifier
                            ));
                        };
                        coverage.checkpoints += 1;
                        position += at;
                    }
                }
                coverage.events_held += outcome.stats.events_held;
            }
        }
        // The scheduled re-drive, now and then, killed now and then.
        if rng.chance(25) {
            lot.advance(rng.below(2_000));
            let kill = (outage && rng.chance(30)).then(|| rng.below(80) as u32);
            coverage.redrives += 1;
            let mut redriver = world.relay(&lot, &registry, other);
            let options = RedriveOptions {
                time_budget: Duration::from_secs(3),
                ..RedriveOptions::default()
            };
            let result = world
                .runtime
                .block_on(killable(redriver.redrive(&options), kill));
            if trace() {
                eprintln!(
                    "re-drive kill={kill:?} → {:?}; bus so far {:?}",
                    result
                        .as_ref()
                        .map(|r| r.as_ref().map_err(|e| e.to_string())),
                    versions_seen(nakadi)
                );
            }
            if result.is_none() {
                coverage.kills += 1;
            }
        }
    }
    coverage.parked_max = coverage.parked_max.max(lot.len());

    // The outage is over: re-drive until the queue is empty.
    nakadi.healthy();
    others.healthy(other);
    dice.set_failure_percent(0);
    let mut runs = 0;
    while lot.len() > 0 {
        runs += 1;
        if runs > 30 {
            return Err(format!(
                "{} messages still parked after 30 re-drive runs",
                lot.len()
            ));
        }
        lot.advance(50_000);
        let mut redriver = world.relay(&lot, &registry, other);
        let options = RedriveOptions {
            time_budget: Duration::from_secs(5),
            poison_receives: u32::MAX,
            ..RedriveOptions::default()
        };
        world
            .runtime
            .block_on(redriver.redrive(&options))
            .map_err(|e| format!("re-drive failed: {e}"))?;
    }
    coverage.redrives += runs;
    let left = registry.items.lock().unwrap().clone();
    if !left.is_empty() {
        return Err(format!("units still registered: {left:?}"));
    }

    // Every record reached each sink; per item, first sightings in stream
    // order, and the last sighting is the newest version.
    let accepted = nakadi.accepted();
    if let Some((event_type, _)) = accepted.iter().find(|(t, _)| t != EVENT_TYPE) {
        return Err(format!("the bus got event type {event_type}"));
    }
    let bodies: Vec<Value> = accepted.into_iter().map(|(_, body)| body).collect();
    coverage.duplicates += check_sink("the bus", &bodies, &eids, &stream, &versions)?;
    let name = format!("the {other:?} sink");
    coverage.duplicates += check_sink(&name, &others.bodies(other), &eids, &stream, &versions)?;
    coverage.invocations += invocation as usize;
    Ok(coverage)
}

/// Checks what one sink took: every record's event, per item first seen in
/// stream order and last seen at its newest version. Returns the duplicates.
fn check_sink(
    sink: &str,
    bodies: &[Value],
    eids: &[String],
    stream: &[(u64, usize, u32)],
    versions: &[u32],
) -> Result<usize, String> {
    let accepted_eids: std::collections::HashSet<String> =
        bodies.iter().filter_map(eid_in).collect();
    for (i, eid) in eids.iter().enumerate() {
        if !accepted_eids.contains(eid) {
            let (seq, item, version) = stream[i];
            return Err(format!(
                "record {seq} (o-{item} v{version}) never reached {sink}"
            ));
        }
    }
    let mut seen: HashMap<String, Vec<u32>> = HashMap::new();
    for body in bodies {
        let order = body["data"]["order_number"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        let version: u32 = body["data"]["status"]
            .as_str()
            .and_then(|s| s.strip_prefix('v'))
            .and_then(|v| v.parse().ok())
            .unwrap_or(u32::MAX);
        seen.entry(order).or_default().push(version);
    }
    let mut duplicates = 0;
    for (order, sightings) in &seen {
        let mut first = Vec::new();
        for v in sightings {
            if !first.contains(v) {
                first.push(*v);
            }
        }
        if first.windows(2).any(|w| w[0] > w[1]) {
            return Err(format!(
                "{order}: {sink} first saw versions {first:?} (all: {sightings:?})"
            ));
        }
        let newest = versions[order[2..].parse::<usize>().unwrap()] - 1;
        if sightings.last() != Some(&newest) {
            return Err(format!(
                "{order}: {sink} ended on v{:?}, not the newest v{newest} (all: {sightings:?})",
                sightings.last()
            ));
        }
        duplicates += sightings.len() - first.len();
    }
    Ok(duplicates)
}

fn trace() -> bool {
    std::env::var_os("RELAY_CHAOS_TRACE").is_some()
}

fn versions_seen(nakadi: &FakeNakadi) -> Vec<String> {
    nakadi
        .accepted()
        .iter()
        .map(|(_, b)| {
            format!(
                "{}{}",
                b["data"]["order_number"].as_str().unwrap_or("?"),
                b["data"]["status"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[derive(Debug, Default)]
struct Coverage {
    invocations: usize,
    kills: usize,
    failed_invocations: usize,
    checkpoints: usize,
    bus_down: usize,
    events_held: usize,
    redrives: usize,
    parked_max: usize,
    duplicates: usize,
}

impl Coverage {
    fn add(&mut self, other: &Coverage) {
        self.invocations += other.invocations;
        self.kills += other.kills;
        self.failed_invocations += other.failed_invocations;
        self.checkpoints += other.checkpoints;
        self.bus_down += other.bus_down;
        self.events_held += other.events_held;
        self.redrives += other.redrives;
        self.parked_max = self.parked_max.max(other.parked_max);
        self.duplicates += other.duplicates;
    }
}

#[test]
fn no_change_is_lost_and_no_item_reordered_under_random_faults() {
    let schedules: u64 = std::env::var("RELAY_CHAOS_SCHEDULES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000);
    let first_seed: u64 = std::env::var("RELAY_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xC4A0_5000);
    let engine = TransformEngine::new().expect("engine");
    let module = engine
        .load(&relay_testkit::guest("data-change"))
        .expect("the data-change component loads");
    let world = World {
        module,
        nakadi: FakeNakadi::start(),
        others: Others::start(),
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime"),
    };
    let started = Instant::now();
    let mut total = Coverage::default();
    for n in 0..schedules {
        let seed = first_seed + n;
        match schedule(&world, seed, 1_000_000 + n * 1_000) {
            Ok(coverage) => total.add(&coverage),
            Err(e) => panic!(
                "schedule {n} broke a promise: {e}\nreplay it with RELAY_CHAOS_SEED={seed} RELAY_CHAOS_SCHEDULES=1"
            ),
        }
    }
    eprintln!(
        "{schedules} schedules in {:.1} s (seeds {first_seed}..): {total:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(total.kills > 0 && total.checkpoints > 0 && total.events_held > 0 || schedules < 50);
}
