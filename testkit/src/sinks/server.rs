//! The HTTP/1.1 server under the sink fakes: keep-alive connections, each on
//! a thread of its own, all registered so the port can be closed and every
//! open connection cut (the service is down), and bound again later. Requests
//! are read with the fake Nakadi's reader ([`crate::nakadi`]).

use std::collections::HashMap;
use std::io::{self, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::nakadi::{read_request, reason, Request};

/// An answer to write.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn new(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
        }
    }

    /// A status with no body.
    pub(crate) fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub(crate) fn redirect(status: u16, location: &str) -> Response {
        Response::empty(status).with_header("Location", location)
    }

    pub(crate) fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What to do with a request: answer (`None`: close the connection without
/// one), after holding it back this long.
pub(crate) struct Reply {
    pub(crate) response: Option<Response>,
    pub(crate) hang: Option<Duration>,
}

pub(crate) type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

struct Conns {
    open: Mutex<HashMap<u64, TcpStream>>,
    next: AtomicU64,
}

impl Conns {
    fn open(&self) -> MutexGuard<'_, HashMap<u64, TcpStream>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Listening {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// A server on a random port of `127.0.0.1`; stops on drop.
pub(crate) struct Server {
    name: &'static str,
    addr: SocketAddr,
    handler: Handler,
    conns: Arc<Conns>,
    listening: Mutex<Option<Listening>>,
}

impl Server {
    pub(crate) fn start(name: &'static str, handler: Handler) -> io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let conns = Arc::new(Conns {
            open: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        });
        let listening = listen(name, listener, handler.clone(), conns.clone());
        Ok(Server {
            name,
            addr,
            handler,
            conns,
            listening: Mutex::new(Some(listening)),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn listening(&self) -> MutexGuard<'_, Option<Listening>> {
        self.listening.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn refuse_connections(&self) {
        if let Some(listening) = self.listening().take() {
            listening.stop.store(true, Ordering::SeqCst);
            // Wake the blocking accept; the thread then sees `stop`.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2));
            let _ = listening.thread.join();
        }
        for (_, conn) in self.conns.open().drain() {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }

    /// Panics if the port cannot be bound again within 10 s.
    pub(crate) fn accept_connections(&self) {
        let mut listening = self.listening();
        if listening.is_some() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(listener) => break listener,
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("{}: cannot listen on {} again: {e}", self.name, self.addr),
            }
        };
        *listening = Some(listen(
            self.name,
            listener,
            self.handler.clone(),
            self.conns.clone(),
        ));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.refuse_connections();
    }
}

fn listen(
    name: &'static str,
    listener: TcpListener,
    handler: Handler,
    conns: Arc<Conns>,
) -> Listening {
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = stop.clone();
        thread::Builder::new()
            .name(format!("{name}-accept"))
            .spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    match stream {
                        Ok(stream) => connection(name, stream, &handler, &conns),
                        Err(e) => eprintln!("{name}: accept failed: {e}"),
                    }
                }
            })
            .expect("spawn the accepting thread")
    };
    Listening { stop, thread }
}

/// Registers a connection (before the next is accepted, so cutting them all
/// misses none) and serves it on a thread of its own.
fn connection(name: &'static str, stream: TcpStream, handler: &Handler, conns: &Arc<Conns>) {
    let _ = stream.set_nodelay(true);
    let Ok(registered) = stream.try_clone() else {
        let _ = stream.shutdown(Shutdown::Both);
        return;
    };
    let id = conns.next.fetch_add(1, Ordering::SeqCst);
    conns.open().insert(id, registered);
    let (handler, conns) = (handler.clone(), conns.clone());
    let spawned = thread::Builder::new()
        .name(format!("{name}-conn"))
        .spawn(move || {
            let _ = serve(&stream, &handler);
            let _ = stream.shutdown(Shutdown::Both);
            conns.open().remove(&id);
        });
    if spawned.is_err() {
        eprintln!("{name}: cannot spawn a connection thread");
    }
}

fn serve(stream: &TcpStream, handler: &Handler) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    let mut writer = stream;
    loop {
        let request = match read_request(&mut reader, &mut writer) {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let answer = Response::new(400, "text/plain", e.to_string().into_bytes());
                return write(&mut writer, &answer, true);
            }
            Err(e) => return Err(e),
        };
        // A fake's bug answers 500 rather than leaving the client waiting.
        let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&request)))
            .unwrap_or_else(|_| Reply {
                response: Some(Response::new(
                    500,
                    "text/plain",
                    b"the fake panicked: see the test's output".to_vec(),
                )),
                hang: None,
            });
        if let Some(delay) = reply.hang {
            thread::sleep(delay);
        }
        let Some(response) = reply.response else {
            return Ok(());
        };
        write(&mut writer, &response, request.close)?;
        if request.close {
            return Ok(());
        }
    }
}

fn write(writer: &mut impl Write, response: &Response, close: bool) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\n",
        response.status,
        reason(response.status),
        response.body.len()
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(&response.body);
    writer.write_all(&out)?;
    writer.flush()
}
