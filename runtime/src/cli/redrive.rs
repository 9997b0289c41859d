//! `relay redrive`: drain the parking lot back to the bus.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Args;

use super::{block_on, ConfigArgs};

#[derive(Args)]
pub(super) struct RedriveArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Only show what is parked (counts by table, event type, reason, age).
    #[arg(long)]
    dry_run: bool,
    /// Stop after receiving this many messages.
    #[arg(long, default_value_t = relay::redrive::RedriveOptions::default().max_messages)]
    max_messages: usize,
    /// Stop receiving once the messages received hold this many MiB (the
    /// rest waits for the next run).
    #[arg(long, default_value_t = relay::redrive::RedriveOptions::default().max_bytes >> 20)]
    max_mib: usize,
    /// Time budget in seconds; publishing stops in time to settle the messages.
    #[arg(long, default_value_t = 600)]
    time_budget_secs: u64,
    /// How long received messages stay hidden from other consumers, in seconds.
    #[arg(long, default_value_t = 900)]
    visibility_timeout_secs: u64,
    /// Base of the growing visibility timeout for messages that still fail, in seconds.
    #[arg(long, default_value_t = 60)]
    retry_base_secs: u64,
    /// Messages received more often than this are reported as poison and left
    /// for the queue's dead-letter policy.
    #[arg(long, default_value_t = 10)]
    poison_receives: u32,
}

pub(super) fn run(args: RedriveArgs) -> anyhow::Result<ExitCode> {
    let config = args.config.load()?;
    let options = relay::redrive::RedriveOptions {
        max_messages: args.max_messages,
        max_bytes: args.max_mib << 20,
        time_budget: std::time::Duration::from_secs(args.time_budget_secs),
        visibility_timeout: std::time::Duration::from_secs(args.visibility_timeout_secs),
        retry_base: std::time::Duration::from_secs(args.retry_base_secs),
        poison_receives: args.poison_receives,
        dry_run: args.dry_run,
    };
    let human = std::io::stdout().is_terminal();
    block_on(async {
        let mut relay = relay::sources::start(&config).await?;
        if options.dry_run {
            let report = relay.parked_report(&options).await?;
            if human {
                println!(
                    "{} parked messages ({} unreadable)",
                    report.messages, report.unreadable
                );
                for (title, counts) in [
                    ("by table", &report.by_table),
                    ("by event type", &report.by_event_type),
                    ("by sink", &report.by_sink),
                    ("by reason", &report.by_reason),
                    ("by age", &report.by_age),
                ] {
                    println!("{title}:");
                    for (key, count) in counts {
                        println!("  {count:>7}  {key}");
                    }
                }
            } else {
                println!("{}", serde_json::to_string(&report)?);
            }
            return Ok(ExitCode::SUCCESS);
        }
        let summary = relay.redrive(&options).await?;
        if human {
            println!(
                    "received {}, republished {}, re-transformed {} ({} events), deleted {}, still failing {}, poison {}",
                    summary.received,
                    summary.republished,
                    summary.retransformed,
                    summary.retransformed_events,
                    summary.deleted,
                    summary.still_failing,
                    summary.poison
                );
        } else {
            println!("{}", serde_json::to_string(&summary)?);
        }
        Ok(if summary.still_failing == 0 && summary.poison == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}
