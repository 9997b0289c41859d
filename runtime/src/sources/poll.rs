//! `relay poll`: run the relay on tables' DynamoDB streams by reading them
//! through the DynamoDB Streams API, feeding each batch to the same pipeline
//! the Lambda uses and honouring its partial batch response the way the
//! Lambda event source mapping does.
//!
//! Made for the local loop (moto's DynamoDB and Streams) and for running the
//! relay outside Lambda. Shards are read one batch at a time; a shard's
//! children wait until the parent is read to its end, so per-item order
//! holds across shard splits.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use base64::Engine as _;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use tokio::sync::Notify;

use crate::pipeline::Relay;

/// Where to start reading the shards that are open when polling starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StartAt {
    /// Only changes made after polling starts.
    Latest,
    /// Everything the stream still holds (24 hours on AWS).
    TrimHorizon,
}

/// How `relay poll` reads the streams.
#[derive(Debug, Clone)]
pub struct PollOptions {
    /// Tables whose streams are read; each must have a route in the config.
    pub tables: Vec<String>,
    /// Where to start in shards open at start-up.
    pub start_at: StartAt,
    /// Pause between rounds that found no records.
    pub idle_interval: Duration,
    /// Most records per GetRecords call (and per pipeline batch), up to 1000.
    pub batch_size: i32,
    /// Time budget of one batch, as a Lambda timeout.
    pub batch_timeout: Duration,
    /// Longest pause before retrying a shard whose batch failed.
    pub max_retry_backoff: Duration,
    /// Also write every record read, as a Lambda DynamoDB Streams event
    /// (`{"Records": [...]}`), to this file: input for `relay test`.
    pub capture: Option<PathBuf>,
}

impl Default for PollOptions {
    fn default() -> Self {
        PollOptions {
            tables: Vec::new(),
            start_at: StartAt::Latest,
            idle_interval: Duration::from_millis(250),
            batch_size: 100,
            batch_timeout: Duration::from_secs(60),
            max_retry_backoff: Duration::from_secs(30),
            capture: None,
        }
    }
}

/// What a polling session did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PollSummary {
    /// Batches handed to the pipeline.
    pub batches: usize,
    /// Records read from the streams (a retried record counts again).
    pub records: usize,
    /// Events the bus acknowledged.
    pub events_published: usize,
    /// Events parked in the fallback queue.
    pub events_parked: usize,
    /// Batches that reported records back and were read again.
    pub retried_batches: usize,
}

/// Asks a running [`run`] to stop after the batch in hand.
#[derive(Debug, Clone, Default)]
pub struct StopHandle {
    stopped: Arc<AtomicBool>,
    wake: Arc<Notify>,
}

impl StopHandle {
    /// Stops polling once the current batch is settled.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Sleeps for `pause`, or less when stopped.
    async fn pause(&self, pause: Duration) {
        if self.is_stopped() {
            return;
        }
        let _ = tokio::time::timeout(pause, self.wake.notified()).await;
    }
}

/// Where a shard's next read starts when it has no iterator.
#[derive(Debug, Clone)]
enum Position {
    Start(ShardIteratorType),
    At(String),
    After(String),
    /// From the shard's start, skipping records made before this time (ms
    /// since the epoch): where a `latest` start resumes when its first
    /// iterator is lost before any record was read, so nothing written
    /// since polling began is skipped.
    Since(u64),
}

#[derive(Debug)]
struct Shard {
    table: String,
    stream_arn: String,
    id: String,
    parent: Option<String>,
    iterator: Option<String>,
    position: Position,
    finished: bool,
    failures: u32,
    not_before: Instant,
    /// When polling of the shard began (ms since the epoch).
    discovered_ms: u64,
}

impl Shard {
    fn label(&self) -> String {
        format!("{}/{}", self.table, self.id)
    }
}

/// Reads the streams of `options.tables` batch by batch into `relay` until
/// `stop` is called. `on_ready` runs once every shard has been read once, so
/// that changes made from then on are seen even when starting at the latest
/// record. Fails only when a table has no readable stream at start.
pub async fn run(
    relay: &mut Relay,
    client: &aws_sdk_dynamodbstreams::Client,
    options: &PollOptions,
    stop: &StopHandle,
    on_ready: impl FnOnce(),
) -> anyhow::Result<PollSummary> {
    let mut on_ready = Some(on_ready);
    let mut poller = Poller {
        client,
        options,
        shards: BTreeMap::new(),
        summary: PollSummary::default(),
        captured: Vec::new(),
    };
    poller.discover(true).await?;
    let mut discovered = Instant::now();
    while !stop.is_stopped() {
        if discovered.elapsed() >= DISCOVERY_INTERVAL {
            if let Err(e) = poller.discover(false).await {
                tracing::warn!("cannot list the streams' shards: {e:#}");
            }
            discovered = Instant::now();
        }
        let mut busy = false;
        for key in poller.ready_shards() {
            if stop.is_stopped() {
                break;
            }
            busy |= poller.read(relay, &key).await?;
        }
        if let Some(ready) = on_ready.take() {
            ready();
        }
        if !busy {
            stop.pause(options.idle_interval).await;
        }
    }
    Ok(poller.summary)
}

/// How often the shard lists are read again, to find shards from splits.
const DISCOVERY_INTERVAL: Duration = Duration::from_secs(10);

struct Poller<'a> {
    client: &'a aws_sdk_dynamodbstreams::Client,
    options: &'a PollOptions,
    /// By (stream ARN, shard id).
    shards: BTreeMap<(String, String), Shard>,
    summary: PollSummary,
    captured: Vec<Value>,
}

impl Poller<'_> {
    /// Finds each table's newest stream and its shards. At start-up, a table
    /// without a stream is an error; later, new shards are read from their start.
    async fn discover(&mut self, first: bool) -> anyhow::Result<()> {
        for table in &self.options.tables {
            let streams = self
                .client
                .list_streams()
                .table_name(table)
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot list the streams of table {table}: {}",
                        DisplayErrorContext(e)
                    )
                })?;
            let Some(stream_arn) = streams
                .streams()
                .iter()
                .filter_map(|s| s.stream_arn())
                .max()
            else {
                anyhow::bail!(
                    "table {table} has no stream: enable one with StreamViewType \
                     NEW_AND_OLD_IMAGES (aws dynamodb update-table --table-name {table} \
                     --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES)"
                );
            };
            let mut start_shard: Option<String> = None;
            loop {
                let mut request = self.client.describe_stream().stream_arn(stream_arn);
                if let Some(id) = &start_shard {
                    request = request.exclusive_start_shard_id(id);
                }
                let description = request
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "cannot describe the stream {stream_arn}: {}",
                            DisplayErrorContext(e)
                        )
                    })?
                    .stream_description
                    .ok_or_else(|| anyhow::anyhow!("the stream {stream_arn} has no description"))?;
                if first && start_shard.is_none() {
                    tracing::info!(
                        table,
                        stream = stream_arn,
                        view_type = description.stream_view_type().map(|v| v.as_str()),
                        start_at = ?self.options.start_at,
                        "polling the table's stream"
                    );
                }
                for shard in description.shards() {
                    let Some(id) = shard.shard_id() else { continue };
                    let key = (stream_arn.to_owned(), id.to_owned());
                    if self.shards.contains_key(&key) {
                        continue;
                    }
                    let closed = shard
                        .sequence_number_range()
                        .and_then(|r| r.ending_sequence_number())
                        .is_some();
                    let (position, finished) = match (first, self.options.start_at) {
                        // Shards that appear later hold only new changes.
                        (false, _) | (true, StartAt::TrimHorizon) => {
                            (Position::Start(ShardIteratorType::TrimHorizon), false)
                        }
                        (true, StartAt::Latest) => {
                            (Position::Start(ShardIteratorType::Latest), closed)
                        }
                    };
                    self.shards.insert(
                        key,
                        Shard {
                            table: table.clone(),
                            stream_arn: stream_arn.to_owned(),
                            id: id.to_owned(),
                            parent: shard.parent_shard_id().map(str::to_owned),
                            iterator: None,
                            position,
                            finished,
                            failures: 0,
                            not_before: Instant::now(),
                            discovered_ms: crate::unix_ms(),
                        },
                    );
                }
                match description.last_evaluated_shard_id() {
                    Some(id) => start_shard = Some(id.to_owned()),
                    None => break,
                }
            }
        }
        Ok(())
    }

    /// Shards to read now: not finished, not backing off, parent done.
    fn ready_shards(&self) -> Vec<(String, String)> {
        let now = Instant::now();
        self.shards
            .iter()
            .filter(|(_, s)| !s.finished && s.not_before <= now)
            .filter(|(_, s)| {
                s.parent.as_ref().is_none_or(|parent| {
                    self.shards
                        .get(&(s.stream_arn.clone(), parent.clone()))
                        .is_none_or(|p| p.finished)
                })
            })
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Reads one batch of a shard and runs it through the pipeline. True if
    /// the shard had records.
    async fn read(&mut self, relay: &mut Relay, key: &(String, String)) -> anyhow::Result<bool> {
        let shard = self.shards.get_mut(key).expect("ready shards are known");
        let iterator = match shard.iterator.take() {
            Some(iterator) => iterator,
            None => match iterator_for(self.client, shard).await {
                Ok(iterator) => iterator,
                Err(e) => {
                    tracing::warn!(shard = shard.label(), "cannot start reading the shard: {e}");
                    if matches!(shard.position, Position::Start(ShardIteratorType::Latest)) {
                        shard.position = Position::Since(shard.discovered_ms);
                    }
                    back_off(shard, self.options.max_retry_backoff);
                    return Ok(false);
                }
            },
        };
        let output = match self
            .client
            .get_records()
            .shard_iterator(&iterator)
            .limit(self.options.batch_size)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) => {
                let expired = e
                    .as_service_error()
                    .is_some_and(|s| s.is_expired_iterator_exception());
                tracing::warn!(
                    shard = shard.label(),
                    "cannot read the shard: {}",
                    DisplayErrorContext(e)
                );
                if expired {
                    // The next read starts over from the position; a
                    // `latest` start that read nothing yet resumes from the
                    // moment polling began, not from a newer "latest".
                    if matches!(shard.position, Position::Start(ShardIteratorType::Latest)) {
                        shard.position = Position::Since(shard.discovered_ms);
                    }
                    back_off(shard, self.options.max_retry_backoff);
                } else {
                    // The iterator stays valid (15 minutes): read on from it.
                    shard.iterator = Some(iterator);
                    pause(shard, self.options.max_retry_backoff);
                }
                return Ok(false);
            }
        };
        let next = output.next_shard_iterator().map(str::to_owned);
        let mut records = output.records();
        if let Position::Since(since) = shard.position {
            // Records made before polling began (with a second's slack,
            // creation times are approximate) are not this poll's.
            let older = records
                .iter()
                .take_while(|r| {
                    r.dynamodb()
                        .and_then(|d| d.approximate_creation_date_time())
                        .is_some_and(|at| at.to_millis().unwrap_or(0) < since as i64 - 1_000)
                })
                .count();
            if let Some(last) = records[..older]
                .last()
                .and_then(|r| r.dynamodb()?.sequence_number())
            {
                shard.position = Position::After(last.to_owned());
            }
            records = &records[older..];
            if records.is_empty() && older > 0 {
                // Only older records: move on past them.
                match next {
                    Some(next) => shard.iterator = Some(next),
                    None => shard.finished = true,
                }
                return Ok(true);
            }
        }
        if records.is_empty() {
            match next {
                Some(next) => shard.iterator = Some(next),
                None => {
                    tracing::info!(shard = shard.label(), "the shard is closed and read");
                    shard.finished = true;
                }
            }
            return Ok(false);
        }
        let lambda_records: Vec<Value> = records
            .iter()
            .map(|r| lambda_record(r, &shard.stream_arn))
            .collect();
        let sequence_numbers: Vec<String> = records
            .iter()
            .filter_map(|r| r.dynamodb()?.sequence_number().map(str::to_owned))
            .collect();
        let raw = RawValue::from_string(serde_json::to_string(&StreamEvent {
            records: &lambda_records,
        })?)?;
        let request_id = uuid::Uuid::new_v4().to_string();
        let deadline = Instant::now() + self.options.batch_timeout;
        let label = shard.label();
        self.summary.batches += 1;
        self.summary.records += records.len();
        let result = relay.handle(&raw, deadline, &request_id).await;
        let shard = self.shards.get_mut(key).expect("ready shards are known");
        let retry_from = match result {
            Ok(outcome) => {
                let stats = &outcome.stats;
                self.summary.events_published += stats.events_published;
                self.summary.events_parked += stats.events_parked;
                tracing::info_span!("batch", shard = label).in_scope(|| stats.log_batch_done());
                outcome
                    .response
                    .batch_item_failures
                    .into_iter()
                    .filter_map(|f| f.item_identifier)
                    .min_by(|a, b| compare_sequence_numbers(a, b))
            }
            Err(e) => {
                tracing::error!(shard = label, "the batch failed as a whole: {e}");
                sequence_numbers.first().cloned()
            }
        };
        match retry_from {
            None => {
                shard.failures = 0;
                if let Some(last) = sequence_numbers.last() {
                    shard.position = Position::After(last.clone());
                }
                match next {
                    Some(next) => shard.iterator = Some(next),
                    None => shard.finished = true,
                }
            }
            Some(sequence_number) => {
                // As the event source mapping: read again from the lowest
                // reported record, after a pause.
                self.summary.retried_batches += 1;
                tracing::warn!(
                    shard = label,
                    sequence_number,
                    "records were handed back; reading the shard again from the first of them"
                );
                shard.position = Position::At(sequence_number);
                back_off(shard, self.options.max_retry_backoff);
            }
        }
        if let Some(path) = &self.options.capture {
            self.captured.extend(lambda_records);
            let text = serde_json::to_string_pretty(&StreamEvent {
                records: &self.captured,
            })?;
            std::fs::write(path, text).map_err(|e| {
                anyhow::anyhow!("cannot write the capture file {}: {e}", path.display())
            })?;
        }
        Ok(true)
    }
}

/// A Lambda DynamoDB Streams event, `{"Records": [...]}`.
#[derive(serde::Serialize)]
struct StreamEvent<'a> {
    #[serde(rename = "Records")]
    records: &'a [Value],
}

/// Pauses a shard after a failure and drops its iterator: the next read
/// starts from its position.
fn back_off(shard: &mut Shard, max: Duration) {
    shard.iterator = None;
    pause(shard, max);
}

/// Pauses a shard after a failure: 1 s, doubling, up to `max`.
fn pause(shard: &mut Shard, max: Duration) {
    shard.failures = shard.failures.saturating_add(1);
    let pause = Duration::from_secs(1 << shard.failures.min(10).saturating_sub(1)).min(max);
    shard.not_before = Instant::now() + pause;
}

async fn iterator_for(
    client: &aws_sdk_dynamodbstreams::Client,
    shard: &Shard,
) -> Result<String, String> {
    let request = client
        .get_shard_iterator()
        .stream_arn(&shard.stream_arn)
        .shard_id(&shard.id);
    let request = match &shard.position {
        Position::Start(kind) => request.shard_iterator_type(kind.clone()),
        Position::Since(_) => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        Position::At(seq) => request
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .sequence_number(seq),
        Position::After(seq) => request
            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
            .sequence_number(seq),
    };
    let output = request
        .send()
        .await
        .map_err(|e| DisplayErrorContext(e).to_string())?;
    output
        .shard_iterator()
        .map(str::to_owned)
        .ok_or_else(|| "GetShardIterator returned no iterator".to_owned())
}

/// Sequence numbers are decimal strings of up to 40 digits.
fn compare_sequence_numbers(a: &str, b: &str) -> std::cmp::Ordering {
    (a.len(), a).cmp(&(b.len(), b))
}

/// A record as the Lambda event source mapping delivers it.
pub fn lambda_record(record: &Record, stream_arn: &str) -> Value {
    let mut out = Map::new();
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(value) = value {
            out.insert(key.to_owned(), Value::from(value));
        }
    };
    put("eventID", record.event_id());
    put("eventName", record.event_name().map(|n| n.as_str()));
    put("eventVersion", record.event_version());
    put("eventSource", record.event_source());
    put("awsRegion", record.aws_region());
    out.insert("eventSourceARN".into(), Value::from(stream_arn));
    if let Some(identity) = record.user_identity() {
        let mut user = Map::new();
        if let Some(kind) = identity.r#type() {
            user.insert("type".into(), kind.into());
        }
        if let Some(principal) = identity.principal_id() {
            user.insert("principalId".into(), principal.into());
        }
        out.insert("userIdentity".into(), Value::Object(user));
    }
    if let Some(change) = record.dynamodb() {
        let mut dynamodb = Map::new();
        if let Some(at) = change.approximate_creation_date_time() {
            let seconds = at.secs() as f64 + f64::from(at.subsec_nanos() / 1_000_000) / 1e3;
            dynamodb.insert("ApproximateCreationDateTime".into(), json!(seconds));
        }
        let images = [
            ("Keys", change.keys()),
            ("NewImage", change.new_image()),
            ("OldImage", change.old_image()),
        ];
        for (name, image) in images {
            if let Some(image) = image {
                dynamodb.insert(name.into(), Value::Object(item(image)));
            }
        }
        if let Some(seq) = change.sequence_number() {
            dynamodb.insert("SequenceNumber".into(), seq.into());
        }
        if let Some(size) = change.size_bytes() {
            dynamodb.insert("SizeBytes".into(), size.into());
        }
        if let Some(view) = change.stream_view_type() {
            dynamodb.insert("StreamViewType".into(), view.as_str().into());
        }
        out.insert("dynamodb".into(), Value::Object(dynamodb));
    }
    Value::Object(out)
}

fn item(image: &std::collections::HashMap<String, AttributeValue>) -> Map<String, Value> {
    let mut names: Vec<&String> = image.keys().collect();
    names.sort();
    names
        .into_iter()
        .map(|name| (name.clone(), attribute(&image[name])))
        .collect()
}

/// One AttributeValue in DynamoDB JSON. A type this build does not know
/// becomes `{}`, which decoding reports (the record is parked, not dropped).
fn attribute(value: &AttributeValue) -> Value {
    let b64 = |blob: &aws_sdk_dynamodbstreams::primitives::Blob| {
        base64::engine::general_purpose::STANDARD.encode(blob.as_ref())
    };
    use relay_record::dynamodb::av;
    match value {
        AttributeValue::S(s) => av::s(s.as_str()),
        AttributeValue::N(n) => av::n(n.as_str()),
        AttributeValue::B(b) => av::b(b64(b)),
        AttributeValue::Bool(b) => av::boolean(*b),
        AttributeValue::Null(_) => av::null(),
        AttributeValue::Ss(v) => av::ss(v.clone()),
        AttributeValue::Ns(v) => av::ns(v.clone()),
        AttributeValue::Bs(v) => av::bs(v.iter().map(b64).collect()),
        AttributeValue::L(v) => av::l(v.iter().map(attribute).collect()),
        AttributeValue::M(m) => av::m(item(m)),
        _ => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodbstreams::primitives::{Blob, DateTime};
    use aws_sdk_dynamodbstreams::types::{OperationType, StreamRecord, StreamViewType};

    #[test]
    fn lambda_record_decodes_like_a_lambda_delivered_one() {
        let record = Record::builder()
            .event_id("e1")
            .event_name(OperationType::Modify)
            .event_version("1.1")
            .event_source("aws:dynamodb")
            .aws_region("eu-central-1")
            .dynamodb(
                StreamRecord::builder()
                    .approximate_creation_date_time(DateTime::from_millis(1_700_000_000_250))
                    .keys("id", AttributeValue::S("o1".into()))
                    .old_image("id", AttributeValue::S("o1".into()))
                    .old_image("amount", AttributeValue::N("12.50".into()))
                    .new_image("id", AttributeValue::S("o1".into()))
                    .new_image(
                        "amount",
                        AttributeValue::N("100000000000000000000.01".into()),
                    )
                    .new_image("blob", AttributeValue::B(Blob::new(vec![0, 1, 255])))
                    .new_image(
                        "tags",
                        AttributeValue::L(vec![
                            AttributeValue::Ss(vec!["a".into()]),
                            AttributeValue::Null(true),
                            AttributeValue::Bool(false),
                        ]),
                    )
                    .sequence_number("4200000000000000000001")
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build(),
            )
            .build();
        let arn = "arn:aws:dynamodb:eu-central-1:123456789012:table/orders/stream/2026-01-01T00:00:00.000";
        let value = lambda_record(&record, arn);
        let parsed = relay_record::dynamodb::parse_record(&value).expect("decodes");
        assert_eq!(parsed.table, "orders");
        assert_eq!(parsed.sequence_number, "4200000000000000000001");
        let new = parsed.new_image.expect("a new image");
        assert_eq!(new["amount"].to_string(), "100000000000000000000.01");
        assert_eq!(new["blob"], "AAH/");
        assert_eq!(new["tags"], json!([["a"], null, false]));
        assert_eq!(parsed.approximate_creation_time_ms, Some(1_700_000_000_250));
    }

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        let mut seqs = vec!["100", "99", "1000", "101"];
        seqs.sort_by(|a, b| compare_sequence_numbers(a, b));
        assert_eq!(seqs, ["99", "100", "101", "1000"]);
    }
}
