//! What a parked message holds, and how it is written into and read from a
//! queue message body.
//!
//! A body is an [`Envelope`] as JSON; or, when that is too large for the
//! queue or holds characters SQS refuses, `{"version":1,"encoding":
//! "gzip+base64","payload":"..."}` wrapping the same JSON; or, when even that
//! is too large, a [`Pointer`] to the envelope JSON stored in S3 (the
//! claim-check pattern).

use std::io::{Read as _, Write as _};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::Digest as _;

/// Version of the envelope format.
pub const ENVELOPE_VERSION: u32 = 1;

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
    /// For events: the sink it was not published to, by name (re-drive
    /// sends it back there). Envelopes without one were parked for the
    /// Nakadi sink ([`crate::sinks::DEFAULT_SINK`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<String>,
    /// For events: the event body, exactly as it would be published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Box<RawValue>>,
    /// For records: the stream record exactly as Lambda delivered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<Box<RawValue>>,
    /// Whether the unit was entered in the parked-items registry before it
    /// was parked (see [`super::registry`]).
    #[serde(default)]
    pub registered: bool,
    /// Publishing attempts so far.
    pub attempts: u32,
    /// Why it was parked.
    pub last_error: String,
    /// When it was parked (RFC 3339).
    pub parked_at: String,
}

impl Envelope {
    /// The unit's place in its item's stream order.
    pub fn unit(&self) -> UnitId {
        let part = match self.kind {
            ParcelKind::Event => Part::Event(self.index.unwrap_or(0)),
            ParcelKind::Record => Part::Record,
        };
        let content = self
            .body
            .as_deref()
            .or(self.record.as_deref())
            .map(RawValue::get)
            .unwrap_or("");
        UnitId::new(self.sequence_number.as_deref(), part, content)
    }

    /// When it was parked, in milliseconds since the epoch.
    pub fn parked_at_ms(&self) -> Option<u64> {
        parse_rfc3339_ms(&self.parked_at)
    }

    /// Checks that the envelope holds what its kind needs, so re-drive never
    /// trips over a forged or truncated message.
    pub fn validate(&self) -> Result<(), String> {
        if self.version != ENVELOPE_VERSION {
            return Err(format!("unknown envelope version {}", self.version));
        }
        match self.kind {
            ParcelKind::Event => {
                let body = self
                    .body
                    .as_deref()
                    .ok_or("a parked event without a body")?;
                if !body.get().starts_with('{') {
                    return Err("a parked event whose body is not a JSON object".into());
                }
                match self.event_type.as_deref() {
                    Some(t) if !t.is_empty() => {}
                    _ => return Err("a parked event without an event type".into()),
                }
            }
            ParcelKind::Record => {
                if self.record.is_none() {
                    return Err("a parked record without the raw record".into());
                }
            }
        }
        Ok(())
    }

    /// What identifies the unit's content, whatever its attempts, reason and
    /// parking time: the base of FIFO deduplication ids and claim-check keys.
    pub fn content_digest(&self) -> String {
        let mut hash = sha2::Sha256::new();
        for part in [
            format!("{:?}", self.kind).as_str(),
            self.table.as_deref().unwrap_or("\u{0}"),
            self.item.as_deref().unwrap_or("\u{0}"),
            self.sequence_number.as_deref().unwrap_or("\u{0}"),
            &self.index.map(|i| i.to_string()).unwrap_or_default(),
            self.event_type.as_deref().unwrap_or("\u{0}"),
            self.eid.as_deref().unwrap_or("\u{0}"),
            self.key.as_deref().unwrap_or("\u{0}"),
            self.body.as_deref().map(RawValue::get).unwrap_or("\u{0}"),
            self.record.as_deref().map(RawValue::get).unwrap_or("\u{0}"),
        ] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
        // Added after the others, so envelopes without a sink keep their digest.
        if let Some(sink) = &self.sink {
            hash.update(b"sink");
            hash.update((sink.len() as u64).to_le_bytes());
            hash.update(sink.as_bytes());
        }
        hex(&hash.finalize())
    }
}

/// Parses an RFC 3339 time (`YYYY-MM-DDTHH:MM:SS.mmmZ` as the park stage
/// writes it) to milliseconds since the epoch.
pub fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    use aws_sdk_sqs::primitives::{DateTime, DateTimeFormat};
    let at = DateTime::from_str(text, DateTimeFormat::DateTime).ok()?;
    u64::try_from(at.to_millis().ok()?).ok()
}

/// Which part of a record a unit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The record's event at this position of the transform's output.
    Event(u32),
    /// The raw record itself (it failed before producing events).
    Record,
}

/// A parked unit's identity within its item, ordered as the stream is: by
/// sequence number (compared as a number), then by the event's position.
/// A record without a usable sequence number sorts after every other one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitId(String);

impl UnitId {
    /// Digits sequence numbers are padded to, so that text order is number
    /// order (DynamoDB's have up to 40).
    const WIDTH: usize = 48;

    /// The unit `part` of the record with `sequence_number`; `content` (the
    /// raw record or event body) names units of records without one.
    pub fn new(sequence_number: Option<&str>, part: Part, content: &str) -> UnitId {
        let position = match sequence_number {
            Some(seq)
                if !seq.is_empty()
                    && seq.len() <= Self::WIDTH
                    && seq.bytes().all(|b| b.is_ascii_digit()) =>
            {
                format!("{seq:0>width$}", width = Self::WIDTH)
            }
            _ => format!("~{}", &hex(&sha2::Sha256::digest(content.as_bytes()))[..32]),
        };
        match part {
            Part::Event(index) => UnitId(format!("{position}/e{index:06}")),
            Part::Record => UnitId(format!("{position}/r")),
        }
    }

    /// Reads back a unit written by [`UnitId::as_str`].
    pub fn parse(text: &str) -> Option<UnitId> {
        let (position, part) = text.split_once('/')?;
        let position_ok = (position.len() == Self::WIDTH
            && position.bytes().all(|b| b.is_ascii_digit()))
            || (position.len() == 33 && position.starts_with('~'));
        let part_ok = part == "r"
            || (part.len() == 7
                && part.starts_with('e')
                && part[1..].bytes().all(|b| b.is_ascii_digit()));
        (position_ok && part_ok).then(|| UnitId(text.to_owned()))
    }

    /// The unit as text (its order is the stream's).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UnitId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Serialize, Deserialize)]
struct Compressed {
    version: u32,
    encoding: String,
    payload: String,
}

/// A claim check: the envelope JSON is in S3, too large for any queue
/// message. The pointer names the item and unit, so a pointer whose payload
/// cannot be fetched still blocks its item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointer {
    /// Envelope format version.
    pub version: u32,
    /// Always `s3`.
    pub encoding: String,
    /// The bucket holding the payload.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// The payload's size in bytes.
    pub bytes: usize,
    /// The payload's sha256 (hex), checked when it is read back.
    pub sha256: String,
    /// The envelope's item, for ordering when the payload cannot be read.
    pub item: Option<String>,
    /// The envelope's unit.
    pub unit: String,
    /// Whether the unit was registered.
    #[serde(default)]
    pub registered: bool,
}

impl Pointer {
    /// The pointer to `json` (an envelope of `envelope`) stored at `bucket/key`.
    pub fn new(envelope: &Envelope, json: &str, bucket: &str, key: &str) -> Pointer {
        Pointer {
            version: ENVELOPE_VERSION,
            encoding: "s3".into(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            bytes: json.len(),
            sha256: hex(&sha2::Sha256::digest(json.as_bytes())),
            item: envelope.item.clone(),
            unit: envelope.unit().as_str().to_owned(),
            registered: envelope.registered,
        }
    }

    /// The payload read back from S3 as an envelope, if it is the one pointed at.
    pub fn open(&self, payload: &[u8]) -> Result<Envelope, String> {
        let digest = hex(&sha2::Sha256::digest(payload));
        if digest != self.sha256 {
            return Err(format!(
                "the payload s3://{}/{} does not match its sha256 (expected {}, got {digest})",
                self.bucket, self.key, self.sha256
            ));
        }
        let text = std::str::from_utf8(payload).map_err(|e| format!("payload not UTF-8: {e}"))?;
        read_envelope(text)
    }
}

/// Why a message body cannot be used as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Even compressed, the body exceeds the room the queue leaves for it.
    #[error("the message is {size} bytes compressed, over the {max} bytes the queue takes")]
    TooLarge {
        /// Compressed size.
        size: usize,
        /// The room for the body.
        max: usize,
    },
}

/// The envelope as JSON text.
pub fn to_json(envelope: &Envelope) -> String {
    serde_json::to_string(envelope).expect("envelopes serialize")
}

/// The message body for an envelope's JSON: itself when it fits in
/// `max_bytes` and is legal in SQS, gzip + base64 otherwise.
pub fn encode(json: &str, max_bytes: usize) -> Result<String, EncodeError> {
    if json.len() <= max_bytes && json.chars().all(sqs_legal) {
        return Ok(json.to_owned());
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(json.as_bytes())
        .expect("writing to a Vec cannot fail");
    let gz = encoder.finish().expect("writing to a Vec cannot fail");
    let body = serde_json::to_string(&Compressed {
        version: ENVELOPE_VERSION,
        encoding: "gzip+base64".into(),
        payload: base64::engine::general_purpose::STANDARD.encode(gz),
    })
    .expect("serializes");
    if body.len() <= max_bytes {
        Ok(body)
    } else {
        Err(EncodeError::TooLarge {
            size: body.len(),
            max: max_bytes,
        })
    }
}

/// What a message body holds.
#[derive(Debug)]
pub enum Stored {
    /// The envelope itself.
    Envelope(Envelope),
    /// A claim check: fetch the envelope from S3.
    Pointer(Pointer),
}

/// Reads a message body written by [`encode`] or a [`Pointer`]. Anything
/// else, a forged or truncated envelope included, is an error (the message
/// is poison), never a panic.
pub fn decode(body: &str) -> Result<Stored, String> {
    #[derive(Deserialize)]
    struct Probe {
        encoding: Option<String>,
    }
    let probe: Probe = serde_json::from_str(body).map_err(|e| format!("not a JSON object: {e}"))?;
    match probe.encoding.as_deref() {
        None => read_envelope(body).map(Stored::Envelope),
        Some("gzip+base64") => {
            let compressed: Compressed =
                serde_json::from_str(body).map_err(|e| format!("bad compressed envelope: {e}"))?;
            let gz = base64::engine::general_purpose::STANDARD
                .decode(compressed.payload)
                .map_err(|e| format!("bad base64: {e}"))?;
            // A forged payload may claim anything: read at most 64 MiB.
            let mut json = String::new();
            flate2::read::GzDecoder::new(&gz[..])
                .take(64 << 20)
                .read_to_string(&mut json)
                .map_err(|e| format!("bad gzip: {e}"))?;
            read_envelope(&json).map(Stored::Envelope)
        }
        Some("s3") => {
            let pointer: Pointer =
                serde_json::from_str(body).map_err(|e| format!("bad S3 pointer: {e}"))?;
            if pointer.version != ENVELOPE_VERSION {
                return Err(format!("unknown pointer version {}", pointer.version));
            }
            UnitId::parse(&pointer.unit)
                .ok_or_else(|| format!("bad unit {:?} in an S3 pointer", pointer.unit))?;
            Ok(Stored::Pointer(pointer))
        }
        Some(other) => Err(format!("unknown encoding {other:?}")),
    }
}

fn read_envelope(json: &str) -> Result<Envelope, String> {
    let envelope: Envelope =
        serde_json::from_str(json).map_err(|e| format!("bad envelope: {e}"))?;
    envelope.validate()?;
    Ok(envelope)
}

/// Characters SQS accepts in a message body or attribute value (XML 1.0's).
pub fn sqs_legal(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn envelope(body: &str) -> Envelope {
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
            sink: None,
            body: Some(RawValue::from_string(body.to_owned()).unwrap()),
            record: None,
            registered: false,
            attempts: 3,
            last_error: "status 503".into(),
            parked_at: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    fn read(body: &str) -> Envelope {
        match decode(body).unwrap() {
            Stored::Envelope(e) => e,
            Stored::Pointer(p) => panic!("a pointer: {p:?}"),
        }
    }

    #[test]
    fn small_envelopes_stay_plain_json() {
        let body = encode(&to_json(&envelope(r#"{"a":1}"#)), 1024).unwrap();
        assert!(body.starts_with(r#"{"version":1,"kind":"event""#), "{body}");
        assert_eq!(read(&body).body.unwrap().get(), r#"{"a":1}"#);
    }

    #[test]
    fn large_envelopes_are_compressed_and_round_trip() {
        let big = format!(r#"{{"text":"{}"}}"#, "abc".repeat(10_000));
        let body = encode(&to_json(&envelope(&big)), 4096).unwrap();
        assert!(body.len() <= 4096);
        assert!(body.contains("gzip+base64"));
        assert_eq!(read(&body).body.unwrap().get(), big);
    }

    #[test]
    fn characters_sqs_refuses_force_compression() {
        let body = encode(&to_json(&envelope("{\"a\":\"\u{FFFF}\"}")), 4096).unwrap();
        assert!(body.contains("gzip+base64"));
        assert_eq!(read(&body).body.unwrap().get(), "{\"a\":\"\u{FFFF}\"}");
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
        let err = encode(&to_json(&envelope(&format!(r#"{{"n":"{noise}"}}"#))), 4096).unwrap_err();
        assert!(
            matches!(err, EncodeError::TooLarge { max: 4096, .. }),
            "{err}"
        );
    }

    #[test]
    fn envelopes_missing_what_their_kind_needs_are_refused() {
        let mut no_body = serde_json::to_value(envelope(r#"{"a":1}"#)).unwrap();
        no_body.as_object_mut().unwrap().remove("body");
        let err = decode(&no_body.to_string()).unwrap_err();
        assert!(err.contains("without a body"), "{err}");

        let mut no_type = serde_json::to_value(envelope(r#"{"a":1}"#)).unwrap();
        no_type.as_object_mut().unwrap().remove("event_type");
        assert!(decode(&no_type.to_string()).is_err());

        let mut array_body = serde_json::to_value(envelope(r#"{"a":1}"#)).unwrap();
        array_body["body"] = serde_json::json!([1]);
        assert!(decode(&array_body.to_string()).is_err());

        let mut record = serde_json::to_value(envelope(r#"{"a":1}"#)).unwrap();
        record["kind"] = "record".into();
        record.as_object_mut().unwrap().remove("body");
        let err = decode(&record.to_string()).unwrap_err();
        assert!(err.contains("without the raw record"), "{err}");

        for junk in ["", "null", "[]", "42", "{}", r#"{"encoding":"rot13"}"#] {
            assert!(decode(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn units_sort_in_stream_order() {
        let unit = |seq: &str, part| UnitId::new(Some(seq), part, "");
        let mut units = vec![
            unit("1000", Part::Event(0)),
            unit("99", Part::Event(2)),
            unit("99", Part::Event(10)),
            unit("100", Part::Record),
            UnitId::new(None, Part::Record, "{}"),
            unit("99", Part::Event(0)),
        ];
        units.sort();
        let seqs: Vec<&str> = units.iter().map(UnitId::as_str).collect();
        assert!(seqs[0].ends_with("99/e000000"), "{seqs:?}");
        assert!(seqs[1].ends_with("99/e000002"), "{seqs:?}");
        assert!(seqs[2].ends_with("99/e000010"), "{seqs:?}");
        assert!(seqs[3].ends_with("100/r"), "{seqs:?}");
        assert!(seqs[4].ends_with("1000/e000000"), "{seqs:?}");
        assert!(seqs[5].starts_with('~'), "{seqs:?}");
        for u in &units {
            assert_eq!(UnitId::parse(u.as_str()).as_ref(), Some(u));
        }
        assert_eq!(UnitId::parse("12/r"), None);
    }

    #[test]
    fn content_digest_ignores_attempts_and_reason_but_not_content() {
        let a = envelope(r#"{"a":1}"#);
        let mut b = a.clone();
        b.attempts = 9;
        b.last_error = "other".into();
        b.parked_at = "later".into();
        assert_eq!(a.content_digest(), b.content_digest());
        let c = envelope(r#"{"a":2}"#);
        assert_ne!(a.content_digest(), c.content_digest());
        let mut d = a.clone();
        d.sequence_number = None;
        assert_ne!(a.content_digest(), d.content_digest());
    }

    #[test]
    fn pointers_check_their_payload() {
        let e = envelope(r#"{"a":1}"#);
        let json = to_json(&e);
        let pointer = Pointer::new(&e, &json, "b", "k");
        let body = serde_json::to_string(&pointer).unwrap();
        let Stored::Pointer(read_back) = decode(&body).unwrap() else {
            panic!("a pointer")
        };
        assert_eq!(read_back, pointer);
        assert_eq!(
            read_back.open(json.as_bytes()).unwrap().eid.as_deref(),
            Some("e")
        );
        let err = read_back.open(b"{}").unwrap_err();
        assert!(err.contains("does not match its sha256"), "{err}");
    }
}
