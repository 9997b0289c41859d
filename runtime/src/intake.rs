//! Intake: split a Lambda DynamoDB Streams event into records, each parsed on
//! its own so one bad record never fails the batch.

use relay_sdk::dynamodb::{parse_record, DecodeError};
use relay_sdk::Record;
use serde_json::Value;

/// One record of the batch, as received and as decoded.
#[derive(Debug)]
pub struct Incoming {
    /// Position in the batch.
    pub index: usize,
    /// `dynamodb.SequenceNumber`, when the record has one.
    pub sequence_number: Option<String>,
    /// The record exactly as Lambda delivered it (parked when it cannot be mapped).
    pub raw: Value,
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

/// Splits a Lambda event into its records and decodes each one.
pub fn split(event: Value) -> Result<Vec<Incoming>, NotAStreamEvent> {
    let records = match event {
        Value::Object(mut map) => match map.remove("Records") {
            Some(Value::Array(records)) => records,
            Some(other) => {
                return Err(NotAStreamEvent(format!(
                    "\"Records\" is {}, not an array",
                    relay_sdk::dynamodb::json_kind(&other)
                )))
            }
            None => return Err(NotAStreamEvent("it has no \"Records\" array".into())),
        },
        other => return Err(NotAStreamEvent(format!("it is {}", relay_sdk::dynamodb::json_kind(&other)))),
    };
    Ok(records
        .into_iter()
        .enumerate()
        .map(|(index, raw)| Incoming {
            index,
            sequence_number: raw
                .pointer("/dynamodb/SequenceNumber")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            decoded: parse_record(&raw),
            raw,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let batch = split(json!({"Records": [good, bad, 42]})).unwrap();
        assert_eq!(batch.len(), 3);
        assert!(batch[0].decoded.is_ok());
        assert!(batch[1].decoded.is_err());
        assert_eq!(batch[1].sequence_number.as_deref(), Some("200"));
        assert!(batch[2].decoded.is_err());
        assert_eq!(batch[2].label(), "#2 (no sequence number)");
    }

    #[test]
    fn not_a_stream_event_is_refused() {
        assert!(split(json!({"foo": 1})).is_err());
        assert!(split(json!({"Records": {}})).is_err());
        assert!(split(json!([1])).is_err());
    }
}
