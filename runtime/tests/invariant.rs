//! The no-loss invariant under many random fault schedules, with the real
//! binary and moto (SQS and the parked-items registry): after each
//! invocation, every record's event was accepted by the bus or is parked in
//! SQS, or the record is at or after the checkpoint reported to Lambda.
//! Nothing else. (`chaos.rs` runs the longer schedules in process.) Set RELAY_FAULT_SEED to replay a run; RELAY_FAULT_ROUNDS
//! for more rounds.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use relay_testkit::{Fault, Rng};
use support::stack::{checkpoint, eid, records, sample, Stack, StackOptions};

/// Compares stream sequence numbers (decimal strings of any length).
fn seq_at_or_after(seq: &str, checkpoint: &str) -> bool {
    (seq.len(), seq) >= (checkpoint.len(), checkpoint)
}

fn random_eids(rng: &mut Rng, eids: &[String]) -> HashSet<String> {
    let n = 1 + rng.below(3) as usize;
    (0..n)
        .map(|_| eids[rng.below(eids.len() as u64) as usize].clone())
        .collect()
}

fn schedule(rng: &mut Rng, eids: &[String]) -> Vec<Fault> {
    (0..rng.below(7))
        .map(|_| match rng.below(9) {
            0 => Fault::Status(500),
            1 => Fault::Status(503),
            2 => Fault::Status(429),
            3 => Fault::Status(403),
            4 => Fault::Disconnect,
            5 => Fault::AcceptThenDisconnect,
            6 => Fault::FailEids(random_eids(rng, eids)),
            7 => Fault::FailEidsAbortAfterFirst(random_eids(rng, eids)),
            _ => Fault::RejectEids(random_eids(rng, eids)),
        })
        .collect()
}

#[test]
fn every_change_is_published_parked_or_handed_back() {
    let seed = std::env::var("RELAY_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_2026);
    let rounds = std::env::var("RELAY_FAULT_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let mut rng = Rng(seed);
    let mut stack = Stack::start(
        "invariant",
        StackOptions {
            max_attempts: 3,
            request_timeout_ms: 1_000,
            deadline_margin_ms: 1_000,
            registry: true,
            ..StackOptions::default()
        },
    );
    let mut checkpoints = 0;
    let mut parked_total = 0;
    for round in 0..rounds {
        let batch = sample(20 + rng.below(30) as usize, seed ^ round);
        let recs = records(&batch);
        let eids: Vec<String> = recs.iter().map(eid).collect();
        let faults = schedule(&mut rng, &eids);
        let bus_down = rng.chance(15);
        let sqs_down = rng.chance(20);
        let context = format!(
            "seed {seed} round {round}: faults {faults:?}, bus down {bus_down}, sqs down {sqs_down}"
        );
        stack.nakadi.healthy();
        stack.nakadi.clear_logs();
        stack.nakadi.script(faults);
        if bus_down {
            stack.nakadi.respond_status(503, None);
        }
        if sqs_down {
            stack.moto.stop();
        }

        let response = stack
            .invoke(&batch, Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("{context}: invocation failed: {e:?}"));
        let reported = checkpoint(&response);

        let accepted: HashSet<String> = stack.nakadi.accepted_eids().into_iter().collect();
        let parked: HashSet<String> = if sqs_down {
            HashSet::new()
        } else {
            stack
                .moto
                .receive_all_json(&stack.queue)
                .iter()
                .filter_map(|p| p["eid"].as_str().map(str::to_owned))
                .collect()
        };
        for (record, e) in recs.iter().zip(&eids) {
            let handed_back = reported
                .as_deref()
                .is_some_and(|c| seq_at_or_after(&record.sequence_number, c));
            assert!(
                accepted.contains(e) || parked.contains(e) || handed_back,
                "{context}: record {} (eid {e}) was lost: not accepted, not parked, \
                 before the checkpoint {reported:?}",
                record.sequence_number
            );
        }
        let known: HashSet<&String> = eids.iter().collect();
        for e in accepted.iter().chain(&parked) {
            assert!(known.contains(e), "{context}: unknown eid {e}");
        }
        if let Some(c) = &reported {
            assert!(
                recs.iter().any(|r| &r.sequence_number == c),
                "{context}: the checkpoint {c} is a record of the batch"
            );
            checkpoints += 1;
        }
        // Per item, what the bus accepted follows stream order.
        let position: HashMap<&String, usize> =
            eids.iter().enumerate().map(|(i, e)| (e, i)).collect();
        let mut last: HashMap<String, usize> = HashMap::new();
        for e in stack.nakadi.accepted_eids() {
            let i = position[&e];
            let item = recs[i].keys.to_string();
            if let Some(&before) = last.get(&item) {
                assert!(before <= i, "{context}: item {item} published out of order");
            }
            last.insert(item, i);
        }
        parked_total += parked.len();

        if sqs_down {
            stack.moto.restart();
            let queue = stack.moto.create_queue("relay-fallback-invariant");
            assert_eq!(queue, stack.queue, "the queue comes back at the same URL");
            // moto forgets everything: the registry table comes back empty.
            stack
                .moto
                .create_registry_table(stack.registry.as_deref().expect("a registry"));
        }
    }
    eprintln!(
        "{rounds} rounds (seed {seed}): {checkpoints} handed back to Lambda, {parked_total} events parked"
    );
}
