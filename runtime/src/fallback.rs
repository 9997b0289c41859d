//! The fallback stage: park what could not be published in SQS, with
//! everything needed to replay it later.
//!
//! A message body is an [`Envelope`] as JSON, or, when that is too large for
//! the queue or holds characters SQS refuses, `{"version":1,"encoding":
//! "gzip+base64","payload":"..."}` wrapping the same JSON.

use std::io::{Read as _, Write as _};

use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName, SendMessageBatchRequestEntry};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Version of the envelope format.
pub const ENVELOPE_VERSION: u32 = 1;

/// SQS's default and largest message size, used when the queue's own
/// `MaximumMessageSize` cannot be read.
const DEFAULT_MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// SendMessageBatch takes at most this many entries.
const MAX_BATCH_ENTRIES: usize = 10;

/// What a parked message holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParcelKind {
    /// A transformed event that the bus did not accept.
    Event,
    /// A stream record that failed before producing events (decode error,
    /// transform error, unknown table): re-drive runs it through the transform.
    Record,
}

/// One parked event or record: the SQS message body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// Envelope format version.
    pub version: u32,
    /// Event or raw record.
    pub kind: ParcelKind,
    /// The table the record came from, when known.
    pub table: Option<String>,
    /// The record's stream sequence number, when known.
    pub sequence_number: Option<String>,
    /// The item's identity (table and key) for per-item ordering on re-drive.
    pub item: Option<String>,
    /// For events: the event type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// For events: the event's position in its record's transform output,
    /// so re-drive keeps the order of a record's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// For events: `metadata.eid`, kept on re-drive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<String>,
    /// For events: the partition key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// For events: the event body, exactly as it would be published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Box<RawValue>>,
    /// For records: the stream record exactly as Lambda delivered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<Box<RawValue>>,
    /// Publishing attempts so far.
    pub attempts: u32,
    /// Why it was parked.
    pub last_error: String,
    /// When it was parked (RFC 3339).
    pub parked_at: String,
}

#[derive(Serialize, Deserialize)]
struct Compressed {
    version: u32,
    encoding: String,
    payload: String,
}

/// Why a parcel could not be parked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParkError {
    /// Even compressed, the message exceeds the queue's maximum size.
    #[error("the message is {size} bytes compressed, over the queue's maximum of {max} bytes")]
    TooLarge {
        /// Compressed size.
        size: usize,
        /// The queue's maximum.
        max: usize,
    },
    /// SQS refused or could not be reached.
    #[error("SQS did not take the message: {0}")]
    Sqs(String),
}

/// The SQS fallback queue.
pub struct Fallback {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    max_message_bytes: tokio::sync::OnceCell<usize>,
    fifo: bool,
}

impl Fallback {
    /// A fallback for the queue. Nothing is sent until something must be
    /// parked, so SQS is not on the path of a cold start.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> Self {
        Fallback {
            fifo: queue_url.ends_with(".fifo"),
            client,
            queue_url,
            max_message_bytes: tokio::sync::OnceCell::new(),
        }
    }

    /// The queue's maximum message size, read once from its attributes; when
    /// that fails (SQS down) 256 KiB is assumed for this time.
    async fn max_message_bytes(&self) -> usize {
        if let Some(max) = self.max_message_bytes.get() {
            return *max;
        }
        match self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::MaximumMessageSize)
            .send()
            .await
        {
            Ok(out) => {
                let max = out
                    .attributes()
                    .and_then(|a| a.get(&QueueAttributeName::MaximumMessageSize))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
                let _ = self.max_message_bytes.set(max);
                max
            }
            Err(e) => {
                tracing::warn!(
                    queue_url = self.queue_url,
                    "cannot read the fallback queue's attributes, assuming 256 KiB messages: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                );
                DEFAULT_MAX_MESSAGE_BYTES
            }
        }
    }

    /// The SQS client.
    pub fn client(&self) -> &aws_sdk_sqs::Client {
        &self.client
    }

    /// The queue URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Parks each envelope; returns per envelope whether it is in the queue.
    pub async fn park(&self, envelopes: &[Envelope]) -> Vec<Result<(), ParkError>> {
        let max_message_bytes = self.max_message_bytes().await;
        let mut results: Vec<Option<Result<(), ParkError>>> = vec![None; envelopes.len()];
        let mut bodies: Vec<(usize, String)> = Vec::new();
        for (i, envelope) in envelopes.iter().enumerate() {
            match encode(envelope, max_message_bytes) {
                Ok(body) => bodies.push((i, body)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        // Batches of at most 10 entries and the queue's maximum in total.
        let mut batch: Vec<(usize, String)> = Vec::new();
        let mut batch_bytes = 0;
        for (i, body) in bodies {
            if batch.len() == MAX_BATCH_ENTRIES
                || (!batch.is_empty() && batch_bytes + body.len() > max_message_bytes)
            {
                self.send_batch(envelopes, std::mem::take(&mut batch), &mut results)
                    .await;
                batch_bytes = 0;
            }
            batch_bytes += body.len();
            batch.push((i, body));
        }
        if !batch.is_empty() {
            self.send_batch(envelopes, batch, &mut results).await;
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ParkError::Sqs("not sent".into()))))
            .collect()
    }

    /// Sends one batch, resending entries SQS lists as failed a few times.
    async fn send_batch(
        &self,
        envelopes: &[Envelope],
        mut batch: Vec<(usize, String)>,
        results: &mut [Option<Result<(), ParkError>>],
    ) {
        for attempt in 0..3 {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
            let entries: Vec<SendMessageBatchRequestEntry> = batch
                .iter()
                .map(|(i, body)| self.entry(*i, &envelopes[*i], body))
                .collect();
            let response = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
            let failed = match response {
                Ok(out) => out
                    .failed()
                    .iter()
                    .map(|f| {
                        (
                            f.id().to_owned(),
                            format!("{}: {}", f.code(), f.message().unwrap_or("no message")),
                        )
                    })
                    .collect::<Vec<_>>(),
                Err(e) => {
                    let reason = aws_sdk_sqs::error::DisplayErrorContext(&e).to_string();
                    tracing::warn!(attempt, "SendMessageBatch failed: {reason}");
                    batch
                        .iter()
                        .map(|(i, _)| (i.to_string(), reason.clone()))
                        .collect()
                }
            };
            let mut retry = Vec::new();
            for (i, body) in batch {
                match failed.iter().find(|(id, _)| *id == i.to_string()) {
                    Some((_, reason)) => {
                        results[i] = Some(Err(ParkError::Sqs(reason.clone())));
                        retry.push((i, body));
                    }
                    None => results[i] = Some(Ok(())),
                }
            }
            if retry.is_empty() {
                return;
            }
            batch = retry;
        }
    }

    fn entry(&self, id: usize, envelope: &Envelope, body: &str) -> SendMessageBatchRequestEntry {
        let attribute = |value: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .expect("data type and value are set")
        };
        let kind = match envelope.kind {
            ParcelKind::Event => "event",
            ParcelKind::Record => "record",
        };
        let mut entry = SendMessageBatchRequestEntry::builder()
            .id(id.to_string())
            .message_body(body)
            .message_attributes("kind", attribute(kind));
        if let Some(table) = &envelope.table {
            entry = entry.message_attributes("table", attribute(table));
        }
        if let Some(event_type) = &envelope.event_type {
            entry = entry.message_attributes("event_type", attribute(event_type));
        }
        if self.fifo {
            let group = envelope.item.as_deref().unwrap_or("unknown-item");
            let dedup = format!(
                "{}-{}",
                envelope.sequence_number.as_deref().unwrap_or("none"),
                envelope.eid.as_deref().unwrap_or(kind)
            );
            entry = entry
                .message_group_id(short_id(group))
                .message_deduplication_id(short_id(&dedup));
        }
        entry.build().expect("id and body are set")
    }
}

/// FIFO ids are at most 128 characters.
fn short_id(text: &str) -> String {
    if text.len() <= 128 && text.chars().all(|c| c.is_ascii_graphic()) {
        return text.to_owned();
    }
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, text.as_bytes()).to_string()
}

/// The message body for an envelope: plain JSON when it fits and is legal
/// in SQS, gzip + base64 otherwise.
pub fn encode(envelope: &Envelope, max_bytes: usize) -> Result<String, ParkError> {
    let json = serde_json::to_string(envelope).expect("envelopes serialize");
    if json.len() <= max_bytes && json.chars().all(sqs_legal) {
        return Ok(json);
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(json.as_bytes())
        .and_then(|()| encoder.finish())
        .map(|gz| {
            serde_json::to_string(&Compressed {
                version: ENVELOPE_VERSION,
                encoding: "gzip+base64".into(),
                payload: base64::engine::general_purpose::STANDARD.encode(gz),
            })
            .expect("serializes")
        })
        .map_err(|e| ParkError::Sqs(format!("cannot compress: {e}")))
        .and_then(|body| {
            if body.len() <= max_bytes {
                Ok(body)
            } else {
                Err(ParkError::TooLarge {
                    size: body.len(),
                    max: max_bytes,
                })
            }
        })
}

/// Reads a message body written by [`encode`].
pub fn decode(body: &str) -> Result<Envelope, String> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    if value.get("encoding").is_some() {
        let compressed: Compressed =
            serde_json::from_value(value).map_err(|e| format!("bad compressed envelope: {e}"))?;
        if compressed.encoding != "gzip+base64" {
            return Err(format!("unknown encoding {:?}", compressed.encoding));
        }
        let gz = base64::engine::general_purpose::STANDARD
            .decode(compressed.payload)
            .map_err(|e| format!("bad base64: {e}"))?;
        let mut json = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut json)
            .map_err(|e| format!("bad gzip: {e}"))?;
        return serde_json::from_str(&json).map_err(|e| format!("bad envelope: {e}"));
    }
    serde_json::from_str(body).map_err(|e| format!("bad envelope: {e}"))
}

/// Characters SQS accepts in a message body (XML 1.0's).
fn sqs_legal(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(body: &str) -> Envelope {
        Envelope {
            version: ENVELOPE_VERSION,
            kind: ParcelKind::Event,
            table: Some("orders".into()),
            sequence_number: Some("100".into()),
            item: Some("orders/{\"id\":\"a\"}".into()),
            event_type: Some("order.changed".into()),
            index: Some(0),
            eid: Some("e".into()),
            key: None,
            body: Some(RawValue::from_string(body.to_owned()).unwrap()),
            record: None,
            attempts: 3,
            last_error: "status 503".into(),
            parked_at: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn small_envelopes_stay_plain_json() {
        let body = encode(&envelope(r#"{"a":1}"#), 1024).unwrap();
        assert!(body.starts_with(r#"{"version":1,"kind":"event""#), "{body}");
        assert_eq!(decode(&body).unwrap().body.unwrap().get(), r#"{"a":1}"#);
    }

    #[test]
    fn large_envelopes_are_compressed_and_round_trip() {
        let big = format!(r#"{{"text":"{}"}}"#, "abc".repeat(10_000));
        let body = encode(&envelope(&big), 4096).unwrap();
        assert!(body.len() <= 4096);
        assert!(body.contains("gzip+base64"));
        assert_eq!(decode(&body).unwrap().body.unwrap().get(), big);
    }

    #[test]
    fn characters_sqs_refuses_force_compression() {
        let body = encode(&envelope("{\"a\":\"\u{FFFF}\"}"), 4096).unwrap();
        assert!(body.contains("gzip+base64"));
        assert_eq!(
            decode(&body).unwrap().body.unwrap().get(),
            "{\"a\":\"\u{FFFF}\"}"
        );
    }

    #[test]
    fn incompressible_oversize_is_refused() {
        // Pseudo-random hex does not compress below the limit.
        let mut x: u64 = 1;
        let noise: String = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from_digit((x % 16) as u32, 16).unwrap()
            })
            .collect();
        let err = encode(&envelope(&format!(r#"{{"n":"{noise}"}}"#)), 4096).unwrap_err();
        assert!(
            matches!(err, ParkError::TooLarge { max: 4096, .. }),
            "{err}"
        );
    }
}
