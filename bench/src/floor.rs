//! `fanout-floor`: the least any server must pay on this kernel to fan events out over
//! WebSocket: the reference line of `fanout-bench`'s tables ("ours / floor").
//!
//! One thread, no framework. It accepts WebSocket connections on `/socket.io/` (answering
//! just enough of Engine.IO/Socket.IO for the bench's clients: the open packet and the
//! CONNECT, in one write), and on `POST /broadcast` (one event `{"event", "data"}` or a
//! batch `{"events": [...]}`) encodes the Socket.IO text frames once and writes them to
//! every socket, one `write` per socket per request (a batch's frames go in that one
//! write). It never reads from a client again and never pings. `GET /stats` reports the
//! time the write loop took per request (the floor's time to reach every socket).
//!
//! It is a measuring stick, not a server: no auth, no checks, no back-pressure beyond
//! keeping what the kernel did not take for the next write (counted as `blocked`).

use serde_json::value::RawValue;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Engine.IO open packet: long ping interval, so the silent floor never looks dead.
const OPEN: &str =
    r#"0{"sid":"floor","upgrades":[],"pingInterval":3600000,"pingTimeout":3600000,"maxPayload":1000000}"#;
const CONNECTED: &str = r#"40{"sid":"floor"}"#;
/// The largest request head read.
const HEAD_MAX: usize = 16 * 1024;

struct Conn {
    stream: TcpStream,
    /// What the kernel did not take last time.
    pending: Vec<u8>,
}

#[derive(Default)]
struct Stats {
    requests: u64,
    frames: u64,
    fanout_total: Duration,
    fanout_max: Duration,
    blocked: u64,
    gone: u64,
}

#[derive(Default)]
struct Floor {
    sockets: RefCell<Vec<Conn>>,
    stats: RefCell<Stats>,
    /// A task is writing what the kernel did not take.
    draining: std::cell::Cell<bool>,
}

fn main() -> std::io::Result<()> {
    let listen = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = TcpListener::bind(&listen).await?;
        println!("listening on {}", listener.local_addr()?);
        let floor = Rc::new(Floor::default());
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::task::spawn_local(serve(stream, floor.clone()));
        }
    })
}

/// Serves one connection's requests (HTTP keep-alive) until it becomes a WebSocket.
async fn serve(mut stream: TcpStream, floor: Rc<Floor>) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let Some(head_end) = read_head(&mut stream, &mut buf).await else { return };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        let request_line = head.lines().next().unwrap_or("");
        if request_line.starts_with("GET /socket.io/") {
            let Some(key) = header("sec-websocket-key") else { return };
            let mut out = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                derive_accept_key(key.as_bytes())
            )
            .into_bytes();
            push_frame(&mut out, OPEN.as_bytes());
            push_frame(&mut out, CONNECTED.as_bytes());
            if stream.write_all(&out).await.is_err() {
                return;
            }
            floor.sockets.borrow_mut().push(Conn { stream, pending: Vec::new() });
            return;
        }
        let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        buf.drain(..head_end);
        while buf.len() < length {
            let mut chunk = [0u8; 16 * 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..length).collect();
        let (status, answer) = if request_line.starts_with("POST /broadcast") {
            match frames(&body) {
                Some((count, frames)) => {
                    if floor.fan_out(&frames, count) && !floor.draining.replace(true) {
                        tokio::task::spawn_local(drain(floor.clone()));
                    }
                    ("200 OK", format!(r#"{{"message":"Broadcast queued","queued":{count}}}"#))
                }
                None => ("400 Bad Request", r#"{"message":"Invalid payload"}"#.to_owned()),
            }
        } else if request_line.starts_with("GET /stats") {
            ("200 OK", floor.stats_json())
        } else {
            ("404 Not Found", r#"{"message":"Not found"}"#.to_owned())
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Retries the sockets the kernel did not take everything from, every millisecond, until
/// none is left (the clients keep reading).
async fn drain(floor: Rc<Floor>) {
    while !floor.write_pending() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    floor.draining.set(false);
}

/// Reads until the end of a request head; its length (with the blank line).
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(i + 4);
        }
        if buf.len() > HEAD_MAX {
            return None;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[derive(serde::Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    event: &'a RawValue,
    #[serde(borrow)]
    data: &'a RawValue,
}

#[derive(serde::Deserialize)]
struct Batch<'a> {
    #[serde(borrow)]
    events: Vec<Event<'a>>,
}

/// The WebSocket frames of a body's events (`42["event",data]` each), back to back.
fn frames(body: &[u8]) -> Option<(usize, Vec<u8>)> {
    let text = std::str::from_utf8(body).ok()?;
    let events = match serde_json::from_str::<Batch<'_>>(text) {
        Ok(batch) => batch.events,
        Err(_) => vec![serde_json::from_str::<Event<'_>>(text).ok()?],
    };
    let mut out = Vec::with_capacity(body.len() + events.len() * 16);
    for e in &events {
        let payload = format!("42[{},{}]", e.event.get(), e.data.get());
        push_frame(&mut out, payload.as_bytes());
    }
    Some((events.len(), out))
}

/// Appends an unmasked WebSocket text frame carrying `payload`.
fn push_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.push(0x81);
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=65535 => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

impl Floor {
    /// One write per socket: what is still pending from before, then `frames`. True when
    /// some socket has bytes left over.
    fn fan_out(&self, frames: &[u8], count: usize) -> bool {
        let started = Instant::now();
        let mut blocked = 0;
        let mut sockets = self.sockets.borrow_mut();
        let before = sockets.len();
        sockets.retain_mut(|conn| {
            let written = if conn.pending.is_empty() {
                conn.stream.try_write(frames)
            } else {
                conn.pending.extend_from_slice(frames);
                conn.stream.try_write(&conn.pending)
            };
            let taken = match written {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
                Err(_) => return false,
            };
            if conn.pending.is_empty() {
                if taken < frames.len() {
                    conn.pending.extend_from_slice(&frames[taken..]);
                    blocked += 1;
                }
            } else {
                conn.pending.drain(..taken);
                if !conn.pending.is_empty() {
                    blocked += 1;
                }
            }
            true
        });
        let gone = (before - sockets.len()) as u64;
        drop(sockets);
        let took = started.elapsed();
        let mut stats = self.stats.borrow_mut();
        stats.requests += 1;
        stats.frames += count as u64;
        stats.fanout_total += took;
        stats.fanout_max = stats.fanout_max.max(took);
        stats.blocked += blocked;
        stats.gone += gone;
        blocked > 0
    }

    /// Writes what is pending, once per socket; true when nothing is left.
    fn write_pending(&self) -> bool {
        let mut left = false;
        self.sockets.borrow_mut().retain_mut(|conn| {
            if conn.pending.is_empty() {
                return true;
            }
            match conn.stream.try_write(&conn.pending) {
                Ok(n) => {
                    conn.pending.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return false,
            }
            left |= !conn.pending.is_empty();
            true
        });
        !left
    }

    fn stats_json(&self) -> String {
        let s = self.stats.borrow();
        let mean_us = s.fanout_total.as_secs_f64() * 1e6 / s.requests.max(1) as f64;
        format!(
            r#"{{"sockets":{},"requests":{},"frames":{},"fanout_us_mean":{mean_us:.1},"fanout_us_max":{:.1},"blocked":{},"gone":{}}}"#,
            self.sockets.borrow().len(),
            s.requests,
            s.frames,
            s.fanout_max.as_secs_f64() * 1e6,
            s.blocked,
            s.gone
        )
    }
}
