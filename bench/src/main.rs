//! `fanout-bench`: connects N raw Engine.IO/Socket.IO WebSocket clients to a bridge, posts
//! E broadcasts at R per second, and reports delivery latency (POST sent → frame read),
//! loss, duplicates, POST throughput, the server's RSS (idle and peak) and its CPU time
//! per delivered message. It runs the same work against our `stock-bridge`, the old
//! Node.js bridge (`tests/node/reference-bridge.js`), socket.io on uWebSockets.js
//! (`tests/node/uws-bridge.js`) and the floor (`fanout-floor`: one pre-encoded write per
//! socket per request, what any server pays on this kernel), and prints them side by side
//! with ratios. A case `CLIENTSxEVENTS@batch` posts its events as batches of up to 1,000
//! (`{"events": [...]}`) as fast as possible: the burst of a stock import.
//!
//! The load generator is deliberately cheap: one task per client reading text frames,
//! answering pings, and finding `"bench_seq":` in the payload; no JSON parsing.
//!
//! # Layout
//! - [`Server`]: a server process (ours, ours ×2 with Redis, a Node peer, the floor), with
//!   /proc readings.
//! - [`run_case`]: one configuration against one server.
//! - `main`: the configurations, the side-by-side table.

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
#[command(about = "Fan-out benchmark: stock-bridge vs the Node.js bridge")]
struct Args {
    /// The stock-bridge binary.
    #[arg(long, env = "STOCK_BRIDGE_BIN")]
    bridge: PathBuf,
    /// The Node reference bridge script.
    #[arg(long, default_value = "tests/node/reference-bridge.js")]
    node_bridge: PathBuf,
    /// The socket.io-on-uWebSockets.js peer script.
    #[arg(long, default_value = "tests/node/uws-bridge.js")]
    uws_bridge: PathBuf,
    /// The floor program [default: fanout-floor beside this program].
    #[arg(long)]
    floor: Option<PathBuf>,
    /// Configurations: clients x events @ rate (0 = as fast as possible; `batch` = posted as batches), comma-separated.
    #[arg(long, default_value = "1x2000@0,1000x200@50,1000x1000@batch,10000x50@10")]
    cases: String,
    /// Also run the first cluster-sized case on two bridge nodes sharing a redis-server.
    #[arg(long)]
    redis: bool,
    /// Pin servers to this CPU (the generator should be pinned to another, e.g. with taskset).
    #[arg(long)]
    server_cpu: Option<usize>,
    /// Exit non-zero if our bridge loses or duplicates anything.
    #[arg(long)]
    strict: bool,
    /// Skip the Node peers (for profiling our bridge alone; no ratios to them are printed).
    #[arg(long)]
    no_node: bool,
    /// Skip the floor.
    #[arg(long)]
    no_floor: bool,
    /// Also run each case on our bridge over TLS (wss:// and https://, a certificate from a
    /// private CA made for the run), and print what TLS costs.
    #[arg(long)]
    wss: bool,
}

/// TLS for a run over wss: the bridge's files and what clients trust.
struct Tls {
    /// Keeps the files alive.
    _pki: stock_testkit::Pki,
    cert: PathBuf,
    key: PathBuf,
    ca_pem: String,
}

impl Tls {
    fn new() -> Tls {
        let pki = stock_testkit::Pki::new("fanout-bench CA");
        let issued = pki.issue("bridge", &stock_testkit::Leaf::default());
        Tls { cert: issued.cert_file, key: issued.key_file, ca_pem: pki.ca_pem.clone(), _pki: pki }
    }

    fn connector(&self) -> native_tls::TlsConnector {
        let ca = native_tls::Certificate::from_pem(self.ca_pem.as_bytes()).expect("the CA");
        native_tls::TlsConnector::builder().add_root_certificate(ca).build().expect("a TLS connector")
    }
}

#[derive(Debug, Clone, Copy)]
struct Case {
    clients: usize,
    events: usize,
    rate: f64,
    /// Posted as batches of up to [`BATCH`] events, as fast as possible.
    batch: bool,
}

/// Events per batch body in `@batch` cases (the bridge's default maximum).
const BATCH: usize = 1000;

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.batch {
            write!(f, "{} clients x {} events posted as batches of up to {BATCH}", self.clients, self.events)
        } else if self.rate > 0.0 {
            write!(f, "{} clients x {} events at {}/s", self.clients, self.events, self.rate)
        } else {
            write!(f, "{} clients x {} events, as fast as possible", self.clients, self.events)
        }
    }
}

fn parse_cases(s: &str) -> Result<Vec<Case>, String> {
    s.split(',')
        .map(|c| {
            let (ce, rate) = c.trim().split_once('@').ok_or(format!("{c}: expected CLIENTSxEVENTS@RATE"))?;
            let (clients, events) = ce.split_once('x').ok_or(format!("{c}: expected CLIENTSxEVENTS@RATE"))?;
            let batch = rate == "batch";
            Ok(Case {
                clients: clients.parse().map_err(|_| format!("{c}: bad client count"))?,
                events: events.parse().map_err(|_| format!("{c}: bad event count"))?,
                rate: if batch {
                    0.0
                } else {
                    rate.parse().map_err(|_| format!("{c}: bad rate (a number or `batch`)"))?
                },
                batch,
            })
        })
        .collect()
}

/// One server under test: one or more processes.
struct Server {
    name: String,
    procs: Vec<Child>,
    /// Where clients connect (round robin) and where broadcasts are posted (the first).
    addrs: Vec<SocketAddr>,
    /// Served over TLS: clients use this connector and `wss://`, posts `https://`.
    tls: Option<native_tls::TlsConnector>,
    /// The CA the posts trust, over TLS.
    ca_pem: Option<String>,
}

impl Server {
    fn scheme(&self) -> (&'static str, &'static str) {
        if self.tls.is_some() { ("wss", "https") } else { ("ws", "http") }
    }
}

impl Server {
    fn pids(&self) -> Vec<u32> {
        self.procs.iter().filter_map(|p| p.id()).collect()
    }
    /// Resident memory of all processes, in KiB.
    fn rss_kib(&self) -> u64 {
        self.pids().iter().map(|pid| proc_status_kib(*pid, "VmRSS:")).sum()
    }
    /// CPU time (user + system) of all processes.
    fn cpu(&self) -> Duration {
        self.pids().iter().map(|pid| proc_cpu(*pid)).sum()
    }
    async fn stop(mut self) {
        for p in &mut self.procs {
            let _ = p.kill().await;
        }
    }
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn proc_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / 100.0)
}

async fn spawn_listening(mut cmd: Command, cpu: Option<usize>) -> Result<(Child, SocketAddr), String> {
    if let Some(cpu) = cpu {
        let program = cmd.as_std().get_program().to_owned();
        let args: Vec<_> = cmd.as_std().get_args().map(|a| a.to_owned()).collect();
        let envs: Vec<_> = cmd.as_std().get_envs().map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned()))).collect();
        let mut pinned = Command::new("taskset");
        pinned.arg("-c").arg(cpu.to_string()).arg(program).args(args);
        for (k, v) in envs {
            if let Some(v) = v {
                pinned.env(k, v);
            }
        }
        cmd = pinned;
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::null()).kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| format!("cannot start server: {e}"))?;
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(Duration::from_secs(20), async {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("listening on") {
                return Some(line);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or("server did not start listening")?;
    let port: u16 = line
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().trim_end_matches('/').parse().ok())
        .or_else(|| line.rsplit(' ').next()?.trim().parse().ok())
        .ok_or(format!("no port in {line:?}"))?;
    Ok((child, SocketAddr::from(([127, 0, 0, 1], port))))
}

async fn ours(
    bin: &PathBuf,
    cpu: Option<usize>,
    redis: Option<&str>,
    nodes: usize,
    tls: Option<&Tls>,
) -> Result<Server, String> {
    let name = match (redis, tls) {
        (Some(_), _) => format!("stock-bridge x{nodes} + Redis"),
        (None, Some(_)) => "stock-bridge (wss)".into(),
        (None, None) => "stock-bridge".into(),
    };
    let mut server = Server {
        name,
        procs: vec![],
        addrs: vec![],
        tls: tls.map(Tls::connector),
        ca_pem: tls.map(|t| t.ca_pem.clone()),
    };
    for _ in 0..nodes {
        let mut cmd = Command::new(bin);
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--rate-limit",
            "1000000",
            "--client-buffer",
            "4096",
            "--handshake-rate",
            "1000000",
        ])
        .env("RUST_LOG", "error");
        if let Some(url) = redis {
            cmd.args(["--redis-url", url, "--redis-prefix", "bench"]);
        }
        if let Some(tls) = tls {
            cmd.arg("--tls-cert").arg(&tls.cert).arg("--tls-key").arg(&tls.key);
        }
        let (child, addr) = spawn_listening(cmd, cpu).await?;
        server.procs.push(child);
        server.addrs.push(addr);
    }
    Ok(server)
}

async fn node(name: &str, script: &PathBuf, cpu: Option<usize>) -> Result<Server, String> {
    let mut cmd = Command::new("node");
    cmd.arg(script).env("PORT", "0");
    let (child, addr) = spawn_listening(cmd, cpu).await?;
    Ok(Server { name: name.into(), procs: vec![child], addrs: vec![addr], tls: None, ca_pem: None })
}

async fn floor(bin: &PathBuf, cpu: Option<usize>) -> Result<Server, String> {
    let (child, addr) = spawn_listening(Command::new(bin), cpu).await?;
    Ok(Server { name: FLOOR.into(), procs: vec![child], addrs: vec![addr], tls: None, ca_pem: None })
}

const NODE: &str = "Node bridge";
const UWS: &str = "socket.io on uWS";
const FLOOR: &str = "floor";

/// What the floor says about its write loop (`GET /stats`).
async fn floor_stats(server: &Server) -> Option<String> {
    let url = format!("http://{}/stats", server.addrs[0]);
    reqwest::get(url).await.ok()?.text().await.ok()
}

/// A cheap Socket.IO client: returns (bench_seq, receipt time) for every add_stock.
async fn client(
    addr: SocketAddr,
    tls: Option<native_tls::TlsConnector>,
    received: Arc<AtomicU64>,
    ready: tokio::sync::mpsc::Sender<()>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<(u64, Instant)> {
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let url = format!("{scheme}://{addr}/socket.io/?EIO=4&transport=websocket");
    let connector = tls.map(tokio_tungstenite::Connector::NativeTls);
    let connecting = tokio_tungstenite::connect_async_tls_with_config(url, None, false, connector);
    let Ok(Ok((ws, _))) = tokio::time::timeout(Duration::from_secs(30), connecting).await else {
        return Vec::new();
    };
    let (mut tx, mut rx) = ws.split();
    let mut got = Vec::new();
    let mut stop = stop;
    let mut announced = false;
    loop {
        let frame = tokio::select! {
            f = rx.next() => f,
            _ = stop.changed() => break,
        };
        let Some(Ok(Message::Text(text))) = frame else {
            if matches!(frame, Some(Ok(_))) {
                continue;
            }
            break;
        };
        let t = text.as_str();
        let now = Instant::now();
        match t.as_bytes().first() {
            Some(b'0') => {
                let _ = tx.send(Message::text("40")).await;
            }
            Some(b'2') => {
                let _ = tx.send(Message::text("3")).await;
            }
            Some(b'4') if t.starts_with("42") => {
                if let Some(i) = t.find("\"bench_seq\":") {
                    let digits: String = t[i + 12..].chars().take_while(|c| c.is_ascii_digit()).collect();
                    if let Ok(seq) = digits.parse() {
                        got.push((seq, now));
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Some(b'4') if t.starts_with("40") && !announced => {
                announced = true;
                let _ = ready.send(()).await;
            }
            _ => {}
        }
    }
    got
}

#[derive(Debug, Default, Clone)]
struct Outcome {
    connected: usize,
    expected: u64,
    received: u64,
    unique: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    post_per_s: f64,
    post_p50_ms: f64,
    rss_idle_kib: u64,
    rss_peak_kib: u64,
    /// Before any client connected.
    rss_base_kib: u64,
    /// A second after every delivery arrived (what a burst leaves behind).
    rss_after_kib: u64,
    cpu_us_per_delivery: f64,
    /// The server's CPU time while the clients connected (handshakes included).
    connect_cpu_ms: f64,
}

impl Outcome {
    /// What one idle connection costs the server: (RSS idle − RSS before) / clients, in KB.
    fn kb_per_connection(&self) -> f64 {
        self.rss_idle_kib.saturating_sub(self.rss_base_kib) as f64 * 1.024 / self.connected.max(1) as f64
    }
    fn deliveries_per_cpu_second(&self) -> f64 {
        1e6 / self.cpu_us_per_delivery
    }
    fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.unique)
    }
    fn dups(&self) -> u64 {
        self.received - self.unique
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn run_case(server: &Server, case: Case) -> Result<Outcome, String> {
    let received = Arc::new(AtomicU64::new(0));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(case.clients.max(1));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::with_capacity(case.clients);
    let cpu_at_start = server.cpu();
    let rss_base = server.rss_kib();
    // Connect in waves, so the listen backlog is not flooded.
    for i in 0..case.clients {
        let addr = server.addrs[i % server.addrs.len()];
        let client = client(addr, server.tls.clone(), received.clone(), ready_tx.clone(), stop_rx.clone());
        tasks.push(tokio::spawn(client));
        if i % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    drop(ready_tx);
    let mut connected = 0;
    let connect_deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while connected < case.clients {
        match tokio::time::timeout_at(connect_deadline, ready_rx.recv()).await {
            Ok(Some(())) => connected += 1,
            _ => break,
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // let the server settle before reading idle RSS
    let rss_idle = server.rss_kib();
    let cpu_before = server.cpu();
    let connect_cpu = cpu_before.saturating_sub(cpu_at_start);

    let mut http = reqwest::Client::builder().tcp_nodelay(true).timeout(Duration::from_secs(30));
    if let Some(pem) = &server.ca_pem {
        http = http.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).map_err(|e| e.to_string())?);
    }
    let http = http.build().map_err(|e| e.to_string())?;
    let url = format!("{}://{}/broadcast", server.scheme().1, server.addrs[0]);
    let mut sent_at = Vec::with_capacity(case.events);
    let mut rss_peak = rss_idle;
    // Open loop at a fixed rate: each POST leaves on schedule whether or not the previous
    // one was answered (so a slow server cannot lower the offered load). "As fast as
    // possible" posts one after the other.
    let interval = (case.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / case.rate));
    let started = Instant::now();
    let mut posts = tokio::task::JoinSet::new();
    let body_of = |seq: usize| {
        format!(
            r#"{{"event":"add_stock","data":{{"product_id":{},"in_stock":{},"discount_price":120.5,"peak_hour_price":140,"mediboy_offer_price":90,"sync_at":"2024-01-01T00:00:00.000Z","bench_seq":{seq}}}}}"#,
            5000 + (seq % 500),
            seq % 100
        )
    };
    if case.batch {
        let mut first = 0;
        while first < case.events {
            let last = (first + BATCH).min(case.events);
            let events: Vec<String> = (first..last).map(body_of).collect();
            let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
            let t0 = Instant::now();
            sent_at.extend(std::iter::repeat_n(t0, last - first));
            let res = http
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| format!("POST failed: {e}"))?;
            if !res.status().is_success() {
                return Err(format!("POST answered {}", res.status()));
            }
            first = last;
        }
    }
    for seq in (0..case.events).filter(|_| !case.batch) {
        if let Some(interval) = interval {
            tokio::time::sleep_until((started + interval * seq as u32).into()).await;
        }
        let body = body_of(seq);
        let t0 = Instant::now();
        sent_at.push(t0);
        let request = http.post(&url).header("content-type", "application/json").body(body).send();
        let post = async move {
            let res = request.await.map_err(|e| format!("POST failed: {e}"))?;
            if !res.status().is_success() {
                return Err(format!("POST answered {}", res.status()));
            }
            Ok::<f64, String>(t0.elapsed().as_secs_f64() * 1e3)
        };
        if interval.is_some() {
            posts.spawn(post);
        } else {
            post.await?;
        }
        if seq % 50 == 0 {
            rss_peak = rss_peak.max(server.rss_kib());
        }
    }
    let mut post_ms = Vec::with_capacity(case.events);
    while let Some(done) = posts.join_next().await {
        post_ms.push(done.map_err(|e| e.to_string())??);
    }
    if interval.is_none() {
        // Sequential (or batches): the time per POST is the whole posting time over the count.
        post_ms = vec![started.elapsed().as_secs_f64() * 1e3 / case.events.max(1) as f64];
    }
    let posting = started.elapsed();
    let expected = (connected * case.events) as u64;
    let drain_deadline = Instant::now() + Duration::from_secs(10);
    while received.load(Ordering::Relaxed) < expected && Instant::now() < drain_deadline {
        rss_peak = rss_peak.max(server.rss_kib());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu = server.cpu().saturating_sub(cpu_before);
    rss_peak = rss_peak.max(server.rss_kib());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = server.rss_kib();
    let _ = stop_tx.send(true);
    let mut latencies = Vec::with_capacity(expected as usize);
    let mut unique = 0u64;
    let mut total = 0u64;
    for task in tasks {
        let mut got = task.await.unwrap_or_default();
        total += got.len() as u64;
        got.sort_by_key(|g| g.0);
        got.dedup_by_key(|g| g.0);
        unique += got.len() as u64;
        for (seq, at) in got {
            if let Some(sent) = sent_at.get(seq as usize) {
                latencies.push(at.saturating_duration_since(*sent).as_secs_f64() * 1e3);
            }
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    post_ms.sort_by(|a, b| a.total_cmp(b));
    Ok(Outcome {
        connected,
        expected,
        received: total,
        unique,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies.last().copied().unwrap_or(f64::NAN),
        post_per_s: case.events as f64 / posting.as_secs_f64(),
        post_p50_ms: percentile(&post_ms, 0.5),
        rss_idle_kib: rss_idle,
        rss_peak_kib: rss_peak,
        rss_base_kib: rss_base,
        rss_after_kib: rss_after,
        cpu_us_per_delivery: cpu.as_secs_f64() * 1e6 / (unique.max(1) as f64),
        connect_cpu_ms: connect_cpu.as_secs_f64() * 1e3,
    })
}

fn row(name: &str, o: &Outcome) -> String {
    format!(
        "| {name} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {:.0} | {:.3} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} |",
        o.connected,
        o.p50_ms,
        o.p99_ms,
        o.max_ms,
        o.lost(),
        o.dups(),
        o.post_per_s,
        o.post_p50_ms,
        o.rss_idle_kib as f64 / 1024.0,
        o.rss_peak_kib as f64 / 1024.0,
        o.rss_after_kib as f64 / 1024.0,
        o.kb_per_connection(),
        o.cpu_us_per_delivery,
        o.deliveries_per_cpu_second() / 1e6,
    )
}

fn ratio(ours: f64, theirs: f64) -> String {
    if theirs > 0.0 && ours.is_finite() && theirs.is_finite() { format!("{:.2}", ours / theirs) } else { "n/a".into() }
}

async fn redis_server(port: u16) -> Result<Child, String> {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start redis-server: {e}"))?;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(child);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err("redis-server did not start".into())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(2),
        Err(e) => {
            eprintln!("fanout-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// One case: our outcome and each peer's (by name).
type CaseResults = (Case, Outcome, Vec<(String, Outcome)>);

async fn run(args: Args) -> Result<bool, String> {
    let cases = parse_cases(&args.cases)?;
    let floor_bin = match &args.floor {
        Some(path) => path.clone(),
        None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("fanout-floor"),
    };
    let mut clean = true;
    println!(
        "| server | clients connected | p50 ms | p99 ms | max ms | lost | dup | POST/s | POST p50 ms | RSS idle MiB | RSS peak MiB | RSS after MiB | idle KB/conn | CPU µs/delivery | M deliveries/CPU-s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut ratios: Vec<CaseResults> = Vec::new();
    let mut tls_costs = Vec::new();
    let mut notes = Vec::new();
    let tls = args.wss.then(Tls::new);
    for case in &cases {
        println!("| **{case}** | | | | | | | | | | | | | | |");
        let server = ours(&args.bridge, args.server_cpu, None, 1, None).await?;
        let name = server.name.clone();
        let a = run_case(&server, *case).await;
        server.stop().await;
        let a = a?;
        println!("{}", row(&name, &a));
        clean &= a.lost() == 0 && a.dups() == 0 && a.connected == case.clients;
        if let Some(tls) = &tls {
            let server = ours(&args.bridge, args.server_cpu, None, 1, Some(tls)).await?;
            let name = server.name.clone();
            let w = run_case(&server, *case).await;
            server.stop().await;
            let w = w?;
            println!("{}", row(&name, &w));
            clean &= w.lost() == 0 && w.dups() == 0 && w.connected == case.clients;
            tls_costs.push((*case, a.clone(), w));
        }
        let mut peers = Vec::new();
        let mut wanted: Vec<&str> = Vec::new();
        if !args.no_node {
            // The old bridge has no batch endpoint: it is left out of batch cases.
            if !case.batch {
                wanted.push(NODE);
            }
            wanted.push(UWS);
        }
        if !args.no_floor {
            wanted.push(FLOOR);
        }
        for peer in wanted {
            let server = match peer {
                NODE => node(NODE, &args.node_bridge, args.server_cpu).await,
                UWS => node(UWS, &args.uws_bridge, args.server_cpu).await,
                _ => floor(&floor_bin, args.server_cpu).await,
            };
            let server = match server {
                Ok(server) => server,
                Err(e) => {
                    println!("| {peer} | failed to start: {e} | | | | | | | | | | | | | |");
                    continue;
                }
            };
            let b = run_case(&server, *case).await;
            if peer == FLOOR
                && let Some(stats) = floor_stats(&server).await
            {
                notes.push(format!("{case}: the floor's write loop per request: {stats}"));
            }
            server.stop().await;
            match b {
                Ok(b) => {
                    println!("{}", row(peer, &b));
                    peers.push((peer.to_owned(), b));
                }
                Err(e) => println!("| {peer} | failed: {e} | | | | | | | | | | | | | |"),
            }
        }
        ratios.push((*case, a, peers));
    }
    if args.redis {
        let case = cases[cases.len() / 2];
        let port = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?
            .local_addr()
            .map_err(|e| e.to_string())?
            .port();
        let redis = redis_server(port).await?;
        let url = format!("redis://127.0.0.1:{port}");
        let server = ours(&args.bridge, args.server_cpu, Some(&url), 2, None).await?;
        let name = server.name.clone();
        println!(
            "| **{case}, two nodes sharing Redis (clients split, posts to node 1)** | | | | | | | | | | | | | | |"
        );
        let o = run_case(&server, case).await;
        server.stop().await;
        drop(redis);
        let o = o?;
        println!("{}", row(&name, &o));
        clean &= o.lost() == 0 && o.dups() == 0;
    }
    println!();
    println!(
        "Ratios, stock-bridge / each peer in the same run (below 1 is better for latency, CPU and memory; \
         above 1 for POST/s):"
    );
    println!();
    println!("| case | peer | p99 latency | CPU per delivery | RSS peak | idle memory per connection | POST/s |");
    println!("|---|---|---|---|---|---|---|");
    for (case, a, peers) in &ratios {
        for (peer, b) in peers {
            println!(
                "| {case} | {peer} | {} | {} | {} | {} | {} |",
                ratio(a.p99_ms, b.p99_ms),
                ratio(a.cpu_us_per_delivery, b.cpu_us_per_delivery),
                ratio(a.rss_peak_kib as f64, b.rss_peak_kib as f64),
                ratio(a.kb_per_connection(), b.kb_per_connection()),
                ratio(a.post_per_s, b.post_per_s)
            );
        }
    }
    if !notes.is_empty() {
        println!();
        for note in notes {
            println!("- {note}");
        }
    }
    if !tls_costs.is_empty() {
        println!();
        println!(
            "What TLS costs our bridge (wss / ws, same run; the handshakes are the server's CPU while the clients connected, per 1,000 clients):"
        );
        println!();
        println!(
            "| case | CPU per delivery ws µs | wss µs | wss / ws | p99 wss / ws | connecting 1,000 clients ws ms CPU | wss ms CPU | TLS handshakes, per 1,000 ms CPU |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        for (case, ws, wss) in tls_costs {
            let per_thousand = |o: &Outcome| o.connect_cpu_ms * 1000.0 / o.connected.max(1) as f64;
            println!(
                "| {case} | {:.2} | {:.2} | {} | {} | {:.0} | {:.0} | {:.0} |",
                ws.cpu_us_per_delivery,
                wss.cpu_us_per_delivery,
                ratio(wss.cpu_us_per_delivery, ws.cpu_us_per_delivery),
                ratio(wss.p99_ms, ws.p99_ms),
                per_thousand(&ws),
                per_thousand(&wss),
                per_thousand(&wss) - per_thousand(&ws),
            );
        }
    }
    if !clean {
        eprintln!("fanout-bench: our bridge lost or duplicated deliveries, or clients failed to connect");
    }
    Ok(clean || !args.strict)
}
