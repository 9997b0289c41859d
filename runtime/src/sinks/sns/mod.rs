//! The SNS sink: events go to `PublishBatch` as messages with `Message` =
//! the body and a String message attribute `event_type`.
//!
//! On a FIFO topic (its ARN ends with `.fifo`) `MessageGroupId` is the
//! event's key (required: an event without one is parked) and
//! `MessageDeduplicationId` its eid (`metadata.eid`, else a SHA-256 of the
//! body); [`Sink::orders_by_key`] is then true and the shared driver keeps
//! one message per key in flight ([`Rounds::one_per_key`]). A standard
//! topic keeps no order.
//!
//! Limits (see `config`): 10 messages per request; each message, and the
//! request's messages together, at most `batch_max_bytes` counting the
//! message attribute ([`message_size`]). A larger message is never sent
//! but parked. Per-entry failures with `SenderFault` are parked, others
//! retried; whole-request errors are read by [`crate::sinks::aws_errors`].
//!
//! - `config`: the sink's section, [`SnsConfig`];
//! - `classify`: what the per-entry results mean.

mod classify;
mod config;

use std::time::{Duration, Instant};

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};

pub use classify::classify;
pub use config::{RawSns, SnsConfig, DEFAULT_BATCH_MAX_BYTES, MAX_BATCH_MAX_BYTES, MAX_ENTRIES};

use super::aws_errors::within;
use super::eid::{identity, sha256_hex};
use super::rounds::{cut, park_refused, settle, BatchResult, Limits, Rounds};
use super::{Delivery, Outbound, PublishStats, RetryConfig, Sink};

/// The message attribute that carries the event type.
pub const EVENT_TYPE_ATTRIBUTE: &str = "event_type";

/// Longest `MessageGroupId` and `MessageDeduplicationId`: 128 characters
/// of letters, digits and ASCII punctuation (`PublishBatchRequestEntry`).
pub const MAX_FIFO_ID_CHARS: usize = 128;

/// Publishes to one SNS topic with retries; in order per key on FIFO
/// topics.
pub struct SnsSink {
    name: String,
    client: aws_sdk_sns::Client,
    config: SnsConfig,
    rounds: Rounds,
}

impl SnsSink {
    /// A sink named `name` for `config`, its client built from `aws` with
    /// the SDK's own retries off (the shared driver retries; see
    /// [`crate::aws`]).
    pub fn new(
        name: &str,
        config: &SnsConfig,
        retry: RetryConfig,
        aws: &crate::aws::SdkConfig,
    ) -> Self {
        SnsSink {
            name: name.to_owned(),
            client: crate::aws::sns_client(aws),
            config: config.clone(),
            rounds: Rounds::new(retry, config.request_timeout, "SNS").one_per_key(config.fifo),
        }
    }

    /// Parks what SNS would refuse and cuts the rest into requests (one
    /// message per key in each on FIFO topics).
    fn plan<'a>(
        &self,
        events: &[Outbound<'a>],
        deliveries: &mut [Option<Delivery>],
    ) -> Vec<Vec<usize>> {
        let sendable = park_refused(events, deliveries, |event| self.refusal(event));
        let limits = Limits {
            max_events: MAX_ENTRIES,
            max_bytes: self.config.batch_max_bytes,
        };
        let key = |i: usize| events[i].key;
        let key: Option<&dyn Fn(usize) -> Option<&'a str>> = self.config.fifo.then_some(&key);
        cut(&sendable, limits, |i| message_size(&events[i]), key)
    }

    /// Why SNS would refuse `event`, if it would.
    fn refusal(&self, event: &Outbound<'_>) -> Option<String> {
        if self.config.fifo {
            let Some(key) = event.key else {
                return Some(
                    "the event has no key, and a FIFO topic needs one as the message group id \
                     (set it in the transform)"
                        .into(),
                );
            };
            if !fifo_id(key) {
                return Some(format!(
                    "the event's key cannot be a message group id: SNS takes 1 to \
                     {MAX_FIFO_ID_CHARS} letters, digits and ASCII punctuation"
                ));
            }
        }
        let size = message_size(event);
        (size > self.config.batch_max_bytes).then(|| {
            format!(
                "the message is {size} bytes (body and event_type attribute), over SNS's limit \
                 of {} bytes (batch_max_bytes)",
                self.config.batch_max_bytes
            )
        })
    }
}

/// A message's size as SNS counts it: the body, and the attribute's name,
/// data type and value.
pub fn message_size(event: &Outbound<'_>) -> usize {
    event.body.get().len() + EVENT_TYPE_ATTRIBUTE.len() + "String".len() + event.event_type.len()
}

/// Whether `id` is a valid FIFO group or deduplication id.
fn fifo_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_FIFO_ID_CHARS && id.bytes().all(|b| b.is_ascii_graphic())
}

/// The deduplication id of an event: its eid, or a SHA-256 (hex) of the
/// eid when SNS would refuse the eid as it is, or of the body without one.
pub fn deduplication_id(event: &Outbound<'_>) -> String {
    let id = identity(event.body).id;
    if fifo_id(&id) {
        id
    } else {
        sha256_hex(id.as_bytes())
    }
}

/// The batch entry of `event`, `id` being its position in the request.
fn entry(
    id: usize,
    event: &Outbound<'_>,
    fifo: bool,
) -> Result<PublishBatchRequestEntry, aws_sdk_sns::error::BuildError> {
    let event_type = MessageAttributeValue::builder()
        .data_type("String")
        .string_value(event.event_type)
        .build()?;
    let mut entry = PublishBatchRequestEntry::builder()
        .id(id.to_string())
        .message(event.body.get())
        .message_attributes(EVENT_TYPE_ATTRIBUTE, event_type);
    if fifo {
        entry = entry
            .set_message_group_id(event.key.map(str::to_owned))
            .message_deduplication_id(deduplication_id(event));
    }
    entry.build()
}

#[async_trait::async_trait]
impl Sink for SnsSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deadline_margin(&self) -> Duration {
        Duration::from_millis(self.rounds.retry().deadline_margin_ms)
    }

    fn request_timeout(&self) -> Duration {
        self.config.request_timeout
    }

    fn orders_by_key(&self) -> bool {
        self.config.fifo
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
                |i| events[i].key,
                until,
                stats,
                &mut deliveries,
                |items, timeout, _| {
                    let entries: Result<Vec<_>, _> = items
                        .iter()
                        .enumerate()
                        .map(|(id, &i)| entry(id, &events[i], config.fifo))
                        .collect();
                    let call = entries.map(|entries| {
                        client
                            .publish_batch()
                            .topic_arn(&config.topic_arn)
                            .set_publish_batch_request_entries(Some(entries))
                            .send()
                    });
                    async move {
                        match call {
                            Err(e) => BatchResult::Final(format!(
                                "the SNS request could not be built: {e}"
                            )),
                            Ok(call) => match within(timeout, call).await {
                                Ok(output) => {
                                    classify(output.successful(), output.failed(), items.len())
                                }
                                Err(failure) => failure.classify("SNS"),
                            },
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

    fn sink(topic: &str, batch_max_bytes: usize) -> SnsSink {
        let mut config = toml::from_str::<RawSns>(&format!("topic_arn = \"{topic}\""))
            .unwrap()
            .validate("sinks.s")
            .unwrap();
        config.batch_max_bytes = batch_max_bytes;
        let aws = crate::aws::offline_config();
        SnsSink::new("s", &config, RetryConfig::default(), &aws)
    }

    const FIFO: &str = "arn:aws:sns:eu-central-1:1:orders.fifo";
    const STANDARD: &str = "arn:aws:sns:eu-central-1:1:orders";

    fn events<'a>(body: &'a RawValue, keys: &[Option<&'a str>]) -> Vec<Outbound<'a>> {
        keys.iter()
            .map(|&key| Outbound {
                event_type: "t",
                body,
                key,
            })
            .collect()
    }

    #[test]
    fn fifo_needs_usable_keys_and_orders_by_key() {
        let body = RawValue::from_string(r#"{"a":1}"#.into()).unwrap();
        let events = events(&body, &[Some("a"), None, Some("a b"), Some("a"), Some("b")]);
        let sink = sink(FIFO, DEFAULT_BATCH_MAX_BYTES);
        assert!(sink.orders_by_key());
        assert_eq!(sink.name(), "s");
        let mut deliveries = vec![None; events.len()];
        let requests = sink.plan(&events, &mut deliveries);
        assert_eq!(requests, vec![vec![0, 4], vec![3]]);
        assert!(
            matches!(&deliveries[1], Some(Delivery::Park { reason, .. }) if reason.contains("no key"))
        );
        assert!(
            matches!(&deliveries[2], Some(Delivery::Park { reason, .. }) if reason.contains("message group id"))
        );
    }

    #[test]
    fn standard_topics_take_any_key_and_keep_no_order() {
        let body = RawValue::from_string(r#"{"a":1}"#.into()).unwrap();
        let keys: Vec<Option<&str>> = vec![Some("a"); 12].into_iter().chain([None]).collect();
        let events = events(&body, &keys);
        let sink = sink(STANDARD, DEFAULT_BATCH_MAX_BYTES);
        assert!(!sink.orders_by_key());
        let mut deliveries = vec![None; events.len()];
        let sizes: Vec<usize> = sink
            .plan(&events, &mut deliveries)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [10, 3]);
        assert!(deliveries.iter().all(Option::is_none));
    }

    #[test]
    fn sizes_count_the_attribute_and_cut_requests() {
        let body = RawValue::from_string(r#"{"a":1}"#.into()).unwrap();
        let events = events(&body, &[None, None, None]);
        // 7 body bytes + "event_type" + "String" + "t" = 24.
        assert_eq!(message_size(&events[0]), 24);
        let sink = sink(STANDARD, 48);
        assert_eq!(
            sink.plan(&events, &mut vec![None; 3]),
            vec![vec![0, 1], vec![2]]
        );
        let mut deliveries = vec![None; 3];
        assert!(self::sink(STANDARD, 23)
            .plan(&events, &mut deliveries)
            .is_empty());
        assert!(
            matches!(&deliveries[0], Some(Delivery::Park { reason, .. }) if reason.contains("batch_max_bytes"))
        );
    }

    #[test]
    fn fifo_entries_carry_group_and_deduplication_ids() {
        let body = RawValue::from_string(r#"{"metadata":{"eid":"e-1"}}"#.into()).unwrap();
        let event = Outbound {
            event_type: "order.changed",
            body: &body,
            key: Some("o-1"),
        };
        let entry = entry(3, &event, true).unwrap();
        assert_eq!(entry.id(), "3");
        assert_eq!(entry.message(), r#"{"metadata":{"eid":"e-1"}}"#);
        assert_eq!(entry.message_group_id(), Some("o-1"));
        assert_eq!(entry.message_deduplication_id(), Some("e-1"));
        let attribute = &entry.message_attributes().unwrap()[EVENT_TYPE_ATTRIBUTE];
        assert_eq!(attribute.data_type(), "String");
        assert_eq!(attribute.string_value(), Some("order.changed"));
        // Without an eid: a digest of the body.
        let plain = RawValue::from_string(r#"{"a":1}"#.into()).unwrap();
        let event = Outbound {
            body: &plain,
            ..event
        };
        assert_eq!(deduplication_id(&event), sha256_hex(br#"{"a":1}"#));
        // Standard topics: neither id.
        let entry = self::entry(0, &event, false).unwrap();
        assert_eq!(entry.message_group_id(), None);
        assert_eq!(entry.message_deduplication_id(), None);
    }
}
