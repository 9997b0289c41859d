//! The transform stage: each decoded record through its table's transform
//! (route by table), within the time and the invocation's output budget.
//! Records are mapped on `[invocation] transform_threads` threads at once;
//! the budget and the deadline are then applied in stream order, exactly as
//! if one thread had mapped them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Instant;

use super::{Fate, InvocationStats, Mapped, Outcome, Relay};
use crate::pipeline::intake::Incoming;
use crate::transform::{Event, TransformError, TransformInstance};

/// What the mapping threads made of one record, before the output budget
/// and the deadline are applied in stream order.
enum Mapping {
    /// Not taken: the deadline came, or the output budget ran out, first.
    /// The records not taken are always the last ones of the batch.
    NotTaken,
    /// The record did not decode; there is nothing to map.
    Undecodable,
    /// No transform is configured for the record's table.
    NoRoute,
    /// The transform's answer.
    Mapped(Result<Vec<Event>, TransformError>),
}

/// Why the mapping threads stopped taking records.
const GOING: u8 = 0;
const DEADLINE: u8 = 1;
const BUDGET: u8 = 2;

/// What the mapping threads share: the next record to take, the output so
/// far, and why they stopped.
struct Shared<'b> {
    batch: &'b [Incoming],
    until: Instant,
    budget: usize,
    next: AtomicUsize,
    output_bytes: AtomicUsize,
    stopped: AtomicU8,
}

impl Shared<'_> {
    /// Takes records in stream order and maps each with this thread's
    /// instances, until the batch, the time or the output budget runs out.
    fn work(&self, instances: &mut HashMap<&str, &mut TransformInstance>) -> Vec<(usize, Mapping)> {
        let mut done = Vec::new();
        loop {
            if self.stopped.load(Ordering::Acquire) != GOING {
                break;
            }
            if Instant::now() >= self.until {
                let _ = self.stopped.compare_exchange(
                    GOING,
                    DEADLINE,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
                break;
            }
            if self.output_bytes.load(Ordering::Acquire) > self.budget {
                let _ = self.stopped.compare_exchange(
                    GOING,
                    BUDGET,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
                break;
            }
            let index = self.next.fetch_add(1, Ordering::AcqRel);
            let Some(incoming) = self.batch.get(index) else {
                break;
            };
            let mapping = match &incoming.decoded {
                Err(_) => Mapping::Undecodable,
                Ok(record) => match instances.get_mut(record.table.as_str()) {
                    None => Mapping::NoRoute,
                    Some(instance) => {
                        let answer = instance.transform(record);
                        if let Ok(events) = &answer {
                            let bytes: usize = events.iter().map(|e| e.body.get().len()).sum();
                            self.output_bytes.fetch_add(bytes, Ordering::AcqRel);
                        }
                        Mapping::Mapped(answer)
                    }
                },
            };
            done.push((index, mapping));
        }
        done
    }
}

impl Relay {
    /// Maps every record it can: on the invocation's thread and, with
    /// `transform_threads` above 1, on more threads at once, each with its
    /// own instances. Records are taken in stream order, so those not taken
    /// (deadline, output budget) are the batch's last ones.
    fn map_records(&mut self, batch: &[Incoming], until: Instant) -> (Vec<Mapping>, u8) {
        let shared = Shared {
            batch,
            until,
            budget: self.invocation.max_output_bytes,
            next: AtomicUsize::new(0),
            output_bytes: AtomicUsize::new(0),
            stopped: AtomicU8::new(GOING),
        };
        let threads = 1 + self
            .routes
            .values()
            .map(|route| route.siblings.len())
            .min()
            .unwrap_or(0)
            .min(batch.len().saturating_sub(1));
        let mut pools: Vec<HashMap<&str, &mut TransformInstance>> =
            (0..threads).map(|_| HashMap::new()).collect();
        for (table, route) in self.routes.iter_mut() {
            let instances = std::iter::once(&mut route.instance).chain(route.siblings.iter_mut());
            for (pool, instance) in pools.iter_mut().zip(instances) {
                pool.insert(table.as_str(), instance);
            }
        }
        let mut pools = pools.into_iter();
        let mut own = pools.next().unwrap_or_default();
        let done: Vec<(usize, Mapping)> = if threads == 1 {
            shared.work(&mut own)
        } else {
            let span = tracing::Span::current();
            std::thread::scope(|scope| {
                let helpers: Vec<_> = pools
                    .map(|mut pool| {
                        let (shared, span) = (&shared, span.clone());
                        scope.spawn(move || span.in_scope(|| shared.work(&mut pool)))
                    })
                    .collect();
                let mut done = shared.work(&mut own);
                for helper in helpers {
                    match helper.join() {
                        Ok(more) => done.extend(more),
                        // A panic in the host is a bug; its records stay
                        // untaken, so they are reported back, never lost.
                        Err(_) => tracing::error!("a mapping thread panicked"),
                    }
                }
                done
            })
        };
        let mut mappings: Vec<Mapping> = (0..batch.len()).map(|_| Mapping::NotTaken).collect();
        for (index, mapping) in done {
            mappings[index] = mapping;
        }
        (mappings, shared.stopped.load(Ordering::Acquire))
    }

    /// Decode results in, events (or a reason to park the record) out. Stops
    /// at `until`, or once the invocation's output budget is used up: the
    /// rest of the batch is deferred to Lambda's next delivery.
    pub(super) fn transform<'a>(
        &mut self,
        batch: &'a [Incoming],
        until: Instant,
        stats: &mut InvocationStats,
    ) -> Vec<Mapped<'a>> {
        let budget = self.invocation.max_output_bytes;
        let (mappings, stopped) = self.map_records(batch, until);
        let mut output_bytes = 0usize;
        let mut stop: Option<String> = None;
        let mut mapped = Vec::with_capacity(batch.len());
        for (incoming, mapping) in batch.iter().zip(mappings) {
            let item = incoming.item.clone();
            if stop.is_none() && matches!(mapping, Mapping::NotTaken) {
                stop = Some(match stopped {
                    BUDGET => format!(
                        "the invocation's output budget of {budget} bytes was used up; \
                         left for Lambda to deliver again"
                    ),
                    _ => {
                        "the invocation deadline was near; left for Lambda to deliver again".into()
                    }
                });
            }
            let (outcome, reason) = match (&stop, mapping, &incoming.decoded) {
                (Some(why), _, _) => (Outcome::Defer, why.clone()),
                (None, Mapping::Undecodable, Err(e)) => {
                    stats.decode_errors += 1;
                    tracing::warn!(record = incoming.label(), "cannot decode the record: {e}");
                    (Outcome::Park, format!("cannot decode the record: {e}"))
                }
                (None, Mapping::NoRoute, Ok(record)) => {
                    stats.unknown_table += 1;
                    tracing::warn!(
                        record = incoming.label(),
                        table = record.table,
                        "no transform is configured for the table"
                    );
                    let reason = format!("no transform is configured for table {:?}", record.table);
                    (Outcome::Park, reason)
                }
                (None, Mapping::Mapped(Err(e)), Ok(record)) => {
                    stats.transform_errors += 1;
                    tracing::warn!(
                        record = incoming.label(),
                        table = record.table,
                        error = e.kind.label(),
                        "{e}"
                    );
                    (Outcome::Park, e.to_string())
                }
                (None, Mapping::Mapped(Ok(events)), _) => {
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
                (None, _, _) => unreachable!("a mapping always matches its record's decode result"),
            };
            let (outcome, targets) = match (outcome, &incoming.decoded) {
                (Outcome::Events(events), Ok(record)) => {
                    let (units, targets) =
                        super::fan_out(events, &self.routes[record.table.as_str()].sinks);
                    (Outcome::Events(units), targets)
                }
                (outcome, _) => (outcome, Vec::new()),
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
                targets,
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
}
