//! `relay check`: validate a configuration and load its modules.

use std::process::ExitCode;

use relay::transform::TransformEngine;

use super::{block_on, ConfigArgs};

pub(super) fn run(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let config = match args.load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("invalid: {e:#}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let engine = TransformEngine::new()?;
    let ok = block_on(async {
        // AWS is asked only when a module is in S3.
        let uses_s3 = config
            .tables
            .values()
            .any(|t| matches!(t.module, relay::modules::ModuleSource::S3 { .. }));
        let s3 = match uses_s3 {
            true => Some(relay::aws::Clients::from_env().await.s3),
            false => None,
        };
        let mut store = relay::modules::ModuleStore::new(s3, relay::sources::cache_dir_from_env())
            .trust_artifacts_in(&config.modules.trusted_artifact_dirs);
        let mut ok = true;
        for (table, route) in &config.tables {
            let result = store.load(&engine, table, route).await.and_then(|loaded| {
                loaded
                    .module
                    .instantiate(&route.settings, route.limits)
                    .map(|_| loaded)
                    .map_err(|error| relay::modules::ModuleError::Load {
                        table: table.clone(),
                        error,
                    })
            });
            match result {
                Ok(loaded) => {
                    let pin = match loaded.pinned {
                        true => "sha256 ok".to_owned(),
                        false => format!("not pinned, sha256 {}", loaded.sha256),
                    };
                    println!(
                        "ok: table {table} → {} ({pin}, {}; ready in {:.1} ms)",
                        route.module,
                        loaded.origin,
                        loaded.took.as_secs_f64() * 1e3
                    );
                }
                Err(e) => {
                    ok = false;
                    eprintln!("invalid: {e}");
                }
            }
        }
        let cache = store.cache_dir().display().to_string();
        println!("module cache: {cache}");
        Ok(ok)
    })?;
    let trusted: Vec<String> = config
        .modules
        .trusted_artifact_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    println!(
        "trusted artifact folders: {}",
        match trusted.is_empty() {
            true => "none (every module must be .wasm)".to_owned(),
            false => trusted.join(", "),
        }
    );
    for (name, sink) in &config.sinks {
        let tables: Vec<&str> = config
            .tables
            .iter()
            .filter(|(_, t)| t.sinks.contains(name))
            .map(|(table, _)| table.as_str())
            .collect();
        let routed = match tables.is_empty() {
            true => "no table; kept for re-drive of what was parked for it".to_owned(),
            false => format!("tables {}", tables.join(", ")),
        };
        println!("sink {name}: {} {} ({routed})", sink.kind(), sink.target());
    }
    println!("fallback queue: {}", config.fallback.queue_url);
    match &config.fallback.claim_check_bucket {
        Some(bucket) => println!(
            "oversized parked messages: s3://{bucket}/{}",
            config.fallback.claim_check_prefix
        ),
        None => println!(
            "oversized parked messages: no claim-check bucket, such records are reported back to Lambda"
        ),
    }
    match &config.registry {
        Some(registry) => println!(
            "parked-items registry: {} (order holds across batches and re-drive runs)",
            registry.table
        ),
        None => println!("parked-items registry: none (order holds only within a batch)"),
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
