//! A transform's output: the events it returned, checked against the output
//! caps and the bus's rules before anything is published.
//!
//! The caps are also what the host lets a guest hand over at all: each store's
//! hostcall fuel ([`lift_budget`]) bounds the bytes wasmtime copies out of
//! the guest when it lifts the result. Without it a small guest could make
//! the host allocate far more than its own memory: a list of events naming
//! the same megabyte of guest memory as each body is copied once per event.

use serde_json::value::RawValue;

use super::bindings::relay::transform::types as wit;
use super::{Event, Limits, TransformErrorKind};

/// Bytes the host may copy out of a guest in one lift (a record's result, or
/// one log line): the events' bytes and list entries the caps allow, plus
/// room for an error message.
pub(crate) fn lift_budget(limits: Limits) -> usize {
    limits
        .max_output_bytes
        .saturating_add(
            limits
                .max_events
                .saturating_mul(std::mem::size_of::<wit::Event>()),
        )
        .saturating_add(64 << 10)
}

/// Longest event type name Nakadi accepts.
pub const MAX_EVENT_TYPE_LEN: usize = 255;

/// Checks an event type name against Nakadi's rule: 1 to 255 characters,
/// `[a-zA-Z][-0-9a-zA-Z_]*(\.[0-9a-zA-Z][-0-9a-zA-Z_]*)*` (letters, digits,
/// `-` and `_`, in dot-separated parts, starting with a letter). Anything
/// else is refused before it can reach a URL path.
pub fn check_event_type(name: &str) -> Result<(), String> {
    let example = "names are letters, digits, '-' and '_' in parts separated by single dots, \
                   starting with a letter, e.g. \"order.status-changed_v2\"";
    if name.is_empty() || name.len() > MAX_EVENT_TYPE_LEN {
        return Err(format!(
            "must be 1 to {MAX_EVENT_TYPE_LEN} characters long; {example}"
        ));
    }
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    let bytes = name.as_bytes();
    if !bytes[0].is_ascii_alphabetic() {
        return Err(format!("must start with a letter; {example}"));
    }
    for part in name.split('.') {
        match part.as_bytes() {
            [first, rest @ ..]
                if first.is_ascii_alphanumeric() && rest.iter().all(|&c| word(c)) => {}
            _ => return Err(format!("is not a valid Nakadi event type name; {example}")),
        }
    }
    Ok(())
}

/// The events of one record, checked: at most `limits.max_events`, at most
/// `limits.max_output_bytes` in total (event types, bodies and keys), each a
/// valid Nakadi event type, a JSON object body and no empty key.
pub(crate) fn validate(
    events: Vec<wit::Event>,
    limits: Limits,
) -> Result<Vec<Event>, TransformErrorKind> {
    if events.len() > limits.max_events {
        return Err(TransformErrorKind::OutputTooLarge(format!(
            "{} events, the cap is {}",
            events.len(),
            limits.max_events
        )));
    }
    let total = events.iter().fold(0usize, |sum, e| {
        sum.saturating_add(e.event_type.len())
            .saturating_add(e.body.len())
            .saturating_add(e.key.as_ref().map_or(0, String::len))
    });
    if total > limits.max_output_bytes {
        return Err(TransformErrorKind::OutputTooLarge(format!(
            "{total} bytes of events, the cap is {}",
            limits.max_output_bytes
        )));
    }
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let bad = |what: String| TransformErrorKind::BadOutput(format!("event {i} {what}"));
            check_event_type(&e.event_type).map_err(|why| {
                bad(format!(
                    "has the event type {:?}, which {why}",
                    shorten(&e.event_type)
                ))
            })?;
            if e.key.as_deref().is_some_and(str::is_empty) {
                return Err(bad("has an empty key".into()));
            }
            let body = RawValue::from_string(e.body)
                .map_err(|err| bad(format!("body is not JSON: {err}")))?;
            if !body.get().starts_with('{') {
                return Err(bad("body is not a JSON object".into()));
            }
            Ok(Event {
                event_type: e.event_type,
                body,
                key: e.key,
            })
        })
        .collect()
}

/// At most the first 100 characters of `text`, for messages.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(100) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nakadi_event_type_names_are_accepted() {
        for name in [
            "order.changed",
            "a",
            "payment-order.changed",
            "order.status-changed_v2",
            "x.1st",
            "A_b-c.D9",
            &"a".repeat(255),
        ] {
            assert_eq!(check_event_type(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for name in [
            "",
            "a/../../admin?q=",
            "..",
            ".",
            "a..b",
            "a.",
            ".a",
            "1order",
            "-order",
            "_order",
            "a.-b",
            "a._b",
            "order changed",
            "order/changed",
            "order%2Fchanged",
            "order?x",
            "order#x",
            "ordér",
            "order\n",
            &"a".repeat(256),
        ] {
            let err = check_event_type(name).expect_err(name);
            assert!(err.contains("e.g. \"order.status-changed_v2\""), "{err}");
        }
    }
}
