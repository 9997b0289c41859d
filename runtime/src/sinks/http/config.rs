//! `[sinks.NAME]` of an HTTP sink: where CloudEvents batches are posted and
//! how requests are made.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use crate::validate::Invalid;

/// The HTTP sink's section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    url: Option<String>,
    source: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    token_file: Option<PathBuf>,
    request_timeout_ms: Option<u64>,
    batch_max_events: Option<usize>,
    batch_max_bytes: Option<usize>,
    max_event_bytes: Option<usize>,
}

/// The HTTP sink's settings, checked.
#[derive(Clone)]
pub struct HttpConfig {
    /// Where batches are posted (http or https).
    pub url: String,
    /// The CloudEvents `source` of every event (a URI-reference).
    pub source: String,
    /// Headers sent with every request; their values are never logged.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// File holding the bearer token, re-read when it changes.
    pub token_file: Option<PathBuf>,
    /// Timeout of one request (default 5 s).
    pub request_timeout: Duration,
    /// Most events in one request (default 100).
    pub batch_max_events: usize,
    /// Most bytes of CloudEvents in one request (default 1 MiB).
    pub batch_max_bytes: usize,
    /// Largest CloudEvent sent (default 1 MiB); a larger one is parked.
    pub max_event_bytes: usize,
    /// The section, for reasons (`sinks.orders`).
    pub section: String,
}

impl std::fmt::Debug for HttpConfig {
    /// Header values may be secrets: only their names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("url", &self.url)
            .field("source", &self.source)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("token_file", &self.token_file)
            .field("request_timeout", &self.request_timeout)
            .field("batch_max_events", &self.batch_max_events)
            .field("batch_max_bytes", &self.batch_max_bytes)
            .field("max_event_bytes", &self.max_event_bytes)
            .finish()
    }
}

const URL_EXAMPLE: &str = r#"url = "https://events.example.com/ingest""#;
const SOURCE_EXAMPLE: &str = r#"source = "/relay/orders""#;
const HEADERS_EXAMPLE: &str = r#"headers = { "X-Team" = "orders" }"#;

/// Headers the sink sets itself.
const OWN_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
];

impl RawHttp {
    /// Checks the values; `section` (`sinks.orders`) prefixes the keys in
    /// errors.
    pub fn validate(self, section: &str) -> Result<HttpConfig, Invalid> {
        let field = |name: &str| format!("{section}.{name}");
        let url = self
            .url
            .ok_or_else(|| Invalid::new(field("url"), "missing", URL_EXAMPLE))?;
        match reqwest::Url::parse(&url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {}
            _ => {
                return Err(Invalid::new(
                    field("url"),
                    format!("{url:?} is not an http(s) URL"),
                    URL_EXAMPLE,
                ))
            }
        }
        let source = self
            .source
            .ok_or_else(|| Invalid::new(field("source"), "missing", SOURCE_EXAMPLE))?;
        if source.is_empty() || source.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Invalid::new(
                field("source"),
                format!("{source:?} is not a URI-reference (empty, or with spaces)"),
                SOURCE_EXAMPLE,
            ));
        }
        let mut headers = Vec::new();
        for (name, value) in self.headers.unwrap_or_default() {
            let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Invalid::new(
                    field("headers"),
                    format!("{name:?} is not a header name"),
                    HEADERS_EXAMPLE,
                )
            })?;
            if OWN_HEADERS.contains(&header_name.as_str())
                || (header_name == reqwest::header::AUTHORIZATION && self.token_file.is_some())
            {
                return Err(Invalid::new(
                    field("headers"),
                    format!("{name:?} is set by the sink itself"),
                    HEADERS_EXAMPLE,
                ));
            }
            // The value may be a secret: never repeated in the error.
            let mut header_value = HeaderValue::from_str(&value).map_err(|_| {
                Invalid::new(
                    field("headers"),
                    format!("the value of {name:?} is not a valid header value"),
                    HEADERS_EXAMPLE,
                )
            })?;
            header_value.set_sensitive(true);
            headers.push((header_name, header_value));
        }
        let config = HttpConfig {
            url,
            source,
            headers,
            token_file: self.token_file,
            request_timeout: crate::sinks::config::request_timeout(
                field("request_timeout_ms"),
                self.request_timeout_ms,
            )?,
            batch_max_events: self.batch_max_events.unwrap_or(100),
            batch_max_bytes: self.batch_max_bytes.unwrap_or(1 << 20),
            max_event_bytes: self.max_event_bytes.unwrap_or(1 << 20),
            section: section.to_owned(),
        };
        if config.batch_max_events == 0 || config.batch_max_bytes == 0 {
            return Err(Invalid::new(
                field("batch_max_events"),
                "batch limits must be above zero",
                "batch_max_events = 100",
            ));
        }
        if config.max_event_bytes == 0 {
            return Err(Invalid::new(
                field("max_event_bytes"),
                "must be above zero",
                "max_event_bytes = 1048576",
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawHttp {
        toml::from_str(text).unwrap()
    }

    const GOOD: &str = r#"
        url = "https://events.example.com/ingest"
        source = "/relay/orders"
    "#;

    #[test]
    fn defaults_apply() {
        let config = raw(GOOD).validate("sinks.web").unwrap();
        assert_eq!(config.request_timeout, Duration::from_millis(5_000));
        assert_eq!(config.batch_max_events, 100);
        assert_eq!(config.batch_max_bytes, 1 << 20);
        assert_eq!(config.max_event_bytes, 1 << 20);
        assert!(config.headers.is_empty());
    }

    #[test]
    fn validate_rejects_missing_or_bad_url_and_source() {
        let error = raw(r#"source = "/x""#).validate("sinks.web").unwrap_err();
        assert_eq!(error.field, "sinks.web.url");
        let error = raw("url = \"ftp://x\"\nsource = \"/x\"")
            .validate("sinks.web")
            .unwrap_err();
        assert_eq!(error.field, "sinks.web.url");
        let error = raw(r#"url = "https://x""#)
            .validate("sinks.web")
            .unwrap_err();
        assert_eq!(error.field, "sinks.web.source");
        let error = raw("url = \"https://x\"\nsource = \"a b\"")
            .validate("sinks.web")
            .unwrap_err();
        assert_eq!(error.field, "sinks.web.source");
    }

    #[test]
    fn validate_rejects_bad_headers_without_showing_values() {
        let error = raw(&format!(
            "{GOOD}\nheaders = {{ \"X-Key\" = \"secret\\n\" }}"
        ))
        .validate("sinks.web")
        .unwrap_err();
        assert_eq!(error.field, "sinks.web.headers");
        assert!(!error.to_string().contains("secret"), "{error}");
        let error = raw(&format!("{GOOD}\nheaders = {{ \"Content-Type\" = \"x\" }}"))
            .validate("sinks.web")
            .unwrap_err();
        assert_eq!(error.field, "sinks.web.headers");
        let error = raw(&format!(
            "{GOOD}\ntoken_file = \"/t\"\nheaders = {{ \"Authorization\" = \"x\" }}"
        ))
        .validate("sinks.web")
        .unwrap_err();
        assert_eq!(error.field, "sinks.web.headers");
    }

    #[test]
    fn header_values_are_not_in_debug_output() {
        let config = raw(&format!("{GOOD}\nheaders = {{ \"X-Key\" = \"secret\" }}"))
            .validate("sinks.web")
            .unwrap();
        let debug = format!("{config:?}");
        assert!(debug.contains("x-key"), "{debug}");
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn validate_rejects_unknown_keys_and_zero_limits() {
        assert!(toml::from_str::<RawHttp>("kind = \"http\"").is_err());
        let error = raw(&format!("{GOOD}\nbatch_max_events = 0"))
            .validate("sinks.web")
            .unwrap_err();
        assert_eq!(error.field, "sinks.web.batch_max_events");
    }
}
