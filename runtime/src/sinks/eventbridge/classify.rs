//! What EventBridge's answer to `PutEvents` means per entry. The answer
//! lists one result per entry, in request order: an `EventId` when it was
//! accepted, an `ErrorCode` when not.

use aws_sdk_eventbridge::types::PutEventsResultEntry;

use crate::sinks::rounds::{BatchResult, ItemStatus};

/// Per-entry error codes worth another try. The API documents
/// `InternalFailure` and `ThrottlingException` as retryable; the other two
/// are the service's generic transient faults.
const RETRIABLE: &[&str] = &[
    "ThrottlingException",
    "InternalFailure",
    "InternalException",
    "ServiceUnavailable",
];

/// Reads the result entries of a request of `count` entries.
pub fn classify(entries: &[PutEventsResultEntry], count: usize) -> BatchResult {
    if entries.len() != count {
        return BatchResult::RetryAll(format!(
            "EventBridge answered {} results for {count} entries",
            entries.len()
        ));
    }
    BatchResult::Items(entries.iter().map(item_status).collect())
}

fn item_status(entry: &PutEventsResultEntry) -> ItemStatus {
    match (entry.error_code(), entry.event_id()) {
        (Some(code), _) => ItemStatus::Failed {
            detail: match entry.error_message() {
                Some(message) => format!("{code}: {message}"),
                None => code.to_owned(),
            },
            retriable: RETRIABLE.contains(&code),
        },
        (None, Some(_)) => ItemStatus::Submitted,
        (None, None) => ItemStatus::Failed {
            detail: "neither an event id nor an error code in the result".into(),
            retriable: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> PutEventsResultEntry {
        PutEventsResultEntry::builder().event_id("id-1").build()
    }

    fn error(code: &str) -> PutEventsResultEntry {
        PutEventsResultEntry::builder()
            .error_code(code)
            .error_message("why")
            .build()
    }

    #[test]
    fn results_are_read_per_entry() {
        let entries = [
            ok(),
            error("ThrottlingException"),
            error("InternalFailure"),
            error("MalformedDetail"),
            error("NotAuthorizedForSourceException"),
            PutEventsResultEntry::builder().build(),
        ];
        assert_eq!(
            classify(&entries, 6),
            BatchResult::Items(vec![
                ItemStatus::Submitted,
                ItemStatus::Failed {
                    detail: "ThrottlingException: why".into(),
                    retriable: true
                },
                ItemStatus::Failed {
                    detail: "InternalFailure: why".into(),
                    retriable: true
                },
                ItemStatus::Failed {
                    detail: "MalformedDetail: why".into(),
                    retriable: false
                },
                ItemStatus::Failed {
                    detail: "NotAuthorizedForSourceException: why".into(),
                    retriable: false
                },
                ItemStatus::Failed {
                    detail: "neither an event id nor an error code in the result".into(),
                    retriable: true
                },
            ])
        );
    }

    #[test]
    fn a_result_list_of_another_length_retries_everything() {
        assert!(matches!(classify(&[ok()], 2), BatchResult::RetryAll(_)));
    }
}
