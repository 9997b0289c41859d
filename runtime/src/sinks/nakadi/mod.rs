//! The Nakadi sink: events go to `POST /event-types/{name}/events`, one
//! request per event type and batch (Nakadi's rule), with retries; what
//! Nakadi would refuse (an invalid event type name, an event over its size
//! limit) is never sent but parked with the reason.
//!
//! - `config`: `[bus]`, [`NakadiConfig`];
//! - `client`: the HTTP requests, the token, the path segment;
//! - `classify`: what an answer means for each event.
//!
//! The rounds of retries are the shared driver's ([`super::rounds`]).

mod classify;
mod client;
mod config;

use std::time::{Duration, Instant};

use serde_json::value::RawValue;

pub use classify::classify;
pub use client::{path_segment, NakadiClient};
pub use config::{NakadiConfig, RawNakadi};

use super::rounds::{cut, settle, BatchResult, Limits, Rounds};
use super::{Delivery, Outbound, PublishStats, RetryConfig, Sink};

/// Publishes to Nakadi with retries, exponential backoff and full jitter.
pub struct NakadiSink {
    name: String,
    client: NakadiClient,
    rounds: Rounds,
    limits: Limits,
    max_event_bytes: usize,
}

impl NakadiSink {
    /// A sink for the configured bus.
    pub fn new(bus: &NakadiConfig, retry: RetryConfig) -> Result<Self, reqwest::Error> {
        let client = NakadiClient::new(bus)?;
        Ok(NakadiSink {
            name: super::DEFAULT_SINK.to_owned(),
            rounds: Rounds::new(retry, client.timeout(), "the bus").token_setting("bus.token_file"),
            client,
            limits: Limits {
                max_events: bus.batch_max_events,
                max_bytes: bus.batch_max_bytes,
            },
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
    fn requests(&self, events: &[Outbound<'_>], sendable: &[bool]) -> Vec<Vec<usize>> {
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
        groups
            .into_iter()
            .flat_map(|(_, group)| {
                cut(
                    &group,
                    self.limits,
                    |i| events[i].body.get().len() + 1,
                    None,
                )
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl Sink for NakadiSink {
    fn name(&self) -> &str {
        &self.name
    }

    /// How long before the invocation deadline publishing stops.
    fn deadline_margin(&self) -> Duration {
        Duration::from_millis(self.rounds.retry().deadline_margin_ms)
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
        let requests = self.requests(events, &sendable);
        let client = &self.client;
        self.rounds
            .run(
                requests,
                |_| None,
                until,
                stats,
                &mut deliveries,
                |items, timeout, round| {
                    let event_type = events[items[0]].event_type;
                    let bodies: Vec<&RawValue> = items.iter().map(|&i| events[i].body).collect();
                    let flow = format!("{flow_id}-{round}");
                    async move {
                        let result = client.publish(event_type, &bodies, &flow, timeout).await;
                        if matches!(result, BatchResult::Unauthorized(_)) {
                            // Read the token file anew for the next try.
                            client.forget_token();
                        }
                        result
                    }
                },
            )
            .await;
        settle(deliveries)
    }
}
