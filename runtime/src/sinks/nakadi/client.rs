//! The HTTP side of Nakadi's publishing API: one request per event type and
//! batch, the bearer token, the event type as a path segment.

use std::io::Write as _;
use std::time::Duration;

use serde_json::value::RawValue;

use super::classify::classify;
use super::NakadiConfig;
use crate::sinks::chain;
use crate::sinks::rounds::{BatchResult, ItemStatus};
use crate::sinks::token::TokenFile;

/// A Nakadi client for one bus.
pub struct NakadiClient {
    http: reqwest::Client,
    base: String,
    token: Option<TokenFile>,
    gzip: bool,
    timeout: Duration,
}

impl NakadiClient {
    /// Builds the client (rustls, no proxies from the environment).
    pub fn new(config: &NakadiConfig) -> Result<Self, reqwest::Error> {
        let http = crate::sinks::http_client()?;
        Ok(NakadiClient {
            http,
            base: config.url.clone(),
            token: config.token_file.clone().map(TokenFile::new),
            gzip: config.gzip,
            timeout: config.request_timeout,
        })
    }

    /// Forgets the cached bearer token: the next request reads the token
    /// file again (after the bus refused the token).
    pub fn forget_token(&self) {
        if let Some(token) = &self.token {
            token.forget();
        }
    }

    /// The configured per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Posts `bodies` (JSON objects) as one batch to `event_type`.
    pub async fn publish(
        &self,
        event_type: &str,
        bodies: &[&RawValue],
        flow_id: &str,
        timeout: Duration,
    ) -> BatchResult {
        let mut payload = Vec::with_capacity(bodies.iter().map(|b| b.get().len() + 1).sum());
        payload.push(b'[');
        for (i, body) in bodies.iter().enumerate() {
            if i > 0 {
                payload.push(b',');
            }
            payload.extend_from_slice(body.get().as_bytes());
        }
        payload.push(b']');
        let Some(segment) = path_segment(event_type) else {
            let detail = format!("the event type {event_type:?} cannot be put into a URL path");
            return BatchResult::Items(vec![
                ItemStatus::Failed {
                    detail,
                    retriable: false,
                };
                bodies.len()
            ]);
        };
        let mut request = self
            .http
            .post(format!("{}/event-types/{segment}/events", self.base))
            .timeout(timeout)
            .header("Content-Type", "application/json")
            .header("X-Flow-Id", flow_id);
        if self.gzip {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            if encoder.write_all(&payload).is_ok() {
                if let Ok(compressed) = encoder.finish() {
                    payload = compressed;
                    request = request.header("Content-Encoding", "gzip");
                }
            }
        }
        if let Some(token) = &self.token {
            match token.read() {
                Ok(token) => request = request.bearer_auth(token),
                Err(e) => return BatchResult::RetryAll(e),
            }
        }
        let response = match request.body(payload).send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() => {
                return BatchResult::RetryAll(format!(
                    "no answer within {} ms (the outcome is unknown; resent with the same eids)",
                    timeout.as_millis()
                ))
            }
            Err(e) => return BatchResult::RetryAll(format!("cannot reach the bus: {}", chain(&e))),
        };
        let status = response.status().as_u16();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) => {
                return BatchResult::RetryAll(format!(
                    "status {status} but the answer broke off: {}",
                    chain(&e)
                ))
            }
        };
        classify(status, &body, bodies.len())
    }
}

/// `text` as one URL path segment, every byte but letters, digits, `-`, `_`
/// and `.` percent-encoded, so that no event type name can leave
/// `/event-types/{name}/events`; `None` for the names no encoding keeps in
/// place (empty, `.` and `..`: URL parsers read `%2E%2E` as `..` too).
/// Transforms' event types are checked against Nakadi's pattern long before
/// they get here; this holds for whatever reaches the publisher.
pub fn path_segment(text: &str) -> Option<String> {
    if matches!(text, "" | "." | "..") {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_stay_one_path_segment() {
        let segment = |name| path_segment(name).unwrap();
        assert_eq!(
            segment("order.status-changed_v2"),
            "order.status-changed_v2"
        );
        assert_eq!(segment("a/../../admin?q="), "a%2F..%2F..%2Fadmin%3Fq%3D");
        assert_eq!(segment("a b#c%"), "a%20b%23c%25");
        assert_eq!(segment("é"), "%C3%A9");
        for refused in ["", ".", ".."] {
            assert_eq!(path_segment(refused), None, "{refused:?}");
        }
        // Whatever the name, the URL's path keeps its shape.
        for name in [
            "a/../../admin?q=",
            "...",
            "../x",
            "%2e%2e",
            "%2E.",
            "a\\b",
            "a#b",
        ] {
            let url = reqwest::Url::parse(&format!(
                "http://bus.invalid/base/event-types/{}/events",
                segment(name)
            ))
            .unwrap();
            let segments: Vec<_> = url.path_segments().unwrap().collect();
            assert_eq!(segments.len(), 4, "{name}: {url}");
            assert_eq!(segments[1], "event-types", "{name}: {url}");
            assert_eq!(segments[3], "events", "{name}: {url}");
            assert_eq!(url.query(), None, "{name}: {url}");
        }
    }
}
