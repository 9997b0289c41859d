//! Sinks: where events are published. [`Sink`] is the seam the pipeline and
//! re-drive publish through; each sink is a folder of its own with its
//! config, client and answer classification:
//!
//! - [`config`]: `[sinks.<name>]` and a table's `sinks` (routing, fan-out);
//! - [`nakadi`]: Nakadi's HTTP publishing API;
//! - [`retry`]: the retry policy sinks share (exponential backoff, full jitter).
//!
//! A sink returns one [`Delivery`] per event: published (acknowledged by the
//! bus, the only state that counts), or to be parked with the reason.

pub mod config;
pub mod nakadi;
pub mod retry;

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
