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

pub(super) fn run(args: TestArgs) -> anyhow::Result<ExitCode> {
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
    let run = relay::dev::test::run(&mut instance, &input, args.table.as_deref())
        .with_context(|| format!("cannot read records from {}", args.event.display()))?;
    let mut ok = run.failures.is_empty();
    for failure in &run.failures {
        eprintln!("error: {failure}");
    }
    if let Some(expect) = &args.expect {
        let expected = std::fs::read_to_string(expect)
            .with_context(|| format!("cannot read the expectation {}", expect.display()))?;
        match relay::dev::test::compare(&run.lines, &expected) {
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
