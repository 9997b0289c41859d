//! Sources: where batches come from, and the relay set up the way they run
//! it (AWS clients and the module cache from the environment):
//!
//! - [`lambda`]: the Lambda runtime (DynamoDB Streams event source mapping,
//!   and the scheduled re-drive);
//! - [`poll`]: `relay poll`, the DynamoDB Streams API read directly.

pub mod lambda;
pub mod poll;

use std::path::PathBuf;

use std::collections::BTreeMap;

use crate::aws::Clients;
use crate::config::Config;
use crate::modules::{ModuleError, ModuleStore, DEFAULT_CACHE_DIR};
use crate::park::{ClaimCheck, DynamoRegistry, Registry, SqsLot};
use crate::pipeline::Relay;
use crate::transform::TransformEngine;

/// The environment variable naming the module cache folder.
pub const CACHE_ENV: &str = "RELAY_MODULE_CACHE";

/// The module cache folder: [`CACHE_ENV`] if set and not empty, else
/// [`DEFAULT_CACHE_DIR`].
pub fn cache_dir_from_env() -> PathBuf {
    std::env::var_os(CACHE_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR))
}

/// The module store for `config`: S3 through `clients`, the cache folder
/// from the environment, the configured trusted artifact folders.
pub fn module_store(config: &Config, clients: &Clients) -> ModuleStore {
    ModuleStore::new(Some(clients.s3.clone()), cache_dir_from_env())
        .trust_artifacts_in(&config.modules.trusted_artifact_dirs)
}

/// The relay for `config`, with AWS clients and the module cache from the
/// environment.
pub async fn start(config: &Config) -> Result<Relay, InitError> {
    let clients = Clients::from_env().await;
    let mut modules = module_store(config, &clients);
    init(config, &clients, &mut modules).await
}

/// Why the relay could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The WebAssembly engine could not be made.
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    /// A table's module could not be loaded or instantiated.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// A sink's client could not be built.
    #[error("cannot set up the client of sink {name}: {error}")]
    Sink {
        /// The sink.
        name: String,
        /// Why.
        error: reqwest::Error,
    },
}

/// Loads every table's module through `modules` (from its file, or from
/// S3 through the module cache, checked against its pinned sha256),
/// instantiates it with its settings, and sets up the sink, the parking
/// lot (SQS, S3 for claim checks) and the registry on `clients`.
pub async fn init(
    config: &Config,
    clients: &Clients,
    modules: &mut ModuleStore,
) -> Result<Relay, InitError> {
    let engine = TransformEngine::new().map_err(|e| InitError::Engine(format!("{e:#}")))?;
    let mut routes = BTreeMap::new();
    for (table, route) in &config.tables {
        let loaded = modules.load(&engine, table, route).await?;
        let instance = loaded
            .module
            .instantiate(&route.settings, route.limits)
            .map_err(|error| ModuleError::Load {
                table: table.clone(),
                error,
            })?;
        tracing::info!(
            table,
            module = loaded.module.name(),
            source = %route.module,
            sha256 = %loaded.sha256,
            origin = %loaded.origin,
            "route ready"
        );
        let sinks: Vec<usize> = route
            .sinks
            .iter()
            .map(|name| {
                config
                    .sinks
                    .keys()
                    .position(|n| n == name)
                    .expect("validated: a table names configured sinks")
            })
            .collect();
        routes.insert(table.clone(), (instance, sinks));
    }
    let claim_check = config
        .fallback
        .claim_check_bucket
        .as_ref()
        .map(|bucket| ClaimCheck {
            s3: clients.s3.clone(),
            bucket: bucket.clone(),
            prefix: config.fallback.claim_check_prefix.clone(),
        });
    let lot = SqsLot::new(
        clients.sqs.clone(),
        config.fallback.queue_url.clone(),
        claim_check,
    );
    let registry = config.registry.as_ref().map(|registry| {
        Box::new(DynamoRegistry::new(
            clients.dynamodb.clone(),
            registry.table.clone(),
        )) as Box<dyn Registry>
    });
    let mut sinks = Vec::new();
    for (name, sink) in &config.sinks {
        let built = sink
            .build(name, config.retry, &clients.shared)
            .map_err(|error| InitError::Sink {
                name: name.clone(),
                error,
            })?;
        tracing::info!(sink = name, kind = sink.kind(), target = %sink.target(), "sink ready");
        sinks.push(built);
    }
    Ok(Relay::assemble(
        routes,
        sinks,
        Box::new(lot),
        registry,
        config.invocation,
    ))
}
