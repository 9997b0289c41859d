//! `FakeNakadi`: an in-process HTTP server speaking Nakadi's event publishing
//! API (`POST /event-types/{name}/events`), with faults a test can switch on.
//! It is also `relay bus`, the local bus of the dev loop and the sink of
//! `relay-bench --pipeline` (see [`FakeNakadi::builder`]).
//!
//! Layout: it speaks HTTP/1.1 itself (keep-alive, `Content-Length` or
//! chunked bodies). A thread accepts connections and serves each on a thread
//! of its own, which reads a request, answers it and reads the next, as a
//! plain server would: nothing is handed between threads on the way. Every
//! open connection is registered, so [`FakeNakadi::refuse_connections`] can
//! close the port and cut them all (new connections are refused and open ones
//! are cut, as when Nakadi goes away) and [`FakeNakadi::accept_connections`]
//! binds the same port again; [`Fault::Disconnect`] closes the one connection
//! without an answer.
//!
//! Order of checks for `POST /event-types/{name}/events` (other paths: 404,
//! other methods: 405, both as problem JSON and not counted as faults):
//! 1. the request's behaviour is chosen: the next [`Fault`] of the
//!    [`script`](FakeNakadi::script) if any, else the standing settings;
//! 2. a [`Fault::Status`] / [`respond_status`](FakeNakadi::respond_status)
//!    answers with that status and accepts nothing;
//! 3. `Authorization: Bearer <token>` is checked if a token is expected
//!    ([`FakeNakadi::expect_token`]): 401 otherwise;
//! 4. the body (gzip if `Content-Encoding: gzip`) must be a JSON array: 400
//!    otherwise;
//! 5. validation (see [`FakeNakadi::data_change_types`] for which event types
//!    are data change types; off with [`Builder::without_validation`]) and
//!    `reject_eids`: any invalid item → 422, the invalid items `failed` with a
//!    detail, the others `aborted`, nothing accepted;
//! 6. `fail_eids` → 207 (`failed` / `submitted`, or `aborted` after the first
//!    failure with `abort_after_first_failure`), the `submitted` ones accepted;
//! 7. otherwise 200 with an empty body, all accepted.
//!
//! Clients should rely only on `eid` and `publishing_status` of the per-item
//! answers (as with the real Nakadi); `step` and `detail` are informative.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// One per-request behaviour for [`FakeNakadi::script`]. A script entry
/// replaces the standing settings (`respond_status`, `fail_eids`,
/// `reject_eids`, `abort_after_first_failure`, `hang`) for that one request;
/// the expected token and the data change rule still apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer as a healthy Nakadi: validate, then 200 (or 422 / 401).
    Healthy,
    /// Answer with this status (problem JSON body) and accept nothing.
    Status(u16),
    /// 207: these eids `failed`, the others `submitted` (and accepted).
    FailEids(HashSet<String>),
    /// 207: these eids `failed`, the items after the first failed one
    /// `aborted`, the ones before it `submitted` (and accepted).
    FailEidsAbortAfterFirst(HashSet<String>),
    /// These eids fail validation: the whole batch gets a 422.
    RejectEids(HashSet<String>),
    /// Process the request normally (accepting what a healthy Nakadi would),
    /// then hold the answer back this long: a client that times out meanwhile
    /// cannot know that its events were published.
    Hang(Duration),
    /// Close the client's connection without answering; nothing accepted.
    Disconnect,
    /// Answer with this 3xx status and `Location: /login` (a login page in
    /// front of the bus), accepting nothing; `GET /login` answers 200.
    Redirect(u16),
    /// Process the request normally (accepting the events), then close the
    /// connection without answering: the events are published but the client
    /// sees a connection error.
    AcceptThenDisconnect,
}

/// One request as the fake saw it, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLog {
    /// `{name}` of `/event-types/{name}/events` (empty for other paths).
    pub event_type: String,
    /// The status answered; 0 when the connection was closed without an
    /// answer ([`Fault::Disconnect`], [`Fault::AcceptThenDisconnect`]).
    pub status: u16,
    /// The `X-Flow-Id` header.
    pub flow_id: Option<String>,
    /// The `Authorization` header, as sent.
    pub auth: Option<String>,
    /// The number of items in the body's JSON array (0 if it was not one).
    pub n_events: usize,
    /// The items' `metadata.eid` strings, in request order (absent ones
    /// skipped).
    pub eids: Vec<String>,
    /// The `Content-Encoding` header.
    pub content_encoding: Option<String>,
}

/// Which event types are data change types (and so need `data_op`,
/// `data_type` and `data`).
#[derive(Debug, Clone)]
enum DataChangeRule {
    /// Names ending with `.changed` (the default).
    Suffix,
    /// Exactly these names.
    Names(HashSet<String>),
}

impl DataChangeRule {
    fn is_data_change(&self, event_type: &str) -> bool {
        match self {
            DataChangeRule::Suffix => event_type.ends_with(".changed"),
            DataChangeRule::Names(names) => names.contains(event_type),
        }
    }
}

#[derive(Debug)]
struct State {
    token: Option<String>,
    data_change: DataChangeRule,
    status: Option<(u16, Option<usize>)>,
    fail_eids: HashSet<String>,
    reject_eids: HashSet<String>,
    abort_after_first_failure: bool,
    hang: Option<Duration>,
    script: VecDeque<Fault>,
    accepted: Vec<(String, Value)>,
    requests: Vec<RequestLog>,
}

impl State {
    fn new() -> Self {
        State {
            token: None,
            data_change: DataChangeRule::Suffix,
            status: None,
            fail_eids: HashSet::new(),
            reject_eids: HashSet::new(),
            abort_after_first_failure: false,
            hang: None,
            script: VecDeque::new(),
            accepted: Vec::new(),
            requests: Vec::new(),
        }
    }

    /// The plan for the next request: the next script entry, else the
    /// standing settings (consuming one of `respond_status`'s `times`).
    fn next_plan(&mut self) -> Plan {
        if let Some(fault) = self.script.pop_front() {
            return Plan::from_fault(fault);
        }
        if let Some((code, times)) = self.status {
            self.status = match times {
                Some(n) if n <= 1 => None,
                Some(n) => Some((code, Some(n - 1))),
                None => Some((code, None)),
            };
            return Plan {
                status: Some(code),
                ..Plan::default()
            };
        }
        Plan {
            reject: self.reject_eids.clone(),
            fail: self.fail_eids.clone(),
            abort_after_first_failure: self.abort_after_first_failure,
            hang: self.hang,
            ..Plan::default()
        }
    }
}

#[derive(Debug, Default)]
struct Plan {
    status: Option<u16>,
    reject: HashSet<String>,
    fail: HashSet<String>,
    abort_after_first_failure: bool,
    hang: Option<Duration>,
    disconnect_before: bool,
    disconnect_after: bool,
    redirect: Option<u16>,
}

impl Plan {
    fn from_fault(fault: Fault) -> Plan {
        let mut plan = Plan::default();
        match fault {
            Fault::Healthy => {}
            Fault::Status(code) => plan.status = Some(code),
            Fault::FailEids(eids) => plan.fail = eids,
            Fault::FailEidsAbortAfterFirst(eids) => {
                plan.fail = eids;
                plan.abort_after_first_failure = true;
            }
            Fault::RejectEids(eids) => plan.reject = eids,
            Fault::Hang(d) => plan.hang = Some(d),
            Fault::Disconnect => plan.disconnect_before = true,
            Fault::AcceptThenDisconnect => plan.disconnect_after = true,
            Fault::Redirect(code) => plan.redirect = Some(code),
        }
        plan
    }
}

/// What every accepted event is shown to, with its event type, in
/// acceptance order per request ([`Builder::on_accepted`]).
type OnAccepted = Arc<dyn Fn(&str, &[Value]) + Send + Sync>;

/// How the fake was started: fixed for its life.
struct Mode {
    validate: bool,
    keep: bool,
    on_accepted: Option<OnAccepted>,
}

impl Mode {
    /// Whether a request's events are needed as values (else they are only
    /// counted).
    fn needs_values(&self) -> bool {
        self.validate || self.keep || self.on_accepted.is_some()
    }
}

struct Shared {
    mode: Mode,
    state: Mutex<State>,
    /// Notified whenever a request has been handled.
    changed: Condvar,
    /// Events accepted so far (in every mode).
    accepted: Arc<AtomicUsize>,
    /// Open client connections, to cut them.
    conns: Mutex<HashMap<u64, TcpStream>>,
    next_conn: AtomicU64,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn conns(&self) -> MutexGuard<'_, HashMap<u64, TcpStream>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cut_all(&self) {
        for (_, conn) in self.conns().drain() {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

/// The listening socket's thread, accepting connections.
struct Listening {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// How to start a [`FakeNakadi`]: [`FakeNakadi::start`] takes the defaults
/// (a random port of `127.0.0.1`, validation, every event and request kept).
/// A plain loopback sink (`relay bus`) turns off validation and the logs:
///
/// ```no_run
/// let sink = relay_testkit::FakeNakadi::builder()
///     .listen("127.0.0.1:8080")
///     .without_validation()
///     .without_logs()
///     .start()?;
/// println!("{} events so far", sink.accepted_count());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Builder {
    listen: String,
    mode: Mode,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("listen", &self.listen)
            .field("validate", &self.mode.validate)
            .field("keep", &self.mode.keep)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Listen on `addr` (`host:port`) instead of a random port of `127.0.0.1`.
    pub fn listen(mut self, addr: impl Into<String>) -> Builder {
        self.listen = addr.into();
        self
    }

    /// Accept any JSON array: no Nakadi schema checks, no duplicate eid
    /// check (`reject_eids` still applies).
    pub fn without_validation(mut self) -> Builder {
        self.mode.validate = false;
        self
    }

    /// Keep neither the accepted events nor the request log, only their
    /// count ([`FakeNakadi::accepted_count`]): memory stays flat however
    /// long it runs. [`FakeNakadi::accepted`] and [`FakeNakadi::requests`]
    /// are empty then.
    pub fn without_logs(mut self) -> Builder {
        self.mode.keep = false;
        self
    }

    /// Show every accepted event to `observer`, with its event type, once
    /// per request (outside the fake's lock, before the answer is sent).
    pub fn on_accepted(
        mut self,
        observer: impl Fn(&str, &[Value]) + Send + Sync + 'static,
    ) -> Builder {
        self.mode.on_accepted = Some(Arc::new(observer));
        self
    }

    /// Binds and starts serving on threads of its own; a healthy fake that
    /// expects no particular token and treats event types ending with
    /// `.changed` as data change types.
    pub fn start(self) -> io::Result<FakeNakadi> {
        let listener = TcpListener::bind(&self.listen)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            mode: self.mode,
            state: Mutex::new(State::new()),
            changed: Condvar::new(),
            accepted: Arc::new(AtomicUsize::new(0)),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
        });
        let listening = start_listening(listener, shared.clone());
        Ok(FakeNakadi {
            shared,
            addr,
            listening: Mutex::new(Some(listening)),
        })
    }
}

/// A fake Nakadi on `127.0.0.1` (random port, or as [built](Builder)). Stops
/// on drop.
pub struct FakeNakadi {
    shared: Arc<Shared>,
    addr: SocketAddr,
    listening: Mutex<Option<Listening>>,
}

impl std::fmt::Debug for FakeNakadi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeNakadi")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeNakadi {
    /// Starts a healthy fake on a random port of `127.0.0.1` with the
    /// defaults of [`builder`](Self::builder). Panics if it cannot listen.
    pub fn start() -> FakeNakadi {
        FakeNakadi::builder()
            .start()
            .expect("FakeNakadi: listen on 127.0.0.1")
    }

    /// A fake to configure before it starts.
    pub fn builder() -> Builder {
        Builder {
            listen: "127.0.0.1:0".to_owned(),
            mode: Mode {
                validate: true,
                keep: true,
                on_accepted: None,
            },
        }
    }

    /// The base URL, like `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on require `Authorization: Bearer <token>`; any other (or no)
    /// header gets a 401.
    pub fn expect_token(&self, token: &str) {
        self.shared.state().token = Some(token.to_string());
    }

    /// From now on accept any (or no) `Authorization` header (the default).
    pub fn accept_any_token(&self) {
        self.shared.state().token = None;
    }

    /// The rule for data change event types (which must carry `data_op` in
    /// C/U/D, a string `data_type` and an object `data`): by default every
    /// event type whose name ends with `.changed`. Calling this replaces that
    /// rule: from now on exactly `names` are data change types, all others are
    /// business types (only `metadata.eid` and `metadata.occurred_at`
    /// checked). `data_change_types(&[])` makes every type a business type.
    pub fn data_change_types(&self, names: &[&str]) {
        self.shared.state().data_change =
            DataChangeRule::Names(names.iter().map(|s| s.to_string()).collect());
    }

    /// Answer the next `times` requests (`None`: until changed) with `code`
    /// and a problem JSON body, accepting nothing. 403 gets Nakadi's
    /// `{"title":"Forbidden","status":403,"detail":"Producer is blocked"}`.
    pub fn respond_status(&self, code: u16, times: Option<usize>) {
        self.shared.state().status = match times {
            Some(0) => None,
            _ => Some((code, times)),
        };
    }

    /// 207 for requests containing these eids: they are `failed` (step
    /// `publishing`), the others `submitted` and accepted (see also
    /// [`abort_after_first_failure`](Self::abort_after_first_failure)). An
    /// empty set switches this off.
    pub fn fail_eids<I, S>(&self, eids: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.shared.state().fail_eids = eids.into_iter().map(Into::into).collect();
    }

    /// These eids fail validation, so a request containing one gets a 422 and
    /// nothing of it is accepted. An empty set switches this off.
    pub fn reject_eids<I, S>(&self, eids: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.shared.state().reject_eids = eids.into_iter().map(Into::into).collect();
    }

    /// With `fail_eids`: items after the first failed one in a request are
    /// `aborted` (not accepted) instead of `submitted`.
    pub fn abort_after_first_failure(&self, on: bool) {
        self.shared.state().abort_after_first_failure = on;
    }

    /// Hold every answer back by `delay` (`Duration::ZERO` switches this off).
    /// The request is processed (and its events accepted, if valid) before
    /// the delay, so a client timing out cannot know whether they were
    /// published — the ambiguity a real timeout has.
    pub fn hang(&self, delay: Duration) {
        self.shared.state().hang = (!delay.is_zero()).then_some(delay);
    }

    /// Per-request behaviours, consumed one per request in order, before the
    /// standing settings apply again. Appends to any script not yet consumed.
    pub fn script(&self, faults: Vec<Fault>) {
        self.shared.state().script.extend(faults);
    }

    /// Clears every fault: standing settings and the script. The expected
    /// token, the data change rule and the logs stay. Does not re-open a port
    /// closed by [`refuse_connections`](Self::refuse_connections).
    pub fn healthy(&self) {
        let mut state = self.shared.state();
        state.status = None;
        state.fail_eids.clear();
        state.reject_eids.clear();
        state.abort_after_first_failure = false;
        state.hang = None;
        state.script.clear();
    }

    /// Stop listening: new connections are refused and open ones (including
    /// kept-alive and hanging ones) are cut. Idempotent.
    pub fn refuse_connections(&self) {
        let listening = self.listening().take();
        if let Some(listening) = listening {
            stop_listening(listening, self.addr);
        }
        self.shared.cut_all();
    }

    fn listening(&self) -> MutexGuard<'_, Option<Listening>> {
        self.listening.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Listen again on the same port after
    /// [`refuse_connections`](Self::refuse_connections). Idempotent.
    ///
    /// Panics if the port cannot be bound again within 10 s (another process
    /// took it).
    pub fn accept_connections(&self) {
        let mut listening = self.listening();
        if listening.is_some() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            // std's TcpListener::bind sets SO_REUSEADDR on Unix, so
            // connections in TIME_WAIT do not keep the port.
            match TcpListener::bind(self.addr) {
                Ok(listener) => break listener,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("FakeNakadi: cannot listen on {} again: {e}", self.addr),
            }
        };
        *listening = Some(start_listening(listener, self.shared.clone()));
    }

    /// How many events were accepted since the fake started, in every mode
    /// ([`clear_logs`](Self::clear_logs) does not reset it).
    pub fn accepted_count(&self) -> usize {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// [`accepted_count`](Self::accepted_count) as a live counter, readable
    /// after the fake is gone.
    pub fn accepted_counter(&self) -> Arc<AtomicUsize> {
        self.shared.accepted.clone()
    }

    /// Every accepted event with its event type, in acceptance order.
    pub fn accepted(&self) -> Vec<(String, Value)> {
        self.shared.state().accepted.clone()
    }

    /// The `metadata.eid` of every accepted event, in acceptance order.
    pub fn accepted_eids(&self) -> Vec<String> {
        self.shared
            .state()
            .accepted
            .iter()
            .filter_map(|(_, e)| e.pointer("/metadata/eid")?.as_str().map(str::to_string))
            .collect()
    }

    /// The accepted events of one event type, in acceptance order.
    pub fn accepted_of(&self, event_type: &str) -> Vec<Value> {
        self.shared
            .state()
            .accepted
            .iter()
            .filter(|(t, _)| t == event_type)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Every request to the publishing endpoint (and any other path), in
    /// arrival order.
    pub fn requests(&self) -> Vec<RequestLog> {
        self.shared.state().requests.clone()
    }

    /// Forgets the accepted events and the request log.
    pub fn clear_logs(&self) {
        let mut state = self.shared.state();
        state.accepted.clear();
        state.requests.clear();
    }

    /// Waits until at least `n` requests have been logged; false on timeout.
    pub fn wait_requests(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.requests.len() >= n)
    }

    /// Waits until at least `n` events have been accepted (since the last
    /// [`clear_logs`](Self::clear_logs); without logs, since the start);
    /// false on timeout.
    pub fn wait_accepted(&self, n: usize, timeout: Duration) -> bool {
        let (keep, count) = (self.shared.mode.keep, self.shared.accepted.clone());
        self.wait_until(timeout, move |s| match keep {
            true => s.accepted.len() >= n,
            false => count.load(Ordering::Relaxed) >= n,
        })
    }

    fn wait_until(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        crate::wait_until(&self.shared.state, &self.shared.changed, timeout, done)
    }
}

impl Drop for FakeNakadi {
    fn drop(&mut self) {
        self.refuse_connections();
    }
}

fn start_listening(listener: TcpListener, shared: Arc<Shared>) -> Listening {
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = stop.clone();
        thread::Builder::new()
            .name("fake-nakadi-accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    match stream {
                        Ok(stream) => serve_connection(stream, &shared),
                        Err(e) => eprintln!("FakeNakadi: accept failed: {e}"),
                    }
                }
                // The listener is dropped here: the port is closed.
            })
            .expect("FakeNakadi: spawn the accepting thread")
    };
    Listening { stop, thread }
}

fn stop_listening(listening: Listening, addr: SocketAddr) {
    listening.stop.store(true, Ordering::SeqCst);
    // Wake the blocking accept; the thread then sees `stop` and closes the
    // listener. If the connection fails the listener is gone already.
    let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(2));
    let _ = listening.thread.join();
}

/// Registers a client connection (before the accepting thread takes the
/// next, so cutting them all after stopping that thread misses none) and
/// serves it on a thread of its own.
fn serve_connection(stream: TcpStream, shared: &Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let Ok(registered) = stream.try_clone() else {
        let _ = stream.shutdown(Shutdown::Both);
        return;
    };
    let id = shared.next_conn.fetch_add(1, Ordering::SeqCst);
    shared.conns().insert(id, registered);
    let shared = shared.clone();
    let spawned = thread::Builder::new()
        .name("fake-nakadi-conn".into())
        .spawn(move || {
            let _ = serve(&stream, &shared);
            let _ = stream.shutdown(Shutdown::Both);
            shared.conns().remove(&id);
        });
    if spawned.is_err() {
        eprintln!("FakeNakadi: cannot spawn a connection thread");
    }
}

/// Answers the requests of one connection in turn until the client closes
/// it, asks to close it, sends something that is not HTTP, or a fault cuts it.
fn serve(stream: &TcpStream, shared: &Shared) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    let mut writer = stream;
    loop {
        let request = match read_request(&mut reader, &mut writer) {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let answer = Answer::problem(400, "Bad Request", &e.to_string());
                return write_answer(&mut writer, &answer, true);
            }
            Err(e) => return Err(e),
        };
        let (answer, hang) = handle(shared, &request);
        if let Some(delay) = hang {
            thread::sleep(delay);
        }
        let Some(answer) = answer else {
            // A fault: the connection is closed without an answer.
            return Ok(());
        };
        // The client may have given up meanwhile (timeouts, cut connections).
        write_answer(&mut writer, &answer, request.close)?;
        if request.close {
            return Ok(());
        }
    }
}

/// One HTTP/1.1 request as read from a connection (also read by the sink
/// fakes, [`crate::sinks`]).
pub(crate) struct Request {
    pub(crate) method: String,
    /// The path, without the query.
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// The client asked to close the connection after the answer.
    pub(crate) close: bool,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

/// The longest request line or header line read.
const MAX_LINE: u64 = 64 << 10;

/// Reads one line without its CRLF; `None` at the end of the stream.
fn read_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    reader.take(MAX_LINE).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(invalid("a line too long, or cut short"));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| invalid("a line that is not UTF-8"))
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("not HTTP/1.1: {what}"))
}

/// Reads the next request; `None` if the client closed the connection
/// between requests. Framing errors are `InvalidData`.
pub(crate) fn read_request(
    reader: &mut impl BufRead,
    writer: &mut impl Write,
) -> io::Result<Option<Request>> {
    let line = loop {
        match read_line(reader)? {
            None => return Ok(None),
            // Robust servers skip empty lines before a request line.
            Some(line) if line.is_empty() => continue,
            Some(line) => break line,
        }
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("a malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(invalid("an unsupported HTTP version"));
    }
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?.ok_or_else(|| invalid("no end of headers"))?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid("a header line without a colon"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let mut request = Request {
        method: method.to_owned(),
        path: target.split('?').next().unwrap_or("").to_owned(),
        headers,
        body: Vec::new(),
        close: version == "HTTP/1.0",
    };
    if let Some(connection) = request.header("Connection") {
        request.close = connection.eq_ignore_ascii_case("close");
    }
    if request
        .header("Expect")
        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let chunked = request
        .header("Transfer-Encoding")
        .is_some_and(|e| e.to_ascii_lowercase().contains("chunked"));
    if chunked {
        request.body = read_chunked(reader)?;
    } else if let Some(length) = request.header("Content-Length") {
        let length: usize = length
            .parse()
            .map_err(|_| invalid("a Content-Length that is no number"))?;
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        request.body = body;
    }
    Ok(Some(request))
}

/// A chunked body, trailers skipped.
fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?.ok_or_else(|| invalid("a chunked body cut short"))?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| invalid("a chunk size that is no number"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while read_line(reader)?.is_some_and(|line| !line.is_empty()) {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        if read_line(reader)?.is_none_or(|line| !line.is_empty()) {
            return Err(invalid("a chunk without its CRLF"));
        }
    }
}

/// Writes an answer in one piece (no stall between head and body).
fn write_answer(writer: &mut impl Write, answer: &Answer, close: bool) -> io::Result<()> {
    let body = answer
        .body
        .as_ref()
        .map(|body| body.to_string())
        .unwrap_or_default();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\n",
        answer.status,
        reason(answer.status),
        body.len()
    );
    if answer.body.is_some() {
        head.push_str(&format!("Content-Type: {}\r\n", answer.content_type));
    }
    if let Some(location) = answer.location {
        head.push_str(&format!("Location: {location}\r\n"));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body.as_bytes());
    writer.write_all(&out)?;
    writer.flush()
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        207 => "Multi-Status",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// An answer to send.
struct Answer {
    status: u16,
    content_type: &'static str,
    body: Option<Value>,
    location: Option<&'static str>,
}

impl Answer {
    fn problem(status: u16, title: &str, detail: &str) -> Answer {
        Answer {
            status,
            content_type: "application/problem+json",
            body: Some(json!({
                "type": format!("https://httpstatus.es/{status}"),
                "title": title,
                "status": status,
                "detail": detail,
            })),
            location: None,
        }
    }

    fn json(status: u16, body: Value) -> Answer {
        Answer {
            status,
            content_type: "application/json",
            body: Some(body),
            location: None,
        }
    }
}

/// Handles one request: the answer (`None`: close the connection without
/// one) and how long to hold it back.
fn handle(shared: &Shared, request: &Request) -> (Option<Answer>, Option<Duration>) {
    let flow_id = request.header("X-Flow-Id");
    let auth = request.header("Authorization");
    let encoding = request.header("Content-Encoding");
    let path = request.path.as_str();
    let segments: Vec<&str> = path.split('/').collect();
    let event_type = match segments.as_slice() {
        ["", "event-types", name, "events"] if !name.is_empty() => Some(name.to_string()),
        _ => None,
    };
    let is_post = request.method == "POST";
    // A publishing request's body: decoding and parsing need no state, so
    // they are done before taking the lock.
    let body = (event_type.is_some() && is_post)
        .then(|| Body::parse(&request.body, encoding.as_deref(), &shared.mode));

    let mut log = RequestLog {
        event_type: event_type.clone().unwrap_or_default(),
        status: 0,
        flow_id,
        auth: auth.clone(),
        n_events: 0,
        eids: Vec::new(),
        content_encoding: encoding.clone(),
    };

    let (answer, hang, disconnect, accepted) = {
        let mut state = shared.state();
        let (answer, hang, disconnect, accepted) = match (&event_type, body) {
            // The login page redirects point to: a 200 that is no
            // acknowledgement of anything.
            (None, _) if path == "/login" => (
                Some(Answer::json(200, json!({"login": "please"}))),
                None,
                false,
                None,
            ),
            (None, _) => (
                Some(Answer::problem(
                    404,
                    "Not Found",
                    &format!("no such resource: {path}"),
                )),
                None,
                false,
                None,
            ),
            (Some(_), None) => (
                Some(Answer::problem(
                    405,
                    "Method Not Allowed",
                    "only POST is supported",
                )),
                None,
                false,
                None,
            ),
            (Some(event_type), Some(body)) => {
                let plan = state.next_plan();
                body.log_eids(&mut log);
                if plan.disconnect_before {
                    (None, None, true, None)
                } else {
                    let (answer, accepted) = publish(
                        &state,
                        &shared.mode,
                        &plan,
                        event_type,
                        auth.as_deref(),
                        body,
                    );
                    (Some(answer), plan.hang, plan.disconnect_after, accepted)
                }
            }
        };
        let n_accepted = accepted.as_ref().map_or(0, Accepted::len);
        shared.accepted.fetch_add(n_accepted, Ordering::Relaxed);
        log.status = match (&answer, disconnect) {
            (Some(answer), false) => answer.status,
            _ => 0,
        };
        if shared.mode.keep {
            let event_type = event_type.as_deref().unwrap_or_default();
            if let Some(Accepted::Items(items)) = &accepted {
                let owned = items.iter().map(|i| (event_type.to_string(), i.clone()));
                state.accepted.extend(owned);
            }
            state.requests.push(log);
        }
        shared.changed.notify_all();
        (answer, hang, disconnect, accepted)
    };

    if let (Some(observer), Some(event_type), Some(Accepted::Items(items))) =
        (&shared.mode.on_accepted, &event_type, &accepted)
    {
        observer(event_type, items);
    }
    match disconnect {
        true => (None, hang),
        false => (answer, hang),
    }
}

fn decode_body<'a>(raw: &'a [u8], encoding: Option<&str>) -> Result<Cow<'a, [u8]>, String> {
    match encoding.map(|e| e.trim().to_ascii_lowercase()) {
        None => Ok(Cow::Borrowed(raw)),
        Some(e) if e.is_empty() || e == "identity" => Ok(Cow::Borrowed(raw)),
        Some(e) if e == "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(raw)
                .read_to_end(&mut out)
                .map_err(|err| format!("cannot gunzip the body: {err}"))?;
            Ok(Cow::Owned(out))
        }
        Some(e) => Err(format!("unsupported Content-Encoding: {e}")),
    }
}

fn eid_of(item: &Value) -> Option<&str> {
    item.pointer("/metadata/eid")?.as_str()
}

/// A publishing request's body, decoded and parsed.
enum Body<'a> {
    /// The items of its JSON array.
    Items(Vec<Value>),
    /// A JSON array of this many items, only counted (the fake neither
    /// validates, keeps nor shows events), with the decoded bytes should a
    /// fault need the items.
    Counted(usize, Cow<'a, [u8]>),
    /// Why it is no JSON array: the detail of a 400.
    Bad(String),
}

impl<'a> Body<'a> {
    fn parse(raw: &'a [u8], encoding: Option<&str>, mode: &Mode) -> Body<'a> {
        let decoded = match decode_body(raw, encoding) {
            Ok(decoded) => decoded,
            Err(detail) => return Body::Bad(detail),
        };
        if !mode.needs_values() {
            // Counting skips building values: the loopback sink stays cheap.
            if let Ok(items) = serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(&decoded) {
                return Body::Counted(items.len(), decoded);
            }
        }
        Body::items(&decoded)
    }

    fn items(decoded: &[u8]) -> Body<'a> {
        match serde_json::from_slice::<Value>(decoded) {
            Ok(Value::Array(items)) => Body::Items(items),
            Ok(_) => Body::Bad("the body must be a JSON array of events".into()),
            Err(e) => Body::Bad(format!("Error parsing JSON: {e}")),
        }
    }

    /// Fills `n_events` and `eids` of the log, if the body is an array.
    fn log_eids(&self, log: &mut RequestLog) {
        match self {
            Body::Items(items) => {
                log.n_events = items.len();
                log.eids = items
                    .iter()
                    .filter_map(|i| eid_of(i).map(str::to_string))
                    .collect();
            }
            Body::Counted(n, _) => log.n_events = *n,
            Body::Bad(_) => {}
        }
    }
}

/// Events a request got accepted.
enum Accepted {
    Items(Vec<Value>),
    Counted(usize),
}

impl Accepted {
    fn len(&self) -> usize {
        match self {
            Accepted::Items(items) => items.len(),
            Accepted::Counted(n) => *n,
        }
    }
}

fn publish(
    state: &State,
    mode: &Mode,
    plan: &Plan,
    event_type: &str,
    auth: Option<&str>,
    body: Body<'_>,
) -> (Answer, Option<Accepted>) {
    let nothing = None;
    if let Some(code) = plan.status {
        return (status_answer(code), nothing);
    }
    if let Some(code) = plan.redirect {
        let answer = Answer {
            status: code,
            content_type: "text/plain",
            body: None,
            location: Some("/login"),
        };
        return (answer, nothing);
    }
    if let Some(token) = &state.token {
        if auth != Some(format!("Bearer {token}").as_str()) {
            let answer = Answer::problem(
                401,
                "Unauthorized",
                "Full authentication is required to access this resource",
            );
            return (answer, nothing);
        }
    }
    let items = match body {
        // Only counted: nothing to check item by item, unless a fault names
        // eids.
        Body::Counted(n, _) if plan.reject.is_empty() && plan.fail.is_empty() => {
            return (ok(), Some(Accepted::Counted(n)));
        }
        Body::Counted(_, decoded) => match Body::items(&decoded) {
            Body::Items(items) => items,
            _ => unreachable!("a body counted as an array parses as one"),
        },
        Body::Items(items) => items,
        Body::Bad(detail) => return (Answer::problem(400, "Bad Request", &detail), nothing),
    };

    // Validation: all or nothing (422).
    let data_change = state.data_change.is_data_change(event_type);
    let mut seen = HashSet::new();
    let problems: Vec<Option<String>> = items
        .iter()
        .map(|item| {
            let problem = match mode.validate {
                true => {
                    let problem = validate(item, data_change);
                    let duplicate = eid_of(item).is_some_and(|eid| !seen.insert(eid.to_string()));
                    problem.or_else(|| {
                        duplicate.then(|| "#/metadata/eid: duplicate eid in the batch".into())
                    })
                }
                false => None,
            };
            problem.or_else(|| {
                eid_of(item)
                    .filter(|eid| plan.reject.contains(*eid))
                    .map(|_| "#: rejected by the test (FakeNakadi reject_eids)".into())
            })
        })
        .collect();
    if problems.iter().any(Option::is_some) {
        let report: Vec<Value> = items
            .iter()
            .zip(&problems)
            .map(|(item, problem)| {
                let (status, detail) = match problem {
                    Some(detail) => ("failed", detail.as_str()),
                    None => ("aborted", ""),
                };
                json!({
                    "eid": eid_of(item).unwrap_or(""),
                    "publishing_status": status,
                    "step": "validating",
                    "detail": detail,
                })
            })
            .collect();
        return (Answer::json(422, Value::Array(report)), nothing);
    }

    // Publishing: 207 if any item fails, else 200.
    if items
        .iter()
        .any(|i| eid_of(i).is_some_and(|e| plan.fail.contains(e)))
    {
        let mut failed_before = false;
        let mut report = Vec::with_capacity(items.len());
        let mut submitted = Vec::new();
        for item in items {
            let eid = eid_of(&item).unwrap_or("").to_owned();
            let (status, step, detail) = if plan.fail.contains(&eid) {
                failed_before = true;
                (
                    "failed",
                    "publishing",
                    "failed to publish the event (injected by FakeNakadi fail_eids)",
                )
            } else if failed_before && plan.abort_after_first_failure {
                ("aborted", "none", "")
            } else {
                submitted.push(item);
                ("submitted", "publishing", "")
            };
            report.push(json!({
                "eid": eid,
                "publishing_status": status,
                "step": step,
                "detail": detail,
            }));
        }
        let answer = Answer::json(207, Value::Array(report));
        return (answer, Some(Accepted::Items(submitted)));
    }

    (ok(), Some(Accepted::Items(items)))
}

/// 200 with an empty body: everything accepted.
fn ok() -> Answer {
    Answer {
        status: 200,
        content_type: "text/plain",
        body: None,
        location: None,
    }
}

fn status_answer(code: u16) -> Answer {
    let (title, detail) = match code {
        403 => ("Forbidden", "Producer is blocked"),
        429 => ("Too Many Requests", "Rate limit exceeded"),
        500 => ("Internal Server Error", "injected by FakeNakadi"),
        503 => ("Service Unavailable", "injected by FakeNakadi"),
        _ => ("Error", "injected by FakeNakadi"),
    };
    if code == 403 {
        // Nakadi's blocked-producer answer, exactly.
        return Answer {
            status: 403,
            content_type: "application/problem+json",
            body: Some(json!({"title": title, "status": 403, "detail": detail})),
            location: None,
        };
    }
    Answer::problem(code, title, detail)
}

/// Nakadi-style schema validation of one item; `Some(detail)` if invalid.
fn validate(item: &Value, data_change: bool) -> Option<String> {
    let Some(object) = item.as_object() else {
        return Some("#: expected type: JSONObject".into());
    };
    let Some(metadata) = object.get("metadata") else {
        return Some("#: required key [metadata] not found".into());
    };
    let Some(metadata) = metadata.as_object() else {
        return Some("#/metadata: expected type: JSONObject".into());
    };
    match metadata.get("eid") {
        None => return Some("#/metadata: required key [eid] not found".into()),
        Some(Value::String(eid)) if is_uuid(eid) => {}
        Some(other) => return Some(format!("#/metadata/eid: {other} is not a valid uuid")),
    }
    match metadata.get("occurred_at") {
        None => return Some("#/metadata: required key [occurred_at] not found".into()),
        Some(Value::String(at)) if is_rfc3339(at) => {}
        Some(other) => {
            return Some(format!(
                "#/metadata/occurred_at: {other} is not a valid date-time"
            ))
        }
    }
    if data_change {
        match object.get("data_op") {
            None => return Some("#: required key [data_op] not found".into()),
            Some(Value::String(op)) if matches!(op.as_str(), "C" | "U" | "D") => {}
            Some(other) => return Some(format!("#/data_op: {other} is not a valid enum value")),
        }
        match object.get("data_type") {
            None => return Some("#: required key [data_type] not found".into()),
            Some(Value::String(_)) => {}
            Some(_) => return Some("#/data_type: expected type: String".into()),
        }
        match object.get("data") {
            None => return Some("#: required key [data] not found".into()),
            Some(Value::Object(_)) => {}
            Some(_) => return Some("#/data: expected type: JSONObject".into()),
        }
    }
    None
}

/// A hyphenated UUID, as Nakadi's `format: uuid`.
fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(range)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20 {
        return false;
    }
    let (Some(_year), Some(month), Some(day), Some(hour), Some(min), Some(sec)) = (
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
        digits(17..19),
    ) else {
        return false;
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return false;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest {
        "Z" | "z" => true,
        offset if offset.len() == 6 => {
            let o = offset.as_bytes();
            matches!(o[0], b'+' | b'-')
                && o[3] == b':'
                && offset[1..3].parse::<u32>().is_ok_and(|h| h <= 23)
                && offset[4..6].parse::<u32>().is_ok_and(|m| m <= 59)
                && offset[1..3]
                    .bytes()
                    .chain(offset[4..6].bytes())
                    .all(|c| c.is_ascii_digit())
        }
        _ => false,
    }
}
