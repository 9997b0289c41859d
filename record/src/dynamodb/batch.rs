//! Batches: the input shapes (a Lambda DynamoDB Streams event or a single
//! stream record) split into raw records, each parsed on its own.

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

/// Splits the input like [`split_records`] and parses every record on its
/// own: a bad record yields an `Err` at its position, the others still parse.
pub fn parse_records(text: &str) -> Result<Vec<Result<Record, RecordError>>, InputError> {
    Ok(split_records(text)?
        .iter()
        .enumerate()
        .map(|(index, raw)| {
            parse_record(raw).map_err(|error| RecordError {
                index,
                sequence_number: sequence_number(raw).map(str::to_owned),
                error,
            })
        })
        .collect())
}
