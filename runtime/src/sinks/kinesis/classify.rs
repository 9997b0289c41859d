//! What Kinesis's answer to `PutRecords` means per record. The answer lists
//! one result per record, in request order: a sequence number when it was
//! written, an `ErrorCode` when not.

use aws_sdk_kinesis::types::PutRecordsResultEntry;

use crate::sinks::rounds::{BatchResult, ItemStatus};

/// Reads the result entries of a request of `count` records. The API
/// documents two per-record codes, `ProvisionedThroughputExceededException`
/// and `InternalFailure`, both transient: every per-record failure is
/// retried (with backoff), and parked once the attempts are used up.
pub fn classify(records: &[PutRecordsResultEntry], count: usize) -> BatchResult {
    if records.len() != count {
        return BatchResult::RetryAll(format!(
            "Kinesis answered {} results for {count} records",
            records.len()
        ));
    }
    BatchResult::Items(records.iter().map(item_status).collect())
}

fn item_status(record: &PutRecordsResultEntry) -> ItemStatus {
    match (record.error_code(), record.sequence_number()) {
        (Some(code), _) => ItemStatus::Failed {
            detail: match record.error_message() {
                Some(message) => format!("{code}: {message}"),
                None => code.to_owned(),
            },
            retriable: true,
        },
        (None, Some(_)) => ItemStatus::Submitted,
        (None, None) => ItemStatus::Failed {
            detail: "neither a sequence number nor an error code in the result".into(),
            retriable: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written() -> PutRecordsResultEntry {
        PutRecordsResultEntry::builder()
            .sequence_number("4959")
            .shard_id("shardId-000000000000")
            .build()
    }

    fn error(code: &str) -> PutRecordsResultEntry {
        PutRecordsResultEntry::builder()
            .error_code(code)
            .error_message("Rate exceeded for shard")
            .build()
    }

    #[test]
    fn results_are_read_per_record() {
        assert_eq!(
            classify(
                &[
                    written(),
                    error("ProvisionedThroughputExceededException"),
                    error("InternalFailure")
                ],
                3
            ),
            BatchResult::Items(vec![
                ItemStatus::Submitted,
                ItemStatus::Failed {
                    detail: "ProvisionedThroughputExceededException: Rate exceeded for shard"
                        .into(),
                    retriable: true
                },
                ItemStatus::Failed {
                    detail: "InternalFailure: Rate exceeded for shard".into(),
                    retriable: true
                },
            ])
        );
    }

    #[test]
    fn a_result_list_of_another_length_retries_everything() {
        assert!(matches!(
            classify(&[written()], 2),
            BatchResult::RetryAll(_)
        ));
        assert!(matches!(
            classify(&[PutRecordsResultEntry::builder().build()], 1),
            BatchResult::Items(items) if matches!(items[0], ItemStatus::Failed { retriable: true, .. })
        ));
    }
}
