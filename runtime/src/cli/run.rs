//! `relay run`: the pipeline once on an event file, as the Lambda would.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::{block_on, ConfigArgs};

#[derive(Args)]
pub(super) struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The Lambda DynamoDB Streams event ({"Records": [...]}).
    #[arg(long, short)]
    event: PathBuf,
    /// Time budget, as a Lambda timeout, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

pub(super) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = args.config.load()?;
    let text = std::fs::read_to_string(&args.event)
        .with_context(|| format!("cannot read {}", args.event.display()))?;
    let event = serde_json::value::RawValue::from_string(text)
        .with_context(|| format!("{} is not JSON", args.event.display()))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(args.timeout_secs);
    block_on(async {
        let mut relay = relay::sources::start(&config).await?;
        let outcome = relay.handle(&event, deadline, "local").await?;
        let s = &outcome.stats;
        eprintln!(
            "{} records: {} events published, {} events parked ({} behind earlier parked changes of their item), {} records parked, {} records handed back",
            s.records_in, s.events_published, s.events_parked, s.events_held, s.records_parked, s.records_failed
        );
        println!("{}", serde_json::to_string(&outcome.response)?);
        Ok(if outcome.response.batch_item_failures.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}
