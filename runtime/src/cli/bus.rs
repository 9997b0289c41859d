//! `relay bus`: a local Nakadi-compatible bus that prints what it receives.

use std::process::ExitCode;

use clap::Args;

use super::{block_on, shutdown_signal};

#[derive(Args)]
pub(super) struct BusArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Answer every request with this status instead of 200 (503, 429, 500),
    /// to watch Relay retry and park.
    #[arg(long)]
    fail_status: Option<u16>,
    /// Do not print events, only count them.
    #[arg(long)]
    quiet: bool,
}

pub(super) fn run(args: BusArgs) -> anyhow::Result<ExitCode> {
    block_on(async {
        let bus = relay::dev::bus::DevBus::start(relay::dev::bus::DevBusOptions {
            listen: args.listen,
            print: !args.quiet,
            fail_status: args.fail_status,
        })
        .await?;
        eprintln!(
            "Nakadi-compatible bus listening on {} (Ctrl-C stops it)",
            bus.url()
        );
        shutdown_signal().await;
        eprintln!(
            "{} events received",
            bus.received().load(std::sync::atomic::Ordering::Relaxed)
        );
        Ok(ExitCode::SUCCESS)
    })
}
