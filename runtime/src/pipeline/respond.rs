//! The respond stage: the partial batch response names the first record
//! that is neither published nor parked.

use super::{BatchError, BatchItemFailure, BatchResponse, Fate, InvocationStats, Mapped};

/// Names the first record that is neither published nor parked. Lambda
/// delivers it and everything after it again.
pub(crate) fn respond(
    mapped: &[Mapped<'_>],
    stats: &mut InvocationStats,
) -> Result<BatchResponse, BatchError> {
    let open = |m: &&Mapped<'_>| m.fates.contains(&Fate::Open);
    stats.records_failed = mapped.iter().filter(open).count();
    let Some(first) = mapped.iter().position(|m| open(&m)) else {
        return Ok(BatchResponse::default());
    };
    // A record without a sequence number cannot be named: name the nearest
    // record before it instead (Lambda delivers from there, it included);
    // with none before it, only failing the whole invocation is safe.
    let identifier = mapped[..=first]
        .iter()
        .rev()
        .find_map(|m| m.incoming.sequence_number.clone())
        .ok_or(BatchError::NoCheckpoint {
            record: first,
            failed: stats.records_failed,
        })?;
    tracing::error!(
        checkpoint = identifier.as_str(),
        records_failed = stats.records_failed,
        "reporting records back to Lambda to be delivered again"
    );
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = Some(identifier);
    let mut response = BatchResponse::default();
    response.batch_item_failures.push(failure);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::intake::Incoming;
    use crate::pipeline::Outcome;
    use relay_record::dynamodb::DecodeError;
    use serde_json::value::RawValue;

    fn incoming(index: usize, seq: Option<&str>) -> Incoming {
        Incoming {
            index,
            sequence_number: seq.map(str::to_owned),
            item: None,
            raw: RawValue::from_string("{}".into()).unwrap(),
            decoded: Err(DecodeError::MissingField("dynamodb")),
        }
    }

    fn mapped(incoming: &Incoming, fate: Fate) -> Mapped<'_> {
        Mapped {
            incoming,
            item: None,
            outcome: Outcome::Park,
            targets: Vec::new(),
            fates: vec![fate],
            attempts: vec![0],
            reasons: vec!["parked raw".into()],
        }
    }

    fn checkpoint(batch: &[(Option<&str>, Fate)]) -> Result<Vec<String>, BatchError> {
        let incoming: Vec<Incoming> = batch
            .iter()
            .enumerate()
            .map(|(i, (seq, _))| incoming(i, *seq))
            .collect();
        let mapped: Vec<Mapped<'_>> = incoming
            .iter()
            .zip(batch)
            .map(|(inc, (_, fate))| mapped(inc, *fate))
            .collect();
        let response = respond(&mapped, &mut InvocationStats::default())?;
        Ok(response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier.expect("always set"))
            .collect())
    }

    #[test]
    fn full_success_is_an_empty_list() {
        let batch = [(Some("1"), Fate::Published), (Some("2"), Fate::Parked)];
        assert_eq!(checkpoint(&batch).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn the_first_open_record_is_the_checkpoint() {
        let batch = [
            (Some("1"), Fate::Published),
            (Some("2"), Fate::Open),
            (Some("3"), Fate::Parked),
            (Some("4"), Fate::Open),
        ];
        assert_eq!(checkpoint(&batch).unwrap(), ["2"]);
    }

    #[test]
    fn an_open_record_without_sequence_number_names_the_one_before() {
        let batch = [
            (Some("1"), Fate::Published),
            (None, Fate::Open),
            (Some("3"), Fate::Published),
        ];
        assert_eq!(checkpoint(&batch).unwrap(), ["1"]);
    }

    #[test]
    fn nothing_to_name_fails_the_whole_batch() {
        let batch = [(None, Fate::Open), (Some("2"), Fate::Published)];
        assert!(matches!(
            checkpoint(&batch),
            Err(BatchError::NoCheckpoint {
                record: 0,
                failed: 1
            })
        ));
    }
}
