//! The section of an EventBridge sink: the bus, the events' `Source`, and
//! the request limits.

use std::time::Duration;

use serde::Deserialize;

use crate::sinks::config::{byte_limit, request_timeout};
use crate::validate::Invalid;

/// Most entries in one `PutEvents` request: 10 (EventBridge API Reference,
/// PutEvents, `Entries`: "Array Members: Minimum number of 1 item. Maximum
/// number of 10 items").
pub const MAX_ENTRIES: usize = 10;

/// The default of `batch_max_bytes`: entries of one request must total
/// "less than 256KB" (EventBridge User Guide, "Calculating PutEvents event
/// entry size"; the limit every region has had). Kept a little under
/// 256 KiB because the guide does not say which kilobyte it means.
pub const DEFAULT_BATCH_MAX_BYTES: usize = 256_000;

/// The highest `batch_max_bytes`: the current API documentation
/// (aws-sdk-eventbridge 1.127 `PutEvents`) says the total entry size "must
/// be less than 1MB"; raise the default only where the bus takes it.
pub const MAX_BATCH_MAX_BYTES: usize = 1_000_000;

/// An EventBridge sink's section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEventBridge {
    source: Option<String>,
    event_bus_name: Option<String>,
    request_timeout_ms: Option<u64>,
    batch_max_bytes: Option<usize>,
}

/// An EventBridge sink's settings, checked.
#[derive(Debug, Clone)]
pub struct EventBridgeConfig {
    /// The `Source` of every entry.
    pub source: String,
    /// The bus's name or ARN (default `default`).
    pub event_bus_name: String,
    /// Timeout of one request (default 5 s).
    pub request_timeout: Duration,
    /// Most entry bytes in one request (default [`DEFAULT_BATCH_MAX_BYTES`]);
    /// an entry larger than this on its own is parked.
    pub batch_max_bytes: usize,
}

const SOURCE_EXAMPLE: &str = r#"source = "com.example.orders""#;

impl RawEventBridge {
    /// Checks the values; `section` (`sinks.orders`) prefixes the keys in
    /// errors.
    pub fn validate(self, section: &str) -> Result<EventBridgeConfig, Invalid> {
        let field = |name: &str| format!("{section}.{name}");
        let source = self
            .source
            .ok_or_else(|| Invalid::new(field("source"), "missing", SOURCE_EXAMPLE))?;
        if source.trim().is_empty() {
            return Err(Invalid::new(field("source"), "is empty", SOURCE_EXAMPLE));
        }
        if source.starts_with("aws.") {
            return Err(Invalid::new(
                field("source"),
                format!("{source:?}: sources starting with \"aws.\" are reserved for AWS"),
                SOURCE_EXAMPLE,
            ));
        }
        let event_bus_name = self.event_bus_name.unwrap_or_else(|| "default".into());
        if event_bus_name.trim().is_empty() {
            return Err(Invalid::new(
                field("event_bus_name"),
                "is empty",
                r#"event_bus_name = "orders""#,
            ));
        }
        let request_timeout =
            request_timeout(field("request_timeout_ms"), self.request_timeout_ms)?;
        let batch_max_bytes = byte_limit(
            field("batch_max_bytes"),
            self.batch_max_bytes,
            DEFAULT_BATCH_MAX_BYTES,
            MAX_BATCH_MAX_BYTES,
            "EventBridge",
            "batch_max_bytes = 256000",
        )?;
        Ok(EventBridgeConfig {
            source,
            event_bus_name,
            request_timeout,
            batch_max_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawEventBridge {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults_apply() {
        let config = raw(r#"source = "com.example.orders""#)
            .validate("sinks.eb")
            .unwrap();
        assert_eq!(config.event_bus_name, "default");
        assert_eq!(config.request_timeout, Duration::from_millis(5_000));
        assert_eq!(config.batch_max_bytes, DEFAULT_BATCH_MAX_BYTES);
    }

    #[test]
    fn validate_rejects_missing_or_reserved_source() {
        let error = raw("").validate("sinks.eb").unwrap_err();
        assert_eq!(error.field, "sinks.eb.source");
        let error = raw(r#"source = "aws.s3""#)
            .validate("sinks.eb")
            .unwrap_err();
        assert_eq!(error.field, "sinks.eb.source");
    }

    #[test]
    fn validate_rejects_limits_over_eventbridges() {
        let error = raw("source = \"x\"\nbatch_max_bytes = 2000000")
            .validate("sinks.eb")
            .unwrap_err();
        assert_eq!(error.field, "sinks.eb.batch_max_bytes");
        assert!(toml::from_str::<RawEventBridge>("kind = \"eventbridge\"").is_err());
    }
}
