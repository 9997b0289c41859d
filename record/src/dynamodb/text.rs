//! A stream record decoded straight from its JSON text: one pass over the
//! text, writing the images' plain JSON as it goes, with no tree of values.
//!
//! It gives exactly what [`parse_record`] gives on the parsed text. Whatever
//! it does not accept at once (an error of any kind, a duplicate key,
//! nesting near serde_json's limit, an unknown shape) sends the record down
//! the tree path instead, which then gives the answer and its error message:
//! the fast path never decides an error itself.

use std::borrow::Cow;

use serde_json::Value;

use super::stream_record::{is_ttl_delete, table_from_arn};
use super::time::creation_time_ms;
use super::value::{binary, number, parse_decoded};
use super::{parse_record, DecodeError};
use crate::patch::push_json_string;
use crate::scan::{order, Scan};
use crate::{Image, Operation, Record};

/// Parses one stream record from its JSON text: the same [`Record`] (or
/// the same error) as [`parse_record`] on the parsed text, several times
/// faster for records it takes in one pass, which is any well-formed one.
///
/// A text that is not JSON gives a [`DecodeError::BadField`] for the field
/// `record`, with serde_json's message.
pub fn parse_record_text(text: &str) -> Result<Record, DecodeError> {
    if let Some(record) = decode_record_text(text) {
        return Ok(record);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(value) => parse_record(&value),
        Err(e) => Err(DecodeError::BadField {
            field: "record",
            reason: e.to_string(),
        }),
    }
}

/// The one-pass decoder alone: `Some` exactly when [`parse_record`] on the
/// parsed text would give `Ok` with this record, `None` when the record
/// needs the tree path (for its error, or for a shape it does not take).
pub fn decode_record_text(text: &str) -> Option<Record> {
    let mut scan = Scan::new(text);
    let record = record(&mut scan)?;
    scan.at_end().then_some(record)
}

/// A field met once: seen twice, serde_json would keep the last one, so
/// the fast path leaves such records to it.
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

fn record(scan: &mut Scan<'_>) -> Option<Record> {
    let (mut arn, mut name, mut id, mut ddb, mut user) = (None, None, None, None, None);
    scan.object(|scan, key| match &*key {
        "eventSourceARN" => once(&mut arn, scan.string()?),
        "eventName" => once(&mut name, scan.string()?),
        "eventID" => once(&mut id, scan.string()?),
        "dynamodb" => once(&mut ddb, dynamodb(scan)?),
        "userIdentity" => once(&mut user, scan.value()?),
        _ => scan.value().map(drop),
    })?;
    let arn = arn?;
    let table = table_from_arn(&arn)?.to_owned();
    let operation = Operation::from_event_name(&name?)?;
    let ddb = ddb?;
    let ttl_delete = operation == Operation::Remove
        && match user {
            None | Some("null") => false,
            Some(text) => is_ttl_delete(&serde_json::from_str(text).ok()?),
        };
    Some(Record {
        table,
        event_source_arn: arn.into_owned(),
        operation,
        keys: ddb.keys,
        old_image: ddb.old_image,
        new_image: ddb.new_image,
        sequence_number: ddb.sequence_number,
        event_id: id?.into_owned(),
        approximate_creation_time_ms: ddb.creation_time_ms,
        ttl_delete,
    })
}

/// The record's `dynamodb` object, decoded.
struct Dynamodb {
    keys: Value,
    old_image: Option<Image>,
    new_image: Option<Image>,
    sequence_number: String,
    creation_time_ms: Option<u64>,
}

fn dynamodb(scan: &mut Scan<'_>) -> Option<Dynamodb> {
    let (mut keys, mut old, mut new, mut seq, mut time) = (None, None, None, None, None);
    scan.object(|scan, key| match &*key {
        "Keys" => once(&mut keys, image(scan, 128)?),
        "NewImage" => once(&mut new, nullable_image(scan)?),
        "OldImage" => once(&mut old, nullable_image(scan)?),
        "SequenceNumber" => once(&mut seq, scan.string()?),
        "ApproximateCreationDateTime" => once(&mut time, scan.value()?),
        _ => scan.value().map(drop),
    })?;
    let sequence_number = seq.filter(|s| !s.is_empty())?.into_owned();
    let creation_time_ms = match time {
        None | Some("null") => None,
        Some(text) => Some(creation_time_ms(&serde_json::from_str(text).ok()?).ok()?),
    };
    Some(Dynamodb {
        keys: parse_decoded(keys?),
        old_image: old.flatten().map(Image::from_decoded),
        new_image: new.flatten().map(Image::from_decoded),
        sequence_number,
        creation_time_ms,
    })
}

fn nullable_image(scan: &mut Scan<'_>) -> Option<Option<String>> {
    if scan.null() {
        return Some(None);
    }
    // Plain JSON is about half as long as the attribute values it comes
    // from, and the rest of the record is mostly this image and the other.
    let capacity = (scan.rest() / 4).clamp(256, 64 << 10);
    image(scan, capacity).map(Some)
}

/// An image (or the keys): attribute names to attribute values, as compact
/// plain JSON.
fn image(scan: &mut Scan<'_>, capacity: usize) -> Option<String> {
    let mut out = Out {
        text: String::with_capacity(capacity),
        entries: Vec::new(),
    };
    attributes(scan, &mut out)?;
    Some(out.text)
}

/// What an image is written to: its text, and the entries of the maps
/// being written (each map's at the end, above its parents').
struct Out<'t> {
    text: String,
    /// A name and where its `"name":value` text sits in `text`.
    entries: Vec<(Cow<'t, str>, usize, usize)>,
}

/// Attribute names to attribute values, written as a JSON object with its
/// keys sorted as `serde_json::Map` sorts them.
fn attributes<'t>(scan: &mut Scan<'t>, out: &mut Out<'t>) -> Option<()> {
    out.text.push('{');
    let region = out.text.len();
    let base = out.entries.len();
    let mut sorted = true;
    scan.object(|scan, name| {
        if out.entries.len() > base {
            let (last, _, _) = &out.entries[out.entries.len() - 1];
            match order(last, &name) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return None,
                std::cmp::Ordering::Greater => sorted = false,
            }
            out.text.push(',');
        }
        let start = out.text.len();
        push_string(&mut out.text, &name);
        out.text.push(':');
        attribute_value(scan, out)?;
        out.entries.push((name, start, out.text.len()));
        Some(())
    })?;
    if !sorted {
        let entries = &mut out.entries[base..];
        entries.sort_unstable_by(|a, b| order(&a.0, &b.0));
        if entries.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            return None;
        }
        let written = out.text.split_off(region);
        for (i, (_, start, end)) in entries.iter().enumerate() {
            if i > 0 {
                out.text.push(',');
            }
            out.text.push_str(&written[start - region..end - region]);
        }
    }
    out.entries.truncate(base);
    out.text.push('}');
    Some(())
}

/// One attribute value, `{"<type>": <value>}`, as plain JSON.
fn attribute_value<'t>(scan: &mut Scan<'t>, out: &mut Out<'t>) -> Option<()> {
    scan.open(b'{')?;
    let text = &mut out.text;
    // A type key written with escapes is the tree path's to read.
    match scan.word_key()? {
        b"S" => push_string(text, &scan.string()?),
        b"N" => number(&scan.string()?, text).ok()?,
        b"B" => binary(&scan.string()?, text).ok()?,
        b"BOOL" => text.push_str(if scan.boolean()? { "true" } else { "false" }),
        b"NULL" => {
            scan.boolean()?.then_some(())?;
            text.push_str("null");
        }
        b"M" => attributes(scan, out)?,
        b"L" => list(scan, out, attribute_value)?,
        b"SS" => list(scan, out, |scan, out| {
            push_string(&mut out.text, &scan.string()?);
            Some(())
        })?,
        b"NS" => list(scan, out, |scan, out| {
            number(&scan.string()?, &mut out.text).ok()
        })?,
        b"BS" => list(scan, out, |scan, out| {
            binary(&scan.string()?, &mut out.text).ok()
        })?,
        _ => return None,
    }
    // Exactly one type key: a second one is the tree path's to report.
    (!scan.next_entry(b'}')?).then_some(())
}

/// Writes a scanned string as JSON: one borrowed from the text has nothing
/// to escape (the scanner stopped at any `"`, `\` or control character),
/// so its text goes out as it came.
#[allow(clippy::ptr_arg)] // Borrowed or Owned is what decides the escaping.
fn push_string(out: &mut String, text: &Cow<'_, str>) {
    match text {
        Cow::Borrowed(plain) => {
            out.push('"');
            out.push_str(plain);
            out.push('"');
        }
        Cow::Owned(unescaped) => push_json_string(out, unescaped),
    }
}

fn list<'t>(
    scan: &mut Scan<'t>,
    out: &mut Out<'t>,
    member: impl Fn(&mut Scan<'t>, &mut Out<'t>) -> Option<()>,
) -> Option<()> {
    out.text.push('[');
    scan.array(|scan, index| {
        if index > 0 {
            out.text.push(',');
        }
        member(scan, out)
    })?;
    out.text.push(']');
    Some(())
}
