//! A stream record's fields: event name, ARN and table, event id, sequence
//! number, keys, images, creation time and whether it is a TTL delete.

use serde_json::{Map, Value};

use super::time::creation_time_ms;
use super::value::{decode_image, parse_decoded};
use super::{json_kind, DecodeError};
use crate::{Image, Operation, Record};

/// The `dynamodb.SequenceNumber` of a raw record, if it is a non-empty
/// string; works on records that are otherwise bad.
pub fn sequence_number(raw: &Value) -> Option<&str> {
    raw.get("dynamodb")?
        .get("SequenceNumber")?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// The table name in a DynamoDB stream (or table) ARN.
///
/// `arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000`
/// gives `orders`. Returns `None` for anything that is not a DynamoDB table
/// or table stream ARN.
pub fn table_from_arn(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let (prefix, partition, service) = (parts.next()?, parts.next()?, parts.next()?);
    let (_region, _account, resource) = (parts.next()?, parts.next()?, parts.next()?);
    if prefix != "arn" || !partition.starts_with("aws") || service != "dynamodb" {
        return None;
    }
    let rest = resource.strip_prefix("table/")?;
    let (table, stream) = match rest.split_once('/') {
        Some((table, tail)) => (table, Some(tail)),
        None => (rest, None),
    };
    if table.is_empty() {
        return None;
    }
    match stream {
        None => Some(table),
        Some(tail) => match tail.strip_prefix("stream/") {
            Some(label) if !label.is_empty() => Some(table),
            _ => None,
        },
    }
}

/// Parses one Lambda DynamoDB Streams record into a [`Record`].
///
/// Required: `eventID`, `eventName`, `eventSourceARN`, `dynamodb.Keys`,
/// `dynamodb.SequenceNumber`. `NewImage` and `OldImage` are decoded when
/// present. `ApproximateCreationDateTime` (seconds since the epoch, possibly
/// fractional; moto's ISO 8601 text is accepted too) becomes milliseconds,
/// truncated. A `REMOVE` whose `userIdentity` is `{"type": "Service",
/// "principalId": "dynamodb.amazonaws.com"}` is a TTL delete.
pub fn parse_record(raw: &Value) -> Result<Record, DecodeError> {
    let rec = raw.as_object().ok_or(DecodeError::NotAnObject {
        what: "the record",
        found: json_kind(raw),
    })?;

    let arn = required_str(rec, "eventSourceARN", "eventSourceARN")?;
    let table =
        table_from_arn(arn).ok_or_else(|| DecodeError::BadEventSourceArn(arn.to_owned()))?;
    let event_name = required_str(rec, "eventName", "eventName")?;
    let operation = Operation::from_event_name(event_name)
        .ok_or_else(|| DecodeError::UnknownEventName(event_name.to_owned()))?;
    let event_id = required_str(rec, "eventID", "eventID")?;

    let ddb = present(rec, "dynamodb").ok_or(DecodeError::MissingField("dynamodb"))?;
    let ddb = ddb.as_object().ok_or(DecodeError::BadField {
        field: "dynamodb",
        reason: format!("it is {}, not a JSON object", json_kind(ddb)),
    })?;
    let sequence_number = required_str(ddb, "SequenceNumber", "dynamodb.SequenceNumber")?;
    if sequence_number.is_empty() {
        return Err(DecodeError::BadField {
            field: "dynamodb.SequenceNumber",
            reason: "it is empty".to_owned(),
        });
    }

    let keys = present(ddb, "Keys").ok_or(DecodeError::MissingField("dynamodb.Keys"))?;
    let keys = parse_decoded(decode_image(keys, "Keys", "dynamodb.Keys")?);
    let new_image = present(ddb, "NewImage")
        .map(|v| decode_image(v, "NewImage", "dynamodb.NewImage").map(Image::from_decoded))
        .transpose()?;
    let old_image = present(ddb, "OldImage")
        .map(|v| decode_image(v, "OldImage", "dynamodb.OldImage").map(Image::from_decoded))
        .transpose()?;

    let approximate_creation_time_ms = present(ddb, "ApproximateCreationDateTime")
        .map(creation_time_ms)
        .transpose()
        .map_err(|reason| DecodeError::BadField {
            field: "dynamodb.ApproximateCreationDateTime",
            reason,
        })?;

    let ttl_delete =
        operation == Operation::Remove && present(rec, "userIdentity").is_some_and(is_ttl_delete);

    Ok(Record {
        table: table.to_owned(),
        event_source_arn: arn.to_owned(),
        operation,
        keys,
        old_image,
        new_image,
        sequence_number: sequence_number.to_owned(),
        event_id: event_id.to_owned(),
        approximate_creation_time_ms,
        ttl_delete,
    })
}

/// Whether a REMOVE's `userIdentity` says DynamoDB's TTL process deleted
/// the item.
pub(super) fn is_ttl_delete(id: &Value) -> bool {
    id.get("type").and_then(Value::as_str) == Some("Service")
        && id.get("principalId").and_then(Value::as_str) == Some("dynamodb.amazonaws.com")
}

/// A field that is present and not `null`.
fn present<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn required_str<'v>(
    obj: &'v Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<&'v str, DecodeError> {
    let value = present(obj, key).ok_or(DecodeError::MissingField(field))?;
    value.as_str().ok_or_else(|| DecodeError::BadField {
        field,
        reason: format!("it is {}, expected a string", json_kind(value)),
    })
}
