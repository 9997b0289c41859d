//! Shared by the integration tests: builds the guest components once and
//! finds them.
#![allow(dead_code)]

pub mod aws_proxy;
pub mod dynamodb;
pub mod moto;
pub mod nakadi;
pub mod runtime_api;
pub mod s3;
pub mod stack;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("runtime/ has a parent")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// The guest component built from the workspace crate `package`
/// (`data-change`, `order-status` or `hostile`), built on first use with the
/// same command the README gives.
pub fn guest(package: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace())
            .args([
                "build",
                "--profile",
                "guest",
                "--target",
                "wasm32-wasip2",
                "-p",
                "data-change",
                "-p",
                "order-status",
                "-p",
                "hostile",
            ])
            .status()
            .expect("run cargo to build the guest components");
        assert!(status.success(), "building the guest components failed");
    });
    let path = target_dir()
        .join("wasm32-wasip2/guest")
        .join(format!("{}.wasm", package.replace('-', "_")));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A fixture file of the workspace.
pub fn fixture(relative: &str) -> PathBuf {
    workspace().join(relative)
}

/// Serves each request of `server` on a thread of its own (so a long-poll
/// never blocks the next request) until `closing` says so.
pub fn serve_each_request(
    name: &'static str,
    server: std::sync::Arc<tiny_http::Server>,
    closing: impl Fn() -> bool + Send + 'static,
    handle: impl Fn(tiny_http::Request) + Send + Sync + 'static,
) -> std::thread::JoinHandle<()> {
    let handle = std::sync::Arc::new(handle);
    std::thread::Builder::new()
        .name(format!("{name}-recv"))
        .spawn(move || loop {
            match server.recv() {
                Ok(request) => {
                    let handle = handle.clone();
                    let spawned = std::thread::Builder::new()
                        .name(format!("{name}-request"))
                        .spawn(move || handle(request));
                    if spawned.is_err() {
                        eprintln!("{name}: cannot spawn a request thread");
                    }
                }
                Err(_) if closing() => break,
                Err(e) => eprintln!("{name}: server error: {e}"),
            }
        })
        .expect("spawn the receiving thread")
}

/// Waits on `changed` until `done` holds for the state behind `lock`, or
/// `timeout` passes; returns whether it holds.
pub fn wait_until<T>(
    lock: &std::sync::Mutex<T>,
    changed: &std::sync::Condvar,
    timeout: std::time::Duration,
    done: impl Fn(&T) -> bool,
) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if done(&state) {
            return true;
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return false;
        }
        state = changed
            .wait_timeout(state, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// A small deterministic generator (SplitMix64), so a failing randomized
/// schedule can be replayed from its seed.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with `percent` % probability.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}
