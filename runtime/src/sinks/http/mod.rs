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

/// The sink against a local endpoint that answers from a script.
#[cfg(test)]
mod wire_tests {
    use std::sync::{Arc, Mutex};

    use serde_json::value::RawValue;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// One request as the endpoint saw it: head (lowercased) and body.
    type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

    /// Serves `answers` (status, extra header line) in turn, then 200.
    async fn endpoint(answers: Vec<(u16, &'static str)>) -> (String, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/ingest", listener.local_addr().unwrap());
        let seen: Seen = Arc::default();
        let log = seen.clone();
        tokio::spawn(async move {
            let mut answers = answers.into_iter();
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                let (head, body) = loop {
                    let n = socket.read(&mut buf).await.unwrap();
                    data.extend_from_slice(&buf[..n]);
                    if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        while data.len() < end + 4 + length {
                            let n = socket.read(&mut buf).await.unwrap();
                            data.extend_from_slice(&buf[..n]);
                        }
                        break (head, data[end + 4..end + 4 + length].to_vec());
                    }
                };
                log.lock().unwrap().push((head, body));
                let (status, header) = answers.next().unwrap_or((200, ""));
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n{header}\r\n"
                );
                socket.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        (url, seen)
    }

    fn config(url: &str, extra: &str) -> HttpConfig {
        toml::from_str::<RawHttp>(&format!(
            "url = \"{url}\"\nsource = \"/relay/orders\"\n{extra}"
        ))
        .unwrap()
        .validate("sinks.web")
        .unwrap()
    }

    fn retry() -> RetryConfig {
        RetryConfig {
            max_attempts: 3,
            initial_backoff_ms: 1,
            max_backoff_ms: 2,
            deadline_margin_ms: 0,
        }
    }

    #[tokio::test]
    async fn batches_carry_headers_token_and_cloudevents() {
        let (url, seen) = endpoint(vec![]).await;
        let dir = std::env::temp_dir().join(format!("relay-http-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let token = dir.join("token");
        std::fs::write(&token, "tok-1\n").unwrap();
        let config = config(
            &url,
            &format!(
                "token_file = {:?}\nheaders = {{ \"X-Team\" = \"orders\" }}",
                token.display().to_string()
            ),
        );
        let sink = HttpSink::new("web", &config, retry()).unwrap();
        let body = RawValue::from_string(r#"{"metadata":{"eid":"e-1"}}"#.into()).unwrap();
        let events = [Outbound {
            event_type: "order.changed",
            body: &body,
            key: Some("o-1"),
        }];
        let deliveries = sink
            .publish(
                &events,
                Instant::now() + Duration::from_secs(10),
                "f",
                &mut PublishStats::default(),
            )
            .await;
        assert_eq!(deliveries, vec![Delivery::Published]);
        let seen = seen.lock().unwrap();
        let (head, body) = &seen[0];
        assert!(head.starts_with("post /ingest "), "{head}");
        assert!(head.contains("content-type: application/cloudevents-batch+json"));
        assert!(head.contains("x-team: orders"));
        assert!(head.contains("authorization: bearer tok-1"));
        let batch: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(batch[0]["id"], "e-1");
        assert_eq!(batch[0]["type"], "order.changed");
        assert_eq!(batch[0]["partitionkey"], "o-1");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn redirects_are_not_followed_and_401_reads_the_token_again() {
        let (url, seen) = endpoint(vec![
            (307, "location: http://127.0.0.1:9/elsewhere\r\n"),
            (401, ""),
        ])
        .await;
        let sink = HttpSink::new("web", &config(&url, ""), retry()).unwrap();
        let body = RawValue::from_string(r#"{"a":1}"#.into()).unwrap();
        let events = [Outbound {
            event_type: "t",
            body: &body,
            key: None,
        }];
        let mut stats = PublishStats::default();
        let deliveries = sink
            .publish(
                &events,
                Instant::now() + Duration::from_secs(10),
                "f",
                &mut stats,
            )
            .await;
        // 307 (retried, not followed), 401 (retried once), then 200.
        assert_eq!(deliveries, vec![Delivery::Published]);
        assert_eq!(stats.attempts, 3);
        assert!(seen
            .lock()
            .unwrap()
            .iter()
            .all(|(head, _)| head.starts_with("post /ingest ")));

        let (url, _) = endpoint(vec![(401, ""), (401, "")]).await;
        let sink = HttpSink::new("web", &config(&url, ""), retry()).unwrap();
        let deliveries = sink
            .publish(
                &events,
                Instant::now() + Duration::from_secs(10),
                "f",
                &mut stats,
            )
            .await;
        match &deliveries[0] {
            Delivery::Park {
                reason,
                attempts: 2,
            } => {
                assert!(reason.contains("sinks.web.token_file"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn final_answers_park_without_retries() {
        let (url, seen) = endpoint(vec![(422, "")]).await;
        let sink = HttpSink::new("web", &config(&url, ""), retry()).unwrap();
        let body = RawValue::from_string(r#"{"a":1}"#.into()).unwrap();
        let events = [Outbound {
            event_type: "t",
            body: &body,
            key: None,
        }];
        let deliveries = sink
            .publish(
                &events,
                Instant::now() + Duration::from_secs(10),
                "f",
                &mut PublishStats::default(),
            )
            .await;
        assert!(
            matches!(&deliveries[0], Delivery::Park { attempts: 1, reason } if reason.contains("422"))
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
}
