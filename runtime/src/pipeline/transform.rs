//! The transform stage: each decoded record through its table's transform
//! (route by table), within the time and the invocation's output budget.

use std::time::Instant;

use super::{Fate, InvocationStats, Mapped, Outcome, Relay};
use crate::pipeline::intake::Incoming;

impl Relay {
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
}
