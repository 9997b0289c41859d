//! Intake: split a Lambda DynamoDB Streams event into records, each decoded
//! on its own so one bad record never fails the batch.

use relay_record::dynamodb::{decode_record_text, parse_record, DecodeError};
use relay_record::Record;
use serde_json::value::RawValue;
use serde_json::Value;

/// One record of the batch, as received and as decoded.
#[derive(Debug)]
pub struct Incoming {
    /// Position in the batch.
    pub index: usize,
    /// `dynamodb.SequenceNumber`, when the record has one.
    pub sequence_number: Option<String>,
    /// The item (`table/keys`, keys as compact JSON), taken best-effort from
    /// `eventSourceARN` and `dynamodb.Keys` even when the rest of the record
    /// cannot be decoded, so its parked form keeps its place in the item's order.
    pub item: Option<String>,
    /// The record exactly as Lambda delivered it (parked when it cannot be mapped).
    pub raw: Box<RawValue>,
    /// The decoded record, or why it could not be decoded.
    pub decoded: Result<Record, DecodeError>,
}

impl Incoming {
    /// The record for logs: its sequence number, or its position when it has none.
    pub fn label(&self) -> String {
        match &self.sequence_number {
            Some(seq) => seq.clone(),
            None => format!("#{} (no sequence number)", self.index),
        }
    }
}

/// The batch is not a DynamoDB Streams event at all.
#[derive(Debug, thiserror::Error)]
#[error("the invocation is not a DynamoDB Streams event: {0}")]
pub struct NotAStreamEvent(String);

/// The batch with its records still as text: each is decoded on its own,
/// straight from its text (parsed into a tree only when that fails, for the
/// error), so a 6 MB batch never sits in memory as one tree.
#[derive(serde::Deserialize)]
struct Batch {
    #[serde(rename = "Records")]
    records: Vec<Box<RawValue>>,
}

/// Splits a Lambda event into its records and decodes each one.
pub fn split(event: &RawValue) -> Result<Vec<Incoming>, NotAStreamEvent> {
    split_on(event, 1)
}

/// Like [`split`], decoding on up to `threads` threads at once (each takes a
/// run of consecutive records; the order is kept).
pub fn split_on(event: &RawValue, threads: usize) -> Result<Vec<Incoming>, NotAStreamEvent> {
    let batch: Batch = serde_json::from_str(event.get()).map_err(|e| {
        NotAStreamEvent(format!(
            "it needs a \"Records\" array of stream records ({e})"
        ))
    })?;
    let mut records: Vec<(usize, Box<RawValue>)> = batch.records.into_iter().enumerate().collect();
    // Below a few dozen records per thread, a thread costs more than it saves.
    let threads = threads.clamp(1, (records.len() / 64).max(1));
    if threads == 1 {
        return Ok(records.into_iter().map(decode).collect());
    }
    let chunk = records.len().div_ceil(threads);
    let mut runs = Vec::with_capacity(threads);
    while records.len() > chunk {
        let rest = records.split_off(chunk);
        runs.push(std::mem::replace(&mut records, rest));
    }
    runs.push(records);
    let mut runs = runs.into_iter();
    let own = runs.next().unwrap_or_default();
    Ok(std::thread::scope(|scope| {
        let helpers: Vec<_> = runs
            .map(|run| scope.spawn(move || run.into_iter().map(decode).collect::<Vec<_>>()))
            .collect();
        let mut decoded: Vec<Incoming> = own.into_iter().map(decode).collect();
        for helper in helpers {
            decoded.extend(helper.join().expect("decoding does not panic"));
        }
        decoded
    }))
}

/// Decodes one record straight from its text; one that does not decode so
/// is parsed as a tree, for its error and its sequence number and item,
/// taken best-effort.
fn decode((index, raw): (usize, Box<RawValue>)) -> Incoming {
    if let Some(record) = decode_record_text(raw.get()) {
        return Incoming {
            index,
            sequence_number: Some(record.sequence_number.clone()),
            item: Some(item_of(&record.table, &record.keys)),
            raw,
            decoded: Ok(record),
        };
    }
    let (sequence_number, item, decoded) = match serde_json::from_str::<Value>(raw.get()) {
        Ok(value) => {
            let decoded = parse_record(&value);
            let item = match &decoded {
                Ok(record) => Some(item_of(&record.table, &record.keys)),
                Err(_) => best_effort_item(&value),
            };
            let sequence_number = relay_record::dynamodb::sequence_number(&value)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            (sequence_number, item, decoded)
        }
        Err(e) => (
            None,
            None,
            Err(DecodeError::BadField {
                field: "record",
                reason: e.to_string(),
            }),
        ),
    };
    Incoming {
        index,
        sequence_number,
        item,
        raw,
        decoded,
    }
}

/// An item's identity: its table and its key as compact JSON (attribute
/// names sorted), the same however the record was written.
pub fn item_of(table: &str, keys: &Value) -> String {
    format!("{table}/{keys}")
}

/// The item of a record that cannot be decoded as a whole, if its
/// `eventSourceARN` and `dynamodb.Keys` can be.
fn best_effort_item(raw: &Value) -> Option<String> {
    let table = relay_record::dynamodb::table_from_arn(raw.get("eventSourceARN")?.as_str()?)?;
    let keys = relay_record::dynamodb::decode_item(raw.get("dynamodb")?.get("Keys")?).ok()?;
    Some(item_of(table, &keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(value: Value) -> Box<RawValue> {
        RawValue::from_string(value.to_string()).unwrap()
    }

    #[test]
    fn one_bad_record_does_not_spoil_the_batch() {
        let good = json!({
            "eventID": "1", "eventName": "INSERT", "eventSource": "aws:dynamodb",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/orders/stream/x",
            "dynamodb": {"Keys": {"id": {"S": "a"}}, "NewImage": {"id": {"S": "a"}},
                         "SequenceNumber": "100", "StreamViewType": "NEW_AND_OLD_IMAGES",
                         "ApproximateCreationDateTime": 1.0, "SizeBytes": 1}
        });
        let mut bad = good.clone();
        bad["dynamodb"]["NewImage"]["b"] = json!({"B": "not base64!"});
        bad["dynamodb"]["SequenceNumber"] = json!("200");
        let batch = split(&raw(json!({"Records": [good, bad, 42]}))).unwrap();
        assert_eq!(batch.len(), 3);
        assert!(batch[0].decoded.is_ok());
        assert!(batch[1].decoded.is_err());
        assert_eq!(batch[1].sequence_number.as_deref(), Some("200"));
        // The bad record still names its item, so it keeps its place.
        assert_eq!(batch[1].item, batch[0].item);
        assert_eq!(batch[0].item.as_deref(), Some(r#"orders/{"id":"a"}"#));
        assert_eq!(batch[2].item, None);
        assert!(batch[2].decoded.is_err());
        assert_eq!(batch[2].label(), "#2 (no sequence number)");
    }

    #[test]
    fn decoding_on_several_threads_keeps_every_record_in_place() {
        let sample = crate::dev::sample::generate(&crate::dev::sample::SampleOptions {
            count: 301,
            seed: 5,
            ..Default::default()
        });
        let mut records = sample["Records"].as_array().unwrap().clone();
        records[17] = json!(42);
        records[250]["dynamodb"]["NewImage"] = json!({"b": {"B": "not base64!"}});
        let event = raw(json!({ "Records": records }));
        let one = format!("{:?}", split(&event).unwrap());
        for threads in [2, 3, 4, 64] {
            assert_eq!(
                format!("{:?}", split_on(&event, threads).unwrap()),
                one,
                "{threads} threads"
            );
        }
    }

    #[test]
    fn not_a_stream_event_is_refused() {
        assert!(split(&raw(json!({"foo": 1}))).is_err());
        assert!(split(&raw(json!({"Records": {}}))).is_err());
        assert!(split(&raw(json!([1]))).is_err());
    }
}
