//! Events a transform returns, their deterministic identity, and builders for
//! Nakadi data change and business event bodies.

use std::cell::RefCell;

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::patch::push_json_string;
use crate::{Record, TransformError};

/// One event to publish: event type, JSON body and optional partition key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The bus event type (Nakadi event type name) to publish to.
    pub event_type: String,
    /// The event exactly as it is published: a JSON object text.
    pub body: String,
    /// Partition/ordering key; events with the same key keep their order.
    pub key: Option<String>,
}

impl Event {
    /// An event of `event_type` whose body is `body` serialized to JSON text.
    pub fn new(
        event_type: impl Into<String>,
        body: &impl Serialize,
    ) -> Result<Event, TransformError> {
        let body = serde_json::to_string(body)
            .map_err(|e| TransformError::failed(format!("event body does not serialize: {e}")))?;
        Ok(Event {
            event_type: event_type.into(),
            body,
            key: None,
        })
    }

    /// The same event with partition key `key`.
    pub fn with_key(mut self, key: impl Into<String>) -> Event {
        self.key = Some(key.into());
        self
    }
}

/// The namespace of every Relay event id (`eid`), a fixed UUID.
///
/// `eid = UUIDv5(EID_NAMESPACE, "{event_source_arn}\n{sequence_number}\n{index}")`,
/// see [`eid`]. Changing it changes every eid and breaks de-duplication of
/// re-delivered records: never change it.
pub const EID_NAMESPACE: &str = "8a193584-2c4f-4a92-b1cb-b897d7b977e7";

const EID_NAMESPACE_UUID: Uuid = Uuid::from_u128(0x8a193584_2c4f_4a92_b1cb_b897d7b977e7);

/// The deterministic event id of the `index`-th event a transform emits for
/// `record`: a UUIDv5 under [`EID_NAMESPACE`] over the stream ARN, the
/// sequence number and `index`.
///
/// The same record delivered twice, retried or re-driven yields the same eid,
/// so consumers can de-duplicate.
pub fn eid(record: &Record, index: u32) -> String {
    let mut out = String::with_capacity(uuid::fmt::Hyphenated::LENGTH);
    push_eid(&mut out, record, index);
    out
}

/// Appends [`eid`] to `out`: `Uuid::new_v5` of the name, hashed from the
/// SHA-1 state after the namespace and the stream ARN, which is kept per
/// thread (a batch's records mostly share their ARN).
fn push_eid(out: &mut String, record: &Record, index: u32) {
    thread_local! {
        static AFTER_ARN: RefCell<Option<(String, sha1_smol::Sha1)>> = const { RefCell::new(None) };
    }
    let arn = &record.event_source_arn;
    let mut hasher = AFTER_ARN.with(|cached| {
        let mut cached = cached.borrow_mut();
        match &*cached {
            Some((cached_arn, hasher)) if crate::scan::same(cached_arn, arn) => hasher.clone(),
            _ => {
                let mut hasher = sha1_smol::Sha1::new();
                hasher.update(EID_NAMESPACE_UUID.as_bytes());
                hasher.update(arn.as_bytes());
                hasher.update(b"\n");
                *cached = Some((arn.clone(), hasher.clone()));
                hasher
            }
        }
    });
    hasher.update(record.sequence_number.as_bytes());
    hasher.update(b"\n");
    let mut digits = [b'0'; 20];
    hasher.update(decimal(u64::from(index), 1, &mut digits).as_bytes());
    let digest = hasher.digest().bytes();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.push_str(
        uuid::Builder::from_sha1_bytes(bytes)
            .into_uuid()
            .hyphenated()
            .encode_lower(&mut text),
    );
}

/// When the change happened: the record's approximate creation time as
/// RFC 3339 UTC with milliseconds, e.g. `2024-03-01T12:34:56.789Z`.
///
/// Fails with [`TransformError::InvalidRecord`] when the record carries no
/// creation time.
pub fn occurred_at(record: &Record) -> Result<String, TransformError> {
    creation_ms(record).map(format_rfc3339_millis)
}

/// The record's approximate creation time, which every event needs.
fn creation_ms(record: &Record) -> Result<u64, TransformError> {
    record
        .approximate_creation_time_ms
        .ok_or_else(|| TransformError::invalid_record("record has no approximate creation time"))
}

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_rfc3339_millis(ms: u64) -> String {
    let mut out = String::with_capacity(24);
    push_rfc3339_millis(&mut out, ms);
    out
}

/// Appends [`format_rfc3339_millis`] of `ms` to `out`.
fn push_rfc3339_millis(out: &mut String, ms: u64) {
    let millis = ms % 1000;
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    if year <= 9999 {
        // Every field has its width: fill in a template, in 32 bits (see
        // `decimal`).
        let mut text = *b"0000-00-00T00:00:00.000Z";
        let two = |text: &mut [u8; 24], at: usize, value: u32| {
            text[at] = b'0' + (value / 10) as u8;
            text[at + 1] = b'0' + (value % 10) as u8;
        };
        let (year, rem, millis) = (year as u32, rem as u32, millis as u32);
        two(&mut text, 0, year / 100);
        two(&mut text, 2, year % 100);
        two(&mut text, 5, month as u32);
        two(&mut text, 8, day as u32);
        two(&mut text, 11, rem / 3600);
        two(&mut text, 14, rem % 3600 / 60);
        two(&mut text, 17, rem % 60);
        text[20] = b'0' + (millis / 100) as u8;
        two(&mut text, 21, millis % 100);
        out.push_str(std::str::from_utf8(&text).expect("ASCII digits"));
        return;
    }
    // Written digit by digit: `format!` costs more than the rest together.
    for (value, width, after) in [
        (year, 4, '-'),
        (month, 2, '-'),
        (day, 2, 'T'),
        (rem / 3600, 2, ':'),
        (rem % 3600 / 60, 2, ':'),
        (rem % 60, 2, '.'),
        (millis, 3, 'Z'),
    ] {
        push_number(out, value, width);
        out.push(after);
    }
}

/// Appends `value` in decimal, zero-padded to at least `width` digits.
fn push_number(out: &mut String, value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    out.push_str(decimal(value, width, &mut digits));
}

/// `value` in decimal, zero-padded to at least `width` digits, written at the
/// end of `digits` (which must hold `b'0'`s).
fn decimal(value: u64, width: usize, digits: &mut [u8; 20]) -> &str {
    let mut at = digits.len();
    // Small values in 32 bits: on wasm32 a 64-bit division by 10 is a
    // real division, a 32-bit one a multiplication.
    macro_rules! write_digits {
        ($value:expr) => {{
            let mut rest = $value;
            loop {
                at -= 1;
                digits[at] = b'0' + (rest % 10) as u8;
                rest /= 10;
                if rest == 0 {
                    break;
                }
            }
        }};
    }
    match u32::try_from(value) {
        Ok(small) => write_digits!(small),
        Err(_) => write_digits!(value),
    }
    let at = at.min(digits.len() - width.min(digits.len()));
    std::str::from_utf8(&digits[at..]).expect("ASCII digits")
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
///
/// Howard Hinnant's `civil_from_days`, for non-negative day counts: count in
/// 400-year eras starting on 0000-03-01 so the leap day ends each year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z % 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The Nakadi `metadata` object: `eid` and `occurred_at`.
fn metadata(record: &Record, index: u32) -> Result<Map<String, Value>, TransformError> {
    let mut metadata = Map::new();
    metadata.insert("eid".into(), Value::String(eid(record, index)));
    metadata.insert("occurred_at".into(), Value::String(occurred_at(record)?));
    Ok(metadata)
}

/// The record's primary key as compact JSON text with sorted attribute
/// names, e.g. `{"pk":"a","sk":1}`: the same item always gets the same key.
pub(crate) fn key_text(record: &Record) -> Result<String, TransformError> {
    if !record.keys.is_object() {
        return Err(TransformError::invalid_record(
            "record keys are not a JSON object",
        ));
    }
    Ok(record.keys_json())
}

/// The bytes of a data change body besides the item, the data type and the
/// patch: the field names and punctuation, `data_op`, the eid, and
/// `occurred_at` up to year 9999.
const BODY_FRAME_LEN: usize =
    r#"{"data":,"data_op":"C","data_type":,"metadata":{"eid":"","occurred_at":""},"patch":}"#.len()
        + uuid::fmt::Hyphenated::LENGTH
        + "2024-03-01T12:34:56.789Z".len();

/// Builds a Nakadi data change event for a record:
///
/// ```json
/// {"metadata": {"eid": "…", "occurred_at": "…"},
///  "data_op": "C|U|D", "data_type": "<data_type>",
///  "data": <item after the change; for D the item before>,
///  "patch": <RFC 6902 patch from old image to new image>}
/// ```
///
/// The partition key is the item's primary key as compact JSON text. When the
/// stream carries no image at all (`KEYS_ONLY`), `data` is the primary key.
/// A missing image counts as `{}` for the patch.
#[derive(Debug, Clone)]
pub struct DataChangeEvent {
    event_type: String,
    /// The data type as a JSON string, quotes and escapes written once.
    data_type_json: String,
}

impl DataChangeEvent {
    /// A builder for events of `event_type` whose `data_type` is `data_type`.
    pub fn new(event_type: impl Into<String>, data_type: impl Into<String>) -> Self {
        DataChangeEvent {
            event_type: event_type.into(),
            data_type_json: {
                let mut text = String::new();
                push_json_string(&mut text, &data_type.into());
                text
            },
        }
    }

    /// The data change event for `record`, the `index`-th event the
    /// transform emits for it (which decides its eid).
    pub fn build(&self, record: &Record, index: u32) -> Result<Event, TransformError> {
        // Written as text, keys in the order serializing a `Map` gives them
        // (sorted), with the image texts copied in: no values are built.
        let created_ms = creation_ms(record)?;
        let key = key_text(record)?;
        let image_len = |image: &Option<crate::Image>| image.as_ref().map_or(0, |i| i.json().len());
        let data_len = record.item().map_or(key.len(), |image| image.json().len());
        // The host's patch has its length; a diff of our own rarely needs
        // more than both images (growing the body would copy it).
        let host_patch = crate::host_patch::patch_of(record);
        let patch_len = host_patch.as_ref().map_or_else(
            || image_len(&record.old_image) + image_len(&record.new_image) + 64,
            String::len,
        );
        let mut body = String::with_capacity(
            data_len + patch_len + self.data_type_json.len() + BODY_FRAME_LEN,
        );
        body.push_str("{\"data\":");
        match record.item() {
            Some(image) => body.push_str(image.json()),
            None => body.push_str(&record.keys.to_string()),
        }
        body.push_str(",\"data_op\":\"");
        body.push_str(record.operation.data_op());
        body.push_str("\",\"data_type\":");
        body.push_str(&self.data_type_json);
        body.push_str(",\"metadata\":{\"eid\":\"");
        push_eid(&mut body, record, index);
        body.push_str("\",\"occurred_at\":\"");
        push_rfc3339_millis(&mut body, created_ms);
        body.push_str("\"},\"patch\":");
        match host_patch {
            Some(patch) => body.push_str(&patch),
            None => record.write_diff(&mut body),
        }
        body.push('}');
        Ok(Event {
            event_type: self.event_type.clone(),
            body,
            key: Some(key),
        })
    }
}

/// Builds a Nakadi business event: the author's payload object with
/// `"metadata": {"eid", "occurred_at"}` merged in.
///
/// A `metadata` object already in the payload keeps its other fields; `eid`
/// and `occurred_at` are always set by the builder. The payload must
/// serialize to a JSON object.
#[derive(Debug, Clone)]
pub struct BusinessEvent {
    event_type: String,
    payload: Result<Value, TransformError>,
    key: Option<String>,
}

impl BusinessEvent {
    /// A builder for an event of `event_type` carrying `payload`.
    ///
    /// Serialization errors surface from [`BusinessEvent::build`].
    pub fn new(event_type: impl Into<String>, payload: &impl Serialize) -> Self {
        let payload = serde_json::to_value(payload).map_err(|e| {
            TransformError::failed(format!("business event payload does not serialize: {e}"))
        });
        BusinessEvent {
            event_type: event_type.into(),
            payload,
            key: None,
        }
    }

    /// Sets the partition key (without one the host's default applies).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The business event for `record`, the `index`-th event the transform
    /// emits for it (which decides its eid).
    pub fn build(self, record: &Record, index: u32) -> Result<Event, TransformError> {
        let Value::Object(mut body) = self.payload? else {
            return Err(TransformError::failed(
                "business event payload is not a JSON object",
            ));
        };
        let mut meta = match body.remove("metadata") {
            None => Map::new(),
            Some(Value::Object(existing)) => existing,
            Some(_) => {
                return Err(TransformError::failed(
                    "business event payload has a `metadata` field that is not an object",
                ))
            }
        };
        meta.extend(metadata(record, index)?);
        body.insert("metadata".into(), Value::Object(meta));
        let event = Event::new(self.event_type, &body)?;
        Ok(match self.key {
            Some(key) => event.with_key(key),
            None => event,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Operation;

    fn record(operation: Operation) -> Record {
        Record {
            table: "orders".into(),
            event_source_arn:
                "arn:aws:dynamodb:eu-central-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000"
                    .into(),
            operation,
            keys: json!({"sk": 1, "pk": "a"}),
            old_image: Some(json!({"pk": "a", "sk": 1, "status": "NEW"}).into()),
            new_image: Some(json!({"pk": "a", "sk": 1, "status": "PAID"}).into()),
            sequence_number: "111".into(),
            event_id: "e1".into(),
            approximate_creation_time_ms: Some(1_709_296_496_789),
            ttl_delete: false,
        }
    }

    #[test]
    fn times_are_formatted_as_format_would() {
        for ms in [
            0,
            1,
            999,
            1_709_296_496_789,
            253_402_300_799_999,
            253_402_300_800_000,
            u64::MAX / 1000,
        ] {
            let secs = ms / 1000;
            let (year, month, day) = civil_from_days(secs / 86_400);
            let rem = secs % 86_400;
            let expected = format!(
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
                rem / 3600,
                rem % 3600 / 60,
                rem % 60,
                ms % 1000
            );
            assert_eq!(format_rfc3339_millis(ms), expected);
        }
        for (value, width) in [
            (0, 1),
            (7, 3),
            (12_345, 2),
            (u64::MAX, 1),
            (u64::MAX, 20),
            (5, 20),
        ] {
            let mut out = String::new();
            push_number(&mut out, value, width);
            assert_eq!(out, format!("{value:0width$}"));
        }
    }

    #[test]
    fn namespace_constant_matches() {
        assert_eq!(EID_NAMESPACE_UUID.to_string(), EID_NAMESPACE);
    }

    #[test]
    fn eid_is_deterministic_and_depends_on_arn_sequence_and_index() {
        let r = record(Operation::Modify);
        assert_eq!(eid(&r, 0), eid(&r.clone(), 0));
        assert_ne!(eid(&r, 0), eid(&r, 1));
        let mut other = r.clone();
        other.sequence_number = "112".into();
        assert_ne!(eid(&r, 0), eid(&other, 0));
        let mut other = r.clone();
        other.event_source_arn.push('x');
        assert_ne!(eid(&r, 0), eid(&other, 0));
        let id = Uuid::parse_str(&eid(&r, 0)).unwrap();
        assert_eq!(id.get_version_num(), 5);
        // Pinned: a change here breaks de-duplication across releases.
        let expected = Uuid::new_v5(
            &Uuid::parse_str(EID_NAMESPACE).unwrap(),
            format!("{}\n111\n0", r.event_source_arn).as_bytes(),
        );
        assert_eq!(eid(&r, 0), expected.to_string());
    }

    #[test]
    fn eid_is_uuid_v5_of_its_name_whatever_the_arn_before() {
        // The SHA-1 state kept after an ARN must serve only that ARN: ARNs
        // alternate, one a prefix of another, of lengths around a block.
        let base = record(Operation::Modify);
        let arns = [
            base.event_source_arn.clone(),
            format!("{}x", base.event_source_arn),
            "a".repeat(47),
            "a".repeat(48),
            "a".repeat(130),
            String::new(),
        ];
        for round in 0..2 {
            for (i, arn) in arns.iter().enumerate() {
                for index in [0, 7, 12_345] {
                    let mut r = base.clone();
                    r.event_source_arn = arn.clone();
                    r.sequence_number = format!("{round}{i}000111");
                    let name = format!("{arn}\n{}\n{index}", r.sequence_number);
                    let expected = Uuid::new_v5(&EID_NAMESPACE_UUID, name.as_bytes());
                    assert_eq!(eid(&r, index), expected.to_string(), "{name:?}");
                }
            }
        }
    }

    #[test]
    fn formats_rfc3339_millis() {
        assert_eq!(format_rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339_millis(1_709_296_496_789),
            "2024-03-01T12:34:56.789Z"
        );
        // 2000-02-29 (divisible by 400: leap)
        assert_eq!(
            format_rfc3339_millis(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
        // 2024-02-29 23:59:59.999
        assert_eq!(
            format_rfc3339_millis(1_709_251_199_999),
            "2024-02-29T23:59:59.999Z"
        );
        // 2100 is not a leap year: Feb 28 is followed by Mar 1.
        assert_eq!(
            format_rfc3339_millis(4_107_542_400_000),
            "2100-03-01T00:00:00.000Z"
        );
        assert_eq!(
            format_rfc3339_millis(4_107_542_399_999),
            "2100-02-28T23:59:59.999Z"
        );
        assert_eq!(
            format_rfc3339_millis(1_000 * 86_400 * 365 - 1),
            "1970-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn numbers_are_written_in_decimal_zero_padded() {
        let big = u64::from(u32::MAX);
        for value in [
            0,
            7,
            10,
            999,
            big - 1,
            big,
            big + 1,
            10_000_000_000,
            u64::MAX,
        ] {
            for width in [1, 3, 12, 20] {
                let mut out = String::new();
                push_number(&mut out, value, width);
                assert_eq!(out, format!("{value:0width$}"));
            }
        }
    }

    #[test]
    fn civil_from_days_matches_a_day_by_day_walk() {
        let (mut y, mut m, mut d) = (1970u64, 1u64, 1u64);
        for days in 0..(200 * 366) {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn occurred_at_needs_a_creation_time() {
        let mut r = record(Operation::Insert);
        assert_eq!(occurred_at(&r).unwrap(), "2024-03-01T12:34:56.789Z");
        r.approximate_creation_time_ms = None;
        assert!(matches!(
            occurred_at(&r),
            Err(TransformError::InvalidRecord(_))
        ));
    }

    #[test]
    fn data_change_event_body_and_key() {
        let r = record(Operation::Modify);
        let event = DataChangeEvent::new("orders.changed", "order")
            .build(&r, 0)
            .unwrap();
        assert_eq!(event.event_type, "orders.changed");
        assert_eq!(event.key.as_deref(), Some(r#"{"pk":"a","sk":1}"#));
        let body: Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(
            body,
            json!({
                "metadata": {"eid": eid(&r, 0), "occurred_at": "2024-03-01T12:34:56.789Z"},
                "data_op": "U",
                "data_type": "order",
                "data": {"pk": "a", "sk": 1, "status": "PAID"},
                "patch": [{"op": "replace", "path": "/status", "value": "PAID"}],
            })
        );
    }

    #[test]
    fn data_change_event_for_remove_carries_the_old_item() {
        let mut r = record(Operation::Remove);
        r.new_image = None;
        let event = DataChangeEvent::new("t", "d").build(&r, 0).unwrap();
        let body: Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(body["data_op"], "D");
        assert_eq!(body["data"], json!({"pk": "a", "sk": 1, "status": "NEW"}));
        assert_eq!(body["patch"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn data_change_body_is_written_without_growing() {
        // Growing copies the body: with the host's patch its size is known
        // exactly, and the SDK's own diff of a usual change fits too.
        let r = record(Operation::Modify);
        let builder = DataChangeEvent::new("t", "order \"v2\"");
        fn host() -> Option<String> {
            Some(r#"[{"op":"replace","path":"/status","value":"PAID"}]"#.into())
        }
        let body = crate::host_patch::with(&r, host, || builder.build(&r, 0).unwrap().body);
        assert_eq!(body.capacity(), body.len(), "{body}");
        let body = builder.build(&r, 0).unwrap().body;
        assert!(
            body.capacity() < 2 * body.len(),
            "{} for {body}",
            body.capacity()
        );
        assert!(body.contains(r#""patch":[{"op":"replace","path":"/status","value":"PAID"}]}"#));
    }

    #[test]
    fn data_change_event_escapes_its_data_type() {
        let r = record(Operation::Insert);
        let data_type = "order \"v2\"\\\n\u{1}é";
        let event = DataChangeEvent::new("t", data_type).build(&r, 0).unwrap();
        let body: Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(body["data_type"], data_type);
    }

    #[test]
    fn business_event_merges_metadata() {
        let r = record(Operation::Insert);
        let event = BusinessEvent::new(
            "order.paid",
            &json!({"order": "a", "metadata": {"partition_compaction_key": "a"}}),
        )
        .key("a")
        .build(&r, 2)
        .unwrap();
        assert_eq!(event.key.as_deref(), Some("a"));
        let body: Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(
            body,
            json!({
                "order": "a",
                "metadata": {
                    "partition_compaction_key": "a",
                    "eid": eid(&r, 2),
                    "occurred_at": "2024-03-01T12:34:56.789Z",
                },
            })
        );
    }

    #[test]
    fn business_event_rejects_non_objects() {
        let r = record(Operation::Insert);
        assert!(BusinessEvent::new("t", &json!([1])).build(&r, 0).is_err());
        assert!(BusinessEvent::new("t", &json!({"metadata": 1}))
            .build(&r, 0)
            .is_err());
    }
}
