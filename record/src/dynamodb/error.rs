//! Why a batch, a record or an attribute value cannot be decoded.

use std::fmt;

use serde_json::Value;

/// Why a stream record, or an attribute value in it, cannot be decoded.
///
/// Decoding is deterministic: the same record always fails the same way, so
/// such a record is parked with its raw JSON, never retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The record (or a part of it that must be an object) is some other kind
    /// of JSON value.
    NotAnObject {
        /// What should have been an object, e.g. `the record`.
        what: &'static str,
        /// The kind of JSON value found instead, e.g. `an array`.
        found: &'static str,
    },
    /// A required field is absent or `null`.
    MissingField(&'static str),
    /// A field is present but holds an unusable value.
    BadField {
        /// The field, with its parent, e.g. `dynamodb.SequenceNumber`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `eventName` is none of `INSERT`, `MODIFY`, `REMOVE`.
    UnknownEventName(String),
    /// `eventSourceARN` does not name a DynamoDB table (stream).
    BadEventSourceArn(String),
    /// An attribute value cannot be decoded.
    BadAttribute {
        /// Where the value sits, e.g. `NewImage.items[2].price`; empty for
        /// the value given to [`decode_value`](super::decode_value) itself.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnObject { what, found } => write!(f, "{what} is {found}, not a JSON object"),
            Self::MissingField(field) => write!(f, "the record has no `{field}` field"),
            Self::BadField { field, reason } => {
                write!(f, "the record's `{field}` field is invalid: {reason}")
            }
            Self::UnknownEventName(name) => write!(
                f,
                "the record's eventName {name:?} is not INSERT, MODIFY or REMOVE"
            ),
            Self::BadEventSourceArn(arn) => write!(
                f,
                "the record's eventSourceARN {arn:?} does not name a DynamoDB table stream \
                 (expected arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label>)"
            ),
            Self::BadAttribute { path, reason } => {
                write!(f, "{} cannot be decoded: {reason}", describe_path(path))
            }
        }
    }
}

impl std::error::Error for DecodeError {}

impl DecodeError {
    /// Always `false`: decoding the same bytes again gives the same answer.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

fn describe_path(path: &str) -> String {
    if path.is_empty() {
        "the attribute value".to_owned()
    } else {
        format!("attribute `{path}`")
    }
}

/// Why the input as a whole is neither a Lambda DynamoDB Streams event nor a
/// single stream record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    /// The text is not JSON at all.
    NotJson(String),
    /// The event's `Records` field is not an array.
    RecordsNotArray(&'static str),
    /// The JSON has neither accepted shape.
    UnknownShape(&'static str),
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJson(reason) => write!(f, "the input is not valid JSON: {reason}"),
            Self::RecordsNotArray(found) => write!(
                f,
                "the event's `Records` field is {found}, not an array of stream records"
            ),
            Self::UnknownShape(found) => write!(
                f,
                "the input is {found}, but neither a Lambda DynamoDB Streams event \
                 ({{\"Records\": [...]}}) nor a single stream record (an object with a \"dynamodb\" field)"
            ),
        }
    }
}

impl std::error::Error for InputError {}

impl InputError {
    /// Always `false`: the same input fails the same way.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

/// A record of a batch that could not be parsed, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// Zero-based position of the record in the event's `Records` array.
    pub index: usize,
    /// The record's `dynamodb.SequenceNumber`, when it could be read at all.
    pub sequence_number: Option<String>,
    /// Why the record is bad.
    pub error: DecodeError,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sequence_number {
            Some(seq) => write!(
                f,
                "record #{} (sequence number {seq}): {}",
                self.index, self.error
            ),
            None => write!(f, "record #{}: {}", self.index, self.error),
        }
    }
}

impl std::error::Error for RecordError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// How a JSON value is described in error messages: `a string`, `an array`, ...
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
