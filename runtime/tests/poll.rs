//! The local loop (issue 5) on real emulated services: `relay poll` reads a
//! moto DynamoDB table's stream through the DynamoDB Streams API and runs the
//! Lambda's pipeline on it; `scripts/dev` starts the whole loop and Ctrl-C
//! stops all of it; `relay test` replays what `--capture` recorded.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use relay_testkit::{AwsProxy, FakeNakadi, Moto, ProxyFault};
use serde_json::{json, Value};

/// How long a test waits for something the loop should do (far above the
/// sub-second it normally takes: this machine is shared).
const WAIT: Duration = Duration::from_secs(30);
const EVENT_TYPE: &str = "order.changed";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relay-poll-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(300),
    )
    .is_ok()
}

/// Lines a child writes to one of its pipes, collected by a thread.
#[derive(Clone, Default)]
struct Lines(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Lines {
    fn collect(pipe: impl Read + Send + 'static) -> Lines {
        let lines = Lines::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let (lock, changed) = &*sink.0;
                lock.lock().unwrap().push(line);
                changed.notify_all();
            }
        });
        lines
    }

    /// Waits for a line containing every one of `parts`.
    fn wait_for(&self, parts: &[&str], timeout: Duration) -> Option<String> {
        let (lock, changed) = &*self.0;
        let matches = |line: &String| parts.iter().all(|p| line.contains(p));
        if !relay_testkit::wait_until(lock, changed, timeout, |lines| lines.iter().any(matches)) {
            return None;
        }
        lock.lock().unwrap().iter().find(|l| matches(l)).cloned()
    }

    fn text(&self) -> String {
        self.0 .0.lock().unwrap().join("\n")
    }
}

/// A `relay poll` child with its stderr collected.
struct Poller {
    child: Child,
    stderr: Lines,
}

impl Poller {
    fn start(moto: &Moto, config: &Path, args: &[&str]) -> Poller {
        Poller::start_with(moto, config, args, Vec::new())
    }

    /// [`Poller::start`] with extra environment (overriding moto's).
    fn start_with(moto: &Moto, config: &Path, args: &[&str], env: Vec<(String, String)>) -> Poller {
        let mut child = Command::new(env!("CARGO_BIN_EXE_relay"))
            .arg("poll")
            .arg("--config")
            .arg(config)
            .args(args)
            .envs(moto.env())
            .envs(env)
            .env("RELAY_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start relay poll");
        let stderr = Lines::collect(child.stderr.take().expect("stderr"));
        Poller { child, stderr }
    }

    fn wait_ready(&self) {
        assert!(
            self.stderr
                .wait_for(&["relay poll: reading the streams"], WAIT)
                .is_some(),
            "relay poll never got ready; its log:\n{}",
            self.stderr.text()
        );
    }

    /// Ctrl-C, then the exit status.
    fn interrupt(mut self) -> (std::process::ExitStatus, String) {
        signal(self.child.id() as i32, "INT");
        let status = wait_exit(&mut self.child, WAIT).unwrap_or_else(|| {
            let _ = self.child.kill();
            panic!(
                "relay poll did not stop on Ctrl-C; its log:\n{}",
                self.stderr.text()
            )
        });
        // The reader thread may still be draining the pipe.
        std::thread::sleep(Duration::from_millis(100));
        (status, self.stderr.text())
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a signal with `kill(1)`; a negative pid names a process group.
fn signal(pid: i32, name: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{name}"))
        .arg("--")
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// moto with an `orders` table (stream NEW_AND_OLD_IMAGES), a fallback
/// queue, the fake bus, and a config for them.
struct Loop {
    moto: Moto,
    nakadi: FakeNakadi,
    queue: String,
    dir: PathBuf,
    config: PathBuf,
    module: PathBuf,
}

impl Loop {
    fn start(name: &str, queue_exists: bool) -> Loop {
        let moto = Moto::start();
        moto.create_table("orders", Some("NEW_AND_OLD_IMAGES"))
            .expect("a stream ARN");
        let queue = if queue_exists {
            moto.create_queue("relay-fallback")
        } else {
            // SQS refuses to park anything here: the fallback is down.
            format!("{}/123456789012/no-such-queue", moto.endpoint())
        };
        let nakadi = FakeNakadi::start();
        nakadi.accept_any_token();
        let dir = scratch(name);
        let module = relay_testkit::guest("data-change");
        let config = dir.join("relay.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[bus]
url = "{bus}"
request_timeout_ms = 2000

[retry]
max_attempts = 2
initial_backoff_ms = 20
max_backoff_ms = 100
deadline_margin_ms = 1000

[fallback]
queue_url = "{queue}"

[tables.orders]
module = "{module}"
settings = {{ data_type = "order", event_type = "{EVENT_TYPE}" }}
"#,
                bus = nakadi.url(),
                module = module.display(),
            ),
        )
        .expect("config file");
        Loop {
            moto,
            nakadi,
            queue,
            dir,
            config,
            module,
        }
    }

    fn order(&self, order: &str, status: &str) {
        self.moto.put_item(
            "orders",
            json!({"order_number": {"S": order}, "status": {"S": status}, "amount": {"N": "12.50"}}),
        );
    }

    /// (data_op, order_number, status) of each published event, in order.
    fn published(&self) -> Vec<(String, String, String)> {
        self.nakadi
            .accepted_of(EVENT_TYPE)
            .iter()
            .map(|e| {
                (
                    e["data_op"].as_str().unwrap_or("?").to_owned(),
                    e["data"]["order_number"].as_str().unwrap_or("?").to_owned(),
                    e["data"]["status"].as_str().unwrap_or("?").to_owned(),
                )
            })
            .collect()
    }
}

fn expect(op: &str, order: &str, status: &str) -> (String, String, String) {
    (op.to_owned(), order.to_owned(), status.to_owned())
}

fn relay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relay"))
        .args(args)
        .output()
        .expect("run relay")
}

#[test]
fn poll_publishes_each_change_in_order_and_capture_replays_in_relay_test() {
    let setup = Loop::start("order", true);
    let captured = setup.dir.join("captured.json");
    let poller = Poller::start(
        &setup.moto,
        &setup.config,
        &["--capture", captured.to_str().unwrap()],
    );
    poller.wait_ready();

    setup.order("o-1", "NEW");
    setup.moto.set_attribute("orders", "o-1", "status", "PAID");
    setup.order("o-2", "NEW");
    setup.moto.delete_item("orders", "o-1");
    assert!(
        setup.nakadi.wait_accepted(4, WAIT),
        "4 events expected, the bus has {:?}; relay log:\n{}",
        setup.published(),
        poller.stderr.text()
    );
    // Order holds per item (changes of different items in one batch may
    // interleave: the pipeline publishes in waves of one event per item).
    let published = setup.published();
    let of = |order: &str| -> Vec<_> {
        published
            .iter()
            .filter(|(_, o, _)| o == order)
            .cloned()
            .collect()
    };
    assert_eq!(
        of("o-1"),
        [
            expect("C", "o-1", "NEW"),
            expect("U", "o-1", "PAID"),
            expect("D", "o-1", "PAID"),
        ],
        "{published:?}"
    );
    assert_eq!(of("o-2"), [expect("C", "o-2", "NEW")], "{published:?}");
    let amount = &setup.nakadi.accepted_of(EVENT_TYPE)[0]["data"]["amount"];
    assert_eq!(amount.to_string(), "12.50", "numbers keep their digits");

    let (status, log) = poller.interrupt();
    assert!(status.success(), "relay poll exit {status}; log:\n{log}");
    assert!(log.contains("4 records, 4 events published"), "{log}");

    // The captured records replay through `relay test` into the very events
    // the bus received, eids included.
    let output = relay(&[
        "test",
        "--transform",
        setup.module.to_str().unwrap(),
        "--settings",
        &format!(r#"{{"data_type": "order", "event_type": "{EVENT_TYPE}"}}"#),
        "--event",
        captured.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    // `relay test` prints in record order, the bus saw per-item waves.
    let by_eid = |mut events: Vec<Value>| {
        events.sort_by_key(|e| e["metadata"]["eid"].as_str().unwrap_or_default().to_owned());
        events
    };
    let replayed: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["body"].clone())
        .collect();
    assert_eq!(replayed.len(), 4);
    assert_eq!(
        by_eid(replayed),
        by_eid(setup.nakadi.accepted_of(EVENT_TYPE))
    );
}

#[test]
fn poll_from_latest_loses_nothing_when_the_first_reads_fail() {
    let setup = Loop::start("latest-faults", true);
    let proxy = AwsProxy::start(&setup.moto.endpoint());
    // The first GetRecords calls fail as a whole (one SDK attempt each).
    proxy.fail(
        "DynamoDBStreams_20120810.GetRecords",
        ProxyFault::Error(500, "InternalServerError"),
        Some(3),
    );
    let mut env = proxy.env();
    env.push(("AWS_MAX_ATTEMPTS".into(), "1".into()));
    let poller = Poller::start_with(&setup.moto, &setup.config, &[], env);
    poller.wait_ready();
    // Written while reading fails: after polling began, so they are "latest".
    setup.order("o-1", "NEW");
    setup.order("o-2", "NEW");
    let deadline = Instant::now() + WAIT;
    while proxy.faults() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    setup.order("o-3", "NEW");
    assert!(
        setup.nakadi.wait_accepted(3, WAIT),
        "changes made while GetRecords failed were skipped: the bus has {:?}; relay log:\n{}",
        setup.published(),
        poller.stderr.text()
    );
    let mut orders: Vec<String> = setup.published().into_iter().map(|(_, o, _)| o).collect();
    orders.sort();
    assert_eq!(orders, ["o-1", "o-2", "o-3"]);
}

#[test]
fn a_second_ctrl_c_ends_poll_at_once_while_it_waits_on_a_stream_that_hangs() {
    use std::os::unix::process::ExitStatusExt;
    let setup = Loop::start("second-signal", true);
    let proxy = AwsProxy::start(&setup.moto.endpoint());
    let mut env = proxy.env();
    // One attempt: the stop after the first Ctrl-C waits out one read (5 s).
    env.push(("AWS_MAX_ATTEMPTS".into(), "1".into()));
    let mut poller = Poller::start_with(&setup.moto, &setup.config, &[], env);
    poller.wait_ready();
    proxy.fail(
        "DynamoDBStreams_20120810.GetRecords",
        ProxyFault::Hang(Duration::from_secs(8)),
        None,
    );
    let deadline = Instant::now() + WAIT;
    while proxy.faults() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(proxy.faults() > 0, "relay poll never read the stream again");

    let pid = poller.child.id() as i32;
    signal(pid, "INT");
    assert!(
        poller
            .stderr
            .wait_for(&["stopping after the batch in hand"], WAIT)
            .is_some(),
        "the first Ctrl-C was not taken as a stop; log:\n{}",
        poller.stderr.text()
    );
    // Still waiting on the read that hangs: the stop is graceful.
    assert!(
        poller.child.try_wait().expect("poll's status").is_none(),
        "relay poll ended on the first Ctrl-C while a read was in flight"
    );
    signal(pid, "INT");
    let status = wait_exit(&mut poller.child, Duration::from_secs(2)).unwrap_or_else(|| {
        panic!(
            "a second Ctrl-C did not end relay poll within 2 s; log:\n{}",
            poller.stderr.text()
        )
    });
    assert_eq!(
        status.signal(),
        Some(2),
        "ended by SIGINT, not by finishing its stop: {status:?}"
    );
}

#[test]
fn poll_reads_again_what_could_be_neither_published_nor_parked() {
    // The bus is down and SQS refuses the fallback queue: the pipeline hands
    // the records back, and polling reads them again until the bus is back.
    let setup = Loop::start("retry", false);
    setup.nakadi.respond_status(503, None);
    let poller = Poller::start(&setup.moto, &setup.config, &[]);
    poller.wait_ready();

    setup.order("r-1", "NEW");
    setup.moto.set_attribute("orders", "r-1", "status", "PAID");
    assert!(
        poller
            .stderr
            .wait_for(&["records were handed back"], WAIT)
            .is_some(),
        "the batch was not handed back; log:\n{}",
        poller.stderr.text()
    );
    assert!(setup.published().is_empty());
    setup.nakadi.healthy();
    assert!(
        setup.nakadi.wait_accepted(2, WAIT),
        "after the bus came back: {:?}; log:\n{}",
        setup.published(),
        poller.stderr.text()
    );
    assert_eq!(
        setup.published(),
        [expect("C", "r-1", "NEW"), expect("U", "r-1", "PAID")]
    );
    let (status, log) = poller.interrupt();
    assert!(status.success(), "{log}");
    assert!(!log.contains(", 0 batches read again"), "{log}");
}

#[test]
fn poll_parks_in_sqs_when_the_bus_is_down_and_moves_on() {
    let setup = Loop::start("park", true);
    setup.nakadi.respond_status(500, None);
    let poller = Poller::start(&setup.moto, &setup.config, &[]);
    poller.wait_ready();
    setup.order("p-1", "NEW");
    setup.order("p-2", "NEW");
    let deadline = Instant::now() + WAIT;
    let mut parked = Vec::new();
    while parked.len() < 2 && Instant::now() < deadline {
        parked.extend(setup.moto.receive_all_json(&setup.queue));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        parked.len(),
        2,
        "two parked events expected: {parked:?}; log:\n{}",
        poller.stderr.text()
    );
    let (status, log) = poller.interrupt();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("2 events parked, 0 batches read again"),
        "{log}"
    );
}

#[test]
fn poll_refuses_a_table_without_a_stream_or_without_a_route() {
    let moto = Moto::start();
    moto.create_table("orders", None);
    let dir = scratch("nostream");
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[bus]
url = "http://127.0.0.1:9"
[fallback]
queue_url = "{}/123456789012/q"
[tables.orders]
module = "{}"
settings = {{ data_type = "order" }}
"#,
            moto.endpoint(),
            relay_testkit::guest("data-change").display()
        ),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_relay"))
        .args(["poll", "--config", config.to_str().unwrap()])
        .envs(moto.env())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("table orders has no stream") && stderr.contains("NEW_AND_OLD_IMAGES"),
        "{stderr}"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_relay"))
        .args([
            "poll",
            "--config",
            config.to_str().unwrap(),
            "--table",
            "users",
        ])
        .envs(moto.env())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("table users has no route") && stderr.contains("[tables.users]"),
        "{stderr}"
    );
}

#[test]
fn relay_test_reads_get_records_output_given_the_table() {
    // What `aws dynamodbstreams get-records` prints: no eventSourceARN.
    let records = json!({
        "Records": [{
            "eventID": "1", "eventName": "INSERT", "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {
                "ApproximateCreationDateTime": "2026-11-29T11:15:19.963000+00:00",
                "Keys": {"order_number": {"S": "g-1"}},
                "NewImage": {"order_number": {"S": "g-1"}, "status": {"S": "NEW"}},
                "SequenceNumber": "1100000000017454423009",
                "SizeBytes": 40, "StreamViewType": "NEW_AND_OLD_IMAGES"
            }
        }],
        "NextShardIterator": "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/x|1|y"
    });
    let dir = scratch("get-records");
    let input = dir.join("get-records.json");
    std::fs::write(&input, records.to_string()).unwrap();
    let module = relay_testkit::guest("data-change");
    let base = [
        "test",
        "--transform",
        module.to_str().unwrap(),
        "--settings",
        r#"{"data_type": "order"}"#,
        "--event",
        input.to_str().unwrap(),
    ];

    let without = relay(&base);
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert_eq!(without.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("eventSourceARN") && stderr.contains("--table"),
        "{stderr}"
    );

    let with = relay(&[&base[..], &["--table", "orders"]].concat());
    assert!(with.status.success(), "{with:?}");
    let line: Value = serde_json::from_slice(&with.stdout).unwrap();
    assert_eq!(line["body"]["data"]["order_number"], "g-1");
    assert_eq!(line["body"]["data_op"], "C");
    assert_eq!(
        line["body"]["metadata"]["occurred_at"],
        "2026-11-29T11:15:19.963Z"
    );
}

#[test]
fn dev_script_shows_changes_on_screen_and_ctrl_c_stops_everything() {
    let workspace = relay_testkit::workspace();
    let (moto_port, bus_port) = (free_port(), free_port());
    let dir = scratch("dev");
    let mut script = Command::new("bash")
        .arg(workspace.join("scripts/dev"))
        .env("DEV_SKIP_SETUP", "1")
        .env("RELAY_BIN", env!("CARGO_BIN_EXE_relay"))
        .env("DEV_MODULE", relay_testkit::guest("data-change"))
        .env("DEV_MOTO_PORT", moto_port.to_string())
        .env("DEV_BUS_PORT", bus_port.to_string())
        .env("DEV_DIR", &dir)
        .env_remove("RELAY_LOG")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start scripts/dev");
    let group = script.id() as i32;
    let stdout = Lines::collect(script.stdout.take().unwrap());
    let stderr = Lines::collect(script.stderr.take().unwrap());
    let stop = |script: &mut Child| {
        signal(-group, "INT");
        wait_exit(script, WAIT)
    };
    if stderr
        .wait_for(&["relay poll: reading the streams of orders"], WAIT * 2)
        .is_none()
    {
        stop(&mut script);
        panic!("scripts/dev never got ready:\n{}", stderr.text());
    }

    // Any DynamoDB client: here scripts/orders (boto3) and raw API calls.
    let orders = |args: &[&str]| {
        let status = Command::new("bash")
            .arg(workspace.join("scripts/orders"))
            .args(args)
            .env("DEV_MOTO_PORT", moto_port.to_string())
            .status()
            .expect("run scripts/orders");
        assert!(status.success(), "scripts/orders {args:?}");
    };
    orders(&["put", "d-1", "status=NEW", "amount=12.50"]);
    orders(&["update", "d-1", "status=PAID"]);
    orders(&["delete", "d-1"]);
    for (op, status) in [("C", "NEW"), ("U", "PAID"), ("D", "PAID")] {
        let status_field = format!(r#""status":"{status}""#);
        let found = stdout.wait_for(
            &[
                &format!("{EVENT_TYPE} {op} "),
                r#""order_number":"d-1""#,
                &status_field,
            ],
            WAIT,
        );
        if found.is_none() {
            stop(&mut script);
            panic!(
                "no {op} event on screen; stdout:\n{}\nstderr:\n{}",
                stdout.text(),
                stderr.text()
            );
        }
    }

    if stop(&mut script).is_none() {
        let _ = script.kill();
        panic!(
            "scripts/dev did not stop on Ctrl-C within {WAIT:?}; stderr:\n{}",
            stderr.text()
        );
    }
    assert!(
        !signal(-group, "0"),
        "processes of scripts/dev outlived it:\n{}",
        stderr.text()
    );
    assert!(!port_open(moto_port), "moto still answers");
    assert!(!port_open(bus_port), "the bus still answers");
    assert!(
        stderr
            .wait_for(&["stopped moto, the bus and the relay"], WAIT)
            .is_some(),
        "{}",
        stderr.text()
    );
}
