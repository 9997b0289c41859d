//! `FakeKinesis`: Kinesis Data Streams' `PutRecords` as `aws-sdk-kinesis`
//! (1.130) sends it: awsJson1_1 (not CBOR: the SDK's default protocol is
//! `AwsJsonRpcProtocol::aws_json_1_1`), `POST /`,
//! `X-Amz-Target: Kinesis_20131202.PutRecords`, a JSON body
//! `{"StreamName" | "StreamARN", "Records": [{"Data": <base64>,
//! "PartitionKey", "ExplicitHashKey"?}]}`.
//!
//! Order of checks:
//! 1. the behaviour is chosen (see [the module docs](super));
//! 2. the operation: another `X-Amz-Target` gets 400
//!    `UnknownOperationException`; a body that is no JSON object 400
//!    `SerializationException`;
//! 3. an injected whole-request error (e.g. 400
//!    `ProvisionedThroughputExceededException`, 500 `InternalFailure`);
//! 4. neither `StreamName` nor `StreamARN`: 400 `InvalidArgumentException`;
//! 5. the number of records, 1 to 500: else 400 `ValidationException`;
//! 6. each record: a partition key of 1 to 256 characters, and data plus
//!    partition key within the stream's maximum record size
//!    ([`max_record_bytes`](FakeKinesis::max_record_bytes), 1 MiB by
//!    default, up to 10 MiB on a stream configured for large records): else
//!    400 `ValidationException` for the whole request;
//! 7. the whole request's data plus partition keys within
//!    [`max_request_bytes`](FakeKinesis::max_request_bytes) (10 MiB, as the
//!    current API reference says; it was 5 MiB): else 400
//!    `InvalidArgumentException` "Records size exceeds 10 MB limit";
//! 8. per record: injected failures (`ProvisionedThroughputExceededException`
//!    or `InternalFailure` are the codes the real service uses);
//! 9. the rest are accepted: each goes to the shard whose hash key range
//!    holds the MD5 of its partition key (or its `ExplicitHashKey`), and gets
//!    that shard's next sequence number. The answer is
//!    `{"FailedRecordCount", "Records": [{"SequenceNumber", "ShardId"} |
//!    {"ErrorCode", "ErrorMessage"}], "EncryptionType": "NONE"}`.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use md5::{Digest, Md5};
use serde_json::{json, Value};

use super::server::Response;
use super::{json_error, json_operation, Core, EntryFailure, Handled, Keyed, Plan};
use crate::nakadi::Request;

const TARGET: &str = "Kinesis_20131202.PutRecords";

/// One `PutRecords` record as the fake read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisRecord {
    /// The stream's name (from `StreamName`, else the end of `StreamARN`).
    pub stream: String,
    /// `PartitionKey`.
    pub partition_key: String,
    /// `ExplicitHashKey`, if given.
    pub explicit_hash_key: Option<String>,
    /// The data, base64-decoded.
    pub data: Vec<u8>,
    /// The shard it went to (accepted records only).
    pub shard_id: Option<String>,
    /// Its sequence number (accepted records only).
    pub sequence_number: Option<String>,
}

impl Keyed for KinesisRecord {
    /// The partition key.
    fn key(&self) -> Option<&str> {
        Some(&self.partition_key)
    }
}

impl KinesisRecord {
    /// The data parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.data).ok()
    }
}

#[derive(Debug)]
struct Settings {
    shards: u32,
    max_record_bytes: usize,
    max_request_bytes: usize,
    /// The last sequence number given, per shard.
    sequence: Vec<u64>,
}

/// A fake Kinesis on `127.0.0.1` (random port); stops on drop. Any stream
/// name is accepted; every stream has the same shards.
pub struct FakeKinesis {
    core: Core<KinesisRecord>,
    settings: Arc<Mutex<Settings>>,
}

impl std::fmt::Debug for FakeKinesis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKinesis")
            .field("url", &self.url())
            .finish()
    }
}

/// The default maximum record size (data + partition key): 1 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;
/// The maximum request size (all data + partition keys): 10 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 10 << 20;

impl FakeKinesis {
    /// Starts a healthy fake whose streams have one shard. Panics if it
    /// cannot listen.
    pub fn start() -> FakeKinesis {
        FakeKinesis::with_shards(1)
    }

    /// Starts a healthy fake whose streams have `shards` shards
    /// (`shardId-000000000000`, ...), splitting the hash key range evenly.
    pub fn with_shards(shards: u32) -> FakeKinesis {
        let shards = shards.max(1);
        let settings = Arc::new(Mutex::new(Settings {
            shards,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            sequence: vec![0; shards as usize],
        }));
        let core = {
            let settings = settings.clone();
            Core::start("fake-kinesis", move |request, plan| {
                put_records(request, plan, &settings)
            })
        };
        FakeKinesis { core, settings }
    }

    fn settings(&self) -> std::sync::MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stream's maximum record size, data plus partition key (default
    /// [`DEFAULT_MAX_RECORD_BYTES`]).
    pub fn max_record_bytes(&self, bytes: usize) {
        self.settings().max_record_bytes = bytes;
    }

    /// The maximum request size (default [`DEFAULT_MAX_REQUEST_BYTES`]).
    pub fn max_request_bytes(&self, bytes: usize) {
        self.settings().max_request_bytes = bytes;
    }

    /// `(partition key, data)` of every accepted record, in arrival order.
    pub fn accepted_data(&self) -> Vec<(String, Vec<u8>)> {
        self.accepted()
            .into_iter()
            .map(|r| (r.partition_key, r.data))
            .collect()
    }

    super::common_methods!(KinesisRecord);
}

/// The shard of a record: the one whose share of the 128-bit hash key range
/// holds the MD5 of the partition key (or the explicit hash key).
fn shard_of(record: &KinesisRecord, shards: u32) -> usize {
    let hash = record
        .explicit_hash_key
        .as_deref()
        .and_then(|k| k.parse::<u128>().ok())
        .unwrap_or_else(|| {
            let digest = Md5::digest(record.partition_key.as_bytes());
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest);
            u128::from_be_bytes(bytes)
        });
    let width = u128::MAX / u128::from(shards);
    ((hash / width) as usize).min(shards as usize - 1)
}

fn put_records(
    request: &Request,
    plan: &Plan<KinesisRecord>,
    settings: &Mutex<Settings>,
) -> Handled<KinesisRecord> {
    let target = request.header("X-Amz-Target").unwrap_or_default();
    let refuse = |status, code: &str, message: &str, entries| {
        Handled::refused(
            &target,
            json_error(status, code, message),
            Some(code),
            entries,
        )
    };
    let body = match json_operation(request, TARGET, "FakeKinesis") {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let stream = body
        .get("StreamName")
        .and_then(Value::as_str)
        .or_else(|| {
            body.get("StreamARN")
                .and_then(Value::as_str)
                .and_then(|arn| arn.rsplit('/').next())
        })
        .map(str::to_owned);
    let raw: Vec<Value> = body
        .get("Records")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut bad_data = None;
    let records: Vec<KinesisRecord> = raw
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let data = r
                .get("Data")
                .and_then(Value::as_str)
                .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok());
            if data.is_none() && bad_data.is_none() {
                bad_data = Some(i);
            }
            KinesisRecord {
                stream: stream.clone().unwrap_or_default(),
                partition_key: r
                    .get("PartitionKey")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                explicit_hash_key: r
                    .get("ExplicitHashKey")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                data: data.unwrap_or_default(),
                shard_id: None,
                sequence_number: None,
            }
        })
        .collect();
    if let Some((status, code, message)) = &plan.error {
        return refuse(*status, code, message, records);
    }
    let Some(stream) = stream else {
        let message = "Either StreamName or StreamARN should be provided.";
        return refuse(400, "InvalidArgumentException", message, records);
    };
    let validation = |what: String| format!("1 validation error detected: {what}");
    if records.is_empty() || records.len() > 500 {
        let bound = match records.len() {
            0 => "greater than or equal to 1",
            _ => "less than or equal to 500",
        };
        let message = validation(format!(
            "Value at 'records' failed to satisfy constraint: Member must have length {bound}"
        ));
        return refuse(400, "ValidationException", &message, records);
    }
    if let Some(i) = bad_data {
        let message = validation(format!(
            "Value at 'records.{}.member.data' failed to satisfy constraint: Member must not be \
             null (and must be base64)",
            i + 1
        ));
        return refuse(400, "ValidationException", &message, records);
    }
    let mut settings = settings.lock().unwrap_or_else(|e| e.into_inner());
    for (i, record) in records.iter().enumerate() {
        let key_chars = record.partition_key.chars().count();
        if !(1..=256).contains(&key_chars) {
            let bound = match key_chars {
                0 => "greater than or equal to 1",
                _ => "less than or equal to 256",
            };
            let message = validation(format!(
                "Value at 'records.{}.member.partitionKey' failed to satisfy constraint: Member \
                 must have length {bound}",
                i + 1
            ));
            return refuse(400, "ValidationException", &message, records);
        }
        let size = record.data.len() + record.partition_key.len();
        if size > settings.max_record_bytes {
            let message = validation(format!(
                "Value at 'records.{}.member.data' failed to satisfy constraint: Member must \
                 have length less than or equal to {} (data and partition key: {size} bytes)",
                i + 1,
                settings.max_record_bytes
            ));
            return refuse(400, "ValidationException", &message, records);
        }
    }
    let total: usize = records
        .iter()
        .map(|r| r.data.len() + r.partition_key.len())
        .sum();
    if total > settings.max_request_bytes {
        let message = format!(
            "Records size exceeds {} MB limit",
            settings.max_request_bytes >> 20
        );
        return refuse(400, "InvalidArgumentException", &message, records);
    }

    let mut results = Vec::with_capacity(records.len());
    let mut accepted = Vec::new();
    let mut failed = 0;
    for (position, record) in records.iter().enumerate() {
        let shard = shard_of(record, settings.shards);
        let shard_id = format!("shardId-{shard:012}");
        if let Some(failure) = EntryFailure::find(&plan.fail, position, record) {
            failed += 1;
            let message = match failure.code.as_str() {
                "ProvisionedThroughputExceededException" => format!(
                    "Rate exceeded for shard {shard_id} in stream {stream} under account \
                     123456789012. ({})",
                    failure.message
                ),
                _ => failure.message.clone(),
            };
            results.push(json!({"ErrorCode": failure.code, "ErrorMessage": message}));
            continue;
        }
        settings.sequence[shard] += 1;
        // Real sequence numbers are 56 digits, increasing per shard.
        let sequence = format!("{:0>44}{shard:04}{:08}", 4959, settings.sequence[shard]);
        results.push(json!({"SequenceNumber": sequence, "ShardId": shard_id}));
        let mut record = record.clone();
        record.shard_id = Some(shard_id);
        record.sequence_number = Some(sequence);
        accepted.push(record);
    }
    let body = json!({
        "FailedRecordCount": failed,
        "Records": results,
        "EncryptionType": "NONE",
    })
    .to_string();
    Handled {
        response: Response::new(200, "application/x-amz-json-1.1", body.into_bytes())
            .with_header("x-amzn-RequestId", &super::request_id()),
        operation: target,
        error_code: None,
        entries: records,
        accepted,
        failed,
    }
}
