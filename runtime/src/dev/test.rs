//! `relay test`: run a transform on sample stream records and show (or check)
//! the events it produces, exactly as they would be published.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::transform::{Event, TransformInstance};

/// One line of `relay test` output.
#[derive(Serialize)]
struct OutputLine<'a> {
    event_type: &'a str,
    key: Option<&'a str>,
    body: &'a RawValue,
}

/// What running a transform over an input file produced.
#[derive(Debug, Default)]
pub struct TestRun {
    /// One JSON object per event: `{"event_type", "key", "body"}`.
    pub lines: Vec<String>,
    /// One message per record that could not be decoded or transformed.
    pub failures: Vec<String>,
    /// How many records the input held.
    pub records: usize,
}

/// Formats one event as a `relay test` output line.
pub fn output_line(event: &Event) -> String {
    serde_json::to_string(&OutputLine {
        event_type: &event.event_type,
        key: event.key.as_deref(),
        body: &event.body,
    })
    .expect("serializing strings and raw JSON cannot fail")
}

/// The stream ARN given to records that have none, for `table`.
pub fn local_stream_arn(table: &str) -> String {
    format!("arn:aws:dynamodb:local:000000000000:table/{table}/stream/local")
}

/// Gives every record of `input` without an `eventSourceARN` the one of
/// [`local_stream_arn`]: records read with the DynamoDB Streams API (`aws
/// dynamodbstreams get-records`) lack it, while Lambda adds it.
pub fn label_records(input: &str, table: &str) -> anyhow::Result<String> {
    let mut value: Value = serde_json::from_str(input)?;
    let arn = Value::from(local_stream_arn(table));
    let label = |record: &mut Value| {
        if let Value::Object(record) = record {
            record
                .entry("eventSourceARN")
                .or_insert_with(|| arn.clone());
        }
    };
    match value.get_mut("Records").and_then(Value::as_array_mut) {
        Some(records) => records.iter_mut().for_each(label),
        None => label(&mut value),
    }
    Ok(value.to_string())
}

/// Decodes every record of `input` (a Lambda DynamoDB Streams event, the
/// output of GetRecords, or a single record) and runs it through `instance`,
/// in order. With `table`, records without an `eventSourceARN` are taken to
/// come from that table's stream.
pub fn run(
    instance: &mut TransformInstance,
    input: &str,
    table: Option<&str>,
) -> anyhow::Result<TestRun> {
    let labelled;
    let input = match table {
        Some(table) => {
            labelled = label_records(input, table)?;
            &labelled
        }
        None => input,
    };
    let records = relay_record::dynamodb::parse_records(input)?;
    let mut run = TestRun {
        records: records.len(),
        ..TestRun::default()
    };
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let hint = if table.is_none() && e.to_string().contains("eventSourceARN") {
                    " (records read with the DynamoDB Streams API have none: pass --table NAME)"
                } else {
                    ""
                };
                run.failures.push(format!("cannot decode {e}{hint}"));
                continue;
            }
        };
        match instance.transform(&record) {
            Ok(events) => run.lines.extend(events.iter().map(output_line)),
            Err(e) => run.failures.push(e.to_string()),
        }
    }
    Ok(run)
}

/// Compares output lines with an expected JSON Lines text, line by line as
/// JSON values (so whitespace and key order do not matter). Returns a
/// readable diff on mismatch.
pub fn compare(actual: &[String], expected: &str) -> Result<(), String> {
    let expected: Vec<&str> = expected.lines().filter(|l| !l.trim().is_empty()).collect();
    let parse = |line: &str| serde_json::from_str::<Value>(line).ok();
    let mut diff = String::new();
    let mut mismatches = 0;
    for i in 0..actual.len().max(expected.len()) {
        let (a, e) = (actual.get(i), expected.get(i));
        let same = match (a, e) {
            (Some(a), Some(e)) => match (parse(a), parse(e)) {
                (Some(a), Some(e)) => a == e,
                _ => a.trim() == e.trim(),
            },
            _ => false,
        };
        if same {
            continue;
        }
        mismatches += 1;
        if mismatches > 20 {
            continue;
        }
        let _ = writeln!(diff, "@@ event {} @@", i + 1);
        match e {
            Some(e) => {
                let _ = writeln!(diff, "- {e}");
            }
            None => {
                let _ = writeln!(diff, "- (no event expected)");
            }
        }
        match a {
            Some(a) => {
                let _ = writeln!(diff, "+ {a}");
            }
            None => {
                let _ = writeln!(diff, "+ (no event produced)");
            }
        }
        if let (Some(a), Some(e)) = (a.and_then(|a| parse(a)), e.and_then(|e| parse(e))) {
            for path in differing_paths(&e, &a, String::new()).into_iter().take(10) {
                let _ = writeln!(diff, "  differs at {path}");
            }
        }
    }
    if mismatches == 0 {
        return Ok(());
    }
    if mismatches > 20 {
        let _ = writeln!(diff, "... and {} more mismatching events", mismatches - 20);
    }
    Err(format!(
        "{mismatches} of {} events differ from the expectation ({} expected, {} produced)\n{diff}",
        actual.len().max(expected.len()),
        expected.len(),
        actual.len()
    ))
}

/// JSON Pointers at which two values differ, to point a reader at the change.
fn differing_paths(expected: &Value, actual: &Value, at: String) -> Vec<String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let mut keys: Vec<&String> = e.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .flat_map(|k| {
                    let path = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                    match (e.get(k), a.get(k)) {
                        (Some(x), Some(y)) => differing_paths(x, y, path),
                        _ => vec![path],
                    }
                })
                .collect()
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => e
            .iter()
            .zip(a)
            .enumerate()
            .flat_map(|(i, (x, y))| differing_paths(x, y, format!("{at}/{i}")))
            .collect(),
        _ if expected == actual => vec![],
        _ => vec![if at.is_empty() { "/".into() } else { at }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_records_fills_only_missing_arns() {
        let input = r#"{"Records": [{"eventID": "a", "n": 1.50},
            {"eventID": "b", "eventSourceARN": "arn:kept"}], "NextShardIterator": "x"}"#;
        let labelled: Value =
            serde_json::from_str(&label_records(input, "orders").unwrap()).unwrap();
        assert_eq!(
            labelled["Records"][0]["eventSourceARN"],
            local_stream_arn("orders")
        );
        assert_eq!(labelled["Records"][0]["n"].to_string(), "1.50");
        assert_eq!(labelled["Records"][1]["eventSourceARN"], "arn:kept");
        let single: Value =
            serde_json::from_str(&label_records(r#"{"eventID": "c"}"#, "t").unwrap()).unwrap();
        assert_eq!(single["eventSourceARN"], local_stream_arn("t"));
    }

    #[test]
    fn compare_accepts_same_json_with_other_whitespace() {
        let actual = vec![r#"{"a":1,"b":[1,2]}"#.to_string()];
        assert!(compare(&actual, "{ \"b\": [1, 2], \"a\": 1 }\n\n").is_ok());
    }

    #[test]
    fn compare_reports_changed_field_and_missing_event() {
        let actual = vec![r#"{"a":1,"b":{"c":"x"}}"#.to_string()];
        let expected = "{\"a\":1,\"b\":{\"c\":\"y\"}}\n{\"a\":2}\n";
        let diff = compare(&actual, expected).unwrap_err();
        assert!(diff.contains("2 of 2 events differ"), "{diff}");
        assert!(diff.contains("differs at /b/c"), "{diff}");
        assert!(diff.contains("+ (no event produced)"), "{diff}");
    }
}
