//! The modules' part of the configuration: each table's module, its pin,
//! settings and limits (`[tables.<name>]`, `[limits]`), and where
//! precompiled artifacts may come from (`[modules]`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ModuleSource, Sha256Digest};
use crate::transform::Limits;
use crate::validate::Invalid;

/// `[modules]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModules {
    #[serde(default)]
    trusted_artifact_dirs: Vec<PathBuf>,
}

/// `[modules]`, checked.
#[derive(Debug, Clone, Default)]
pub struct ModulesConfig {
    /// Folders whose precompiled artifacts (native code) may be loaded:
    /// only what the deployment ships, read-only at run time. Empty by
    /// default: every module is then `.wasm`.
    pub trusted_artifact_dirs: Vec<PathBuf>,
}

impl RawModules {
    /// Relative folders are taken from `base` (the config file's folder).
    pub fn validate(self, base: &Path) -> ModulesConfig {
        ModulesConfig {
            trusted_artifact_dirs: self
                .trusted_artifact_dirs
                .into_iter()
                .map(|dir| base.join(dir))
                .collect(),
        }
    }
}

/// `[tables.<name>]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTable {
    module: String,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    settings: Option<toml::Table>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    sinks: Option<Vec<String>>,
}

impl RawTable {
    /// The sinks the table names, if it names any (checked against the
    /// configured sinks by [`crate::sinks::validate_table_sinks`]).
    pub fn sinks(&self) -> Option<&[String]> {
        self.sinks.as_deref()
    }
}

/// A table's `limits`: each one it names overrides the same one of
/// `[limits]`, the others are `[limits]`'s.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    cpu_budget_ms: Option<u64>,
    memory_bytes: Option<usize>,
    max_output_bytes: Option<usize>,
    max_events: Option<usize>,
}

impl RawLimits {
    fn over(self, defaults: Limits) -> Limits {
        Limits {
            cpu_budget_ms: self.cpu_budget_ms.unwrap_or(defaults.cpu_budget_ms),
            memory_bytes: self.memory_bytes.unwrap_or(defaults.memory_bytes),
            max_output_bytes: self.max_output_bytes.unwrap_or(defaults.max_output_bytes),
            max_events: self.max_events.unwrap_or(defaults.max_events),
        }
    }
}

/// Checks limits: none may be zero (a zero would refuse every record).
pub fn validate_limits(field: &str, limits: Limits) -> Result<Limits, Invalid> {
    let zero = [
        ("cpu_budget_ms", limits.cpu_budget_ms == 0),
        ("memory_bytes", limits.memory_bytes == 0),
        ("max_output_bytes", limits.max_output_bytes == 0),
        ("max_events", limits.max_events == 0),
    ];
    match zero.iter().find(|(_, is_zero)| *is_zero) {
        Some((name, _)) => Err(Invalid::new(
            format!("{field}.{name}"),
            "must be above zero (it would refuse every record)",
            "[limits] cpu_budget_ms = 100, memory_bytes = 33554432, max_output_bytes = 4194304, max_events = 1000",
        )),
        None => Ok(limits),
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
    /// The sinks its events go to, each of them (fan-out), by name.
    pub sinks: Vec<String>,
}

/// Checks every table: its module location and pin, its settings as JSON,
/// its limits (`default_limits` where it names none). Relative module paths
/// are taken from `base`.
pub fn validate_tables(
    tables: BTreeMap<String, RawTable>,
    default_limits: Limits,
    base: &Path,
    sinks: &BTreeMap<String, crate::sinks::SinkConfig>,
) -> Result<BTreeMap<String, TableConfig>, Invalid> {
    let default_limits = validate_limits("limits", default_limits)?;
    if tables.is_empty() {
        return Err(Invalid::new(
            "tables",
            "no table is configured, so every record would be parked",
            "[tables.orders] module = \"modules/data_change.wasm\"",
        ));
    }
    let mut out = BTreeMap::new();
    for (name, table) in tables {
        let settings = match table.settings {
            Some(settings) => serde_json::to_string(&settings).map_err(|e| {
                Invalid::new(
                    format!("tables.{name}.settings"),
                    format!("cannot be handed to the module as JSON: {e}"),
                    r#"settings = { data_type = "payment-order" }"#,
                )
            })?,
            None => "{}".to_owned(),
        };
        let (module, sha256) = table_module(&name, table.module, table.sha256, base)?;
        let limits = validate_limits(
            &format!("tables.{name}.limits"),
            table.limits.over(default_limits),
        )?;
        let sinks = crate::sinks::validate_table_sinks(&name, table.sinks, sinks)?;
        out.insert(
            name,
            TableConfig {
                module,
                sha256,
                settings,
                limits,
                sinks,
            },
        );
    }
    Ok(out)
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
) -> Result<(ModuleSource, Option<Sha256Digest>), Invalid> {
    let sha256 = sha256
        .map(|text| {
            text.trim().parse::<Sha256Digest>().map_err(|e| {
                Invalid::new(format!("tables.{table}.sha256"), e.to_string(), S3_EXAMPLE)
            })
        })
        .transpose()?;
    let source = match ModuleSource::parse_s3(&module) {
        Some(Ok(source)) => source,
        Some(Err(problem)) => {
            return Err(Invalid::new(
                format!("tables.{table}.module"),
                format!("{module:?}: {problem}"),
                S3_EXAMPLE,
            ))
        }
        None if module.contains("://") => {
            return Err(Invalid::new(
                format!("tables.{table}.module"),
                format!("{module:?}: only file paths and s3:// URLs are supported"),
                S3_EXAMPLE,
            ))
        }
        None if module.is_empty() => {
            return Err(Invalid::new(
                format!("tables.{table}.module"),
                "is empty",
                r#"module = "modules/data_change.wasm""#,
            ))
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
        return Err(Invalid::new(
            format!("tables.{table}.sha256"),
            format!(
                "missing: a module in S3 ({source}) must be pinned by its sha256, so the relay \
                 refuses any other bytes"
            ),
            S3_EXAMPLE,
        ));
    }
    Ok((source, sha256))
}
