//! The publish stage: hold back items with parked changes (the registry),
//! then publish in per-item waves through the sink.

use std::collections::HashSet;
use std::time::Instant;

use super::order::ItemQueues;
use super::{Fate, InvocationStats, Mapped, Outcome, Queued, Relay};
use crate::sinks::{Delivery, Outbound};

impl Relay {
    /// The items whose events must not be published now: those with parked
    /// units in the registry, or all of them when the registry cannot answer
    /// (order beats progress).
    pub(super) async fn held_items(
        &self,
        mapped: &[Mapped<'_>],
        deadline: Instant,
        stats: &mut InvocationStats,
    ) -> Held {
        let Some(registry) = &self.registry else {
            return Held::None;
        };
        let mut items: Vec<&str> = mapped
            .iter()
            .filter(|m| matches!(m.outcome, Outcome::Events(ref e) if !e.is_empty()))
            .filter_map(|m| m.item.as_deref())
            .collect();
        items.sort_unstable();
        items.dedup();
        if items.is_empty() {
            return Held::None;
        }
        let started = Instant::now();
        let answer = registry.lookup(&items, deadline).await;
        stats.registry_lookup = started.elapsed();
        match answer {
            Ok(parked) if parked.is_empty() => Held::None,
            Ok(parked) => {
                tracing::info!(
                    items = parked.len(),
                    "items with parked changes: their new events are parked behind them"
                );
                Held::Items(parked.into_keys().collect())
            }
            Err(e) => {
                tracing::warn!(
                    registry = registry.location(),
                    "cannot ask the parked-items registry, so no event is published (each is parked \
                     behind whatever its item may have parked): {e}"
                );
                Held::All(e.to_string())
            }
        }
    }

    /// Publishes in waves: each wave holds at most one event per item and
    /// sink, the item's next in stream order, so no event overtakes an
    /// earlier one of its item at its sink; a wave goes to all its sinks at
    /// once. Once something of an item is parked for a sink, the rest of
    /// that item for that sink is parked behind it (its other sinks go on:
    /// an event is never published twice); once a record is deferred, the
    /// rest of its item is left open too. For sinks that keep order by
    /// event key, a parked event also parks the later events of its key.
    pub(super) async fn publish(
        &self,
        mapped: &mut [Mapped<'_>],
        held: &Held,
        deadline: Instant,
        request_id: &str,
        stats: &mut InvocationStats,
    ) {
        let sinks = self.sinks.len();
        let mut queues: ItemQueues<Queued> = ItemQueues::default();
        for (r, m) in mapped.iter().enumerate() {
            let Some(item) = m.item.as_deref() else {
                continue; // no key: parked or deferred on its own
            };
            match &m.outcome {
                Outcome::Events(events) => {
                    for e in 0..events.len() {
                        queues.push(&queue_key(item, m.targets[e]), Queued::Event(r, e));
                    }
                }
                // What cannot be published holds the item back at every sink.
                Outcome::Park => (0..sinks).for_each(|s| {
                    queues.push(&queue_key(item, s), Queued::Raw(r));
                }),
                Outcome::Defer => (0..sinks).for_each(|s| {
                    queues.push(&queue_key(item, s), Queued::Defer);
                }),
            }
        }
        let held_items: Vec<(usize, String)> = mapped
            .iter()
            .filter_map(|m| m.item.as_deref())
            .filter_map(|item| {
                let why = match held {
                    Held::None => return None,
                    Held::Items(parked) if !parked.contains(item) => return None,
                    Held::Items(_) => {
                        "earlier changes of the item are parked; re-drive publishes them in order"
                            .to_owned()
                    }
                    Held::All(e) => {
                        format!("held back, the parked-items registry could not be read: {e}")
                    }
                };
                Some((item, why))
            })
            .flat_map(|(item, why)| {
                (0..sinks)
                    .filter_map(|s| queues.slot(&queue_key(item, s)))
                    .map(move |q| (q, why.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut seen = HashSet::new();
        for (q, why) in held_items.into_iter().filter(|(q, _)| seen.insert(*q)) {
            stats.events_held += settle(mapped, queues.drain(q).collect(), &why);
        }
        // Keys with a parked event, per sink that keeps order by key.
        let mut parked_keys: HashSet<(usize, String)> = HashSet::new();
        let mut wave_number = 0;
        loop {
            for q in 0..queues.len() {
                let why = match queues.front(q) {
                    Some(Queued::Raw(_) | Queued::Defer) => {
                        "an earlier record of the same item could not be transformed".to_owned()
                    }
                    Some(&Queued::Event(r, e)) if !parked_keys.is_empty() => {
                        let sink = mapped[r].targets[e];
                        match event_key(&mapped[r], e) {
                            Some(key) if parked_keys.contains(&(sink, key.to_owned())) => format!(
                                "an earlier event with the same key was parked for sink {}, \
                                 which keeps order by key",
                                self.sinks[sink].name()
                            ),
                            _ => continue,
                        }
                    }
                    _ => continue,
                };
                settle(mapped, queues.drain(q).collect(), &why);
            }
            let wave = queues.wave();
            if wave.is_empty() {
                return;
            }
            let flow_id = format!("{request_id}-{wave_number}");
            wave_number += 1;
            let mut deliveries: Vec<Option<Delivery>> = vec![None; wave.len()];
            {
                // Per sink, its part of the wave, published at once.
                let mut parts: Vec<(usize, Vec<usize>, Vec<Outbound<'_>>)> = Vec::new();
                for (w, &(_, unit)) in wave.iter().enumerate() {
                    let Queued::Event(r, e) = unit else {
                        unreachable!("waves hold events only")
                    };
                    let Outcome::Events(events) = &mapped[r].outcome else {
                        unreachable!("event units belong to records with events")
                    };
                    let sink = mapped[r].targets[e];
                    match parts.iter_mut().find(|(s, _, _)| *s == sink) {
                        Some((_, places, outbound)) => {
                            places.push(w);
                            outbound.push(Outbound::from(&events[e]));
                        }
                        None => parts.push((sink, vec![w], vec![Outbound::from(&events[e])])),
                    }
                }
                let answers =
                    futures_util::future::join_all(parts.iter().map(|(sink, _, outbound)| async {
                        let mut sent = crate::sinks::PublishStats::default();
                        let answer = self.sinks[*sink]
                            .publish(outbound, deadline, &flow_id, &mut sent)
                            .await;
                        (answer, sent)
                    }))
                    .await;
                for ((_, places, _), (answer, sent)) in parts.iter().zip(answers) {
                    stats.publish.attempts += sent.attempts;
                    stats.publish.latencies.extend(sent.latencies);
                    for (&w, delivery) in places.iter().zip(answer) {
                        deliveries[w] = Some(delivery);
                    }
                }
            }
            for ((q, unit), delivery) in wave.into_iter().zip(deliveries) {
                let Queued::Event(r, e) = unit else {
                    unreachable!("waves hold events only")
                };
                let delivery = delivery.unwrap_or_else(|| Delivery::Park {
                    attempts: 0,
                    reason: "the sink gave no answer for it".into(),
                });
                match delivery {
                    Delivery::Published => {
                        mapped[r].fates[e] = Fate::Published;
                        stats.events_published += 1;
                    }
                    Delivery::Park { attempts, reason } => {
                        let sink = mapped[r].targets[e];
                        if self.sinks[sink].orders_by_key() {
                            if let Some(key) = event_key(&mapped[r], e) {
                                parked_keys.insert((sink, key.to_owned()));
                            }
                        }
                        mapped[r].fates[e] = Fate::Park;
                        mapped[r].attempts[e] = attempts;
                        mapped[r].reasons[e] = reason;
                        // The rest of the item is parked behind it.
                        let why = "an earlier event of the same item could not be published and was parked";
                        settle(mapped, queues.drain(q).collect(), why);
                    }
                }
            }
        }
    }
}

/// The queue of an item's units for one sink.
fn queue_key(item: &str, sink: usize) -> String {
    format!("{item}\u{0}{sink}")
}

/// The key of unit `e` of a record with events.
fn event_key<'m>(m: &'m Mapped<'_>, e: usize) -> Option<&'m str> {
    match &m.outcome {
        Outcome::Events(events) => events[e].key.as_deref(),
        _ => None,
    }
}

/// Which items must not publish in this batch.
pub(crate) enum Held {
    /// None of them.
    None,
    /// These (they have parked units).
    Items(HashSet<String>),
    /// All of them: the registry could not be read (the reason).
    All(String),
}

/// Settles the units of an item's queue behind the one that cannot go now:
/// parked behind it, or, behind a deferred record, left open (Lambda
/// delivers them all again). Returns how many events it parked.
fn settle(mapped: &mut [Mapped<'_>], units: Vec<Queued>, why: &str) -> usize {
    let deferred = matches!(units.first(), Some(Queued::Defer));
    let mut parked = 0;
    for unit in units {
        match unit {
            Queued::Event(r, e) if mapped[r].fates[e] == Fate::Open => {
                if !deferred {
                    mapped[r].fates[e] = Fate::Park;
                    parked += 1;
                }
                mapped[r].reasons[e] = why.to_owned();
            }
            Queued::Raw(r) if deferred => mapped[r].fates[0] = Fate::Open,
            _ => {}
        }
    }
    parked
}
