//! Sinks: where events are published. [`Sink`] is the seam the pipeline and
//! re-drive publish through; each sink is a folder of its own with its
//! config, client and answer classification:
//!
//! - [`config`]: `[sinks.<name>]` and a table's `sinks` (routing, fan-out);
//! - [`nakadi`]: Nakadi's HTTP publishing API;
//! - [`eventbridge`]: Amazon EventBridge `PutEvents`;
//! - [`kinesis`]: Kinesis Data Streams `PutRecords` (order per key);
//! - [`sns`]: Amazon SNS `PublishBatch` (order per key on FIFO topics);
//! - [`http`]: CloudEvents 1.0 batches over HTTP;
//!
//! and what they share:
//!
//! - [`rounds`]: the retry driver (requests cut to limits, rounds of
//!   retries, per-event outcomes, one in flight per key);
//! - [`retry`]: the retry policy (exponential backoff, full jitter);
//! - [`token`]: a bearer token file, re-read when it changes;
//! - [`aws_errors`]: what a failed AWS call means for a request;
//! - [`eid`]: an event's id (`metadata.eid`, else a digest of the body).
//!
//! A sink returns one [`Delivery`] per event: published (acknowledged by the
//! bus, the only state that counts), or to be parked with the reason.

pub mod aws_errors;
pub mod config;
pub mod eid;
pub mod eventbridge;
pub mod http;
pub mod kinesis;
pub mod nakadi;
pub mod retry;
pub mod rounds;
pub mod sns;
pub mod token;

use std::time::{Duration, Instant};

use serde_json::value::RawValue;

pub use config::{validate_sinks, validate_table_sinks, RawSink, SinkConfig, DEFAULT_SINK};
pub use retry::{Backoff, RetryConfig};

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
    /// The sink acknowledged it.
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
    /// Requests sent to the sink.
    pub attempts: u64,
    /// Latency of each request.
    pub latencies: Vec<Duration>,
}

/// Where events are published: retries within the time given, and says per
/// event whether it was acknowledged or must be parked.
#[async_trait::async_trait]
pub trait Sink: Send + Sync {
    /// The sink's name, for logs.
    fn name(&self) -> &str;

    /// How long before the invocation deadline publishing should stop, to
    /// leave time to park what is left.
    fn deadline_margin(&self) -> Duration;

    /// The timeout of one request: the room a publishing round needs.
    fn request_timeout(&self) -> Duration;

    /// Whether the sink keeps order per event key (Kinesis shards, SNS FIFO
    /// message groups). The pipeline then parks, for the rest of the batch,
    /// every later event of a key once one of its events was parked, and the
    /// sink never has two events of one key in flight at once.
    fn orders_by_key(&self) -> bool {
        false
    }

    /// Publishes `events`, giving up at `until`. Returns one [`Delivery`]
    /// per event, in order. Events of one request keep their order.
    async fn publish(
        &self,
        events: &[Outbound<'_>],
        until: Instant,
        flow_id: &str,
        stats: &mut PublishStats,
    ) -> Vec<Delivery>;
}

/// `error` and its sources, one sentence.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// The HTTP client of the sinks that speak HTTP themselves (Nakadi,
/// CloudEvents): rustls, no proxies from the environment, and redirects
/// never followed (reqwest would re-send the POST as a GET without a body,
/// and a 200 to that is no acknowledgement).
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(50))
        .build()
}
