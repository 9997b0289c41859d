//! Parking: what could not be published waits in a queue, with everything
//! needed to publish it later in the item's stream order.
//!
//! - [`envelope`]: what a parked message holds and how it is written;
//! - [`ParkingLot`]: where parked messages go and come back from, with
//!   [`SqsLot`] (SQS, oversized messages claim-checked in S3) behind it;
//! - [`registry`]: the parked-items registry ([`Registry`], DynamoDB behind
//!   it), which keeps an item's newer changes behind its parked ones across
//!   batches and re-drive runs.

mod config;
pub mod envelope;
pub mod registry;
mod sqs;

use std::time::{Duration, Instant};

pub use config::{FallbackConfig, RawFallback, RawRegistry, RegistryConfig};
pub use envelope::{Envelope, ParcelKind, Part, UnitId, ENVELOPE_VERSION};
pub use registry::{DynamoRegistry, Registry, RegistryError};
pub use sqs::{ClaimCheck, SqsLot};

/// Why something could not be parked (or read back, deleted, postponed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParkError {
    /// Even compressed, the message exceeds the queue's maximum size and no
    /// claim-check bucket is configured.
    #[error(
        "the message is {size} bytes compressed, over the queue's maximum of {max} bytes, \
         and no claim-check bucket is configured ([fallback] claim_check_bucket)"
    )]
    TooLarge {
        /// Compressed size.
        size: usize,
        /// The queue's maximum.
        max: usize,
    },
    /// The queue (or the claim-check store) refused or could not be reached.
    #[error("{0}")]
    Unavailable(String),
    /// The invocation's deadline came first.
    #[error("the invocation deadline came before the queue answered")]
    Deadline,
}

/// A parked message whose content cannot be used now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// Why.
    pub reason: String,
    /// Whether a later try may read it (a claim-check payload that could
    /// not be fetched); otherwise the message is poison.
    pub retriable: bool,
    /// Its item, when the message names it anyway.
    pub item: Option<String>,
    /// Its unit, when the message names it anyway.
    pub unit: Option<UnitId>,
    /// Whether its unit was registered.
    pub registered: bool,
}

/// One received parked message.
#[derive(Debug, Clone)]
pub struct ParkedMessage {
    /// The queue's message id.
    pub id: String,
    /// The handle to delete or postpone it with (valid for this receive).
    pub receipt: String,
    /// How often the queue has handed it out, this time included.
    pub receives: u32,
    /// What it holds.
    pub envelope: Result<Envelope, Unreadable>,
    /// Where a claim-checked payload lives (`bucket`, `key`), deleted with
    /// the message.
    pub claim: Option<(String, String)>,
}

impl ParkedMessage {
    /// The item the message belongs to, when known.
    pub fn item(&self) -> Option<&str> {
        match &self.envelope {
            Ok(e) => e.item.as_deref(),
            Err(u) => u.item.as_deref(),
        }
    }

    /// The message's unit, when known.
    pub fn unit(&self) -> Option<UnitId> {
        match &self.envelope {
            Ok(e) => Some(e.unit()),
            Err(u) => u.unit.clone(),
        }
    }

    /// Whether the message's unit was registered when it was parked.
    pub fn registered(&self) -> bool {
        match &self.envelope {
            Ok(e) => e.registered,
            Err(u) => u.registered,
        }
    }
}

/// Where parked messages wait: a queue with visibility timeouts (SQS).
#[async_trait::async_trait]
pub trait ParkingLot: Send + Sync {
    /// Where the lot is, for logs (the queue URL).
    fn location(&self) -> &str;

    /// Whether the lot itself hands out an item's messages in order and holds
    /// back later ones while an earlier one is out (an SQS FIFO queue with
    /// the item as message group).
    fn keeps_item_order(&self) -> bool;

    /// Parks each envelope, giving up at `deadline`; per envelope `Ok` once
    /// it is durably in the lot. A failure may still have parked it (the
    /// answer was lost): the caller treats it as not parked.
    async fn park(&self, envelopes: &[Envelope], deadline: Instant) -> Vec<Result<(), ParkError>>;

    /// Receives up to `max` messages holding up to about `max_bytes` (the
    /// rest waits for the next run), hiding each from other receivers for
    /// `visibility`, until the lot is drained or `deadline` passes.
    async fn receive(
        &self,
        max: usize,
        max_bytes: usize,
        visibility: Duration,
        deadline: Instant,
    ) -> Result<Vec<ParkedMessage>, ParkError>;

    /// Deletes messages (and their claim-checked payloads); per message
    /// whether it is gone.
    async fn delete(&self, messages: &[&ParkedMessage]) -> Vec<Result<(), ParkError>>;

    /// Hides each message for its duration from now (zero: visible again).
    async fn postpone(&self, messages: &[(&ParkedMessage, Duration)]);
}

/// `deadline`, or `None` once it has passed.
pub(crate) fn time_left(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}
