//! `soak`: the bridge under a crowd that misbehaves, for a set time.
//!
//! Starts `stock-bridge serve` on 127.0.0.1:0, connects N raw Socket.IO (WebSocket)
//! clients of which a fifth misbehave at random — stall and resume, drop and reconnect,
//! spam catch-ups, stop reading for good — and posts `add_stock` at a set rate. At the end
//! it checks that the bridge still answers, that every well-behaved client holds exactly
//! the latest value of every product, and how the bridge's memory compares with where it
//! started; it prints those figures and exits non-zero on a failed check.
//!
//! Loopback only; every loop is bounded by `--secs`.

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use tokio::process::Command;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
#[command(name = "soak", about = "Soak the bridge with a misbehaving crowd and check nothing was lost")]
struct Args {
    /// The stock-bridge binary.
    #[arg(long)]
    bridge: PathBuf,
    /// Clients in all (a fifth misbehave).
    #[arg(long, default_value_t = 1_000)]
    clients: usize,
    /// Broadcasts per second.
    #[arg(long, default_value_t = 50)]
    rate: u64,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 60)]
    secs: u64,
    /// Distinct products updated.
    #[arg(long, default_value_t = 500)]
    products: i64,
    /// Crowds one after the other against the same bridge (memory must settle, not grow).
    #[arg(long, default_value_t = 1)]
    rounds: u32,
}

const WAIT: Duration = Duration::from_secs(10);
type Values = Arc<Mutex<HashMap<i64, i64>>>;
type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

async fn connect(addr: SocketAddr) -> Result<Ws, String> {
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect failed: {e}"))?;
    timeout(WAIT, ws.next()).await.map_err(|_| "no engine.io open".to_owned())?;
    ws.send(Message::text("40")).await.map_err(|e| e.to_string())?;
    loop {
        let frame = timeout(WAIT, ws.next()).await.map_err(|_| "no CONNECT".to_owned())?;
        let Some(Ok(frame)) = frame else { return Err("closed during the handshake".into()) };
        let text = frame.into_text().map_err(|e| e.to_string())?;
        if text.as_str() == "2" {
            ws.send(Message::text("3")).await.map_err(|e| e.to_string())?;
        } else if text.starts_with("40") {
            return Ok(ws);
        } else if text.starts_with("44") {
            return Err(format!("handshake refused: {text}"));
        }
    }
}

/// Applies one frame to `values`; answers pings. False when the connection is over.
async fn handle(
    ws: &mut Ws,
    frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    values: &Values,
) -> bool {
    let Some(Ok(Message::Text(text))) = frame else { return matches!(frame, Some(Ok(_))) };
    if text.as_str() == "2" {
        return ws.send(Message::text("3")).await.is_ok();
    }
    if let Some(rest) = text.strip_prefix("42") {
        if let Ok(serde_json::Value::Array(args)) = serde_json::from_str::<serde_json::Value>(rest)
            && args.first().and_then(|e| e.as_str()) == Some("add_stock")
        {
            let data = &args[1];
            if let (Some(p), Some(s)) = (data["product_id"].as_i64(), data["in_stock"].as_i64()) {
                values.lock().unwrap().insert(p, s);
            }
        }
    } else if text.starts_with("43") {
        // A catch-up answer: latest values of what changed.
        if let Some(start) = text.find('[')
            && let Ok(serde_json::Value::Array(args)) = serde_json::from_str::<serde_json::Value>(&text[start..])
        {
            for item in args.first().and_then(|a| a["items"].as_array()).into_iter().flatten() {
                if let (Some(p), Some(s)) = (item["data"]["product_id"].as_i64(), item["data"]["in_stock"].as_i64()) {
                    values.lock().unwrap().insert(p, s);
                }
            }
        }
    }
    true
}

/// A well-behaved client: reads everything until `until`, then reports what it holds.
async fn good(addr: SocketAddr, until: Instant, values: Values, lost: Arc<AtomicU64>) {
    let Ok(mut ws) = connect(addr).await else {
        lost.fetch_add(1, Ordering::Relaxed);
        return;
    };
    while Instant::now() < until {
        let left = until.saturating_duration_since(Instant::now());
        if let Ok(frame) = timeout(left.min(WAIT), ws.next()).await
            && !handle(&mut ws, frame, &values).await
        {
            lost.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
    // Drain what is already on its way (the last broadcasts), bounded.
    let drain_until = Instant::now() + Duration::from_secs(3);
    while let Ok(frame) = timeout(drain_until.saturating_duration_since(Instant::now()), ws.next()).await {
        if !handle(&mut ws, frame, &values).await {
            break;
        }
    }
}

/// A misbehaving client: picks a fault at random, again and again, until `until`.
async fn rogue(addr: SocketAddr, until: Instant, seed: u64, faults: Arc<AtomicU64>) {
    let mut rng = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let scratch: Values = Arc::default();
    while Instant::now() < until {
        let Ok(mut ws) = connect(addr).await else { continue };
        faults.fetch_add(1, Ordering::Relaxed);
        let pause = Duration::from_millis(500 + next(4_000));
        match next(4) {
            // Stall, then resume reading.
            0 => {
                tokio::time::sleep(pause).await;
                let resume_until = Instant::now() + pause;
                while Instant::now() < resume_until.min(until) {
                    if let Ok(frame) = timeout(Duration::from_millis(200), ws.next()).await
                        && !handle(&mut ws, frame, &scratch).await
                    {
                        break;
                    }
                }
            }
            // Drop and reconnect.
            1 => {
                tokio::time::sleep(pause / 4).await;
                drop(ws);
            }
            // Spam catch-ups, reading nothing.
            2 => {
                for id in 0..200 {
                    if ws.feed(Message::text(format!("42{id}[\"stock:catch_up\",{{}}]"))).await.is_err() {
                        break;
                    }
                }
                let _ = ws.flush().await;
                tokio::time::sleep(pause).await;
            }
            // Stop reading for good (until the bridge gives up on it or time runs out).
            _ => {
                tokio::time::sleep(until.saturating_duration_since(Instant::now()).min(Duration::from_secs(30))).await;
            }
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<bool, String> {
    if args.clients < 5 || args.rate == 0 || args.secs < 20 || args.products < 1 || args.rounds == 0 {
        return Err("--clients must be at least 5, --secs at least 20 (every product is updated in a round), --rate, --products and --rounds at least 1".into());
    }
    let mut child = Command::new(&args.bridge)
        // Every client comes from 127.0.0.1: the per-address handshake limit would refuse most.
        .args(["serve", "--listen", "127.0.0.1:0", "--rate-limit", "100000", "--handshake-rate", "1000000"])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", args.bridge.display()))?;
    let pid = child.id().ok_or("the bridge exited at once")?;
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let mut line = String::new();
    timeout(WAIT, stdout.read_line(&mut line))
        .await
        .map_err(|_| "the bridge did not say where it listens")?
        .map_err(|e| e.to_string())?;
    let addr: SocketAddr = line
        .trim()
        .rsplit("http://")
        .next()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("unexpected first line: {line}"))?;
    let http = reqwest::Client::builder().timeout(WAIT).build().map_err(|e| e.to_string())?;
    let rss_start = rss_kib(pid);
    println!(
        "soak: {} round(s) of {} s, {} clients each ({} misbehaving), add_stock at {}/s over {} products; bridge RSS at start {} MiB",
        args.rounds,
        args.secs,
        args.clients,
        args.clients / 5,
        args.rate,
        args.products,
        rss_start / 1024
    );
    let mut truth: HashMap<i64, i64> = HashMap::new();
    let mut posted = 0u64;
    let mut all_ok = true;
    let mut ends = Vec::new();
    for round in 1..=args.rounds {
        let outcome = crowd_round(&args, addr, pid, &http, &mut truth, &mut posted).await;
        all_ok &= outcome.ok;
        ends.push(outcome.rss_end);
        println!("round {round}: {}", outcome.summary);
    }
    // Memory is back near where it was after the first crowd left: later rounds must not
    // keep what earlier ones used (a leak grows round after round; an allocator keeping
    // its pages does not).
    let first = ends[0];
    let last = *ends.last().unwrap_or(&first);
    let settled = last <= first + first / 4 + 8 * 1024;
    if args.rounds > 1 {
        println!(
            "  bridge RSS after each round's crowd left: {} MiB: {}",
            ends.iter().map(|k| (k / 1024).to_string()).collect::<Vec<_>>().join(", "),
            if settled { "settled" } else { "GROWING" }
        );
    }
    let _ = child.kill().await;
    let ok = all_ok && settled;
    println!("soak: {}", if ok { "passed" } else { "FAILED" });
    Ok(ok)
}

/// What one round found.
struct RoundOutcome {
    ok: bool,
    rss_end: u64,
    summary: String,
}

/// One crowd: connects, misbehaves and broadcasts for `--secs`, then leaves.
async fn crowd_round(
    args: &Args,
    addr: SocketAddr,
    pid: u32,
    http: &reqwest::Client,
    truth: &mut HashMap<i64, i64>,
    posted: &mut u64,
) -> RoundOutcome {
    let rss_before = rss_kib(pid);
    let rogues = args.clients / 5;
    let goods = args.clients - rogues;
    let until = Instant::now() + Duration::from_secs(args.secs);
    let lost = Arc::new(AtomicU64::new(0));
    let faults = Arc::new(AtomicU64::new(0));
    let mut good_values = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..args.clients {
        if i % 5 == 4 {
            tasks.push(tokio::spawn(rogue(addr, until, i as u64 + 1, faults.clone())));
        } else {
            let values: Values = Arc::default();
            good_values.push(values.clone());
            tasks.push(tokio::spawn(good(addr, until + Duration::from_secs(1), values, lost.clone())));
        }
    }
    // Broadcasts at the rate, each a new stock for a product in turn; `truth` is the latest.
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / args.rate));
    let mut sent = 0u64;
    let mut failed_posts = 0u64;
    let mut slowest_health = Duration::ZERO;
    let mut rss_peak = rss_before;
    while Instant::now() < until {
        ticker.tick().await;
        let product = (*posted as i64) % args.products;
        let stock = *posted as i64;
        let body = serde_json::json!({"event": "add_stock", "data": {"product_id": product, "in_stock": stock,
            "discount_price": 1, "peak_hour_price": 2, "mediboy_offer_price": 3, "sync_at": "2024-01-01T00:00:00.000Z"}});
        match http.post(format!("http://{addr}/broadcast")).json(&body).send().await {
            Ok(r) if r.status().is_success() => {
                truth.insert(product, stock);
            }
            _ => failed_posts += 1,
        }
        *posted += 1;
        sent += 1;
        if sent.is_multiple_of(args.rate) {
            let t = Instant::now();
            let ok =
                matches!(http.get(format!("http://{addr}/healthz")).send().await, Ok(r) if r.status().is_success());
            slowest_health = slowest_health.max(if ok { t.elapsed() } else { WAIT });
            rss_peak = rss_peak.max(rss_kib(pid));
        }
    }
    for task in tasks {
        let _ = timeout(Duration::from_secs(30), task).await;
    }
    let healthy = matches!(http.get(format!("http://{addr}/healthz")).send().await, Ok(r) if r.status().is_success());
    let exact = good_values.iter().filter(|v| *v.lock().unwrap() == *truth).count();
    let lost = lost.load(Ordering::Relaxed);
    // Give the bridge a moment to let the sockets go, then read the memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_end = rss_kib(pid);
    let clients_left = match http.get(format!("http://{addr}/readyz")).send().await {
        Ok(r) => r.json::<serde_json::Value>().await.ok().and_then(|v| v["clients"].as_u64()),
        Err(_) => None,
    };
    let ok = healthy && failed_posts == 0 && exact == goods && lost == 0 && clients_left == Some(0);
    let summary = format!(
        "{} faults played, {sent} broadcasts; bridge answers at the end: {healthy}; slowest /healthz {:.1} ms; \
         POST failures {failed_posts}; well-behaved clients with exactly the latest value of every product: \
         {exact} / {goods} (dropped {lost}); bridge RSS {} -> peak {} -> {} MiB after the crowd left \
         (clients still connected: {})",
        faults.load(Ordering::Relaxed),
        slowest_health.as_secs_f64() * 1e3,
        rss_before / 1024,
        rss_peak / 1024,
        rss_end / 1024,
        clients_left.map_or("?".to_owned(), |n| n.to_string())
    );
    RoundOutcome { ok, rss_end, summary }
}
