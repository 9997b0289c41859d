//! Synchronous helpers that set up the relay's newer sinks on a real [`Moto`]
//! server and read back what was delivered:
//!
//! - [`MotoEventBridge`]: an event bus, a rule matching
//!   `{"source": [<source>]}` with an SQS queue target; each message of the
//!   queue is the EventBridge event JSON (`detail-type`, `source`, `detail`);
//! - [`MotoKinesis`]: a stream of N shards (waited ACTIVE), read back with
//!   `GetShardIterator(TRIM_HORIZON)` + `GetRecords`, shard by shard;
//! - [`MotoSns`]: a topic (standard or FIFO) with an SQS queue subscribed
//!   (`RawMessageDelivery=true`, a FIFO queue for a FIFO topic).
//!
//! Each helper has its own clients (region us-east-1, credentials test/test,
//! endpoint moto, as [`Moto::env`] gives a relay child) and a private
//! current-thread runtime; every call blocks, and panics on an AWS error.

use std::thread;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{Message, QueueAttributeName};
use serde_json::Value;

use crate::moto::Moto;

fn runtime(what: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{what}: build a tokio runtime: {e}"))
}

/// A config for one SDK pointed at `moto`.
macro_rules! moto_config {
    ($sdk:ident, $moto:expr) => {
        $sdk::Config::builder()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .region($sdk::config::Region::new("us-east-1"))
            .credentials_provider($sdk::config::Credentials::new(
                "test", "test", None, None, "moto",
            ))
            .endpoint_url($moto.endpoint())
            .build()
    };
}

/// SQS calls the helpers share.
struct Queues {
    client: aws_sdk_sqs::Client,
}

impl Queues {
    fn new(moto: &Moto) -> Queues {
        Queues {
            client: aws_sdk_sqs::Client::from_conf(moto_config!(aws_sdk_sqs, moto)),
        }
    }

    /// Creates a queue (FIFO if the name ends with `.fifo`, with
    /// content-based deduplication: moto hands SNS messages without a
    /// deduplication id to SQS without one); `(url, arn)`.
    fn create(&self, rt: &tokio::runtime::Runtime, name: &str) -> (String, String) {
        let mut request = self.client.create_queue().queue_name(name);
        if name.ends_with(".fifo") {
            request = request
                .attributes(QueueAttributeName::FifoQueue, "true")
                .attributes(QueueAttributeName::ContentBasedDeduplication, "true");
        }
        let url = rt
            .block_on(request.send())
            .unwrap_or_else(|e| panic!("create queue {name}: {e:?}"))
            .queue_url()
            .unwrap_or_default()
            .to_owned();
        let arn = rt
            .block_on(
                self.client
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(QueueAttributeName::QueueArn)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("get the ARN of {url}: {e:?}"))
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .unwrap_or_else(|| panic!("queue {url} has no QueueArn"));
        (url, arn)
    }

    /// Every visible message, hidden afterwards (not deleted).
    fn receive(&self, rt: &tokio::runtime::Runtime, url: &str) -> Vec<Message> {
        crate::moto::receive_visible(&self.client, rt, url)
    }
}

/// EventBridge on moto, routed into SQS queues.
pub struct MotoEventBridge {
    runtime: tokio::runtime::Runtime,
    client: aws_sdk_eventbridge::Client,
    queues: Queues,
}

impl std::fmt::Debug for MotoEventBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MotoEventBridge").finish_non_exhaustive()
    }
}

impl MotoEventBridge {
    /// Clients for `moto`.
    pub fn new(moto: &Moto) -> MotoEventBridge {
        MotoEventBridge {
            runtime: runtime("MotoEventBridge"),
            client: aws_sdk_eventbridge::Client::from_conf(moto_config!(aws_sdk_eventbridge, moto)),
            queues: Queues::new(moto),
        }
    }

    /// The EventBridge client, for calls the helpers do not cover.
    pub fn client(&self) -> &aws_sdk_eventbridge::Client {
        &self.client
    }

    /// Runs a future on the helper's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Creates an event bus (`default` exists already); returns its ARN.
    pub fn create_bus(&self, name: &str) -> String {
        self.block_on(self.client.create_event_bus().name(name).send())
            .unwrap_or_else(|e| panic!("MotoEventBridge: create bus {name}: {e:?}"))
            .event_bus_arn()
            .unwrap_or_default()
            .to_owned()
    }

    /// Routes the events of `source` on `bus` into a new queue `queue`
    /// (a rule `{"source": [source]}` with the queue as its target); returns
    /// the queue's URL.
    pub fn route_to_queue(&self, bus: &str, source: &str, queue: &str) -> String {
        let (url, arn) = self.queues.create(&self.runtime, queue);
        let rule = format!("{queue}-rule");
        let pattern = serde_json::json!({ "source": [source] }).to_string();
        self.block_on(
            self.client
                .put_rule()
                .name(&rule)
                .event_bus_name(bus)
                .event_pattern(pattern)
                .send(),
        )
        .unwrap_or_else(|e| panic!("MotoEventBridge: put rule {rule}: {e:?}"));
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id("queue")
            .arn(arn)
            .build()
            .expect("a complete target");
        let out = self
            .block_on(
                self.client
                    .put_targets()
                    .rule(&rule)
                    .event_bus_name(bus)
                    .targets(target)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("MotoEventBridge: put target of {rule}: {e:?}"));
        assert_eq!(out.failed_entry_count(), 0, "MotoEventBridge: put target");
        url
    }

    /// The events delivered to a queue of [`route_to_queue`](Self::route_to_queue)
    /// (each the EventBridge event: `id`, `detail-type`, `source`, `detail`,
    /// ...), received and hidden (each is read once).
    pub fn delivered(&self, queue_url: &str) -> Vec<Value> {
        self.queues
            .receive(&self.runtime, queue_url)
            .into_iter()
            .map(|m| {
                let body = m.body.unwrap_or_default();
                serde_json::from_str(&body).unwrap_or_else(|e| {
                    panic!("MotoEventBridge: a delivered message is not JSON ({e}): {body}")
                })
            })
            .collect()
    }
}

/// Kinesis Data Streams on moto.
pub struct MotoKinesis {
    runtime: tokio::runtime::Runtime,
    client: aws_sdk_kinesis::Client,
}

impl std::fmt::Debug for MotoKinesis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MotoKinesis").finish_non_exhaustive()
    }
}

impl MotoKinesis {
    /// A client for `moto`.
    pub fn new(moto: &Moto) -> MotoKinesis {
        MotoKinesis {
            runtime: runtime("MotoKinesis"),
            client: aws_sdk_kinesis::Client::from_conf(moto_config!(aws_sdk_kinesis, moto)),
        }
    }

    /// The Kinesis client, for calls the helpers do not cover.
    pub fn client(&self) -> &aws_sdk_kinesis::Client {
        &self.client
    }

    /// Runs a future on the helper's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Creates a provisioned stream of `shards` shards and waits (up to
    /// 10 s) until it is ACTIVE; returns its ARN.
    pub fn create_stream(&self, name: &str, shards: i32) -> String {
        self.block_on(
            self.client
                .create_stream()
                .stream_name(name)
                .shard_count(shards)
                .send(),
        )
        .unwrap_or_else(|e| panic!("MotoKinesis: create stream {name}: {e:?}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self
                .block_on(
                    self.client
                        .describe_stream_summary()
                        .stream_name(name)
                        .send(),
                )
                .unwrap_or_else(|e| panic!("MotoKinesis: describe stream {name}: {e:?}"));
            let summary = out
                .stream_description_summary()
                .unwrap_or_else(|| panic!("MotoKinesis: stream {name} has no summary"));
            if summary.stream_status() == &aws_sdk_kinesis::types::StreamStatus::Active {
                return summary.stream_arn().to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "MotoKinesis: stream {name} not ACTIVE within 10 s"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The shard ids of a stream, in order.
    pub fn shards(&self, stream: &str) -> Vec<String> {
        let out = self
            .block_on(self.client.list_shards().stream_name(stream).send())
            .unwrap_or_else(|e| panic!("MotoKinesis: list shards of {stream}: {e:?}"));
        out.shards()
            .iter()
            .map(|s| s.shard_id().to_owned())
            .collect()
    }

    /// Every record of one shard, oldest first, as `(partition key, data)`.
    pub fn shard_records(&self, stream: &str, shard_id: &str) -> Vec<(String, Vec<u8>)> {
        let mut iterator = self
            .block_on(
                self.client
                    .get_shard_iterator()
                    .stream_name(stream)
                    .shard_id(shard_id)
                    .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("MotoKinesis: shard iterator of {shard_id}: {e:?}"))
            .shard_iterator
            .clone();
        let mut all = Vec::new();
        while let Some(it) = iterator {
            let out = self
                .block_on(
                    self.client
                        .get_records()
                        .shard_iterator(it)
                        .limit(1000)
                        .send(),
                )
                .unwrap_or_else(|e| panic!("MotoKinesis: get records of {shard_id}: {e:?}"));
            let records = out.records();
            if records.is_empty() {
                break;
            }
            all.extend(records.iter().map(|r| {
                (
                    r.partition_key().unwrap_or_default().to_owned(),
                    r.data().as_ref().to_vec(),
                )
            }));
            iterator = out.next_shard_iterator().map(str::to_owned);
        }
        all
    }

    /// Every record of the stream as `(partition key, data)`: shard by shard
    /// (in shard order), each shard oldest first.
    pub fn records(&self, stream: &str) -> Vec<(String, Vec<u8>)> {
        self.shards(stream)
            .iter()
            .flat_map(|shard| self.shard_records(stream, shard))
            .collect()
    }
}

/// SNS on moto, with SQS queues subscribed.
pub struct MotoSns {
    runtime: tokio::runtime::Runtime,
    client: aws_sdk_sns::Client,
    queues: Queues,
}

impl std::fmt::Debug for MotoSns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MotoSns").finish_non_exhaustive()
    }
}

impl MotoSns {
    /// Clients for `moto`.
    pub fn new(moto: &Moto) -> MotoSns {
        MotoSns {
            runtime: runtime("MotoSns"),
            client: aws_sdk_sns::Client::from_conf(moto_config!(aws_sdk_sns, moto)),
            queues: Queues::new(moto),
        }
    }

    /// The SNS client, for calls the helpers do not cover.
    pub fn client(&self) -> &aws_sdk_sns::Client {
        &self.client
    }

    /// Runs a future on the helper's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Creates a topic (a FIFO topic, without content-based deduplication,
    /// if the name ends with `.fifo`); returns its ARN.
    pub fn create_topic(&self, name: &str) -> String {
        self.create_topic_with(name, &[])
    }

    /// Creates a topic with these attributes (e.g.
    /// `("ContentBasedDeduplication", "true")`); `FifoTopic=true` is added
    /// for a name ending with `.fifo`. Returns its ARN.
    pub fn create_topic_with(&self, name: &str, attributes: &[(&str, &str)]) -> String {
        let mut request = self.client.create_topic().name(name);
        if name.ends_with(".fifo") {
            request = request.attributes("FifoTopic", "true");
        }
        for (key, value) in attributes {
            request = request.attributes(*key, *value);
        }
        self.block_on(request.send())
            .unwrap_or_else(|e| panic!("MotoSns: create topic {name}: {e:?}"))
            .topic_arn()
            .unwrap_or_else(|| panic!("MotoSns: create topic {name}: no ARN"))
            .to_owned()
    }

    /// Creates the queue `queue` (name it `*.fifo` for a FIFO topic) and
    /// subscribes it to `topic_arn` with `RawMessageDelivery=true`, so each
    /// message's body is the published message and its attributes are the
    /// SQS message's attributes. Returns the queue's URL.
    pub fn subscribe_queue(&self, topic_arn: &str, queue: &str) -> String {
        let (url, arn) = self.queues.create(&self.runtime, queue);
        self.block_on(
            self.client
                .subscribe()
                .topic_arn(topic_arn)
                .protocol("sqs")
                .endpoint(arn)
                .attributes("RawMessageDelivery", "true")
                .return_subscription_arn(true)
                .send(),
        )
        .unwrap_or_else(|e| panic!("MotoSns: subscribe {queue} to {topic_arn}: {e:?}"));
        url
    }

    /// The messages delivered to a subscribed queue, received and hidden
    /// (each is read once), with their attributes and (FIFO) group ids.
    pub fn messages(&self, queue_url: &str) -> Vec<Message> {
        self.queues.receive(&self.runtime, queue_url)
    }

    /// The bodies of [`messages`](Self::messages).
    pub fn bodies(&self, queue_url: &str) -> Vec<String> {
        self.messages(queue_url)
            .into_iter()
            .map(|m| m.body.unwrap_or_default())
            .collect()
    }
}
