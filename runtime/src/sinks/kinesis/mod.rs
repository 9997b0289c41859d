//! The Kinesis Data Streams sink: events go to `PutRecords` as records
//! with `PartitionKey` = the event's key and `Data` = the body.
//!
//! Order per key: [`Sink::orders_by_key`] is true. A request never holds
//! two records of one key, a later record of a key is sent only once the
//! earlier ones of the call are written, and once one is parked the later
//! ones of its key are parked behind it (the shared driver's
//! [`Rounds::one_per_key`]). `PutRecords` itself keeps no order within a
//! request, hence one record per key per request.
//!
//! Limits (see `config`): 500 records per request, `batch_max_bytes` per
//! request and `max_record_bytes` per record, partition key included; a
//! partition key of 1 to 256 characters. An event without a key, with a key
//! Kinesis refuses, or over the record limit is never sent but parked with
//! the reason. Per-record `ProvisionedThroughputExceededException` and
//! `InternalFailure` are retried with backoff; whole-request errors are
//! read by [`crate::sinks::aws_errors`].
//!
//! - `config`: the sink's section, [`KinesisConfig`];
//! - `classify`: what the per-record results mean.

mod classify;
mod config;

use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;

pub use classify::classify;
pub use config::{
    KinesisConfig, RawKinesis, Stream, DEFAULT_BATCH_MAX_BYTES, DEFAULT_MAX_RECORD_BYTES,
    MAX_BYTES, MAX_PARTITION_KEY_CHARS, MAX_RECORDS,
};

use super::aws_errors::within;
use super::rounds::{cut, park_refused, settle, BatchResult, Limits, Rounds};
use super::{Delivery, Outbound, PublishStats, RetryConfig, Sink};

/// Publishes to one Kinesis data stream with retries, in order per key.
pub struct KinesisSink {
    name: String,
    client: aws_sdk_kinesis::Client,
    config: KinesisConfig,
    rounds: Rounds,
}

impl KinesisSink {
    /// A sink named `name` for `config`, its client built from `aws` with
    /// the SDK's own retries off (the shared driver retries; see
    /// [`crate::aws`]).
    pub fn new(
        name: &str,
        config: &KinesisConfig,
        retry: RetryConfig,
        aws: &crate::aws::SdkConfig,
    ) -> Self {
        KinesisSink {
            name: name.to_owned(),
            client: crate::aws::kinesis_client(aws),
            config: config.clone(),
            rounds: Rounds::new(retry, config.request_timeout, "Kinesis").one_per_key(true),
        }
    }

    /// Parks what Kinesis would refuse and cuts the rest into requests, one
    /// record per key in each.
    fn plan(
        &self,
        events: &[Outbound<'_>],
        deliveries: &mut [Option<Delivery>],
    ) -> Vec<Vec<usize>> {
        let sendable = park_refused(events, deliveries, |event| self.refusal(event));
        let limits = Limits {
            max_events: MAX_RECORDS,
            max_bytes: self.config.batch_max_bytes,
        };
        let key = |i: usize| events[i].key;
        cut(&sendable, limits, |i| record_size(&events[i]), Some(&key))
    }

    /// Why Kinesis would refuse `event`, if it would.
    fn refusal(&self, event: &Outbound<'_>) -> Option<String> {
        let Some(key) = event.key else {
            return Some(
                "the event has no key, and Kinesis needs one as the partition key \
                 (set it in the transform)"
                    .into(),
            );
        };
        let chars = key.chars().count();
        if chars == 0 || chars > MAX_PARTITION_KEY_CHARS {
            return Some(format!(
                "the event's key has {chars} characters; a Kinesis partition key has 1 to \
                 {MAX_PARTITION_KEY_CHARS}"
            ));
        }
        let size = record_size(event);
        let limit = self
            .config
            .max_record_bytes
            .min(self.config.batch_max_bytes);
        (size > limit).then(|| {
            format!(
                "the record is {size} bytes (partition key and data), over the limit of \
                 {limit} bytes per record (max_record_bytes)"
            )
        })
    }
}

/// A record's size as Kinesis counts it: partition key and data blob.
pub fn record_size(event: &Outbound<'_>) -> usize {
    event.key.map_or(0, str::len) + event.body.get().len()
}

#[async_trait::async_trait]
impl Sink for KinesisSink {
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
        true
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
        let (client, stream) = (&self.client, &self.config.stream);
        self.rounds
            .run(
                requests,
                |i| events[i].key,
                until,
                stats,
                &mut deliveries,
                |items, timeout, _| {
                    let records: Result<Vec<PutRecordsRequestEntry>, _> = items
                        .iter()
                        .map(|&i| {
                            PutRecordsRequestEntry::builder()
                                .partition_key(events[i].key.unwrap_or_default())
                                .data(Blob::new(events[i].body.get().as_bytes()))
                                .build()
                        })
                        .collect();
                    let call = records.map(|records| {
                        let request = client.put_records().set_records(Some(records));
                        match stream {
                            Stream::Name(name) => request.stream_name(name),
                            Stream::Arn(arn) => request.stream_arn(arn),
                        }
                        .send()
                    });
                    async move {
                        match call {
                            Err(e) => BatchResult::Final(format!(
                                "the Kinesis request could not be built: {e}"
                            )),
                            Ok(call) => match within(timeout, call).await {
                                Ok(output) => classify(output.records(), items.len()),
                                Err(failure) => failure.classify("Kinesis"),
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

    fn sink(max_record_bytes: usize, batch_max_bytes: usize) -> KinesisSink {
        let mut config = toml::from_str::<RawKinesis>(r#"stream_name = "orders""#)
            .unwrap()
            .validate("sinks.k")
            .unwrap();
        config.max_record_bytes = max_record_bytes;
        config.batch_max_bytes = batch_max_bytes;
        let aws = crate::aws::offline_config();
        KinesisSink::new("k", &config, RetryConfig::default(), &aws)
    }

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
    fn events_without_a_usable_key_or_too_large_are_parked() {
        let body = RawValue::from_string(r#"{"a":1}"#.into()).unwrap();
        let long_key = "k".repeat(257);
        let events = events(
            &body,
            &[
                Some("a"),
                None,
                Some(""),
                Some(&long_key),
                Some("a-long-key-0123456789"),
            ],
        );
        let sink = sink(20, DEFAULT_BATCH_MAX_BYTES);
        assert!(sink.orders_by_key());
        assert_eq!(sink.name(), "k");
        let mut deliveries = vec![None; events.len()];
        let requests = sink.plan(&events, &mut deliveries);
        assert_eq!(requests, vec![vec![0]]);
        let reason = |i: usize| match &deliveries[i] {
            Some(Delivery::Park {
                attempts: 0,
                reason,
            }) => reason.clone(),
            other => panic!("{i}: {other:?}"),
        };
        assert!(reason(1).contains("no key"), "{}", reason(1));
        assert!(reason(2).contains("1 to 256"), "{}", reason(2));
        assert!(reason(3).contains("257 characters"), "{}", reason(3));
        assert!(reason(4).contains("max_record_bytes"), "{}", reason(4));
    }

    #[test]
    fn requests_hold_one_record_per_key_within_limits() {
        let body = RawValue::from_string(r#"{"a":1}"#.into()).unwrap();
        let keys: Vec<Option<&str>> = ["a", "b", "a", "c", "b", "a"]
            .into_iter()
            .map(Some)
            .collect();
        let events = events(&body, &keys);
        let sink = sink(DEFAULT_MAX_RECORD_BYTES, DEFAULT_BATCH_MAX_BYTES);
        let requests = sink.plan(&events, &mut vec![None; events.len()]);
        assert_eq!(requests, vec![vec![0, 1, 3], vec![2, 4], vec![5]]);
        // Each record is 8 bytes: at most two per request of 16 bytes.
        let sink = self::sink(DEFAULT_MAX_RECORD_BYTES, 16);
        let requests = sink.plan(&events, &mut vec![None; events.len()]);
        assert_eq!(requests, vec![vec![0, 1], vec![3], vec![2, 4], vec![5]]);
        // 500 records at most.
        let many: Vec<String> = (0..1001).map(|i| format!("k{i}")).collect();
        let keys: Vec<Option<&str>> = many.iter().map(|k| Some(k.as_str())).collect();
        let events = self::events(&body, &keys);
        let sink = self::sink(DEFAULT_MAX_RECORD_BYTES, DEFAULT_BATCH_MAX_BYTES);
        let sizes: Vec<usize> = sink
            .plan(&events, &mut vec![None; events.len()])
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [500, 500, 1]);
    }
}
