//! `Moto`: a moto server (`moto_server`, in-memory AWS) as a child process on
//! a free port of `127.0.0.1`, with synchronous SQS helpers for tests.
//!
//! The executable is `<workspace>/.venv/bin/moto_server` (created by
//! `scripts/test` with `pip install 'moto[server]'`) or `moto_server` on the
//! PATH. Moto keeps all state in memory: [`Moto::stop`] + [`Moto::restart`]
//! simulate an outage, but the restarted server has no queues or messages.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};
use serde_json::Value;

/// How long [`Moto::receive_all`] hides what it received: longer than any
/// test looks at a queue.
pub const DRAIN_VISIBILITY_SECS: i32 = 3600;

/// How long to wait for the server to answer after starting it.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running moto server. Killed on drop.
pub struct Moto {
    program: PathBuf,
    port: u16,
    child: Option<Child>,
    log: PathBuf,
    runtime: tokio::runtime::Runtime,
    client: aws_sdk_sqs::Client,
}

impl std::fmt::Debug for Moto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Moto")
            .field("endpoint", &self.endpoint())
            .field("running", &self.child.is_some())
            .finish()
    }
}

/// Where `moto_server` is: the workspace venv, else the PATH.
fn find_moto_server() -> PathBuf {
    let venv = crate::workspace().join(".venv/bin/moto_server");
    if venv.is_file() {
        return venv;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("moto_server");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "moto_server not found in {} or on the PATH: run scripts/test, which installs it \
         (python3 -m venv .venv && .venv/bin/pip install 'moto[server]')",
        venv.display()
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("Moto: find a free port on 127.0.0.1")
        .port()
}

/// True if moto (not another test's server that took the port) answers on
/// `addr`: its `/moto-api/data.json` is there.
fn answers_http(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET /moto-api/data.json HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    head[..read].starts_with(b"HTTP/1.") && head[..read].ends_with(b" 200")
}

impl Moto {
    /// Starts moto on a free port and waits until it answers HTTP.
    ///
    /// Panics if `moto_server` is not installed (see the module docs) or does
    /// not answer within 20 s.
    pub fn start() -> Moto {
        // A port found free can be taken by another test before moto binds
        // it: then moto exits, and it is tried again on another port.
        for _ in 0..4 {
            let mut moto = Moto::on(free_port());
            if moto.try_spawn().is_ok() {
                return moto;
            }
        }
        let mut moto = Moto::on(free_port());
        moto.spawn_and_wait();
        moto
    }

    fn on(port: u16) -> Moto {
        let program = find_moto_server();
        let log =
            std::env::temp_dir().join(format!("relay-moto-{}-{port}.log", std::process::id()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("Moto: build a tokio runtime for the SQS client");
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .build();
        let client = aws_sdk_sqs::Client::from_conf(config);
        Moto {
            program,
            port,
            child: None,
            log,
            runtime,
            client,
        }
    }

    fn spawn_and_wait(&mut self) {
        if let Err(why) = self.try_spawn() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!(
                "moto_server on port {} did not come up ({why}); its log:\n{log}",
                self.port
            );
        }
    }

    fn try_spawn(&mut self) -> Result<(), String> {
        let log = std::fs::File::create(&self.log).expect("Moto: create its log file");
        let log_err = log.try_clone().expect("Moto: clone the log file handle");
        let child = Command::new(&self.program)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("Moto: cannot run {}: {e}", self.program.display()));
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if answers_http(addr) {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() >= deadline {
                self.kill();
                return Err(match exited {
                    Some(status) => format!("exited with {status}"),
                    None => format!("no answer within {START_TIMEOUT:?}"),
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment for a relay child process talking to this moto:
    /// `AWS_ENDPOINT_URL`, `AWS_REGION=us-east-1`, static credentials
    /// `test`/`test` and `AWS_EC2_METADATA_DISABLED=true`.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The SQS client (region us-east-1, credentials test/test, endpoint moto)
    /// for calls the helpers do not cover; run them with [`Moto::block_on`].
    pub fn client(&self) -> &aws_sdk_sqs::Client {
        &self.client
    }

    /// Runs a future on this harness' private current-thread runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Creates a standard queue (a name ending in `.fifo` makes a FIFO queue)
    /// and returns its URL.
    pub fn create_queue(&self, name: &str) -> String {
        let mut request = self.client.create_queue().queue_name(name);
        if name.ends_with(".fifo") {
            request = request.attributes(QueueAttributeName::FifoQueue, "true");
        }
        let output = self
            .block_on(request.send())
            .unwrap_or_else(|e| panic!("Moto: create queue {name}: {e:?}"));
        output
            .queue_url()
            .unwrap_or_else(|| panic!("Moto: create queue {name}: no URL in the answer"))
            .to_string()
    }

    /// Creates a queue with the given attributes (a name ending in `.fifo`
    /// makes a FIFO queue) and returns its URL.
    pub fn create_queue_with(
        &self,
        name: &str,
        attributes: &[(QueueAttributeName, &str)],
    ) -> String {
        let mut request = self.client.create_queue().queue_name(name);
        if name.ends_with(".fifo") {
            request = request.attributes(QueueAttributeName::FifoQueue, "true");
        }
        for (attribute, value) in attributes {
            request = request.attributes(attribute.clone(), *value);
        }
        self.block_on(request.send())
            .unwrap_or_else(|e| panic!("Moto: create queue {name}: {e:?}"))
            .queue_url()
            .unwrap_or_else(|| panic!("Moto: create queue {name}: no URL in the answer"))
            .to_string()
    }

    /// Creates `{name}-dlq` and `name` with a redrive policy to it after
    /// `max_receive_count` receives; returns `(url, dlq_url)`.
    pub fn create_queue_with_dlq(&self, name: &str, max_receive_count: u32) -> (String, String) {
        let dlq_name = match name.strip_suffix(".fifo") {
            Some(base) => format!("{base}-dlq.fifo"),
            None => format!("{name}-dlq"),
        };
        let dlq_url = self.create_queue(&dlq_name);
        let dlq_arn = self
            .attribute(&dlq_url, QueueAttributeName::QueueArn)
            .unwrap_or_else(|| panic!("Moto: queue {dlq_name} has no QueueArn"));
        let policy = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": max_receive_count.to_string(),
        })
        .to_string();
        let mut request = self
            .client
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::RedrivePolicy, policy);
        if name.ends_with(".fifo") {
            request = request.attributes(QueueAttributeName::FifoQueue, "true");
        }
        let url = self
            .block_on(request.send())
            .unwrap_or_else(|e| panic!("Moto: create queue {name}: {e:?}"))
            .queue_url()
            .unwrap_or_else(|| panic!("Moto: create queue {name}: no URL in the answer"))
            .to_string();
        (url, dlq_url)
    }

    /// One attribute of a queue (`None` if moto does not report it).
    pub fn attribute(&self, url: &str, name: QueueAttributeName) -> Option<String> {
        let output = self
            .block_on(
                self.client
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(name.clone())
                    .send(),
            )
            .unwrap_or_else(|e| panic!("Moto: get attribute {name} of {url}: {e:?}"));
        output.attributes().and_then(|a| a.get(&name)).cloned()
    }

    /// Sends one message (a standard queue; for FIFO use [`Moto::client`]);
    /// returns its message id.
    pub fn send(&self, url: &str, body: &str) -> String {
        self.block_on(
            self.client
                .send_message()
                .queue_url(url)
                .message_body(body)
                .send(),
        )
        .unwrap_or_else(|e| panic!("Moto: send to {url}: {e:?}"))
        .message_id()
        .unwrap_or_default()
        .to_string()
    }

    /// Receives every visible message (10 at a time until a receive comes
    /// back empty), hiding each for [`DRAIN_VISIBILITY_SECS`] so none is
    /// received twice. The messages stay in the queue (not deleted). Each
    /// receive counts towards a redrive policy's `maxReceiveCount`.
    pub fn receive_messages(&self, url: &str) -> Vec<Message> {
        receive_visible(&self.client, &self.runtime, url)
    }

    /// The bodies of every visible message, as [`Moto::receive_messages`]
    /// receives them (so they are hidden afterwards).
    pub fn receive_all(&self, url: &str) -> Vec<String> {
        bodies(self.receive_messages(url))
    }

    /// [`Moto::receive_all`], each body parsed as JSON (panics on a body that
    /// is not JSON).
    pub fn receive_all_json(&self, url: &str) -> Vec<Value> {
        parse_all(self.receive_all(url))
    }

    /// The bodies of every visible message, made visible again afterwards
    /// (visibility timeout set to 0), so a later receive (e.g. the re-drive
    /// job) still gets them. Each peek counts as a receive for a redrive
    /// policy.
    pub fn peek_all(&self, url: &str) -> Vec<String> {
        let messages = self.receive_messages(url);
        for (chunk_index, chunk) in messages.chunks(10).enumerate() {
            let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(format!("m{chunk_index}-{i}"))
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .visibility_timeout(0)
                        .build()
                        .expect("Moto: a complete ChangeMessageVisibility entry")
                })
                .collect();
            let output = self
                .block_on(
                    self.client
                        .change_message_visibility_batch()
                        .queue_url(url)
                        .set_entries(Some(entries))
                        .send(),
                )
                .unwrap_or_else(|e| panic!("Moto: make messages of {url} visible: {e:?}"));
            assert!(
                output.failed().is_empty(),
                "Moto: making messages of {url} visible again failed: {:?}",
                output.failed()
            );
        }
        bodies(messages)
    }

    /// [`Moto::peek_all`], each body parsed as JSON.
    pub fn peek_all_json(&self, url: &str) -> Vec<Value> {
        parse_all(self.peek_all(url))
    }

    /// `ApproximateNumberOfMessages` of a queue (visible messages).
    pub fn approximate_count(&self, url: &str) -> usize {
        self.attribute(url, QueueAttributeName::ApproximateNumberOfMessages)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Deletes every message of the queue.
    pub fn purge(&self, url: &str) {
        self.block_on(self.client.purge_queue().queue_url(url).send())
            .unwrap_or_else(|e| panic!("Moto: purge {url}: {e:?}"));
    }

    /// Kills the server (SQS is down: connections are refused). Idempotent.
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Starts the server again on the same port and waits until it answers.
    /// Moto keeps state in memory: the new server has no queues or messages,
    /// so create the queues again. Does nothing if it is running.
    pub fn restart(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if matches!(child.try_wait(), Ok(None)) {
                return;
            }
            self.child = None;
        }
        self.spawn_and_wait();
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn bodies(messages: Vec<Message>) -> Vec<String> {
    messages
        .into_iter()
        .map(|m| m.body.unwrap_or_default())
        .collect()
}

fn parse_all(bodies: Vec<String>) -> Vec<Value> {
    bodies
        .into_iter()
        .map(|b| {
            serde_json::from_str(&b)
                .unwrap_or_else(|e| panic!("Moto: a message body is not JSON ({e}): {b}"))
        })
        .collect()
}

/// Receives every visible message of `url` with `client` on `runtime` (10 at
/// a time until a receive comes back empty), hiding each for
/// [`DRAIN_VISIBILITY_SECS`]; nothing is deleted.
pub(crate) fn receive_visible(
    client: &aws_sdk_sqs::Client,
    runtime: &tokio::runtime::Runtime,
    url: &str,
) -> Vec<Message> {
    let mut all = Vec::new();
    loop {
        let output = runtime
            .block_on(
                client
                    .receive_message()
                    .queue_url(url)
                    .max_number_of_messages(10)
                    .visibility_timeout(DRAIN_VISIBILITY_SECS)
                    .wait_time_seconds(0)
                    .message_system_attribute_names(MessageSystemAttributeName::All)
                    .message_attribute_names("All")
                    .send(),
            )
            .unwrap_or_else(|e| panic!("Moto: receive from {url}: {e:?}"));
        let batch = output.messages.unwrap_or_default();
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}
