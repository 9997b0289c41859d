//! `[bus]`: the Nakadi endpoint and how requests are made.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::validate::Invalid;

/// `[bus]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNakadi {
    url: Option<String>,
    token_file: Option<PathBuf>,
    request_timeout_ms: Option<u64>,
    gzip: Option<bool>,
    batch_max_events: Option<usize>,
    batch_max_bytes: Option<usize>,
    max_event_bytes: Option<usize>,
}

/// The Nakadi endpoint, checked.
#[derive(Debug, Clone)]
pub struct NakadiConfig {
    /// Base URL, without a trailing slash.
    pub url: String,
    /// File holding the bearer token, re-read when it changes.
    pub token_file: Option<PathBuf>,
    /// Timeout of one publishing request.
    pub request_timeout: Duration,
    /// Compress request bodies with gzip.
    pub gzip: bool,
    /// Most events in one request.
    pub batch_max_events: usize,
    /// Most body bytes in one request.
    pub batch_max_bytes: usize,
    /// Largest event the bus takes (Nakadi: 999,000 bytes); a larger one is
    /// parked with the reason instead of being sent.
    pub max_event_bytes: usize,
}

const URL_EXAMPLE: &str = r#"[bus] url = "https://nakadi.example.com""#;

impl RawNakadi {
    /// Checks the values; `url` and `token_file` (from the environment)
    /// win over the file's.
    pub fn validate(
        self,
        url: Option<String>,
        token_file: Option<PathBuf>,
    ) -> Result<NakadiConfig, Invalid> {
        self.validate_in("bus", url, token_file)
    }

    /// Checks the values of a `[sinks.<name>]` section of kind `nakadi`
    /// (`section` names it in errors).
    pub fn validate_as(self, section: &str) -> Result<NakadiConfig, Invalid> {
        self.validate_in(section, None, None)
    }

    fn validate_in(
        self,
        section: &str,
        url: Option<String>,
        token_file: Option<PathBuf>,
    ) -> Result<NakadiConfig, Invalid> {
        let url = url.or(self.url).ok_or_else(|| {
            let how = if section == "bus" {
                "missing (set it in the file or RELAY_BUS_URL)"
            } else {
                "missing"
            };
            Invalid::new(format!("{section}.url"), how, URL_EXAMPLE)
        })?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Invalid::new(
                format!("{section}.url"),
                format!("{url:?} is not an http(s) URL"),
                URL_EXAMPLE,
            ));
        }
        let config = NakadiConfig {
            url: url.trim_end_matches('/').to_owned(),
            token_file: token_file.or(self.token_file),
            request_timeout: Duration::from_millis(self.request_timeout_ms.unwrap_or(5_000)),
            gzip: self.gzip.unwrap_or(false),
            batch_max_events: self.batch_max_events.unwrap_or(1_000),
            batch_max_bytes: self.batch_max_bytes.unwrap_or(4 << 20),
            max_event_bytes: self.max_event_bytes.unwrap_or(999_000),
        };
        if config.max_event_bytes == 0 {
            return Err(Invalid::new(
                format!("{section}.max_event_bytes"),
                "must be above zero",
                "[bus] max_event_bytes = 999000",
            ));
        }
        if config.batch_max_events == 0 || config.batch_max_bytes == 0 {
            return Err(Invalid::new(
                format!("{section}.batch_max_events"),
                "batch limits must be above zero",
                "[bus] batch_max_events = 1000",
            ));
        }
        Ok(config)
    }
}
