//! The `relay` command line: wires arguments to the library's stages.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use relay::transform::{Limits, TransformEngine};

/// The relay allocates and frees many small JSON values per record; mimalloc
/// does that markedly faster than the system allocator (`relay bench`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Relay turns DynamoDB Stream records into published events, mapping each
/// record with the table's WebAssembly transform.
#[derive(Parser)]
#[command(version, about, long_about = None)]
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
    Test(TestArgs),
    /// Write a realistic Lambda DynamoDB Streams event (NEW_AND_OLD_IMAGES)
    /// of payment-order items to stdout or --output.
    Sample(SampleArgs),
    /// Precompile a transform component for fast cold starts of a deployment
    /// that ships it. An artifact is native code: the relay loads it only
    /// from the folders the configuration trusts (`[modules]
    /// trusted_artifact_dirs`), with the same relay build.
    Compile(CompileArgs),
    /// Run as an AWS Lambda function (custom runtime) behind a DynamoDB
    /// Streams event source mapping with ReportBatchItemFailures.
    Lambda(ConfigArgs),
    /// Run the relay once on a Lambda DynamoDB Streams event file, exactly as
    /// the Lambda would (publish, park, respond), and print the batch response.
    Run(RunArgs),
    /// Run the relay on tables' DynamoDB streams, read through the DynamoDB
    /// Streams API (for the local loop on moto, or outside Lambda). Each batch
    /// goes through the Lambda's pipeline; records it hands back are read
    /// again, as the event source mapping does. Ctrl-C stops after the batch
    /// in hand.
    Poll(PollArgs),
    /// Serve a local Nakadi-compatible bus that prints every event it
    /// receives (for trying Relay out; it is not Nakadi).
    Bus(BusArgs),
    /// Validate a configuration and its transform modules (fetching S3
    /// modules into the cache and checking every pinned sha256); exits 1
    /// with the reasons when something is wrong.
    Check(ConfigArgs),
    /// Drain the SQS fallback queue back to the bus: republish parked events
    /// (same eid), re-run the current transform on parked records, delete
    /// each message once the bus accepted all it held.
    Redrive(RedriveArgs),
    /// Measure records/s of decode → transform → serialize (WASM vs native
    /// Rust vs the Python peer), module load times and peak RSS.
    Bench(relay::bench::BenchArgs),
}

#[derive(Args)]
struct TestArgs {
    /// The transform: a .wasm component (or, with --trust-artifact, an
    /// artifact from `relay compile`).
    #[arg(long, short)]
    transform: PathBuf,
    /// Load --transform even if it is a precompiled artifact. An artifact is
    /// native code that runs unchecked with your credentials: pass this only
    /// for one you compiled yourself with `relay compile`.
    #[arg(long)]
    trust_artifact: bool,
    /// Input: a Lambda DynamoDB Streams event ({"Records": [...]}, as Lambda
    /// delivers it or `relay poll --capture` writes it), the output of
    /// DynamoDB Streams GetRecords, or one record.
    #[arg(long, short)]
    event: PathBuf,
    /// The table of records without an eventSourceARN (GetRecords output,
    /// e.g. `aws dynamodbstreams get-records`, lacks it; Lambda adds it).
    #[arg(long)]
    table: Option<String>,
    /// Table settings handed to the transform: inline JSON (`{"data_type": "x"}`)
    /// or a path to a JSON file.
    #[arg(long, short, default_value = "{}")]
    settings: String,
    /// Expected output (JSON Lines, as printed by `relay test`); exits 1 with
    /// a diff when the events differ.
    #[arg(long)]
    expect: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
}

/// Sandbox limits for each transform call.
#[derive(Args)]
struct LimitArgs {
    /// CPU budget per record, in milliseconds.
    #[arg(long, default_value_t = Limits::default().cpu_budget_ms)]
    cpu_budget_ms: u64,
    /// Memory cap for the transform, in MiB.
    #[arg(long, default_value_t = Limits::default().memory_bytes >> 20)]
    memory_mib: usize,
    /// Cap on the total bytes of event bodies one record may produce.
    #[arg(long, default_value_t = Limits::default().max_output_bytes)]
    max_output_bytes: usize,
    /// Cap on the number of events one record may produce.
    #[arg(long, default_value_t = Limits::default().max_events)]
    max_events: usize,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            cpu_budget_ms: self.cpu_budget_ms,
            memory_bytes: self.memory_mib << 20,
            max_output_bytes: self.max_output_bytes,
            max_events: self.max_events,
        }
    }
}

#[derive(Args)]
struct ConfigArgs {
    /// The configuration file (TOML). RELAY_BUS_URL, RELAY_BUS_TOKEN_FILE and
    /// RELAY_FALLBACK_QUEUE_URL override its values; S3 modules are cached in
    /// RELAY_MODULE_CACHE (default /tmp/relay-modules).
    #[arg(long, short, env = relay::config::CONFIG_ENV)]
    config: PathBuf,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The Lambda DynamoDB Streams event ({"Records": [...]}).
    #[arg(long, short)]
    event: PathBuf,
    /// Time budget, as a Lambda timeout, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

#[derive(Args)]
struct PollArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// A table to poll (repeatable); default: every table in the configuration.
    #[arg(long = "table", short)]
    tables: Vec<String>,
    /// Where to start in the shards open now.
    #[arg(long, value_enum, default_value = "latest")]
    start_at: relay::poll::StartAt,
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

#[derive(Args)]
struct BusArgs {
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

#[derive(Args)]
struct RedriveArgs {
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

#[derive(Args)]
struct SampleArgs {
    /// Number of records.
    #[arg(long, short, default_value_t = 100)]
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

#[derive(Args)]
struct CompileArgs {
    /// The transform component (.wasm).
    input: PathBuf,
    /// Where to write the precompiled artifact.
    #[arg(long, short)]
    output: PathBuf,
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let command = match cli.command {
        Some(command) => command,
        None if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() => {
            match ConfigArgs::from_env() {
                Ok(args) => Command::Lambda(args),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(2);
                }
            }
        }
        None => {
            let _ = <Cli as clap::CommandFactory>::command().print_help();
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Lambda(args) => lambda(args),
        Command::Check(args) => check(args),
        Command::Redrive(args) => redrive(args),
        Command::Run(args) => run_once(args),
        Command::Poll(args) => poll(args),
        Command::Bus(args) => bus(args),
        Command::Test(args) => test(args),
        Command::Sample(args) => sample(args),
        Command::Compile(args) => compile(args),
        Command::Bench(args) => relay::bench::run(&args).map(|()| ExitCode::SUCCESS),
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
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr: human-readable on a terminal, JSON otherwise.
/// `RELAY_LOG` sets the filter (default `warn`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RELAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.init();
    } else {
        builder.json().init();
    }
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

    fn load(&self) -> anyhow::Result<relay::config::Config> {
        Ok(relay::config::Config::load(
            &self.config,
            &relay::config::Overrides::from_env(),
        )?)
    }
}

fn lambda(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let config = args.load()?;
    block_on(relay::lambda::run(config))?;
    Ok(ExitCode::SUCCESS)
}

fn run_once(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = args.config.load()?;
    let text = std::fs::read_to_string(&args.event)
        .with_context(|| format!("cannot read {}", args.event.display()))?;
    let event = serde_json::value::RawValue::from_string(text)
        .with_context(|| format!("{} is not JSON", args.event.display()))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(args.timeout_secs);
    block_on(async {
        let mut relay = relay::pipeline::Relay::init(&config).await?;
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

fn poll(args: PollArgs) -> anyhow::Result<ExitCode> {
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
    let options = relay::poll::PollOptions {
        tables,
        start_at: args.start_at,
        idle_interval: std::time::Duration::from_millis(args.idle_ms),
        batch_size: args.batch_size,
        batch_timeout: std::time::Duration::from_secs(args.timeout_secs),
        capture: args.capture,
        ..Default::default()
    };
    block_on(async {
        let mut relay = relay::pipeline::Relay::init(&config).await?;
        let client = relay::lambda::streams_client().await;
        let stop = relay::poll::StopHandle::default();
        tokio::spawn({
            let stop = stop.clone();
            async move {
                shutdown_signal().await;
                stop.stop();
            }
        });
        let tables = options.tables.join(", ");
        let summary = relay::poll::run(&mut relay, &client, &options, &stop, || {
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

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn bus(args: BusArgs) -> anyhow::Result<ExitCode> {
    block_on(async {
        let bus = relay::devbus::DevBus::start(relay::devbus::DevBusOptions {
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

fn redrive(args: RedriveArgs) -> anyhow::Result<ExitCode> {
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
        let mut relay = relay::pipeline::Relay::init(&config).await?;
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

fn check(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let config = match args.load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("invalid: {e:#}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let engine = TransformEngine::new()?;
    let ok = block_on(async {
        let mut store = relay::modules::ModuleStore::from_env(&config).await;
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
                    println!("invalid: {e}");
                }
            }
        }
        let cache = store.cache_dir().display().to_string();
        println!("module cache: {cache}");
        Ok(ok)
    })?;
    let trusted: Vec<String> = config
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
    println!("bus: {}", config.bus.url);
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

fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let settings = read_settings(&args.settings)?;
    let input = std::fs::read_to_string(&args.event)
        .with_context(|| format!("cannot read the input {}", args.event.display()))?;
    let engine = TransformEngine::new()?;
    let module = match args.trust_artifact {
        false => engine.load(&args.transform).map_err(|e| match e {
            relay::transform::LoadError::Precompiled { .. } => anyhow::anyhow!(
                "{e}; to test an artifact you compiled yourself, pass --trust-artifact"
            ),
            e => e.into(),
        })?,
        true => {
            let bytes = std::fs::read(&args.transform)
                .with_context(|| format!("cannot read {}", args.transform.display()))?;
            let name = relay::modules::ModuleSource::File(args.transform.clone()).module_name();
            std::sync::Arc::new(match TransformEngine::is_artifact(&bytes) {
                // SAFETY: the user vouches for this file with --trust-artifact.
                true => unsafe { engine.load_artifact(&name, &bytes)? },
                false => engine.load_bytes(&name, &bytes)?,
            })
        }
    };
    let mut instance = module.instantiate(&settings, args.limits.limits())?;
    let run = relay::local_test::run(&mut instance, &input, args.table.as_deref())
        .with_context(|| format!("cannot read records from {}", args.event.display()))?;
    let mut ok = run.failures.is_empty();
    for failure in &run.failures {
        eprintln!("error: {failure}");
    }
    if let Some(expect) = &args.expect {
        let expected = std::fs::read_to_string(expect)
            .with_context(|| format!("cannot read the expectation {}", expect.display()))?;
        match relay::local_test::compare(&run.lines, &expected) {
            Ok(()) => eprintln!(
                "ok: {} records, {} events match {}",
                run.records,
                run.lines.len(),
                expect.display()
            ),
            Err(diff) => {
                eprintln!("mismatch: {diff}");
                ok = false;
            }
        }
    } else {
        let mut out = std::io::stdout().lock();
        for line in &run.lines {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    }
    if !run.failures.is_empty() {
        eprintln!("{} of {} records failed", run.failures.len(), run.records);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Settings are inline JSON or a path to a JSON file; either way a JSON object.
fn read_settings(arg: &str) -> anyhow::Result<String> {
    let text = if arg.trim_start().starts_with('{') {
        arg.to_owned()
    } else {
        std::fs::read_to_string(arg)
            .with_context(|| format!("cannot read the settings file {arg}"))?
    };
    let value: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!("settings are not JSON (example: '{{\"data_type\": \"order\"}}'): {arg}")
    })?;
    anyhow::ensure!(
        value.is_object(),
        "settings must be a JSON object, such as '{{\"data_type\": \"order\"}}', not {arg}"
    );
    Ok(value.to_string())
}

fn sample(args: SampleArgs) -> anyhow::Result<ExitCode> {
    let opts = relay::sample::SampleOptions {
        count: args.count,
        seed: args.seed,
        table: args.table,
        ..Default::default()
    };
    let text = serde_json::to_string_pretty(&relay::sample::generate(&opts))?;
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

fn compile(args: CompileArgs) -> anyhow::Result<ExitCode> {
    let wasm = std::fs::read(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let engine = TransformEngine::new()?;
    let name = args.input.file_stem().unwrap_or_default().to_string_lossy();
    let artifact = engine.precompile(&name, &wasm)?;
    write_file(&args.output, &artifact)?;
    eprintln!(
        "compiled {} ({} bytes) to {} ({} bytes)",
        args.input.display(),
        wasm.len(),
        args.output.display(),
        artifact.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs a future on a single-threaded tokio runtime (Lambda runs one
/// invocation at a time).
fn block_on<T>(future: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(future)
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}
