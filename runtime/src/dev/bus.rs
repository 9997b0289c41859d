//! `relay bus`: a local Nakadi-compatible bus for trying Relay out and for
//! benchmarks. It accepts `POST /event-types/{name}/events` with a JSON array,
//! answers 200 (or a status it was told to answer), and can print each event.
//! It is not Nakadi: no schemas, no partitions, nothing is stored.

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

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

/// A running bus.
pub struct DevBus {
    url: String,
    received: Arc<AtomicUsize>,
    fail_status: Arc<AtomicU16>,
}

impl DevBus {
    /// Binds and starts serving on the current tokio runtime.
    pub async fn start(options: DevBusOptions) -> anyhow::Result<DevBus> {
        let listen = if options.listen.is_empty() {
            "127.0.0.1:0".to_owned()
        } else {
            options.listen.clone()
        };
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let received = Arc::new(AtomicUsize::new(0));
        let fail_status = Arc::new(AtomicU16::new(options.fail_status.unwrap_or(0)));
        let (counter, status) = (received.clone(), fail_status.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (counter, status) = (counter.clone(), status.clone());
                let print = options.print;
                tokio::spawn(async move {
                    let _ = serve(stream, counter, status, print).await;
                });
            }
        });
        Ok(DevBus {
            url,
            received,
            fail_status,
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:8080`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Events accepted so far.
    pub fn received(&self) -> Arc<AtomicUsize> {
        self.received.clone()
    }

    /// From now on answer `status` (None: healthy again).
    pub fn set_fail_status(&self, status: Option<u16>) {
        self.fail_status
            .store(status.unwrap_or(0), Ordering::Relaxed);
    }
}

async fn serve(
    stream: tokio::net::TcpStream,
    counter: Arc<AtomicUsize>,
    fail_status: Arc<AtomicU16>,
    print: bool,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        let event_type = request_line
            .split_whitespace()
            .nth(1)
            .and_then(|path| path.strip_prefix("/event-types/"))
            .and_then(|rest| rest.strip_suffix("/events"))
            .map(str::to_owned);
        let status = fail_status.load(Ordering::Relaxed);
        let answer = match (&event_type, status) {
            (None, _) => "404 Not Found",
            (Some(_), 0) => match accept(&body, event_type.as_deref().unwrap_or(""), print) {
                Some(n) => {
                    counter.fetch_add(n, Ordering::Relaxed);
                    "200 OK"
                }
                None => "400 Bad Request",
            },
            (Some(_), 503) => "503 Service Unavailable",
            (Some(_), 429) => "429 Too Many Requests",
            (Some(_), _) => "500 Internal Server Error",
        };
        reader
            .get_mut()
            .write_all(format!("HTTP/1.1 {answer}\r\ncontent-length: 0\r\n\r\n").as_bytes())
            .await?;
    }
}

/// Counts (and prints) the events of a request; `None` if it is not a JSON array.
fn accept(body: &[u8], event_type: &str, print: bool) -> Option<usize> {
    if !print {
        return serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(body)
            .ok()
            .map(|events| events.len());
    }
    let events: Vec<Value> = serde_json::from_slice(body).ok()?;
    for event in &events {
        let eid = event["metadata"]["eid"].as_str().unwrap_or("-");
        let op = event["data_op"]
            .as_str()
            .map(|op| format!(" {op}"))
            .unwrap_or_default();
        println!("{event_type}{op} {eid} {event}");
    }
    Some(events.len())
}
