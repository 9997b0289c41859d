//! What an HTTP endpoint's answer to a batch of CloudEvents means: 2xx
//! acknowledges all of it; nothing else acknowledges anything.

use crate::sinks::rounds::{BatchResult, ItemStatus};

/// Reads the answer (`status`, `body`) to a request of `count` events.
pub fn classify(status: u16, body: &[u8], count: usize) -> BatchResult {
    match status {
        200..=299 => BatchResult::Items(vec![ItemStatus::Submitted; count]),
        300..=399 => BatchResult::RetryAll(format!(
            "status {status}: the endpoint answered with a redirect, which is no acknowledgement \
             (redirects are not followed; is the url the endpoint itself?)"
        )),
        // The request itself is wrong: the same request cannot succeed.
        400 | 404 | 413 | 422 => BatchResult::Final(format!("status {status}: {}", excerpt(body))),
        401 => BatchResult::Unauthorized(format!("status 401: {}", excerpt(body))),
        // 408, 429, 5xx and anything else: try again.
        _ => BatchResult::RetryAll(format!("status {status}: {}", excerpt(body))),
    }
}

/// The start of an answer's body, for reasons (never the whole body).
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_acknowledges_every_event() {
        for status in [200, 201, 202, 204] {
            assert_eq!(
                classify(status, b"", 2),
                BatchResult::Items(vec![ItemStatus::Submitted; 2])
            );
        }
    }

    #[test]
    fn redirects_are_no_acknowledgement() {
        for status in [301, 302, 303, 307, 308] {
            match classify(status, b"", 1) {
                BatchResult::RetryAll(reason) => assert!(reason.contains("redirect"), "{reason}"),
                other => panic!("{status}: {other:?}"),
            }
        }
    }

    #[test]
    fn refused_requests_are_final_and_401_is_unauthorized() {
        for status in [400, 404, 413, 422] {
            assert_eq!(
                classify(status, b" bad event ", 1),
                BatchResult::Final(format!("status {status}: bad event"))
            );
        }
        assert!(matches!(
            classify(401, b"", 1),
            BatchResult::Unauthorized(_)
        ));
    }

    #[test]
    fn other_answers_retry_everything() {
        for status in [403, 405, 408, 409, 429, 500, 502, 503, 504, 100] {
            assert!(
                matches!(classify(status, b"", 3), BatchResult::RetryAll(_)),
                "{status}"
            );
        }
    }

    #[test]
    fn long_bodies_are_cut() {
        let body = vec![b'x'; 10_000];
        match classify(500, &body, 1) {
            BatchResult::RetryAll(reason) => assert!(reason.len() < 300),
            other => panic!("{other:?}"),
        }
    }
}
