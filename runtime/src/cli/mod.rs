//! The `relay` command line: one file per subcommand, each parsing its
//! arguments and calling the library.
//!
//! Only this module, `relay::aws` and `relay::sources` read the
//! environment.

mod build;
mod bus;
mod check;
mod compile;
mod lambda;
mod new;
mod poll;
mod redrive;
mod run;
mod sample;
mod test;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

/// Relay turns DynamoDB Stream records into published events, mapping each
/// record with the table's WebAssembly transform.
#[derive(Parser)]
#[command(version, about, long_about = None, after_help = AFTER_HELP)]
struct Cli {
    /// Without a command, `relay` runs as a Lambda function when
    /// AWS_LAMBDA_RUNTIME_API is set (the `bootstrap` of a custom runtime).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a transform on sample stream records and print the events, one
    /// JSON object per line: {"event_type", "key", "body"}.
    ///
    /// Exits 1 if a record could not be decoded or transformed, or if the
    /// events differ from --expect.
    Test(test::TestArgs),
    /// Write a realistic Lambda DynamoDB Streams event (NEW_AND_OLD_IMAGES)
    /// of payment-order items to stdout or --output.
    Sample(sample::SampleArgs),
    /// Precompile a transform component for fast cold starts of a deployment
    /// that ships it. An artifact is native code: the relay loads it only
    /// from the folders the configuration trusts (`[modules]
    /// trusted_artifact_dirs`), with the same relay build.
    Compile(compile::CompileArgs),
    /// Run as an AWS Lambda function (custom runtime) behind a DynamoDB
    /// Streams event source mapping with ReportBatchItemFailures.
    Lambda(ConfigArgs),
    /// Run the relay once on a Lambda DynamoDB Streams event file, exactly as
    /// the Lambda would (publish, park, respond), and print the batch response.
    Run(run::RunArgs),
    /// Run the relay on tables' DynamoDB streams, read through the DynamoDB
    /// Streams API (for the local loop on moto, or outside Lambda). Each batch
    /// goes through the Lambda's pipeline; records it hands back are read
    /// again, as the event source mapping does. Ctrl-C stops after the batch
    /// in hand.
    Poll(poll::PollArgs),
    /// Serve a local Nakadi-compatible bus that prints every event it
    /// receives (for trying Relay out; it is not Nakadi).
    Bus(bus::BusArgs),
    /// Validate a configuration and its transform modules (fetching S3
    /// modules into the cache and checking every pinned sha256); exits 1
    /// with the reasons when something is wrong.
    Check(ConfigArgs),
    /// Drain the SQS fallback queue back to the bus: republish parked events
    /// (same eid), re-run the current transform on parked records, delete
    /// each message once the bus accepted all it held.
    Redrive(redrive::RedriveArgs),
    /// Write a new transform crate, outside any workspace: a small transform
    /// with native tests, sample records and the events they should produce.
    New(new::NewArgs),
    /// Build a transform crate to its WebAssembly component (cargo, release,
    /// wasm32-wasip2) and print the module's path and sha256.
    Build(build::BuildArgs),
}

const AFTER_HELP: &str = "\
Environment:
  RELAY_CONFIG           the configuration file (--config)
  RELAY_LOG              log filter, e.g. `relay=info,warn` (default warn); else RUST_LOG,
                         else AWS_LAMBDA_LOG_LEVEL
  AWS_LAMBDA_LOG_FORMAT  JSON or Text (default: text on a terminal, JSON otherwise)
  RELAY_BUS_URL, RELAY_BUS_TOKEN_FILE, RELAY_FALLBACK_QUEUE_URL,
  RELAY_CLAIM_CHECK_BUCKET, RELAY_REGISTRY_TABLE
                         override the configuration file
  RELAY_MODULE_CACHE     the module cache folder (default /tmp/relay-modules)

Exit codes:
  0  done
  1  done, and something is wrong: records failed or events differ (test), a problem
     found (check), records handed back (run), messages still parked (redrive)
  2  wrong usage (an unknown flag, a missing argument)
  3  could not run: a file, the configuration, a module or a service";

/// The exit code when a command could not do its work (a file, the
/// configuration for a command that runs it, a module, a service). 0 is
/// success; 1 is a command that ran and found something wrong (records
/// failed or events differ, `check` found a problem, records handed back,
/// messages still parked); 2 is wrong usage (clap's).
const CANNOT_RUN: u8 = 3;

/// Runs the command line: parses the arguments, runs the command, and
/// turns its result into the exit code.
pub fn main() -> ExitCode {
    init_logging();
    if std::env::var_os("RELAY_PERFMAP").is_some() {
        relay::transform::enable_perf_map();
    }
    let cli = Cli::parse();
    let command = match cli.command {
        Some(command) => command,
        None if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() => {
            match ConfigArgs::from_env() {
                Ok(args) => Command::Lambda(args),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(CANNOT_RUN);
                }
            }
        }
        None => {
            let _ = <Cli as clap::CommandFactory>::command().print_help();
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Lambda(args) => lambda::run(args),
        Command::Check(args) => check::run(args),
        Command::Redrive(args) => redrive::run(args),
        Command::Run(args) => run::run(args),
        Command::Poll(args) => poll::run(args),
        Command::Bus(args) => bus::run(args),
        Command::Test(args) => test::run(args),
        Command::Sample(args) => sample::run(args),
        Command::Compile(args) => compile::run(args),
        Command::New(args) => new::run(args),
        Command::Build(args) => build::run(args),
    };
    match result {
        Ok(code) => code,
        // A reader such as `head` that stops early is not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(CANNOT_RUN)
        }
    }
}

/// Logs go to stderr: human-readable on a terminal, JSON otherwise.
/// `RELAY_LOG` sets the filter (default `warn`).
fn init_logging() {
    // As lambda_runtime's own subscriber: Lambda's log controls apply, and
    // RELAY_LOG or RUST_LOG win over them.
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    let filter = var("RELAY_LOG")
        .or_else(|| var("RUST_LOG"))
        .or_else(|| var("AWS_LAMBDA_LOG_LEVEL").map(|level| level.to_ascii_lowercase()))
        .unwrap_or_else(|| "warn".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let json = match var("AWS_LAMBDA_LOG_FORMAT").map(|f| f.to_ascii_lowercase()) {
        Some(format) => format == "json",
        None => !std::io::stderr().is_terminal(),
    };
    if json {
        // The message and fields at the top level of each line, as
        // CloudWatch's JSON log format expects.
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

#[derive(Args)]
pub struct ConfigArgs {
    /// The configuration file (TOML). RELAY_BUS_URL, RELAY_BUS_TOKEN_FILE and
    /// RELAY_FALLBACK_QUEUE_URL override its values; S3 modules are cached in
    /// RELAY_MODULE_CACHE (default /tmp/relay-modules).
    #[arg(long, short, env = relay::config::CONFIG_ENV)]
    pub config: PathBuf,
}

impl ConfigArgs {
    fn from_env() -> anyhow::Result<Self> {
        let config = std::env::var_os(relay::config::CONFIG_ENV).with_context(|| {
            format!(
                "{} must name the configuration file",
                relay::config::CONFIG_ENV
            )
        })?;
        Ok(ConfigArgs {
            config: config.into(),
        })
    }

    pub fn load(&self) -> anyhow::Result<relay::config::Config> {
        Ok(relay::config::Config::load(
            &self.config,
            &overrides_from_env(),
        )?)
    }
}

/// The deploy-time overrides from the environment.
fn overrides_from_env() -> relay::config::Overrides {
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    relay::config::Overrides {
        bus_url: var("RELAY_BUS_URL"),
        token_file: var("RELAY_BUS_TOKEN_FILE").map(PathBuf::from),
        fallback_queue_url: var("RELAY_FALLBACK_QUEUE_URL"),
        claim_check_bucket: var("RELAY_CLAIM_CHECK_BUCKET"),
        registry_table: var("RELAY_REGISTRY_TABLE"),
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM. The first one asks for a
/// graceful stop; from then on both have their default action again, so a
/// second one ends the process at once, even while the stop waits on a
/// service that does not answer (tokio would otherwise keep catching them).
pub(crate) async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    // SAFETY: `signal` with `SIG_DFL` only changes the disposition; no
    // handler of ours runs.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
    }
}

/// Runs a future on a single-threaded tokio runtime (Lambda runs one
/// invocation at a time).
pub(crate) fn block_on<T>(
    future: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(future)
}

pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}
