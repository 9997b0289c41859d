//! The section of an SNS sink: the topic and the size limit.

use std::time::Duration;

use serde::Deserialize;

use crate::sinks::config::{byte_limit, request_timeout};
use crate::validate::Invalid;

/// Most messages in one `PublishBatch` request: 10 (SNS API Reference,
/// PublishBatch: "Publishes up to 10 messages to the specified topic in a
/// single batch").
pub const MAX_ENTRIES: usize = 10;

/// The default of `batch_max_bytes`: "the maximum allowed individual
/// message size and the maximum total payload size (the sum of the
/// individual lengths of all of the batched messages) are both 256 KiB
/// (262,144 bytes)" by default, message attributes included (SNS API
/// Reference, PublishBatch).
pub const DEFAULT_BATCH_MAX_BYTES: usize = 262_144;

/// The highest `batch_max_bytes`: a topic's `MaximumMessageSize` "supports
/// values up to 1 MiB (1,048,576 bytes)", and the whole batch must stay
/// within it (aws-sdk-sns 1.121 `PublishBatch` documentation). Raise the
/// default only for topics configured so.
pub const MAX_BATCH_MAX_BYTES: usize = 1_048_576;

/// An SNS sink's section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSns {
    topic_arn: Option<String>,
    request_timeout_ms: Option<u64>,
    batch_max_bytes: Option<usize>,
}

/// An SNS sink's settings, checked.
#[derive(Debug, Clone)]
pub struct SnsConfig {
    /// The topic.
    pub topic_arn: String,
    /// Whether the topic is FIFO (its ARN ends with `.fifo`).
    pub fifo: bool,
    /// Timeout of one request (default 5 s).
    pub request_timeout: Duration,
    /// Most bytes per message and per request, message attributes included
    /// (default [`DEFAULT_BATCH_MAX_BYTES`]); a larger message is parked.
    pub batch_max_bytes: usize,
}

const TOPIC_EXAMPLE: &str = r#"topic_arn = "arn:aws:sns:eu-central-1:123456789012:orders""#;

impl RawSns {
    /// Checks the values; `section` (`sinks.orders`) prefixes the keys in
    /// errors.
    pub fn validate(self, section: &str) -> Result<SnsConfig, Invalid> {
        let field = |name: &str| format!("{section}.{name}");
        let topic_arn = self
            .topic_arn
            .ok_or_else(|| Invalid::new(field("topic_arn"), "missing", TOPIC_EXAMPLE))?;
        if !(topic_arn.starts_with("arn:") && topic_arn.contains(":sns:")) {
            return Err(Invalid::new(
                field("topic_arn"),
                format!("{topic_arn:?} is not an SNS topic ARN"),
                TOPIC_EXAMPLE,
            ));
        }
        let request_timeout =
            request_timeout(field("request_timeout_ms"), self.request_timeout_ms)?;
        let batch_max_bytes = byte_limit(
            field("batch_max_bytes"),
            self.batch_max_bytes,
            DEFAULT_BATCH_MAX_BYTES,
            MAX_BATCH_MAX_BYTES,
            "SNS",
            "batch_max_bytes = 262144",
        )?;
        Ok(SnsConfig {
            fifo: topic_arn.ends_with(".fifo"),
            topic_arn,
            request_timeout,
            batch_max_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawSns {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn fifo_is_read_from_the_arn() {
        let config = raw(r#"topic_arn = "arn:aws:sns:r:1:orders.fifo""#)
            .validate("sinks.s")
            .unwrap();
        assert!(config.fifo);
        assert_eq!(config.batch_max_bytes, 262_144);
        let config = raw(r#"topic_arn = "arn:aws:sns:r:1:orders""#)
            .validate("sinks.s")
            .unwrap();
        assert!(!config.fifo);
    }

    #[test]
    fn validate_rejects_missing_or_bad_topic_and_limits() {
        assert_eq!(
            raw("").validate("sinks.s").unwrap_err().field,
            "sinks.s.topic_arn"
        );
        assert_eq!(
            raw(r#"topic_arn = "orders""#)
                .validate("sinks.s")
                .unwrap_err()
                .field,
            "sinks.s.topic_arn"
        );
        let error = raw("topic_arn = \"arn:aws:sns:r:1:t\"\nbatch_max_bytes = 2000000")
            .validate("sinks.s")
            .unwrap_err();
        assert_eq!(error.field, "sinks.s.batch_max_bytes");
        assert!(toml::from_str::<RawSns>("kind = \"sns\"").is_err());
    }
}
