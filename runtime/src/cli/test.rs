//! `relay test`: a transform over sample records, printed or compared.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use relay::transform::{Limits, TransformEngine};

#[derive(Args)]
pub(super) struct TestArgs {
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
    /// DynamoDB Streams GetRecords, or one record; `-` reads stdin.
    /// Hand-written records may leave out eventSourceARN (give tableName or
    /// --table), eventID and dynamodb.SequenceNumber (stand-ins are used, and
    /// said on stderr).
    #[arg(long, short)]
    event: PathBuf,
    /// The table of records without an eventSourceARN or tableName
    /// (GetRecords output, e.g. `aws dynamodbstreams get-records`, lacks
    /// both; Lambda adds the ARN).
    #[arg(long)]
    table: Option<String>,
    /// Table settings handed to the transform: inline JSON (`{"data_type": "x"}`)
    /// or a path to a JSON file.
    #[arg(long, short, default_value = "{}")]
    settings: String,
    /// Expected output (JSON Lines, as printed by `relay test`); exits 1 with
    /// the differences (per event: the record and each differing JSON
    /// Pointer, expected → actual) when the events differ.
    #[arg(long)]
    expect: Option<PathBuf>,
    /// Write the events to the --expect file instead of comparing (to
    /// create it, or accept a change after reading the differences).
    #[arg(long, alias = "update", requires = "expect")]
    bless: bool,
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

pub(super) fn run(args: TestArgs) -> anyhow::Result<ExitCode> {
    let settings = read_settings(&args.settings)?;
    let input = match args.event.as_os_str() == "-" {
        true => {
            std::io::read_to_string(std::io::stdin()).context("cannot read records from stdin")?
        }
        false => std::fs::read_to_string(&args.event)
            .with_context(|| format!("cannot read the input {}", args.event.display()))?,
    };
    let engine = TransformEngine::new()?;
    let module = match args.trust_artifact {
        // Compiled once per digest into the module cache, as the Lambda does.
        false => relay::modules::ModuleStore::new(None, relay::sources::cache_dir_from_env())
            .load_component_file(&engine, &args.transform)
            .map(|(module, _)| module)
            .map_err(|e| match e {
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
    let run = relay::dev::test::run(&mut instance, &input, args.table.as_deref())
        .with_context(|| format!("cannot read records from {}", args.event.display()))?;
    for note in &run.notes {
        eprintln!("note: {note}");
    }
    let mut ok = run.failures.is_empty();
    for failure in &run.failures {
        eprintln!("error: {failure}");
    }
    if let (Some(expect), true) = (&args.expect, args.bless) {
        let mut text = run.lines.join("\n");
        text.push('\n');
        std::fs::write(expect, text)
            .with_context(|| format!("cannot write the expectation {}", expect.display()))?;
        eprintln!(
            "wrote {} events of {} records to {}",
            run.lines.len(),
            run.records,
            expect.display()
        );
    } else if let Some(expect) = &args.expect {
        let text = std::fs::read_to_string(expect)
            .with_context(|| format!("cannot read the expectation {}", expect.display()))?;
        let expected = relay::dev::test::read_expectation(&text).map_err(|e| {
            anyhow::anyhow!("the expectation {} is unusable: {e}", expect.display())
        })?;
        match relay::dev::test::compare(&run.lines, &run.sequence_numbers, &expected) {
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

/// Settings are inline JSON or a path to a JSON file; either way a JSON
/// object. Text that parses as JSON is taken inline (so `[1]` is bad
/// settings, not a missing file); anything else is a file's path.
fn read_settings(arg: &str) -> anyhow::Result<String> {
    const EXAMPLE: &str = r#"'{"data_type": "order"}'"#;
    let (text, from) = match serde_json::from_str::<serde_json::Value>(arg) {
        Ok(_) => (arg.to_owned(), "inline settings".to_owned()),
        Err(_) if arg.trim_start().starts_with('{') => {
            let e = serde_json::from_str::<serde_json::Value>(arg).unwrap_err();
            anyhow::bail!("the settings are not JSON ({e}); for example: --settings {EXAMPLE}")
        }
        Err(_) => (
            std::fs::read_to_string(arg).with_context(|| {
                format!(
                    "cannot read the settings file {arg} (settings are inline JSON or a file, \
                     for example --settings {EXAMPLE})"
                )
            })?,
            format!("the settings file {arg}"),
        ),
    };
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{from} is not JSON; for example: --settings {EXAMPLE}"))?;
    anyhow::ensure!(
        value.is_object(),
        "{from} must be a JSON object, not {}; for example: --settings {EXAMPLE}",
        relay_record::dynamodb::json_kind(&value)
    );
    Ok(value.to_string())
}
