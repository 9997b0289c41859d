//! `relay-bench`: figures for the mapping stage, measured against peers in
//! the same run (this machine is shared and noisy: read the ratios).
//!
//! Paths measured on one `relay sample` batch, each doing decode → transform
//! → serialize: the `data-change` component in wasmtime, the same mapping
//! compiled natively, and the Python peer (boto3 + jsonpatch). Also module
//! load time from `.wasm` and from a precompiled artifact, and peak RSS.
//! With `--pipeline`, the whole relay end to end instead ([`pipeline`]).

mod pipeline;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use data_change::Transform as _;

use clap::Parser as _;
use relay::dev::sample::{generate, SampleOptions};
use relay::dev::test::output_line;
use relay::transform::{Event, Limits, TransformEngine};

/// Settings the benchmark hands to `data-change`.
const SETTINGS: &str = r#"{"data_type":"payment-order","event_type":"payment-order.changed"}"#;

/// Measures the relay against native Rust and the Python peer, in one run,
/// and prints the figures and ratios (nothing is asserted).
#[derive(Debug, clap::Parser)]
#[command(name = "relay-bench", version, about, long_about = None)]
pub struct BenchArgs {
    /// Records in the sample batch (`relay sample --count`).
    #[arg(long, default_value_t = 1000)]
    pub records: usize,
    /// Sample seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The data-change component to measure.
    #[arg(long, default_value = "target/wasm32-wasip2/guest/data_change.wasm")]
    pub transform: PathBuf,
    /// Records in the file `relay test` and the peer are timed on.
    #[arg(long, default_value_t = 5000)]
    pub test_records: usize,
    /// Seconds of measurement per path.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// The Python peer script; skipped when missing.
    #[arg(long, default_value = "../shared/peers/python_baseline.py")]
    pub python_peer: PathBuf,
    /// Python interpreter for the peer (default: .venv/bin/python if present, else python3).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Measure the whole relay end to end (intake → transform → publish to a
    /// Nakadi-compatible sink on loopback) instead of the mapping alone.
    #[arg(long)]
    pub pipeline: bool,
    /// With --pipeline: measure end to end to each sink's fault-injecting
    /// fake instead (Nakadi, EventBridge, Kinesis, SNS FIFO, CloudEvents),
    /// one after the other in the same run; or name one kind.
    #[arg(long, num_args = 0..=1, default_missing_value = "all")]
    pub sinks: Option<String>,
    /// With --pipeline: threads mapping each batch (`[invocation]
    /// transform_threads`; default: the relay's, the CPUs up to 4).
    #[arg(long)]
    pub transform_threads: Option<usize>,
    /// Internal: measure peak RSS of the production path in a fresh process.
    #[arg(long, hide = true)]
    pub rss_probe: Option<PathBuf>,
    /// Internal: start a relay from a bench config and report readiness.
    #[arg(long, hide = true)]
    pub probe: Option<PathBuf>,
    /// Internal: the batch file a probe reads.
    #[arg(long, hide = true)]
    pub probe_batch: Option<PathBuf>,
    /// Internal: invocations the probe runs before reporting its peak RSS.
    #[arg(long, hide = true, default_value_t = 0)]
    pub probe_invocations: usize,
}

/// The relay allocates and frees many small JSON values per record, as in
/// the `relay` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args = BenchArgs::parse();
    if std::env::var_os("RELAY_PERFMAP").is_some() {
        relay::transform::enable_perf_map();
    }
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the benchmark and prints its figures on stdout.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if let Some(artifact) = &args.rss_probe {
        return rss_probe(args, artifact);
    }
    if let Some(config) = &args.probe {
        return pipeline::probe(config, args.probe_batch.as_deref(), args.probe_invocations);
    }
    if args.pipeline && args.sinks.is_some() {
        return pipeline::run_sinks(args);
    }
    if args.pipeline {
        return pipeline::run(args);
    }
    let sample = generate(&SampleOptions {
        count: args.records,
        seed: args.seed,
        ..SampleOptions::default()
    });
    let input = serde_json::to_string(&sample)?;
    let scratch = std::env::temp_dir().join(format!("relay-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let input_path = scratch.join("sample.json");
    std::fs::write(&input_path, &input)?;
    println!(
        "input: {} records (relay sample --count {} --seed {}), {} bytes, {:.1} KB/record",
        args.records,
        args.records,
        args.seed,
        input.len(),
        input.len() as f64 / args.records as f64 / 1024.0
    );

    let engine = TransformEngine::new()?;
    let wasm = std::fs::read(&args.transform).with_context(|| {
        format!(
            "cannot read {} (build it: cargo build --profile guest --target wasm32-wasip2 -p data-change)",
            args.transform.display()
        )
    })?;

    // Module load: compile from .wasm, and load the precompiled artifact.
    let compile = median(3, || {
        let t = Instant::now();
        engine.load_bytes("data-change", &wasm).map(|_| t.elapsed())
    })?;
    let artifact = engine.precompile("data-change", &wasm)?;
    let artifact_path = scratch.join("data_change.cwasm");
    std::fs::write(&artifact_path, &artifact)?;
    // SAFETY (both loads): the artifact was compiled just now, by this
    // process, from the .wasm it measures.
    let load = median(21, || {
        let t = Instant::now();
        unsafe { engine.load_artifact("data-change", &artifact) }.map(|_| t.elapsed())
    })?;
    let module = std::sync::Arc::new(unsafe { engine.load_artifact("data-change", &artifact)? });
    let instantiate = median(21, || {
        let t = Instant::now();
        module
            .instantiate(SETTINGS, Limits::default())
            .map(|_| t.elapsed())
    })?;

    // Mapping throughput, WASM and native rounds interleaved.
    let mut instance = module.instantiate(SETTINGS, Limits::default())?;
    let native = data_change::DataChange::new(serde_json::from_str(SETTINGS)?)
        .map_err(|e| anyhow::anyhow!("native data-change refused settings: {e}"))?;
    // As in the relay, each record is decoded from its text (the batch is
    // only split); the peer starts from parsed dicts, its parse untimed.
    let raws = relay_record::dynamodb::split_raw_records(&input)?;
    let one_pass = raws
        .iter()
        .filter(|raw| relay_record::dynamodb::decode_record_text(raw.get()).is_some())
        .count();
    anyhow::ensure!(
        one_pass == raws.len(),
        "the one-pass decoder took only {one_pass} of {} sample records",
        raws.len()
    );
    let mut wasm_round = || -> anyhow::Result<usize> {
        let mut bytes = 0;
        for raw in &raws {
            let record = relay_record::dynamodb::parse_record_text(raw.get())?;
            for event in instance.transform(&record)? {
                bytes += output_line(&event).len();
            }
        }
        Ok(bytes)
    };
    let native_round = || -> anyhow::Result<usize> {
        let mut bytes = 0;
        for raw in &raws {
            let record = relay_record::dynamodb::parse_record_text(raw.get())?;
            let events = native
                .transform(&record)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            for e in events {
                let body = serde_json::value::RawValue::from_string(e.body)?;
                bytes += output_line(&Event {
                    event_type: e.event_type,
                    body,
                    key: e.key,
                })
                .len();
            }
        }
        Ok(bytes)
    };
    let wasm_bytes = wasm_round()?;
    let native_bytes = native_round()?;
    anyhow::ensure!(
        wasm_bytes == native_bytes,
        "the WASM and native mappings disagree: {wasm_bytes} vs {native_bytes} bytes out"
    );
    let (mut wasm_times, mut native_times) = (Vec::new(), Vec::new());
    let budget = Duration::from_secs_f64(args.seconds * 2.0);
    let started = Instant::now();
    while started.elapsed() < budget || wasm_times.len() < 3 {
        let t = Instant::now();
        wasm_round()?;
        wasm_times.push(t.elapsed());
        let t = Instant::now();
        native_round()?;
        native_times.push(t.elapsed());
    }
    let rate = |times: &mut Vec<Duration>| args.records as f64 / median_of(times).as_secs_f64();
    let wasm_rate = rate(&mut wasm_times);
    let native_rate = rate(&mut native_times);
    // The share of the host's decoding in both paths.
    let mut decode_times = Vec::new();
    while decode_times.len() < 20 {
        let t = Instant::now();
        for raw in &raws {
            std::hint::black_box(relay_record::dynamodb::parse_record_text(raw.get())?);
        }
        decode_times.push(t.elapsed());
    }
    let decode_rate = rate(&mut decode_times);
    let patches = patch_rates(&raws, args.seconds)?;
    let python = python_peer(args, &input_path);
    let rss_self = peak_rss_kib();
    let rss_child = rss_in_child(&artifact_path, &input_path);
    let relay_test = relay_test_figures(args, &scratch, &artifact_path);
    let _ = std::fs::remove_dir_all(&scratch);

    println!(
        "decode → transform → serialize per record (each record from its text, as the relay reads it; the peer from parsed dicts), median of {} rounds:",
        wasm_times.len()
    );
    println!(
        "  wasm (data-change component)  {:>9.0} records/s  {:>6.1} µs/record",
        wasm_rate,
        1e6 / wasm_rate
    );
    println!(
        "  native Rust (same mapping)    {:>9.0} records/s  {:>6.1} µs/record",
        native_rate,
        1e6 / native_rate
    );
    match &python {
        Ok(rate) => println!(
            "  python peer (boto3+jsonpatch) {:>9.0} records/s  {:>6.1} µs/record",
            rate,
            1e6 / rate
        ),
        Err(why) => println!("  python peer: skipped ({why})"),
    }
    println!(
        "  of which decoding from the text (host, both paths) {:>6.1} µs/record",
        1e6 / decode_rate
    );
    print!(
        "ratios: wasm is {:.2}x slower than native",
        native_rate / wasm_rate
    );
    match &python {
        Ok(rate) => println!(", {:.1}x faster than the python peer", wasm_rate / rate),
        Err(_) => println!(),
    }
    println!(
        "module load: compile .wasm {:.1} ms ({} bytes), precompiled artifact {:.2} ms ({} bytes); instantiate + init {:.0} µs",
        ms(compile),
        wasm.len(),
        ms(load),
        artifact.len(),
        instantiate.as_secs_f64() * 1e6
    );
    println!(
        "patch old → new image per record: Record::patch (text diff) {:.1} µs, json-patch diff on parsed values {:.1} µs: the text diff is {:.2}x faster",
        1e6 / patches.0,
        1e6 / patches.1,
        patches.0 / patches.1
    );
    match relay_test {
        Ok(figures) => println!("{figures}"),
        Err(why) => println!("relay test: skipped ({why})"),
    }
    match rss_child {
        Ok(kib) => println!(
            "peak RSS: {:.1} MiB for a fresh process loading the artifact and mapping 10 batches; {:.1} MiB for this whole benchmark",
            kib as f64 / 1024.0,
            rss_self.unwrap_or(0) as f64 / 1024.0
        ),
        Err(why) => println!("peak RSS: child probe failed ({why})"),
    }
    Ok(())
}

/// Records per second for the RFC 6902 patch of each record's images, as
/// `Record::patch` makes it (straight from the texts) and as `json-patch`
/// makes it (parsing both images to values first), rounds interleaved.
fn patch_rates(raws: &[&serde_json::value::RawValue], seconds: f64) -> anyhow::Result<(f64, f64)> {
    let records = raws
        .iter()
        .map(|raw| relay_record::dynamodb::parse_record_text(raw.get()))
        .collect::<Result<Vec<_>, _>>()?;
    let text =
        |image: &Option<relay_record::Image>| image.as_ref().map_or("{}", |i| i.json()).to_owned();
    let images: Vec<(String, String)> = records
        .iter()
        .map(|r| (text(&r.old_image), text(&r.new_image)))
        .collect();
    for (record, (old, new)) in records.iter().zip(&images) {
        let theirs = json_patch::diff(&serde_json::from_str(old)?, &serde_json::from_str(new)?);
        let mut doc: serde_json::Value = serde_json::from_str(old)?;
        json_patch::patch(
            &mut doc,
            &serde_json::from_str::<json_patch::Patch>(&record.patch().to_string())?,
        )?;
        anyhow::ensure!(
            doc == serde_json::from_str::<serde_json::Value>(new)?,
            "Record::patch does not apply"
        );
        std::hint::black_box(theirs);
    }
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs_f64(seconds) || ours.len() < 3 {
        let t = Instant::now();
        for record in &records {
            std::hint::black_box(record.patch());
        }
        ours.push(t.elapsed());
        let t = Instant::now();
        for (old, new) in &images {
            let old: serde_json::Value = serde_json::from_str(old)?;
            let new: serde_json::Value = serde_json::from_str(new)?;
            std::hint::black_box(serde_json::to_value(json_patch::diff(&old, &new))?);
        }
        theirs.push(t.elapsed());
    }
    let n = records.len() as f64;
    Ok((
        n / median_of(&mut ours).as_secs_f64(),
        n / median_of(&mut theirs).as_secs_f64(),
    ))
}

/// The production path alone, in a fresh process: load the precompiled
/// artifact, map the batch ten times, print VmHWM in KiB.
fn rss_probe(args: &BenchArgs, artifact: &Path) -> anyhow::Result<()> {
    let input = std::fs::read_to_string(args.probe_batch.as_ref().context("--probe-batch")?)?;
    let event = serde_json::value::RawValue::from_string(input)?;
    let engine = TransformEngine::new()?;
    let bytes = std::fs::read(artifact)?;
    // SAFETY: the parent `relay bench` process compiled this artifact into
    // its own scratch folder and started this probe on it.
    let module = std::sync::Arc::new(unsafe { engine.load_artifact("data-change", &bytes)? });
    let mut instance = module.instantiate(SETTINGS, Limits::default())?;
    for _ in 0..10 {
        // The production path: each record parsed and decoded on its own.
        for incoming in relay::pipeline::intake::split(&event)? {
            for event in instance.transform(&incoming.decoded?)? {
                std::hint::black_box(output_line(&event));
            }
        }
    }
    println!("{}", peak_rss_kib().context("no /proc/self/status")?);
    Ok(())
}

fn rss_in_child(artifact: &Path, batch: &Path) -> anyhow::Result<u64> {
    let out = Command::new(std::env::current_exe()?)
        .arg("--rss-probe")
        .arg(artifact)
        .arg("--probe-batch")
        .arg(batch)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}

/// `relay test` against the Python peer, process start included, on one
/// `relay sample` file of `--test-records` records (pretty-printed, as
/// `relay sample` writes it): the `.wasm` on its first run (compiled into a
/// fresh module cache) and its second (loaded from the cache), and the
/// precompiled artifact; medians of three runs each.
fn relay_test_figures(args: &BenchArgs, scratch: &Path, artifact: &Path) -> Result<String, String> {
    let relay = relay_binary()?;
    let sample = generate(&SampleOptions {
        count: args.test_records,
        seed: args.seed,
        ..SampleOptions::default()
    });
    let input = scratch.join("relay-test.json");
    let text = serde_json::to_string_pretty(&sample).map_err(|e| e.to_string())?;
    std::fs::write(&input, &text).map_err(|e| e.to_string())?;
    let cache = scratch.join("module-cache");
    let run = |module: &Path, trust: bool| -> Result<Duration, String> {
        let started = Instant::now();
        let mut command = Command::new(&relay);
        command
            .arg("test")
            .arg("--transform")
            .arg(module)
            .arg("--event")
            .arg(&input)
            .arg("--settings")
            .arg(SETTINGS)
            .env("RELAY_MODULE_CACHE", &cache)
            .stdout(std::process::Stdio::null());
        if trust {
            command.arg("--trust-artifact");
        }
        let out = command.output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(started.elapsed())
    };
    let first = run(&args.transform, false)?;
    let mut cached: Vec<Duration> = (0..3)
        .map(|_| run(&args.transform, false))
        .collect::<Result<_, _>>()?;
    let mut precompiled: Vec<Duration> = (0..3)
        .map(|_| run(artifact, true))
        .collect::<Result<_, _>>()?;
    let python = python_interpreter(args);
    let mut peer = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let out = Command::new(&python)
            .arg(&args.python_peer)
            .arg(&input)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
        if !out.status.success() {
            return Err(format!(
                "the peer failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        peer.push(started.elapsed());
    }
    let (cached, precompiled, peer) = (
        median_of(&mut cached),
        median_of(&mut precompiled),
        median_of(&mut peer),
    );
    Ok(format!(
        "relay test on {} records ({:.1} MB, process start included), median of 3:\n  \
         .wasm first run {:.0} ms, second run (module cache) {:.0} ms, precompiled {:.0} ms; \
         the python peer {:.0} ms\n\
         ratios: relay test is {:.1}x faster than the peer with the cached .wasm, {:.1}x with the artifact",
        args.test_records,
        text.len() as f64 / 1e6,
        ms(first),
        ms(cached),
        ms(precompiled),
        ms(peer),
        peer.as_secs_f64() / cached.as_secs_f64(),
        peer.as_secs_f64() / precompiled.as_secs_f64(),
    ))
}

/// The `relay` binary built next to this one (target/release/relay).
pub(crate) fn relay_binary() -> Result<PathBuf, String> {
    let relay = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("relay");
    match relay.exists() {
        true => Ok(relay),
        false => Err(format!(
            "{} not found (cargo build --release -p relay)",
            relay.display()
        )),
    }
}

/// The interpreter for the Python peer: `--python`, else `.venv/bin/python`
/// when set up, else `python3`.
fn python_interpreter(args: &BenchArgs) -> PathBuf {
    args.python.clone().unwrap_or_else(|| {
        let venv = PathBuf::from(".venv/bin/python");
        match venv.exists() {
            true => venv,
            false => PathBuf::from("python3"),
        }
    })
}

fn python_peer(args: &BenchArgs, input: &Path) -> Result<f64, String> {
    if !args.python_peer.exists() {
        return Err(format!("{} not found", args.python_peer.display()));
    }
    let python = python_interpreter(args);
    // About as many seconds as the other paths got.
    let repeat = ((args.seconds * 3600.0) / args.records as f64)
        .ceil()
        .max(1.0) as u64;
    let out = Command::new(&python)
        .arg(&args.python_peer)
        .arg(input)
        .arg(repeat.to_string())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            python.display(),
            stderr.lines().last().unwrap_or_default()
        ));
    }
    // "python baseline: N records in Ts = R records/s (B bytes out)"
    stderr
        .split(" = ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|rate| rate.parse().ok())
        .ok_or_else(|| format!("unexpected peer output: {stderr}"))
}

fn median<T>(runs: usize, mut f: impl FnMut() -> Result<Duration, T>) -> anyhow::Result<Duration>
where
    T: Into<anyhow::Error>,
{
    let mut times = (0..runs)
        .map(|_| f().map_err(Into::into))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(median_of(&mut times))
}

fn median_of(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Peak resident set size of this process (VmHWM), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}
