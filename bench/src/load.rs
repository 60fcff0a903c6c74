//! The load: cheap Socket.IO clients ([`client`]), one case against one server
//! ([`run_case`]) and what it measured ([`Outcome`]).

use crate::args::{BATCH, Case};
use crate::generator;
use crate::server::Server;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Connection attempts a client makes before it gives up.
const CONNECT_TRIES: usize = 4;

/// A cheap Socket.IO client (holding `gate`, when given, until its WebSocket is open): returns (bench_seq, receipt time) for every add_stock.
/// The benchmark clients' WebSocket settings: a 4 KiB read buffer. tungstenite's default
/// (128 KiB) is zeroed again for every read: profiled, that memset was 53 % of a generator
/// process's CPU, which then fell seconds behind at 36,000 clients × 1/s and answered the
/// bridge's pings too late (the cascade of the 2026-12-06 kill runs).
pub(crate) fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096)
}

/// A connection to `addr` from a loopback source address of its own (127.x.y.z, by
/// `client` and this process): every client from 127.0.0.1 makes the kernel search one
/// address's ephemeral ports for each connect, a search that grows with the ports in use.
/// Profiled in a kill run at 36,000 clients: 84 % of a generator's CPU in
/// `__inet_hash_connect` / `__inet_check_established`, inside `connect` calls that held
/// its runtime's threads for seconds, so pings went unanswered and the bridge closed
/// clients it still had (the reconnect cascade). Tills come from addresses of their own.
/// With `reading` throttled, its receive buffer is small, so the bridge's writes wait
/// for the client as they would for a till on a slow line.
pub(crate) async fn open_tcp(
    client: usize,
    addr: SocketAddr,
    reading: Reading,
) -> std::io::Result<tokio::net::TcpStream> {
    let n = client as u32 ^ std::process::id().wrapping_mul(2_654_435_761);
    let source =
        std::net::Ipv4Addr::new(127, 1 + ((n / 250) % 250) as u8, ((n / 62_500) % 250) as u8, 2 + (n % 250) as u8);
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    if reading == Reading::Throttled {
        socket.set_recv_buffer_size(THROTTLED_RECEIVE_BUFFER)?;
    }
    socket.connect(addr).await
}

/// How a bench client reads what the bridge sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Reading {
    /// As fast as it can.
    #[default]
    AtOnce,
    /// Slower than the bridge writes: a receive buffer of [`THROTTLED_RECEIVE_BUFFER`]
    /// bytes, and a pause of [`THROTTLED_PAUSE`] after every [`THROTTLED_EVERY`] events
    /// (at most 1,000 events a second). The bridge's writes then find the socket full and
    /// wait for it, the case the independent harness measured (2026-12-02: 0.45 M
    /// deliveries per CPU-second).
    Throttled,
}

const THROTTLED_RECEIVE_BUFFER: u32 = 16 * 1024;
const THROTTLED_EVERY: u64 = 10;
const THROTTLED_PAUSE: Duration = Duration::from_millis(10);

/// Where and how a bench client connects and reads.
pub(crate) struct Dial {
    /// Its number (its loopback source address comes from it).
    pub(crate) index: usize,
    pub(crate) addr: SocketAddr,
    pub(crate) tls: Option<native_tls::TlsConnector>,
    pub(crate) reading: Reading,
}

pub(crate) async fn client(
    Dial { index, addr, tls, reading }: Dial,
    received: Arc<AtomicU64>,
    ready: tokio::sync::mpsc::Sender<()>,
    stop: tokio::sync::watch::Receiver<bool>,
    gate: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Vec<(u64, Instant)> {
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let url = format!("{scheme}://{addr}/socket.io/?EIO=4&transport=websocket");
    let connector = tls.map(tokio_tungstenite::Connector::NativeTls);
    // A few tries: under a crowd of handshakes a server may drop one (a full backlog, its
    // header timeout), as a till would retry.
    let mut ws = None;
    for _ in 0..CONNECT_TRIES {
        let connecting = async {
            let tcp = open_tcp(index, addr, reading).await.map_err(tokio_tungstenite::tungstenite::Error::Io)?;
            tokio_tungstenite::client_async_tls_with_config(&url, tcp, Some(ws_config()), connector.clone()).await
        };
        if let Ok(Ok((opened, _))) = tokio::time::timeout(Duration::from_secs(30), connecting).await {
            ws = Some(opened);
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // The next client may start its handshake.
    drop(gate);
    let Some(ws) = ws else { return Vec::new() };
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
                        if reading == Reading::Throttled && (got.len() as u64).is_multiple_of(THROTTLED_EVERY) {
                            tokio::time::sleep(THROTTLED_PAUSE).await;
                        }
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
pub(crate) struct Outcome {
    pub(crate) connected: usize,
    pub(crate) expected: u64,
    pub(crate) received: u64,
    pub(crate) unique: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) post_per_s: f64,
    pub(crate) post_p50_ms: f64,
    pub(crate) rss_idle_kib: u64,
    pub(crate) rss_peak_kib: u64,
    /// Before any client connected.
    pub(crate) rss_base_kib: u64,
    /// A second after every delivery arrived (what a burst leaves behind).
    pub(crate) rss_after_kib: u64,
    pub(crate) cpu_us_per_delivery: f64,
    /// The server's CPU time while the clients connected (handshakes included).
    pub(crate) connect_cpu_ms: f64,
    /// The load side's CPU while the events went out and arrived, in % of one core (the
    /// generator processes, or this one when it holds the clients). Near 100 % per core it
    /// was given, the latencies include the clients' own queueing.
    pub(crate) load_cpu_pct: f64,
}

impl Outcome {
    /// What one idle connection costs the server: (RSS idle − RSS before) / clients, in KB.
    pub(crate) fn kb_per_connection(&self) -> f64 {
        self.rss_idle_kib.saturating_sub(self.rss_base_kib) as f64 * 1.024 / self.connected.max(1) as f64
    }
    pub(crate) fn deliveries_per_cpu_second(&self) -> f64 {
        1e6 / self.cpu_us_per_delivery
    }
    pub(crate) fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.unique)
    }
    pub(crate) fn dups(&self) -> u64 {
        self.received - self.unique
    }
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// One client's deliveries: each `bench_seq` and when it was read.
pub(crate) type Readings = Vec<(u64, Instant)>;

/// The broadcast `seq` of a case: an `add_stock` of product 5000 + seq % 500 carrying
/// its `bench_seq`.
pub(crate) fn body_of(seq: usize) -> String {
    format!(
        r#"{{"event":"add_stock","data":{{"product_id":{},"in_stock":{},"discount_price":120.5,"peak_hour_price":140,"mediboy_offer_price":90,"sync_at":"2024-01-01T00:00:00.000Z","bench_seq":{seq}}}}}"#,
        5000 + (seq % crate::kill::PRODUCTS),
        seq % 100
    )
}

/// Counts the clients that say they are connected, until all `clients` have or the time
/// is up (about 1,000 connections a second on one core, and a minute to spare).
pub(crate) async fn wait_connected(ready: &mut tokio::sync::mpsc::Receiver<()>, clients: usize) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60) + Duration::from_millis(clients as u64);
    let mut connected = 0;
    while connected < clients {
        match tokio::time::timeout_at(deadline, ready.recv()).await {
            Ok(Some(())) => connected += 1,
            _ => break,
        }
    }
    connected
}

pub(crate) async fn run_case(server: &Server, case: Case) -> Result<Outcome, String> {
    let received = Arc::new(AtomicU64::new(0));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(case.clients.max(1));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Each task gives the readings of one client, or of all of a generator process's.
    let mut tasks: Vec<tokio::task::JoinHandle<Vec<Readings>>> = Vec::new();
    let mut generators = Vec::new();
    let cpu_at_start = server.cpu();
    let rss_base = server.rss_kib();
    let on = &server.addrs[server.clients_from.min(server.addrs.len() - 1)..];
    let reading = if case.slow { Reading::Throttled } else { Reading::AtOnce };
    if let Some(sizes) = generator::sizes(case).filter(|_| server.tls.is_none()) {
        // More sockets than this process may open: generator processes hold them.
        let epoch = generator::epoch();
        for these in sizes {
            let counts = generator::Counts { ready: ready_tx.clone(), received: received.clone(), tally: None };
            generators.push(generator::Child::start(on, these, epoch, (None, reading), counts)?);
        }
    } else {
        // Connect in waves, so the listen backlog is not flooded.
        for i in 0..case.clients {
            let addr = on[i % on.len()];
            let dial = Dial { index: i, addr, tls: server.tls.clone(), reading };
            let client = client(dial, received.clone(), ready_tx.clone(), stop_rx.clone(), None);
            tasks.push(tokio::spawn(async move { vec![client.await] }));
            if i % 200 == 199 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    drop(ready_tx);
    let connected = wait_connected(&mut ready_rx, case.clients).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // let the server settle before reading idle RSS
    let rss_idle = server.rss_kib();
    let cpu_before = server.cpu();
    let connect_cpu = cpu_before.saturating_sub(cpu_at_start);
    let load_pids: Vec<u32> = if generators.is_empty() {
        vec![std::process::id()]
    } else {
        generators.iter().filter_map(generator::Child::pid).collect()
    };
    let load_cpu = || load_pids.iter().map(|&pid| crate::procfs::proc_cpu(pid)).sum::<Duration>();
    let (load_cpu_before, load_from) = (load_cpu(), Instant::now());

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
    let load_cpu_pct =
        load_cpu().saturating_sub(load_cpu_before).as_secs_f64() * 100.0 / load_from.elapsed().as_secs_f64();
    rss_peak = rss_peak.max(server.rss_kib());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = server.rss_kib();
    let _ = stop_tx.send(true);
    for generator in generators {
        let readings = generator.finish().await;
        tasks.push(tokio::spawn(async move { readings }));
    }
    let mut latencies = Vec::with_capacity(expected as usize);
    let mut unique = 0u64;
    let mut total = 0u64;
    for mut got in futures_util::future::join_all(tasks).await.into_iter().flat_map(Result::unwrap_or_default) {
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
        load_cpu_pct,
    })
}
