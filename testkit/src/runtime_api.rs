//! `RuntimeApi`: the AWS Lambda Runtime API (version 2018-06-01) over HTTP on
//! `127.0.0.1`, so the real `relay` binary can run as a Lambda function in a
//! test: start it with [`RuntimeApi::env`] and call [`RuntimeApi::invoke`].
//!
//! Endpoints (under `/2018-06-01/runtime/`), as AWS documents them and as the
//! `lambda_runtime` 1.x client uses them:
//! - `GET invocation/next`: long-polls until an invocation is queued; 200 with
//!   the event as the body and the headers `Lambda-Runtime-Aws-Request-Id`,
//!   `Lambda-Runtime-Deadline-Ms` (both required by `lambda_runtime`, which
//!   panics without them), `Lambda-Runtime-Invoked-Function-Arn` and
//!   `Lambda-Runtime-Trace-Id`;
//! - `POST invocation/{id}/response`: the result; 202 `{"status":"OK"}`;
//! - `POST invocation/{id}/error`: an error (`{"errorType","errorMessage"}`,
//!   header `Lambda-Runtime-Function-Error-Type`); 202;
//! - `POST init/error`: the function failed to start; 202.
//!
//! Unknown request ids get 400 and other paths 404. Every request is served
//! on its own thread, so a blocked `next` never holds up a `response`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// The function ARN sent with every invocation.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:relay-test";

/// How long [`RuntimeApi::invoke`] waits past the invocation's deadline.
pub const GRACE: Duration = Duration::from_secs(30);

/// Why an invocation produced no JSON result.
#[derive(Debug, Clone, PartialEq)]
pub enum InvocationError {
    /// The function posted to `invocation/{id}/error`.
    Function {
        /// The `Lambda-Runtime-Function-Error-Type` header.
        error_type_header: Option<String>,
        /// `errorType` of the body, if it is the usual JSON.
        error_type: Option<String>,
        /// `errorMessage` of the body, if it is the usual JSON.
        error_message: Option<String>,
        /// The body as sent.
        body: String,
    },
    /// The function posted a response that is not JSON.
    InvalidResponse {
        /// The body as sent.
        body: String,
    },
    /// The function posted to `init/error` (before or during this invocation).
    Init(String),
    /// Nothing came back within the deadline plus the grace period.
    NoResponse {
        /// How long the harness waited.
        waited: Duration,
    },
    /// The caller's liveness check said the function is gone
    /// ([`RuntimeApi::invoke_while`]).
    Exited,
}

impl std::fmt::Display for InvocationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvocationError::Function { body, .. } => write!(f, "function error: {body}"),
            InvocationError::InvalidResponse { body } => {
                write!(f, "the response is not JSON: {body}")
            }
            InvocationError::Init(body) => write!(f, "init error: {body}"),
            InvocationError::NoResponse { waited } => {
                write!(f, "no response or error after {waited:?}")
            }
            InvocationError::Exited => write!(f, "the function exited without answering"),
        }
    }
}

impl std::error::Error for InvocationError {}

/// A queued invocation, not yet handed out by `next`.
struct Pending {
    id: String,
    event: Vec<u8>,
    deadline_ms: u128,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Pending>,
    /// Invocations handed out by `next` and not answered yet.
    in_flight: Vec<String>,
    outcomes: HashMap<String, Result<Value, InvocationError>>,
    init_error: Option<String>,
    /// `next` requests received so far.
    next_polls: usize,
    /// `next` requests currently waiting for an invocation.
    waiting: usize,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    closing: AtomicBool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The Lambda Runtime API on `127.0.0.1` (random port). Stops on drop.
pub struct RuntimeApi {
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeApi")
            .field("addr", &self.addr)
            .finish()
    }
}

impl RuntimeApi {
    /// Starts serving on a random port.
    pub fn start() -> RuntimeApi {
        let server =
            tiny_http::Server::http("127.0.0.1:0").expect("RuntimeApi: listen on 127.0.0.1");
        let addr = server
            .server_addr()
            .to_ip()
            .expect("RuntimeApi: listening on an IP address");
        let server = Arc::new(server);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            closing: AtomicBool::new(false),
        });
        let thread = {
            let shared = shared.clone();
            let closing = shared.clone();
            crate::serve_each_request(
                "runtime-api",
                server.clone(),
                move || closing.closing.load(Ordering::SeqCst),
                move |request| handle(&shared, request),
            )
        };
        RuntimeApi {
            shared,
            server,
            addr,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`: the value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The environment a function process needs to run against this API:
    /// `AWS_LAMBDA_RUNTIME_API` and the variables `lambda_runtime`'s
    /// `Config::from_env` requires (`AWS_LAMBDA_FUNCTION_NAME`,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, `AWS_LAMBDA_FUNCTION_VERSION`; it
    /// panics without them) plus the log group and stream names.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", self.address()),
            ("AWS_LAMBDA_FUNCTION_NAME", "relay-test".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/relay-test".into()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "test-stream".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Queues `event` with a deadline of now + `timeout` and waits until the
    /// function posts its response (`Ok`) or an error (`Err`), or until
    /// `timeout` + [`GRACE`] passed (`Err(NoResponse)`). Returns early with
    /// `Err(Init)` if the function reports an init error.
    pub fn invoke(&self, event: &Value, timeout: Duration) -> Result<Value, InvocationError> {
        self.invoke_while(event, timeout, || true)
    }

    /// [`invoke`](Self::invoke), but also gives up with `Err(Exited)` as soon
    /// as `alive` returns false (checked about every 50 ms), e.g.
    /// `|| child.try_wait().map(|s| s.is_none()).unwrap_or(false)`; a response
    /// posted before the process exited still wins.
    pub fn invoke_while(
        &self,
        event: &Value,
        timeout: Duration,
        mut alive: impl FnMut() -> bool,
    ) -> Result<Value, InvocationError> {
        let id = uuid::Uuid::new_v4().to_string();
        let deadline_ms = epoch_ms() + timeout.as_millis();
        let started = Instant::now();
        let give_up = started + timeout + GRACE;
        let mut state = self.shared.state();
        state.queue.push_back(Pending {
            id: id.clone(),
            event: event.to_string().into_bytes(),
            deadline_ms,
        });
        self.shared.changed.notify_all();
        loop {
            if let Some(outcome) = state.outcomes.remove(&id) {
                return outcome;
            }
            if let Some(init) = &state.init_error {
                return Err(InvocationError::Init(init.clone()));
            }
            let now = Instant::now();
            if now >= give_up {
                state.queue.retain(|p| p.id != id);
                return Err(InvocationError::NoResponse {
                    waited: now - started,
                });
            }
            let wait = (give_up - now).min(Duration::from_millis(50));
            state = self
                .shared
                .changed
                .wait_timeout(state, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            if state.outcomes.contains_key(&id) {
                continue;
            }
            drop(state);
            let is_alive = alive();
            state = self.shared.state();
            if !is_alive && !state.outcomes.contains_key(&id) {
                state.queue.retain(|p| p.id != id);
                return Err(InvocationError::Exited);
            }
        }
    }

    /// What the function posted to `init/error`, if anything.
    pub fn init_error(&self) -> Option<String> {
        self.shared.state().init_error.clone()
    }

    /// How many `GET invocation/next` requests arrived so far.
    pub fn next_polls(&self) -> usize {
        self.shared.state().next_polls
    }

    /// Waits until the function is polling `invocation/next` with nothing
    /// queued (initialised and idle); false on timeout.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        crate::wait_until(&self.shared.state, &self.shared.changed, timeout, |state| {
            state.waiting > 0 && state.queue.is_empty()
        })
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn epoch_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis()
}

fn header(request: &tiny_http::Request, name: &str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_string())
}

fn respond_json(request: tiny_http::Request, status: u16, body: &Value) {
    let mut response =
        tiny_http::Response::from_data(body.to_string().into_bytes()).with_status_code(status);
    if let Ok(h) = tiny_http::Header::from_bytes("Content-Type", "application/json") {
        response = response.with_header(h);
    }
    let _ = request.respond(response);
}

fn handle(shared: &Shared, mut request: tiny_http::Request) {
    const PREFIX: &str = "/2018-06-01/runtime/";
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let method = request.method().clone();
    let Some(route) = path.strip_prefix(PREFIX) else {
        return respond_json(
            request,
            404,
            &json!({"errorType": "NotFound", "errorMessage": path}),
        );
    };
    let segments: Vec<&str> = route.split('/').collect();
    match (method, segments.as_slice()) {
        (tiny_http::Method::Get, ["invocation", "next"]) => next(shared, request),
        (tiny_http::Method::Post, ["invocation", id, kind @ ("response" | "error")]) => {
            let id = id.to_string();
            let is_error = *kind == "error";
            let error_type_header = header(&request, "Lambda-Runtime-Function-Error-Type");
            let mut body = Vec::new();
            if let Err(e) = request.as_reader().read_to_end(&mut body) {
                return respond_json(
                    request,
                    400,
                    &json!({"errorType": "InvalidRequest", "errorMessage": e.to_string()}),
                );
            }
            let body_text = String::from_utf8_lossy(&body).into_owned();
            let outcome = if is_error {
                let parsed: Option<Value> = serde_json::from_slice(&body).ok();
                let field = |name: &str| {
                    parsed
                        .as_ref()
                        .and_then(|v| v.get(name))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                Err(InvocationError::Function {
                    error_type_header,
                    error_type: field("errorType"),
                    error_message: field("errorMessage"),
                    body: body_text,
                })
            } else {
                serde_json::from_slice(&body)
                    .map_err(|_| InvocationError::InvalidResponse { body: body_text })
            };
            let known = {
                let mut state = shared.state();
                let known = state.in_flight.iter().position(|i| *i == id);
                if let Some(index) = known {
                    state.in_flight.remove(index);
                    state.outcomes.insert(id.clone(), outcome);
                    shared.changed.notify_all();
                }
                known.is_some()
            };
            if known {
                respond_json(request, 202, &json!({"status": "OK"}))
            } else {
                respond_json(
                    request,
                    400,
                    &json!({"errorType": "InvalidRequestID", "errorMessage": format!("unknown or already answered request id {id}")}),
                )
            }
        }
        (tiny_http::Method::Post, ["init", "error"]) => {
            let mut body = Vec::new();
            let _ = request.as_reader().read_to_end(&mut body);
            let text = String::from_utf8_lossy(&body).into_owned();
            {
                let mut state = shared.state();
                state.init_error = Some(text);
                shared.changed.notify_all();
            }
            respond_json(request, 202, &json!({"status": "OK"}))
        }
        _ => respond_json(
            request,
            404,
            &json!({"errorType": "NotFound", "errorMessage": path}),
        ),
    }
}

/// `GET invocation/next`: blocks until an invocation is queued.
fn next(shared: &Shared, request: tiny_http::Request) {
    let pending = {
        let mut state = shared.state();
        state.next_polls += 1;
        state.waiting += 1;
        shared.changed.notify_all();
        loop {
            if shared.closing.load(Ordering::SeqCst) {
                state.waiting -= 1;
                break None;
            }
            if let Some(pending) = state.queue.pop_front() {
                state.waiting -= 1;
                state.in_flight.push(pending.id.clone());
                shared.changed.notify_all();
                break Some(pending);
            }
            state = shared
                .changed
                .wait_timeout(state, Duration::from_millis(500))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    };
    let Some(pending) = pending else {
        // Shutting down: tiny_http answers 500 when the request is dropped.
        return;
    };
    let trace_id = format!(
        "Root=1-{:08x}-{};Parent={};Sampled=0",
        (epoch_ms() / 1000) as u32,
        &uuid::Uuid::new_v4().simple().to_string()[..24],
        &uuid::Uuid::new_v4().simple().to_string()[..16],
    );
    let headers = [
        ("Content-Type", "application/json".to_string()),
        ("Lambda-Runtime-Aws-Request-Id", pending.id.clone()),
        (
            "Lambda-Runtime-Deadline-Ms",
            pending.deadline_ms.to_string(),
        ),
        (
            "Lambda-Runtime-Invoked-Function-Arn",
            FUNCTION_ARN.to_string(),
        ),
        ("Lambda-Runtime-Trace-Id", trace_id),
    ];
    let mut response = tiny_http::Response::from_data(pending.event).with_status_code(200);
    for (name, value) in headers {
        if let Ok(h) = tiny_http::Header::from_bytes(name, value.as_bytes()) {
            response = response.with_header(h);
        }
    }
    if let Err(e) = request.respond(response) {
        // The function went away mid-poll; the invocation stays in flight and
        // `invoke` reports NoResponse (or Exited) in time.
        eprintln!(
            "RuntimeApi: could not deliver invocation {}: {e}",
            pending.id
        );
    }
}
