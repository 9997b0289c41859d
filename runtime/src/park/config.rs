//! `[fallback]` and `[registry]`: where what cannot be published is parked,
//! and the parked-items registry.

use serde::Deserialize;

use crate::validate::Invalid;

/// `[fallback]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFallback {
    queue_url: Option<String>,
    claim_check_bucket: Option<String>,
    claim_check_prefix: Option<String>,
}

/// The SQS fallback queue, and where envelopes too large for it go.
#[derive(Debug, Clone)]
pub struct FallbackConfig {
    /// The SQS queue URL (`.fifo` for a FIFO queue).
    pub queue_url: String,
    /// S3 bucket for envelopes too large for the queue even compressed (the
    /// claim-check pattern). Without one such records are reported back.
    pub claim_check_bucket: Option<String>,
    /// Key prefix in that bucket.
    pub claim_check_prefix: String,
}

const QUEUE_EXAMPLE: &str = r#"[fallback] queue_url = "https://sqs.eu-central-1.amazonaws.com/123456789012/relay-fallback""#;

impl RawFallback {
    /// Checks the values; `queue_url` and `claim_check_bucket` (from the
    /// environment) win over the file's.
    pub fn validate(
        self,
        queue_url: Option<String>,
        claim_check_bucket: Option<String>,
    ) -> Result<FallbackConfig, Invalid> {
        let queue_url = queue_url.or(self.queue_url).ok_or_else(|| {
            Invalid::new(
                "fallback.queue_url",
                "missing (set it in the file or RELAY_FALLBACK_QUEUE_URL)",
                QUEUE_EXAMPLE,
            )
        })?;
        if !(queue_url.starts_with("http://") || queue_url.starts_with("https://")) {
            return Err(Invalid::new(
                "fallback.queue_url",
                format!("{queue_url:?} is not an SQS queue URL"),
                QUEUE_EXAMPLE,
            ));
        }
        let claim_check_bucket = claim_check_bucket.or(self.claim_check_bucket);
        if let Some(bucket) = &claim_check_bucket {
            if bucket.is_empty() || bucket.contains('/') || bucket.contains("://") {
                return Err(Invalid::new(
                    "fallback.claim_check_bucket",
                    format!("{bucket:?} is not an S3 bucket name"),
                    r#"[fallback] claim_check_bucket = "relay-parked""#,
                ));
            }
        }
        Ok(FallbackConfig {
            queue_url,
            claim_check_bucket,
            claim_check_prefix: self
                .claim_check_prefix
                .unwrap_or_else(|| "relay/parked/".into()),
        })
    }
}

/// `[registry]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegistry {
    table: Option<String>,
}

/// The parked-items registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// The DynamoDB table (partition key `item`, a string).
    pub table: String,
}

impl RawRegistry {
    /// The registry, if a table is named here or in `table` (from the
    /// environment, which wins).
    pub fn validate(
        raw: Option<RawRegistry>,
        table: Option<String>,
    ) -> Result<Option<RegistryConfig>, Invalid> {
        match table.or(raw.and_then(|r| r.table)) {
            None => Ok(None),
            Some(table)
                if !table.is_empty()
                    && table.len() <= 255
                    && table
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) =>
            {
                Ok(Some(RegistryConfig { table }))
            }
            Some(table) => Err(Invalid::new(
                "registry.table",
                format!("{table:?} is not a DynamoDB table name"),
                r#"[registry] table = "relay-parked-items""#,
            )),
        }
    }
}
