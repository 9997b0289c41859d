//! What SNS's answer to `PublishBatch` means per message: each entry's `Id`
//! is in `Successful` or in `Failed`; a failure with `SenderFault` is the
//! request's own (parked), any other may pass on another try.

use aws_sdk_sns::types::{BatchResultErrorEntry, PublishBatchResultEntry};

use crate::sinks::rounds::{BatchResult, ItemStatus};

/// Reads the answer to a request of `count` entries whose `Id`s are their
/// positions (`"0"`, `"1"`, ...).
pub fn classify(
    successful: &[PublishBatchResultEntry],
    failed: &[BatchResultErrorEntry],
    count: usize,
) -> BatchResult {
    let mut items: Vec<Option<ItemStatus>> = vec![None; count];
    let position = |id: Option<&str>| {
        id.and_then(|id| id.parse::<usize>().ok())
            .filter(|&i| i < count)
    };
    for entry in successful {
        if let Some(i) = position(entry.id()) {
            items[i] = Some(ItemStatus::Submitted);
        }
    }
    for entry in failed {
        if let Some(i) = position(Some(entry.id())) {
            let detail = match entry.message() {
                Some(message) => format!("{}: {message}", entry.code()),
                None => entry.code().to_owned(),
            };
            items[i] = Some(ItemStatus::Failed {
                detail,
                retriable: !entry.sender_fault(),
            });
        }
    }
    BatchResult::Items(
        items
            .into_iter()
            .map(|item| {
                item.unwrap_or_else(|| ItemStatus::Failed {
                    detail: "SNS answered no result for this message".into(),
                    retriable: true,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(id: &str) -> PublishBatchResultEntry {
        PublishBatchResultEntry::builder()
            .id(id)
            .message_id("m")
            .build()
    }

    fn failed(id: &str, code: &str, sender_fault: bool) -> BatchResultErrorEntry {
        BatchResultErrorEntry::builder()
            .id(id)
            .code(code)
            .message("why")
            .sender_fault(sender_fault)
            .build()
            .unwrap()
    }

    #[test]
    fn results_are_read_per_entry_by_id() {
        let result = classify(
            &[ok("2"), ok("0")],
            &[
                failed("1", "InvalidParameter", true),
                failed("3", "InternalError", false),
            ],
            5,
        );
        assert_eq!(
            result,
            BatchResult::Items(vec![
                ItemStatus::Submitted,
                ItemStatus::Failed {
                    detail: "InvalidParameter: why".into(),
                    retriable: false
                },
                ItemStatus::Submitted,
                ItemStatus::Failed {
                    detail: "InternalError: why".into(),
                    retriable: true
                },
                ItemStatus::Failed {
                    detail: "SNS answered no result for this message".into(),
                    retriable: true
                },
            ])
        );
    }

    #[test]
    fn unknown_ids_are_ignored() {
        assert_eq!(
            classify(&[ok("7"), ok("x")], &[], 1),
            BatchResult::Items(vec![ItemStatus::Failed {
                detail: "SNS answered no result for this message".into(),
                retriable: true
            }])
        );
    }
}
