//! The relay pipeline for one Lambda invocation, top to bottom:
//! intake → decode → route → transform → publish → fallback → respond.
//!
//! Every record starts out failed and becomes delivered only when each of its
//! events was acknowledged by the bus or parked in SQS (or the record itself
//! was parked). The response names the first record that is still failed, so
//! Lambda delivers it, and everything after it, again.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use relay_sdk::Record;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::config::Config;
use crate::fallback::{Envelope, Fallback, ParcelKind, ENVELOPE_VERSION};
use crate::intake::{self, Incoming, NotAStreamEvent};
use crate::modules::ModuleStore;
use crate::publish::{Delivery, Outbound, PublishStats, Publisher};
use crate::transform::{Event, TransformEngine, TransformInstance};

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
    /// Events the transforms produced.
    pub events_out: usize,
    /// Events the bus acknowledged.
    pub events_published: usize,
    /// Events parked in SQS.
    pub events_parked: usize,
    /// Raw records parked in SQS.
    pub records_parked: usize,
    /// Records reported back to Lambda (neither published nor parked).
    pub records_failed: usize,
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
            records_parked = self.records_parked,
            records_failed = self.records_failed,
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

/// The relay: routes, publisher and fallback, set up once per process.
pub struct Relay {
    pub(crate) routes: BTreeMap<String, Route>,
    pub(crate) publisher: Publisher,
    pub(crate) fallback: Fallback,
}

/// What became of one record's work.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Settled {
    /// Not yet published nor parked: lost unless Lambda delivers it again.
    Open,
    Published,
    Parked,
}

/// One record after the transform stage.
struct Mapped<'a> {
    incoming: &'a Incoming,
    /// Table and key of the item, for per-item ordering.
    item: Option<String>,
    record: Option<&'a Record>,
    /// The events, or why the record itself must be parked.
    outcome: Result<Vec<Event>, String>,
    /// Per event, or per record when it is parked raw.
    settled: Vec<Settled>,
    attempts: Vec<u32>,
    reasons: Vec<String>,
}

impl Relay {
    /// Loads every table's module (from its file, or from S3 through the
    /// module cache, checked against its pinned sha256), instantiates it
    /// with its settings and sets up the bus and SQS clients.
    pub async fn init(config: &Config, sqs: aws_sdk_sqs::Client) -> anyhow::Result<Relay> {
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
            routes.insert(table.clone(), Route { instance });
        }
        Ok(Relay {
            routes,
            publisher: Publisher::new(&config.bus, config.retry)?,
            fallback: Fallback::new(sqs, config.fallback_queue_url.clone()),
        })
    }

    /// Runs one batch through the pipeline.
    pub async fn handle(
        &mut self,
        event: &RawValue,
        deadline: Instant,
        request_id: &str,
    ) -> Result<BatchOutcome, BatchError> {
        let started = Instant::now();
        let batch = intake::split(event)?;
        let mut stats = InvocationStats {
            records_in: batch.len(),
            ..InvocationStats::default()
        };
        let mut mapped = self.transform(&batch, &mut stats);
        self.publish(&mut mapped, deadline, request_id, &mut stats)
            .await;
        self.park(&mut mapped, &mut stats).await;
        let response = respond(&mapped, &mut stats)?;
        stats.duration = started.elapsed();
        Ok(BatchOutcome { response, stats })
    }

    /// Decode results in, events (or a reason to park the record) out.
    fn transform<'a>(
        &mut self,
        batch: &'a [Incoming],
        stats: &mut InvocationStats,
    ) -> Vec<Mapped<'a>> {
        batch
            .iter()
            .map(|incoming| {
                let (record, item, outcome) = match &incoming.decoded {
                    Err(e) => {
                        stats.decode_errors += 1;
                        tracing::warn!(record = incoming.label(), "cannot decode the record: {e}");
                        (None, None, Err(format!("cannot decode the record: {e}")))
                    }
                    Ok(record) => {
                        let item = Some(format!("{}/{}", record.table, record.keys));
                        let outcome = match self.routes.get_mut(&record.table) {
                            None => {
                                stats.unknown_table += 1;
                                tracing::warn!(
                                    record = incoming.label(),
                                    table = record.table,
                                    "no transform is configured for the table"
                                );
                                Err(format!(
                                    "no transform is configured for table {:?}",
                                    record.table
                                ))
                            }
                            Some(route) => route.instance.transform(record).map_err(|e| {
                                stats.transform_errors += 1;
                                tracing::warn!(
                                    record = incoming.label(),
                                    table = record.table,
                                    error = e.kind.label(),
                                    "{e}"
                                );
                                e.to_string()
                            }),
                        };
                        (Some(record), item, outcome)
                    }
                };
                let reasons = match &outcome {
                    Ok(events) => {
                        stats.events_out += events.len();
                        vec![String::new(); events.len()]
                    }
                    Err(reason) => vec![reason.clone()],
                };
                Mapped {
                    incoming,
                    item,
                    record,
                    outcome,
                    settled: vec![Settled::Open; reasons.len()],
                    attempts: vec![0; reasons.len()],
                    reasons,
                }
            })
            .collect()
    }

    /// Publishes in waves: each wave holds at most one event per item, the
    /// item's next in stream order, so no event overtakes an earlier one of
    /// its item. Once something of an item is parked, the rest of that item
    /// is parked behind it.
    async fn publish(
        &self,
        mapped: &mut [Mapped<'_>],
        deadline: Instant,
        request_id: &str,
        stats: &mut InvocationStats,
    ) {
        // Per item, its units in stream order: (record, event) or (record, None) for a raw park.
        let mut items: Vec<VecDeque<(usize, Option<usize>)>> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (r, m) in mapped.iter().enumerate() {
            let units: Vec<(usize, Option<usize>)> = match &m.outcome {
                Ok(events) => (0..events.len()).map(|e| (r, Some(e))).collect(),
                Err(_) => vec![(r, None)],
            };
            let Some(item) = m.item.as_deref() else {
                continue; // undecodable: parked on its own
            };
            let slot = *index.entry(item.to_owned()).or_insert_with(|| {
                items.push(VecDeque::new());
                items.len() - 1
            });
            items[slot].extend(units);
        }
        let mut wave_number = 0;
        loop {
            let mut wave: Vec<(usize, usize)> = Vec::new();
            for queue in items.iter_mut() {
                match queue.front() {
                    Some(&(r, Some(e))) => {
                        queue.pop_front();
                        wave.push((r, e));
                    }
                    Some(&(_, None)) => park_rest(mapped, queue, "an earlier record of the same item could not be transformed and was parked"),
                    None => {}
                }
            }
            if wave.is_empty() {
                return;
            }
            let outbound: Vec<Outbound<'_>> = wave
                .iter()
                .map(|&(r, e)| {
                    let event = &mapped[r].outcome.as_ref().expect("events")[e];
                    Outbound {
                        event_type: &event.event_type,
                        body: &event.body,
                    }
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
                        mapped[r].settled[e] = Settled::Published;
                        stats.events_published += 1;
                    }
                    Delivery::Park { attempts, reason } => {
                        mapped[r].attempts[e] = attempts;
                        mapped[r].reasons[e] = reason;
                        blocked.push(mapped[r].item.clone());
                    }
                }
            }
            for item in blocked.into_iter().flatten() {
                let slot = index[item.as_str()];
                park_rest(
                    mapped,
                    &mut items[slot],
                    "an earlier event of the same item could not be published and was parked",
                );
            }
        }
    }

    /// Parks in SQS everything that was not published.
    async fn park(&self, mapped: &mut [Mapped<'_>], stats: &mut InvocationStats) {
        let parked_at = relay_sdk::format_rfc3339_millis(crate::unix_ms());
        let mut envelopes = Vec::new();
        let mut places = Vec::new();
        for (r, m) in mapped.iter().enumerate() {
            for u in 0..m.settled.len() {
                if m.settled[u] != Settled::Open {
                    continue;
                }
                envelopes.push(envelope(m, u, &parked_at));
                places.push((r, u));
            }
        }
        if envelopes.is_empty() {
            return;
        }
        let results = self.fallback.park(&envelopes).await;
        for ((r, u), result) in places.into_iter().zip(results) {
            let m = &mut mapped[r];
            match result {
                Ok(()) => {
                    m.settled[u] = Settled::Parked;
                    if m.outcome.is_ok() {
                        stats.events_parked += 1;
                    } else {
                        stats.records_parked += 1;
                    }
                    tracing::warn!(
                        record = m.incoming.label(),
                        reason = m.reasons[u].as_str(),
                        "parked in the fallback queue"
                    );
                }
                Err(e) => tracing::error!(
                    record = m.incoming.label(),
                    reason = m.reasons[u].as_str(),
                    "could neither publish nor park; Lambda will deliver the record again: {e}"
                ),
            }
        }
    }
}

/// Marks every unit left in an item's queue to be parked.
fn park_rest(mapped: &mut [Mapped<'_>], queue: &mut VecDeque<(usize, Option<usize>)>, why: &str) {
    for (r, e) in queue.drain(..) {
        if let Some(e) = e {
            mapped[r].reasons[e] = why.to_owned();
        }
        // Raw parks already carry their own reason.
    }
}

fn envelope(m: &Mapped<'_>, unit: usize, parked_at: &str) -> Envelope {
    let record = m.record;
    let mut envelope = Envelope {
        version: ENVELOPE_VERSION,
        kind: ParcelKind::Record,
        table: record.map(|r| r.table.clone()),
        sequence_number: m.incoming.sequence_number.clone(),
        item: m.item.clone(),
        event_type: None,
        index: None,
        eid: None,
        key: None,
        body: None,
        record: None,
        attempts: m.attempts[unit],
        last_error: m.reasons[unit].clone(),
        parked_at: parked_at.to_owned(),
    };
    match &m.outcome {
        Ok(events) => {
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
        Err(_) => {
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
    stats.records_failed = mapped
        .iter()
        .filter(|m| m.settled.contains(&Settled::Open))
        .count();
    let Some(first) = mapped
        .iter()
        .position(|m| m.settled.contains(&Settled::Open))
    else {
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
    use relay_sdk::dynamodb::DecodeError;

    fn incoming(index: usize, seq: Option<&str>) -> Incoming {
        Incoming {
            index,
            sequence_number: seq.map(str::to_owned),
            raw: RawValue::from_string("{}".into()).unwrap(),
            decoded: Err(DecodeError::MissingField("dynamodb")),
        }
    }

    fn mapped(incoming: &Incoming, settled: Settled) -> Mapped<'_> {
        Mapped {
            incoming,
            item: None,
            record: None,
            outcome: Err("parked raw".into()),
            settled: vec![settled],
            attempts: vec![0],
            reasons: vec!["parked raw".into()],
        }
    }

    fn checkpoint(batch: &[(Option<&str>, Settled)]) -> Result<Vec<String>, BatchError> {
        let incoming: Vec<Incoming> = batch
            .iter()
            .enumerate()
            .map(|(i, (seq, _))| incoming(i, *seq))
            .collect();
        let mapped: Vec<Mapped<'_>> = incoming
            .iter()
            .zip(batch)
            .map(|(inc, (_, settled))| mapped(inc, settled.clone()))
            .collect();
        let response = respond(&mapped, &mut InvocationStats::default())?;
        Ok(response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect())
    }

    #[test]
    fn full_success_is_an_empty_list() {
        let batch = [
            (Some("1"), Settled::Published),
            (Some("2"), Settled::Parked),
        ];
        assert_eq!(checkpoint(&batch).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn the_first_open_record_is_the_checkpoint() {
        let batch = [
            (Some("1"), Settled::Published),
            (Some("2"), Settled::Open),
            (Some("3"), Settled::Parked),
            (Some("4"), Settled::Open),
        ];
        assert_eq!(checkpoint(&batch).unwrap(), ["2"]);
    }

    #[test]
    fn an_open_record_without_sequence_number_names_the_one_before() {
        let batch = [
            (Some("1"), Settled::Published),
            (None, Settled::Open),
            (Some("3"), Settled::Published),
        ];
        assert_eq!(checkpoint(&batch).unwrap(), ["1"]);
    }

    #[test]
    fn nothing_to_name_fails_the_whole_batch() {
        let batch = [(None, Settled::Open), (Some("2"), Settled::Published)];
        assert!(matches!(
            checkpoint(&batch),
            Err(BatchError::NoCheckpoint {
                record: 0,
                failed: 1
            })
        ));
    }
}
