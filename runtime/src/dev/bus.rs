//! `relay bus`: a local Nakadi-compatible bus for trying Relay out and for
//! benchmarks. It accepts `POST /event-types/{name}/events` with a JSON array
//! (gzip-compressed or not), answers 200 (or a status it was told to answer),
//! and can print each event. It is the tests' fake Nakadi
//! ([`relay_testkit::FakeNakadi`]) as a plain sink: no schemas checked,
//! nothing stored, only counted.

use std::io::Write;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use anyhow::Context;
use relay_testkit::FakeNakadi;
use serde_json::Value;

/// How the bus behaves.
#[derive(Debug, Clone, Default)]
pub struct DevBusOptions {
    /// Address to listen on; `127.0.0.1:0` (any free port) when empty.
    pub listen: String,
    /// Print one line per received event on stdout.
    pub print: bool,
    /// Answer this status (and accept nothing) instead of 200.
    pub fail_status: Option<u16>,
}

/// A running bus. Stops on drop.
#[derive(Debug)]
pub struct DevBus {
    fake: FakeNakadi,
}

impl DevBus {
    /// Binds and starts serving, on threads of its own.
    pub async fn start(options: DevBusOptions) -> anyhow::Result<DevBus> {
        if let Some(code) = options.fail_status {
            anyhow::ensure!(
                (400..=599).contains(&code),
                "the status to fail with must be 4xx or 5xx (e.g. 503), not {code}"
            );
        }
        let listen = match options.listen.as_str() {
            "" => "127.0.0.1:0",
            listen => listen,
        };
        let mut bus = FakeNakadi::builder()
            .listen(listen)
            .without_validation()
            .without_logs();
        if options.print {
            bus = bus.on_accepted(print_events);
        }
        let fake = bus
            .start()
            .with_context(|| format!("cannot listen on {listen}"))?;
        let bus = DevBus { fake };
        bus.set_fail_status(options.fail_status);
        Ok(bus)
    }

    /// The base URL, e.g. `http://127.0.0.1:8080`.
    pub fn url(&self) -> String {
        self.fake.url()
    }

    /// Events accepted so far.
    pub fn received(&self) -> Arc<AtomicUsize> {
        self.fake.accepted_counter()
    }

    /// From now on answer `status` (None: healthy again).
    pub fn set_fail_status(&self, status: Option<u16>) {
        match status {
            Some(code) => self.fake.respond_status(code, None),
            None => self.fake.healthy(),
        }
    }
}

/// One line per event: `{event_type}[ {data_op}] {eid} {event}`.
fn print_events(event_type: &str, events: &[Value]) {
    let mut out = std::io::stdout().lock();
    for event in events {
        let eid = event["metadata"]["eid"].as_str().unwrap_or("-");
        let op = event["data_op"]
            .as_str()
            .map(|op| format!(" {op}"))
            .unwrap_or_default();
        // A closed stdout (`relay bus | head`) must not stop the bus.
        let _ = writeln!(out, "{event_type}{op} {eid} {event}");
    }
}
