//! Batches: the input shapes (a Lambda DynamoDB Streams event or a single
//! stream record) split into raw records, each parsed on its own.

use serde_json::value::RawValue;
use serde_json::Value;

use super::{json_kind, parse_record, sequence_number, InputError, RecordError};
use crate::Record;

/// Splits a Lambda DynamoDB Streams event (`{"Records": [...]}`) or a single
/// stream record (an object with a `dynamodb` field) into raw records,
/// without interpreting them.
///
/// An event with an empty `Records` array gives an empty list.
pub fn split_records(text: &str) -> Result<Vec<Value>, InputError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| InputError::NotJson(e.to_string()))?;
    match value {
        Value::Object(mut map) => {
            if let Some(records) = map.remove("Records") {
                match records {
                    Value::Array(records) => Ok(records),
                    other => Err(InputError::RecordsNotArray(json_kind(&other))),
                }
            } else if map.contains_key("dynamodb") {
                Ok(vec![Value::Object(map)])
            } else {
                Err(InputError::UnknownShape("an object"))
            }
        }
        other => Err(InputError::UnknownShape(json_kind(&other))),
    }
}

/// Splits the input like [`split_records`], but into the records' raw
/// texts: nothing of a record is parsed yet, so a large input never becomes
/// one tree of values. Errors are those of [`split_records`].
pub fn split_raw_records(text: &str) -> Result<Vec<&RawValue>, InputError> {
    /// The top level, read in one pass.
    #[derive(serde::Deserialize)]
    struct Top<'a> {
        #[serde(rename = "Records", borrow)]
        records: Option<Vec<&'a RawValue>>,
        dynamodb: Option<serde::de::IgnoredAny>,
    }
    let raw = match serde_json::from_str::<Top<'_>>(text) {
        Ok(Top {
            records: Some(records),
            ..
        }) => Some(records),
        Ok(Top {
            records: None,
            dynamodb: Some(_),
        }) => serde_json::from_str::<&RawValue>(text)
            .ok()
            .map(|r| vec![r]),
        _ => None,
    };
    match raw {
        Some(records) => Ok(records),
        // Not the shape wanted: say exactly why, as `split_records` does.
        None => split_records(text).map(|_| Vec::new()),
    }
}

/// Splits the input like [`split_records`] and parses every record on its
/// own: a bad record yields an `Err` at its position, the others still parse.
/// Only one record's values are alive at a time.
pub fn parse_records(text: &str) -> Result<Vec<Result<Record, RecordError>>, InputError> {
    let mut records = Vec::new();
    for (index, raw) in split_raw_records(text)?.iter().enumerate() {
        // A raw value is checked for its syntax only: an invalid escape or
        // nesting too deep shows when it is parsed, and makes the whole
        // input not JSON, exactly as `split_records` says.
        let Ok(raw) = serde_json::from_str::<Value>(raw.get()) else {
            return Err(not_json(text));
        };
        records.push(parse_record(&raw).map_err(|error| RecordError {
            index,
            sequence_number: sequence_number(&raw).map(str::to_owned),
            error,
        }));
    }
    Ok(records)
}

/// The error [`split_records`] gives for an input one of whose raw records
/// does not parse.
pub fn not_json(text: &str) -> InputError {
    match split_records(text) {
        Err(e) => e,
        Ok(_) => InputError::NotJson("a record is not valid JSON".into()),
    }
}
