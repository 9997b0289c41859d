//! DynamoDB Streams records as Lambda delivers them, decoded to plain JSON, exactly.
//!
//! One implementation serves the host at run time and transform authors in
//! native tests. The batch is parsed as generic JSON first
//! ([`split_records`]) and every record on its own afterwards
//! ([`parse_record`]), so one bad record never spoils the others.
//!
//! # Values
//!
//! | DynamoDB | plain JSON |
//! |---|---|
//! | `S` | string |
//! | `N` | number with the digits DynamoDB sent (see below) |
//! | `B` | the base64 string as received (checked to be standard, padded base64) |
//! | `BOOL` | `true` / `false` |
//! | `NULL` | `null` (the attribute value must be `{"NULL": true}`) |
//! | `M` / `L` | object / array |
//! | `SS` / `NS` / `BS` | array of strings / numbers / base64 strings |
//!
//! # Numbers
//!
//! A number never passes through `f64` or `i64`: its text is checked and
//! handed to serde_json's `arbitrary_precision` representation, so the
//! mantissa and exponent digits come out byte for byte (38-digit integers,
//! `-0.000000000000000000000000000000000000001`, `1E+130`). Accepted text is
//! an optional sign, digits with an optional fraction, and an optional
//! exponent. The representation changes only where JSON or serde_json
//! demands it, never the value:
//!
//! - the exponent marker is written `e` with an explicit sign:
//!   `1E+130` → `1e+130`, `1E130` → `1e+130`, `1e-5` stays `1e-5`
//!   (serde_json stores exponents that way);
//! - forms JSON forbids are normalized minimally: a leading `+` is dropped
//!   (`+5` → `5`), leading zeros of the integer part are dropped (`007` →
//!   `7`, `-00.5` → `-0.5`), a missing integer part becomes `0` (`.5` →
//!   `0.5`) and a dot without fraction digits is dropped (`5.` → `5`).
//!
//! DynamoDB's own limits (38 significant digits, magnitudes from 1E-130 to
//! below 1E+126) are enforced by DynamoDB when an item is written; the
//! decoder does not re-check them, so it never parks a record for a value
//! that it can carry exactly.

use std::fmt;

use serde_json::{Map, Value};

use crate::patch::push_json_string;
use crate::{Image, Operation, Record};

/// The attribute type keys DynamoDB uses, for error messages.
const TYPE_KEYS: &str = "S, N, B, BOOL, NULL, M, L, SS, NS or BS";

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
        /// the value given to [`decode_value`] itself.
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

    let ttl_delete = operation == Operation::Remove
        && present(rec, "userIdentity").is_some_and(|id| {
            id.get("type").and_then(Value::as_str) == Some("Service")
                && id.get("principalId").and_then(Value::as_str) == Some("dynamodb.amazonaws.com")
        });

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

/// Decodes an item image: a JSON object of attribute name → attribute value.
pub fn decode_item(map: &Value) -> Result<Value, DecodeError> {
    let obj = map.as_object().ok_or_else(|| DecodeError::BadAttribute {
        path: String::new(),
        reason: format!(
            "an item must be a JSON object of attribute names to attribute values, found {}",
            json_kind(map)
        ),
    })?;
    let mut out = String::new();
    decode_attributes(obj, &Path::Root(""), &mut out)?;
    Ok(parse_decoded(out))
}

/// Decodes one DynamoDB attribute value such as `{"N": "1.5"}` to plain JSON.
///
/// The value must be an object with exactly one known type key. Error paths
/// are relative to `av`.
pub fn decode_value(av: &Value) -> Result<Value, DecodeError> {
    let mut out = String::new();
    decode_at(av, &Path::Root(""), &mut out)?;
    Ok(parse_decoded(out))
}

/// Decodes an image (or the keys) of a record to compact JSON text.
fn decode_image(
    value: &Value,
    root: &'static str,
    field: &'static str,
) -> Result<String, DecodeError> {
    let obj = value.as_object().ok_or_else(|| DecodeError::BadField {
        field,
        reason: format!(
            "it is {}, not a JSON object of attribute names to attribute values",
            json_kind(value)
        ),
    })?;
    let mut out = String::with_capacity(1024);
    decode_attributes(obj, &Path::Root(root), &mut out)?;
    Ok(out)
}

/// The decoder's text as a value; it always is JSON.
fn parse_decoded(text: String) -> Value {
    serde_json::from_str(&text).expect("the decoder writes JSON")
}

/// Where a value sits, built on the stack as the walk descends and rendered
/// only when an error needs it.
enum Path<'a> {
    Root(&'static str),
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) {
        match self {
            Path::Root(root) => out.push_str(root),
            Path::Key(parent, key) => {
                parent.render_into(out);
                let plain = !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
                if plain {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                } else {
                    out.push('[');
                    out.push_str(&Value::String((*key).to_owned()).to_string());
                    out.push(']');
                }
            }
            Path::Index(parent, index) => {
                parent.render_into(out);
                out.push_str(&format!("[{index}]"));
            }
        }
    }

    fn error(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError::BadAttribute {
            path: self.render(),
            reason: reason.into(),
        }
    }
}

// The one decoder: it writes compact JSON text, as `Value::to_string` would
// write the decoded value (keys in `Map` order, serde_json's string
// escaping), and the `Value` functions above parse that text.

fn decode_attributes(
    obj: &Map<String, Value>,
    path: &Path<'_>,
    out: &mut String,
) -> Result<(), DecodeError> {
    // `obj` iterates in `Map` order, the order of the decoded object's keys.
    out.push('{');
    for (i, (name, av)) in obj.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(out, name);
        out.push(':');
        decode_at(av, &Path::Key(path, name), out)?;
    }
    out.push('}');
    Ok(())
}

fn decode_at(av: &Value, path: &Path<'_>, out: &mut String) -> Result<(), DecodeError> {
    let obj = av.as_object().ok_or_else(|| {
        path.error(format!(
            "expected an attribute value object such as {{\"S\": \"text\"}}, found {}",
            json_kind(av)
        ))
    })?;
    let mut entries = obj.iter();
    let (type_key, inner) = match (entries.next(), entries.next()) {
        (Some(entry), None) => entry,
        (None, _) => {
            return Err(path.error(format!(
                "the attribute value has no type key (expected one of {TYPE_KEYS})"
            )))
        }
        (Some(_), Some(_)) => {
            let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
            return Err(path.error(format!(
                "the attribute value has {} type keys ({}); it must have exactly one",
                keys.len(),
                keys.join(", ")
            )));
        }
    };
    match type_key.as_str() {
        "S" => {
            push_json_string(out, expect_str(inner, "S", path)?);
            Ok(())
        }
        "N" => number(expect_str(inner, "N", path)?, out).map_err(|reason| path.error(reason)),
        "B" => binary(expect_str(inner, "B", path)?, out).map_err(|reason| path.error(reason)),
        "BOOL" => match inner {
            Value::Bool(b) => {
                out.push_str(if *b { "true" } else { "false" });
                Ok(())
            }
            other => Err(path.error(format!(
                "BOOL must be true or false, found {}",
                json_kind(other)
            ))),
        },
        "NULL" => match inner {
            Value::Bool(true) => {
                out.push_str("null");
                Ok(())
            }
            other => Err(path.error(format!("NULL must be true, found {}", describe_json(other)))),
        },
        "M" => {
            let map = inner.as_object().ok_or_else(|| {
                path.error(format!(
                    "M must hold a JSON object, found {}",
                    json_kind(inner)
                ))
            })?;
            decode_attributes(map, path, out)
        }
        "L" => {
            let list = expect_array(inner, "L", path)?;
            out.push('[');
            for (i, av) in list.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                decode_at(av, &Path::Index(path, i), out)?;
            }
            out.push(']');
            Ok(())
        }
        "SS" => set(inner, "SS", path, out, |s, out| {
            push_json_string(out, s);
            Ok(())
        }),
        "NS" => set(inner, "NS", path, out, number),
        "BS" => set(inner, "BS", path, out, binary),
        other => Err(path.error(format!(
            "unknown attribute type key {other:?} (expected one of {TYPE_KEYS})"
        ))),
    }
}

fn set(
    inner: &Value,
    type_key: &str,
    path: &Path<'_>,
    out: &mut String,
    member: impl Fn(&str, &mut String) -> Result<(), String>,
) -> Result<(), DecodeError> {
    let list = expect_array(inner, type_key, path)?;
    out.push('[');
    for (i, v) in list.iter().enumerate() {
        let here = Path::Index(path, i);
        let text = v.as_str().ok_or_else(|| {
            here.error(format!(
                "{type_key} members must be strings, found {}",
                json_kind(v)
            ))
        })?;
        if i > 0 {
            out.push(',');
        }
        member(text, out).map_err(|reason| here.error(reason))?;
    }
    out.push(']');
    Ok(())
}

fn expect_str<'v>(
    inner: &'v Value,
    type_key: &str,
    path: &Path<'_>,
) -> Result<&'v str, DecodeError> {
    inner.as_str().ok_or_else(|| {
        path.error(format!(
            "{type_key} must hold a JSON string, found {}",
            json_kind(inner)
        ))
    })
}

fn expect_array<'v>(
    inner: &'v Value,
    type_key: &str,
    path: &Path<'_>,
) -> Result<&'v Vec<Value>, DecodeError> {
    inner.as_array().ok_or_else(|| {
        path.error(format!(
            "{type_key} must hold a JSON array, found {}",
            json_kind(inner)
        ))
    })
}

/// Appends a DynamoDB number's text as an exact JSON number (see the module
/// docs for the normalization of forms JSON forbids).
fn number(text: &str, out: &mut String) -> Result<(), String> {
    let decimal =
        Decimal::parse(text).ok_or_else(|| format!("{text:?} is not a DynamoDB number"))?;
    decimal.write_json(out);
    Ok(())
}

/// The parts of a decimal number's text: sign, integer digits, fraction
/// digits, exponent (sign included, digits as written).
struct Decimal<'a> {
    negative: bool,
    int: &'a str,
    frac: &'a str,
    exp: Option<(bool, &'a str)>,
}

impl<'a> Decimal<'a> {
    /// Accepts `[+-]? digits* (. digits*)? ([eE] [+-]? digits+)?` with at
    /// least one mantissa digit.
    fn parse(text: &'a str) -> Option<Self> {
        let (negative, rest) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exp) = match rest.find(['e', 'E']) {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        let (int, frac) = match mantissa.split_once('.') {
            Some((int, frac)) => (int, frac),
            None => (mantissa, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || !digits(frac) || int.len() + frac.len() == 0 {
            return None;
        }
        let exp = match exp {
            None => None,
            Some(e) => {
                let (exp_negative, e_digits) = match e.as_bytes().first()? {
                    b'-' => (true, &e[1..]),
                    b'+' => (false, &e[1..]),
                    _ => (false, e),
                };
                if e_digits.is_empty() || !digits(e_digits) {
                    return None;
                }
                Some((exp_negative, e_digits))
            }
        };
        Some(Decimal {
            negative,
            int,
            frac,
            exp,
        })
    }

    /// Appends text that JSON accepts, with the same digits wherever JSON
    /// allows: `-?(0|[1-9][0-9]*)(\.[0-9]+)?(e[+-][0-9]+)?`, which is also
    /// exactly how serde_json's `arbitrary_precision` number keeps it.
    fn write_json(&self, out: &mut String) {
        if self.negative {
            out.push('-');
        }
        let int = self.int.trim_start_matches('0');
        out.push_str(if int.is_empty() { "0" } else { int });
        if !self.frac.is_empty() {
            out.push('.');
            out.push_str(self.frac);
        }
        if let Some((negative, digits)) = self.exp {
            out.push('e');
            out.push(if negative { '-' } else { '+' });
            out.push_str(digits);
        }
    }

    /// The value times 1000, truncated toward zero; `None` when negative or
    /// beyond `u64`.
    fn millis(&self) -> Option<u64> {
        let exp: i64 = match self.exp {
            None => 0,
            Some((negative, digits)) => {
                let digits = digits.trim_start_matches('0');
                if digits.len() > 6 {
                    // |exponent| ≥ 10^6: zero or far beyond u64.
                    return if negative { Some(0) } else { None };
                }
                let e: i64 = if digits.is_empty() {
                    0
                } else {
                    digits.parse().ok()?
                };
                if negative {
                    -e
                } else {
                    e
                }
            }
        };
        let all: String = [self.int, self.frac].concat();
        let all = all.as_str();
        let all_zero = all.bytes().all(|b| b == b'0');
        if self.negative && !all_zero {
            return None;
        }
        // Position of the decimal point in `all` after multiplying by 1000.
        let point = self.int.len() as i64 + exp + 3;
        let whole: String = if point <= 0 {
            String::new()
        } else if point as usize >= all.len() {
            let zeros = point as usize - all.len();
            if zeros > 20 && !all_zero {
                return None;
            }
            format!("{all}{}", "0".repeat(zeros.min(20)))
        } else {
            all[..point as usize].to_owned()
        };
        let whole = whole.trim_start_matches('0');
        if whole.is_empty() {
            Some(0)
        } else {
            whole.parse().ok()
        }
    }
}

/// Standard base64 with padding: length a multiple of 4, alphabet
/// `A–Z a–z 0–9 + /`, at most two `=` at the end. Appends the text as a JSON
/// string, unchanged.
fn binary(text: &str, out: &mut String) -> Result<(), String> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return Err(format!(
            "{} is not base64: its length {} is not a multiple of 4 \
             (standard base64 with = padding is expected)",
            preview(text),
            bytes.len()
        ));
    }
    let padding = bytes.iter().rev().take_while(|&&b| b == b'=').count();
    if padding > 2 {
        return Err(format!(
            "{} is not base64: it ends in {padding} padding characters, at most 2 are allowed",
            preview(text)
        ));
    }
    let body = &bytes[..bytes.len() - padding];
    if let Some(at) = body
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'+' || b == b'/'))
    {
        let c = text[at..].chars().next().unwrap_or('?');
        let hint = match c {
            '-' | '_' => " (URL-safe base64 is not accepted)",
            '=' => " (padding may only appear at the end)",
            _ => "",
        };
        return Err(format!(
            "{} is not base64: character {c:?} at offset {at} is not in the standard alphabet{hint}",
            preview(text)
        ));
    }
    push_json_string(out, text);
    Ok(())
}

/// At most 40 characters of a value, quoted, for error messages.
fn preview(text: &str) -> String {
    if text.chars().count() <= 40 {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(40).collect();
        format!("{head:?}… ({} bytes)", text.len())
    }
}

fn creation_time_ms(value: &Value) -> Result<u64, String> {
    match value {
        Value::Number(n) => {
            let text = n.to_string();
            Decimal::parse(&text)
                .and_then(|d| d.millis())
                .ok_or_else(|| {
                    format!("{text} is not a non-negative number of seconds since the Unix epoch")
                })
        }
        Value::String(text) => Decimal::parse(text)
            .and_then(|d| d.millis())
            .or_else(|| iso8601_ms(text))
            .ok_or_else(|| {
                format!("{text:?} is neither seconds since the Unix epoch nor an ISO 8601 UTC time")
            }),
        other => Err(format!(
            "it is {}, expected seconds since the Unix epoch",
            json_kind(other)
        )),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction][Z|±HH:MM]` (no offset means UTC, as moto
/// writes it) to milliseconds since the epoch.
fn iso8601_ms(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let len = frac.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &frac[..len.min(3)]);
        millis = padded.parse::<i64>().ok()?;
        rest = &frac[len..];
    }
    let offset_minutes = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let r = &rest[1..];
            if r.len() != 5 || r.as_bytes()[2] != b':' {
                return None;
            }
            let h: i64 = r[..2].parse().ok()?;
            let m: i64 = r[3..].parse().ok()?;
            sign * (h * 60 + m)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    u64::try_from(seconds * 1000 + millis).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

fn describe_json(value: &Value) -> String {
    match value {
        Value::Bool(_) | Value::Null | Value::Number(_) => value.to_string(),
        other => json_kind(other).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Number;

    use super::*;

    fn ms(text: &str) -> Option<u64> {
        Decimal::parse(text).and_then(|d| d.millis())
    }

    #[test]
    fn seconds_become_truncated_millis() {
        assert_eq!(ms("1480642020"), Some(1_480_642_020_000));
        assert_eq!(ms("1480642020.5"), Some(1_480_642_020_500));
        assert_eq!(ms("1480642020.123999"), Some(1_480_642_020_123));
        assert_eq!(ms("1673322558.0"), Some(1_673_322_558_000));
        assert_eq!(ms("1.4806420201e9"), Some(1_480_642_020_100));
        assert_eq!(ms("1.4806420201E+9"), Some(1_480_642_020_100));
        assert_eq!(ms("14806420201e-1"), Some(1_480_642_020_100));
        assert_eq!(ms("0"), Some(0));
        assert_eq!(ms("-0"), Some(0));
        assert_eq!(ms("0.0001"), Some(0));
        assert_eq!(ms("1e-9999999"), Some(0));
        assert_eq!(ms("-1"), None);
        assert_eq!(ms("1e30"), None);
        assert_eq!(ms("1e9999999"), None);
        assert_eq!(ms("99999999999999999999"), None);
    }

    #[test]
    fn iso_8601_times_as_moto_writes_them() {
        assert_eq!(iso8601_ms("2026-01-15T08:00:00"), Some(1_768_464_000_000));
        assert_eq!(iso8601_ms("2026-01-15T08:00:00Z"), Some(1_768_464_000_000));
        assert_eq!(
            iso8601_ms("2026-01-15T08:00:00.123456"),
            Some(1_768_464_000_123)
        );
        assert_eq!(
            iso8601_ms("2026-01-15T08:00:00.1Z"),
            Some(1_768_464_000_100)
        );
        assert_eq!(
            iso8601_ms("2026-01-15T09:30:00+01:30"),
            Some(1_768_464_000_000)
        );
        assert_eq!(iso8601_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(iso8601_ms("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        assert_eq!(iso8601_ms("2026-13-01T00:00:00Z"), None);
        assert_eq!(iso8601_ms("2026-01-15"), None);
        assert_eq!(iso8601_ms("2026-01-15T08:00:00.Z"), None);
        assert_eq!(iso8601_ms("2026-01-15T08:00:00+0100"), None);
    }

    #[test]
    fn number_text_is_what_serde_json_keeps() {
        for text in [
            "0",
            "-0",
            "007",
            "-00.5",
            ".5",
            "5.",
            "+5",
            "1E130",
            "1e-5",
            "1E+007",
            "-0.000",
            "12345678901234567890123456789012345678",
            "9.99e-130",
        ] {
            let mut out = String::new();
            Decimal::parse(text).unwrap().write_json(&mut out);
            let kept: Number = serde_json::from_str(&out).unwrap();
            assert_eq!(kept.as_str(), out, "{text}");
        }
    }

    #[test]
    fn paths_render_like_accessors() {
        let root = Path::Root("NewImage");
        let items = Path::Key(&root, "items");
        let second = Path::Index(&items, 2);
        let price = Path::Key(&second, "price");
        assert_eq!(price.render(), "NewImage.items[2].price");
        let odd = Path::Key(&root, "a.b/c~d");
        assert_eq!(odd.render(), r#"NewImage["a.b/c~d"]"#);
        let bare = Path::Root("");
        assert_eq!(Path::Key(&bare, "price").render(), "price");
        assert_eq!(Path::Index(&bare, 0).render(), "[0]");
    }
}
