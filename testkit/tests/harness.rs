//! Tests of the test harnesses themselves: the fake Nakadi, the Lambda
//! Runtime API and the moto wrapper, driven with raw HTTP/1.1 over std
//! sockets (and the SQS SDK for moto).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use relay_testkit::{FakeNakadi, Fault, InvocationError, Moto, RuntimeApi};
use serde_json::{json, Value};

/// An HTTP answer read by [`http`].
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// One HTTP/1.1 request with `Connection: close`; the whole answer.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers in the answer"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&raw[..end])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 2 + size + 2..];
    }
    out
}

fn host_of(url: &str) -> &str {
    url.trim_start_matches("http://")
}

fn event(eid: &str) -> Value {
    json!({
        "metadata": {"eid": eid, "occurred_at": "2024-05-01T12:00:00.123Z"},
        "data_op": "U",
        "data_type": "order",
        "data": {"id": "o-1", "amount": 12.50},
    })
}

const EID_A: &str = "3f1a6e1c-8f3e-4c3a-9b1e-000000000001";
const EID_B: &str = "3f1a6e1c-8f3e-4c3a-9b1e-000000000002";
const EID_C: &str = "3f1a6e1c-8f3e-4c3a-9b1e-000000000003";

fn post(nakadi: &FakeNakadi, event_type: &str, body: &Value) -> Answer {
    http(
        host_of(&nakadi.url()),
        "POST",
        &format!("/event-types/{event_type}/events"),
        &[
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer secret"),
            ("X-Flow-Id", "flow-1"),
        ],
        body.to_string().as_bytes(),
    )
    .expect("request to the fake Nakadi")
}

fn eids(items: &[&str]) -> HashSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn nakadi_accepts_a_valid_batch_with_200_and_logs_it() {
    let nakadi = FakeNakadi::start();
    nakadi.expect_token("secret");
    let answer = post(
        &nakadi,
        "order.changed",
        &json!([event(EID_A), event(EID_B)]),
    );
    assert_eq!(answer.status, 200);
    assert!(answer.body.is_empty());
    assert_eq!(nakadi.accepted_eids(), vec![EID_A, EID_B]);
    assert_eq!(nakadi.accepted()[0].0, "order.changed");
    let log = nakadi.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].event_type, "order.changed");
    assert_eq!(log[0].status, 200);
    assert_eq!(log[0].flow_id.as_deref(), Some("flow-1"));
    assert_eq!(log[0].auth.as_deref(), Some("Bearer secret"));
    assert_eq!(log[0].n_events, 2);
}

#[test]
fn nakadi_accepts_gzip_bodies() {
    use flate2::write::GzEncoder;
    let nakadi = FakeNakadi::start();
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json!([event(EID_A)]).to_string().as_bytes())
        .unwrap();
    let body = gz.finish().unwrap();
    let answer = http(
        host_of(&nakadi.url()),
        "POST",
        "/event-types/order.changed/events",
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        &body,
    )
    .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(nakadi.accepted_eids(), vec![EID_A]);
}

#[test]
fn nakadi_answers_401_for_a_wrong_token() {
    let nakadi = FakeNakadi::start();
    nakadi.expect_token("other");
    let answer = post(&nakadi, "order.changed", &json!([event(EID_A)]));
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["status"], 401);
    assert!(nakadi.accepted().is_empty());
}

#[test]
fn nakadi_rejects_invalid_batches_with_422_and_accepts_nothing() {
    let nakadi = FakeNakadi::start();
    let mut bad = event(EID_B);
    bad["data_op"] = json!("X");
    let answer = post(
        &nakadi,
        "order.changed",
        &json!([event(EID_A), bad, event(EID_A)]),
    );
    assert_eq!(answer.status, 422);
    let items = answer.json();
    let statuses: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["publishing_status"].as_str().unwrap())
        .collect();
    // The second is invalid, the third a duplicate eid; the first is aborted.
    assert_eq!(statuses, vec!["aborted", "failed", "failed"]);
    assert_eq!(items[1]["eid"], EID_B);
    assert_eq!(items[1]["step"], "validating");
    assert!(!items[1]["detail"].as_str().unwrap().is_empty());
    assert!(nakadi.accepted().is_empty());

    // Business event types need no data_op; metadata is still checked.
    let answer = post(
        &nakadi,
        "order.status-changed",
        &json!([{"metadata": {"eid": EID_C, "occurred_at": "yesterday"}}]),
    );
    assert_eq!(answer.status, 422);
    let answer = post(
        &nakadi,
        "order.status-changed",
        &json!([{"metadata": {"eid": EID_C, "occurred_at": "2024-05-01T12:00:00+02:00"}}]),
    );
    assert_eq!(answer.status, 200);

    // reject_eids makes a valid event invalid.
    nakadi.reject_eids([EID_A]);
    let answer = post(&nakadi, "order.changed", &json!([event(EID_A)]));
    assert_eq!(answer.status, 422);
    assert_eq!(nakadi.accepted_eids(), vec![EID_C]);

    // A body that is not an array is a 400.
    let answer = post(&nakadi, "order.changed", &event(EID_A));
    assert_eq!(answer.status, 400);
}

#[test]
fn nakadi_partial_failures_are_207_in_request_order() {
    let nakadi = FakeNakadi::start();
    nakadi.fail_eids([EID_B]);
    let body = json!([event(EID_A), event(EID_B), event(EID_C)]);
    let answer = post(&nakadi, "order.changed", &body);
    assert_eq!(answer.status, 207);
    let items = answer.json();
    let got: Vec<(&str, &str)> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["eid"].as_str().unwrap(),
                i["publishing_status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (EID_A, "submitted"),
            (EID_B, "failed"),
            (EID_C, "submitted")
        ]
    );
    assert_eq!(nakadi.accepted_eids(), vec![EID_A, EID_C]);

    nakadi.clear_logs();
    nakadi.abort_after_first_failure(true);
    let answer = post(&nakadi, "order.changed", &body);
    assert_eq!(answer.status, 207);
    let statuses: Vec<String> = answer
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["publishing_status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, vec!["submitted", "failed", "aborted"]);
    assert_eq!(nakadi.accepted_eids(), vec![EID_A]);
}

#[test]
fn nakadi_status_faults_and_scripts() {
    let nakadi = FakeNakadi::start();
    nakadi.respond_status(403, Some(1));
    let answer = post(&nakadi, "order.changed", &json!([event(EID_A)]));
    assert_eq!(answer.status, 403);
    assert_eq!(
        answer.json(),
        json!({"title": "Forbidden", "status": 403, "detail": "Producer is blocked"})
    );
    assert!(answer
        .header("Content-Type")
        .is_some_and(|c| c.contains("json")));
    assert_eq!(
        post(&nakadi, "order.changed", &json!([event(EID_A)])).status,
        200
    );

    nakadi.script(vec![
        Fault::Status(503),
        Fault::FailEids(eids(&[EID_B])),
        Fault::Healthy,
    ]);
    assert_eq!(
        post(&nakadi, "order.changed", &json!([event(EID_B)])).status,
        503
    );
    assert_eq!(
        post(&nakadi, "order.changed", &json!([event(EID_B)])).status,
        207
    );
    assert_eq!(
        post(&nakadi, "order.changed", &json!([event(EID_B)])).status,
        200
    );
    let statuses: Vec<u16> = nakadi.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![403, 200, 503, 207, 200]);
    assert_eq!(nakadi.accepted_eids(), vec![EID_A, EID_B]);

    // A dropped connection: the client gets no status line at all.
    nakadi.script(vec![Fault::AcceptThenDisconnect]);
    let result = http(
        host_of(&nakadi.url()),
        "POST",
        "/event-types/order.changed/events",
        &[],
        json!([event(EID_C)]).to_string().as_bytes(),
    );
    assert!(result.is_err(), "expected a cut connection, got {result:?}");
    assert_eq!(nakadi.accepted_eids(), vec![EID_A, EID_B, EID_C]);
}

#[test]
fn nakadi_hang_delays_the_answer() {
    let nakadi = FakeNakadi::start();
    nakadi.hang(Duration::from_millis(700));
    let started = Instant::now();
    let answer = post(&nakadi, "order.changed", &json!([event(EID_A)]));
    assert_eq!(answer.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(700));
    nakadi.healthy();
    let started = Instant::now();
    assert_eq!(
        post(&nakadi, "order.changed", &json!([event(EID_B)])).status,
        200
    );
    assert!(started.elapsed() < Duration::from_millis(700));
}

#[test]
fn nakadi_refuses_and_accepts_connections_on_the_same_port() {
    let nakadi = FakeNakadi::start();
    // A kept-alive connection opened before the outage is cut too.
    let mut open = TcpStream::connect(nakadi.addr()).unwrap();
    nakadi.refuse_connections();
    let refused = TcpStream::connect(nakadi.addr());
    assert_eq!(
        refused.map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
    open.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = open.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = [0u8; 16];
    assert!(matches!(open.read(&mut buf), Ok(0) | Err(_)));

    nakadi.accept_connections();
    let answer = post(&nakadi, "order.changed", &json!([event(EID_A)]));
    assert_eq!(answer.status, 200);
    assert_eq!(nakadi.accepted_eids(), vec![EID_A]);
}

/// A minimal function: polls `next`, answers each event with
/// `{"echo": event, "request_id": id}`, or posts an error when the event has
/// `"fail": true`; stops after `n` invocations.
fn responder(api: &str, n: usize) -> thread::JoinHandle<()> {
    let api = api.to_string();
    thread::spawn(move || {
        for _ in 0..n {
            let next = http(&api, "GET", "/2018-06-01/runtime/invocation/next", &[], b"")
                .expect("GET next");
            assert_eq!(next.status, 200);
            let id = next
                .header("Lambda-Runtime-Aws-Request-Id")
                .expect("request id header")
                .to_string();
            let deadline: u128 = next
                .header("Lambda-Runtime-Deadline-Ms")
                .expect("deadline header")
                .parse()
                .expect("deadline is epoch ms");
            assert!(deadline > 1_600_000_000_000);
            assert!(next.header("Lambda-Runtime-Invoked-Function-Arn").is_some());
            assert!(next.header("Lambda-Runtime-Trace-Id").is_some());
            let event = next.json();
            let (kind, body) = if event["fail"] == json!(true) {
                (
                    "error",
                    json!({"errorType": "Boom", "errorMessage": "asked to fail"}),
                )
            } else {
                ("response", json!({"echo": event, "request_id": id}))
            };
            let posted = http(
                &api,
                "POST",
                &format!("/2018-06-01/runtime/invocation/{id}/{kind}"),
                &[("Lambda-Runtime-Function-Error-Type", "Boom")],
                body.to_string().as_bytes(),
            )
            .expect("POST the result");
            assert_eq!(posted.status, 202);
        }
    })
}

#[test]
fn runtime_api_round_trips_sequential_invocations() {
    let api = RuntimeApi::start();
    let function = responder(&api.address(), 3);
    assert!(api.wait_idle(Duration::from_secs(10)));
    for i in 0..2 {
        let event = json!({"Records": [], "n": i});
        let result = api
            .invoke(&event, Duration::from_secs(10))
            .expect("a response");
        assert_eq!(result["echo"], event);
    }
    let err = api
        .invoke(&json!({"fail": true}), Duration::from_secs(10))
        .unwrap_err();
    match err {
        InvocationError::Function {
            error_type,
            error_message,
            ..
        } => {
            assert_eq!(error_type.as_deref(), Some("Boom"));
            assert_eq!(error_message.as_deref(), Some("asked to fail"));
        }
        other => panic!("expected a function error, got {other:?}"),
    }
    function.join().expect("the responder finished cleanly");
    assert_eq!(api.next_polls(), 3);
    assert_eq!(api.init_error(), None);
}

#[test]
fn runtime_api_reports_init_errors_and_dead_functions() {
    let api = RuntimeApi::start();
    let err = api
        .invoke_while(&json!({}), Duration::from_secs(5), || false)
        .unwrap_err();
    assert_eq!(err, InvocationError::Exited);

    let posted = http(
        &api.address(),
        "POST",
        "/2018-06-01/runtime/init/error",
        &[("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")],
        br#"{"errorType":"Config","errorMessage":"no NAKADI_URL"}"#,
    )
    .unwrap();
    assert_eq!(posted.status, 202);
    let err = api.invoke(&json!({}), Duration::from_secs(5)).unwrap_err();
    assert!(matches!(err, InvocationError::Init(ref body) if body.contains("no NAKADI_URL")));
    assert!(api.init_error().is_some());
}

#[test]
fn moto_queues_send_receive_peek_and_outage() {
    let mut moto = Moto::start();
    let url = moto.create_queue("relay-fallback");
    moto.send(&url, r#"{"n":1}"#);
    moto.send(&url, r#"{"n":2}"#);
    let peeked = moto.peek_all_json(&url);
    assert_eq!(peeked.len(), 2);
    let mut received = moto.receive_all_json(&url);
    received.sort_by_key(|v| v["n"].as_u64());
    assert_eq!(received, vec![json!({"n": 1}), json!({"n": 2})]);
    assert!(
        moto.receive_all(&url).is_empty(),
        "drained messages stay hidden"
    );
    moto.purge(&url);

    let (main, dlq) = moto.create_queue_with_dlq("relay-main", 3);
    assert!(main.ends_with("relay-main"));
    assert!(dlq.ends_with("relay-main-dlq"));
    let policy = moto
        .attribute(&main, aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
        .expect("a redrive policy");
    assert!(policy.contains("relay-main-dlq"), "{policy}");

    let env = moto.env();
    assert!(env
        .iter()
        .any(|(k, v)| k == "AWS_ENDPOINT_URL" && *v == moto.endpoint()));

    let addr: SocketAddr = host_of(&moto.endpoint()).parse().unwrap();
    moto.stop();
    assert!(TcpStream::connect(addr).is_err());
    moto.restart();
    let url = moto.create_queue("relay-fallback");
    assert!(
        moto.receive_all(&url).is_empty(),
        "a restarted moto starts empty"
    );
}

#[test]
fn nakadi_as_a_sink_counts_and_shows_events_and_keeps_none() {
    use flate2::write::GzEncoder;
    let shown = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let nakadi = {
        let shown = shown.clone();
        FakeNakadi::builder()
            .without_validation()
            .without_logs()
            .on_accepted(move |event_type, events| {
                let mut shown = shown.lock().unwrap();
                shown.extend(events.iter().map(|e| (event_type.to_owned(), e.clone())));
            })
            .start()
            .expect("a sink on 127.0.0.1")
    };
    // No schema: an event Nakadi would refuse is accepted.
    let loose = json!({"metadata": {"eid": "not-a-uuid"}});
    assert_eq!(
        post(&nakadi, "order.changed", &json!([event(EID_A), loose])).status,
        200
    );
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json!([event(EID_B)]).to_string().as_bytes())
        .unwrap();
    let answer = http(
        host_of(&nakadi.url()),
        "POST",
        "/event-types/order.changed/events",
        &[("Content-Encoding", "gzip")],
        &gz.finish().unwrap(),
    )
    .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(nakadi.accepted_count(), 3);
    assert!(nakadi.wait_accepted(3, Duration::from_secs(1)));
    let shown: Vec<(String, Value)> = shown.lock().unwrap().clone();
    assert_eq!(
        shown,
        vec![
            ("order.changed".to_owned(), event(EID_A)),
            ("order.changed".to_owned(), loose),
            ("order.changed".to_owned(), event(EID_B)),
        ]
    );
    assert!(nakadi.accepted().is_empty() && nakadi.requests().is_empty());

    // Faults still apply; refusals count nothing.
    nakadi.respond_status(503, None);
    assert_eq!(
        post(&nakadi, "order.changed", &json!([event(EID_C)])).status,
        503
    );
    nakadi.healthy();
    assert_eq!(post(&nakadi, "order.changed", &event(EID_C)).status, 400);
    assert_eq!(nakadi.accepted_count(), 3);
}

#[test]
fn nakadi_counting_only_still_honours_eid_faults() {
    let nakadi = FakeNakadi::builder()
        .without_validation()
        .without_logs()
        .start()
        .unwrap();
    let body = json!([event(EID_A), event(EID_B), event(EID_C)]);
    assert_eq!(post(&nakadi, "order.changed", &body).status, 200);
    nakadi.fail_eids([EID_B]);
    assert_eq!(post(&nakadi, "order.changed", &body).status, 207);
    nakadi.fail_eids(Vec::<String>::new());
    nakadi.reject_eids([EID_C]);
    assert_eq!(post(&nakadi, "order.changed", &body).status, 422);
    assert_eq!(nakadi.accepted_count(), 5);
    let counter = nakadi.accepted_counter();
    drop(nakadi);
    assert_eq!(counter.load(std::sync::atomic::Ordering::Relaxed), 5);
}

#[test]
fn nakadi_listens_where_it_is_told() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let nakadi = FakeNakadi::builder().listen(&listen).start().unwrap();
    assert_eq!(nakadi.url(), format!("http://{listen}"));
    let taken = FakeNakadi::builder().listen(&listen).start();
    assert!(taken.is_err(), "two fakes on one port");
    assert_eq!(
        post(&nakadi, "order.changed", &json!([event(EID_A)])).status,
        200
    );
    drop(nakadi);
    let again = FakeNakadi::builder().listen(&listen).start();
    assert!(again.is_ok(), "the port is free once the fake is gone");
}

/// Raw bytes to the fake on one connection; everything it answers until it
/// closes the connection (or 2 s pass).
fn exchange(nakadi: &FakeNakadi, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(nakadi.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn nakadi_speaks_http_1_1_keep_alive_chunked_and_expect() {
    let nakadi = FakeNakadi::start();
    let body = json!([event(EID_A)]).to_string();
    let (first, second) = body.split_at(body.len() / 2);
    // Two requests on one connection, the second chunked and closing it.
    let answer = exchange(
        &nakadi,
        format!(
            "POST /event-types/order.changed/events HTTP/1.1\r\nHost: x\r\n\
             Content-Length: {}\r\n\r\n{body}\
             POST /event-types/order.changed/events HTTP/1.1\r\nHost: x\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
             {:x};ext=1\r\n{first}\r\n{:x}\r\n{second}\r\n0\r\n\r\n",
            body.len(),
            first.len(),
            second.len(),
        )
        .as_bytes(),
    );
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 2, "{answer}");
    assert!(answer.contains("Connection: close"), "{answer}");
    // 100-continue before the body.
    let answer = exchange(
        &nakadi,
        format!(
            "POST /event-types/order.changed/events HTTP/1.1\r\nHost: x\r\n\
             Expect: 100-continue\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert!(
        answer.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"),
        "{answer}"
    );
    assert_eq!(nakadi.requests().len(), 3);
    assert_eq!(nakadi.accepted_eids(), vec![EID_A; 3]);
    // Not HTTP: a 400, the connection closed, nothing logged.
    let answer = exchange(&nakadi, b"HELLO\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request"), "{answer}");
    assert_eq!(nakadi.requests().len(), 3);
}
