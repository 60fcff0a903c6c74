//! What the bridge's test binaries share: a bridge on its own runtime, raw Engine.IO
//! WebSocket clients, Socket.IO clients (rust_socketio, the client our app uses), and the
//! HTTP calls the back office and operators make.
//!
//! Each test binary uses a part of it.
#![allow(dead_code, unused_imports)]

use futures_util::{FutureExt, SinkExt, StreamExt};
pub use rust_socketio::asynchronous::CONNECT_ERROR;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Payload, TransportType};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use stock_bridge::Bridge;
use stock_bridge::config::BridgeConfig;
pub use stock_testkit::{KEY, TestBridge, add_stock, eventually};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

/// How long any single step may take.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long `/healthz` may take while a fault runs.
pub const HEALTHY: Duration = Duration::from_millis(500);

/// What a Socket.IO client received, as (event name, args), in order.
pub type Events = tokio::sync::mpsc::UnboundedReceiver<(String, Vec<Value>)>;

/// A Socket.IO client whose events and errors (`add_stock`, `sale_mode`, `open`, `error`,
/// [`CONNECT_ERROR`] (a refusal), `close`) arrive on a channel; no reconnecting. Does not
/// wait for `open`.
/// An event's arguments as text: strings as they are, anything else as JSON (a refusal's
/// data is `{"message": ..., "data": {"code": ...}}`).
pub fn text_of(args: &[Value]) -> String {
    args.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect()
}

pub async fn sio_client(addr: SocketAddr, transport: TransportType, token: Option<&str>) -> (Client, Events) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut builder = ClientBuilder::new(format!("http://{addr}")).transport_type(transport).reconnect(false);
    if let Some(token) = token {
        builder = builder.auth(json!({ "token": token }));
    }
    for name in ["add_stock", "sale_mode", "open", "error", CONNECT_ERROR, "close"] {
        let tx = tx.clone();
        builder = builder.on(name, move |payload, _| {
            let args = match payload {
                Payload::Text(v) => v,
                #[allow(deprecated)]
                Payload::String(s) => vec![Value::String(s)],
                Payload::Binary(_) => vec![],
            };
            let _ = tx.send((name.to_owned(), args));
            async {}.boxed()
        });
    }
    let client = timeout(WAIT, builder.connect()).await.expect("connect timed out").expect("connect failed");
    (client, rx)
}

/// The args of the next `name` event (others are skipped), within [`WAIT`].
pub async fn next(rx: &mut Events, name: &str) -> Vec<Value> {
    timeout(WAIT, async {
        loop {
            let (n, args) = rx.recv().await.expect("client channel closed");
            if n == name {
                return args;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {name} within {WAIT:?}"))
}

/// Waits (at most [`WAIT`]) until `bridge`'s audience has `n` members: a client's `open`
/// comes before the bridge's connect handler has it join, so a broadcast right after
/// `open` could miss it (its catch-up would not: that waits for the join).
pub async fn in_audience(bridge: &Bridge, n: usize) {
    eventually(&format!("{n} sockets in the audience"), WAIT, || async { bridge.audience.len() == n }).await;
}

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// A bridge of its own for a test ([`TestBridge`]), its broadcast rate limit lifted (these
/// tests post faster than the back office would).
pub async fn start_isolated(config: BridgeConfig) -> TestBridge {
    TestBridge::start(BridgeConfig { rate_limit: 100_000, ..config }).await
}

/// One HTTP client for the whole test binary (building one loads the system's
/// certificates: tens of milliseconds that would count as the bridge's latency).
pub fn http() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| reqwest::Client::builder().timeout(WAIT).build().unwrap()).clone()
}

/// `/healthz` answers 200 within [`HEALTHY`].
pub async fn assert_healthy(addr: SocketAddr, during: &str) {
    let started = Instant::now();
    match timeout(HEALTHY, http().get(format!("http://{addr}/healthz")).send()).await {
        Ok(Ok(r)) if r.status() == 200 => {}
        Ok(other) => panic!("/healthz failed {during}: {other:?}"),
        Err(_) => panic!("/healthz took over {HEALTHY:?} {during} ({:?} so far)", started.elapsed()),
    }
}

/// `POST /broadcast` with `key` (when given); the status and the JSON answer.
pub async fn post_with(addr: SocketAddr, key: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = http().post(format!("http://{addr}/broadcast")).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let res = timeout(WAIT, request.send())
        .await
        .expect("POST /broadcast got no answer: the bridge is frozen")
        .expect("POST /broadcast failed");
    (res.status().as_u16(), res.json().await.unwrap_or_default())
}

/// `POST /broadcast` without a key.
pub async fn post(addr: SocketAddr, body: &Value) -> (u16, Value) {
    post_with(addr, None, body).await
}

/// A raw Engine.IO WebSocket client, connected to `/`, that reads only when told to.
pub async fn raw_client(addr: SocketAddr) -> Ws {
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = timeout(WAIT, tokio_tungstenite::connect_async(url)).await.unwrap().unwrap();
    let open = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert!(open.to_text().unwrap().starts_with('0'), "engine.io open: {open:?}");
    ws.send(Message::text("40")).await.unwrap();
    loop {
        let frame = timeout(WAIT, ws.next()).await.expect("no socket.io CONNECT").unwrap().unwrap();
        match frame.to_text().unwrap() {
            "2" => ws.send(Message::text("3")).await.unwrap(),
            text if text.starts_with("40") => return ws,
            other => panic!("unexpected frame during handshake: {other}"),
        }
    }
}

/// Reads `ws` until it closes (or is quiet for [`WAIT`]), answering pings; returns the
/// text frames seen.
pub fn keep_reading(ws: Ws) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(read_frames(ws, None))
}

/// [`keep_reading`] that also returns as soon as the frame `last` has arrived (the bridge
/// need not close the transport after it).
pub fn read_until(ws: Ws, last: &'static str) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(read_frames(ws, Some(last)))
}

async fn read_frames(mut ws: Ws, last: Option<&'static str>) -> Vec<String> {
    let mut seen = Vec::new();
    // Quiet for WAIT ends it, and so does 3 x WAIT in all (pings would renew a quiet wait).
    let deadline = tokio::time::Instant::now() + 3 * WAIT;
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout_at(deadline.min(tokio::time::Instant::now() + WAIT), ws.next()).await
    {
        if let Message::Text(text) = frame {
            if text.as_str() == "2" {
                let _ = ws.send(Message::text("3")).await;
            } else {
                seen.push(text.to_string());
                if last == Some(text.as_str()) {
                    break;
                }
            }
        }
    }
    seen
}

/// Sends `count` catch-up requests in one burst (ack ids 0..count) without reading.
pub async fn spam_catch_ups(ws: &mut Ws, count: usize) {
    for id in 0..count {
        ws.feed(Message::text(format!("42{id}[\"stock:catch_up\",{{}}]"))).await.unwrap();
    }
    ws.flush().await.unwrap();
}

/// Fills the bridge's last-value cache with `count` products from `first` on.
pub async fn cache_products(bridge: &Bridge, first: i64, count: i64) {
    let policy = stock_protocol::EventPolicy::default();
    for product in first..first + count {
        let req = stock_protocol::BroadcastRequest::parse(add_stock(product).to_string().as_bytes(), &policy).unwrap();
        bridge.relay(req).await.unwrap();
    }
}

/// The resident memory of this process, in bytes.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// A till over a raw WebSocket, its handshake `auth` as given; returns once the bridge
/// answered its CONNECT (accepted or refused: the answer is returned).
pub async fn raw_till(addr: SocketAddr, auth: &Value) -> (Ws, String) {
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = timeout(WAIT, tokio_tungstenite::connect_async(url)).await.unwrap().unwrap();
    let open = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert!(open.to_text().unwrap().starts_with('0'));
    ws.send(Message::text(format!("40{auth}"))).await.unwrap();
    let answer = next_text(&mut ws, |t| t.starts_with("40") || t.starts_with("44")).await;
    (ws, answer)
}

/// The next text frame for which `wanted` holds (pings answered, others skipped).
pub async fn next_text(ws: &mut Ws, wanted: impl Fn(&str) -> bool) -> String {
    timeout(WAIT, async {
        loop {
            let frame = ws.next().await.expect("the connection ended").expect("a frame");
            let Message::Text(text) = frame else { continue };
            if text.as_str() == "2" {
                ws.send(Message::text("3")).await.unwrap();
            } else if wanted(text.as_str()) {
                return text.to_string();
            }
        }
    })
    .await
    .expect("no such frame in time")
}

/// Sends `event` with `payload` asking for acknowledgement `ack`; returns the answer's arguments.
pub async fn emit_with_ack(ws: &mut Ws, ack: u32, event: &str, payload: &str) -> Value {
    ws.send(Message::text(format!("42{ack}[\"{event}\",{payload}]"))).await.unwrap();
    let prefix = format!("43{ack}");
    let answer = next_text(ws, |t| t.starts_with(&prefix)).await;
    serde_json::from_str(&answer[prefix.len()..]).unwrap()
}
