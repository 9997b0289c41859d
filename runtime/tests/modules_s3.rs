//! Transform modules from S3 (moto), pinned by sha256, compiled by the relay
//! and cached as artifacts in `RELAY_MODULE_CACHE`: the real `relay` binary
//! (`check`, `run`) loads them, refuses what does not match its pin and any
//! precompiled artifact, survives S3 being gone on a warm start and compiles
//! again over a damaged cache file.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use relay_testkit::{FakeNakadi, Moto, MotoS3};
use serde_json::json;
use sha2::Digest as _;
use support::stack::{eid, records, sample};

const BUCKET: &str = "relay-modules";
const KEY: &str = "orders/data_change-v1.wasm";
const SETTINGS: &str = r#"{ data_type = "payment-order", event_type = "payment-order.changed" }"#;

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// The cache file name of the module with this digest, for this build.
fn cache_name(digest: &str) -> String {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| {
        relay::transform::TransformEngine::new()
            .expect("engine")
            .compatibility_key()
    });
    format!("{digest}-{key}.cwasm")
}

/// Whether `path` holds an artifact the relay cached (its header).
fn is_cached_artifact(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes.starts_with(b"relay artifact 1\n"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// moto with the data-change module uploaded to `s3://BUCKET/KEY`, and a
/// scratch folder holding the config and the module cache.
struct Setup {
    moto: Moto,
    s3: MotoS3,
    dir: PathBuf,
    cache: PathBuf,
    digest: String,
}

impl Setup {
    fn start(name: &str) -> Setup {
        let module = std::fs::read(relay_testkit::guest("data-change")).expect("the built module");
        let moto = Moto::start();
        let s3 = MotoS3::new(&moto);
        s3.create_bucket(BUCKET);
        s3.put(BUCKET, KEY, &module);
        let dir = std::env::temp_dir().join(format!("relay-s3-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch folder");
        Setup {
            moto,
            s3,
            cache: dir.join("cache"),
            dir,
            digest: sha256_hex(&module),
        }
    }

    fn url(key: &str) -> String {
        format!("s3://{BUCKET}/{key}")
    }

    /// Writes the config with these `[tables.<name>]` (module URL, pin).
    fn config(&self, tables: &[(&str, &str, &str)]) -> PathBuf {
        let mut text = String::from(
            "[bus]\nurl = \"http://127.0.0.1:9\"\n\
             [fallback]\nqueue_url = \"http://127.0.0.1:9/123456789012/unused\"\n",
        );
        for (table, module, sha256) in tables {
            text.push_str(&format!(
                "[tables.{table}]\nmodule = \"{module}\"\nsha256 = \"{sha256}\"\nsettings = {SETTINGS}\n"
            ));
        }
        let path = self.dir.join("relay.toml");
        std::fs::write(&path, text).expect("config file");
        path
    }

    /// The config for table `orders` only.
    fn orders(&self, module: &str, sha256: &str) -> PathBuf {
        self.config(&[("orders", module, sha256)])
    }

    /// Runs `relay` with AWS pointing at moto and the scratch cache.
    fn relay(&self, args: &[&str], env: &[(&str, String)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_relay"))
            .args(args)
            .envs(self.moto.env())
            .env("RELAY_MODULE_CACHE", &self.cache)
            .env("RELAY_LOG", "relay=info,warn")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("run relay")
    }

    fn check(&self, config: &Path) -> Output {
        self.relay(&["check", "--config", config.to_str().unwrap()], &[])
    }

    /// The cache file of the module: `<sha256>-<engine>.cwasm`.
    fn cached(&self) -> PathBuf {
        self.cache.join(cache_name(&self.digest))
    }

    fn cache_entries(&self) -> Vec<String> {
        match std::fs::read_dir(&self.cache) {
            Ok(dir) => dir
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `relay run` on `count` sample records of table `orders`, publishing to
/// `nakadi`; returns the process output.
fn run(setup: &Setup, config: &Path, nakadi: &FakeNakadi, count: usize) -> Output {
    let event = setup.dir.join("event.json");
    std::fs::write(&event, sample(count, 7).to_string()).expect("event file");
    setup.relay(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--event",
            event.to_str().unwrap(),
        ],
        &[("RELAY_BUS_URL", nakadi.url())],
    )
}

#[test]
fn check_loads_a_pinned_module_from_s3_and_caches_it() {
    let setup = Setup::start("check");
    let config = setup.orders(&Setup::url(KEY), &setup.digest);
    let out = setup.check(&config);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "ok: table orders → s3://{BUCKET}/{KEY} (sha256 ok, fetched from S3, compiled by the \
             relay, cached at {}; ready in",
            setup.cached().display()
        )),
        "{stdout}"
    );
    assert!(is_cached_artifact(&setup.cached()));
    assert_eq!(setup.cache_entries(), vec![cache_name(&setup.digest)]);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&setup.cache)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "the relay's own folder");
}

#[test]
fn run_publishes_through_a_module_from_s3() {
    let setup = Setup::start("run");
    let nakadi = FakeNakadi::start();
    let config = setup.orders(&Setup::url(KEY), &setup.digest);
    let out = run(&setup, &config, &nakadi, 5);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let response: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(response, json!({"batchItemFailures": []}));
    let mut expected: Vec<String> = records(&sample(5, 7)).iter().map(eid).collect();
    let mut accepted = nakadi.accepted_eids();
    expected.sort();
    accepted.sort();
    assert_eq!(accepted, expected);
}

#[test]
fn a_wrong_pin_is_refused_naming_table_url_and_both_digests() {
    let setup = Setup::start("mismatch");
    let wrong = sha256_hex(b"some other module");
    let config = setup.orders(&Setup::url(KEY), &wrong);
    let url = Setup::url(KEY);
    let check = setup.check(&config);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check.stderr));
    let nakadi = FakeNakadi::start();
    let run = run(&setup, &config, &nakadi, 1);
    assert!(!run.status.success(), "relay run must refuse to start");
    for message in [text(&check.stderr), text(&run.stderr)] {
        for needed in [
            "table orders",
            url.as_str(),
            "does not match its pinned sha256",
            &format!("expected {wrong}"),
            &format!("got {}", setup.digest),
        ] {
            assert!(message.contains(needed), "{needed:?} missing in: {message}");
        }
    }
    assert!(nakadi.requests().is_empty(), "nothing is published");
    assert_eq!(
        setup.cache_entries(),
        Vec::<String>::new(),
        "nothing cached"
    );
}

#[test]
fn a_warm_start_uses_the_cache_when_s3_is_gone() {
    let mut setup = Setup::start("warm");
    let nakadi = FakeNakadi::start();
    let config = setup.orders(&Setup::url(KEY), &setup.digest);
    let cold = run(&setup, &config, &nakadi, 3);
    assert!(cold.status.success(), "{}", text(&cold.stderr));
    assert!(setup.cached().exists());
    // S3 (and all of moto) is gone: only the cache can serve the module.
    setup.moto.stop();
    let warm = run(&setup, &config, &nakadi, 3);
    assert!(warm.status.success(), "{}", text(&warm.stderr));
    assert_eq!(nakadi.accepted_eids().len(), 6, "both runs published");
    let check = setup.check(&config);
    let stdout = text(&check.stdout);
    assert!(check.status.success(), "{stdout}{}", text(&check.stderr));
    assert!(
        stdout.contains(&format!(
            "(sha256 ok, compiled by the relay earlier, loaded from its cache {}; ready in",
            setup.cached().display()
        )),
        "{stdout}"
    );
}

#[test]
fn a_corrupted_cache_file_is_detected_and_fetched_again() {
    let setup = Setup::start("corrupt");
    let config = setup.orders(&Setup::url(KEY), &setup.digest);
    assert!(setup.check(&config).status.success());
    let good = std::fs::read(setup.cached()).unwrap();
    let mut bytes = good.clone();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(setup.cached(), &bytes).unwrap();
    let out = setup.check(&config);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("(sha256 ok, fetched from S3, compiled by the relay"),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("the cached module is damaged"),
        "the corruption is logged: {}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(setup.cached()).unwrap(), good);
    assert_eq!(setup.cache_entries(), vec![cache_name(&setup.digest)]);
}

#[test]
fn a_precompiled_artifact_in_s3_is_refused_even_when_pinned() {
    // Native code from a place a team can replace without a redeploy: the
    // pin only proves these are the bytes somebody chose.
    let setup = Setup::start("artifact");
    let compiled = setup.dir.join("data_change.cwasm");
    let out = setup.relay(
        &[
            "compile",
            relay_testkit::guest("data-change").to_str().unwrap(),
            "-o",
            compiled.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let artifact = std::fs::read(&compiled).unwrap();
    let key = "orders/data_change-v1.cwasm";
    setup.s3.put(BUCKET, key, &artifact);
    let config = setup.orders(&Setup::url(key), &sha256_hex(&artifact));
    let out = setup.check(&config);
    let stdout = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stdout));
    assert!(
        stdout.contains(&format!(
            "invalid: table orders: transform module {} is a precompiled artifact, which is \
             native code that runs unchecked with the relay's credentials, and a module in S3 \
             can be replaced without a redeploy, so it must be WebAssembly",
            Setup::url(key)
        )),
        "{stdout}"
    );
    assert_eq!(
        setup.cache_entries(),
        Vec::<String>::new(),
        "nothing cached"
    );
    let nakadi = FakeNakadi::start();
    let run = run(&setup, &config, &nakadi, 1);
    assert!(!run.status.success(), "relay run must refuse to start");
    assert!(
        text(&run.stderr).contains("is a precompiled artifact"),
        "{}",
        text(&run.stderr)
    );
}

#[test]
fn a_missing_object_or_bucket_is_a_clear_error() {
    let setup = Setup::start("missing");
    let missing_key = Setup::url("orders/data_change-v9.wasm");
    let missing_bucket = format!("s3://no-such-bucket/{KEY}");
    for (url, says) in [
        (missing_key.as_str(), "the object does not exist"),
        (missing_bucket.as_str(), "the bucket does not exist"),
    ] {
        let config = setup.orders(url, &setup.digest);
        let out = setup.check(&config);
        let stdout = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(
            stdout.contains(&format!(
                "invalid: table orders: cannot fetch transform module {url}: {says}"
            )),
            "{stdout}"
        );
    }
    assert_eq!(setup.cache_entries(), Vec::<String>::new());
}

#[test]
fn s3_down_with_nothing_cached_is_a_clear_error() {
    let mut setup = Setup::start("down");
    let config = setup.orders(&Setup::url(KEY), &setup.digest);
    setup.moto.stop();
    let out = setup.check(&config);
    let stdout = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "invalid: table orders: cannot fetch transform module {}: S3 did not answer",
            Setup::url(KEY)
        )),
        "{stdout}"
    );
}

#[test]
fn tables_sharing_a_module_fetch_it_once() {
    let setup = Setup::start("shared");
    let url = Setup::url(KEY);
    let config = setup.config(&[
        ("orders", &url, &setup.digest),
        ("payments", &url, &setup.digest),
    ]);
    let out = setup.check(&config);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("ok: table orders → "), "{stdout}");
    assert!(stdout.contains("ok: table payments → "), "{stdout}");
    assert_eq!(
        stderr.matches("module fetched from S3").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn the_object_replaced_under_the_same_key_is_refused() {
    // The upgrade flow uploads under a new key; overwriting the old key with
    // other bytes must not change what a pinned config runs.
    let setup = Setup::start("replaced");
    setup.s3.put(BUCKET, KEY, b"not the module that was pinned");
    let config = setup.orders(&Setup::url(KEY), &setup.digest);
    let out = setup.check(&config);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("does not match its pinned sha256"),
        "{stderr}"
    );
    assert_eq!(setup.cache_entries(), Vec::<String>::new());
}
