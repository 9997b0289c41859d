//! Serving and waiting, shared by the fakes.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Serves each request of `server` on a thread of its own (so a long-poll
/// never blocks the next request) until `closing` says so.
pub fn serve_each_request(
    name: &'static str,
    server: Arc<tiny_http::Server>,
    closing: impl Fn() -> bool + Send + 'static,
    handle: impl Fn(tiny_http::Request) + Send + Sync + 'static,
) -> JoinHandle<()> {
    let handle = Arc::new(handle);
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
    lock: &Mutex<T>,
    changed: &Condvar,
    timeout: Duration,
    done: impl Fn(&T) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if done(&state) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        state = changed
            .wait_timeout(state, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}
