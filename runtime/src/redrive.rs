//! Re-drive: drain the parking lot back to the bus.
//!
//! Parked events are republished as they are (same body, same eid); parked
//! raw records go through the table's current transform first. An item's
//! messages are replayed in stream order, one per publishing wave, and an
//! item whose earlier message still fails is not overtaken: its later
//! messages wait, hidden at least as long as the one they wait for.
//!
//! With the parked-items registry, order holds across runs too: a message
//! is published only when its unit is its item's lowest registered one; once
//! the bus accepted it, the unit is unregistered and then the message
//! deleted. A registered message whose unit is no longer registered was
//! delivered before (or its record was reported back to Lambda): it is a
//! duplicate and is deleted unpublished.
//!
//! What fails stays in the lot with a visibility timeout that grows with
//! each receive; past the queue's `maxReceiveCount` SQS moves it to the
//! dead-letter queue. Unreadable messages are poison: reported and left
//! alone, never a crash.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::park::envelope::parse_rfc3339_ms;
use crate::park::registry::Registered;
use crate::park::{Envelope, ParcelKind, ParkError, ParkedMessage};
use crate::pipeline::order::ItemQueues;
use crate::pipeline::Relay;
use crate::sinks::{Delivery, Outbound, PublishStats};
use crate::transform::Event;

/// A registered unit older than this has no message left anywhere (SQS
/// keeps messages 14 days at most, dead-letter queues included): it no
/// longer holds its item back.
pub const ORPHAN_AGE: Duration = Duration::from_secs(15 * 24 * 3600);

/// How a re-drive run behaves.
#[derive(Debug, Clone)]
pub struct RedriveOptions {
    /// Stop after receiving this many messages.
    pub max_messages: usize,
    /// Stop receiving once the messages received hold about this many bytes
    /// (the rest waits for the next run), so a run fits in memory.
    pub max_bytes: usize,
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
            max_bytes: 64 << 20,
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
    /// Messages deleted unpublished: their unit was delivered before.
    pub duplicates: usize,
    /// Messages deleted from the queue.
    pub deleted: usize,
    /// Messages left for a later run (failing, or waiting behind an earlier
    /// message of their item).
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
    /// By the sink an event was parked for (`(all of its table)` for
    /// records, which go to every sink of their table once mapped).
    pub by_sink: BTreeMap<String, usize>,
    /// By reason (the first 80 characters).
    pub by_reason: BTreeMap<String, usize>,
    /// By age since parking.
    pub by_age: BTreeMap<String, usize>,
    /// Messages that are not envelopes.
    pub unreadable: usize,
}

/// What became of a message in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Not decided yet.
    Pending,
    /// Everything it held was published: unregister, then delete.
    Published,
    /// Delivered before: delete without publishing.
    Duplicate,
    /// Try again later, hidden for this long.
    Later(Duration),
    /// Poison: leave it alone.
    Poison,
}

/// One unit of work for an item: a parked event, or an event a parked
/// record produced now.
enum Work {
    Message(usize),
    /// An event of parked record `.0` for sink `.2` (an index into
    /// [`Relay::sinks`]).
    Derived(usize, Event, usize),
}

impl Work {
    fn message(&self) -> usize {
        match self {
            Work::Message(m) | Work::Derived(m, _, _) => *m,
        }
    }
}

/// The messages of this run per item, in stream order (queue `q` is one
/// item's), with what the registry says of each item.
#[derive(Default)]
struct Runs {
    queues: ItemQueues<Work>,
    /// Per queue: its item, when known.
    items: Vec<Option<String>>,
    /// Per queue: the item's registered units not yet delivered, lowest first.
    registered: Vec<Vec<Registered>>,
}

impl Relay {
    /// Drains the parking lot back to the bus.
    pub async fn redrive(&mut self, options: &RedriveOptions) -> Result<RedriveSummary, ParkError> {
        let started = Instant::now();
        let deadline = started + options.time_budget;
        for route in self.routes.values_mut() {
            route.instance.reset_log_budget();
        }
        let messages = self
            .lot
            .receive(
                options.max_messages,
                options.max_bytes,
                options.visibility_timeout,
                deadline,
            )
            .await?;
        let mut summary = RedriveSummary {
            received: messages.len(),
            ..RedriveSummary::default()
        };
        let mut verdicts = vec![Verdict::Pending; messages.len()];
        let later = |m: &ParkedMessage| backoff(m, options);

        // Per item, its messages in stream order.
        let mut order: Vec<usize> = (0..messages.len()).collect();
        order.sort_by(|&a, &b| messages[a].unit().cmp(&messages[b].unit()));
        let mut runs = Runs::default();
        for m in order {
            let q = match messages[m].item() {
                Some(item) => runs.queues.push(item, Work::Message(m)),
                None => runs.queues.push_alone(Work::Message(m)),
            };
            if q == runs.items.len() {
                runs.items.push(messages[m].item().map(str::to_owned));
                runs.registered.push(Vec::new());
            }
        }

        // The registry says which unit of each item may go next.
        let registry_in_use = self.registry.is_some();
        if let Some(registry) = &self.registry {
            let has_registered = |runs: &Runs, q: usize| {
                runs.queues
                    .iter(q)
                    .any(|w| messages[w.message()].registered())
            };
            let items: Vec<&str> = (0..runs.queues.len())
                .filter(|&q| has_registered(&runs, q))
                .filter_map(|q| runs.items[q].as_deref())
                .collect();
            if !items.is_empty() {
                match registry.lookup(&items, deadline).await {
                    Ok(mut found) => {
                        for q in 0..runs.queues.len() {
                            if let Some(item) = &runs.items[q] {
                                runs.registered[q] = found.remove(item).unwrap_or_default();
                            }
                        }
                    }
                    Err(e) => {
                        // Without the registry no item with registered units
                        // may go: it could overtake an earlier unit.
                        tracing::warn!(
                            "cannot read the parked-items registry; registered messages wait: {e}"
                        );
                        for q in 0..runs.queues.len() {
                            if has_registered(&runs, q) {
                                block(
                                    &mut runs,
                                    q,
                                    &messages,
                                    &mut verdicts,
                                    options.retry_base,
                                    options,
                                );
                            }
                        }
                    }
                }
            }
        }

        // Publishing stops in time to settle (delete, unregister, postpone).
        let publish_until = deadline - self.deadline_margin().min(options.time_budget / 3);
        let mut stats = PublishStats::default();
        let mut wave_number = 0;
        loop {
            // Bring each item's head to a unit that can be published now.
            for q in 0..runs.queues.len() {
                self.prepare_head(
                    &mut runs,
                    q,
                    &messages,
                    &mut verdicts,
                    options,
                    registry_in_use,
                    deadline,
                    &mut summary,
                )
                .await;
            }
            let wave: Vec<(usize, Work)> = runs.queues.wave();
            if wave.is_empty() {
                break;
            }
            let flow_id = format!("redrive-{}-{wave_number}", std::process::id());
            wave_number += 1;
            let deliveries = self
                .publish_wave(&wave, &messages, publish_until, &flow_id, &mut stats)
                .await;
            let mut finished: Vec<(usize, usize)> = Vec::new();
            for ((r, work), delivery) in wave.into_iter().zip(deliveries) {
                let m = work.message();
                match delivery {
                    Delivery::Published => {
                        let last_of_message = !matches!(runs.queues.front(r), Some(Work::Derived(n, _, _)) if *n == m);
                        match work {
                            Work::Message(_) => summary.republished += 1,
                            Work::Derived(..) => {
                                summary.retransformed_events += 1;
                                if last_of_message {
                                    summary.retransformed += 1;
                                }
                            }
                        }
                        if last_of_message {
                            finished.push((r, m));
                        }
                    }
                    Delivery::Park { reason, .. } => {
                        tracing::warn!(
                            message_id = messages[m].id,
                            "parked event still cannot be published: {reason}"
                        );
                        verdicts[m] = Verdict::Later(later(&messages[m]));
                        block(
                            &mut runs,
                            r,
                            &messages,
                            &mut verdicts,
                            later(&messages[m]),
                            options,
                        );
                    }
                }
            }
            // Unregister before the next unit of the item may go.
            for (r, m) in finished {
                self.finish(&mut runs, r, m, &messages, &mut verdicts, options, deadline)
                    .await;
            }
        }

        // Settle: delete what was delivered, postpone the rest.
        let done: Vec<&ParkedMessage> = messages
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| matches!(v, Verdict::Published | Verdict::Duplicate))
            .map(|(m, _)| m)
            .collect();
        summary.deleted = self
            .lot
            .delete(&done)
            .await
            .iter()
            .filter(|r| r.is_ok())
            .count();
        let postponed: Vec<(&ParkedMessage, Duration)> = messages
            .iter()
            .zip(&verdicts)
            .filter_map(|(m, v)| match v {
                Verdict::Later(hide) => Some((m, *hide)),
                // Never reached (deadline): try again soon.
                Verdict::Pending => Some((m, options.retry_base)),
                _ => None,
            })
            .collect();
        summary.still_failing = postponed.len();
        summary.poison = verdicts.iter().filter(|v| **v == Verdict::Poison).count();
        summary.duplicates = verdicts
            .iter()
            .filter(|v| **v == Verdict::Duplicate)
            .count();
        self.lot.postpone(&postponed).await;
        tracing::info!(
            received = summary.received,
            republished = summary.republished,
            retransformed = summary.retransformed,
            duplicates = summary.duplicates,
            deleted = summary.deleted,
            still_failing = summary.still_failing,
            poison = summary.poison,
            publish_attempts = stats.attempts,
            duration_ms = started.elapsed().as_millis() as u64,
            "re-drive done"
        );
        Ok(summary)
    }

    /// Drops duplicates from the head of an item's queue, turns a parked
    /// record at its head into its events, and blocks the item when its head
    /// cannot go now (unreadable, poison, not the lowest registered unit).
    #[allow(clippy::too_many_arguments)]
    async fn prepare_head(
        &mut self,
        runs: &mut Runs,
        q: usize,
        messages: &[ParkedMessage],
        verdicts: &mut [Verdict],
        options: &RedriveOptions,
        registry_in_use: bool,
        deadline: Instant,
        summary: &mut RedriveSummary,
    ) {
        while let Some(&Work::Message(m)) = runs.queues.front(q) {
            let message = &messages[m];
            let envelope = match &message.envelope {
                Err(unreadable) if unreadable.retriable => {
                    tracing::warn!(
                        message_id = message.id,
                        "parked message cannot be read now: {}",
                        unreadable.reason
                    );
                    let later = Verdict::Later(backoff(message, options));
                    hold_item(runs, q, m, later, messages, verdicts, options);
                    return;
                }
                Err(unreadable) => {
                    tracing::error!(
                        message_id = message.id,
                        "unreadable parked message, left for the dead-letter queue: {}",
                        unreadable.reason
                    );
                    hold_item(runs, q, m, Verdict::Poison, messages, verdicts, options);
                    return;
                }
                Ok(envelope) => envelope,
            };
            if message.receives > options.poison_receives {
                tracing::error!(
                    message_id = message.id,
                    receives = message.receives,
                    sequence_number = envelope.sequence_number.as_deref(),
                    "parked message keeps failing; left for the dead-letter queue"
                );
                hold_item(runs, q, m, Verdict::Poison, messages, verdicts, options);
                return;
            }
            if registry_in_use && envelope.registered && runs.items[q].is_some() {
                let unit = envelope.unit();
                let item = runs.items[q].clone().unwrap_or_default();
                // Units registered longer ago than any message can live have none.
                while runs.registered[q]
                    .first()
                    .is_some_and(|r| r.unit < unit && is_orphan(r))
                {
                    let orphan = runs.registered[q][0].unit.clone();
                    tracing::error!(item, unit = %orphan, "a registered unit has had no message for longer than SQS keeps one; it no longer holds its item back");
                    match self
                        .registry
                        .as_ref()
                        .expect("in use")
                        .unregister(&item, &[orphan], deadline)
                        .await
                    {
                        Ok(()) => {
                            runs.registered[q].remove(0);
                        }
                        Err(e) => {
                            tracing::warn!(item, "cannot unregister an orphaned unit: {e}");
                            break;
                        }
                    }
                }
                let known = runs.registered[q].iter().any(|r| r.unit == unit);
                if !known && !parked_long_ago(envelope) {
                    tracing::info!(message_id = message.id, unit = %unit, "parked message was delivered before; deleting the duplicate");
                    verdicts[m] = Verdict::Duplicate;
                    runs.queues.pop_front(q);
                    continue;
                }
                if known
                    && runs.registered[q]
                        .first()
                        .is_some_and(|lowest| lowest.unit != unit)
                {
                    // An earlier unit of the item is parked but not in this
                    // run (hidden, failing elsewhere, in the dead-letter queue).
                    tracing::info!(message_id = message.id, unit = %unit, "an earlier parked change of the item is not in this run; waiting for it");
                    let hide = backoff(message, options);
                    block(runs, q, messages, verdicts, hide, options);
                    return;
                }
            }
            if envelope.kind == ParcelKind::Event {
                if self.sink_named(envelope.sink.as_deref()).is_none() {
                    tracing::error!(
                        message_id = message.id,
                        sink = envelope
                            .sink
                            .as_deref()
                            .unwrap_or(crate::sinks::DEFAULT_SINK),
                        "parked event names a sink that is not configured; kept until it is"
                    );
                    let later = Verdict::Later(backoff(message, options));
                    hold_item(runs, q, m, later, messages, verdicts, options);
                }
                return;
            }
            // A parked record: its events, through the current transform.
            if Instant::now() >= deadline {
                return; // left pending: tried again soon
            }
            match self.retransform(envelope) {
                Ok(events) if events.is_empty() => {
                    runs.queues.pop_front(q);
                    summary.retransformed += 1;
                    self.finish(runs, q, m, messages, verdicts, options, deadline)
                        .await;
                    if verdicts[m] != Verdict::Published {
                        return;
                    }
                }
                Ok(events) => {
                    runs.queues.pop_front(q);
                    for (event, sink) in events.into_iter().rev() {
                        runs.queues.push_front(q, Work::Derived(m, event, sink));
                    }
                    return;
                }
                Err(reason) => {
                    tracing::warn!(
                        sequence_number = envelope.sequence_number.as_deref(),
                        "parked record still cannot be mapped: {reason}"
                    );
                    let later = Verdict::Later(backoff(message, options));
                    hold_item(runs, q, m, later, messages, verdicts, options);
                    return;
                }
            }
        }
    }

    /// A message's content was all published: unregister its unit (so the
    /// item's next one may go); it is deleted with the others at the end.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &mut self,
        runs: &mut Runs,
        q: usize,
        m: usize,
        messages: &[ParkedMessage],
        verdicts: &mut [Verdict],
        options: &RedriveOptions,
        deadline: Instant,
    ) {
        let message = &messages[m];
        let registered = message.registered() && runs.items[q].is_some();
        if let (Some(registry), true) = (&self.registry, registered) {
            let unit = message.unit().expect("readable messages have a unit");
            let item = runs.items[q].as_deref().expect("checked");
            // The budget's end is no reason to leave a published unit
            // registered: allow the call a few seconds past it.
            let until = deadline.max(Instant::now() + Duration::from_secs(5));
            if let Err(e) = registry
                .unregister(item, std::slice::from_ref(&unit), until)
                .await
            {
                // Not deleted: published again (same eid) by a later run.
                tracing::warn!(
                    item,
                    "cannot unregister a re-driven unit; it stays parked: {e}"
                );
                let hide = backoff(message, options);
                verdicts[m] = Verdict::Later(hide);
                block(runs, q, messages, verdicts, hide, options);
                return;
            }
            runs.registered[q].retain(|r| r.unit != unit);
        }
        verdicts[m] = Verdict::Published;
    }

    /// Counts what is parked without changing it: messages are received
    /// and made visible again at once (each receive still counts towards the
    /// dead-letter queue's `maxReceiveCount`).
    pub async fn parked_report(&self, options: &RedriveOptions) -> Result<ParkedReport, ParkError> {
        let messages = self
            .lot
            .receive(
                options.max_messages,
                options.max_bytes,
                Duration::from_secs(60),
                Instant::now() + options.time_budget,
            )
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
            let sink = match envelope.kind {
                ParcelKind::Event => envelope
                    .sink
                    .clone()
                    .unwrap_or_else(|| crate::sinks::DEFAULT_SINK.into()),
                ParcelKind::Record => "(all of its table)".into(),
            };
            count(&mut report.by_sink, sink);
            count(
                &mut report.by_reason,
                envelope.last_error.chars().take(80).collect(),
            );
            count(&mut report.by_age, age_bucket(&envelope.parked_at, now));
        }
        let all: Vec<(&ParkedMessage, Duration)> =
            messages.iter().map(|m| (m, Duration::ZERO)).collect();
        self.lot.postpone(&all).await;
        Ok(report)
    }

    /// Runs a parked raw record through its table's current transform.
    /// Publishes a wave, each unit to its sink, all sinks at once; one
    /// [`Delivery`] per unit, in order.
    async fn publish_wave(
        &self,
        wave: &[(usize, Work)],
        messages: &[ParkedMessage],
        until: Instant,
        flow_id: &str,
        stats: &mut PublishStats,
    ) -> Vec<Delivery> {
        let mut parts: Vec<(usize, Vec<usize>, Vec<Outbound<'_>>)> = Vec::new();
        for (w, (_, work)) in wave.iter().enumerate() {
            let (sink, outbound) = match work {
                Work::Message(m) => {
                    let envelope = messages[*m]
                        .envelope
                        .as_ref()
                        .expect("published messages are readable");
                    let sink = self
                        .sink_named(envelope.sink.as_deref())
                        .expect("prepare_head holds messages of unknown sinks back");
                    let outbound = Outbound {
                        event_type: envelope.event_type.as_deref().unwrap_or_default(),
                        body: envelope
                            .body
                            .as_deref()
                            .expect("validated envelopes of events have a body"),
                        key: envelope.key.as_deref(),
                    };
                    (sink, outbound)
                }
                Work::Derived(_, event, sink) => (*sink, Outbound::from(event)),
            };
            match parts.iter_mut().find(|(s, _, _)| *s == sink) {
                Some((_, places, out)) => {
                    places.push(w);
                    out.push(outbound);
                }
                None => parts.push((sink, vec![w], vec![outbound])),
            }
        }
        let answers =
            futures_util::future::join_all(parts.iter().map(|(sink, _, outbound)| async {
                let mut sent = PublishStats::default();
                let answer = self.sinks[*sink]
                    .publish(outbound, until, flow_id, &mut sent)
                    .await;
                (answer, sent)
            }))
            .await;
        let mut deliveries: Vec<Option<Delivery>> = vec![None; wave.len()];
        for ((_, places, _), (answer, sent)) in parts.iter().zip(answers) {
            stats.attempts += sent.attempts;
            stats.latencies.extend(sent.latencies);
            for (&w, delivery) in places.iter().zip(answer) {
                deliveries[w] = Some(delivery);
            }
        }
        deliveries
            .into_iter()
            .map(|d| {
                d.unwrap_or_else(|| Delivery::Park {
                    attempts: 0,
                    reason: "the sink gave no answer for it".into(),
                })
            })
            .collect()
    }

    /// A parked record's events, through its table's current transform,
    /// each for every sink of the table.
    fn retransform(&mut self, envelope: &Envelope) -> Result<Vec<(Event, usize)>, String> {
        let raw = envelope
            .record
            .as_ref()
            .ok_or("the parked record has no raw record")?;
        let record = relay_record::dynamodb::parse_record_text(raw.get())
            .map_err(|e| format!("cannot decode the record: {e}"))?;
        let route = self
            .routes
            .get_mut(&record.table)
            .ok_or_else(|| format!("no transform is configured for table {:?}", record.table))?;
        let events = route
            .instance
            .transform(&record)
            .map_err(|e| e.to_string())?;
        let (events, sinks) = crate::pipeline::fan_out(events, &route.sinks);
        Ok(events.into_iter().zip(sinks).collect())
    }
}

/// Marks every message left in an item's queue to wait: hidden at least as
/// long as the one they wait behind, so none becomes visible before it.
/// Gives message `m`, the front of queue `q`, its `verdict` (a later try
/// or poison) and holds the rest of its item behind it: as long as it is
/// hidden, or the queue's visibility timeout for poison.
fn hold_item(
    runs: &mut Runs,
    q: usize,
    m: usize,
    verdict: Verdict,
    messages: &[ParkedMessage],
    verdicts: &mut [Verdict],
    options: &RedriveOptions,
) {
    let behind = match verdict {
        Verdict::Later(hide) => hide,
        _ => options.visibility_timeout,
    };
    verdicts[m] = verdict;
    runs.queues.pop_front(q);
    block(runs, q, messages, verdicts, behind, options);
}

fn block(
    runs: &mut Runs,
    q: usize,
    messages: &[ParkedMessage],
    verdicts: &mut [Verdict],
    behind: Duration,
    options: &RedriveOptions,
) {
    for work in runs.queues.drain(q).collect::<Vec<_>>() {
        let m = work.message();
        if verdicts[m] == Verdict::Pending {
            verdicts[m] = match is_poison(&messages[m], options) {
                true => Verdict::Poison,
                false => Verdict::Later(backoff(&messages[m], options).max(behind)),
            };
        }
    }
}

/// Unreadable for good, or received too often: left for the dead-letter queue.
fn is_poison(message: &ParkedMessage, options: &RedriveOptions) -> bool {
    matches!(&message.envelope, Err(u) if !u.retriable)
        || message.receives > options.poison_receives
}

/// The growing pause of a message that still fails: base × 2^(receives − 1),
/// at most 12 hours.
fn backoff(message: &ParkedMessage, options: &RedriveOptions) -> Duration {
    let base = options.retry_base.as_secs().max(1);
    let factor = 1u64 << message.receives.saturating_sub(1).min(16);
    Duration::from_secs((base * factor).min(12 * 3600))
}

fn is_orphan(registered: &Registered) -> bool {
    crate::unix_ms().saturating_sub(registered.since_ms) > ORPHAN_AGE.as_millis() as u64
}

/// A message parked longer ago than [`ORPHAN_AGE`]: its unit may have been
/// cleared as an orphan while it sat in a dead-letter queue, so it is
/// published rather than taken for a duplicate.
fn parked_long_ago(envelope: &Envelope) -> bool {
    envelope
        .parked_at_ms()
        .is_some_and(|at| crate::unix_ms().saturating_sub(at) > ORPHAN_AGE.as_millis() as u64)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parked_at_round_trips_through_the_sdk_formatter() {
        for ms in [0, 951_782_400_000, 1_768_464_000_123, 4_107_542_400_999] {
            let text = relay_record::format_rfc3339_millis(ms);
            assert_eq!(parse_rfc3339_ms(&text), Some(ms), "{text}");
        }
    }

    #[test]
    fn ages_are_bucketed() {
        let now = 10 * 86_400_000;
        let at = |ago_ms: u64| relay_record::format_rfc3339_millis(now - ago_ms);
        assert_eq!(age_bucket(&at(1_000), now), "< 1 hour");
        assert_eq!(age_bucket(&at(7_200_000), now), "1 hour – 1 day");
        assert_eq!(age_bucket(&at(3 * 86_400_000), now), "1 – 7 days");
        assert_eq!(age_bucket(&at(9 * 86_400_000), now), "> 7 days");
        assert_eq!(age_bucket("yesterday", now), "unknown");
    }
}
