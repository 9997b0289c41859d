//! The park stage: what must be parked is registered (with a registry),
//! then sent to the parking lot.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use futures_util::StreamExt as _;
use serde_json::Value;

use super::{Fate, InvocationStats, Mapped, Outcome, Relay};
use crate::park::{Envelope, ParcelKind, UnitId, ENVELOPE_VERSION};
use crate::sinks::Sink;

/// Registrations in flight at once while parking.
const REGISTRATIONS_IN_FLIGHT: usize = 16;

impl Relay {
    /// Parks what must be parked: each item's units are registered first
    /// (with a registry), then sent; a unit whose send failed stays open,
    /// for Lambda to deliver again, and registered, so nothing of its item
    /// overtakes it meanwhile.
    pub(super) async fn park(
        &self,
        mapped: &mut [Mapped<'_>],
        deadline: Instant,
        stats: &mut InvocationStats,
    ) {
        let parked_at = relay_record::format_rfc3339_millis(crate::unix_ms());
        let mut places: Vec<(usize, usize)> = Vec::new();
        for (r, m) in mapped.iter().enumerate() {
            places.extend(
                (0..m.fates.len())
                    .filter(|&u| m.fates[u] == Fate::Park)
                    .map(|u| (r, u)),
            );
        }
        if places.is_empty() {
            return;
        }
        // Register per item; units of items that could not be registered stay open.
        let mut per_item: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
        for &(r, u) in &places {
            if let Some(item) = mapped[r].item.as_deref() {
                per_item.entry(item).or_default().push((r, u));
            }
        }
        let mut unregistered: HashSet<(usize, usize)> = HashSet::new();
        if let Some(registry) = &self.registry {
            let requests: Vec<(&str, Vec<UnitId>)> = per_item
                .iter()
                .map(|(item, units)| {
                    (
                        *item,
                        units.iter().map(|&(r, u)| mapped[r].unit(u)).collect(),
                    )
                })
                .collect();
            let answers: Vec<(&str, Result<(), _>)> = futures_util::stream::iter(requests)
                .map(|(item, units)| async move {
                    (item, registry.register(item, &units, deadline).await)
                })
                .buffer_unordered(REGISTRATIONS_IN_FLIGHT)
                .collect()
                .await;
            for (item, answer) in answers {
                if let Err(e) = answer {
                    tracing::error!(item, "cannot register parked units; Lambda will deliver their records again: {e}");
                    unregistered.extend(per_item[item].iter().copied());
                }
            }
        }
        let places: Vec<(usize, usize)> = places
            .into_iter()
            .filter(|place| !unregistered.contains(place))
            .collect();
        for &(r, u) in &unregistered {
            mapped[r].fates[u] = Fate::Open;
        }
        let registered = self.registry.is_some();
        let envelopes: Vec<Envelope> = places
            .iter()
            .map(|&(r, u)| {
                envelope(
                    &mapped[r],
                    u,
                    &parked_at,
                    registered && mapped[r].item.is_some(),
                    &self.sinks,
                )
            })
            .collect();
        let results = self.lot.park(&envelopes, deadline).await;
        for ((r, u), result) in places.into_iter().zip(results) {
            let m = &mut mapped[r];
            match result {
                Ok(()) => {
                    m.fates[u] = Fate::Parked;
                    match m.outcome {
                        Outcome::Events(_) => stats.events_parked += 1,
                        _ => stats.records_parked += 1,
                    }
                    let sink = match m.outcome {
                        Outcome::Events(_) => self.sinks[m.targets[u]].name(),
                        _ => "",
                    };
                    tracing::warn!(
                        record = m.incoming.label(),
                        sink,
                        reason = m.reasons[u].as_str(),
                        "parked in the fallback queue"
                    );
                }
                Err(e) => {
                    // Its unit stays registered: the item waits until Lambda
                    // delivers the record again and it is parked for good.
                    // (Unregistering it could let a later parked unit of the
                    // item go first.)
                    m.fates[u] = Fate::Open;
                    tracing::error!(
                        record = m.incoming.label(),
                        reason = m.reasons[u].as_str(),
                        "could neither publish nor park; Lambda will deliver the record again: {e}"
                    );
                }
            }
        }
    }
}

fn envelope(
    m: &Mapped<'_>,
    unit: usize,
    parked_at: &str,
    registered: bool,
    sinks: &[Box<dyn Sink>],
) -> Envelope {
    let table = match &m.incoming.decoded {
        Ok(record) => Some(record.table.clone()),
        Err(_) => m
            .item
            .as_deref()
            .map(|i| crate::park::registry::item_table(i).to_owned()),
    };
    let mut envelope = Envelope {
        version: ENVELOPE_VERSION,
        kind: ParcelKind::Record,
        table,
        sequence_number: m.incoming.sequence_number.clone(),
        item: m.item.clone(),
        event_type: None,
        index: None,
        eid: None,
        key: None,
        sink: None,
        body: None,
        record: None,
        registered,
        attempts: m.attempts[unit],
        last_error: m.reasons[unit].clone(),
        parked_at: parked_at.to_owned(),
    };
    match &m.outcome {
        Outcome::Events(events) => {
            let event = &events[unit];
            envelope.kind = ParcelKind::Event;
            envelope.event_type = Some(event.event_type.clone());
            envelope.index = Some(unit as u32);
            envelope.key = event.key.clone();
            envelope.sink = Some(sinks[m.targets[unit]].name().to_owned());
            envelope.eid = serde_json::from_str::<Value>(event.body.get())
                .ok()
                .and_then(|b| {
                    b.pointer("/metadata/eid")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                });
            envelope.body = Some(event.body.clone());
        }
        Outcome::Park | Outcome::Defer => {
            envelope.record = Some(m.incoming.raw.clone());
        }
    }
    envelope
}
