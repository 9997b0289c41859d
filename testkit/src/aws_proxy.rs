//! `AwsProxy`: an HTTP proxy in front of moto that can make AWS operations
//! fail, and that enforces SQS's real size rules, which moto does not.
//!
//! Operations are named as the SDK sends them: `X-Amz-Target` for JSON
//! protocols (`AmazonSQS.SendMessageBatch`, `DynamoDB_20120810.UpdateItem`,
//! `DynamoDBStreams_20120810.GetRecords`) and `S3.<METHOD>` for S3's REST
//! calls (`S3.PUT`, `S3.GET`, `S3.DELETE`). A [`Rule`] matches operations
//! by prefix and injects a [`ProxyFault`] a number of times (or always).
//!
//! With [`AwsProxy::strict_sqs`], `SendMessageBatch` is checked as SQS
//! checks it: each message's body plus every attribute's name, type and
//! value, in UTF-8 bytes, against the queue's maximum, and the request's
//! total against the same maximum (as for queues whose maximum is below the
//! batch ceiling), answering `BatchRequestTooLong` or a per-entry failure.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};

/// What to do to a matched request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyFault {
    /// Answer this status with an AWS error of this code; moto never sees it.
    Error(u16, &'static str),
    /// Forward to moto (the operation takes effect), then answer 500: the
    /// caller cannot know that it worked.
    ForwardThenError,
    /// Wait this long before forwarding.
    Hang(Duration),
}

/// Which requests a fault applies to, and how often.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Operation prefix, e.g. `AmazonSQS.` or `DynamoDB_20120810.UpdateItem`.
    pub operation: String,
    /// The fault.
    pub fault: ProxyFault,
    /// How many more requests it applies to; `None` for all.
    pub times: Option<usize>,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    strict_sqs: Option<usize>,
    seen: Vec<String>,
    faults: usize,
}

/// The proxy on 127.0.0.1 (random port); stops on drop.
pub struct AwsProxy {
    url: String,
    state: Arc<Mutex<State>>,
    server: Arc<tiny_http::Server>,
    closing: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    _runtime: Arc<tokio::runtime::Runtime>,
}

impl AwsProxy {
    /// Starts a proxy forwarding to `upstream` (e.g. moto's endpoint).
    pub fn start(upstream: &str) -> AwsProxy {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("AwsProxy: bind"));
        let url = format!(
            "http://{}",
            server
                .server_addr()
                .to_ip()
                .expect("AwsProxy: an IP address")
        );
        let runtime = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("AwsProxy: a tokio runtime"),
        );
        let state = Arc::new(Mutex::new(State::default()));
        let closing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("AwsProxy: an HTTP client");
        let thread = {
            let state = state.clone();
            let closing_flag = closing.clone();
            let upstream = upstream.trim_end_matches('/').to_owned();
            let runtime = runtime.clone();
            crate::serve_each_request(
                "aws-proxy",
                server.clone(),
                move || closing_flag.load(std::sync::atomic::Ordering::SeqCst),
                move |request| handle(&state, &client, &runtime, &upstream, request),
            )
        };
        AwsProxy {
            url,
            state,
            server,
            closing,
            thread: Some(thread),
            _runtime: runtime,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a fault rule (rules are tried in the order added).
    pub fn fail(&self, operation: &str, fault: ProxyFault, times: Option<usize>) {
        self.state().rules.push(Rule {
            operation: operation.to_owned(),
            fault,
            times,
        });
    }

    /// Removes every fault rule.
    pub fn heal(&self) {
        self.state().rules.clear();
    }

    /// Enforces SQS's size rules on SendMessageBatch against a queue whose
    /// maximum message size is `max_bytes`.
    pub fn strict_sqs(&self, max_bytes: usize) {
        self.state().strict_sqs = Some(max_bytes);
    }

    /// The operations seen so far, in order.
    pub fn seen(&self) -> Vec<String> {
        self.state().seen.clone()
    }

    /// How many requests were answered with a fault.
    pub fn faults(&self) -> usize {
        self.state().faults
    }

    /// The environment pointing the AWS SDK at this proxy.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("AWS_ENDPOINT_URL".into(), self.url())]
    }
}

impl Drop for AwsProxy {
    fn drop(&mut self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn header(request: &tiny_http::Request, name: &str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_owned())
}

fn aws_error(
    status: u16,
    code: &str,
    message: &str,
) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let body = json!({"__type": code, "message": message}).to_string();
    let mut response = tiny_http::Response::from_data(body.into_bytes()).with_status_code(status);
    for (name, value) in [
        ("Content-Type", "application/x-amz-json-1.0".to_owned()),
        ("x-amzn-query-error", format!("{code};Sender")),
        ("x-amzn-ErrorType", code.to_owned()),
    ] {
        if let Ok(h) = tiny_http::Header::from_bytes(name, value) {
            response = response.with_header(h);
        }
    }
    response
}

/// SQS's verdict on a SendMessageBatch body: `None` if it passes.
fn check_sqs_batch(
    body: &[u8],
    max: usize,
) -> Option<tiny_http::Response<std::io::Cursor<Vec<u8>>>> {
    let request: Value = serde_json::from_slice(body).ok()?;
    let entries = request["Entries"].as_array()?;
    let mut total = 0;
    for entry in entries {
        let mut size = entry["MessageBody"].as_str().map_or(0, str::len);
        if let Some(attributes) = entry["MessageAttributes"].as_object() {
            for (name, value) in attributes {
                size += name.len();
                size += value["DataType"].as_str().map_or(0, str::len);
                size += value["StringValue"].as_str().map_or(0, str::len);
            }
        }
        if size > max {
            return Some(aws_error(
                400,
                "InvalidParameterValue",
                &format!("One or more parameters are invalid. Reason: Message must be shorter than {max} bytes."),
            ));
        }
        total += size;
    }
    (total > max).then(|| {
        aws_error(
            400,
            "AWS.SimpleQueueService.BatchRequestTooLong",
            &format!(
                "Batch requests cannot be longer than {max} bytes. You have sent {total} bytes."
            ),
        )
    })
}

fn handle(
    state: &Mutex<State>,
    client: &reqwest::Client,
    runtime: &tokio::runtime::Runtime,
    upstream: &str,
    mut request: tiny_http::Request,
) {
    let mut body = Vec::new();
    let _ = request.as_reader().read_to_end(&mut body);
    let operation = header(&request, "X-Amz-Target")
        .unwrap_or_else(|| format!("S3.{}", request.method().as_str().to_ascii_uppercase()));
    let fault = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        state.seen.push(operation.clone());
        let mut chosen = None;
        for rule in state.rules.iter_mut() {
            if operation.starts_with(&rule.operation) && rule.times != Some(0) {
                if let Some(n) = rule.times.as_mut() {
                    *n -= 1;
                }
                chosen = Some(rule.fault.clone());
                break;
            }
        }
        if chosen.is_some() {
            state.faults += 1;
        }
        if chosen.is_none() && operation == "AmazonSQS.SendMessageBatch" {
            if let Some(max) = state.strict_sqs {
                if let Some(refusal) = check_sqs_batch(&body, max) {
                    drop(state);
                    let _ = request.respond(refusal);
                    return;
                }
            }
        }
        chosen
    };
    match fault {
        Some(ProxyFault::Error(status, code)) => {
            let _ = request.respond(aws_error(status, code, "injected by the test's AwsProxy"));
            return;
        }
        Some(ProxyFault::Hang(delay)) => std::thread::sleep(delay),
        _ => {}
    }
    let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let url = format!("{upstream}{}", request.url());
    let mut forward = client.request(method, url).body(body);
    for h in request.headers() {
        let name = h.field.as_str().as_str();
        if !name.eq_ignore_ascii_case("host") && !name.eq_ignore_ascii_case("content-length") {
            forward = forward.header(name, h.value.as_str());
        }
    }
    let answer = runtime.block_on(async move {
        let response = forward.send().await?;
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter(|(n, _)| {
                !["content-length", "transfer-encoding", "connection"].contains(&n.as_str())
            })
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let bytes = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, headers, bytes))
    });
    match (fault, answer) {
        (Some(ProxyFault::ForwardThenError), _) => {
            let _ = request.respond(aws_error(
                500,
                "InternalFailure",
                "injected after forwarding",
            ));
        }
        (_, Ok((status, headers, bytes))) => {
            let mut response =
                tiny_http::Response::from_data(bytes.to_vec()).with_status_code(status);
            for (name, value) in headers {
                if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                    response = response.with_header(h);
                }
            }
            let _ = request.respond(response);
        }
        (_, Err(e)) => {
            let _ = request.respond(aws_error(
                502,
                "BadGateway",
                &format!("moto did not answer: {e}"),
            ));
        }
    }
}
