//! `relay poll`: the pipeline on tables' streams, read through the DynamoDB Streams API.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{block_on, shutdown_signal, ConfigArgs};

#[derive(Args)]
pub(super) struct PollArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// A table to poll (repeatable); default: every table in the configuration.
    /// (`-t` is `--transform` elsewhere, so this has no short flag.)
    #[arg(long = "table")]
    tables: Vec<String>,
    /// Where to start in the shards open now.
    #[arg(long, value_enum, default_value = "latest")]
    start_at: relay::sources::poll::StartAt,
    /// Pause between rounds that found nothing, in milliseconds.
    #[arg(long, default_value_t = 250)]
    idle_ms: u64,
    /// Most records per batch (GetRecords limit, at most 1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i32).range(1..=1000))]
    batch_size: i32,
    /// Time budget of one batch, as a Lambda timeout, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
    /// Also write every record read to this file as a Lambda DynamoDB Streams
    /// event, ready for `relay test --event`.
    #[arg(long)]
    capture: Option<PathBuf>,
}

pub(super) fn run(args: PollArgs) -> anyhow::Result<ExitCode> {
    let config = args.config.load()?;
    let tables = if args.tables.is_empty() {
        config.tables.keys().cloned().collect()
    } else {
        for table in &args.tables {
            anyhow::ensure!(
                config.tables.contains_key(table),
                "table {table} has no route in {}: add a [tables.{table}] section",
                args.config.config.display()
            );
        }
        args.tables
    };
    anyhow::ensure!(
        !tables.is_empty(),
        "the configuration {} has no tables to poll",
        args.config.config.display()
    );
    let options = relay::sources::poll::PollOptions {
        tables,
        start_at: args.start_at,
        idle_interval: std::time::Duration::from_millis(args.idle_ms),
        batch_size: args.batch_size,
        batch_timeout: std::time::Duration::from_secs(args.timeout_secs),
        capture: args.capture,
        ..Default::default()
    };
    block_on(async {
        let mut relay = relay::sources::start(&config).await?;
        let client = relay::aws::streams_client().await;
        let stop = relay::sources::poll::StopHandle::default();
        tokio::spawn({
            let stop = stop.clone();
            async move {
                shutdown_signal().await;
                eprintln!(
                    "relay poll: stopping after the batch in hand (Ctrl-C again quits at once)"
                );
                stop.stop();
            }
        });
        let tables = options.tables.join(", ");
        let summary = relay::sources::poll::run(&mut relay, &client, &options, &stop, || {
            eprintln!("relay poll: reading the streams of {tables}; Ctrl-C stops");
        })
        .await?;
        eprintln!(
            "stopped: {} batches, {} records, {} events published, {} events parked, {} batches read again",
            summary.batches,
            summary.records,
            summary.events_published,
            summary.events_parked,
            summary.retried_batches
        );
        Ok(ExitCode::SUCCESS)
    })
}
