//! A transform that misbehaves on purpose, for the host's sandbox tests.
//!
//! Settings `{"mode": "..."}` (default `"ok"`); a record whose new image has a
//! top-level string attribute `mode` overrides it for that record, so one
//! instance can exercise several behaviours. Modes:
//!
//! | mode | behaviour |
//! |---|---|
//! | `ok` | one business event `{"ok":true,"metadata":{..}}` of type `hostile.ok` |
//! | `loop` | spins forever |
//! | `alloc` | allocates and touches 1 MiB blocks forever |
//! | `alloc-small` | allocates and touches 4 MiB once, then behaves like `ok` |
//! | `huge` | one event whose body is a 20 MiB JSON object |
//! | `many` | 100,000 small events |
//! | `read-file` | reads `/etc/passwd` and returns it (or the error) as an event |
//! | `clock` | reads the wall clock and returns the epoch seconds (or the error) |
//! | `env` | reads `$HOME` and returns it (or the error) |
//! | `panic` | panics with "hostile panic" |
//! | `garbage` | one event whose body is not JSON |
//! | `error` | returns `TransformError::Failed("told to fail")` |
//! | `log-flood` | logs a 4 KiB WARN line `lines` times (default: until stopped), then behaves like `ok` |
//! | `event-type` | one event whose event type is the record's `event_type` attribute |
//! | `work` | spins through 20 million iterations (tens of ms), then behaves like `ok` |
//! | `record-patch` | asks the host for the record's patch twice, and reports both answers, what `init` was answered (with `"ask_in_init": true`) and `Record::patch` |

use std::hint::black_box;

use relay_sdk::{BusinessEvent, Event, Record, Transform, TransformError};
use serde::Deserialize;
use serde_json::json;

/// Settings: `{"mode": "..."}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The behaviour for records that name none; defaults to `ok`.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Whether `init` asks the host for a record's patch.
    #[serde(default)]
    pub ask_in_init: bool,
}

fn default_mode() -> String {
    "ok".into()
}

/// The misbehaving transform.
#[derive(Debug, Clone)]
pub struct Hostile {
    mode: String,
    /// What the host answered `record-patch` during `init`.
    patch_in_init: Option<String>,
}

/// The contract's `record-patch`, asked directly (natively: `None`).
fn record_patch() -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    return relay_sdk::__bindings::record_patch();
    #[cfg(not(target_arch = "wasm32"))]
    return None;
}

const EVENT_TYPE: &str = "hostile.ok";
const MIB: usize = 1024 * 1024;

fn event(body: serde_json::Value) -> Result<Vec<Event>, TransformError> {
    Ok(vec![Event::new(EVENT_TYPE, &body)?])
}

/// An event with `body` as is, unchecked.
fn raw_event(body: String) -> Event {
    Event {
        event_type: EVENT_TYPE.into(),
        body,
        key: None,
    }
}

/// Allocates `bytes` and writes to every page so the memory is really used.
fn touched(bytes: usize) -> Vec<u8> {
    let mut block = vec![0u8; bytes];
    for i in (0..bytes).step_by(4096) {
        block[i] = 1;
    }
    black_box(block)
}

impl Transform for Hostile {
    type Settings = Settings;

    fn new(settings: Settings) -> Result<Self, TransformError> {
        Ok(Hostile {
            mode: settings.mode,
            patch_in_init: settings.ask_in_init.then(record_patch).flatten(),
        })
    }

    fn transform(&self, record: &Record) -> Result<Vec<Event>, TransformError> {
        let mode = record
            .new_image
            .as_ref()
            .and_then(|image| image.get("mode"))
            .and_then(|mode| mode.as_str())
            .unwrap_or(&self.mode);
        match mode {
            "ok" => Ok(vec![
                BusinessEvent::new(EVENT_TYPE, &json!({"ok": true})).build(record, 0)?
            ]),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut blocks = Vec::new();
                loop {
                    blocks.push(touched(MIB));
                    black_box(&mut blocks);
                }
            }
            "alloc-small" => {
                let block = touched(4 * MIB);
                event(json!({"ok": true, "allocated": black_box(block).len()}))
            }
            // Written as text with the exact capacity: the guest then needs
            // only ~20 MiB (through `json!` it would need ~4x that), so the
            // host's output cap, not its memory cap, is what stops it.
            "huge" => {
                let (head, tail) = (r#"{"blob":""#, r#""}"#);
                let mut body = Vec::with_capacity(head.len() + 20 * MIB + tail.len());
                body.extend_from_slice(head.as_bytes());
                body.resize(head.len() + 20 * MIB, b'x');
                body.extend_from_slice(tail.as_bytes());
                let body = String::from_utf8(body).expect("ASCII is UTF-8");
                Ok(vec![raw_event(body)])
            }
            "many" => Ok((0..100_000)
                .map(|_| raw_event(r#"{"many":true}"#.to_string()))
                .collect()),
            "read-file" => match std::fs::read_to_string("/etc/passwd") {
                Ok(text) => event(json!({"passwd": text})),
                Err(e) => event(json!({"error": e.to_string()})),
            },
            "clock" => match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
                Ok(since) => event(json!({"epoch_seconds": since.as_secs()})),
                Err(e) => event(json!({"error": e.to_string()})),
            },
            "env" => match std::env::var("HOME") {
                Ok(home) => event(json!({"home": home})),
                Err(e) => event(json!({"error": e.to_string()})),
            },
            "record-patch" => {
                let first = record_patch();
                let second = record_patch();
                event(json!({
                    "first": first,
                    "second": second,
                    "in_init": self.patch_in_init,
                    "sdk": record.patch(),
                }))
            }
            "panic" => panic!("hostile panic"),
            "garbage" => Ok(vec![raw_event("{not json".into())]),
            "log-flood" => {
                let lines = record
                    .new_image
                    .as_ref()
                    .and_then(|image| image.get("lines"))
                    .and_then(|lines| lines.as_u64())
                    .unwrap_or(u64::MAX);
                let line = "flood ".repeat(4096 / 6);
                for _ in 0..lines {
                    relay_sdk::log::warn(black_box(&line));
                }
                event(json!({"ok": true, "logged": lines}))
            }
            "event-type" => {
                let event_type = record
                    .new_image
                    .as_ref()
                    .and_then(|image| image.get("event_type"))
                    .and_then(|t| t.as_str())
                    .unwrap_or_default();
                Ok(vec![Event {
                    event_type: event_type.to_owned(),
                    body: r#"{"ok":true}"#.into(),
                    key: None,
                }])
            }
            "work" => {
                let mut n: u64 = 0;
                for i in 0..20_000_000u64 {
                    n = black_box(n.wrapping_mul(31).wrapping_add(i));
                }
                event(json!({"ok": true, "work": n % 2}))
            }
            "error" => Err(TransformError::failed("told to fail")),
            other => Err(TransformError::invalid_record(format!(
                "unknown hostile mode {other:?}"
            ))),
        }
    }
}

relay_sdk::export_transform!(Hostile);
