//! The EventBridge sink: events go to `PutEvents` as entries with
//! `Source` = the configured source, `DetailType` = the event type,
//! `Detail` = the body and `EventBusName` = the configured bus.
//!
//! Limits (see `config`): 10 entries per request; the entries' sizes,
//! counted as EventBridge does ([`entry_size`]), total at most
//! `batch_max_bytes`. An entry over that on its own, or whose body is not
//! a JSON object, is never sent but parked with the reason.
//!
//! - `config`: the sink's section, [`EventBridgeConfig`];
//! - `classify`: what the per-entry results mean.
//!
//! Whole-request errors are read by [`crate::sinks::aws_errors`].

mod classify;
mod config;

use std::time::{Duration, Instant};

use aws_sdk_eventbridge::types::PutEventsRequestEntry;

pub use classify::classify;
pub use config::{
    EventBridgeConfig, RawEventBridge, DEFAULT_BATCH_MAX_BYTES, MAX_BATCH_MAX_BYTES, MAX_ENTRIES,
};

use super::aws_errors::within;
use super::rounds::{cut, settle, Limits, Rounds};
use super::{Delivery, Outbound, PublishStats, RetryConfig, Sink};

/// Publishes to one EventBridge bus with retries.
pub struct EventBridgeSink {
    name: String,
    client: aws_sdk_eventbridge::Client,
    config: EventBridgeConfig,
    rounds: Rounds,
}

impl EventBridgeSink {
    /// A sink named `name` for `config`, its client built from `aws` with
    /// the SDK's own retries off (the shared driver retries; see
    /// [`crate::aws`]).
    pub fn new(
        name: &str,
        config: &EventBridgeConfig,
        retry: RetryConfig,
        aws: &crate::aws::SdkConfig,
    ) -> Self {
        EventBridgeSink {
            name: name.to_owned(),
            client: crate::aws::eventbridge_client(aws),
            config: config.clone(),
            rounds: Rounds::new(retry, config.request_timeout, "EventBridge"),
        }
    }

    /// Parks what EventBridge would refuse and cuts the rest into requests.
    fn plan(
        &self,
        events: &[Outbound<'_>],
        deliveries: &mut [Option<Delivery>],
    ) -> Vec<Vec<usize>> {
        let source = &self.config.source;
        let mut sendable = Vec::new();
        for (i, event) in events.iter().enumerate() {
            let size = entry_size(source, event);
            let refusal = if !event.body.get().trim_start().starts_with('{') {
                Some("EventBridge takes only a JSON object as an event's detail".to_owned())
            } else if size > self.config.batch_max_bytes {
                Some(format!(
                    "the entry is {size} bytes (source, detail type and detail), over \
                     EventBridge's limit of {} bytes per request (batch_max_bytes)",
                    self.config.batch_max_bytes
                ))
            } else {
                None
            };
            match refusal {
                Some(reason) => {
                    deliveries[i] = Some(Delivery::Park {
                        attempts: 0,
                        reason,
                    })
                }
                None => sendable.push(i),
            }
        }
        let limits = Limits {
            max_events: MAX_ENTRIES,
            max_bytes: self.config.batch_max_bytes,
        };
        cut(&sendable, limits, |i| entry_size(source, &events[i]), None)
    }
}

/// An entry's size as EventBridge counts it: the UTF-8 bytes of `Source`,
/// `DetailType` and `Detail` (plus 14 for `Time` and each of `Resources`,
/// which this sink does not set). EventBridge User Guide, "Calculating
/// PutEvents event entry size".
pub fn entry_size(source: &str, event: &Outbound<'_>) -> usize {
    source.len() + event.event_type.len() + event.body.get().len()
}

#[async_trait::async_trait]
impl Sink for EventBridgeSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deadline_margin(&self) -> Duration {
        Duration::from_millis(self.rounds.retry().deadline_margin_ms)
    }

    fn request_timeout(&self) -> Duration {
        self.config.request_timeout
    }

    async fn publish(
        &self,
        events: &[Outbound<'_>],
        until: Instant,
        _flow_id: &str,
        stats: &mut PublishStats,
    ) -> Vec<Delivery> {
        let mut deliveries: Vec<Option<Delivery>> = vec![None; events.len()];
        let requests = self.plan(events, &mut deliveries);
        let (client, config) = (&self.client, &self.config);
        self.rounds
            .run(
                requests,
                |_| None,
                until,
                stats,
                &mut deliveries,
                |items, timeout, _| {
                    let entries: Vec<PutEventsRequestEntry> = items
                        .iter()
                        .map(|&i| {
                            PutEventsRequestEntry::builder()
                                .source(&config.source)
                                .detail_type(events[i].event_type)
                                .detail(events[i].body.get())
                                .event_bus_name(&config.event_bus_name)
                                .build()
                        })
                        .collect();
                    let call = client.put_events().set_entries(Some(entries)).send();
                    async move {
                        match within(timeout, call).await {
                            Ok(output) => classify(output.entries(), items.len()),
                            Err(failure) => failure.classify("EventBridge"),
                        }
                    }
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

    fn sink(batch_max_bytes: usize) -> EventBridgeSink {
        let mut config = toml::from_str::<RawEventBridge>(r#"source = "src""#)
            .unwrap()
            .validate("sinks.eb")
            .unwrap();
        config.batch_max_bytes = batch_max_bytes;
        let aws = crate::aws::offline_config();
        EventBridgeSink::new("eb", &config, RetryConfig::default(), &aws)
    }

    #[test]
    fn entries_are_cut_to_ten_and_to_the_byte_limit() {
        let body = RawValue::from_string(r#"{"a":1}"#.into()).unwrap();
        let event = Outbound {
            event_type: "t",
            body: &body,
            key: None,
        };
        // "src" + "t" + {"a":1} = 3 + 1 + 7 bytes.
        assert_eq!(entry_size("src", &event), 11);
        let events = vec![event; 23];
        let sink = sink(DEFAULT_BATCH_MAX_BYTES);
        assert_eq!(sink.name(), "eb");
        let requests = sink.plan(&events, &mut vec![None; 23]);
        let sizes: Vec<usize> = requests.iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 3]);
        let requests = self::sink(33).plan(&events[..7], &mut vec![None; 7]);
        let sizes: Vec<usize> = requests.iter().map(Vec::len).collect();
        assert_eq!(sizes, [3, 3, 1]);
    }

    #[test]
    fn oversize_entries_and_non_objects_are_parked() {
        let small = RawValue::from_string(r#"{"a":1}"#.into()).unwrap();
        let big = RawValue::from_string(format!(r#"{{"a":"{}"}}"#, "x".repeat(100))).unwrap();
        let array = RawValue::from_string("[1]".into()).unwrap();
        let events: Vec<Outbound<'_>> = [&small, &big, &array]
            .into_iter()
            .map(|body| Outbound {
                event_type: "t",
                body,
                key: None,
            })
            .collect();
        let mut deliveries = vec![None; 3];
        let requests = sink(50).plan(&events, &mut deliveries);
        assert_eq!(requests, vec![vec![0]]);
        match &deliveries[1] {
            Some(Delivery::Park {
                attempts: 0,
                reason,
            }) => {
                assert!(reason.contains("batch_max_bytes"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&deliveries[2], Some(Delivery::Park { reason, .. }) if reason.contains("JSON object"))
        );
    }
}
