//! `fleet-bench`: what the fleet view costs the bridge with a chain's worth of tills.
//!
//! Starts `stock-bridge serve` (its fleet in a SQLite file), connects N tills (raw
//! Engine.IO/Socket.IO WebSockets, each saying who it is) and measures, printing figures
//! (nothing is asserted):
//! - the bridge's CPU spent on health reports and fleet writes: its CPU over a window
//!   with every till reporting every `--report-every-secs`, minus the same window with
//!   the tills connected and silent, as a share of one core;
//! - SQLite batches and records written per second in that window (from `/metrics`);
//! - `GET /fleet` latency (a page of 100, a page of 1,000, a search) with all N listed;
//! - with `--page`, the fleet page in headless Chromium (`bench/fleet-page.js`): its first
//!   paint with N tills, and its frame times while `--churn-per-sec` tills leave and come
//!   back every second.

#[path = "procfs.rs"]
mod procfs;

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;

const SUPPORT: &str = "fleet-bench-support-key-0123456789";

#[derive(Parser, Debug)]
#[command(about = "What the fleet view costs the bridge with many tills")]
struct Args {
    /// The stock-bridge binary.
    #[arg(long, env = "STOCK_BRIDGE_BIN")]
    bridge: PathBuf,
    /// Tills connected.
    #[arg(long, default_value_t = 10_000)]
    tills: usize,
    /// Seconds between one till's reports.
    #[arg(long, default_value_t = 30)]
    report_every_secs: u64,
    /// Seconds each CPU window lasts (one silent, one reporting).
    #[arg(long, default_value_t = 60)]
    window_secs: u64,
    /// Pin the bridge to this CPU (the load runs wherever it is started).
    #[arg(long)]
    server_cpu: Option<usize>,
    /// Also measure the page in headless Chromium (needs node and tests/node's packages).
    #[arg(long)]
    page: bool,
    /// Tills that leave and come back each second while the page is measured.
    #[arg(long, default_value_t = 100)]
    churn_per_sec: usize,
}

/// A till's health report, as the client core sends it.
fn report(n: usize) -> String {
    let now = chrono::Utc::now().to_rfc3339();
    let body = json!({"state": "socket connected", "since": now, "reconnects_1h": n % 3, "reconnects_24h": n % 7,
        "last_seq": 1000 + n, "gaps": 0, "rtt_ms": 12, "clock_offset_ms": -30, "notifications": true,
        "products": 400 + n % 100, "sent_at": now});
    format!("42[\"stock:health\",{body}]")
}

/// What the tills send every period: nothing, a trivial event (what any message costs the
/// transport), or their health report.
const SILENT: u8 = 0;
const TRIVIAL: u8 = 1;
const REPORTS: u8 = 2;

/// One till: connects as `till-{n}`, answers pings, every `every` sends what `sending`
/// says, until `stop`; `leave` makes it close and connect again (churn).
async fn till(
    addr: SocketAddr,
    n: usize,
    every: Duration,
    sending: Arc<AtomicU8>,
    connected: Arc<AtomicUsize>,
    mut leave: tokio::sync::mpsc::Receiver<()>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let auth = json!({"till": {"till_id": format!("till-{n}"), "name": format!("Counter {n}"), "app": "desktop",
        "version": if n.is_multiple_of(50) { "0.0.9" } else { "0.1.0" }, "os": "windows"}});
    while !*stop.borrow() {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let Ok(Ok((mut ws, _))) =
            tokio::time::timeout(Duration::from_secs(30), tokio_tungstenite::connect_async(url)).await
        else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let _ = ws.next().await;
        if ws.send(Message::text(format!("40{auth}"))).await.is_err() {
            continue;
        }
        connected.fetch_add(1, Ordering::Relaxed);
        // Each till reports at its own phase of the period.
        let phase = every.mul_f64((n % 997) as f64 / 997.0);
        let mut next = tokio::time::Instant::now() + phase;
        let mut stop = stop.clone();
        loop {
            tokio::select! {
                frame = ws.next() => match frame {
                    Some(Ok(Message::Text(t))) if t.as_str() == "2" => { let _ = ws.send(Message::text("3")).await; }
                    Some(Ok(_)) => {}
                    _ => break,
                },
                _ = tokio::time::sleep_until(next) => {
                    next += every;
                    let message = match sending.load(Ordering::Relaxed) {
                        TRIVIAL => Some("42[\"bench:noop\",{}]".to_owned()),
                        REPORTS => Some(report(n)),
                        _ => None,
                    };
                    if let Some(message) = message && ws.send(Message::text(message)).await.is_err() {
                        break;
                    }
                }
                _ = leave.recv() => break,
                _ = stop.changed() => break,
            }
        }
        connected.fetch_sub(1, Ordering::Relaxed);
        let _ = ws.close(None).await;
    }
}

async fn support_get(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let res = http
        .get(url)
        .bearer_auth(SUPPORT)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    res.json().await.map_err(|e| e.to_string())
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut command = match args.server_cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu.to_string()]).arg(&args.bridge);
            c
        }
        None => Command::new(&args.bridge),
    };
    let mut bridge = command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("STOCK_BRIDGE_API_KEY", "fleet-bench-api-key-0123456789")
        .env("STOCK_BRIDGE_SUPPORT_KEY", SUPPORT)
        .env("STOCK_BRIDGE_FLEET_DB", dir.path().join("fleet.db"))
        .env("STOCK_BRIDGE_HANDSHAKE_RATE", "1000000")
        .env("STOCK_BRIDGE_MAX_CONNECTIONS", "19000")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", args.bridge.display()))?;
    let mut lines = BufReader::new(bridge.stdout.take().expect("piped")).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .map_err(|_| "the bridge did not start".to_owned())?
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let url = line.rsplit(' ').next().unwrap_or_default().to_owned();
    let addr: SocketAddr = url.trim_start_matches("http://").parse().map_err(|_| format!("no address in {line:?}"))?;
    let pid = bridge.id().ok_or("the bridge has no pid")?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().map_err(|e| e.to_string())?;

    // The tills, connected a few hundred at a time.
    let sending = Arc::new(AtomicU8::new(SILENT));
    let connected = Arc::new(AtomicUsize::new(0));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let every = Duration::from_secs(args.report_every_secs.max(1));
    let mut leaves = Vec::with_capacity(args.tills);
    let started = Instant::now();
    for n in 0..args.tills {
        let (leave, left) = tokio::sync::mpsc::channel(1);
        leaves.push(leave);
        tokio::spawn(till(addr, n, every, sending.clone(), connected.clone(), left, stopped.clone()));
        if n % 200 == 199 {
            while connected.load(Ordering::Relaxed) + 50 < n {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let page = support_get(&http, &format!("{url}/fleet?per_page=1")).await?;
        if page["counts"]["online"].as_u64() == Some(args.tills as u64) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("only {} of {} tills online in the fleet", page["counts"]["online"], args.tills));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("{} tills connected and listed in {:.1} s", args.tills, started.elapsed().as_secs_f64());
    let rss = |pid: u32| procfs::proc_status_kib(pid, "VmRSS:") as f64 / 1024.0;
    println!("bridge RSS with {} tills: {:.1} MiB", args.tills, rss(pid));

    // CPU: a silent window, one with a trivial event per till and period (what any message
    // costs the transport), then one with the reports.
    let window = Duration::from_secs(args.window_secs.max(5));
    let cpu_window = |what: u8| {
        let sending = sending.clone();
        async move {
            sending.store(what, Ordering::Relaxed);
            // One whole period first, so every till sends at its own phase in the window.
            tokio::time::sleep(every).await;
            let before = procfs::proc_cpu(pid);
            tokio::time::sleep(window).await;
            procfs::proc_cpu(pid) - before
        }
    };
    let silent = cpu_window(SILENT).await;
    let trivial = cpu_window(TRIVIAL).await;
    sending.store(REPORTS, Ordering::Relaxed);
    tokio::time::sleep(every).await;
    let metrics_url = format!("{url}/metrics");
    let metrics = |http: reqwest::Client| {
        let metrics_url = metrics_url.clone();
        async move {
            let text = http
                .get(metrics_url)
                .bearer_auth("fleet-bench-api-key-0123456789")
                .send()
                .await
                .map_err(|e| e.to_string())?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(text)
        }
    };
    let m0 = metrics(http.clone()).await?;
    let cpu_before = procfs::proc_cpu(pid);
    tokio::time::sleep(window).await;
    let loud = procfs::proc_cpu(pid) - cpu_before;
    let m1 = metrics(http.clone()).await?;
    let secs = window.as_secs_f64();
    let delta = |name: &str| (metric(&m1, name) - metric(&m0, name)) / secs;
    let reports = delta("stock_bridge_fleet_reports_total{outcome=\"accepted\"}");
    let cost = (loud.as_secs_f64() - silent.as_secs_f64()) / secs * 100.0;
    let beyond_transport = (loud.as_secs_f64() - trivial.as_secs_f64()) / secs * 100.0;
    println!();
    println!("| figure | measured | target |");
    println!("|---|---|---|");
    println!(
        "| bridge CPU, {} tills connected and silent | {:.2} % of one core | |",
        args.tills,
        silent.as_secs_f64() / secs * 100.0
    );
    println!(
        "| bridge CPU, the same tills reporting every {} s ({reports:.0} reports/s) | {:.2} % of one core | |",
        args.report_every_secs,
        loud.as_secs_f64() / secs * 100.0
    );
    println!(
        "| bridge CPU, the same tills each sending a trivial event every {} s instead | {:.2} % of one core | |",
        args.report_every_secs,
        trivial.as_secs_f64() / secs * 100.0
    );
    println!(
        "| CPU spent on reports and fleet writes (reporting minus silent) | {cost:.2} % of one core | under 2 % |"
    );
    println!(
        "| of it, beyond what receiving any message costs the transport (reporting minus trivial) | {beyond_transport:.2} % of one core | |"
    );
    println!(
        "| SQLite: batches written per second, tills per batch | {:.2} /s, {:.0} | one transaction a second at most |",
        delta("stock_bridge_fleet_writes_total"),
        delta("stock_bridge_fleet_records_written_total") / delta("stock_bridge_fleet_writes_total").max(f64::EPSILON),
    );

    // GET /fleet with everyone listed.
    for (what, query, times) in [
        ("a page of 100", "?per_page=100", 200),
        ("a page of 1,000", "?per_page=1000", 40),
        ("a search", "?q=counter%2099&per_page=100", 100),
        ("offline only", "?state=offline", 100),
    ] {
        let mut took = Vec::with_capacity(times);
        for _ in 0..times {
            let t = Instant::now();
            support_get(&http, &format!("{url}/fleet{query}")).await?;
            took.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        took.sort_by(f64::total_cmp);
        println!(
            "| GET /fleet, {what} of {} tills: p50 / p99 | {:.1} / {:.1} ms | |",
            args.tills,
            percentile(&took, 0.5),
            percentile(&took, 0.99)
        );
    }

    if args.page {
        // Tills leave and come back while the page is watched.
        let churn = args.churn_per_sec;
        let leaving = leaves.clone();
        let churning = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut next = 0;
            loop {
                tick.tick().await;
                for _ in 0..churn {
                    let _ = leaving[next % leaving.len()].try_send(());
                    next += 1;
                }
            }
        });
        let out = Command::new("node")
            .arg("bench/fleet-page.js")
            .arg(&url)
            .arg(SUPPORT)
            .output()
            .await
            .map_err(|e| format!("cannot run node: {e}"))?;
        churning.abort();
        let text = String::from_utf8_lossy(&out.stdout);
        match text.lines().last().map(serde_json::from_str::<Value>) {
            Some(Ok(page)) => {
                println!(
                    "| the page's first paint with {} tills (navigation to the table drawn) | {:.0} ms | under 1,000 ms |",
                    args.tills,
                    page["first_rows_ms"].as_f64().unwrap_or(f64::NAN)
                );
                println!(
                    "| the page's frame time while {churn} tills change per second: p50 / p99 / max ({} frames) | {:.1} / {:.1} / {:.1} ms | |",
                    page["frames"],
                    page["frame_p50_ms"].as_f64().unwrap_or(f64::NAN),
                    page["frame_p99_ms"].as_f64().unwrap_or(f64::NAN),
                    page["frame_max_ms"].as_f64().unwrap_or(f64::NAN)
                );
            }
            _ => println!("| the page | not measured: {} | |", String::from_utf8_lossy(&out.stderr).trim()),
        }
    }
    println!();
    println!("bridge RSS at the end: {:.1} MiB", rss(pid));
    let _ = stop.send(true);
    let _ = bridge.kill().await;
    Ok(())
}
