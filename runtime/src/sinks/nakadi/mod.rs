//! The Nakadi sink: events go to `POST /event-types/{name}/events`, one
//! request per event type and batch (Nakadi's rule), with retries; what
//! Nakadi would refuse (an invalid event type name, an event over its size
//! limit) is never sent but parked with the reason.
//!
//! - `config`: `[bus]`, [`NakadiConfig`];
//! - `client`: the HTTP requests, the token, the path segment;
//! - `classify`: what an answer means for each event.

mod classify;
mod client;
mod config;

use std::time::{Duration, Instant};

use serde_json::value::RawValue;

pub use classify::{classify, BatchResult, ItemStatus};
pub use client::{path_segment, NakadiClient};
pub use config::{NakadiConfig, RawNakadi};

use super::{Backoff, Delivery, Outbound, PublishStats, RetryConfig, Sink};

/// Publishes to Nakadi with retries, exponential backoff and full jitter.
pub struct NakadiSink {
    name: String,
    client: NakadiClient,
    retry: RetryConfig,
    batch_max_events: usize,
    batch_max_bytes: usize,
    max_event_bytes: usize,
}

impl NakadiSink {
    /// A sink for the configured bus.
    pub fn new(bus: &NakadiConfig, retry: RetryConfig) -> Result<Self, reqwest::Error> {
        Ok(NakadiSink {
            name: super::DEFAULT_SINK.to_owned(),
            client: NakadiClient::new(bus)?,
            retry,
            batch_max_events: bus.batch_max_events,
            batch_max_bytes: bus.batch_max_bytes,
            max_event_bytes: bus.max_event_bytes,
        })
    }

    /// The sink under another name than [`super::DEFAULT_SINK`] (a
    /// `[sinks.<name>]` of kind `nakadi`).
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// Groups event indices per event type (in order of first appearance)
    /// and cuts each group to the batch limits.
    fn chunks(&self, events: &[Outbound<'_>], sendable: &[bool]) -> Vec<Vec<usize>> {
        let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, event) in events.iter().enumerate() {
            if !sendable[i] {
                continue;
            }
            match groups.iter_mut().find(|(t, _)| *t == event.event_type) {
                Some((_, group)) => group.push(i),
                None => groups.push((event.event_type, vec![i])),
            }
        }
        let mut chunks = Vec::new();
        for (_, group) in groups {
            let mut chunk = Vec::new();
            let mut bytes = 0;
            for i in group {
                let size = events[i].body.get().len() + 1;
                if !chunk.is_empty()
                    && (chunk.len() >= self.batch_max_events || bytes + size > self.batch_max_bytes)
                {
                    chunks.push(std::mem::take(&mut chunk));
                    bytes = 0;
                }
                chunk.push(i);
                bytes += size;
            }
            if !chunk.is_empty() {
                chunks.push(chunk);
            }
        }
        chunks
    }

    async fn publish_chunk(
        &self,
        events: &[Outbound<'_>],
        chunk: &[usize],
        until: Instant,
        flow_id: &str,
        stats: &mut PublishStats,
        deliveries: &mut [Option<Delivery>],
    ) {
        let mut backoff = Backoff::new(self.retry);
        let event_type = events[chunk[0]].event_type;
        let mut pending: Vec<usize> = chunk.to_vec();
        let mut attempts = vec![0u32; events.len()];
        let mut last_error = String::new();
        let mut failed_rounds = 0;
        let mut rounds = 0;
        let mut refused_token = false;
        while !pending.is_empty() {
            let now = Instant::now();
            let Some(left) = until.checked_duration_since(now).filter(|d| !d.is_zero()) else {
                let reason = if last_error.is_empty() {
                    "the invocation deadline was too near to publish".to_owned()
                } else {
                    format!("the invocation deadline was near; last error: {last_error}")
                };
                for &i in &pending {
                    deliveries[i] = Some(Delivery::Park {
                        attempts: attempts[i],
                        reason: reason.clone(),
                    });
                }
                return;
            };
            let timeout = self.client.timeout().min(left);
            let bodies: Vec<&RawValue> = pending.iter().map(|&i| events[i].body).collect();
            let flow = format!("{flow_id}-{rounds}");
            let started = Instant::now();
            let result = self
                .client
                .publish(event_type, &bodies, &flow, timeout)
                .await;
            stats.attempts += 1;
            stats.latencies.push(started.elapsed());
            rounds += 1;
            for &i in &pending {
                attempts[i] += 1;
            }
            let mut still = Vec::new();
            let mut any_failure = false;
            let unauthorized = matches!(result, BatchResult::Unauthorized(_));
            match result {
                BatchResult::Items(statuses) => {
                    for (&i, status) in pending.iter().zip(statuses) {
                        match status {
                            ItemStatus::Submitted => deliveries[i] = Some(Delivery::Published),
                            ItemStatus::Resend => still.push(i),
                            ItemStatus::Failed {
                                detail,
                                retriable: false,
                            } => {
                                deliveries[i] = Some(Delivery::Park {
                                    attempts: attempts[i],
                                    reason: format!("rejected by the bus: {detail}"),
                                })
                            }
                            ItemStatus::Failed {
                                detail,
                                retriable: true,
                            } => {
                                any_failure = true;
                                last_error = detail;
                                still.push(i);
                            }
                        }
                    }
                }
                BatchResult::Final(reason) => {
                    tracing::warn!(
                        event_type,
                        events = pending.len(),
                        "the bus refused the request: {reason}"
                    );
                    for &i in &pending {
                        deliveries[i] = Some(Delivery::Park {
                            attempts: attempts[i],
                            reason: format!("refused by the bus, not retried: {reason}"),
                        });
                    }
                    return;
                }
                BatchResult::Unauthorized(reason) if refused_token => {
                    tracing::error!(
                        event_type,
                        "the bus refused the token again, after the token file was read anew: {reason}"
                    );
                    for &i in &pending {
                        deliveries[i] = Some(Delivery::Park {
                            attempts: attempts[i],
                            reason: format!(
                                "the bus refused the token twice ({reason}); check bus.token_file"
                            ),
                        });
                    }
                    return;
                }
                BatchResult::RetryAll(reason) | BatchResult::Unauthorized(reason) => {
                    refused_token = unauthorized;
                    if unauthorized {
                        // Read the token file anew for the next try.
                        self.client.forget_token();
                    }
                    tracing::warn!(
                        event_type,
                        events = pending.len(),
                        attempt = failed_rounds + 1,
                        "publishing failed: {reason}"
                    );
                    any_failure = true;
                    last_error = reason;
                    still = pending.clone();
                }
            }
            pending = still;
            if pending.is_empty() {
                return;
            }
            if any_failure {
                failed_rounds += 1;
            }
            // Resending aborted events needs no wait, but is bounded too.
            let exhausted = !backoff.may_retry(failed_rounds)
                || rounds >= self.retry.max_attempts.saturating_mul(2);
            if exhausted {
                for &i in &pending {
                    deliveries[i] = Some(Delivery::Park {
                        attempts: attempts[i],
                        reason: format!("gave up after {} attempts: {last_error}", attempts[i]),
                    });
                }
                return;
            }
            if any_failure {
                let delay = backoff.delay(failed_rounds);
                if Instant::now() + delay < until {
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl Sink for NakadiSink {
    fn name(&self) -> &str {
        &self.name
    }

    /// How long before the invocation deadline publishing stops.
    fn deadline_margin(&self) -> Duration {
        Duration::from_millis(self.retry.deadline_margin_ms)
    }

    /// The timeout of one publishing request.
    fn request_timeout(&self) -> Duration {
        self.client.timeout()
    }

    /// Publishes `events`, giving up at `until` (the caller keeps its own
    /// margin after it to park the rest). Returns one [`Delivery`] per
    /// event, in order.
    async fn publish(
        &self,
        events: &[Outbound<'_>],
        until: Instant,
        flow_id: &str,
        stats: &mut PublishStats,
    ) -> Vec<Delivery> {
        let mut deliveries: Vec<Option<Delivery>> = vec![None; events.len()];
        // What the bus would refuse is never sent: parked with the reason.
        for (i, event) in events.iter().enumerate() {
            // Parked envelopes come back from a queue: checked again here.
            let refusal = if let Err(why) = crate::transform::check_event_type(event.event_type) {
                Some(format!(
                    "the event type {:?} {why}",
                    event.event_type.chars().take(100).collect::<String>()
                ))
            } else if event.body.get().len() > self.max_event_bytes {
                Some(format!(
                    "the event is {} bytes, over the bus's limit of {} bytes per event",
                    event.body.get().len(),
                    self.max_event_bytes
                ))
            } else {
                None
            };
            if let Some(reason) = refusal {
                deliveries[i] = Some(Delivery::Park {
                    attempts: 0,
                    reason,
                });
            }
        }
        let sendable: Vec<bool> = deliveries.iter().map(Option::is_none).collect();
        for chunk in self.chunks(events, &sendable) {
            self.publish_chunk(events, &chunk, until, flow_id, stats, &mut deliveries)
                .await;
        }
        deliveries
            .into_iter()
            .map(|d| {
                d.unwrap_or(Delivery::Park {
                    attempts: 0,
                    reason: "not attempted".into(),
                })
            })
            .collect()
    }
}
