//! Configuration: one TOML file (`RELAY_CONFIG`), validated into [`Config`],
//! with deploy-time values overridable by environment variables (read by the
//! CLI into [`Overrides`]).
//!
//! Each component owns its part, as written and checked; this module only
//! gathers them:
//!
//! | section | component |
//! |---|---|
//! | `[bus]` | [`crate::sinks::nakadi::NakadiConfig`] (the sink `nakadi`) |
//! | `[sinks.<name>]` | [`crate::sinks::SinkConfig`] |
//! | `[retry]` | [`crate::sinks::RetryConfig`] |
//! | `[fallback]`, `[registry]` | [`crate::park::FallbackConfig`], [`crate::park::RegistryConfig`] |
//! | `[invocation]` | [`crate::pipeline::InvocationConfig`] |
//! | `[limits]`, `[modules]`, `[tables.<name>]` | [`crate::modules::TableConfig`], [`crate::modules::ModulesConfig`] |
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

use serde::Deserialize;

pub use crate::modules::{ModulesConfig, TableConfig};
use crate::modules::{RawModules, RawTable};
pub use crate::park::{FallbackConfig, RegistryConfig};
use crate::park::{RawFallback, RawRegistry};
pub use crate::pipeline::InvocationConfig;
pub use crate::sinks::nakadi::NakadiConfig;
use crate::sinks::nakadi::RawNakadi;
use crate::sinks::RawSink;
pub use crate::sinks::{RetryConfig, SinkConfig};
use crate::transform::Limits;
pub use crate::validate::Invalid;

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "RELAY_CONFIG";

/// A configuration that cannot be used, with what to write instead.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error (in the message, not chained, so it is shown once).
        error: std::io::Error,
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
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

/// The file as written; [`RawConfig::validate`] turns it into a [`Config`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    bus: Option<RawNakadi>,
    #[serde(default)]
    sinks: BTreeMap<String, RawSink>,
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

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where events are published: every configured sink by name (`[bus]`
    /// is the one named `nakadi`).
    pub sinks: BTreeMap<String, SinkConfig>,
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
    /// Where modules may come from.
    pub modules: ModulesConfig,
}

/// Deploy-time values that override the file (the CLI reads them from the
/// environment: `RELAY_BUS_URL`, `RELAY_BUS_TOKEN_FILE`,
/// `RELAY_FALLBACK_QUEUE_URL`, `RELAY_CLAIM_CHECK_BUCKET`,
/// `RELAY_REGISTRY_TABLE`).
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

impl Config {
    /// The Nakadi sink `[bus]` configures (named `nakadi`), if any.
    pub fn bus(&self) -> Option<&NakadiConfig> {
        match self.sinks.get(crate::sinks::DEFAULT_SINK) {
            Some(SinkConfig::Nakadi(bus)) => Some(bus),
            _ => None,
        }
    }

    /// Reads and validates a configuration file with the given overrides.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let raw = RawConfig::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        // Module paths are relative to the file: resolved, so errors and logs
        // name the file that is really read.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        raw.validate(path.parent().unwrap_or(Path::new(".")), overrides)
    }
}

impl RawConfig {
    /// Parses TOML text, rejecting unknown keys.
    pub fn parse(text: &str) -> Result<RawConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Checks every value; relative paths are taken from `base`.
    pub fn validate(self, base: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let o = overrides.clone();
        let default_needed = self.tables.values().any(|t| t.sinks().is_none())
            || (self.sinks.is_empty() && self.tables.is_empty());
        let sinks = crate::sinks::validate_sinks(
            self.bus,
            o.bus_url,
            o.token_file,
            self.sinks,
            default_needed,
        )?;
        Ok(Config {
            fallback: self
                .fallback
                .validate(o.fallback_queue_url, o.claim_check_bucket)?,
            registry: RawRegistry::validate(self.registry, o.registry_table)?,
            invocation: self.invocation.validate()?,
            retry: self.retry.validate()?,
            tables: crate::modules::validate_tables(
                self.tables,
                self.limits.unwrap_or_default(),
                base,
                &sinks,
            )?,
            sinks,
            modules: self.modules.validate(base),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::ModuleSource;

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
    fn tables_route_to_named_sinks_and_fan_out() {
        let text = GOOD.replace(
            "[tables.payments]",
            "[sinks.audit]\nkind = \"nakadi\"\nurl = \"http://127.0.0.1:9090\"\n\
             [tables.payments]\nsinks = [\"audit\", \"nakadi\"]",
        );
        let config = validate(&text, &Overrides::default()).unwrap();
        assert_eq!(config.tables["orders"].sinks, ["nakadi"]);
        assert_eq!(config.tables["payments"].sinks, ["audit", "nakadi"]);
        assert_eq!(config.sinks.keys().collect::<Vec<_>>(), ["audit", "nakadi"]);
        assert_eq!(config.sinks["audit"].target(), "http://127.0.0.1:9090");
    }

    #[test]
    fn bad_routes_are_refused_with_the_table_named() {
        let routed = |sinks: &str| {
            let text = GOOD.replace(
                "[tables.payments]",
                &format!("[tables.payments]\nsinks = {sinks}"),
            );
            validate(&text, &Overrides::default())
                .unwrap_err()
                .to_string()
        };
        let unknown = routed(r#"["audit"]"#);
        assert!(
            unknown.starts_with(
                "tables.payments.sinks: names \"audit\", which is not configured (configured: nakadi)"
            ),
            "{unknown}"
        );
        let twice = routed(r#"["nakadi", "nakadi"]"#);
        assert!(twice.contains("names \"nakadi\" twice"), "{twice}");
        let none = routed("[]");
        assert!(none.contains("is empty"), "{none}");
        // [bus] is the sink `nakadi`: it cannot be configured twice.
        let text = format!("{GOOD}\n[sinks.nakadi]\nkind = \"nakadi\"\nurl = \"http://x\"");
        let twice = validate(&text, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            twice.starts_with("sinks.nakadi: is the sink [bus] configures"),
            "{twice}"
        );
        // A sink section's own errors name it.
        let text = format!("{GOOD}\n[sinks.audit]\nkind = \"nakadi\"");
        let missing = validate(&text, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(missing.starts_with("sinks.audit.url: missing"), "{missing}");
        let text = format!("{GOOD}\n[sinks.audit]\nkind = \"carrier-pigeon\"");
        assert!(validate(&text, &Overrides::default()).is_err());
    }

    #[test]
    fn without_bus_every_table_names_its_sinks() {
        let text = r#"
            [sinks.audit]
            kind = "nakadi"
            url = "http://127.0.0.1:9090"
            [fallback]
            queue_url = "http://127.0.0.1:5000/123456789012/fallback"
            [tables.orders]
            module = "modules/data_change.wasm"
            sinks = ["audit"]
        "#;
        let config = validate(text, &Overrides::default()).unwrap();
        assert!(config.bus().is_none());
        assert_eq!(config.sinks.len(), 1);
        // A table without `sinks` publishes to `nakadi`, which [bus] configures.
        let text = text.replace("sinks = [\"audit\"]", "");
        let message = validate(&text, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("bus.url: missing"), "{message}");
    }

    #[test]
    fn validate_accepts_a_complete_file() {
        let config = validate(GOOD, &Overrides::default()).unwrap();
        assert_eq!(config.bus().unwrap().url, "http://127.0.0.1:8080");
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
        assert!(config.modules.trusted_artifact_dirs.is_empty());
    }

    #[test]
    fn trusted_artifact_dirs_are_taken_from_the_config_folder() {
        let text = format!("[modules]\ntrusted_artifact_dirs = [\".\", \"/opt/relay\"]\n{GOOD}");
        let config = validate(&text, &Overrides::default()).unwrap();
        assert_eq!(
            config.modules.trusted_artifact_dirs,
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
        assert_eq!(config.bus().unwrap().url, "https://nakadi.example.com");
        assert_eq!(
            config.bus().unwrap().token_file,
            Some(PathBuf::from("/run/token"))
        );
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
        assert_eq!(config.bus().unwrap().max_event_bytes, 999_000);
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
    fn table_limits_merge_into_the_top_level_ones() {
        let text = format!("{GOOD}\n[limits]\nmax_events = 10\nmemory_bytes = 8388608\n");
        let config = validate(&text, &Overrides::default()).unwrap();
        let orders = config.tables["orders"].limits;
        assert_eq!(orders.cpu_budget_ms, 250, "the table's own");
        assert_eq!(orders.max_events, 10, "from [limits]");
        assert_eq!(orders.memory_bytes, 8 << 20, "from [limits]");
        assert_eq!(orders.max_output_bytes, Limits::default().max_output_bytes);
        assert_eq!(config.tables["payments"].limits.max_events, 10);
    }

    #[test]
    fn validate_rejects_zero_limits() {
        let text = format!("{GOOD}\n[limits]\nmax_events = 0\n");
        let err = validate(&text, &Overrides::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("limits.max_events: must be above zero"),
            "{err}"
        );
        let text = GOOD.replace("cpu_budget_ms = 250", "cpu_budget_ms = 0");
        let err = validate(&text, &Overrides::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("tables.orders.limits.cpu_budget_ms"),
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
    use crate::modules::ModuleSource;

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
