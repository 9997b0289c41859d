//! The relay pipeline for one Lambda invocation, top to bottom:
//! intake → decode → route → transform → hold → publish → park → respond.
//!
//! Every unit of work (an event, or a record parked raw) starts out open and
//! becomes delivered only when the bus acknowledged it or it was parked. The
//! response names the first record that still has an open unit, so Lambda
//! delivers it, and everything after it, again.
//!
//! Each stage stops in time for the next: transforming stops early enough to
//! leave one publishing round before the publish deadline (the rest of the
//! batch is left for Lambda to deliver again), publishing stops
//! `deadline_margin_ms` before the deadline, parking stops a moment before it,
//! so the response always goes out before Lambda's timeout.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::config::{Config, InvocationConfig};
use crate::intake::{self, Incoming, NotAStreamEvent};
use crate::modules::ModuleStore;
use crate::park::{
    DynamoRegistry, Envelope, ParcelKind, ParkingLot, Part, Registry, SqsLot, UnitId,
    ENVELOPE_VERSION,
};
use crate::publish::{Delivery, Outbound, PublishStats, Publisher};
use crate::transform::{Event, TransformEngine, TransformInstance};

/// Time kept after parking to hand the response to Lambda.
const RESPOND_MARGIN: Duration = Duration::from_millis(300);

/// Registrations in flight at once while parking.
const REGISTRATIONS_IN_FLIGHT: usize = 16;

/// The partial batch response Lambda expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchResponse {
    /// Records to deliver again (with everything after them in the shard).
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<BatchItemFailure>,
}

/// One record to deliver again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchItemFailure {
    /// The record's sequence number; never empty.
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// Why an invocation fails as a whole (Lambda then delivers the whole
/// batch again).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The payload is not a stream event.
    #[error(transparent)]
    NotAStreamEvent(#[from] NotAStreamEvent),
    /// A record that was neither published nor parked has no sequence
    /// number, and no record before it has one to name as the checkpoint.
    #[error(
        "record #{record} could neither be published nor parked and has no sequence number \
         to report ({failed} records failed); failing the whole batch"
    )]
    NoCheckpoint {
        /// Position of the record in the batch.
        record: usize,
        /// Records that failed.
        failed: usize,
    },
}

/// Counters of one invocation, for logs and metrics.
#[derive(Debug, Default, Clone)]
pub struct InvocationStats {
    /// Records in the batch.
    pub records_in: usize,
    /// Records that could not be decoded.
    pub decode_errors: usize,
    /// Records from tables without a route.
    pub unknown_table: usize,
    /// Records whose transform failed.
    pub transform_errors: usize,
    /// Records left untransformed for Lambda to deliver again (the deadline
    /// was near, or the invocation's output budget was used up).
    pub records_deferred: usize,
    /// Events the transforms produced.
    pub events_out: usize,
    /// Events the bus acknowledged.
    pub events_published: usize,
    /// Events parked in SQS.
    pub events_parked: usize,
    /// Events parked because their item already had something parked.
    pub events_held: usize,
    /// Raw records parked in SQS.
    pub records_parked: usize,
    /// Records reported back to Lambda (neither published nor parked).
    pub records_failed: usize,
    /// Time spent asking the parked-items registry.
    pub registry_lookup: Duration,
    /// Publishing requests and their latencies.
    pub publish: PublishStats,
    /// Time spent on the invocation.
    pub duration: Duration,
}

impl InvocationStats {
    /// Logs the one summary line of a batch (INFO).
    pub fn log_batch_done(&self) {
        tracing::info!(
            records_in = self.records_in,
            events_published = self.events_published,
            events_parked = self.events_parked,
            events_held = self.events_held,
            records_parked = self.records_parked,
            records_deferred = self.records_deferred,
            records_failed = self.records_failed,
            registry_lookup_ms = self.registry_lookup.as_secs_f64() * 1e3,
            duration_ms = self.duration.as_millis() as u64,
            "batch done"
        );
    }
}

/// What one invocation produced.
#[derive(Debug)]
pub struct BatchOutcome {
    /// The response for Lambda.
    pub response: BatchResponse,
    /// Counters.
    pub stats: InvocationStats,
}

/// A table's route: its transform instance.
pub(crate) struct Route {
    pub(crate) instance: TransformInstance,
}

/// The relay: routes, publisher, parking lot and registry, set up once per
/// process.
pub struct Relay {
    pub(crate) routes: BTreeMap<String, Route>,
    pub(crate) publisher: Publisher,
    pub(crate) lot: Box<dyn ParkingLot>,
    pub(crate) registry: Option<Box<dyn Registry>>,
    pub(crate) invocation: InvocationConfig,
}

/// What becomes of one unit of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Not published nor parked: lost unless Lambda delivers it again.
    Open,
    /// To be parked.
    Park,
    /// The bus acknowledged it.
    Published,
    /// It is in the parking lot.
    Parked,
}

/// What the transform stage made of a record.
enum Outcome {
    /// Its events (one unit each).
    Events(Vec<Event>),
    /// The record itself is parked raw (one unit), for this reason.
    Park,
    /// Left for Lambda to deliver again (one unit that stays open).
    Defer,
}

/// One record after the transform stage.
struct Mapped<'a> {
    incoming: &'a Incoming,
    /// Table and key of the item, for per-item ordering.
    item: Option<String>,
    outcome: Outcome,
    fates: Vec<Fate>,
    attempts: Vec<u32>,
    reasons: Vec<String>,
}

impl Mapped<'_> {
    fn unit(&self, u: usize) -> UnitId {
        let (part, content) = match &self.outcome {
            Outcome::Events(events) => (Part::Event(u as u32), events[u].body.get()),
            Outcome::Park | Outcome::Defer => (Part::Record, self.incoming.raw.get()),
        };
        UnitId::new(self.incoming.sequence_number.as_deref(), part, content)
    }
}

/// A unit in an item's queue: which record, and what it is.
#[derive(Debug, Clone, Copy)]
enum Queued {
    Event(usize, usize),
    Raw(usize),
    Defer,
}

impl Relay {
    /// Loads every table's module (from its file, or from S3 through the
    /// module cache, checked against its pinned sha256), instantiates it
    /// with its settings and sets up the bus, SQS (and S3 for claim checks)
    /// and registry clients.
    pub async fn init(config: &Config) -> anyhow::Result<Relay> {
        let engine = TransformEngine::new()?;
        let mut store = ModuleStore::from_env(config).await;
        let mut routes = BTreeMap::new();
        for (table, route) in &config.tables {
            let loaded = store.load(&engine, table, route).await?;
            let instance = loaded.module.instantiate(&route.settings, route.limits)?;
            tracing::info!(
                table,
                module = loaded.module.name(),
                source = %route.module,
                sha256 = %loaded.sha256,
                origin = %loaded.origin,
                "route ready"
            );
            routes.insert(table.clone(), instance);
        }
        let claim_check = match &config.fallback.claim_check_bucket {
            Some(bucket) => Some(crate::park::ClaimCheck {
                s3: crate::lambda::s3_client().await,
                bucket: bucket.clone(),
                prefix: config.fallback.claim_check_prefix.clone(),
            }),
            None => None,
        };
        let lot = SqsLot::new(
            crate::lambda::sqs_client().await,
            config.fallback.queue_url.clone(),
            claim_check,
        );
        let registry: Option<Box<dyn Registry>> = match &config.registry {
            Some(registry) => Some(Box::new(DynamoRegistry::new(
                crate::lambda::dynamodb_client().await,
                registry.table.clone(),
            ))),
            None => None,
        };
        Ok(Relay::assemble(
            routes,
            Publisher::new(&config.bus, config.retry)?,
            Box::new(lot),
            registry,
            config.invocation,
        ))
    }

    /// A relay from its parts: a transform instance per table, the
    /// publisher, the parking lot and (optionally) the parked-items registry.
    pub fn assemble(
        routes: BTreeMap<String, TransformInstance>,
        publisher: Publisher,
        lot: Box<dyn ParkingLot>,
        registry: Option<Box<dyn Registry>>,
        invocation: InvocationConfig,
    ) -> Relay {
        Relay {
            routes: routes
                .into_iter()
                .map(|(table, instance)| (table, Route { instance }))
                .collect(),
            publisher,
            lot,
            registry,
            invocation,
        }
    }

    /// Runs one batch through the pipeline, answering before `deadline`.
    pub async fn handle(
        &mut self,
        event: &RawValue,
        deadline: Instant,
        request_id: &str,
    ) -> Result<BatchOutcome, BatchError> {
        let started = Instant::now();
        for route in self.routes.values_mut() {
            // Guest log output is budgeted per invocation.
            route.instance.reset_log_budget();
        }
        let batch = intake::split(event)?;
        let mut stats = InvocationStats {
            records_in: batch.len(),
            ..InvocationStats::default()
        };
        let stages = Stages::new(
            started,
            deadline,
            self.publisher.deadline_margin(),
            self.publisher.request_timeout(),
        );
        let mut mapped = self.transform(&batch, stages.transform_until, &mut stats);
        let held = self
            .held_items(&mapped, stages.publish_until, &mut stats)
            .await;
        self.publish(
            &mut mapped,
            &held,
            stages.publish_until,
            request_id,
            &mut stats,
        )
        .await;
        self.park(&mut mapped, stages.park_until, &mut stats).await;
        let response = respond(&mapped, &mut stats)?;
        stats.duration = started.elapsed();
        Ok(BatchOutcome { response, stats })
    }

    /// Decode results in, events (or a reason to park the record) out. Stops
    /// at `until`, or once the invocation's output budget is used up: the
    /// rest of the batch is deferred to Lambda's next delivery.
    fn transform<'a>(
        &mut self,
        batch: &'a [Incoming],
        until: Instant,
        stats: &mut InvocationStats,
    ) -> Vec<Mapped<'a>> {
        let budget = self.invocation.max_output_bytes;
        let mut output_bytes = 0usize;
        let mut stop: Option<String> = None;
        let mut mapped = Vec::with_capacity(batch.len());
        for incoming in batch {
            let item = incoming.item.clone();
            if stop.is_none() && Instant::now() >= until {
                stop = Some(
                    "the invocation deadline was near; left for Lambda to deliver again".into(),
                );
            }
            let (outcome, reason) = match (&stop, &incoming.decoded) {
                (Some(why), _) => (Outcome::Defer, why.clone()),
                (None, Err(e)) => {
                    stats.decode_errors += 1;
                    tracing::warn!(record = incoming.label(), "cannot decode the record: {e}");
                    (Outcome::Park, format!("cannot decode the record: {e}"))
                }
                (None, Ok(record)) => match self.routes.get_mut(&record.table) {
                    None => {
                        stats.unknown_table += 1;
                        tracing::warn!(
                            record = incoming.label(),
                            table = record.table,
                            "no transform is configured for the table"
                        );
                        let reason =
                            format!("no transform is configured for table {:?}", record.table);
                        (Outcome::Park, reason)
                    }
                    Some(route) => match route.instance.transform(record) {
                        Err(e) => {
                            stats.transform_errors += 1;
                            tracing::warn!(
                                record = incoming.label(),
                                table = record.table,
                                error = e.kind.label(),
                                "{e}"
                            );
                            (Outcome::Park, e.to_string())
                        }
                        Ok(events) => {
                            let bytes: usize = events.iter().map(|e| e.body.get().len()).sum();
                            if output_bytes > 0 && output_bytes + bytes > budget {
                                // Dropping the events frees their memory; the
                                // next invocation starts with a fresh budget.
                                let why = format!(
                                    "the invocation's output budget of {budget} bytes was used up; \
                                     left for Lambda to deliver again"
                                );
                                tracing::warn!(
                                    record = incoming.label(),
                                    output_bytes,
                                    budget,
                                    "output budget used up; the rest of the batch is deferred"
                                );
                                stop = Some(why.clone());
                                (Outcome::Defer, why)
                            } else {
                                output_bytes += bytes;
                                stats.events_out += events.len();
                                (Outcome::Events(events), String::new())
                            }
                        }
                    },
                },
            };
            let (units, fate) = match &outcome {
                Outcome::Events(events) => (events.len(), Fate::Open),
                Outcome::Park => (1, Fate::Park),
                Outcome::Defer => {
                    stats.records_deferred += 1;
                    (1, Fate::Open)
                }
            };
            mapped.push(Mapped {
                incoming,
                item,
                outcome,
                fates: vec![fate; units],
                attempts: vec![0; units],
                reasons: vec![reason; units],
            });
        }
        if let Some(why) = stop {
            tracing::warn!(records_deferred = stats.records_deferred, "{why}");
        }
        mapped
    }

    /// The items whose events must not be published now: those with parked
    /// units in the registry, or all of them when the registry cannot answer
    /// (order beats progress).
    async fn held_items(
        &self,
        mapped: &[Mapped<'_>],
        deadline: Instant,
        stats: &mut InvocationStats,
    ) -> Held {
        let Some(registry) = &self.registry else {
            return Held::None;
        };
        let mut items: Vec<&str> = mapped
            .iter()
            .filter(|m| matches!(m.outcome, Outcome::Events(ref e) if !e.is_empty()))
            .filter_map(|m| m.item.as_deref())
            .collect();
        items.sort_unstable();
        items.dedup();
        if items.is_empty() {
            return Held::None;
        }
        let started = Instant::now();
        let answer = registry.lookup(&items, deadline).await;
        stats.registry_lookup = started.elapsed();
        match answer {
            Ok(parked) if parked.is_empty() => Held::None,
            Ok(parked) => {
                tracing::info!(
                    items = parked.len(),
                    "items with parked changes: their new events are parked behind them"
                );
                Held::Items(parked.into_keys().collect())
            }
            Err(e) => {
                tracing::warn!(
                    registry = registry.location(),
                    "cannot ask the parked-items registry, so no event is published (each is parked \
                     behind whatever its item may have parked): {e}"
                );
                Held::All(e.to_string())
            }
        }
    }

    /// Publishes in waves: each wave holds at most one event per item, the
    /// item's next in stream order, so no event overtakes an earlier one of
    /// its item. Once something of an item is parked, the rest of that item
    /// is parked behind it; once a record is deferred, the rest of its item
    /// is left open too.
    async fn publish(
        &self,
        mapped: &mut [Mapped<'_>],
        held: &Held,
        deadline: Instant,
        request_id: &str,
        stats: &mut InvocationStats,
    ) {
        // Per item, its units in stream order.
        let mut items: Vec<VecDeque<Queued>> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (r, m) in mapped.iter().enumerate() {
            let Some(item) = m.item.as_deref() else {
                continue; // no key: parked or deferred on its own
            };
            let slot = *index.entry(item).or_insert_with(|| {
                items.push(VecDeque::new());
                items.len() - 1
            });
            match &m.outcome {
                Outcome::Events(events) => {
                    items[slot].extend((0..events.len()).map(|e| Queued::Event(r, e)))
                }
                Outcome::Park => items[slot].push_back(Queued::Raw(r)),
                Outcome::Defer => items[slot].push_back(Queued::Defer),
            }
        }
        let slots: HashMap<String, usize> =
            index.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        for (item, &slot) in &slots {
            let why = match held {
                Held::None => continue,
                Held::Items(parked) if !parked.contains(item) => continue,
                Held::Items(_) => {
                    "earlier changes of the item are parked; re-drive publishes them in order"
                        .to_owned()
                }
                Held::All(e) => {
                    format!("held back, the parked-items registry could not be read: {e}")
                }
            };
            let before = count_parked(mapped);
            settle_rest(mapped, &mut items[slot], &why);
            stats.events_held += count_parked(mapped) - before;
        }
        let mut wave_number = 0;
        loop {
            let mut wave: Vec<(usize, usize)> = Vec::new();
            for queue in items.iter_mut() {
                match queue.front() {
                    Some(&Queued::Event(r, e)) => {
                        queue.pop_front();
                        wave.push((r, e));
                    }
                    Some(_) => settle_rest(
                        mapped,
                        queue,
                        "an earlier record of the same item could not be transformed",
                    ),
                    None => {}
                }
            }
            if wave.is_empty() {
                return;
            }
            let outbound: Vec<Outbound<'_>> = wave
                .iter()
                .map(|&(r, e)| {
                    let Outcome::Events(events) = &mapped[r].outcome else {
                        unreachable!("waves hold events only")
                    };
                    Outbound::from(&events[e])
                })
                .collect();
            let flow_id = format!("{request_id}-{wave_number}");
            let deliveries = self
                .publisher
                .publish(&outbound, deadline, &flow_id, &mut stats.publish)
                .await;
            wave_number += 1;
            // Items whose event in this wave must be parked: park the rest too.
            let mut blocked = Vec::new();
            for (&(r, e), delivery) in wave.iter().zip(deliveries) {
                match delivery {
                    Delivery::Published => {
                        mapped[r].fates[e] = Fate::Published;
                        stats.events_published += 1;
                    }
                    Delivery::Park { attempts, reason } => {
                        mapped[r].fates[e] = Fate::Park;
                        mapped[r].attempts[e] = attempts;
                        mapped[r].reasons[e] = reason;
                        blocked.extend(mapped[r].item.clone());
                    }
                }
            }
            for item in blocked {
                settle_rest(
                    mapped,
                    &mut items[slots[&item]],
                    "an earlier event of the same item could not be published and was parked",
                );
            }
        }
    }

    /// Parks what must be parked: each item's units are registered first
    /// (with a registry), then sent; a unit whose send failed stays open,
    /// for Lambda to deliver again, and registered, so nothing of its item
    /// overtakes it meanwhile.
    async fn park(
        &self,
        mapped: &mut [Mapped<'_>],
        deadline: Instant,
        stats: &mut InvocationStats,
    ) {
        let parked_at = relay_record::format_rfc3339_millis(crate::unix_ms());
        let mut places: Vec<(usize, usize)> = Vec::new();
        for (r, m) in mapped.iter().enumerate() {
            places.extend(
                (0..m.fates.len())
                    .filter(|&u| m.fates[u] == Fate::Park)
                    .map(|u| (r, u)),
            );
        }
        if places.is_empty() {
            return;
        }
        // Register per item; units of items that could not be registered stay open.
        let mut per_item: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
        for &(r, u) in &places {
            if let Some(item) = mapped[r].item.as_deref() {
                per_item.entry(item).or_default().push((r, u));
            }
        }
        let mut unregistered: HashSet<(usize, usize)> = HashSet::new();
        if let Some(registry) = &self.registry {
            let requests: Vec<(&str, Vec<UnitId>)> = per_item
                .iter()
                .map(|(item, units)| {
                    (
                        *item,
                        units.iter().map(|&(r, u)| mapped[r].unit(u)).collect(),
                    )
                })
                .collect();
            let answers: Vec<(&str, Result<(), _>)> = futures_util::stream::iter(requests)
                .map(|(item, units)| async move {
                    (item, registry.register(item, &units, deadline).await)
                })
                .buffer_unordered(REGISTRATIONS_IN_FLIGHT)
                .collect()
                .await;
            for (item, answer) in answers {
                if let Err(e) = answer {
                    tracing::error!(item, "cannot register parked units; Lambda will deliver their records again: {e}");
                    unregistered.extend(per_item[item].iter().copied());
                }
            }
        }
        let places: Vec<(usize, usize)> = places
            .into_iter()
            .filter(|place| !unregistered.contains(place))
            .collect();
        for &(r, u) in &unregistered {
            mapped[r].fates[u] = Fate::Open;
        }
        let registered = self.registry.is_some();
        let envelopes: Vec<Envelope> = places
            .iter()
            .map(|&(r, u)| {
                envelope(
                    &mapped[r],
                    u,
                    &parked_at,
                    registered && mapped[r].item.is_some(),
                )
            })
            .collect();
        let results = self.lot.park(&envelopes, deadline).await;
        for ((r, u), result) in places.into_iter().zip(results) {
            let m = &mut mapped[r];
            match result {
                Ok(()) => {
                    m.fates[u] = Fate::Parked;
                    match m.outcome {
                        Outcome::Events(_) => stats.events_parked += 1,
                        _ => stats.records_parked += 1,
                    }
                    tracing::warn!(
                        record = m.incoming.label(),
                        reason = m.reasons[u].as_str(),
                        "parked in the fallback queue"
                    );
                }
                Err(e) => {
                    // Its unit stays registered: the item waits until Lambda
                    // delivers the record again and it is parked for good.
                    // (Unregistering it could let a later parked unit of the
                    // item go first.)
                    m.fates[u] = Fate::Open;
                    tracing::error!(
                        record = m.incoming.label(),
                        reason = m.reasons[u].as_str(),
                        "could neither publish nor park; Lambda will deliver the record again: {e}"
                    );
                }
            }
        }
    }
}

/// When each stage of an invocation stops, so the response always reaches
/// Lambda before its deadline.
#[derive(Debug, Clone, Copy)]
pub struct Stages {
    /// Transforming stops here; the rest of the batch is deferred.
    pub transform_until: Instant,
    /// Publishing (and the registry lookup) stops here; the rest is parked.
    pub publish_until: Instant,
    /// Parking stops here; the rest is reported back.
    pub park_until: Instant,
}

/// The budget assumed when an invocation's deadline has already passed on
/// arrival: it was not a deadline (a duration sent as an epoch time, as
/// cargo-lambda does), or a clock is off.
pub const UNKNOWN_DEADLINE_BUDGET: Duration = Duration::from_secs(60);

impl Stages {
    /// The stages of an invocation that started at `started` and must answer
    /// by `deadline`. Publishing stops `margin` before the deadline (at most a
    /// third of the time left, so a short timeout still publishes),
    /// transforming leaves a publishing round before that (a request timeout,
    /// at most a quarter of the time), parking stops 300 ms before the
    /// deadline (at most a tenth of the time).
    pub fn new(
        started: Instant,
        deadline: Instant,
        margin: Duration,
        request_timeout: Duration,
    ) -> Stages {
        static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let mut left = deadline.saturating_duration_since(started);
        let mut deadline = deadline;
        if left.is_zero() {
            if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(
                    budget_s = UNKNOWN_DEADLINE_BUDGET.as_secs(),
                    "the invocation's deadline had passed when it arrived (a duration sent as an \
                     epoch time, or a clock off); assuming a budget instead"
                );
            }
            left = UNKNOWN_DEADLINE_BUDGET;
            deadline = started + left;
        }
        let margin = margin.min(left / 3);
        let publish_until = deadline - margin;
        let room = request_timeout.min(publish_until.saturating_duration_since(started) / 4);
        Stages {
            transform_until: publish_until - room,
            publish_until,
            park_until: deadline - RESPOND_MARGIN.min(left / 10),
        }
    }
}

/// Which items must not publish in this batch.
enum Held {
    /// None of them.
    None,
    /// These (they have parked units).
    Items(HashSet<String>),
    /// All of them: the registry could not be read (the reason).
    All(String),
}

fn count_parked(mapped: &[Mapped<'_>]) -> usize {
    mapped
        .iter()
        .filter(|m| matches!(m.outcome, Outcome::Events(_)))
        .map(|m| m.fates.iter().filter(|f| **f == Fate::Park).count())
        .sum()
}

/// Settles every unit left in an item's queue behind the one at its head:
/// parked behind a parked unit, or left open behind a deferred record (Lambda
/// delivers them all again).
fn settle_rest(mapped: &mut [Mapped<'_>], queue: &mut VecDeque<Queued>, why: &str) {
    let deferred = matches!(queue.front(), Some(Queued::Defer));
    for unit in queue.drain(..) {
        match unit {
            Queued::Event(r, e) if mapped[r].fates[e] == Fate::Open => {
                mapped[r].fates[e] = if deferred { Fate::Open } else { Fate::Park };
                mapped[r].reasons[e] = why.to_owned();
            }
            Queued::Raw(r) if deferred => mapped[r].fates[0] = Fate::Open,
            _ => {}
        }
    }
}

fn envelope(m: &Mapped<'_>, unit: usize, parked_at: &str, registered: bool) -> Envelope {
    let table = match &m.incoming.decoded {
        Ok(record) => Some(record.table.clone()),
        Err(_) => m
            .item
            .as_deref()
            .map(|i| crate::park::registry::item_table(i).to_owned()),
    };
    let mut envelope = Envelope {
        version: ENVELOPE_VERSION,
        kind: ParcelKind::Record,
        table,
        sequence_number: m.incoming.sequence_number.clone(),
        item: m.item.clone(),
        event_type: None,
        index: None,
        eid: None,
        key: None,
        body: None,
        record: None,
        registered,
        attempts: m.attempts[unit],
        last_error: m.reasons[unit].clone(),
        parked_at: parked_at.to_owned(),
    };
    match &m.outcome {
        Outcome::Events(events) => {
            let event = &events[unit];
            envelope.kind = ParcelKind::Event;
            envelope.event_type = Some(event.event_type.clone());
            envelope.index = Some(unit as u32);
            envelope.key = event.key.clone();
            envelope.eid = serde_json::from_str::<Value>(event.body.get())
                .ok()
                .and_then(|b| {
                    b.pointer("/metadata/eid")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                });
            envelope.body = Some(event.body.clone());
        }
        Outcome::Park | Outcome::Defer => {
            envelope.record = Some(m.incoming.raw.clone());
        }
    }
    envelope
}

/// Names the first record that is neither published nor parked. Lambda
/// delivers it and everything after it again.
fn respond(
    mapped: &[Mapped<'_>],
    stats: &mut InvocationStats,
) -> Result<BatchResponse, BatchError> {
    let open = |m: &&Mapped<'_>| m.fates.contains(&Fate::Open);
    stats.records_failed = mapped.iter().filter(open).count();
    let Some(first) = mapped.iter().position(|m| open(&m)) else {
        return Ok(BatchResponse {
            batch_item_failures: vec![],
        });
    };
    // A record without a sequence number cannot be named: name the nearest
    // record before it instead (Lambda delivers from there, it included);
    // with none before it, only failing the whole invocation is safe.
    let identifier = mapped[..=first]
        .iter()
        .rev()
        .find_map(|m| m.incoming.sequence_number.clone())
        .ok_or(BatchError::NoCheckpoint {
            record: first,
            failed: stats.records_failed,
        })?;
    tracing::error!(
        checkpoint = identifier.as_str(),
        records_failed = stats.records_failed,
        "reporting records back to Lambda to be delivered again"
    );
    Ok(BatchResponse {
        batch_item_failures: vec![BatchItemFailure {
            item_identifier: identifier,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_record::dynamodb::DecodeError;

    fn incoming(index: usize, seq: Option<&str>) -> Incoming {
        Incoming {
            index,
            sequence_number: seq.map(str::to_owned),
            item: None,
            raw: RawValue::from_string("{}".into()).unwrap(),
            decoded: Err(DecodeError::MissingField("dynamodb")),
        }
    }

    fn mapped(incoming: &Incoming, fate: Fate) -> Mapped<'_> {
        Mapped {
            incoming,
            item: None,
            outcome: Outcome::Park,
            fates: vec![fate],
            attempts: vec![0],
            reasons: vec!["parked raw".into()],
        }
    }

    fn checkpoint(batch: &[(Option<&str>, Fate)]) -> Result<Vec<String>, BatchError> {
        let incoming: Vec<Incoming> = batch
            .iter()
            .enumerate()
            .map(|(i, (seq, _))| incoming(i, *seq))
            .collect();
        let mapped: Vec<Mapped<'_>> = incoming
            .iter()
            .zip(batch)
            .map(|(inc, (_, fate))| mapped(inc, *fate))
            .collect();
        let response = respond(&mapped, &mut InvocationStats::default())?;
        Ok(response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect())
    }

    fn stages_after(deadline_s: f64, margin_s: f64, timeout_s: f64) -> [f64; 3] {
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(deadline_s);
        let stages = Stages::new(
            started,
            deadline,
            Duration::from_secs_f64(margin_s),
            Duration::from_secs_f64(timeout_s),
        );
        [
            stages.transform_until,
            stages.publish_until,
            stages.park_until,
        ]
        .map(|at| (at - started).as_secs_f64())
    }

    #[test]
    fn stages_stop_in_time_for_the_next_one() {
        // A 120 s Lambda, 3 s margin, 5 s requests.
        assert_eq!(stages_after(120.0, 3.0, 5.0), [112.0, 117.0, 119.7]);
        // AWS's default 3 s timeout against the default 3 s margin: the
        // margin shrinks to a third, so publishing still gets time.
        let [transform, publish, park] = stages_after(3.0, 3.0, 5.0);
        assert!((publish - 2.0).abs() < 1e-9, "{publish}");
        assert!((transform - 1.5).abs() < 1e-9, "{transform}");
        assert!((park - 2.7).abs() < 1e-9, "{park}");
    }

    #[test]
    fn a_deadline_passed_on_arrival_is_taken_as_unknown() {
        let started = Instant::now();
        let stages = Stages::new(
            started,
            started - Duration::from_secs(5),
            Duration::from_secs(3),
            Duration::from_secs(5),
        );
        assert_eq!(stages.publish_until - started, Duration::from_secs(57));
        assert!(stages.transform_until > started + Duration::from_secs(50));
    }

    #[test]
    fn full_success_is_an_empty_list() {
        let batch = [(Some("1"), Fate::Published), (Some("2"), Fate::Parked)];
        assert_eq!(checkpoint(&batch).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn the_first_open_record_is_the_checkpoint() {
        let batch = [
            (Some("1"), Fate::Published),
            (Some("2"), Fate::Open),
            (Some("3"), Fate::Parked),
            (Some("4"), Fate::Open),
        ];
        assert_eq!(checkpoint(&batch).unwrap(), ["2"]);
    }

    #[test]
    fn an_open_record_without_sequence_number_names_the_one_before() {
        let batch = [
            (Some("1"), Fate::Published),
            (None, Fate::Open),
            (Some("3"), Fate::Published),
        ];
        assert_eq!(checkpoint(&batch).unwrap(), ["1"]);
    }

    #[test]
    fn nothing_to_name_fails_the_whole_batch() {
        let batch = [(None, Fate::Open), (Some("2"), Fate::Published)];
        assert!(matches!(
            checkpoint(&batch),
            Err(BatchError::NoCheckpoint {
                record: 0,
                failed: 1
            })
        ));
    }
}
