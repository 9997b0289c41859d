//! Fakes of the relay's newer sinks, each an in-process HTTP server on
//! `127.0.0.1` (random port) speaking the service's wire protocol as the
//! real SDK sends it, with faults a test can switch on:
//!
//! - [`FakeEventBridge`]: Amazon EventBridge `PutEvents` (awsJson1_1);
//! - [`FakeKinesis`]: Kinesis Data Streams `PutRecords` (awsJson1_1);
//! - [`FakeSns`]: Amazon SNS `PublishBatch` (awsQuery, XML answers), standard
//!   and FIFO topics;
//! - [`FakeCloudEvents`]: an HTTP endpoint taking CloudEvents 1.0 in
//!   structured batch mode (`application/cloudevents-batch+json`).
//!
//! moto answers these operations too, but never with a partial failure, a
//! throttling error or a size limit; these fakes do, and enforce the real
//! limits (each module says which, and what the service answers).
//!
//! # What every fake shares
//!
//! A fake keeps an [`accepted`](FakeEventBridge::accepted) log (what the
//! service would have delivered, in arrival order) and a
//! [`requests`](FakeEventBridge::requests) log ([`RequestLog`]: status,
//! error code, entries, headers). Each request gets one behaviour, chosen in
//! this order:
//! 1. the next [`Fault`] of the [`script`](FakeEventBridge::script), if any
//!    (a script entry replaces the standing settings for that request);
//! 2. else the standing settings: [`respond_error`](FakeEventBridge::respond_error)
//!    (for its number of times), then [`fail_entries`](FakeEventBridge::fail_entries)
//!    and [`hang`](FakeEventBridge::hang).
//!
//! Then the protocol's checks run (each module lists its order); an injected
//! whole-request error comes right after the operation is recognised, before
//! any validation, as a throttled request is never looked at. Injected
//! per-entry failures come after the service's own checks. [`Fault::Hang`]
//! processes the request (accepting what it would) and then holds the answer;
//! [`Fault::Disconnect`] closes the connection unanswered, accepting nothing;
//! [`Fault::AcceptThenDisconnect`] accepts, then closes unanswered.
//! [`refuse_connections`](FakeEventBridge::refuse_connections) closes the port
//! and cuts open connections (the service is down) until
//! [`accept_connections`](FakeEventBridge::accept_connections).
//!
//! Signatures are not checked.

pub mod cloudevents;
pub mod eventbridge;
pub mod kinesis;
mod server;
pub mod sns;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

pub use cloudevents::{FakeCloudEvents, BATCH_CONTENT_TYPE};
pub use eventbridge::{EventBridgeEntry, FakeEventBridge};
pub use kinesis::{FakeKinesis, KinesisRecord};
pub use sns::{FakeSns, SnsAttribute, SnsMessage};

use crate::nakadi::Request;
use server::{Reply, Response, Server};

/// An entry's key, for [`Select::Keys`]: each fake's entry type says which
/// field it is.
pub trait Keyed {
    /// The key, if the entry has one.
    fn key(&self) -> Option<&str>;
}

/// Which entries of a request an [`EntryFailure`] fails.
#[derive(Clone)]
pub enum Select<E> {
    /// Every entry.
    All,
    /// The entries at these positions (0-based) of the request.
    Positions(HashSet<usize>),
    /// The entries whose [`Keyed::key`] is one of these.
    Keys(HashSet<String>),
    /// The entries this predicate holds for.
    Where(Arc<dyn Fn(&E) -> bool + Send + Sync>),
}

impl<E> std::fmt::Debug for Select<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Select::All => f.write_str("All"),
            Select::Positions(p) => f.debug_tuple("Positions").field(p).finish(),
            Select::Keys(k) => f.debug_tuple("Keys").field(k).finish(),
            Select::Where(_) => f.write_str("Where(..)"),
        }
    }
}

impl<E: Keyed> Select<E> {
    /// [`Select::Keys`] from any strings.
    pub fn keys<I, S>(keys: I) -> Select<E>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Select::Keys(keys.into_iter().map(Into::into).collect())
    }

    /// [`Select::Where`] from a closure.
    pub fn when(predicate: impl Fn(&E) -> bool + Send + Sync + 'static) -> Select<E> {
        Select::Where(Arc::new(predicate))
    }

    fn matches(&self, position: usize, entry: &E) -> bool {
        match self {
            Select::All => true,
            Select::Positions(p) => p.contains(&position),
            Select::Keys(keys) => entry.key().is_some_and(|k| keys.contains(k)),
            Select::Where(predicate) => predicate(entry),
        }
    }
}

/// Fail the selected entries of a request with this error code and message
/// (the others are accepted).
#[derive(Debug, Clone)]
pub struct EntryFailure<E> {
    /// Which entries.
    pub select: Select<E>,
    /// The per-entry error code, e.g. `ThrottlingException` (EventBridge),
    /// `ProvisionedThroughputExceededException` (Kinesis), `InternalError`
    /// (SNS).
    pub code: String,
    /// The per-entry error message.
    pub message: String,
}

impl<E: Keyed> EntryFailure<E> {
    /// Fails `select` with `code` and a message saying it was injected.
    pub fn new(select: Select<E>, code: &str) -> EntryFailure<E> {
        EntryFailure {
            select,
            code: code.to_owned(),
            message: format!("{code} (injected by the test's fake)"),
        }
    }

    /// The first failure (of `failures`) that selects this entry.
    fn find<'a>(failures: &'a [EntryFailure<E>], position: usize, entry: &E) -> Option<&'a Self> {
        failures.iter().find(|f| f.select.matches(position, entry))
    }
}

/// One per-request behaviour for a fake's `script`.
#[derive(Debug, Clone)]
pub enum Fault<E> {
    /// Answer as a healthy service.
    Healthy,
    /// Answer the whole request with this status and error code (for AWS
    /// fakes in the protocol's error format; for [`FakeCloudEvents`] a JSON
    /// body `{"code", "message"}`); nothing accepted.
    Error {
        /// HTTP status, e.g. 400, 500, 503.
        status: u16,
        /// AWS error code, e.g. `ThrottlingException`.
        code: String,
        /// Error message.
        message: String,
    },
    /// Answer with this 3xx status and `Location`, accepting nothing.
    Redirect {
        /// HTTP status, e.g. 302, 307.
        status: u16,
        /// The `Location` header.
        location: String,
    },
    /// Fail these entries, accept the others (for [`FakeCloudEvents`], whose
    /// batches are all or nothing, this is [`Fault::Healthy`]).
    FailEntries(Vec<EntryFailure<E>>),
    /// Process the request normally (accepting what a healthy service would),
    /// then hold the answer back this long.
    Hang(Duration),
    /// Close the connection without answering; nothing accepted.
    Disconnect,
    /// Process the request normally (accepting), then close the connection
    /// without answering.
    AcceptThenDisconnect,
}

impl<E: Keyed> Fault<E> {
    /// [`Fault::Error`] with a message saying it was injected.
    pub fn error(status: u16, code: &str) -> Fault<E> {
        Fault::Error {
            status,
            code: code.to_owned(),
            message: format!("{code} (injected by the test's fake)"),
        }
    }

    /// [`Fault::FailEntries`] of one failure.
    pub fn fail(select: Select<E>, code: &str) -> Fault<E> {
        Fault::FailEntries(vec![EntryFailure::new(select, code)])
    }
}

/// One request as a fake saw it, in arrival order.
#[derive(Debug, Clone)]
pub struct RequestLog<E> {
    /// `X-Amz-Target` (JSON protocols), `Action` (SNS), or `METHOD /path`
    /// (CloudEvents and anything unrecognised).
    pub operation: String,
    /// The status answered; 0 when the connection was closed unanswered.
    pub status: u16,
    /// The whole-request error code answered, if any.
    pub error_code: Option<String>,
    /// The entries of the request as parsed, in request order (accepted or
    /// not; empty if the body could not be parsed).
    pub entries: Vec<E>,
    /// How many entries were answered as failed.
    pub failed: usize,
    /// The request's headers, as sent.
    pub headers: Vec<(String, String)>,
    /// The body's length in bytes.
    pub body_len: usize,
}

impl<E> RequestLog<E> {
    /// A header's value (the first one of that name, case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a request gets, chosen from the script or the standing settings.
#[derive(Debug)]
pub(crate) struct Plan<E> {
    pub(crate) error: Option<(u16, String, String)>,
    pub(crate) redirect: Option<(u16, String)>,
    pub(crate) fail: Vec<EntryFailure<E>>,
    pub(crate) hang: Option<Duration>,
    pub(crate) disconnect_before: bool,
    pub(crate) disconnect_after: bool,
}

impl<E> Default for Plan<E> {
    fn default() -> Self {
        Plan {
            error: None,
            redirect: None,
            fail: Vec::new(),
            hang: None,
            disconnect_before: false,
            disconnect_after: false,
        }
    }
}

impl<E> Plan<E> {
    fn from_fault(fault: Fault<E>) -> Plan<E> {
        let mut plan = Plan::default();
        match fault {
            Fault::Healthy => {}
            Fault::Error {
                status,
                code,
                message,
            } => plan.error = Some((status, code, message)),
            Fault::Redirect { status, location } => plan.redirect = Some((status, location)),
            Fault::FailEntries(failures) => plan.fail = failures,
            Fault::Hang(d) => plan.hang = Some(d),
            Fault::Disconnect => plan.disconnect_before = true,
            Fault::AcceptThenDisconnect => plan.disconnect_after = true,
        }
        plan
    }
}

/// What a protocol made of one request.
pub(crate) struct Handled<E> {
    pub(crate) response: Response,
    pub(crate) operation: String,
    pub(crate) error_code: Option<String>,
    pub(crate) entries: Vec<E>,
    pub(crate) accepted: Vec<E>,
    pub(crate) failed: usize,
}

impl<E> Handled<E> {
    /// A whole-request answer that accepts nothing.
    pub(crate) fn refused(
        operation: &str,
        response: Response,
        code: Option<&str>,
        entries: Vec<E>,
    ) -> Handled<E> {
        Handled {
            response,
            operation: operation.to_owned(),
            error_code: code.map(str::to_owned),
            entries,
            accepted: Vec::new(),
            failed: 0,
        }
    }
}

struct State<E> {
    script: VecDeque<Fault<E>>,
    error: Option<((u16, String, String), Option<usize>)>,
    fail: Vec<EntryFailure<E>>,
    hang: Option<Duration>,
    accepted: Vec<E>,
    requests: Vec<RequestLog<E>>,
}

impl<E: Clone> State<E> {
    fn next_plan(&mut self) -> Plan<E> {
        if let Some(fault) = self.script.pop_front() {
            return Plan::from_fault(fault);
        }
        if let Some((error, times)) = self.error.take() {
            self.error = match times {
                Some(n) if n <= 1 => None,
                Some(n) => Some((error.clone(), Some(n - 1))),
                None => Some((error.clone(), None)),
            };
            return Plan {
                error: Some(error),
                ..Plan::default()
            };
        }
        Plan {
            fail: self.fail.clone(),
            hang: self.hang,
            ..Plan::default()
        }
    }
}

struct Shared<E> {
    state: Mutex<State<E>>,
    changed: Condvar,
}

impl<E> Shared<E> {
    fn state(&self) -> MutexGuard<'_, State<E>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The part every fake shares: the server, the script, the logs.
pub(crate) struct Core<E> {
    server: Server,
    shared: Arc<Shared<E>>,
}

impl<E: Clone + Send + 'static> Core<E> {
    /// Starts serving on a random port of `127.0.0.1`; `handle` answers each
    /// request under its plan.
    pub(crate) fn start(
        name: &'static str,
        handle: impl Fn(&Request, &Plan<E>) -> Handled<E> + Send + Sync + 'static,
    ) -> Core<E> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                script: VecDeque::new(),
                error: None,
                fail: Vec::new(),
                hang: None,
                accepted: Vec::new(),
                requests: Vec::new(),
            }),
            changed: Condvar::new(),
        });
        let handler = {
            let shared = shared.clone();
            move |request: &Request| -> Reply {
                let plan = shared.state().next_plan();
                let mut log = RequestLog {
                    operation: String::new(),
                    status: 0,
                    error_code: None,
                    entries: Vec::new(),
                    failed: 0,
                    headers: request.headers.clone(),
                    body_len: request.body.len(),
                };
                let reply = if plan.disconnect_before {
                    log.operation = operation_of(request);
                    Reply {
                        response: None,
                        hang: None,
                    }
                } else if let Some((status, location)) = &plan.redirect {
                    log.operation = operation_of(request);
                    log.status = *status;
                    Reply {
                        response: Some(Response::redirect(*status, location)),
                        hang: plan.hang,
                    }
                } else {
                    let handled = handle(request, &plan);
                    log.operation = handled.operation;
                    log.error_code = handled.error_code;
                    log.entries = handled.entries;
                    log.failed = handled.failed;
                    if !plan.disconnect_after {
                        log.status = handled.response.status;
                    }
                    shared.state().accepted.extend(handled.accepted);
                    Reply {
                        response: (!plan.disconnect_after).then_some(handled.response),
                        hang: plan.hang,
                    }
                };
                shared.state().requests.push(log);
                shared.changed.notify_all();
                reply
            }
        };
        let server = Server::start(name, Arc::new(handler))
            .unwrap_or_else(|e| panic!("{name}: listen on 127.0.0.1: {e}"));
        Core { server, shared }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    pub(crate) fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    pub(crate) fn script(&self, faults: Vec<Fault<E>>) {
        self.shared.state().script.extend(faults);
    }

    pub(crate) fn respond_error(&self, status: u16, code: &str, times: Option<usize>) {
        let message = format!("{code} (injected by the test's fake)");
        self.shared.state().error = match times {
            Some(0) => None,
            _ => Some(((status, code.to_owned(), message), times)),
        };
    }

    pub(crate) fn fail_entries(&self, failures: Vec<EntryFailure<E>>) {
        self.shared.state().fail = failures;
    }

    pub(crate) fn hang(&self, delay: Duration) {
        self.shared.state().hang = (!delay.is_zero()).then_some(delay);
    }

    pub(crate) fn healthy(&self) {
        let mut state = self.shared.state();
        state.script.clear();
        state.error = None;
        state.fail.clear();
        state.hang = None;
    }

    pub(crate) fn refuse_connections(&self) {
        self.server.refuse_connections();
    }

    pub(crate) fn accept_connections(&self) {
        self.server.accept_connections();
    }

    pub(crate) fn accepted(&self) -> Vec<E> {
        self.shared.state().accepted.clone()
    }

    pub(crate) fn acknowledged_count(&self) -> usize {
        self.shared
            .state()
            .requests
            .iter()
            .filter(|r| (200..300).contains(&r.status))
            .map(|r| r.entries.len() - r.failed)
            .sum()
    }

    pub(crate) fn requests(&self) -> Vec<RequestLog<E>> {
        self.shared.state().requests.clone()
    }

    pub(crate) fn clear_logs(&self) {
        let mut state = self.shared.state();
        state.accepted.clear();
        state.requests.clear();
    }

    pub(crate) fn wait_accepted(&self, n: usize, timeout: Duration) -> bool {
        crate::wait_until(&self.shared.state, &self.shared.changed, timeout, |s| {
            s.accepted.len() >= n
        })
    }

    pub(crate) fn wait_requests(&self, n: usize, timeout: Duration) -> bool {
        crate::wait_until(&self.shared.state, &self.shared.changed, timeout, |s| {
            s.requests.len() >= n
        })
    }
}

fn operation_of(request: &Request) -> String {
    request
        .header("X-Amz-Target")
        .unwrap_or_else(|| format!("{} {}", request.method, request.path))
}

/// The methods every fake has, delegated to its [`Core`] (`self.core`).
macro_rules! common_methods {
    ($entry:ty) => {
        /// The base URL, like `http://127.0.0.1:PORT` (no trailing slash):
        /// the SDK's `endpoint_url`.
        pub fn url(&self) -> String {
            self.core.url()
        }

        /// The listening address.
        pub fn addr(&self) -> std::net::SocketAddr {
            self.core.addr()
        }

        /// Per-request behaviours, consumed one per request in order before
        /// the standing settings apply again; appends to what is left.
        pub fn script(&self, faults: Vec<$crate::sinks::Fault<$entry>>) {
            self.core.script(faults);
        }

        /// Answer the next `times` requests (`None`: until changed) with
        /// `status` and error `code`, accepting nothing.
        pub fn respond_error(&self, status: u16, code: &str, times: Option<usize>) {
            self.core.respond_error(status, code, times);
        }

        /// From now on fail the entries these select (the first failure that
        /// selects an entry wins); an empty list switches this off.
        pub fn fail_entries(&self, failures: Vec<$crate::sinks::EntryFailure<$entry>>) {
            self.core.fail_entries(failures);
        }

        /// Hold every answer back by `delay` after processing the request
        /// (`Duration::ZERO` switches this off).
        pub fn hang(&self, delay: std::time::Duration) {
            self.core.hang(delay);
        }

        /// Clears the script and the standing faults (not the service's own
        /// settings, not the logs; a closed port stays closed).
        pub fn healthy(&self) {
            self.core.healthy();
        }

        /// Stop listening: new connections are refused, open ones cut.
        /// Idempotent.
        pub fn refuse_connections(&self) {
            self.core.refuse_connections();
        }

        /// Listen again on the same port. Idempotent.
        pub fn accept_connections(&self) {
            self.core.accept_connections();
        }

        /// What was accepted, in arrival order.
        pub fn accepted(&self) -> Vec<$entry> {
            self.core.accepted()
        }

        /// How many entries the answers acknowledged, counted from the
        /// request log without copying it: the accepted ones and, on FIFO
        /// topics, duplicates answered as delivered before.
        pub fn acknowledged_count(&self) -> usize {
            self.core.acknowledged_count()
        }

        /// Every request, in arrival order.
        pub fn requests(&self) -> Vec<$crate::sinks::RequestLog<$entry>> {
            self.core.requests()
        }

        /// Forgets the accepted entries and the request log.
        pub fn clear_logs(&self) {
            self.core.clear_logs();
        }

        /// Waits until at least `n` entries were accepted; false on timeout.
        pub fn wait_accepted(&self, n: usize, timeout: std::time::Duration) -> bool {
            self.core.wait_accepted(n, timeout)
        }

        /// Waits until at least `n` requests were logged; false on timeout.
        pub fn wait_requests(&self, n: usize, timeout: std::time::Duration) -> bool {
            self.core.wait_requests(n, timeout)
        }
    };
}
pub(crate) use common_methods;

/// A request id for answers.
pub(crate) fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The JSON object body of an awsJson1_1 `POST` of `operation` (its
/// `X-Amz-Target`); otherwise the answer the service gives a request it
/// cannot take: `UnknownOperationException` or `SerializationException`.
pub(crate) fn json_operation<E>(
    request: &Request,
    operation: &str,
    fake: &str,
) -> Result<serde_json::Value, Box<Handled<E>>> {
    let target = request.header("X-Amz-Target").unwrap_or_default();
    let refuse = |code: &str, message: &str| {
        Box::new(Handled::refused(
            &target,
            json_error(400, code, message),
            Some(code),
            Vec::new(),
        ))
    };
    if target != operation || request.method != "POST" {
        let message = format!("operation {target:?} is not supported by {fake}");
        return Err(refuse("UnknownOperationException", &message));
    }
    match serde_json::from_slice(&request.body) {
        Ok(body @ serde_json::Value::Object(_)) => Ok(body),
        _ => Err(refuse(
            "SerializationException",
            "the body is no JSON object",
        )),
    }
}

/// An awsJson1_1 error answer: `{"__type": code, "message": ...}`, as the
/// SDK parses it (`code()`, `message()`).
pub(crate) fn json_error(status: u16, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"__type": code, "message": message}).to_string();
    Response::new(status, "application/x-amz-json-1.1", body.into_bytes())
        .with_header("x-amzn-RequestId", &request_id())
}
