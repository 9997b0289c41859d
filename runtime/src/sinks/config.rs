//! `[sinks.<name>]`: the configured sinks, and which of them a table
//! publishes to.
//!
//! `[bus]` is the Nakadi sink named `nakadi` (the sink every table publishes
//! to unless it names others); each `[sinks.<name>]` section is one more
//! sink, its `kind` saying which:
//!
//! ```toml
//! [sinks.audit]
//! kind = "nakadi"
//! url = "https://audit-nakadi.example.com"
//!
//! [tables.orders]
//! module = "modules/data_change.wasm"
//! sinks = ["nakadi", "audit"]          # fan-out: each event goes to both
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::eventbridge::{EventBridgeConfig, EventBridgeSink, RawEventBridge};
use super::http::{HttpConfig, HttpSink, RawHttp};
use super::kinesis::{KinesisConfig, KinesisSink, RawKinesis, Stream};
use super::nakadi::{NakadiConfig, NakadiSink, RawNakadi};
use super::sns::{RawSns, SnsConfig, SnsSink};
use super::{RetryConfig, Sink};
use crate::validate::Invalid;

/// The name of the sink `[bus]` configures, and the one a table publishes
/// to when it names none.
pub const DEFAULT_SINK: &str = "nakadi";

/// One `[sinks.<name>]` section as written; `kind` picks the sink.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum RawSink {
    /// Nakadi's HTTP publishing API (the fields of `[bus]`).
    Nakadi(RawNakadi),
    /// Amazon EventBridge `PutEvents`.
    Eventbridge(RawEventBridge),
    /// Kinesis Data Streams `PutRecords`.
    Kinesis(RawKinesis),
    /// Amazon SNS `PublishBatch`.
    Sns(RawSns),
    /// CloudEvents 1.0 batches over HTTP.
    Http(RawHttp),
}

/// One sink, checked.
#[derive(Debug, Clone)]
pub enum SinkConfig {
    /// Nakadi.
    Nakadi(NakadiConfig),
    /// Amazon EventBridge.
    EventBridge(EventBridgeConfig),
    /// Kinesis Data Streams.
    Kinesis(KinesisConfig),
    /// Amazon SNS.
    Sns(SnsConfig),
    /// CloudEvents over HTTP.
    Http(HttpConfig),
}

impl SinkConfig {
    /// The kind, as written in `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Nakadi(_) => "nakadi",
            SinkConfig::EventBridge(_) => "eventbridge",
            SinkConfig::Kinesis(_) => "kinesis",
            SinkConfig::Sns(_) => "sns",
            SinkConfig::Http(_) => "http",
        }
    }

    /// The sink, named `name`, publishing with `retry`; AWS sinks build their
    /// clients from `aws`.
    pub fn build(
        &self,
        name: &str,
        retry: RetryConfig,
        aws: &crate::aws::SdkConfig,
    ) -> Result<Box<dyn Sink>, reqwest::Error> {
        Ok(match self {
            SinkConfig::Nakadi(c) => Box::new(NakadiSink::new(c, retry)?.named(name)),
            SinkConfig::EventBridge(c) => Box::new(EventBridgeSink::new(name, c, retry, aws)),
            SinkConfig::Kinesis(c) => Box::new(KinesisSink::new(name, c, retry, aws)),
            SinkConfig::Sns(c) => Box::new(SnsSink::new(name, c, retry, aws)),
            SinkConfig::Http(c) => Box::new(HttpSink::new(name, c, retry)?),
        })
    }

    /// Where it publishes, for `relay check` and logs (no secrets).
    pub fn target(&self) -> String {
        match self {
            SinkConfig::Nakadi(c) => c.url.clone(),
            SinkConfig::EventBridge(c) => {
                format!("bus {} (source {})", c.event_bus_name, c.source)
            }
            SinkConfig::Kinesis(c) => match &c.stream {
                Stream::Name(name) => format!("stream {name}"),
                Stream::Arn(arn) => format!("stream {arn}"),
            },
            SinkConfig::Sns(c) => format!("topic {}", c.topic_arn),
            SinkConfig::Http(c) => c.url.clone(),
        }
    }
}

const SINKS_EXAMPLE: &str = r#"[sinks.audit] kind = "nakadi", url = "https://nakadi.example.com""#;

/// Checks `[bus]` (with its overrides from the environment) and every
/// `[sinks.<name>]`. `[bus]` becomes the sink `nakadi` when it is written or
/// `RELAY_BUS_URL` is set, or when a table needs it (then its checks say
/// what is missing).
pub fn validate_sinks(
    bus: Option<RawNakadi>,
    bus_url: Option<String>,
    token_file: Option<PathBuf>,
    sinks: BTreeMap<String, RawSink>,
    default_needed: bool,
) -> Result<BTreeMap<String, SinkConfig>, Invalid> {
    let mut out = BTreeMap::new();
    if bus.is_some() || bus_url.is_some() || default_needed {
        if sinks.contains_key(DEFAULT_SINK) {
            return Err(Invalid::new(
                format!("sinks.{DEFAULT_SINK}"),
                "is the sink [bus] configures; configure it in one place",
                r#"[bus] url = "https://nakadi.example.com""#,
            ));
        }
        let bus = bus.unwrap_or_default().validate(bus_url, token_file)?;
        out.insert(DEFAULT_SINK.to_owned(), SinkConfig::Nakadi(bus));
    }
    for (name, raw) in sinks {
        if !is_sink_name(&name) {
            return Err(Invalid::new(
                format!("sinks.{name}"),
                "a sink's name is 1 to 64 letters, digits, '-' or '_'",
                SINKS_EXAMPLE,
            ));
        }
        let section = format!("sinks.{name}");
        let config = match raw {
            RawSink::Nakadi(raw) => SinkConfig::Nakadi(raw.validate_as(&section)?),
            RawSink::Eventbridge(raw) => SinkConfig::EventBridge(raw.validate(&section)?),
            RawSink::Kinesis(raw) => SinkConfig::Kinesis(raw.validate(&section)?),
            RawSink::Sns(raw) => SinkConfig::Sns(raw.validate(&section)?),
            RawSink::Http(raw) => SinkConfig::Http(raw.validate(&section)?),
        };
        out.insert(name, config);
    }
    Ok(out)
}

fn is_sink_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks a table's `sinks`: at least one, each configured, none twice.
/// Without `sinks` a table publishes to [`DEFAULT_SINK`].
pub fn validate_table_sinks(
    table: &str,
    named: Option<Vec<String>>,
    configured: &BTreeMap<String, SinkConfig>,
) -> Result<Vec<String>, Invalid> {
    let field = format!("tables.{table}.sinks");
    let example = r#"sinks = ["nakadi", "audit"]"#;
    let names = named.unwrap_or_else(|| vec![DEFAULT_SINK.to_owned()]);
    if names.is_empty() {
        return Err(Invalid::new(
            field,
            "is empty, so the table's events would go nowhere",
            example,
        ));
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(Invalid::new(
                field,
                format!("names {name:?} twice (each event would be published twice)"),
                example,
            ));
        }
        if !configured.contains_key(name) {
            let known: Vec<&str> = configured.keys().map(String::as_str).collect();
            return Err(Invalid::new(
                field,
                format!(
                    "names {name:?}, which is not configured (configured: {}); add [sinks.{name}]",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
                example,
            ));
        }
    }
    Ok(names)
}

/// A sink's `request_timeout_ms` (default 5,000), which must be above zero.
pub(crate) fn request_timeout(field: String, ms: Option<u64>) -> Result<Duration, Invalid> {
    match ms.unwrap_or(5_000) {
        0 => Err(Invalid::new(
            field,
            "must be above zero",
            "request_timeout_ms = 5000",
        )),
        ms => Ok(Duration::from_millis(ms)),
    }
}

/// A sink's byte limit (`default` when unset), between 1 and `max`, the
/// service's own limit.
pub(crate) fn byte_limit(
    field: String,
    value: Option<usize>,
    default: usize,
    max: usize,
    service: &str,
    example: &'static str,
) -> Result<usize, Invalid> {
    let value = value.unwrap_or(default);
    if value == 0 || value > max {
        return Err(Invalid::new(
            field,
            format!("must be between 1 and {max} ({service}'s limit)"),
            example,
        ));
    }
    Ok(value)
}
