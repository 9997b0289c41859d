//! The section of a Kinesis sink: the stream and the record limits.

use std::time::Duration;

use serde::Deserialize;

use crate::sinks::config::{byte_limit, request_timeout};
use crate::validate::Invalid;

/// Most records in one `PutRecords` request: 500 (Kinesis API Reference,
/// PutRecords: "Each PutRecords request can support up to 500 records").
pub const MAX_RECORDS: usize = 500;

/// Longest partition key: 256 Unicode characters, at least 1
/// (`PutRecordsRequestEntry.PartitionKey`).
pub const MAX_PARTITION_KEY_CHARS: usize = 256;

/// The default of `max_record_bytes`: 1 MiB, partition key and data
/// together, the size every stream takes (a stream's `MaxRecordSize`
/// defaults to 1 MiB).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

/// The default of `batch_max_bytes`: 5 MiB per request including partition
/// keys, the long-standing PutRecords limit.
pub const DEFAULT_BATCH_MAX_BYTES: usize = 5 << 20;

/// The highest `max_record_bytes` and `batch_max_bytes`: 10 MiB, "each
/// record in the request can be as large as 10 MiB, up to a limit of 10 MiB
/// for the entire request, including partition keys" (aws-sdk-kinesis 1.130
/// `PutRecords` documentation, after Kinesis raised its record size).
pub const MAX_BYTES: usize = 10 << 20;

/// A Kinesis sink's section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKinesis {
    stream_name: Option<String>,
    stream_arn: Option<String>,
    request_timeout_ms: Option<u64>,
    max_record_bytes: Option<usize>,
    batch_max_bytes: Option<usize>,
}

/// Which stream records go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stream {
    /// By name, in the SDK config's region and account.
    Name(String),
    /// By ARN.
    Arn(String),
}

/// A Kinesis sink's settings, checked.
#[derive(Debug, Clone)]
pub struct KinesisConfig {
    /// The stream.
    pub stream: Stream,
    /// Timeout of one request (default 5 s).
    pub request_timeout: Duration,
    /// Largest record, partition key and data (default
    /// [`DEFAULT_MAX_RECORD_BYTES`]); a larger one is parked.
    pub max_record_bytes: usize,
    /// Most bytes in one request (default [`DEFAULT_BATCH_MAX_BYTES`]).
    pub batch_max_bytes: usize,
}

const STREAM_EXAMPLE: &str = r#"stream_name = "orders""#;

impl RawKinesis {
    /// Checks the values; `section` (`sinks.orders`) prefixes the keys in
    /// errors.
    pub fn validate(self, section: &str) -> Result<KinesisConfig, Invalid> {
        let field = |name: &str| format!("{section}.{name}");
        let stream = match (self.stream_name, self.stream_arn) {
            (Some(_), Some(_)) => {
                return Err(Invalid::new(
                    field("stream_name"),
                    "set stream_name or stream_arn, not both",
                    STREAM_EXAMPLE,
                ))
            }
            (None, None) => {
                return Err(Invalid::new(
                    field("stream_name"),
                    "missing (set stream_name or stream_arn)",
                    STREAM_EXAMPLE,
                ))
            }
            (Some(name), None) if name.trim().is_empty() => {
                return Err(Invalid::new(
                    field("stream_name"),
                    "is empty",
                    STREAM_EXAMPLE,
                ))
            }
            (Some(name), None) => Stream::Name(name),
            (None, Some(arn)) if !(arn.starts_with("arn:") && arn.contains(":stream/")) => {
                return Err(Invalid::new(
                    field("stream_arn"),
                    format!("{arn:?} is not a Kinesis stream ARN"),
                    r#"stream_arn = "arn:aws:kinesis:eu-central-1:123456789012:stream/orders""#,
                ))
            }
            (None, Some(arn)) => Stream::Arn(arn),
        };
        let request_timeout =
            request_timeout(field("request_timeout_ms"), self.request_timeout_ms)?;
        let max_record_bytes = byte_limit(
            field("max_record_bytes"),
            self.max_record_bytes,
            DEFAULT_MAX_RECORD_BYTES,
            MAX_BYTES,
            "Kinesis",
            "max_record_bytes = 1048576",
        )?;
        let batch_max_bytes = byte_limit(
            field("batch_max_bytes"),
            self.batch_max_bytes,
            DEFAULT_BATCH_MAX_BYTES,
            MAX_BYTES,
            "Kinesis",
            "batch_max_bytes = 5242880",
        )?;
        Ok(KinesisConfig {
            stream,
            request_timeout,
            max_record_bytes,
            batch_max_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawKinesis {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults_apply() {
        let config = raw(r#"stream_name = "orders""#)
            .validate("sinks.k")
            .unwrap();
        assert_eq!(config.stream, Stream::Name("orders".into()));
        assert_eq!(config.max_record_bytes, 1 << 20);
        assert_eq!(config.batch_max_bytes, 5 << 20);
        assert_eq!(config.request_timeout, Duration::from_secs(5));
    }

    #[test]
    fn validate_rejects_neither_or_both_streams() {
        assert_eq!(
            raw("").validate("sinks.k").unwrap_err().field,
            "sinks.k.stream_name"
        );
        let both = "stream_name = \"a\"\nstream_arn = \"arn:aws:kinesis:r:1:stream/a\"";
        assert_eq!(
            raw(both).validate("sinks.k").unwrap_err().field,
            "sinks.k.stream_name"
        );
        let config = raw(r#"stream_arn = "arn:aws:kinesis:r:1:stream/a""#)
            .validate("sinks.k")
            .unwrap();
        assert_eq!(
            config.stream,
            Stream::Arn("arn:aws:kinesis:r:1:stream/a".into())
        );
        assert_eq!(
            raw(r#"stream_arn = "orders""#)
                .validate("sinks.k")
                .unwrap_err()
                .field,
            "sinks.k.stream_arn"
        );
    }

    #[test]
    fn validate_rejects_limits_over_kinesiss() {
        let error = raw("stream_name = \"a\"\nbatch_max_bytes = 20000000")
            .validate("sinks.k")
            .unwrap_err();
        assert_eq!(error.field, "sinks.k.batch_max_bytes");
        let error = raw("stream_name = \"a\"\nmax_record_bytes = 0")
            .validate("sinks.k")
            .unwrap_err();
        assert_eq!(error.field, "sinks.k.max_record_bytes");
    }
}
