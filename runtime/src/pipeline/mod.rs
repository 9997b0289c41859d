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

pub mod intake;
pub mod order;
mod park;
mod publish;
mod respond;
mod transform;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

use crate::park::{ParkingLot, Part, Registry, UnitId};
use crate::sinks::{PublishStats, Sink};
use crate::transform::{Event, TransformInstance};
use intake::{Incoming, NotAStreamEvent};

/// Time kept after parking to hand the response to Lambda.
const RESPOND_MARGIN: Duration = Duration::from_millis(300);

/// The partial batch response Lambda expects, in the community's own type
/// (`aws_lambda_events`): `batchItemFailures`, each with an `itemIdentifier`.
pub use aws_lambda_events::event::streams::DynamoDbEventResponse as BatchResponse;

/// One record to deliver again; relay always sets its `item_identifier`.
pub use aws_lambda_events::event::streams::DynamoDbBatchItemFailure as BatchItemFailure;

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

/// A table's route: its transform instance and its sinks.
pub(crate) struct Route {
    /// Where its events go: indices into [`Relay::sinks`], each event to
    /// every one of them (fan-out).
    pub(crate) sinks: Vec<usize>,
    /// The table's instance.
    pub(crate) instance: TransformInstance,
    /// More instances of it, one per extra mapping thread; they share the
    /// first one's log budget.
    pub(crate) siblings: Vec<TransformInstance>,
}

/// The relay: routes, publisher, parking lot and registry, set up once per
/// process.
pub struct Relay {
    pub(crate) routes: BTreeMap<String, Route>,
    /// Every configured sink; a parked event names its sink, so re-drive
    /// can send it back there.
    pub(crate) sinks: Vec<Box<dyn Sink>>,
    pub(crate) lot: Box<dyn ParkingLot>,
    pub(crate) registry: Option<Box<dyn Registry>>,
    pub(crate) invocation: InvocationConfig,
}

/// What becomes of one unit of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
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
pub(crate) enum Outcome {
    /// Its events (one unit each).
    Events(Vec<Event>),
    /// The record itself is parked raw (one unit), for this reason.
    Park,
    /// Left for Lambda to deliver again (one unit that stays open).
    Defer,
}

/// One record after the transform stage.
pub(crate) struct Mapped<'a> {
    incoming: &'a Incoming,
    /// Table and key of the item, for per-item ordering.
    item: Option<String>,
    /// With events: one unit per event and sink of the table (fan-out),
    /// event by event, sinks in the table's order.
    outcome: Outcome,
    /// With events: each unit's sink (an index into [`Relay::sinks`]).
    targets: Vec<usize>,
    fates: Vec<Fate>,
    attempts: Vec<u32>,
    reasons: Vec<String>,
}

impl Mapped<'_> {
    pub(crate) fn unit(&self, u: usize) -> UnitId {
        let (part, content) = match &self.outcome {
            Outcome::Events(events) => (Part::Event(u as u32), events[u].body.get()),
            Outcome::Park | Outcome::Defer => (Part::Record, self.incoming.raw.get()),
        };
        UnitId::new(self.incoming.sequence_number.as_deref(), part, content)
    }
}

/// A unit in an item's queue: which record, and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Queued {
    Event(usize, usize),
    Raw(usize),
    Defer,
}

impl Relay {
    /// A relay from its parts: a transform instance per table with the
    /// sinks it publishes to (indices into `sinks`), the sinks, the parking
    /// lot and (optionally) the parked-items registry.
    ///
    /// # Panics
    /// When a table has no sink, or names one `sinks` does not have.
    pub fn assemble(
        routes: BTreeMap<String, (TransformInstance, Vec<usize>)>,
        sinks: Vec<Box<dyn Sink>>,
        lot: Box<dyn ParkingLot>,
        registry: Option<Box<dyn Registry>>,
        invocation: InvocationConfig,
    ) -> Relay {
        Relay {
            routes: routes
                .into_iter()
                .map(|(table, (instance, table_sinks))| {
                    assert!(
                        !table_sinks.is_empty() && table_sinks.iter().all(|&s| s < sinks.len()),
                        "table {table} routes to sinks {table_sinks:?} of {}",
                        sinks.len()
                    );
                    let siblings = (1..invocation.transform_threads)
                        .map_while(|_| match instance.sibling() {
                            Ok(sibling) => Some(sibling),
                            Err(e) => {
                                tracing::warn!(
                                    table,
                                    "mapping on fewer threads: another instance failed: {e}"
                                );
                                None
                            }
                        })
                        .collect();
                    let route = Route {
                        sinks: table_sinks,
                        instance,
                        siblings,
                    };
                    (table, route)
                })
                .collect(),
            sinks,
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
        let batch = intake::split_on(event, self.invocation.transform_threads)?;
        let mut stats = InvocationStats {
            records_in: batch.len(),
            ..InvocationStats::default()
        };
        let stages = Stages::new(
            started,
            deadline,
            self.deadline_margin(),
            self.request_timeout(),
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
        let response = respond::respond(&mapped, &mut stats)?;
        stats.duration = started.elapsed();
        Ok(BatchOutcome { response, stats })
    }
}

impl Relay {
    /// The widest margin any sink keeps before the deadline.
    pub(crate) fn deadline_margin(&self) -> Duration {
        self.sinks
            .iter()
            .map(|s| s.deadline_margin())
            .max()
            .unwrap_or_default()
    }

    /// The longest request timeout of any sink.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.sinks
            .iter()
            .map(|s| s.request_timeout())
            .max()
            .unwrap_or_default()
    }

    /// The sink an envelope names (`None`: parked before sinks had names,
    /// so by the Nakadi sink).
    pub(crate) fn sink_named(&self, name: Option<&str>) -> Option<usize> {
        let name = name.unwrap_or(crate::sinks::DEFAULT_SINK);
        self.sinks.iter().position(|s| s.name() == name)
    }
}

/// A record's events fanned out to its table's sinks: one unit per event
/// and sink, event by event, so each sink sees the record's events in their
/// order; returns the units and each one's sink.
pub(crate) fn fan_out(events: Vec<Event>, sinks: &[usize]) -> (Vec<Event>, Vec<usize>) {
    match sinks {
        [only] => {
            let targets = vec![*only; events.len()];
            (events, targets)
        }
        _ => {
            let mut units = Vec::with_capacity(events.len() * sinks.len());
            let mut targets = Vec::with_capacity(units.capacity());
            for event in events {
                for &sink in sinks {
                    units.push(event.clone());
                    targets.push(sink);
                }
            }
            (units, targets)
        }
    }
}

/// Budgets of one invocation, across all its records (`[invocation]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InvocationConfig {
    /// Most bytes of event bodies one invocation holds; the records after the
    /// one that would exceed it are left for Lambda to deliver again (the
    /// next invocation starts with a fresh budget). Default 64 MiB.
    pub max_output_bytes: usize,
    /// Threads that map a batch's records, each with its own instance of
    /// every table's transform (per-item order is restored after mapping).
    /// Default: the CPUs the process may use, at most 4 (Lambda gives one
    /// vCPU per 1,769 MB of memory); 1 maps on the invocation's own thread.
    pub transform_threads: usize,
}

impl Default for InvocationConfig {
    fn default() -> Self {
        InvocationConfig {
            max_output_bytes: 64 << 20,
            transform_threads: std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(4),
        }
    }
}

impl InvocationConfig {
    /// Checks the values.
    pub fn validate(self) -> Result<InvocationConfig, crate::validate::Invalid> {
        if self.max_output_bytes == 0 {
            return Err(crate::validate::Invalid::new(
                "invocation.max_output_bytes",
                "must be above zero",
                "[invocation] max_output_bytes = 67108864",
            ));
        }
        if !(1..=64).contains(&self.transform_threads) {
            return Err(crate::validate::Invalid::new(
                "invocation.transform_threads",
                "must be between 1 and 64",
                "[invocation] transform_threads = 2",
            ));
        }
        Ok(self)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
