//! `relay bench --pipeline`: the whole relay end to end against a
//! Nakadi-compatible sink on loopback — events/s and invocation latency for
//! a batch, cold start to ready, and peak RSS — with both example
//! transforms precompiled.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{median_of, peak_rss_kib, BenchArgs};
use relay::config::{
    Config, FallbackConfig, InvocationConfig, ModulesConfig, NakadiConfig, RetryConfig, TableConfig,
};
use relay::dev::bus::{DevBus, DevBusOptions};
use relay::dev::sample::{generate, SampleOptions};
use relay::modules::ModuleSource;
use relay::transform::{Limits, TransformEngine};

/// Runs the end-to-end benchmark and prints its figures.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    // moto (from `.venv`, if set up) serves a parked-items registry, to
    // measure what the lookup costs when nothing is parked.
    let moto = LocalMoto::start();
    isolate_aws(moto.as_ref().map(|m| m.url.as_str()));
    let scratch = std::env::temp_dir().join(format!("relay-bench-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let modules = precompile(args, &scratch)?;
    let batch = batch(args.records);
    let batch_path = scratch.join("batch.json");
    std::fs::write(&batch_path, batch.get())?;
    // The sink keeps answering on its worker thread while child processes
    // (cold start, RSS probe) publish to it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let sink = runtime.block_on(DevBus::start(DevBusOptions::default()))?;
    let (url, received) = (sink.url(), sink.received());
    let config = config(&url, &modules, args.transform_threads);
    let config_path = scratch.join("relay.json");
    std::fs::write(
        &config_path,
        serde_json::to_string(&ConfigFile::from(&config))?,
    )?;

    let latencies = runtime.block_on(async {
        let mut relay = relay::sources::start(&config).await?;
        let (latencies, events) =
            invocations(&mut relay, &batch, args.seconds, "the bench sink", |_| {
                Ok(())
            })
            .await?;
        // Lambda's largest batch: 10,000 records in 6 MB.
        let (largest, largest_bytes) = largest_batch();
        let mut largest_times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let outcome = relay
                .handle(&largest, Instant::now() + Duration::from_secs(60), "bench")
                .await?;
            largest_times.push(t.elapsed());
            anyhow::ensure!(
                outcome.response.batch_item_failures.is_empty() && outcome.stats.events_parked == 0,
                "the bench sink refused events of the largest batch: {:?}",
                outcome.stats
            );
        }
        anyhow::Ok((
            latencies,
            events,
            (median_of(&mut largest_times), largest_bytes),
        ))
    })?;
    let (latencies, events, largest) = (latencies.0, latencies.1, latencies.2);
    let registry = match &moto {
        Some(_) => runtime
            .block_on(registry_cost(args, &config, &batch))
            .map_err(|e| format!("{e:#}")),
        None => Err("no .venv/bin/moto_server (run scripts/setup)".into()),
    };
    drop(moto);
    let received = received.load(Ordering::Relaxed);
    let mut sorted = latencies.clone();
    let median = median_of(&mut sorted);
    let p_max = *sorted.last().expect("rounds");
    let cold = cold_starts(&config_path)?;
    let ten_tables = ten_table_starts(args, &scratch);
    let rss = rss_child(&config_path, &batch_path);
    let _ = std::fs::remove_dir_all(&scratch);

    println!(
        "end to end (intake → transform → publish to a Nakadi-compatible sink on loopback), {} records → {events} events per invocation, {} invocations, {received} events received by the sink:",
        args.records,
        latencies.len()
    );
    println!(
        "  {:>9.0} events/s   invocation latency median {:.1} ms, max {:.1} ms",
        events as f64 / median.as_secs_f64(),
        ms(median),
        ms(p_max)
    );
    println!(
        "  Lambda's largest batch, 10,000 records ({:.2} MB) through to the sink: median {:.1} ms of 5",
        largest.1 as f64 / 1e6,
        ms(largest.0)
    );
    println!(
        "  cold start (process start → ready for the first invocation, both transforms precompiled): median {:.1} ms of {}",
        ms(cold.0),
        cold.1
    );
    match ten_tables {
        Ok(figures) => println!("{figures}"),
        Err(why) => println!("  cold start with 10 tables: skipped ({why})"),
    }
    match rss {
        Ok(kib) => println!(
            "  peak RSS of a fresh relay process over 10 invocations: {:.1} MiB",
            kib as f64 / 1024.0
        ),
        Err(e) => println!("  peak RSS: child probe failed ({e})"),
    }
    match registry {
        Ok(cost) => println!(
            "  parked-items registry, nothing parked (moto on loopback, rounds interleaved): \
             lookup median {:.2} ms per invocation; invocation median {:.1} ms with, {:.1} ms without ({:+.1}%)",
            ms(cost.lookup),
            ms(cost.with),
            ms(cost.without),
            (cost.with.as_secs_f64() / cost.without.as_secs_f64() - 1.0) * 100.0
        ),
        Err(why) => println!("  parked-items registry: skipped ({why})"),
    }
    Ok(())
}

/// One sink's fake, started for the per-sink benchmark: its section, the
/// environment that points the relay at it, and how many events it took.
struct SinkUnderTest {
    kind: &'static str,
    section: String,
    env: Option<(&'static str, String)>,
    taken: Box<dyn Fn() -> usize>,
    clear: Box<dyn Fn()>,
    _fake: Box<dyn std::any::Any>,
}

fn sink_under_test(
    kind: &'static str,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<SinkUnderTest> {
    use relay_testkit::{FakeCloudEvents, FakeEventBridge, FakeKinesis, FakeSns};
    use std::rc::Rc;
    // A testkit fake as the sink under test: counted and cleared per invocation.
    macro_rules! faked {
        ($fake:expr, $section:expr, $env:expr) => {{
            let fake = Rc::new($fake);
            let (counted, cleared) = (fake.clone(), fake.clone());
            let section: String = $section;
            SinkUnderTest {
                kind,
                section: format!("{section}\nrequest_timeout_ms = 10000"),
                env: $env,
                taken: Box::new(move || counted.acknowledged_count()),
                clear: Box::new(move || cleared.clear_logs()),
                _fake: Box::new(fake),
            }
        }};
    }
    Ok(match kind {
        "nakadi" => {
            let bus = runtime.block_on(DevBus::start(DevBusOptions::default()))?;
            let received = bus.received();
            let counted = Rc::new(std::cell::Cell::new(0));
            let url = bus.url();
            SinkUnderTest {
                kind,
                section: format!("kind = \"nakadi\"\nurl = \"{url}\"\nrequest_timeout_ms = 10000"),
                env: None,
                taken: {
                    let (received, counted) = (received.clone(), counted.clone());
                    Box::new(move || received.load(Ordering::Relaxed) - counted.get())
                },
                clear: Box::new(move || counted.set(received.load(Ordering::Relaxed))),
                _fake: Box::new(bus),
            }
        }
        "eventbridge" => {
            let fake = FakeEventBridge::start();
            let env = ("AWS_ENDPOINT_URL_EVENTBRIDGE", fake.url());
            faked!(
                fake,
                "kind = \"eventbridge\"\nsource = \"bench\"".into(),
                Some(env)
            )
        }
        "kinesis" => {
            let fake = FakeKinesis::with_shards(4);
            let env = ("AWS_ENDPOINT_URL_KINESIS", fake.url());
            faked!(
                fake,
                "kind = \"kinesis\"\nstream_name = \"bench\"".into(),
                Some(env)
            )
        }
        "sns" => {
            let fake = FakeSns::start();
            let env = ("AWS_ENDPOINT_URL_SNS", fake.url());
            let section =
                "kind = \"sns\"\ntopic_arn = \"arn:aws:sns:us-east-1:123456789012:bench.fifo\"";
            faked!(fake, section.into(), Some(env))
        }
        "http" => {
            let fake = FakeCloudEvents::start();
            let section = format!(
                "kind = \"http\"\nurl = \"{}/events\"\nsource = \"/bench\"",
                fake.url()
            );
            faked!(fake, section, None)
        }
        other => anyhow::bail!(
            "--sinks {other}: not a sink kind (nakadi, eventbridge, kinesis, sns, http, or all)"
        ),
    })
}

/// `--pipeline --sinks`: events/s end to end to each sink's fake on
/// loopback, one after the other in one run, with Nakadi (`relay bus`) as
/// the reference. The fakes parse every request as the services would, so
/// the figures include the sinks' encoding and the SDK's signing.
pub fn run_sinks(args: &BenchArgs) -> anyhow::Result<()> {
    isolate_aws(None);
    let scratch = std::env::temp_dir().join(format!("relay-bench-sinks-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let modules = precompile(args, &scratch)?;
    let batch = batch(args.records);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let kinds: Vec<&'static str> = match args.sinks.as_deref() {
        None | Some("all") => vec!["nakadi", "eventbridge", "kinesis", "sns", "http"],
        Some(one) => vec![["nakadi", "eventbridge", "kinesis", "sns", "http"]
            .into_iter()
            .find(|k| *k == one)
            .with_context(|| format!("--sinks {one}: not a sink kind"))?],
    };
    println!(
        "end to end to each sink's fake on loopback, {} records per invocation, {:.0} s each:",
        args.records, args.seconds
    );
    let mut reference = None;
    for kind in kinds {
        let sink = sink_under_test(kind, &runtime)?;
        if let Some((key, url)) = &sink.env {
            // SAFETY: the bench's other threads do not read the environment.
            std::env::set_var(key, url);
        }
        let raw: relay::sinks::RawSink = toml::from_str(&sink.section)?;
        let mut config = config("http://127.0.0.1:9", &modules, args.transform_threads);
        config.sinks = relay::sinks::validate_sinks(
            None,
            None,
            None,
            [("out".to_owned(), raw)].into(),
            false,
        )?;
        for table in config.tables.values_mut() {
            table.sinks = vec!["out".to_owned()];
        }
        let (mut latencies, events) = runtime.block_on(async {
            let mut relay = relay::sources::start(&config).await?;
            let what = format!("the {kind} fake");
            invocations(&mut relay, &batch, args.seconds, &what, |events| {
                // The fake keeps what it took: checked and forgotten after
                // each invocation, so its logs do not grow through the run.
                let taken = (sink.taken)();
                (sink.clear)();
                anyhow::ensure!(
                    taken == events,
                    "the {kind} fake took {taken} events of an invocation that published {events}"
                );
                Ok(())
            })
            .await
        })?;
        let median = median_of(&mut latencies);
        let rate = events as f64 / median.as_secs_f64();
        let ratio = match reference {
            None => {
                reference = Some(rate);
                String::new()
            }
            Some(nakadi) => format!("   {:.2}x Nakadi's", rate / nakadi),
        };
        println!(
            "  {:<12} {:>9.0} events/s   invocation median {:.1} ms ({} invocations){ratio}",
            sink.kind,
            rate,
            ms(median),
            latencies.len()
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// Invokes `relay` with `batch` for `seconds` (at least 5 times), each
/// invocation answered in full by the sink (`sink` names it in errors) and
/// then checked with `after(events published)`; returns the latencies and
/// the events one invocation publishes.
async fn invocations(
    relay: &mut relay::pipeline::Relay,
    batch: &serde_json::value::RawValue,
    seconds: f64,
    sink: &str,
    mut after: impl FnMut(usize) -> anyhow::Result<()>,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let mut latencies = Vec::new();
    let mut events = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs_f64(seconds) || latencies.len() < 5 {
        let t = Instant::now();
        let outcome = relay
            .handle(batch, Instant::now() + Duration::from_secs(60), "bench")
            .await?;
        latencies.push(t.elapsed());
        anyhow::ensure!(
            outcome.response.batch_item_failures.is_empty() && outcome.stats.events_parked == 0,
            "{sink} refused events: {:?}",
            outcome.stats
        );
        events = outcome.stats.events_published;
        after(events)?;
    }
    Ok((latencies, events))
}

/// What the registry costs an invocation when nothing is parked.
struct RegistryCost {
    lookup: Duration,
    with: Duration,
    without: Duration,
}

/// Invocations with and without a registry (empty), interleaved.
async fn registry_cost(
    args: &BenchArgs,
    config: &Config,
    batch: &serde_json::value::RawValue,
) -> anyhow::Result<RegistryCost> {
    let table = "relay-bench-registry";
    let client = relay::aws::Clients::from_env().await.dynamodb;
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("item")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("item")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    let mut with_registry = config.clone();
    with_registry.registry = Some(relay::config::RegistryConfig {
        table: table.into(),
    });
    let mut plain = relay::sources::start(config).await?;
    let mut registered = relay::sources::start(&with_registry).await?;
    let (mut with, mut without, mut lookups) = (Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs_f64(args.seconds) || with.len() < 5 {
        for (relay, times) in [(&mut plain, &mut without), (&mut registered, &mut with)] {
            let t = Instant::now();
            let outcome = relay
                .handle(batch, Instant::now() + Duration::from_secs(60), "bench")
                .await?;
            times.push(t.elapsed());
            anyhow::ensure!(
                outcome.stats.events_parked == 0 && outcome.response.batch_item_failures.is_empty(),
                "events were parked: {:?}",
                outcome.stats
            );
            if outcome.stats.registry_lookup > Duration::ZERO {
                lookups.push(outcome.stats.registry_lookup);
            }
        }
    }
    anyhow::ensure!(!lookups.is_empty(), "the registry was never asked");
    Ok(RegistryCost {
        lookup: median_of(&mut lookups),
        with: median_of(&mut with),
        without: median_of(&mut without),
    })
}

/// A moto server from the project's `.venv`, killed on drop.
struct LocalMoto {
    url: String,
    child: std::process::Child,
}

impl LocalMoto {
    fn start() -> Option<LocalMoto> {
        let program = Path::new(".venv/bin/moto_server");
        if !program.exists() {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        let child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let moto = LocalMoto {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(moto);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for LocalMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Child mode: init the relay from the config and print `ready`, then, if
/// asked, run ten invocations and print the peak RSS in KiB.
pub fn probe(config_path: &Path, batch: Option<&Path>, invocations: usize) -> anyhow::Result<()> {
    isolate_aws(None);
    let text = std::fs::read_to_string(config_path)?;
    let file: ConfigFile = serde_json::from_str(&text)?;
    let config = file.into_config();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut relay = relay::sources::start(&config).await?;
        println!("ready");
        if invocations > 0 {
            let text = std::fs::read_to_string(batch.context("--probe-batch")?)?;
            let batch = serde_json::value::RawValue::from_string(text)?;
            for _ in 0..invocations {
                relay
                    .handle(&batch, Instant::now() + Duration::from_secs(60), "bench")
                    .await?;
            }
            println!("{}", peak_rss_kib().context("no /proc/self/status")?);
        }
        anyhow::Ok(())
    })
}

/// Points the AWS SDK at a closed loopback port (DynamoDB at `dynamodb`, a
/// local moto, if given): the bench never parks, and must not reach out to
/// anything.
fn isolate_aws(dynamodb: Option<&str>) {
    for (key, value) in [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        (
            "AWS_ENDPOINT_URL_DYNAMODB",
            dynamodb.unwrap_or("http://127.0.0.1:9"),
        ),
    ] {
        // SAFETY: called before any other thread of this process starts.
        std::env::set_var(key, value);
    }
}

/// Half the records from `orders` (data-change), half from `payments`
/// (order-status).
fn batch(records: usize) -> Box<serde_json::value::RawValue> {
    let mut all = Vec::new();
    for (table, count, seed) in [
        ("orders", records - records / 2, 1),
        ("payments", records / 2, 2),
    ] {
        let event = generate(&SampleOptions {
            count,
            seed,
            table: table.into(),
            ..SampleOptions::default()
        });
        all.extend(event["Records"].as_array().cloned().unwrap_or_default());
    }
    serde_json::value::RawValue::from_string(serde_json::json!({ "Records": all }).to_string())
        .expect("JSON")
}

/// 10,000 `orders` records of `relay sample`, their images cut to a few
/// attributes so the batch stays within Lambda's 6 MB payload.
fn largest_batch() -> (Box<serde_json::value::RawValue>, usize) {
    const KEPT: [&str; 2] = ["order_number", "status"];
    let mut event = generate(&SampleOptions {
        count: 10_000,
        seed: 3,
        ..SampleOptions::default()
    });
    for record in event["Records"].as_array_mut().into_iter().flatten() {
        for image in ["NewImage", "OldImage"] {
            if let Some(image) = record["dynamodb"]
                .get_mut(image)
                .and_then(|i| i.as_object_mut())
            {
                image.retain(|name, _| KEPT.contains(&name.as_str()));
            }
        }
    }
    let text = event.to_string();
    let bytes = text.len();
    assert!(
        bytes <= 6_000_000,
        "the largest batch must fit Lambda's 6 MB: {bytes} bytes"
    );
    (
        serde_json::value::RawValue::from_string(text).expect("JSON"),
        bytes,
    )
}

fn precompile(args: &BenchArgs, scratch: &Path) -> anyhow::Result<[PathBuf; 2]> {
    let engine = TransformEngine::new()?;
    let guests = args
        .transform
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut out = Vec::new();
    for name in ["data_change", "order_status"] {
        let wasm_path = guests.join(format!("{name}.wasm"));
        let wasm = std::fs::read(&wasm_path)
            .with_context(|| format!("cannot read {}", wasm_path.display()))?;
        let artifact = scratch.join(format!("{name}.cwasm"));
        std::fs::write(&artifact, engine.precompile(name, &wasm)?)?;
        out.push(artifact);
    }
    Ok([out[0].clone(), out[1].clone()])
}

fn config(url: &str, modules: &[PathBuf; 2], transform_threads: Option<usize>) -> Config {
    let table = |module: &PathBuf, settings: &str| TableConfig {
        module: ModuleSource::File(module.clone()),
        sha256: None,
        settings: settings.into(),
        limits: Limits::default(),
        sinks: vec![relay::sinks::DEFAULT_SINK.to_owned()],
    };
    let bus = NakadiConfig {
        url: url.into(),
        token_file: None,
        request_timeout: Duration::from_secs(10),
        gzip: false,
        batch_max_events: 1_000,
        batch_max_bytes: 4 << 20,
        max_event_bytes: 999_000,
    };
    Config {
        sinks: [(
            relay::sinks::DEFAULT_SINK.to_owned(),
            relay::sinks::SinkConfig::Nakadi(bus),
        )]
        .into(),
        retry: RetryConfig::default(),
        fallback: FallbackConfig {
            queue_url: "http://127.0.0.1:9/000000000000/bench".into(),
            claim_check_bucket: None,
            claim_check_prefix: String::new(),
        },
        registry: None,
        invocation: InvocationConfig {
            transform_threads: transform_threads
                .unwrap_or(InvocationConfig::default().transform_threads),
            ..InvocationConfig::default()
        },
        // The bench compiled these artifacts itself into its scratch folder.
        modules: ModulesConfig {
            trusted_artifact_dirs: modules[0]
                .parent()
                .map(Path::to_path_buf)
                .into_iter()
                .collect(),
        },
        tables: [
            (
                "orders".to_owned(),
                table(
                    &modules[0],
                    r#"{"data_type":"payment-order","event_type":"payment-order.changed"}"#,
                ),
            ),
            ("payments".to_owned(), table(&modules[1], "{}")),
        ]
        .into(),
    }
}

/// The bench's own config handed to child processes (the routes only; the
/// rest is rebuilt the same way).
#[derive(serde::Serialize, serde::Deserialize)]
struct ConfigFile {
    url: String,
    modules: [PathBuf; 2],
    transform_threads: usize,
}

impl From<&Config> for ConfigFile {
    fn from(config: &Config) -> Self {
        ConfigFile {
            url: config
                .bus()
                .expect("the bench publishes to [bus]")
                .url
                .clone(),
            modules: ["orders", "payments"].map(|table| match &config.tables[table].module {
                ModuleSource::File(path) => path.clone(),
                other => unreachable!("the bench only makes file modules, not {other}"),
            }),
            transform_threads: config.invocation.transform_threads,
        }
    }
}

impl ConfigFile {
    fn into_config(self) -> Config {
        config(&self.url, &self.modules, Some(self.transform_threads))
    }
}

/// Cold start with 10 tables, each its own module (data-change with a
/// custom section that makes its digest differ): `relay check` (which loads
/// as the Lambda's init does) timed from process start, medians of 5, for
/// the `.wasm` compiled at every start (an empty module cache each time),
/// for artifacts shipped for the `.wasm` (`relay compile --artifact-dir`,
/// the layer's way), and for the relay's own warm module cache.
fn ten_table_starts(args: &BenchArgs, scratch: &Path) -> Result<String, String> {
    let relay = super::relay_binary()?;
    let dir = scratch.join("ten-tables");
    let artifacts = dir.join("artifacts");
    std::fs::create_dir_all(&artifacts).map_err(|e| e.to_string())?;
    let wasm = std::fs::read(&args.transform).map_err(|e| e.to_string())?;
    let engine = TransformEngine::new().map_err(|e| e.to_string())?;
    let mut tables = String::new();
    for i in 0..10u8 {
        // A custom section (id 0): name "relay-bench", one byte of payload.
        let mut module = wasm.clone();
        module.extend([0, 13, 11]);
        module.extend(b"relay-bench");
        module.push(i);
        let file = format!("m{i}.wasm");
        std::fs::write(dir.join(&file), &module).map_err(|e| e.to_string())?;
        let artifact = engine
            .precompile(&file, &module)
            .map_err(|e| e.to_string())?;
        let name = relay::modules::shipped_artifact_name(
            relay::modules::Sha256Digest::of(&module),
            std::env::consts::ARCH,
        );
        std::fs::write(artifacts.join(name), artifact).map_err(|e| e.to_string())?;
        tables.push_str(&format!("[tables.t{i}]\nmodule = \"{file}\"\n"));
    }
    let base =
        "[bus]\nurl = \"http://127.0.0.1:9\"\n[fallback]\nqueue_url = \"http://127.0.0.1:9/1/q\"\n";
    let plain = dir.join("plain.toml");
    let shipped = dir.join("shipped.toml");
    std::fs::write(&plain, format!("{base}{tables}")).map_err(|e| e.to_string())?;
    std::fs::write(
        &shipped,
        format!("[modules]\ntrusted_artifact_dirs = [\"artifacts\"]\n{base}{tables}"),
    )
    .map_err(|e| e.to_string())?;
    let start = |config: &Path, cache: &Path| -> Result<Duration, String> {
        let started = Instant::now();
        let out = Command::new(&relay)
            .args(["check", "--config"])
            .arg(config)
            .env("RELAY_MODULE_CACHE", cache)
            .env("RELAY_LOG", "error")
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(started.elapsed())
    };
    let (mut compiled, mut from_shipped, mut cached) = (Vec::new(), Vec::new(), Vec::new());
    let warm = dir.join("warm-cache");
    start(&plain, &warm)?;
    for round in 0..5 {
        compiled.push(start(&plain, &dir.join(format!("cold-cache-{round}")))?);
        from_shipped.push(start(&shipped, &dir.join(format!("unused-cache-{round}")))?);
        cached.push(start(&plain, &warm)?);
    }
    Ok(format!(
        "  cold start with 10 tables (relay check, process start included, median of 5): \
         .wasm compiled {:.0} ms, artifacts shipped for the .wasm {:.1} ms, the relay's warm module cache {:.1} ms",
        ms(median_of(&mut compiled)),
        ms(median_of(&mut from_shipped)),
        ms(median_of(&mut cached)),
    ))
}

/// Spawns fresh processes and times process start → `ready` on stdout.
fn cold_starts(config: &Path) -> anyhow::Result<(Duration, usize)> {
    let mut times = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--probe")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("piped")),
            &mut line,
        )?;
        times.push(started.elapsed());
        child.wait()?;
        anyhow::ensure!(line.trim() == "ready", "probe said {line:?}");
    }
    let n = times.len();
    Ok((median_of(&mut times), n))
}

fn rss_child(config: &Path, batch: &Path) -> anyhow::Result<u64> {
    let out = Command::new(std::env::current_exe()?)
        .arg("--probe")
        .arg(config)
        .arg("--probe-batch")
        .arg(batch)
        .args(["--probe-invocations", "10"])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    Ok(text.lines().last().unwrap_or_default().trim().parse()?)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
