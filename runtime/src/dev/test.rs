//! `relay test`: run a transform on sample stream records and show (or check)
//! the events it produces, exactly as they would be published.

use std::borrow::Cow;
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
    /// Per line, the sequence number of the record that produced it.
    pub sequence_numbers: Vec<String>,
    /// One message per record that could not be decoded or transformed.
    pub failures: Vec<String>,
    /// What was filled in for hand-written records (to say on stderr).
    pub notes: Vec<String>,
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

/// Makes hand-written records runnable, saying what it filled in: a record
/// without an `eventSourceARN` gets one for its `tableName` (the Kinesis
/// Data Streams for DynamoDB shape) or for `table` (records read with
/// `aws dynamodbstreams get-records` have neither); a record without a
/// `dynamodb.SequenceNumber` or `eventID` gets a stand-in from its position.
pub fn prepare<'a>(
    input: &'a str,
    table: Option<&str>,
) -> Result<(Cow<'a, str>, Vec<String>), String> {
    if relay_record::dynamodb::split_raw_records(input)
        .is_ok_and(|raws| raws.iter().all(|raw| complete(raw)))
    {
        // Records as Lambda sends them: nothing to fill, nothing to copy.
        return Ok((Cow::Borrowed(input), Vec::new()));
    }
    let mut value: Value = serde_json::from_str(input).map_err(|e| format!("not JSON: {e}"))?;
    let mut notes = Vec::new();
    let mut fill = |index: usize, record: &mut Value| {
        let Value::Object(record) = record else {
            return;
        };
        if !record.contains_key("eventSourceARN") {
            let named = record
                .get("tableName")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| table.map(str::to_owned));
            if let Some(name) = named {
                record.insert("eventSourceARN".into(), local_stream_arn(&name).into());
            }
        }
        let stand_in = format!("{:021}", index + 1);
        if !record.contains_key("eventID") {
            record.insert("eventID".into(), format!("local-{}", index + 1).into());
        }
        if let Some(Value::Object(dynamodb)) = record.get_mut("dynamodb") {
            if !dynamodb.contains_key("SequenceNumber") {
                notes.push(format!(
                    "record #{} has no dynamodb.SequenceNumber: using the stand-in {stand_in} \
                     (eids derive from it, so they differ from the ones the relay gives the real record)",
                    index + 1
                ));
                dynamodb.insert("SequenceNumber".into(), stand_in.into());
            }
        }
    };
    match value.get_mut("Records").and_then(Value::as_array_mut) {
        Some(records) => records
            .iter_mut()
            .enumerate()
            .for_each(|(i, record)| fill(i, record)),
        None => fill(0, &mut value),
    }
    Ok((Cow::Owned(value.to_string()), notes))
}

/// Whether a raw record already has what [`prepare`] fills in (checked
/// without building values; any doubt answers false).
fn complete(raw: &RawValue) -> bool {
    use serde::de::IgnoredAny;
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "eventSourceARN")]
        arn: Option<IgnoredAny>,
        #[serde(rename = "eventID")]
        id: Option<IgnoredAny>,
        dynamodb: Option<ProbeStreamRecord>,
    }
    #[derive(serde::Deserialize)]
    struct ProbeStreamRecord {
        #[serde(rename = "SequenceNumber")]
        sequence_number: Option<IgnoredAny>,
    }
    matches!(
        serde_json::from_str::<Probe>(raw.get()),
        Ok(Probe {
            arn: Some(_),
            id: Some(_),
            dynamodb: Some(ProbeStreamRecord {
                sequence_number: Some(_)
            }),
        })
    )
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
    // Records as Lambda sends them are read once, in place; hand-written
    // ones are completed first.
    let mut prepared = String::new();
    let (raws, notes) = match relay_record::dynamodb::split_raw_records(input) {
        Ok(raws) if raws.iter().all(|raw| complete(raw)) => (raws, Vec::new()),
        _ => {
            let (completed, notes) = prepare(input, table).map_err(|e| anyhow::anyhow!("{e}"))?;
            prepared = completed.into_owned();
            (relay_record::dynamodb::split_raw_records(&prepared)?, notes)
        }
    };
    let mut run = TestRun {
        records: raws.len(),
        notes,
        ..TestRun::default()
    };
    let answers = map_in_parallel(instance, &raws);
    if answers.iter().any(|a| matches!(a, Answer::NotJson)) {
        let text = match prepared.is_empty() {
            true => input,
            false => prepared.as_str(),
        };
        return Err(relay_record::dynamodb::not_json(text).into());
    }
    for answer in answers {
        match answer {
            Answer::NotJson => unreachable!("checked above"),
            Answer::Undecodable(e) => {
                let hint = if table.is_none() && e.to_string().contains("eventSourceARN") {
                    " (records read with the DynamoDB Streams API have none: pass --table NAME, \
                     or give the record a tableName)"
                } else {
                    ""
                };
                run.failures.push(format!("cannot decode {e}{hint}"));
            }
            Answer::Mapped(sequence_number, Ok(events)) => {
                run.lines.extend(events.iter().map(output_line));
                run.sequence_numbers
                    .extend(events.iter().map(|_| sequence_number.clone()));
            }
            Answer::Mapped(_, Err(e)) => run.failures.push(e.to_string()),
        }
    }
    Ok(run)
}

/// What became of one record in `relay test`.
enum Answer {
    /// Its raw text is not valid JSON after all (a bad escape, nesting too
    /// deep): the input as a whole is refused.
    NotJson,
    /// It did not decode.
    Undecodable(relay_record::dynamodb::RecordError),
    /// The transform's answer, with the record's sequence number.
    Mapped(String, Result<Vec<Event>, crate::transform::TransformError>),
}

/// Decodes and maps every raw record, answers in order: the records cut
/// into one run per CPU (at most 4), each run decoded and mapped on its own
/// thread by its own instance (`instance` and siblings of it). A transform
/// therefore must not count on state kept across records (the relay, too,
/// maps on several threads and rebuilds instances after a trap).
fn map_in_parallel(instance: &mut TransformInstance, raws: &[&RawValue]) -> Vec<Answer> {
    let cpus = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    // Below a few hundred records a thread costs more than it saves.
    let wanted = cpus.min(raws.len() / 256).max(1);
    let mut siblings: Vec<TransformInstance> =
        (1..wanted).map_while(|_| instance.sibling().ok()).collect();
    let chunk = raws.len().div_ceil(1 + siblings.len()).max(1);
    let mut runs = raws.chunks(chunk).enumerate();
    let own = runs.next().unwrap_or((0, &[]));
    let answer = |instance: &mut TransformInstance, index: usize, raw: &RawValue| {
        if let Some(record) = relay_record::dynamodb::decode_record_text(raw.get()) {
            return Answer::Mapped(record.sequence_number.clone(), instance.transform(&record));
        }
        let Ok(value) = serde_json::from_str::<Value>(raw.get()) else {
            return Answer::NotJson;
        };
        match relay_record::dynamodb::parse_record(&value) {
            Ok(record) => {
                Answer::Mapped(record.sequence_number.clone(), instance.transform(&record))
            }
            Err(error) => Answer::Undecodable(relay_record::dynamodb::RecordError {
                index,
                sequence_number: relay_record::dynamodb::sequence_number(&value).map(str::to_owned),
                error,
            }),
        }
    };
    let map_run = |instance: &mut TransformInstance, (number, run): (usize, &[&RawValue])| {
        run.iter()
            .enumerate()
            .map(|(i, raw)| answer(instance, number * chunk + i, raw))
            .collect::<Vec<_>>()
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = siblings
            .iter_mut()
            .zip(runs)
            .map(|(sibling, run)| scope.spawn(move || map_run(sibling, run)))
            .collect();
        let mut answers = map_run(instance, own);
        for helper in helpers {
            answers.extend(helper.join().expect("a mapping thread panicked"));
        }
        answers
    })
}

/// Reads an expectation file: JSON Lines, one event per line (blank lines
/// skipped). A line that is not JSON is an error naming it, not a mismatch.
pub fn read_expectation(text: &str) -> Result<Vec<Value>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|e| {
                format!(
                    "line {} is not JSON ({e}): {}; the file must hold one JSON event per line, \
                     as `relay test` prints them (write it with --bless)",
                    n + 1,
                    shorten(line, 80)
                )
            })
        })
        .collect()
}

/// Compares output lines (from the records with `sequence_numbers`) with
/// the expected events, as JSON values (whitespace and key order do not
/// matter). On mismatch, says per event which record produced it and, per
/// differing JSON Pointer, the expected → actual values.
pub fn compare(
    actual: &[String],
    sequence_numbers: &[String],
    expected: &[Value],
) -> Result<(), String> {
    let mut diff = String::new();
    let mut mismatches = 0;
    for i in 0..actual.len().max(expected.len()) {
        let a = actual
            .get(i)
            .map(|line| serde_json::from_str::<Value>(line).expect("relay test prints JSON lines"));
        let e = expected.get(i);
        if a.as_ref() == e {
            continue;
        }
        mismatches += 1;
        if mismatches > 20 {
            continue;
        }
        let record = match sequence_numbers.get(i) {
            Some(seq) => format!(" (record {seq})"),
            None => String::new(),
        };
        match (e, &a) {
            (Some(e), Some(a)) => {
                let _ = writeln!(diff, "event {}{record}:", i + 1);
                for path in differing_paths(e, a, String::new()).into_iter().take(10) {
                    let at = |v: &Value| {
                        v.pointer(&path)
                            .map_or("(absent)".to_owned(), |v| shorten(&v.to_string(), 80))
                    };
                    let _ = writeln!(diff, "  {path}: {} → {}", at(e), at(a));
                }
            }
            (Some(e), None) => {
                let _ = writeln!(
                    diff,
                    "event {}: expected but not produced: {}",
                    i + 1,
                    shorten(&e.to_string(), 120)
                );
            }
            (None, Some(a)) => {
                let _ = writeln!(
                    diff,
                    "event {}{record}: produced but not expected: {}",
                    i + 1,
                    shorten(&a.to_string(), 120)
                );
            }
            (None, None) => {}
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

/// `text` cut to about `max` characters, marked when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
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
    fn prepare_fills_in_what_hand_written_records_lack() {
        let input = r#"{"Records": [
            {"eventID": "a", "eventName": "INSERT", "dynamodb": {"SequenceNumber": "5", "n": 1.50}},
            {"eventID": "b", "eventSourceARN": "arn:kept", "dynamodb": {"SequenceNumber": "6"}},
            {"eventName": "INSERT", "tableName": "payments", "dynamodb": {"Keys": {}}}
        ], "NextShardIterator": "x"}"#;
        let (prepared, notes) = prepare(input, Some("orders")).unwrap();
        let prepared: Value = serde_json::from_str(&prepared).unwrap();
        let records = &prepared["Records"];
        assert_eq!(records[0]["eventSourceARN"], local_stream_arn("orders"));
        assert_eq!(records[0]["dynamodb"]["n"].to_string(), "1.50");
        assert_eq!(records[1]["eventSourceARN"], "arn:kept");
        assert_eq!(records[2]["eventSourceARN"], local_stream_arn("payments"));
        assert_eq!(
            records[2]["dynamodb"]["SequenceNumber"],
            "000000000000000000003"
        );
        assert_eq!(records[2]["eventID"], "local-3");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("record #3 has no dynamodb.SequenceNumber"));
        let (single, _) = prepare(r#"{"eventID": "c"}"#, Some("t")).unwrap();
        let single: Value = serde_json::from_str(&single).unwrap();
        assert_eq!(single["eventSourceARN"], local_stream_arn("t"));
    }

    #[test]
    fn compare_accepts_same_json_with_other_whitespace() {
        let actual = vec![r#"{"a":1,"b":[1,2]}"#.to_string()];
        let expected = read_expectation("{ \"b\": [1, 2], \"a\": 1 }\n\n").unwrap();
        assert!(compare(&actual, &["1".into()], &expected).is_ok());
    }

    #[test]
    fn compare_names_the_record_and_each_differing_value() {
        let actual = vec![r#"{"a":1,"b":{"c":"x"}}"#.to_string()];
        let expected = read_expectation("{\"a\":1,\"b\":{\"c\":\"y\"}}\n{\"a\":2}\n").unwrap();
        let diff = compare(&actual, &["4200".into()], &expected).unwrap_err();
        assert!(diff.contains("2 of 2 events differ"), "{diff}");
        assert!(diff.contains("event 1 (record 4200):"), "{diff}");
        assert!(diff.contains(r#"/b/c: "y" → "x""#), "{diff}");
        assert!(
            diff.contains(r#"event 2: expected but not produced: {"a":2}"#),
            "{diff}"
        );
    }

    #[test]
    fn an_expectation_that_is_not_json_is_an_error() {
        let err = read_expectation("{\"a\":1}\nnot json\n").unwrap_err();
        assert!(err.starts_with("line 2 is not JSON"), "{err}");
    }
}
