//! The SQS fallback queue as a [`ParkingLot`], with oversized envelopes
//! claim-checked in S3.
//!
//! Sizes are counted as SQS counts them: UTF-8 bytes of the body plus every
//! message attribute's name, type and value, per message and per
//! SendMessageBatch request. Attribute values follow the body's character
//! rules, so a value SQS would refuse is left out rather than failing the
//! whole batch. FIFO deduplication ids derive from the unit's content, so
//! two different units never share one.

use std::time::{Duration, Instant};

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata as _};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use futures_util::StreamExt as _;
use tokio::time::timeout_at;

use super::envelope::{self, sqs_legal, EncodeError, Envelope, ParcelKind, Pointer, Stored};
use super::{time_left, ParkError, ParkedMessage, ParkingLot, UnitId, Unreadable};

/// SQS's default and largest message size, used when the queue's own
/// `MaximumMessageSize` cannot be read.
const DEFAULT_MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// SendMessageBatch takes at most this many entries.
const MAX_BATCH_ENTRIES: usize = 10;

/// SendMessageBatch requests in flight at once.
const SENDS_IN_FLIGHT: usize = 8;

/// Longest attribute value kept (attributes are for filtering and reading,
/// the envelope holds everything).
const MAX_ATTRIBUTE_VALUE: usize = 256;

/// Where envelopes too large for any queue message are stored.
#[derive(Debug, Clone)]
pub struct ClaimCheck {
    /// The S3 client.
    pub s3: aws_sdk_s3::Client,
    /// The bucket.
    pub bucket: String,
    /// Key prefix, e.g. `relay/parked/`.
    pub prefix: String,
}

/// The SQS fallback queue.
pub struct SqsLot {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    fifo: bool,
    max_message_bytes: tokio::sync::OnceCell<usize>,
    claim_check: Option<ClaimCheck>,
}

/// One message ready to send.
struct Outgoing {
    /// Position in the caller's envelopes.
    index: usize,
    body: String,
    attributes: Vec<(&'static str, String)>,
    /// Body and attributes, as SQS counts them.
    size: usize,
    group: Option<String>,
    dedup: Option<String>,
}

impl SqsLot {
    /// A lot on the queue at `queue_url`; `claim_check` stores envelopes too
    /// large for it. Nothing is sent until something must be parked, so SQS
    /// is not on the path of a cold start.
    pub fn new(
        client: aws_sdk_sqs::Client,
        queue_url: String,
        claim_check: Option<ClaimCheck>,
    ) -> Self {
        SqsLot {
            fifo: queue_url.ends_with(".fifo"),
            client,
            queue_url,
            max_message_bytes: tokio::sync::OnceCell::new(),
            claim_check,
        }
    }

    /// The queue's maximum message size, read once from its attributes; when
    /// that fails (SQS down) 256 KiB is assumed for this time.
    async fn max_message_bytes(&self) -> usize {
        if let Some(max) = self.max_message_bytes.get() {
            return *max;
        }
        match self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::MaximumMessageSize)
            .send()
            .await
        {
            Ok(out) => {
                let max = out
                    .attributes()
                    .and_then(|a| a.get(&QueueAttributeName::MaximumMessageSize))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
                let _ = self.max_message_bytes.set(max);
                max
            }
            Err(e) => {
                tracing::warn!(
                    queue_url = self.queue_url,
                    "cannot read the fallback queue's attributes, assuming 256 KiB messages: {}",
                    DisplayErrorContext(&e)
                );
                DEFAULT_MAX_MESSAGE_BYTES
            }
        }
    }

    /// The message attributes of an envelope: only values SQS accepts.
    fn attributes(envelope: &Envelope) -> Vec<(&'static str, String)> {
        let kind = match envelope.kind {
            ParcelKind::Event => "event",
            ParcelKind::Record => "record",
        };
        let mut attributes = vec![("kind", kind.to_owned())];
        for (name, value) in [
            ("table", &envelope.table),
            ("event_type", &envelope.event_type),
        ] {
            if let Some(value) = value {
                if !value.is_empty()
                    && value.len() <= MAX_ATTRIBUTE_VALUE
                    && value.chars().all(sqs_legal)
                {
                    attributes.push((name, value.clone()));
                }
            }
        }
        attributes
    }

    /// The message for one envelope, claim-checked in S3 when it is too
    /// large even compressed.
    async fn outgoing(
        &self,
        index: usize,
        envelope: &Envelope,
        max: usize,
        deadline: Instant,
    ) -> Result<Outgoing, ParkError> {
        let attributes = Self::attributes(envelope);
        let attribute_bytes: usize = attributes
            .iter()
            .map(|(name, value)| name.len() + "String".len() + value.len())
            .sum();
        let json = envelope::to_json(envelope);
        let body = match envelope::encode(&json, max.saturating_sub(attribute_bytes)) {
            Ok(body) => body,
            Err(EncodeError::TooLarge { size, .. }) => match &self.claim_check {
                Some(claim_check) => claim_check.store(envelope, &json, deadline).await?,
                None => return Err(ParkError::TooLarge { size, max }),
            },
        };
        let (group, dedup) = match self.fifo {
            true => (
                Some(fifo_id(envelope.item.as_deref().unwrap_or("unknown-item"))),
                Some(envelope.content_digest()),
            ),
            false => (None, None),
        };
        Ok(Outgoing {
            index,
            size: body.len() + attribute_bytes,
            body,
            attributes,
            group,
            dedup,
        })
    }

    fn entry(message: &Outgoing) -> SendMessageBatchRequestEntry {
        let mut entry = SendMessageBatchRequestEntry::builder()
            .id(message.index.to_string())
            .message_body(&message.body);
        for (name, value) in &message.attributes {
            entry = entry.message_attributes(
                *name,
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .expect("data type and value are set"),
            );
        }
        if let (Some(group), Some(dedup)) = (&message.group, &message.dedup) {
            entry = entry
                .message_group_id(group)
                .message_deduplication_id(dedup);
        }
        entry.build().expect("id and body are set")
    }

    /// Sends one batch, resending entries SQS lists as failed a few times;
    /// a request SQS finds too long as a whole is split into single sends.
    async fn send_batch(
        &self,
        mut batch: Vec<Outgoing>,
        deadline: Instant,
    ) -> Vec<(usize, Result<(), ParkError>)> {
        let mut results = Vec::new();
        for attempt in 0..4u32 {
            if attempt > 0 {
                let pause = Duration::from_millis(50 << attempt);
                if time_left(deadline).is_none_or(|left| left <= pause) {
                    break;
                }
                tokio::time::sleep(pause).await;
            }
            let request = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(batch.iter().map(Self::entry).collect()));
            let failed: Vec<(String, String)> = match timeout_at(deadline.into(), request.send())
                .await
            {
                Err(_) => {
                    results.extend(batch.iter().map(|m| (m.index, Err(ParkError::Deadline))));
                    return results;
                }
                Ok(Ok(out)) => out
                    .failed()
                    .iter()
                    .map(|f| {
                        (
                            f.id().to_owned(),
                            format!("{}: {}", f.code(), f.message().unwrap_or("no message")),
                        )
                    })
                    .collect(),
                Ok(Err(e))
                    if e.code() == Some("AWS.SimpleQueueService.BatchRequestTooLong")
                        || e.code() == Some("BatchRequestTooLong") =>
                {
                    if batch.len() == 1 {
                        let reason =
                            format!("SQS refused the message: {}", DisplayErrorContext(&e));
                        results.push((batch[0].index, Err(ParkError::Unavailable(reason))));
                        return results;
                    }
                    tracing::warn!(
                        entries = batch.len(),
                        "SQS found the batch too long; sending its messages one by one"
                    );
                    for message in batch {
                        results.extend(Box::pin(self.send_batch(vec![message], deadline)).await);
                    }
                    return results;
                }
                Ok(Err(e)) => {
                    let reason = format!("SendMessageBatch failed: {}", DisplayErrorContext(&e));
                    tracing::warn!(attempt, "{reason}");
                    batch
                        .iter()
                        .map(|m| (m.index.to_string(), reason.clone()))
                        .collect()
                }
            };
            let mut retry = Vec::new();
            for message in batch {
                match failed
                    .iter()
                    .find(|(id, _)| *id == message.index.to_string())
                {
                    Some(_) => retry.push(message),
                    None => results.push((message.index, Ok(()))),
                }
            }
            if retry.is_empty() {
                return results;
            }
            let reasons: Vec<String> = failed.into_iter().map(|(_, r)| r).collect();
            tracing::warn!(
                attempt,
                failed = retry.len(),
                "SQS did not take some messages: {}",
                reasons.join("; ")
            );
            batch = retry;
            if attempt == 3 {
                let reason = reasons.join("; ");
                results.extend(batch.iter().map(|m| {
                    (
                        m.index,
                        Err(ParkError::Unavailable(format!(
                            "SQS did not take the message: {reason}"
                        ))),
                    )
                }));
                return results;
            }
        }
        let reason = "SQS did not take the message before the deadline".to_owned();
        results.extend(
            batch
                .iter()
                .map(|m| (m.index, Err(ParkError::Unavailable(reason.clone())))),
        );
        results
    }

    /// Turns a received body into its envelope, fetching a claim check.
    async fn open(
        &self,
        body: &str,
        deadline: Instant,
    ) -> (Result<Envelope, Unreadable>, Option<(String, String)>) {
        let poison = |reason: String| Unreadable {
            reason,
            retriable: false,
            item: None,
            unit: None,
            registered: false,
        };
        match envelope::decode(body) {
            Err(reason) => (Err(poison(reason)), None),
            Ok(Stored::Envelope(envelope)) => (Ok(envelope), None),
            Ok(Stored::Pointer(pointer)) => {
                let claim = Some((pointer.bucket.clone(), pointer.key.clone()));
                let unreadable = |reason: String, retriable: bool| Unreadable {
                    reason,
                    retriable,
                    item: pointer.item.clone(),
                    unit: UnitId::parse(&pointer.unit),
                    registered: pointer.registered,
                };
                let Some(claim_check) = &self.claim_check else {
                    let reason = format!(
                        "the message points to s3://{}/{}, but no claim-check bucket is \
                         configured ([fallback] claim_check_bucket)",
                        pointer.bucket, pointer.key
                    );
                    return (Err(unreadable(reason, true)), claim);
                };
                let envelope = match claim_check.fetch(&pointer, deadline).await {
                    Ok(payload) => pointer.open(&payload).map_err(|r| unreadable(r, false)),
                    Err((reason, retriable)) => Err(unreadable(reason, retriable)),
                };
                (envelope, claim)
            }
        }
    }
}

/// FIFO group ids are at most 128 printable ASCII characters.
fn fifo_id(text: &str) -> String {
    if text.len() <= 128 && text.chars().all(|c| c.is_ascii_graphic()) {
        return text.to_owned();
    }
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, text.as_bytes()).to_string()
}

#[async_trait::async_trait]
impl ParkingLot for SqsLot {
    fn location(&self) -> &str {
        &self.queue_url
    }

    fn keeps_item_order(&self) -> bool {
        self.fifo
    }

    async fn park(&self, envelopes: &[Envelope], deadline: Instant) -> Vec<Result<(), ParkError>> {
        let mut results: Vec<Option<Result<(), ParkError>>> = vec![None; envelopes.len()];
        let Ok(max) = timeout_at(deadline.into(), self.max_message_bytes()).await else {
            return vec![Err(ParkError::Deadline); envelopes.len()];
        };
        let mut messages = Vec::new();
        for (i, envelope) in envelopes.iter().enumerate() {
            match self.outgoing(i, envelope, max, deadline).await {
                Ok(message) => messages.push(message),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        // Batches of at most 10 entries and the queue's maximum in total.
        let mut batches: Vec<Vec<Outgoing>> = Vec::new();
        let mut batch_bytes = 0;
        for message in messages {
            let full = batches
                .last()
                .is_none_or(|b| b.len() == MAX_BATCH_ENTRIES || batch_bytes + message.size > max);
            if full {
                batches.push(Vec::new());
                batch_bytes = 0;
            }
            batch_bytes += message.size;
            batches.last_mut().expect("pushed").push(message);
        }
        let sent: Vec<Vec<(usize, Result<(), ParkError>)>> = futures_util::stream::iter(batches)
            .map(|batch| self.send_batch(batch, deadline))
            .buffer_unordered(SENDS_IN_FLIGHT)
            .collect()
            .await;
        for (i, result) in sent.into_iter().flatten() {
            results[i] = Some(result);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(ParkError::Deadline)))
            .collect()
    }

    async fn receive(
        &self,
        max: usize,
        max_bytes: usize,
        visibility: Duration,
        deadline: Instant,
    ) -> Result<Vec<ParkedMessage>, ParkError> {
        let mut messages: Vec<ParkedMessage> = Vec::new();
        let mut bytes = 0usize;
        let mut empty_polls = 0;
        while messages.len() < max
            && bytes < max_bytes
            && empty_polls < 2
            && time_left(deadline).is_some()
        {
            let wanted = (max - messages.len()).min(10) as i32;
            let request = self
                .client
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(wanted)
                .visibility_timeout(visibility.as_secs().min(43_200) as i32)
                .wait_time_seconds(if empty_polls > 0 { 1 } else { 0 })
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send();
            let out = match timeout_at(deadline.into(), request).await {
                Err(_) => break,
                Ok(Ok(out)) => out,
                Ok(Err(e)) if messages.is_empty() => {
                    return Err(ParkError::Unavailable(format!(
                        "cannot receive from the fallback queue {}: {}",
                        self.queue_url,
                        DisplayErrorContext(&e)
                    )))
                }
                Ok(Err(e)) => {
                    // What was received so far is worked on; the rest waits.
                    tracing::warn!(
                        "cannot receive more parked messages: {}",
                        DisplayErrorContext(&e)
                    );
                    break;
                }
            };
            let batch = out.messages();
            if batch.is_empty() {
                empty_polls += 1;
                continue;
            }
            empty_polls = 0;
            for message in batch {
                let id = message.message_id().unwrap_or_default().to_owned();
                let receipt = message.receipt_handle().unwrap_or_default().to_owned();
                // Received again (its visibility ran out meanwhile): only the
                // newest receipt handle is valid.
                if let Some(known) = messages.iter_mut().find(|m| m.id == id) {
                    known.receipt = receipt;
                    continue;
                }
                let receives = message
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                let body = message.body().unwrap_or_default();
                let (envelope, claim) = self.open(body, deadline).await;
                bytes += body.len();
                if let (Ok(envelope), Some(_)) = (&envelope, &claim) {
                    bytes += envelope.body.as_deref().map_or(0, |b| b.get().len());
                    bytes += envelope.record.as_deref().map_or(0, |r| r.get().len());
                }
                messages.push(ParkedMessage {
                    id,
                    receipt,
                    receives,
                    envelope,
                    claim,
                });
            }
        }
        Ok(messages)
    }

    async fn delete(&self, messages: &[&ParkedMessage]) -> Vec<Result<(), ParkError>> {
        let mut results = vec![Ok(()); messages.len()];
        for (chunk_no, chunk) in messages.chunks(10).enumerate() {
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&m.receipt)
                        .build()
                        .expect("id and receipt are set")
                })
                .collect();
            let base = chunk_no * 10;
            match self
                .client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => {
                    for f in out.failed() {
                        if let Ok(i) = f.id().parse::<usize>() {
                            results[base + i] = Err(ParkError::Unavailable(format!(
                                "{}: {}",
                                f.code(),
                                f.message().unwrap_or_default()
                            )));
                        }
                    }
                }
                Err(e) => {
                    let reason = format!("DeleteMessageBatch failed: {}", DisplayErrorContext(&e));
                    for i in 0..chunk.len() {
                        results[base + i] = Err(ParkError::Unavailable(reason.clone()));
                    }
                }
            }
        }
        if let Some(claim_check) = &self.claim_check {
            for (message, result) in messages.iter().zip(&results) {
                if let (Some((bucket, key)), Ok(())) = (&message.claim, result) {
                    claim_check.remove(bucket, key).await;
                }
            }
        }
        results
    }

    async fn postpone(&self, messages: &[(&ParkedMessage, Duration)]) {
        for chunk in messages.chunks(10) {
            let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .map(|(i, (m, hide))| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&m.receipt)
                        .visibility_timeout(hide.as_secs().min(43_200) as i32)
                        .build()
                        .expect("id and receipt are set")
                })
                .collect();
            if let Err(e) = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                tracing::warn!(
                    "cannot change the visibility of parked messages: {}",
                    DisplayErrorContext(&e)
                );
            }
        }
    }
}

impl ClaimCheck {
    /// Stores the envelope JSON in S3; returns the pointer message body.
    async fn store(
        &self,
        envelope: &Envelope,
        json: &str,
        deadline: Instant,
    ) -> Result<String, ParkError> {
        let key = format!(
            "{}{}-{}.json",
            self.prefix,
            &envelope.content_digest()[..16],
            uuid::Uuid::new_v4()
        );
        let request = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(aws_sdk_s3::primitives::ByteStream::from(
                json.as_bytes().to_vec(),
            ))
            .send();
        match timeout_at(deadline.into(), request).await {
            Err(_) => Err(ParkError::Deadline),
            Ok(Err(e)) => Err(ParkError::Unavailable(format!(
                "cannot store the oversized message in s3://{}/{key}: {}",
                self.bucket,
                aws_sdk_s3::error::DisplayErrorContext(&e)
            ))),
            Ok(Ok(_)) => {
                tracing::info!(
                    bucket = self.bucket,
                    key,
                    bytes = json.len(),
                    "oversized message stored in S3 (claim check)"
                );
                Ok(
                    serde_json::to_string(&Pointer::new(envelope, json, &self.bucket, &key))
                        .expect("pointers serialize"),
                )
            }
        }
    }

    /// The payload a pointer names; on failure the reason and whether a
    /// later try may succeed.
    async fn fetch(&self, pointer: &Pointer, deadline: Instant) -> Result<Vec<u8>, (String, bool)> {
        let url = format!("s3://{}/{}", pointer.bucket, pointer.key);
        let request = self
            .s3
            .get_object()
            .bucket(&pointer.bucket)
            .key(&pointer.key)
            .send();
        let output = match timeout_at(deadline.into(), request).await {
            Err(_) => return Err((format!("fetching {url} ran into the deadline"), true)),
            Ok(Err(e)) => {
                let missing = e.as_service_error().is_some_and(|s| s.is_no_such_key());
                return Err((
                    format!(
                        "cannot fetch the claim-checked payload {url}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(&e)
                    ),
                    !missing,
                ));
            }
            Ok(Ok(output)) => output,
        };
        match output.body.collect().await {
            Ok(bytes) => Ok(bytes.into_bytes().to_vec()),
            Err(e) => Err((format!("the download of {url} broke off: {e}"), true)),
        }
    }

    /// Deletes a payload whose message is gone (best effort: a leftover
    /// object is only storage; a lifecycle rule on the prefix removes it).
    async fn remove(&self, bucket: &str, key: &str) {
        if let Err(e) = self.s3.delete_object().bucket(bucket).key(key).send().await {
            tracing::warn!(
                bucket,
                key,
                "cannot delete a claim-checked payload: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            );
        }
    }
}
