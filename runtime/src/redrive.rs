//! Re-drive: drain the SQS fallback queue back to the bus.
//!
//! Parked events are republished as they are (same body, same eid); parked
//! raw records go through the table's current transform first. A message is
//! deleted only after the bus accepted everything it held. Messages of one
//! item are replayed in sequence order, and an item whose earlier message
//! still fails is not overtaken: its later messages wait too. What fails
//! stays in the queue with a visibility timeout that grows with each receive;
//! past the queue's `maxReceiveCount` SQS moves it to the dead-letter queue.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName,
};
use serde::Serialize;

use crate::fallback::{decode, Envelope, ParcelKind};
use crate::pipeline::Relay;
use crate::publish::{Delivery, Outbound, PublishStats};
use crate::transform::Event;

/// How a re-drive run behaves.
#[derive(Debug, Clone)]
pub struct RedriveOptions {
    /// Stop after receiving this many messages.
    pub max_messages: usize,
    /// Stop publishing when this much time has passed.
    pub time_budget: Duration,
    /// How long received messages stay hidden from other consumers while
    /// this run works on them.
    pub visibility_timeout: Duration,
    /// Base of the growing visibility timeout for messages that still fail:
    /// `base × 2^(receives − 1)`, at most 12 hours.
    pub retry_base: Duration,
    /// Messages received more often than this are reported as poison and
    /// left alone for the queue's dead-letter policy; the later messages of
    /// their item wait behind them.
    pub poison_receives: u32,
    /// Only count what is parked; change nothing.
    pub dry_run: bool,
}

impl Default for RedriveOptions {
    fn default() -> Self {
        RedriveOptions {
            max_messages: 10_000,
            time_budget: Duration::from_secs(600),
            visibility_timeout: Duration::from_secs(900),
            retry_base: Duration::from_secs(60),
            poison_receives: 10,
            dry_run: false,
        }
    }
}

/// What a re-drive run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct RedriveSummary {
    /// Messages received.
    pub received: usize,
    /// Parked events published again.
    pub republished: usize,
    /// Parked records that went through the transform and were published
    /// (or produced no events).
    pub retransformed: usize,
    /// Events those records produced and the bus accepted.
    pub retransformed_events: usize,
    /// Messages deleted from the queue.
    pub deleted: usize,
    /// Messages left for a later run.
    pub still_failing: usize,
    /// Messages that cannot be read or were received too often.
    pub poison: usize,
}

/// Counts of what is parked, for `--dry-run`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ParkedReport {
    /// Messages seen.
    pub messages: usize,
    /// By table.
    pub by_table: BTreeMap<String, usize>,
    /// By event type (`(raw record)` for records).
    pub by_event_type: BTreeMap<String, usize>,
    /// By reason (the first 80 characters).
    pub by_reason: BTreeMap<String, usize>,
    /// By age since parking.
    pub by_age: BTreeMap<String, usize>,
    /// Messages that are not envelopes.
    pub unreadable: usize,
}

/// One received message.
struct Received {
    id: String,
    receipt: String,
    receives: u32,
    envelope: Result<Envelope, String>,
}

/// One unit of work for an item: a parked event, or an event a parked
/// record produced now.
enum Unit {
    Message(usize),
    Derived(usize, Event),
}

impl Relay {
    /// Drains the fallback queue back to the bus.
    pub async fn redrive(&mut self, options: &RedriveOptions) -> anyhow::Result<RedriveSummary> {
        let started = Instant::now();
        let deadline = started + options.time_budget;
        let messages = self.receive_all(options, deadline).await?;
        let mut summary = RedriveSummary {
            received: messages.len(),
            ..RedriveSummary::default()
        };
        // Per item, its messages in stream order.
        let mut items: Vec<VecDeque<usize>> = Vec::new();
        let mut slots: HashMap<String, usize> = HashMap::new();
        let mut order: Vec<usize> = (0..messages.len()).collect();
        order.sort_by(|&a, &b| sort_key(&messages[a]).cmp(&sort_key(&messages[b])));
        let mut poison = Vec::new();
        // Items with a poison message: their later messages wait behind it.
        let mut held_items: HashSet<String> = HashSet::new();
        let mut held = Vec::new();
        for m in order {
            let received = &messages[m];
            let envelope = match &received.envelope {
                Err(e) => {
                    tracing::error!(message_id = received.id, "unreadable parked message: {e}");
                    poison.push(m);
                    continue;
                }
                Ok(envelope) if received.receives > options.poison_receives => {
                    tracing::error!(
                        message_id = received.id,
                        receives = received.receives,
                        sequence_number = envelope.sequence_number.as_deref(),
                        "parked message keeps failing; left for the dead-letter queue"
                    );
                    poison.push(m);
                    held_items.extend(envelope.item.clone());
                    continue;
                }
                Ok(envelope) => envelope,
            };
            let item = envelope
                .item
                .clone()
                .unwrap_or_else(|| format!("message:{}", received.id));
            if held_items.contains(&item) {
                tracing::warn!(
                    message_id = received.id,
                    sequence_number = envelope.sequence_number.as_deref(),
                    "an earlier parked message of the same item is poison; this one waits behind it"
                );
                held.push(m);
                continue;
            }
            let slot = *slots.entry(item).or_insert_with(|| {
                items.push(VecDeque::new());
                items.len() - 1
            });
            items[slot].push_back(m);
        }
        summary.poison = poison.len();

        // Work per message: events still to publish; None until known.
        let mut remaining: Vec<Option<usize>> = vec![None; messages.len()];
        let mut failed = vec![false; messages.len()];
        for &m in &held {
            failed[m] = true;
        }
        let mut queues: Vec<VecDeque<Unit>> = items
            .into_iter()
            .map(|q| q.into_iter().map(Unit::Message).collect())
            .collect();
        let mut stats = PublishStats::default();
        let mut wave_number = 0;
        loop {
            // Turn parked records at the head of a queue into their events.
            for queue in queues.iter_mut() {
                while let Some(&Unit::Message(m)) = queue.front() {
                    let envelope = messages[m].envelope.as_ref().expect("readable");
                    if envelope.kind != ParcelKind::Record {
                        break;
                    }
                    queue.pop_front();
                    match self.retransform(envelope) {
                        Ok(events) => {
                            remaining[m] = Some(events.len());
                            if events.is_empty() {
                                // Done; the next message of the item may be
                                // a record too: look at it before the wave.
                                summary.retransformed += 1;
                                continue;
                            }
                            for event in events.into_iter().rev() {
                                queue.push_front(Unit::Derived(m, event));
                            }
                            break;
                        }
                        Err(reason) => {
                            tracing::warn!(
                                sequence_number = envelope.sequence_number.as_deref(),
                                "parked record still cannot be mapped: {reason}"
                            );
                            failed[m] = true;
                            block(queue, &mut failed);
                        }
                    }
                }
            }
            let wave: Vec<(usize, Unit)> = queues
                .iter_mut()
                .enumerate()
                .filter_map(|(q, queue)| queue.pop_front().map(|unit| (q, unit)))
                .collect();
            if wave.is_empty() {
                break;
            }
            let outbound: Vec<Outbound<'_>> = wave
                .iter()
                .map(|(_, unit)| match unit {
                    Unit::Message(m) => {
                        let envelope = messages[*m].envelope.as_ref().expect("readable");
                        Outbound {
                            event_type: envelope.event_type.as_deref().unwrap_or_default(),
                            body: envelope
                                .body
                                .as_deref()
                                .expect("parked events carry a body"),
                        }
                    }
                    Unit::Derived(_, event) => Outbound {
                        event_type: &event.event_type,
                        body: &event.body,
                    },
                })
                .collect();
            let flow_id = format!("redrive-{}-{wave_number}", std::process::id());
            wave_number += 1;
            let deliveries = self
                .publisher
                .publish(&outbound, deadline, &flow_id, &mut stats)
                .await;
            for ((q, unit), delivery) in wave.into_iter().zip(deliveries) {
                let m = match unit {
                    Unit::Message(m) => m,
                    Unit::Derived(m, _) => m,
                };
                match delivery {
                    Delivery::Published => match unit {
                        Unit::Message(_) => {
                            summary.republished += 1;
                            remaining[m] = Some(0);
                        }
                        Unit::Derived(..) => {
                            summary.retransformed_events += 1;
                            let left = remaining[m].as_mut().expect("counted");
                            *left -= 1;
                            if *left == 0 {
                                summary.retransformed += 1;
                            }
                        }
                    },
                    Delivery::Park { reason, .. } => {
                        tracing::warn!(
                            message_id = messages[m].id,
                            "parked event still cannot be published: {reason}"
                        );
                        failed[m] = true;
                        block(&mut queues[q], &mut failed);
                    }
                }
            }
        }

        let done: Vec<usize> = (0..messages.len())
            .filter(|&m| !failed[m] && remaining[m] == Some(0))
            .collect();
        let retry: Vec<usize> = (0..messages.len())
            .filter(|&m| failed[m] && !poison.contains(&m))
            .collect();
        summary.deleted = self.delete(&messages, &done).await;
        summary.still_failing = retry.len();
        self.postpone(&messages, &retry, options).await;
        tracing::info!(
            received = summary.received,
            republished = summary.republished,
            retransformed = summary.retransformed,
            deleted = summary.deleted,
            still_failing = summary.still_failing,
            poison = summary.poison,
            publish_attempts = stats.attempts,
            duration_ms = started.elapsed().as_millis() as u64,
            "re-drive done"
        );
        Ok(summary)
    }

    /// Counts what is parked without changing it: messages are received
    /// and made visible again at once (each receive still counts towards the
    /// dead-letter queue's `maxReceiveCount`).
    pub async fn parked_report(&self, options: &RedriveOptions) -> anyhow::Result<ParkedReport> {
        let options = RedriveOptions {
            visibility_timeout: Duration::from_secs(60),
            ..options.clone()
        };
        let messages = self
            .receive_all(&options, Instant::now() + options.time_budget)
            .await?;
        let mut report = ParkedReport {
            messages: messages.len(),
            ..ParkedReport::default()
        };
        let now = crate::unix_ms();
        for m in &messages {
            let Ok(envelope) = &m.envelope else {
                report.unreadable += 1;
                continue;
            };
            let count =
                |map: &mut BTreeMap<String, usize>, key: String| *map.entry(key).or_default() += 1;
            count(
                &mut report.by_table,
                envelope.table.clone().unwrap_or_else(|| "(unknown)".into()),
            );
            count(
                &mut report.by_event_type,
                envelope
                    .event_type
                    .clone()
                    .unwrap_or_else(|| "(raw record)".into()),
            );
            count(
                &mut report.by_reason,
                envelope.last_error.chars().take(80).collect(),
            );
            count(&mut report.by_age, age_bucket(&envelope.parked_at, now));
        }
        let all: Vec<usize> = (0..messages.len()).collect();
        self.change_visibility(&messages, &all, |_| 0).await;
        Ok(report)
    }

    /// Runs a parked raw record through its table's current transform.
    fn retransform(&mut self, envelope: &Envelope) -> Result<Vec<Event>, String> {
        let raw = envelope
            .record
            .as_ref()
            .ok_or("the parked record has no raw record")?;
        let value: serde_json::Value =
            serde_json::from_str(raw.get()).map_err(|e| format!("raw record is not JSON: {e}"))?;
        let record = relay_sdk::dynamodb::parse_record(&value)
            .map_err(|e| format!("cannot decode the record: {e}"))?;
        let route = self
            .routes
            .get_mut(&record.table)
            .ok_or_else(|| format!("no transform is configured for table {:?}", record.table))?;
        route.instance.transform(&record).map_err(|e| e.to_string())
    }

    async fn receive_all(
        &self,
        options: &RedriveOptions,
        deadline: Instant,
    ) -> anyhow::Result<Vec<Received>> {
        let sqs = self.fallback.client();
        let progress = std::io::stderr().is_terminal();
        let mut messages: Vec<Received> = Vec::new();
        let mut empty_polls = 0;
        while messages.len() < options.max_messages && empty_polls < 2 && Instant::now() < deadline
        {
            let wanted = (options.max_messages - messages.len()).min(10) as i32;
            let out = sqs
                .receive_message()
                .queue_url(self.fallback.queue_url())
                .max_number_of_messages(wanted)
                .visibility_timeout(options.visibility_timeout.as_secs() as i32)
                .wait_time_seconds(if empty_polls > 0 { 1 } else { 0 })
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot receive from the fallback queue {}: {}",
                        self.fallback.queue_url(),
                        aws_sdk_sqs::error::DisplayErrorContext(&e)
                    )
                })?;
            let batch = out.messages();
            if batch.is_empty() {
                empty_polls += 1;
                continue;
            }
            empty_polls = 0;
            for message in batch {
                let id = message.message_id().unwrap_or_default().to_owned();
                // Received again (its visibility ran out meanwhile): only the
                // newest receipt handle is valid.
                if let Some(known) = messages.iter_mut().find(|m| m.id == id) {
                    known.receipt = message.receipt_handle().unwrap_or_default().to_owned();
                    continue;
                }
                messages.push(Received {
                    receipt: message.receipt_handle().unwrap_or_default().to_owned(),
                    receives: message
                        .attributes()
                        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1),
                    envelope: decode(message.body().unwrap_or_default()),
                    id,
                });
            }
            if progress {
                eprint!("\rreceived {} parked messages", messages.len());
            }
        }
        if progress {
            eprintln!();
        }
        Ok(messages)
    }

    async fn delete(&self, messages: &[Received], done: &[usize]) -> usize {
        let mut deleted = 0;
        for chunk in done.chunks(10) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .map(|&m| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(m.to_string())
                        .receipt_handle(&messages[m].receipt)
                        .build()
                        .expect("id and receipt are set")
                })
                .collect();
            match self
                .fallback
                .client()
                .delete_message_batch()
                .queue_url(self.fallback.queue_url())
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => {
                    deleted += chunk.len() - out.failed().len();
                    for f in out.failed() {
                        tracing::warn!(entry = f.id(), "cannot delete a re-driven message (it will be re-driven again, same eid): {}", f.message().unwrap_or_default());
                    }
                }
                Err(e) => tracing::warn!(
                    "cannot delete re-driven messages (they will be re-driven again, same eids): {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                ),
            }
        }
        deleted
    }

    /// Hides messages that still fail for a while that grows per receive.
    async fn postpone(&self, messages: &[Received], retry: &[usize], options: &RedriveOptions) {
        let base = options.retry_base.as_secs().max(1);
        self.change_visibility(messages, retry, |r| {
            let factor = 1u64 << r.receives.saturating_sub(1).min(16);
            (base * factor).min(12 * 3600) as i32
        })
        .await;
    }

    async fn change_visibility(
        &self,
        messages: &[Received],
        which: &[usize],
        timeout: impl Fn(&Received) -> i32,
    ) {
        for chunk in which.chunks(10) {
            let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = chunk
                .iter()
                .map(|&m| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(m.to_string())
                        .receipt_handle(&messages[m].receipt)
                        .visibility_timeout(timeout(&messages[m]))
                        .build()
                        .expect("id and receipt are set")
                })
                .collect();
            if let Err(e) = self
                .fallback
                .client()
                .change_message_visibility_batch()
                .queue_url(self.fallback.queue_url())
                .set_entries(Some(entries))
                .send()
                .await
            {
                tracing::warn!(
                    "cannot change the visibility of parked messages: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                );
            }
        }
    }
}

/// Marks every message left in an item's queue as failed: they wait behind
/// the one that failed.
fn block(queue: &mut VecDeque<Unit>, failed: &mut [bool]) {
    for unit in queue.drain(..) {
        match unit {
            Unit::Message(m) | Unit::Derived(m, _) => failed[m] = true,
        }
    }
}

/// Stream order: sequence numbers compared as numbers, then the event's
/// position within its record.
fn sort_key(received: &Received) -> (usize, String, u32) {
    match &received.envelope {
        Ok(e) => {
            let seq = e.sequence_number.clone().unwrap_or_default();
            (seq.len(), seq, e.index.unwrap_or(0))
        }
        Err(_) => (usize::MAX, String::new(), 0),
    }
}

fn age_bucket(parked_at: &str, now_ms: u64) -> String {
    match parse_rfc3339_ms(parked_at).map(|p| now_ms.saturating_sub(p) / 1000) {
        None => "unknown".into(),
        Some(s) if s < 3600 => "< 1 hour".into(),
        Some(s) if s < 86_400 => "1 hour – 1 day".into(),
        Some(s) if s < 7 * 86_400 => "1 – 7 days".into(),
        Some(_) => "> 7 days".into(),
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS.mmmZ` as written by the fallback stage.
fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let ms = if b.get(19) == Some(&b'.') {
        num(20..23)?
    } else {
        0
    };
    // Days from civil (Howard Hinnant).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(((days * 86_400 + h * 3600 + mi * 60 + s) * 1000) + ms).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parked_at_round_trips_through_the_sdk_formatter() {
        for ms in [0, 951_782_400_000, 1_768_464_000_123, 4_107_542_400_999] {
            let text = relay_sdk::format_rfc3339_millis(ms);
            assert_eq!(parse_rfc3339_ms(&text), Some(ms), "{text}");
        }
    }

    #[test]
    fn ages_are_bucketed() {
        let now = 10 * 86_400_000;
        let at = |ago_ms: u64| relay_sdk::format_rfc3339_millis(now - ago_ms);
        assert_eq!(age_bucket(&at(1_000), now), "< 1 hour");
        assert_eq!(age_bucket(&at(7_200_000), now), "1 hour – 1 day");
        assert_eq!(age_bucket(&at(3 * 86_400_000), now), "1 – 7 days");
        assert_eq!(age_bucket(&at(9 * 86_400_000), now), "> 7 days");
        assert_eq!(age_bucket("yesterday", now), "unknown");
    }
}
