//! Shared pieces of the cross-process tests: a bridge on port 0, the Node reference
//! bridge, a TCP proxy under the test's control, bounded waits.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use stock_bridge::config::BridgeConfig;
use stock_client::{ClientEvent, StateChange};
use stock_protocol::ConnectionState;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

pub use stock_testkit::{KEY, TestBridge};
pub const WAIT: Duration = Duration::from_secs(15);

/// A bridge in this process with the test key ([`TestBridge`]).
pub async fn bridge(config: BridgeConfig) -> TestBridge {
    TestBridge::start(keyed(config)).await
}

/// `config` with the test key.
pub fn keyed(config: BridgeConfig) -> BridgeConfig {
    BridgeConfig { api_key: Some(stock_testkit::api_key()), ..config }
}

/// Posts a broadcast with the test key.
pub async fn post(addr: SocketAddr, body: &Value) -> Value {
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/broadcast"))
        .bearer_auth(KEY)
        .json(body)
        .timeout(WAIT)
        .send()
        .await
        .expect("post failed");
    assert!(res.status().is_success(), "broadcast refused: {}", res.status());
    res.json().await.unwrap_or_default()
}

pub fn add_stock(product: i64, stock: i64) -> Value {
    json!({"event": "add_stock", "data": {"product_id": product, "in_stock": stock, "discount_price": 10.5,
        "peak_hour_price": 12, "mediboy_offer_price": 9, "sync_at": "2024-01-01T00:00:00.000Z"}})
}

/// A loopback port held but not listening: connecting to it is refused until
/// [`tokio::net::TcpSocket::listen`] turns it into a server's listener (no bind-release-rebind race).
pub fn reserved_port() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

/// Loopback, any port: for servers that report the address they bound.
pub const ANY_PORT: &str = "127.0.0.1:0";

/// The target directory's debug folder (where `cargo build` put the binaries).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --workspace` before the tests", path.display());
    path
}

/// A child process killed when dropped.
pub struct Child(pub tokio::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

impl Child {
    /// SIGKILL, and wait for it.
    pub async fn kill(mut self) {
        let _ = self.0.kill().await;
    }
}

/// Starts a program and waits (bounded) for "listening on ..." on its stdout.
async fn spawn_listening(mut cmd: tokio::process::Command) -> (Child, String) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).kill_on_drop(true);
    let mut child = cmd.spawn().expect("cannot start");
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(WAIT, async {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("listening on") {
                return line;
            }
        }
        panic!("exited before listening");
    })
    .await
    .expect("did not start listening in time");
    (Child(child), line)
}

/// Our bridge binary on `addr`.
/// `stock-bridge serve` on `addr` (port 0: any); returns the address it bound.
pub async fn bridge_process(addr: &str) -> (Child, SocketAddr) {
    bridge_process_with(addr, &[]).await
}

/// [`bridge_process`] with more of its environment (cluster mode, a node name…).
pub async fn bridge_process_with(addr: &str, env: &[(&str, &str)]) -> (Child, SocketAddr) {
    let mut cmd = tokio::process::Command::new(bin("stock-bridge"));
    cmd.args(["serve", "--listen", addr]).env("STOCK_BRIDGE_API_KEY", KEY).env("RUST_LOG", "warn");
    cmd.envs(env.iter().copied());
    let (child, line) = spawn_listening(cmd).await;
    let bound = line.rsplit("http://").next().unwrap().trim().parse().expect("the bridge prints its address");
    (child, bound)
}

/// The old Node.js bridge (tests/node/reference-bridge.js) on `port` (0: any).
pub async fn node_bridge(port: u16) -> (Child, SocketAddr) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/node/reference-bridge.js");
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(script).env("PORT", port.to_string());
    let (child, line) = spawn_listening(cmd).await;
    let port: u16 = line.rsplit(' ').next().unwrap().trim().parse().unwrap();
    (child, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Waits (bounded) for a state, skipping everything else; returns its reason.
pub async fn state(events: &mut mpsc::Receiver<ClientEvent>, want: ConnectionState) -> StateChange {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await.expect("client ended") {
                ClientEvent::State(s) if s.state == want => return s,
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never reached {want} within {WAIT:?}"))
}

/// Waits (bounded) for the next non-state event.
pub async fn data(events: &mut mpsc::Receiver<ClientEvent>) -> ClientEvent {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await.expect("client ended") {
                ClientEvent::State(_) => {}
                other => return other,
            }
        }
    })
    .await
    .expect("no event in time")
}

/// A TCP proxy in front of `target`, under the test's control.
pub struct Proxy {
    pub addr: SocketAddr,
    /// Existing connections stop forwarding (a silent cut: no FIN, no RST).
    paused: watch::Sender<bool>,
    /// New connections are closed at once and existing ones dropped.
    refusing: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    pub accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.generation.send_modify(|g| *g += 1);
    }
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (paused, paused_rx) = watch::channel(false);
        let (generation, generation_rx) = watch::channel(0u64);
        let refusing = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (refusing2, accepted2) = (refusing.clone(), accepted.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else { return };
                accepted2.fetch_add(1, Ordering::SeqCst);
                if refusing2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let Ok(outbound) = TcpStream::connect(target).await else { continue };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                let generation = *generation_rx.borrow();
                for (r, w) in [
                    (
                        Box::new(ri) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                        Box::new(wo) as Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
                    ),
                    (Box::new(ro), Box::new(wi)),
                ] {
                    let mut paused = paused_rx.clone();
                    let mut generations = generation_rx.clone();
                    tokio::spawn(async move {
                        let (mut r, mut w) = (r, w);
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            // A paused connection is held open but silent.
                            while *paused.borrow() {
                                tokio::select! {
                                    _ = paused.changed() => {}
                                    _ = generations.wait_for(|g| *g != generation) => return,
                                }
                            }
                            let n = tokio::select! {
                                n = r.read(&mut buf) => match n { Ok(0) | Err(_) => return, Ok(n) => n },
                                _ = generations.wait_for(|g| *g != generation) => return,
                                _ = paused.wait_for(|p| *p) => continue,
                            };
                            if w.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            }
        });
        Proxy { addr, paused, refusing, generation, accepted, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops forwarding on existing connections without closing them.
    pub fn cut_silently(&self) {
        self.paused.send_replace(true);
    }

    /// Drops every connection (the peers see the sockets close) and refuses new ones.
    pub fn go_down(&self) {
        self.refusing.store(true, Ordering::SeqCst);
        self.paused.send_replace(false);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Forwards again, for new connections.
    pub fn come_back(&self) {
        self.refusing.store(false, Ordering::SeqCst);
        self.paused.send_replace(false);
        self.generation.send_modify(|g| *g += 1);
    }
}

/// Quick reconnects for tests on loopback (an attempt still gets 5 s).
pub fn fast() -> stock_client::ClientConfig {
    stock_client::ClientConfig {
        backoff: stock_client::backoff::Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_millis(400),
            ..stock_client::backoff::Backoff::default()
        },
        attempt_timeout: Duration::from_secs(5),
        // Our bridge always answers a catch-up; on a loaded 2-core machine the answer can
        // take longer than the product's 3 s, and these tests are not about that wait.
        catch_up_timeout: Duration::from_secs(10),
        ..stock_client::ClientConfig::default()
    }
}
