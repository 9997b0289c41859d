//! What Nakadi's answer to a publishing request means for each event.

use serde::Deserialize;

use crate::sinks::rounds::{BatchResult, ItemStatus};

#[derive(Deserialize)]
struct ItemResponse {
    #[serde(default)]
    publishing_status: String,
    #[serde(default)]
    step: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

/// Reads Nakadi's answer to a request of `count` events.
pub fn classify(status: u16, body: &[u8], count: usize) -> BatchResult {
    match status {
        200 => BatchResult::Items(vec![ItemStatus::Submitted; count]),
        300..=399 => BatchResult::RetryAll(format!(
            "status {status}: the bus answered with a redirect, which is no acknowledgement \
             (is bus.url the Nakadi API itself, not a login page or proxy?)"
        )),
        207 | 422 => match serde_json::from_slice::<Vec<ItemResponse>>(body) {
            Ok(items) if items.len() == count => BatchResult::Items(
                items
                    .into_iter()
                    .map(|item| item_status(status, item))
                    .collect(),
            ),
            Ok(items) => BatchResult::RetryAll(format!(
                "status {status} with {} item results for {count} events",
                items.len()
            )),
            Err(e) => {
                BatchResult::RetryAll(format!("status {status} with an unreadable body: {e}"))
            }
        },
        // What nakadi clients treat as final: the request itself is wrong.
        400 | 404 | 413 => BatchResult::Final(format!("status {status}: {}", problem(body))),
        401 => BatchResult::Unauthorized(format!("status 401: {}", problem(body))),
        // 403 (a producer blocked for a while), 429, 5xx and anything else: retry.
        _ => BatchResult::RetryAll(format!("status {status}: {}", problem(body))),
    }
}

fn item_status(status: u16, item: ItemResponse) -> ItemStatus {
    match item.publishing_status.as_str() {
        "submitted" => ItemStatus::Submitted,
        "aborted" => ItemStatus::Resend,
        _ => {
            let step = item.step.unwrap_or_else(|| "none".into());
            let detail = item
                .detail
                .unwrap_or_else(|| format!("{} at step {step}", item.publishing_status));
            // A 422 rejects the batch as invalid; within a 207 only a failure
            // while publishing (a broker hiccup) is worth another try.
            let retriable = status == 207 && matches!(step.as_str(), "publishing" | "none");
            ItemStatus::Failed { detail, retriable }
        }
    }
}

/// A short readable form of an error body (Nakadi sends problem JSON).
fn problem(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Problem {
        title: Option<String>,
        detail: Option<String>,
    }
    match serde_json::from_slice::<Problem>(body) {
        Ok(Problem {
            title: Some(t),
            detail: Some(d),
        }) => format!("{t}: {d}"),
        Ok(Problem { title: Some(t), .. }) => t,
        _ => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_means_every_event_submitted() {
        assert_eq!(
            classify(200, b"", 2),
            BatchResult::Items(vec![ItemStatus::Submitted, ItemStatus::Submitted])
        );
    }

    #[test]
    fn partial_failure_is_read_per_item() {
        let body = br#"[
            {"eid":"a","publishing_status":"submitted","step":"none"},
            {"eid":"b","publishing_status":"failed","step":"publishing","detail":"broker down"},
            {"eid":"c","publishing_status":"aborted","step":"none"},
            {"eid":"d","publishing_status":"failed","step":"partitioning","detail":"no key"}
        ]"#;
        assert_eq!(
            classify(207, body, 4),
            BatchResult::Items(vec![
                ItemStatus::Submitted,
                ItemStatus::Failed {
                    detail: "broker down".into(),
                    retriable: true
                },
                ItemStatus::Resend,
                ItemStatus::Failed {
                    detail: "no key".into(),
                    retriable: false
                },
            ])
        );
    }

    #[test]
    fn unprocessable_batch_parks_the_invalid_and_resends_the_rest() {
        let body = br##"[
            {"eid":"a","publishing_status":"aborted","step":"validating"},
            {"eid":"b","publishing_status":"failed","step":"validating","detail":"#/data_op: bad"}
        ]"##;
        assert_eq!(
            classify(422, body, 2),
            BatchResult::Items(vec![
                ItemStatus::Resend,
                ItemStatus::Failed {
                    detail: "#/data_op: bad".into(),
                    retriable: false
                },
            ])
        );
    }

    #[test]
    fn final_answers_are_not_retried() {
        let body = br#"{"title":"Not Found","detail":"EventType \"x\" does not exist."}"#;
        assert_eq!(
            classify(404, body, 2),
            BatchResult::Final("status 404: Not Found: EventType \"x\" does not exist.".into())
        );
        assert!(matches!(classify(400, b"", 1), BatchResult::Final(_)));
        assert!(matches!(classify(413, b"", 1), BatchResult::Final(_)));
        assert!(matches!(
            classify(401, b"", 1),
            BatchResult::Unauthorized(_)
        ));
    }

    #[test]
    fn other_statuses_retry_everything() {
        for status in [500, 502, 503, 504, 429, 403] {
            assert!(matches!(
                classify(
                    status,
                    br#"{"title":"Forbidden","detail":"Producer is blocked"}"#,
                    3
                ),
                BatchResult::RetryAll(_)
            ));
        }
        match classify(
            403,
            br#"{"title":"Forbidden","detail":"Producer is blocked"}"#,
            1,
        ) {
            BatchResult::RetryAll(reason) => {
                assert_eq!(reason, "status 403: Forbidden: Producer is blocked")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn redirects_are_no_acknowledgement() {
        for status in [301, 302, 303, 307, 308] {
            match classify(status, b"", 2) {
                BatchResult::RetryAll(reason) => assert!(reason.contains("redirect"), "{reason}"),
                other => panic!("{status}: {other:?}"),
            }
        }
    }

    #[test]
    fn mismatched_item_list_retries_everything() {
        let body = br#"[{"eid":"a","publishing_status":"submitted"}]"#;
        assert!(matches!(classify(207, body, 2), BatchResult::RetryAll(_)));
        assert!(matches!(
            classify(207, b"nope", 2),
            BatchResult::RetryAll(_)
        ));
    }
}
