//! Configuration: one TOML file (`RELAY_CONFIG`), validated into [`Config`],
//! with deploy-time values overridable by environment variables.
//!
//! ```toml
//! [bus]
//! url = "https://nakadi.example.com"          # or RELAY_BUS_URL
//! token_file = "/var/run/secrets/nakadi-token" # or RELAY_BUS_TOKEN_FILE; optional
//!
//! [fallback]
//! queue_url = "https://sqs.eu-central-1.amazonaws.com/123456789012/relay-fallback" # or RELAY_FALLBACK_QUEUE_URL
//! claim_check_bucket = "relay-parked"  # or RELAY_CLAIM_CHECK_BUCKET; optional
//!
//! [registry]                           # optional: order across batches
//! table = "relay-parked-items"         # or RELAY_REGISTRY_TABLE
//!
//! [tables.orders]
//! module = "modules/data_change.wasm"  # relative to this file
//! settings = { data_type = "payment-order", event_type = "payment-order.changed" }
//!
//! [tables.payments]                     # a module in S3, pinned by its sha256
//! module = "s3://relay-modules/payments/order_status-v2.wasm"
//! sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::modules::{ModuleSource, Sha256Digest};
use crate::transform::Limits;

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "RELAY_CONFIG";

/// A configuration that cannot be used, with what to write instead.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("the configuration {path} is not valid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said, with the position.
        message: String,
    },
    /// A value is missing or unusable.
    #[error("{field}: {problem}; for example: {example}")]
    Invalid {
        /// The dotted key, e.g. `bus.url`.
        field: String,
        /// What is wrong.
        problem: String,
        /// A valid example.
        example: &'static str,
    },
}

/// The file as written; [`RawConfig::validate`] turns it into a [`Config`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    bus: RawBus,
    #[serde(default)]
    retry: RetryConfig,
    #[serde(default)]
    fallback: RawFallback,
    #[serde(default)]
    registry: Option<RawRegistry>,
    #[serde(default)]
    invocation: InvocationConfig,
    #[serde(default)]
    limits: Option<Limits>,
    #[serde(default)]
    modules: RawModules,
    #[serde(default)]
    tables: BTreeMap<String, RawTable>,
}

/// `[modules]`: where precompiled artifacts may come from.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModules {
    #[serde(default)]
    trusted_artifact_dirs: Vec<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBus {
    url: Option<String>,
    token_file: Option<PathBuf>,
    request_timeout_ms: Option<u64>,
    gzip: Option<bool>,
    batch_max_events: Option<usize>,
    batch_max_bytes: Option<usize>,
    max_event_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFallback {
    queue_url: Option<String>,
    claim_check_bucket: Option<String>,
    claim_check_prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    table: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    module: String,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    settings: Option<toml::Table>,
    #[serde(default)]
    limits: Option<Limits>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where and how events are published.
    pub bus: BusConfig,
    /// Retry policy for publishing.
    pub retry: RetryConfig,
    /// Where what cannot be published is parked.
    pub fallback: FallbackConfig,
    /// The parked-items registry, when configured: it keeps an item's events
    /// in stream order across batches and re-drive runs.
    pub registry: Option<RegistryConfig>,
    /// Budgets of one invocation.
    pub invocation: InvocationConfig,
    /// Routing: table name → its transform.
    pub tables: BTreeMap<String, TableConfig>,
    /// Folders whose precompiled artifacts (native code) may be loaded:
    /// only what the deployment ships, read-only at run time (see
    /// `modules`). Empty by default: every module is then `.wasm`.
    pub trusted_artifact_dirs: Vec<PathBuf>,
}

/// The event bus (Nakadi) endpoint.
#[derive(Debug, Clone)]
pub struct BusConfig {
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

/// The parked-items registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// The DynamoDB table (partition key `item`, a string).
    pub table: String,
}

/// Budgets of one invocation, across all its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InvocationConfig {
    /// Most bytes of event bodies one invocation holds; the records after the
    /// one that would exceed it are left for Lambda to deliver again (the
    /// next invocation starts with a fresh budget). Default 64 MiB.
    pub max_output_bytes: usize,
}

impl Default for InvocationConfig {
    fn default() -> Self {
        InvocationConfig {
            max_output_bytes: 64 << 20,
        }
    }
}

/// Retries with exponential backoff and full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts per event before it is parked (the first try included).
    pub max_attempts: u32,
    /// Backoff ceiling of the first retry, in milliseconds.
    pub initial_backoff_ms: u64,
    /// Backoff ceiling of later retries, in milliseconds.
    pub max_backoff_ms: u64,
    /// Stop publishing this long before the invocation deadline, to leave
    /// time to park what is left, in milliseconds.
    pub deadline_margin_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 5,
            initial_backoff_ms: 100,
            max_backoff_ms: 2_000,
            deadline_margin_ms: 3_000,
        }
    }
}

/// One table's route.
#[derive(Debug, Clone)]
pub struct TableConfig {
    /// Where the transform module (`.wasm` or precompiled artifact) is.
    pub module: ModuleSource,
    /// The pinned digest of the module's bytes: required for S3, optional
    /// for files; a module that does not match it is refused.
    pub sha256: Option<Sha256Digest>,
    /// Settings handed to the module's `init`, as a JSON object text.
    pub settings: String,
    /// Sandbox limits for this table.
    pub limits: Limits,
}

/// Environment variables that override the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `RELAY_BUS_URL`.
    pub bus_url: Option<String>,
    /// `RELAY_BUS_TOKEN_FILE`.
    pub token_file: Option<PathBuf>,
    /// `RELAY_FALLBACK_QUEUE_URL`.
    pub fallback_queue_url: Option<String>,
    /// `RELAY_CLAIM_CHECK_BUCKET`.
    pub claim_check_bucket: Option<String>,
    /// `RELAY_REGISTRY_TABLE`.
    pub registry_table: Option<String>,
}

impl Overrides {
    /// Reads the overrides from the process environment.
    pub fn from_env() -> Self {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Overrides {
            bus_url: var("RELAY_BUS_URL"),
            token_file: var("RELAY_BUS_TOKEN_FILE").map(PathBuf::from),
            fallback_queue_url: var("RELAY_FALLBACK_QUEUE_URL"),
            claim_check_bucket: var("RELAY_CLAIM_CHECK_BUCKET"),
            registry_table: var("RELAY_REGISTRY_TABLE"),
        }
    }
}

impl Config {
    /// Reads and validates a configuration file with the given overrides.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let raw = RawConfig::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        raw.validate(path.parent().unwrap_or(Path::new(".")), overrides)
    }
}

impl RawConfig {
    /// Parses TOML text, rejecting unknown keys.
    pub fn parse(text: &str) -> Result<RawConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Checks every value; relative module paths are taken from `base`.
    pub fn validate(self, base: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let invalid = |field: &str, problem: String, example| ConfigError::Invalid {
            field: field.to_owned(),
            problem,
            example,
        };
        let url = overrides.bus_url.clone().or(self.bus.url).ok_or_else(|| {
            invalid(
                "bus.url",
                "missing (set it in the file or RELAY_BUS_URL)".into(),
                r#"[bus] url = "https://nakadi.example.com""#,
            )
        })?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(
                "bus.url",
                format!("{url:?} is not an http(s) URL"),
                r#"[bus] url = "https://nakadi.example.com""#,
            ));
        }
        let queue_url = overrides
            .fallback_queue_url
            .clone()
            .or(self.fallback.queue_url)
            .ok_or_else(|| {
                invalid(
                    "fallback.queue_url",
                    "missing (set it in the file or RELAY_FALLBACK_QUEUE_URL)".into(),
                    r#"[fallback] queue_url = "https://sqs.eu-central-1.amazonaws.com/123456789012/relay-fallback""#,
                )
            })?;
        if !(queue_url.starts_with("http://") || queue_url.starts_with("https://")) {
            return Err(invalid(
                "fallback.queue_url",
                format!("{queue_url:?} is not an SQS queue URL"),
                r#"[fallback] queue_url = "https://sqs.eu-central-1.amazonaws.com/123456789012/relay-fallback""#,
            ));
        }
        let bus = BusConfig {
            url: url.trim_end_matches('/').to_owned(),
            token_file: overrides.token_file.clone().or(self.bus.token_file),
            request_timeout: Duration::from_millis(self.bus.request_timeout_ms.unwrap_or(5_000)),
            gzip: self.bus.gzip.unwrap_or(false),
            batch_max_events: self.bus.batch_max_events.unwrap_or(1_000),
            batch_max_bytes: self.bus.batch_max_bytes.unwrap_or(4 << 20),
            max_event_bytes: self.bus.max_event_bytes.unwrap_or(999_000),
        };
        if bus.max_event_bytes == 0 {
            return Err(invalid(
                "bus.max_event_bytes",
                "must be above zero".into(),
                "[bus] max_event_bytes = 999000",
            ));
        }
        if self.invocation.max_output_bytes == 0 {
            return Err(invalid(
                "invocation.max_output_bytes",
                "must be above zero".into(),
                "[invocation] max_output_bytes = 67108864",
            ));
        }
        let claim_check_bucket = overrides
            .claim_check_bucket
            .clone()
            .or(self.fallback.claim_check_bucket);
        if let Some(bucket) = &claim_check_bucket {
            if bucket.is_empty() || bucket.contains('/') || bucket.contains("://") {
                return Err(invalid(
                    "fallback.claim_check_bucket",
                    format!("{bucket:?} is not an S3 bucket name"),
                    r#"[fallback] claim_check_bucket = "relay-parked""#,
                ));
            }
        }
        let fallback = FallbackConfig {
            queue_url: queue_url.clone(),
            claim_check_bucket,
            claim_check_prefix: self
                .fallback
                .claim_check_prefix
                .unwrap_or_else(|| "relay/parked/".into()),
        };
        let registry_table = overrides
            .registry_table
            .clone()
            .or(self.registry.and_then(|r| r.table));
        let registry = match registry_table {
            None => None,
            Some(table)
                if !table.is_empty()
                    && table.len() <= 255
                    && table
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) =>
            {
                Some(RegistryConfig { table })
            }
            Some(table) => {
                return Err(invalid(
                    "registry.table",
                    format!("{table:?} is not a DynamoDB table name"),
                    r#"[registry] table = "relay-parked-items""#,
                ))
            }
        };
        if bus.batch_max_events == 0 || bus.batch_max_bytes == 0 {
            return Err(invalid(
                "bus.batch_max_events",
                "batch limits must be above zero".into(),
                "[bus] batch_max_events = 1000",
            ));
        }
        if self.retry.max_attempts == 0 {
            return Err(invalid(
                "retry.max_attempts",
                "must be at least 1 (the first try counts)".into(),
                "[retry] max_attempts = 5",
            ));
        }
        if self.tables.is_empty() {
            return Err(invalid(
                "tables",
                "no table is configured, so every record would be parked".into(),
                "[tables.orders] module = \"modules/data_change.wasm\"",
            ));
        }
        let default_limits = self.limits.unwrap_or_default();
        let mut tables = BTreeMap::new();
        for (name, table) in self.tables {
            let settings = match table.settings {
                Some(settings) => serde_json::to_string(&settings).map_err(|e| {
                    invalid(
                        &format!("tables.{name}.settings"),
                        format!("cannot be handed to the module as JSON: {e}"),
                        r#"settings = { data_type = "payment-order" }"#,
                    )
                })?,
                None => "{}".to_owned(),
            };
            let (module, sha256) = table_module(&name, table.module, table.sha256, base)?;
            tables.insert(
                name,
                TableConfig {
                    module,
                    sha256,
                    settings,
                    limits: table.limits.unwrap_or(default_limits),
                },
            );
        }
        let trusted_artifact_dirs = self
            .modules
            .trusted_artifact_dirs
            .into_iter()
            .map(|dir| base.join(dir))
            .collect();
        Ok(Config {
            bus,
            retry: self.retry,
            fallback,
            registry,
            invocation: self.invocation,
            tables,
            trusted_artifact_dirs,
        })
    }
}

/// Example of an S3 module entry, for error messages.
const S3_EXAMPLE: &str = r#"module = "s3://relay-modules/orders/data_change-v2.wasm", sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" (from `sha256sum data_change-v2.wasm`)"#;

/// A table's module location and pin: `s3://bucket/key` (pin required) or
/// a file path, relative ones taken from `base`.
fn table_module(
    table: &str,
    module: String,
    sha256: Option<String>,
    base: &Path,
) -> Result<(ModuleSource, Option<Sha256Digest>), ConfigError> {
    let sha256 = sha256
        .map(|text| {
            text.trim()
                .parse::<Sha256Digest>()
                .map_err(|e| ConfigError::Invalid {
                    field: format!("tables.{table}.sha256"),
                    problem: e.to_string(),
                    example: S3_EXAMPLE,
                })
        })
        .transpose()?;
    let source = match ModuleSource::parse_s3(&module) {
        Some(Ok(source)) => source,
        Some(Err(problem)) => {
            return Err(ConfigError::Invalid {
                field: format!("tables.{table}.module"),
                problem: format!("{module:?}: {problem}"),
                example: S3_EXAMPLE,
            })
        }
        None if module.contains("://") => {
            return Err(ConfigError::Invalid {
                field: format!("tables.{table}.module"),
                problem: format!("{module:?}: only file paths and s3:// URLs are supported"),
                example: S3_EXAMPLE,
            })
        }
        None if module.is_empty() => {
            return Err(ConfigError::Invalid {
                field: format!("tables.{table}.module"),
                problem: "is empty".into(),
                example: r#"module = "modules/data_change.wasm""#,
            })
        }
        None => {
            let path = PathBuf::from(module);
            ModuleSource::File(if path.is_absolute() {
                path
            } else {
                base.join(path)
            })
        }
    };
    if matches!(source, ModuleSource::S3 { .. }) && sha256.is_none() {
        return Err(ConfigError::Invalid {
            field: format!("tables.{table}.sha256"),
            problem: format!(
                "missing: a module in S3 ({source}) must be pinned by its sha256, so the relay \
                 refuses any other bytes"
            ),
            example: S3_EXAMPLE,
        });
    }
    Ok((source, sha256))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [bus]
        url = "http://127.0.0.1:8080/"
        [fallback]
        queue_url = "http://127.0.0.1:5000/123456789012/fallback"
        [tables.orders]
        module = "modules/data_change.wasm"
        settings = { data_type = "payment-order" }
        limits = { cpu_budget_ms = 250 }
        [tables.payments]
        module = "/abs/order_status.cwasm"
    "#;

    fn validate(text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        RawConfig::parse(text)
            .map_err(|message| ConfigError::Parse {
                path: "relay.toml".into(),
                message,
            })?
            .validate(Path::new("/etc/relay"), overrides)
    }

    #[test]
    fn validate_accepts_a_complete_file() {
        let config = validate(GOOD, &Overrides::default()).unwrap();
        assert_eq!(config.bus.url, "http://127.0.0.1:8080");
        let orders = &config.tables["orders"];
        assert_eq!(
            orders.module,
            ModuleSource::File("/etc/relay/modules/data_change.wasm".into())
        );
        assert_eq!(orders.sha256, None);
        assert_eq!(
            config.tables["payments"].module,
            ModuleSource::File("/abs/order_status.cwasm".into())
        );
        assert_eq!(orders.settings, r#"{"data_type":"payment-order"}"#);
        assert_eq!(orders.limits.cpu_budget_ms, 250);
        assert_eq!(orders.limits.memory_bytes, Limits::default().memory_bytes);
        assert_eq!(config.tables["payments"].settings, "{}");
        assert_eq!(config.retry, RetryConfig::default());
        assert!(config.trusted_artifact_dirs.is_empty());
    }

    #[test]
    fn trusted_artifact_dirs_are_taken_from_the_config_folder() {
        let text = format!("[modules]\ntrusted_artifact_dirs = [\".\", \"/opt/relay\"]\n{GOOD}");
        let config = validate(&text, &Overrides::default()).unwrap();
        assert_eq!(
            config.trusted_artifact_dirs,
            vec![PathBuf::from("/etc/relay/."), PathBuf::from("/opt/relay")]
        );
        let err = validate(
            &format!("[modules]\ntrusted = [\".\"]\n{GOOD}"),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `trusted`"), "{err}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let overrides = Overrides {
            bus_url: Some("https://nakadi.example.com".into()),
            token_file: Some("/run/token".into()),
            fallback_queue_url: Some("https://sqs.example.com/1/q".into()),
            claim_check_bucket: Some("parked".into()),
            registry_table: Some("relay-items".into()),
        };
        let config = validate(GOOD, &overrides).unwrap();
        assert_eq!(config.bus.url, "https://nakadi.example.com");
        assert_eq!(config.bus.token_file, Some(PathBuf::from("/run/token")));
        assert_eq!(config.fallback.queue_url, "https://sqs.example.com/1/q");
        assert_eq!(
            config.fallback.claim_check_bucket.as_deref(),
            Some("parked")
        );
        assert_eq!(config.registry.unwrap().table, "relay-items");
    }

    #[test]
    fn validate_rejects_unknown_keys_with_position() {
        let err = validate(
            &GOOD.replace("[bus]", "[bus]\nurll = 1"),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `urll`"), "{err}");
    }

    #[test]
    fn validate_rejects_missing_bus_url_with_example() {
        let text = GOOD.replace("url = \"http://127.0.0.1:8080/\"", "");
        let err = validate(&text, &Overrides::default()).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("bus.url: missing"), "{message}");
        assert!(message.contains("for example: [bus] url ="), "{message}");
    }

    #[test]
    fn validate_rejects_a_non_http_queue_url() {
        let text = GOOD.replace("http://127.0.0.1:5000/123456789012/fallback", "fallback");
        let err = validate(&text, &Overrides::default()).unwrap_err();
        assert!(err.to_string().starts_with("fallback.queue_url"), "{err}");
    }

    #[test]
    fn validate_rejects_no_tables() {
        let text = GOOD.split("[tables.orders]").next().unwrap();
        let err = validate(text, &Overrides::default()).unwrap_err();
        assert!(err.to_string().starts_with("tables: no table"), "{err}");
    }

    #[test]
    fn validate_rejects_unknown_limit() {
        let text = GOOD.replace("cpu_budget_ms = 250", "cpu_budget = 250");
        let err = validate(&text, &Overrides::default()).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `cpu_budget`"),
            "{err}"
        );
    }

    #[test]
    fn validate_defaults_parking_ordering_and_budgets() {
        let config = validate(GOOD, &Overrides::default()).unwrap();
        assert_eq!(config.registry, None);
        assert_eq!(config.fallback.claim_check_bucket, None);
        assert_eq!(config.fallback.claim_check_prefix, "relay/parked/");
        assert_eq!(config.bus.max_event_bytes, 999_000);
        assert_eq!(config.invocation.max_output_bytes, 64 << 20);
        let text = format!(
            "{GOOD}\n[registry]\ntable = \"items\"\n[invocation]\nmax_output_bytes = 1000\n"
        )
        .replace("[fallback]", "[fallback]\nclaim_check_bucket = \"parked\"");
        let config = validate(&text, &Overrides::default()).unwrap();
        assert_eq!(config.registry.unwrap().table, "items");
        assert_eq!(
            config.fallback.claim_check_bucket.as_deref(),
            Some("parked")
        );
        assert_eq!(config.invocation.max_output_bytes, 1000);
    }

    #[test]
    fn validate_rejects_a_bad_registry_table_or_bucket() {
        let text = format!("{GOOD}\n[registry]\ntable = \"no spaces please\"\n");
        let err = validate(&text, &Overrides::default()).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("registry.table:"), "{message}");
        assert!(message.contains("for example: [registry]"), "{message}");
        let text = GOOD.replace(
            "[fallback]",
            "[fallback]\nclaim_check_bucket = \"s3://b/k\"",
        );
        let err = validate(&text, &Overrides::default()).unwrap_err();
        assert!(
            err.to_string().starts_with("fallback.claim_check_bucket:"),
            "{err}"
        );
        let text = format!("{GOOD}\n[invocation]\nmax_output_bytes = 0\n");
        let err = validate(&text, &Overrides::default()).unwrap_err();
        assert!(
            err.to_string().starts_with("invocation.max_output_bytes"),
            "{err}"
        );
    }

    #[test]
    fn validate_rejects_zero_attempts() {
        let text = format!("{GOOD}\n[retry]\nmax_attempts = 0\n");
        let err = validate(&text, &Overrides::default()).unwrap_err();
        assert!(err.to_string().starts_with("retry.max_attempts"), "{err}");
    }
}

#[cfg(test)]
mod module_tests {
    use super::*;

    const BASE: &str = r#"
        [bus]
        url = "http://127.0.0.1:8080"
        [fallback]
        queue_url = "http://127.0.0.1:5000/123456789012/fallback"
    "#;
    const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn validate(table: &str) -> Result<Config, ConfigError> {
        RawConfig::parse(&format!("{BASE}\n[tables.orders]\n{table}"))
            .map_err(|message| ConfigError::Parse {
                path: "relay.toml".into(),
                message,
            })?
            .validate(Path::new("/etc/relay"), &Overrides::default())
    }

    #[test]
    fn validate_accepts_a_pinned_s3_module() {
        let config = validate(&format!(
            "module = \"s3://relay-modules/orders/v2/data_change.cwasm\"\nsha256 = \"{DIGEST}\""
        ))
        .unwrap();
        let orders = &config.tables["orders"];
        assert_eq!(
            orders.module,
            ModuleSource::S3 {
                bucket: "relay-modules".into(),
                key: "orders/v2/data_change.cwasm".into()
            }
        );
        assert_eq!(orders.sha256.unwrap().to_string(), DIGEST);
    }

    #[test]
    fn validate_accepts_a_pinned_file_and_upper_case_hex() {
        let config = validate(&format!(
            "module = \"m/data_change.wasm\"\nsha256 = \"{}\"",
            DIGEST.to_uppercase()
        ))
        .unwrap();
        let orders = &config.tables["orders"];
        assert_eq!(
            orders.module,
            ModuleSource::File("/etc/relay/m/data_change.wasm".into())
        );
        assert_eq!(orders.sha256.unwrap().to_string(), DIGEST);
    }

    #[test]
    fn validate_rejects_an_s3_module_without_pin() {
        let err = validate("module = \"s3://relay-modules/orders/data_change.cwasm\"").unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("tables.orders.sha256: missing"),
            "{message}"
        );
        assert!(
            message.contains("s3://relay-modules/orders/data_change.cwasm"),
            "{message}"
        );
        assert!(
            message.contains("for example: module = \"s3://"),
            "{message}"
        );
    }

    #[test]
    fn validate_rejects_a_bad_digest() {
        for bad in [&DIGEST[..63], &DIGEST.replace('f', "z"), "sha256:abc", ""] {
            let err = validate(&format!(
                "module = \"s3://relay-modules/data_change.cwasm\"\nsha256 = \"{bad}\""
            ))
            .unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with("tables.orders.sha256:")
                    && message.contains("64 hex digits")
                    && message.contains("for example:"),
                "{bad}: {message}"
            );
        }
        // A bad pin on a local file is refused too.
        let err = validate("module = \"m.wasm\"\nsha256 = \"abc\"").unwrap_err();
        assert!(
            err.to_string().starts_with("tables.orders.sha256:"),
            "{err}"
        );
    }

    #[test]
    fn validate_rejects_an_s3_url_without_key_or_other_schemes() {
        for (module, says) in [
            ("s3://relay-modules", "needs a bucket and an object key"),
            ("s3://relay-modules/", "needs a bucket and an object key"),
            (
                "https://example.com/m.wasm",
                "only file paths and s3:// URLs",
            ),
        ] {
            let err =
                validate(&format!("module = \"{module}\"\nsha256 = \"{DIGEST}\"")).unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with("tables.orders.module:") && message.contains(says),
                "{module}: {message}"
            );
        }
    }

    #[test]
    fn validate_rejects_unknown_table_keys() {
        let err = validate(&format!("module = \"m.wasm\"\nsha = \"{DIGEST}\"")).unwrap_err();
        assert!(err.to_string().contains("unknown field `sha`"), "{err}");
    }
}
