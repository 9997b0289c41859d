//! The publish stage: send events to the bus in batches per event type,
//! retry what may succeed later, and say what must be parked.

mod nakadi;
mod retry;

use std::time::{Duration, Instant};

use serde_json::value::RawValue;

pub use nakadi::{classify, BatchResult, ItemStatus, NakadiClient};
pub use retry::Backoff;

use crate::config::{BusConfig, RetryConfig};

/// One event to publish.
#[derive(Debug, Clone, Copy)]
pub struct Outbound<'a> {
    /// The event type (Nakadi event type name).
    pub event_type: &'a str,
    /// The event body.
    pub body: &'a RawValue,
    /// The partition/ordering key, if the transform set one.
    pub key: Option<&'a str>,
}

impl<'a> From<&'a crate::transform::Event> for Outbound<'a> {
    fn from(event: &'a crate::transform::Event) -> Self {
        Outbound {
            event_type: &event.event_type,
            body: &event.body,
            key: event.key.as_deref(),
        }
    }
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The bus acknowledged it.
    Published,
    /// It could not be published: park it.
    Park {
        /// Requests that carried it.
        attempts: u32,
        /// The last reason it was not published.
        reason: String,
    },
}

/// Counters of the publish stage for one invocation.
#[derive(Debug, Default, Clone)]
pub struct PublishStats {
    /// Requests sent to the bus.
    pub attempts: u64,
    /// Latency of each request.
    pub latencies: Vec<Duration>,
}

/// Publishes with retries, exponential backoff and full jitter.
pub struct Publisher {
    client: NakadiClient,
    retry: RetryConfig,
    batch_max_events: usize,
    batch_max_bytes: usize,
    max_event_bytes: usize,
}

impl Publisher {
    /// A publisher for the configured bus.
    pub fn new(bus: &BusConfig, retry: RetryConfig) -> anyhow::Result<Self> {
        Ok(Publisher {
            client: NakadiClient::new(bus)?,
            retry,
            batch_max_events: bus.batch_max_events,
            batch_max_bytes: bus.batch_max_bytes,
            max_event_bytes: bus.max_event_bytes,
        })
    }

    /// How long before the invocation deadline publishing stops.
    pub fn deadline_margin(&self) -> Duration {
        Duration::from_millis(self.retry.deadline_margin_ms)
    }

    /// The timeout of one publishing request.
    pub fn request_timeout(&self) -> Duration {
        self.client.timeout()
    }

    /// Publishes `events`, giving up at `until` (the caller keeps its own
    /// margin after it to park the rest). Returns one [`Delivery`] per
    /// event, in order.
    pub async fn publish(
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
                BatchResult::RetryAll(reason) => {
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
