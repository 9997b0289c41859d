//! `FakeCloudEvents`: an HTTP endpoint taking CloudEvents 1.0 in the HTTP
//! binding's structured batch mode: `POST` (any path) with
//! `Content-Type: application/cloudevents-batch+json` and a JSON array of
//! CloudEvents. A batch is all or nothing: there are no per-event answers.
//!
//! Order of checks:
//! 1. the behaviour is chosen (see [the module docs](super));
//!    [`Fault::Redirect`](super::Fault::Redirect) answers its 3xx and
//!    `Location`;
//! 2. an injected error ([`Fault::Error`](super::Fault::Error),
//!    `respond_error`): its status (any, e.g. 429, 500, 503) with a JSON body
//!    `{"code", "message"}`; [`Fault::FailEntries`](super::Fault::FailEntries)
//!    does not apply;
//! 3. a method other than `POST`: 405;
//! 4. `Authorization: Bearer <token>` if a token is expected
//!    ([`expect_token`](FakeCloudEvents::expect_token)): 401 otherwise;
//! 5. the media type (parameters such as `charset` allowed) must be
//!    `application/cloudevents-batch+json`: 415 otherwise;
//! 6. the body must be a JSON array: 400 otherwise;
//! 7. each item must be an object with `specversion` "1.0" and non-empty
//!    string `id`, `source` and `type`: any invalid item → 400, nothing
//!    accepted;
//! 8. every event accepted, answered with
//!    [`success_status`](FakeCloudEvents::success_status) (200 by default)
//!    and no body.
//!
//! The request log keeps every header, so a test can check configured
//! headers and the bearer token.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::server::Response;
use super::{Core, Handled, Keyed, Plan};
use crate::nakadi::Request;

/// The media type of structured batch mode.
pub const BATCH_CONTENT_TYPE: &str = "application/cloudevents-batch+json";

impl Keyed for Value {
    /// A CloudEvent's `id`.
    fn key(&self) -> Option<&str> {
        self.get("id").and_then(Value::as_str)
    }
}

#[derive(Debug)]
struct Settings {
    token: Option<String>,
    success_status: u16,
}

/// A fake CloudEvents endpoint on `127.0.0.1` (random port); stops on drop.
pub struct FakeCloudEvents {
    core: Core<Value>,
    settings: Arc<Mutex<Settings>>,
}

impl std::fmt::Debug for FakeCloudEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeCloudEvents")
            .field("url", &self.url())
            .finish()
    }
}

impl FakeCloudEvents {
    /// Starts a healthy fake that expects no token. Panics if it cannot
    /// listen.
    pub fn start() -> FakeCloudEvents {
        let settings = Arc::new(Mutex::new(Settings {
            token: None,
            success_status: 200,
        }));
        let core = {
            let settings = settings.clone();
            Core::start("fake-cloudevents", move |request, plan| {
                receive(request, plan, &settings)
            })
        };
        FakeCloudEvents { core, settings }
    }

    fn settings(&self) -> std::sync::MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on require `Authorization: Bearer <token>` (401 otherwise);
    /// `None` accepts any.
    pub fn expect_token(&self, token: Option<&str>) {
        self.settings().token = token.map(str::to_owned);
    }

    /// The status of an accepted batch (200 by default; e.g. 202 or 204).
    pub fn success_status(&self, status: u16) {
        self.settings().success_status = status;
    }

    super::common_methods!(Value);
}

fn problem(status: u16, code: &str, message: &str) -> Response {
    let body = json!({"code": code, "message": message}).to_string();
    Response::new(status, "application/json", body.into_bytes())
}

/// Why an item is no valid CloudEvent 1.0, if it is not.
fn invalid(event: &Value) -> Option<String> {
    let Some(object) = event.as_object() else {
        return Some("not a JSON object".into());
    };
    if object.get("specversion").and_then(Value::as_str) != Some("1.0") {
        return Some("specversion must be \"1.0\"".into());
    }
    for name in ["id", "source", "type"] {
        match object.get(name).and_then(Value::as_str) {
            Some(s) if !s.is_empty() => {}
            _ => return Some(format!("{name} must be a non-empty string")),
        }
    }
    None
}

fn receive(request: &Request, plan: &Plan<Value>, settings: &Mutex<Settings>) -> Handled<Value> {
    let operation = format!("{} {}", request.method, request.path);
    let refuse = |status, code: &str, message: &str, entries| {
        Handled::refused(
            &operation,
            problem(status, code, message),
            Some(code),
            entries,
        )
    };
    let events: Vec<Value> = match serde_json::from_slice(&request.body) {
        Ok(Value::Array(events)) => events,
        _ => Vec::new(),
    };
    if let Some((status, code, message)) = &plan.error {
        return refuse(*status, code, message, events);
    }
    if request.method != "POST" {
        return refuse(405, "MethodNotAllowed", "only POST is supported", events);
    }
    let (token, success) = {
        let settings = settings.lock().unwrap_or_else(|e| e.into_inner());
        (settings.token.clone(), settings.success_status)
    };
    if let Some(token) = token {
        if request.header("Authorization") != Some(format!("Bearer {token}")) {
            return refuse(
                401,
                "Unauthorized",
                "a valid bearer token is required",
                events,
            );
        }
    }
    let media_type = request.header("Content-Type").map(|t| {
        t.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    if media_type.as_deref() != Some(BATCH_CONTENT_TYPE) {
        let message = format!("Content-Type must be {BATCH_CONTENT_TYPE}, not {media_type:?}");
        return refuse(415, "UnsupportedMediaType", &message, events);
    }
    if !matches!(serde_json::from_slice(&request.body), Ok(Value::Array(_))) {
        return refuse(400, "BadRequest", "the body must be a JSON array", events);
    }
    let problems: Vec<String> = events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| invalid(e).map(|why| format!("event {i}: {why}")))
        .collect();
    if !problems.is_empty() {
        return refuse(400, "BadRequest", &problems.join("; "), events);
    }
    Handled {
        response: Response::empty(success),
        operation,
        error_code: None,
        entries: events.clone(),
        accepted: events,
        failed: 0,
    }
}
