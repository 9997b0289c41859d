//! The HTTP sink: CloudEvents 1.0 in structured batch mode. Each request is
//! a `POST` of `application/cloudevents-batch+json`, a JSON array of
//! CloudEvents (see `envelope`); any 2xx acknowledges the whole batch.
//! Redirects are never followed (no acknowledgement, retried); 400, 404,
//! 413 and 422 are final; 401 reads the token file anew once, then is
//! final; anything else is retried.
//!
//! - `config`: the sink's section, [`HttpConfig`];
//! - `envelope`: the CloudEvent of an event;
//! - `client`: the requests, headers and token;
//! - `classify`: what an answer means.

mod classify;
mod client;
mod config;
mod envelope;

use std::time::{Duration, Instant};

pub use classify::classify;
pub use client::HttpClient;
pub use config::{HttpConfig, RawHttp};
pub use envelope::{batch, envelope, BATCH_CONTENT_TYPE};

use super::rounds::{cut, settle, BatchResult, Limits, Rounds};
use super::{Delivery, Outbound, PublishStats, RetryConfig, Sink};

/// Posts CloudEvents batches to one endpoint, with retries.
pub struct HttpSink {
    name: String,
    client: HttpClient,
    source: String,
    rounds: Rounds,
    limits: Limits,
    max_event_bytes: usize,
}

impl HttpSink {
    /// A sink named `name` for `config`.
    pub fn new(
        name: &str,
        config: &HttpConfig,
        retry: RetryConfig,
    ) -> Result<Self, reqwest::Error> {
        Ok(HttpSink {
            name: name.to_owned(),
            client: HttpClient::new(config)?,
            source: config.source.clone(),
            rounds: Rounds::new(retry, config.request_timeout, "the endpoint")
                .token_setting(format!("{}.token_file", config.section)),
            limits: Limits {
                max_events: config.batch_max_events,
                max_bytes: config.batch_max_bytes,
            },
            max_event_bytes: config.max_event_bytes,
        })
    }

    /// The envelopes of `events`, and the requests they go in; what is over
    /// `max_event_bytes` is parked in `deliveries` instead.
    fn plan(
        &self,
        events: &[Outbound<'_>],
        deliveries: &mut [Option<Delivery>],
    ) -> (Vec<String>, Vec<Vec<usize>>) {
        let envelopes: Vec<String> = events.iter().map(|e| envelope(e, &self.source)).collect();
        let mut sendable = Vec::new();
        for (i, envelope) in envelopes.iter().enumerate() {
            if envelope.len() > self.max_event_bytes {
                deliveries[i] = Some(Delivery::Park {
                    attempts: 0,
                    reason: format!(
                        "the CloudEvent is {} bytes, over the limit of {} bytes per event \
                         (max_event_bytes)",
                        envelope.len(),
                        self.max_event_bytes
                    ),
                });
            } else {
                sendable.push(i);
            }
        }
        let requests = cut(&sendable, self.limits, |i| envelopes[i].len() + 1, None);
        (envelopes, requests)
    }
}

#[async_trait::async_trait]
impl Sink for HttpSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deadline_margin(&self) -> Duration {
        Duration::from_millis(self.rounds.retry().deadline_margin_ms)
    }

    fn request_timeout(&self) -> Duration {
        self.rounds.request_timeout()
    }

    async fn publish(
        &self,
        events: &[Outbound<'_>],
        until: Instant,
        _flow_id: &str,
        stats: &mut PublishStats,
    ) -> Vec<Delivery> {
        let mut deliveries: Vec<Option<Delivery>> = vec![None; events.len()];
        let (envelopes, requests) = self.plan(events, &mut deliveries);
        let client = &self.client;
        let envelopes = &envelopes;
        self.rounds
            .run(
                requests,
                |_| None,
                until,
                stats,
                &mut deliveries,
                |items, timeout, _| async move {
                    let payload = batch(items.iter().map(|&i| envelopes[i].as_str()));
                    let result = client.post(payload, items.len(), timeout).await;
                    if matches!(result, BatchResult::Unauthorized(_)) {
                        // Read the token file anew for the next try.
                        client.forget_token();
                    }
                    result
                },
            )
            .await;
        settle(deliveries)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::*;

    fn sink(max_events: usize, max_bytes: usize, max_event_bytes: usize) -> HttpSink {
        let mut config =
            toml::from_str::<RawHttp>("url = \"http://127.0.0.1:9/\"\nsource = \"/relay\"")
                .unwrap()
                .validate("sinks.web")
                .unwrap();
        config.batch_max_events = max_events;
        config.batch_max_bytes = max_bytes;
        config.max_event_bytes = max_event_bytes;
        HttpSink::new("web", &config, RetryConfig::default()).unwrap()
    }

    #[test]
    fn requests_are_cut_to_limits_and_oversize_events_parked() {
        let small = RawValue::from_string(r#"{"a":1}"#.into()).unwrap();
        let big = RawValue::from_string(format!(r#"{{"a":"{}"}}"#, "x".repeat(500))).unwrap();
        let events: Vec<Outbound<'_>> = [&small, &small, &big, &small, &small]
            .into_iter()
            .map(|body| Outbound {
                event_type: "t",
                body,
                key: None,
            })
            .collect();
        let sink = sink(2, 10_000, 400);
        assert_eq!(sink.name(), "web");
        let mut deliveries = vec![None; events.len()];
        let (envelopes, requests) = sink.plan(&events, &mut deliveries);
        assert_eq!(requests, vec![vec![0, 1], vec![3, 4]]);
        match &deliveries[2] {
            Some(Delivery::Park {
                attempts: 0,
                reason,
            }) => {
                assert!(reason.contains("max_event_bytes"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // The byte limit cuts too: each envelope plus its comma.
        let one = envelopes[0].len() + 1;
        let sink = self::sink(100, 2 * one, 400);
        let (_, requests) = sink.plan(&events, &mut vec![None; events.len()]);
        assert_eq!(requests, vec![vec![0, 1], vec![3, 4]]);
        let sink = self::sink(100, 2 * one - 1, 400);
        let (_, requests) = sink.plan(&events, &mut vec![None; events.len()]);
        assert_eq!(requests, vec![vec![0], vec![1], vec![3], vec![4]]);
    }
}
