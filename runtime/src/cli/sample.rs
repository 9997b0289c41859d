//! `relay sample`: realistic stream events.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::write_file;

#[derive(Args)]
pub(super) struct SampleArgs {
    /// Number of records (`-c` is `--config` elsewhere: the short flag is `-n`).
    #[arg(long, short = 'n', default_value_t = 100)]
    count: usize,
    /// Seed: the same seed gives the same records.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Table name used in the records' eventSourceARN.
    #[arg(long, default_value = "orders")]
    table: String,
    /// Write here instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

pub(super) fn run(args: SampleArgs) -> anyhow::Result<ExitCode> {
    let opts = relay::dev::sample::SampleOptions {
        count: args.count,
        seed: args.seed,
        table: args.table,
        ..Default::default()
    };
    let text = serde_json::to_string_pretty(&relay::dev::sample::generate(&opts))?;
    match &args.output {
        Some(path) => write_file(path, text.as_bytes())?,
        None => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{text}")?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
