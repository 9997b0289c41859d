//! `FakeEventBridge`: Amazon EventBridge's `PutEvents` as `aws-sdk-eventbridge`
//! sends it: awsJson1_1, `POST /`, `X-Amz-Target: AWSEvents.PutEvents`, a
//! JSON body `{"Entries": [{"Source", "DetailType", "Detail", "EventBusName",
//! "Resources", "Time", "TraceHeader"}]}` (`Detail` a JSON string).
//!
//! Order of checks:
//! 1. the behaviour is chosen (see [the module docs](super));
//! 2. the operation: another `X-Amz-Target` gets 400
//!    `UnknownOperationException`; a body that is no JSON object 400
//!    `SerializationException`;
//! 3. an injected whole-request error ([`Fault::Error`](super::Fault::Error),
//!    `respond_error`);
//! 4. the number of entries, 1 to 10: else 400 `ValidationException`
//!    (`Member must have length less than or equal to 10`);
//! 5. the total entry size, computed as AWS documents it ("Calculating
//!    PutEvents event entry size"): 14 bytes if `Time` is given, plus the
//!    UTF-8 bytes of `Source`, `DetailType`, `Detail` and each of
//!    `Resources`, summed over the entries; over
//!    [`max_request_bytes`](FakeEventBridge::max_request_bytes) (256 KiB by
//!    default; the API reference now says "less than 1MB", set it so to
//!    follow) gets 400 `ValidationException` "Total size of the entries in
//!    the request is over the limit." and nothing is accepted;
//! 6. per entry (a partial failure, HTTP 200): no `Source`, `DetailType` or
//!    `Detail` → `InvalidArgument`; a `Detail` that is no JSON object →
//!    `MalformedDetail` "Detail is malformed.";
//! 7. per entry: injected failures ([`EntryFailure`]);
//! 8. the rest are accepted with an `EventId`; the answer is
//!    `{"FailedEntryCount": n, "Entries": [...]}`, one result per request
//!    entry in order, `EventId` or `ErrorCode` + `ErrorMessage`.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::server::Response;
use super::{json_error, json_operation, Core, EntryFailure, Handled, Keyed, Plan};
use crate::nakadi::Request;

const TARGET: &str = "AWSEvents.PutEvents";

/// One `PutEvents` entry as the fake read it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventBridgeEntry {
    /// `DetailType` (empty if absent).
    pub detail_type: String,
    /// `Source` (empty if absent).
    pub source: String,
    /// `EventBusName`, `default` if absent.
    pub bus: String,
    /// `Detail` parsed as JSON (`Null` if absent or malformed).
    pub detail: Value,
    /// `Detail` as sent.
    pub detail_raw: Option<String>,
    /// `Resources`.
    pub resources: Vec<String>,
    /// `Time` in epoch seconds, if given.
    pub time: Option<f64>,
    /// `TraceHeader`, if given.
    pub trace_header: Option<String>,
    /// The `EventId` answered (accepted entries only).
    pub event_id: Option<String>,
}

impl Keyed for EventBridgeEntry {
    /// The detail's `metadata.eid` (a Nakadi-style event), else its `id`.
    fn key(&self) -> Option<&str> {
        self.detail
            .pointer("/metadata/eid")
            .or_else(|| self.detail.get("id"))
            .and_then(Value::as_str)
    }
}

impl EventBridgeEntry {
    fn parse(entry: &Value) -> EventBridgeEntry {
        let text = |name: &str| entry.get(name).and_then(Value::as_str).map(str::to_owned);
        let detail_raw = text("Detail");
        EventBridgeEntry {
            detail_type: text("DetailType").unwrap_or_default(),
            source: text("Source").unwrap_or_default(),
            bus: text("EventBusName").unwrap_or_else(|| "default".into()),
            detail: detail_raw
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or(Value::Null),
            detail_raw,
            resources: entry
                .get("Resources")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            time: entry.get("Time").and_then(Value::as_f64),
            trace_header: text("TraceHeader"),
            event_id: None,
        }
    }

    /// The entry's size as EventBridge computes it.
    pub fn size(&self) -> usize {
        let time = if self.time.is_some() { 14 } else { 0 };
        time + self.source.len()
            + self.detail_type.len()
            + self.detail_raw.as_deref().map_or(0, str::len)
            + self.resources.iter().map(String::len).sum::<usize>()
    }

    /// The service's own per-entry verdict: `(code, message)` if invalid.
    fn problem(&self, raw: &Value) -> Option<(&'static str, String)> {
        for name in ["Source", "DetailType", "Detail"] {
            if raw.get(name).and_then(Value::as_str).is_none() {
                return Some((
                    "InvalidArgument",
                    format!(
                        "Parameter {name} is not valid. Reason: {name} is a required argument."
                    ),
                ));
            }
        }
        if !self.detail.is_object() {
            return Some(("MalformedDetail", "Detail is malformed.".into()));
        }
        None
    }
}

#[derive(Debug)]
struct Settings {
    max_request_bytes: usize,
}

/// A fake EventBridge on `127.0.0.1` (random port); stops on drop.
pub struct FakeEventBridge {
    core: Core<EventBridgeEntry>,
    settings: Arc<Mutex<Settings>>,
}

impl std::fmt::Debug for FakeEventBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeEventBridge")
            .field("url", &self.url())
            .finish()
    }
}

/// The largest total entry size by default: 256 KiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 256 * 1024;

impl FakeEventBridge {
    /// Starts a healthy fake. Panics if it cannot listen.
    pub fn start() -> FakeEventBridge {
        let settings = Arc::new(Mutex::new(Settings {
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        }));
        let core = {
            let settings = settings.clone();
            Core::start("fake-eventbridge", move |request, plan| {
                let max = settings
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .max_request_bytes;
                put_events(request, plan, max)
            })
        };
        FakeEventBridge { core, settings }
    }

    /// The largest total entry size of a request (default
    /// [`DEFAULT_MAX_REQUEST_BYTES`]).
    pub fn max_request_bytes(&self, bytes: usize) {
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .max_request_bytes = bytes;
    }

    /// The `detail` of every accepted entry, in arrival order.
    pub fn accepted_details(&self) -> Vec<Value> {
        self.accepted().into_iter().map(|e| e.detail).collect()
    }

    super::common_methods!(EventBridgeEntry);
}

fn put_events(
    request: &Request,
    plan: &Plan<EventBridgeEntry>,
    max: usize,
) -> Handled<EventBridgeEntry> {
    let target = request.header("X-Amz-Target").unwrap_or_default();
    let refuse = |status, code: &str, message: &str, entries| {
        Handled::refused(
            &target,
            json_error(status, code, message),
            Some(code),
            entries,
        )
    };
    let body = match json_operation(request, TARGET, "FakeEventBridge") {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let raw: Vec<Value> = body
        .get("Entries")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let entries: Vec<EventBridgeEntry> = raw.iter().map(EventBridgeEntry::parse).collect();
    if let Some((status, code, message)) = &plan.error {
        return refuse(*status, code, message, entries);
    }
    if entries.is_empty() || entries.len() > 10 {
        let bound = match entries.len() {
            0 => "greater than or equal to 1",
            _ => "less than or equal to 10",
        };
        let message = format!(
            "1 validation error detected: Value at 'entries' failed to satisfy constraint: \
             Member must have length {bound}"
        );
        return refuse(400, "ValidationException", &message, entries);
    }
    let total: usize = entries.iter().map(EventBridgeEntry::size).sum();
    if total > max {
        let message = "Total size of the entries in the request is over the limit.";
        return refuse(400, "ValidationException", message, entries);
    }

    let mut results = Vec::with_capacity(entries.len());
    let mut accepted = Vec::new();
    let mut failed = 0;
    for (position, (entry, raw)) in entries.iter().zip(&raw).enumerate() {
        let failure = entry
            .problem(raw)
            .map(|(code, message)| (code.to_owned(), message))
            .or_else(|| {
                EntryFailure::find(&plan.fail, position, entry)
                    .map(|f| (f.code.clone(), f.message.clone()))
            });
        match failure {
            Some((code, message)) => {
                failed += 1;
                results.push(json!({"ErrorCode": code, "ErrorMessage": message}));
            }
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                results.push(json!({"EventId": id}));
                let mut entry = entry.clone();
                entry.event_id = Some(id);
                accepted.push(entry);
            }
        }
    }
    let body = json!({"FailedEntryCount": failed, "Entries": results}).to_string();
    Handled {
        response: Response::new(200, "application/x-amz-json-1.1", body.into_bytes())
            .with_header("x-amzn-RequestId", &super::request_id()),
        operation: target,
        error_code: None,
        entries,
        accepted,
        failed,
    }
}
