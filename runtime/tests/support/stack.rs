//! A whole local stack for the relay binary: moto (SQS), the fake Nakadi,
//! the Lambda Runtime API harness, and `relay` itself running as the
//! function, configured through a real config file.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use relay_record::Record;
use serde_json::{json, Value};

use relay_testkit::{AwsProxy, FakeNakadi, InvocationError, Moto, MotoS3, RuntimeApi};

/// The stream ARN of the `orders` table in generated records.
pub const ORDERS_ARN: &str =
    "arn:aws:dynamodb:eu-central-1:123456789012:table/orders/stream/2026-01-15T08:00:00.000";

/// Event type the data-change route publishes to.
pub const EVENT_TYPE: &str = "payment-order.changed";

/// What the relay is configured with.
pub struct StackOptions {
    /// The package whose component serves table `orders`.
    pub orders_module: &'static str,
    /// Its settings, as a TOML inline table.
    pub orders_settings: &'static str,
    /// Extra TOML appended to the config file.
    pub extra: String,
    /// Publishing attempts per event.
    pub max_attempts: u32,
    /// Request timeout of the publisher.
    pub request_timeout_ms: u64,
    /// Margin kept before the deadline.
    pub deadline_margin_ms: u64,
    /// A parked-items registry table on moto.
    pub registry: bool,
    /// A claim-check bucket on moto for oversized parked messages.
    pub claim_check: bool,
    /// A FIFO fallback queue.
    pub fifo: bool,
    /// The fallback queue's `MaximumMessageSize`.
    pub max_message_bytes: Option<usize>,
    /// Talk to moto through an [`AwsProxy`] (to inject AWS faults).
    pub proxy: bool,
    /// More environment for the relay processes (e.g. a sink's endpoint).
    pub env: Vec<(String, String)>,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            orders_module: "data-change",
            orders_settings: r#"{ data_type = "payment-order", event_type = "payment-order.changed" }"#,
            extra: String::new(),
            max_attempts: 3,
            request_timeout_ms: 2_000,
            deadline_margin_ms: 1_500,
            registry: false,
            claim_check: false,
            fifo: false,
            max_message_bytes: None,
            proxy: false,
            env: Vec::new(),
        }
    }
}

/// The running stack. Dropping it stops everything.
pub struct Stack {
    /// SQS.
    pub moto: Moto,
    /// The bus.
    pub nakadi: FakeNakadi,
    /// The Lambda Runtime API.
    pub api: RuntimeApi,
    /// The fallback queue URL.
    pub queue: String,
    /// Scratch folder with the config file and logs.
    pub dir: PathBuf,
    /// The config file.
    pub config: PathBuf,
    /// The registry table, when configured.
    pub registry: Option<String>,
    /// The claim-check bucket, when configured.
    pub bucket: Option<String>,
    /// The proxy in front of moto, when configured.
    pub proxy: Option<AwsProxy>,
    /// More environment for the relay processes.
    pub extra_env: Vec<(String, String)>,
    relay: Option<Child>,
}

/// The claim-check bucket of a stack.
pub const CLAIM_CHECK_BUCKET: &str = "relay-parked";

impl Stack {
    /// Starts moto, the bus and the runtime API, writes the config, and
    /// starts `relay` as the function (no subcommand: Lambda mode is the
    /// default when `AWS_LAMBDA_RUNTIME_API` is set).
    pub fn start(name: &str, options: StackOptions) -> Stack {
        let moto = Moto::start();
        let queue_name = match options.fifo {
            true => format!("relay-fallback-{name}.fifo"),
            false => format!("relay-fallback-{name}"),
        };
        let size = options.max_message_bytes.map(|n| n.to_string());
        let attributes: Vec<(aws_sdk_sqs::types::QueueAttributeName, &str)> = size
            .iter()
            .map(|n| {
                (
                    aws_sdk_sqs::types::QueueAttributeName::MaximumMessageSize,
                    n.as_str(),
                )
            })
            .collect();
        let queue = moto.create_queue_with(&queue_name, &attributes);
        let registry = options.registry.then(|| {
            let table = format!("relay-registry-{name}");
            moto.create_registry_table(&table);
            table
        });
        let bucket = options.claim_check.then(|| {
            MotoS3::new(&moto).create_bucket(CLAIM_CHECK_BUCKET);
            CLAIM_CHECK_BUCKET.to_owned()
        });
        let proxy = options.proxy.then(|| AwsProxy::start(&moto.endpoint()));
        let nakadi = FakeNakadi::start();
        nakadi.expect_token("secret-token");
        let api = RuntimeApi::start();
        let dir = std::env::temp_dir().join(format!("relay-stack-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        let token = dir.join("token");
        std::fs::write(&token, "secret-token\n").expect("token file");
        let module = relay_testkit::guest(options.orders_module);
        let config = dir.join("relay.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[bus]
url = "http://placeholder.invalid"
request_timeout_ms = {timeout}

[retry]
max_attempts = {attempts}
initial_backoff_ms = 20
max_backoff_ms = 200
deadline_margin_ms = {margin}

[tables.orders]
module = "{module}"
settings = {settings}
{extra}
"#,
                timeout = options.request_timeout_ms,
                attempts = options.max_attempts,
                margin = options.deadline_margin_ms,
                module = module.display(),
                settings = options.orders_settings,
                extra = options.extra,
            ),
        )
        .expect("config file");
        let mut stack = Stack {
            moto,
            nakadi,
            api,
            queue,
            dir,
            config,
            registry,
            bucket,
            proxy,
            extra_env: options.env,
            relay: None,
        };
        stack.start_relay();
        stack
    }

    fn start_relay(&mut self) {
        let log = std::fs::File::create(self.dir.join("relay.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_relay"))
            .envs(self.env())
            .envs(self.api.env())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start relay");
        self.relay = Some(child);
    }

    /// The environment of a relay process: AWS pointing at moto, config
    /// with bus URL, token and queue given as overrides.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = self.moto.env();
        env.extend([
            ("RELAY_CONFIG".into(), self.config.display().to_string()),
            ("RELAY_BUS_URL".into(), self.nakadi.url()),
            (
                "RELAY_BUS_TOKEN_FILE".into(),
                self.dir.join("token").display().to_string(),
            ),
            ("RELAY_FALLBACK_QUEUE_URL".into(), self.queue.clone()),
            ("RELAY_LOG".into(), "relay=info,warn".into()),
        ]);
        if let Some(table) = &self.registry {
            env.push(("RELAY_REGISTRY_TABLE".into(), table.clone()));
        }
        if let Some(bucket) = &self.bucket {
            env.push(("RELAY_CLAIM_CHECK_BUCKET".into(), bucket.clone()));
        }
        if let Some(proxy) = &self.proxy {
            env.extend(proxy.env());
        }
        env.extend(self.extra_env.iter().cloned());
        env
    }

    /// Invokes the function with a batch and returns its response.
    pub fn invoke(&mut self, event: &Value, timeout: Duration) -> Result<Value, InvocationError> {
        let child = self.relay.as_mut().expect("relay runs");
        let result = self
            .api
            .invoke_while(event, timeout, || matches!(child.try_wait(), Ok(None)));
        if result.is_err() {
            eprintln!("relay log:\n{}", self.log());
        }
        result
    }

    /// The relay's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("relay.log")).unwrap_or_default()
    }

    /// Every message in the fallback queue (made visible again afterwards).
    pub fn parked(&self) -> Vec<Value> {
        self.moto.peek_all_json(&self.queue)
    }

    /// Runs `relay redrive` with `args` against this stack.
    pub fn redrive(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_relay"))
            .arg("redrive")
            .args(args)
            .envs(self.env())
            .output()
            .expect("run relay redrive")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(mut child) = self.relay.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A generated batch of `count` records of table `orders`.
pub fn sample(count: usize, seed: u64) -> Value {
    relay::dev::sample::generate(&relay::dev::sample::SampleOptions {
        count,
        seed,
        ..Default::default()
    })
}

/// The records of a batch, decoded.
pub fn records(batch: &Value) -> Vec<Record> {
    relay_record::testing::records_from_str(&batch.to_string())
}

/// The eid the data-change transform gives a record's only event.
pub fn eid(record: &Record) -> String {
    relay_record::eid(record, 0)
}

/// The checkpoint in a response: `None` for full success.
pub fn checkpoint(response: &Value) -> Option<String> {
    // Read as Lambda's own types read it, too: a misspelled key or a null
    // identifier would mean success or failure of the whole batch.
    let typed: aws_lambda_events::event::streams::DynamoDbEventResponse =
        serde_json::from_value(response.clone()).expect("a DynamoDbEventResponse");
    for failure in &typed.batch_item_failures {
        assert!(
            failure
                .item_identifier
                .as_deref()
                .is_some_and(|id| !id.is_empty()),
            "every itemIdentifier is set: {response}"
        );
    }
    let failures = response["batchItemFailures"]
        .as_array()
        .expect("a batchItemFailures list");
    assert!(failures.len() <= 1, "one checkpoint at most: {response}");
    failures.first().map(|f| {
        let id = f["itemIdentifier"].as_str().expect("a string identifier");
        assert!(!id.is_empty(), "never an empty identifier");
        id.to_owned()
    })
}

/// A record of table `table` that inserts `{order_number, status}`.
pub fn insert(table: &str, seq: &str, order: &str, extra: Value) -> Value {
    let mut image = json!({"order_number": {"S": order}, "status": {"S": "created"}});
    if let (Some(image), Some(extra)) = (image.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            image.insert(k.clone(), v.clone());
        }
    }
    json!({
        "eventID": format!("ev-{seq}"),
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-central-1",
        "eventSourceARN": ORDERS_ARN.replace("table/orders", &format!("table/{table}")),
        "dynamodb": {
            "ApproximateCreationDateTime": 1768464000,
            "Keys": {"order_number": {"S": order}},
            "NewImage": image,
            "SequenceNumber": seq,
            "SizeBytes": 60,
            "StreamViewType": "NEW_AND_OLD_IMAGES"
        }
    })
}

/// A stream event of these records.
pub fn batch(records: Vec<Value>) -> Value {
    json!({ "Records": records })
}

/// A MODIFY of order `order` from `from` to `to`.
pub fn modify(seq: &str, order: &str, from: &str, to: &str) -> Value {
    json!({
        "eventID": format!("ev-{seq}"),
        "eventName": "MODIFY",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-central-1",
        "eventSourceARN": ORDERS_ARN,
        "dynamodb": {
            "ApproximateCreationDateTime": 1768464000,
            "Keys": {"order_number": {"S": order}},
            "OldImage": {"order_number": {"S": order}, "status": {"S": from}},
            "NewImage": {"order_number": {"S": order}, "status": {"S": to}},
            "SequenceNumber": seq,
            "SizeBytes": 60,
            "StreamViewType": "NEW_AND_OLD_IMAGES"
        }
    })
}

/// Owned pairs, to compare with what a sink got.
pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}
