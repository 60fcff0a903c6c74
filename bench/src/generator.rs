//! Load generator processes: a case with more clients than one process may hold sockets
//! for (20,000 open files here) runs its clients in several `fanout-bench generate`
//! children, each holding at most `--clients-per-process`.
//!
//! The child is told what to do by its environment ([`ADDRS`], [`CLIENTS`], [`EPOCH_US`],
//! [`KILL_EVENTS`], [`READING`])
//! and talks back on stdout, one line each:
//! - `r <n>`: n clients have connected so far; `n <n>`: n deliveries read so far;
//! - after `stop` on its stdin: `c <seq>:<µs>,…` per client (each delivery's sequence and
//!   when it was read, in µs after the parent's epoch), in a kill-a-node run its last `t`
//!   line and `g <gaps>` (what its clients missed: [`crate::kill::Gaps::to_line`]), then
//!   `end`.
//!
//! Both sides turn times into microseconds after one instant (the parent's epoch, as Unix
//! time), so a delivery read in a child maps to the parent's clock.

use crate::kill::{Tally, failover_client};
use crate::load::{Dial, Reading, Readings, client};
use std::io::Write;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The child's environment: the addresses (comma-separated), its client count, the
/// parent's epoch in µs of Unix time.
const ADDRS: &str = "FANOUT_GENERATOR_ADDRS";
const CLIENTS: &str = "FANOUT_GENERATOR_CLIENTS";
const EPOCH_US: &str = "FANOUT_GENERATOR_EPOCH_US";
/// Handshakes one generator process has in flight at most.
const HANDSHAKES_AT_ONCE: usize = 256;

/// Set for a kill-a-node run: the case's event count; the clients are then
/// [`crate::kill::failover_client`]s, started round the addresses.
const KILL_EVENTS: &str = "FANOUT_GENERATOR_KILL_EVENTS";
/// Set (to `throttled`) when the clients read slower than the bridge writes.
const READING: &str = "FANOUT_GENERATOR_READING";

/// Whether this process was started as a generator (`fanout-bench generate`).
pub(crate) fn is_generator() -> bool {
    std::env::args().nth(1).as_deref() == Some("generate")
}

fn unix_us(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// The child: connects its clients, reports, and gives its readings when told to stop.
pub(crate) async fn run_child() -> std::process::ExitCode {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let addrs: Vec<SocketAddr> = var(ADDRS).split(',').filter_map(|a| a.parse().ok()).collect();
    let clients: usize = var(CLIENTS).parse().unwrap_or(0);
    let epoch_us: u64 = var(EPOCH_US).parse().unwrap_or(0);
    if addrs.is_empty() || clients == 0 {
        eprintln!("fanout-bench generate: {ADDRS} and {CLIENTS} must be set");
        return std::process::ExitCode::FAILURE;
    }
    // This process's clock against Unix time, taken once.
    let (base_instant, base_unix_us) = (Instant::now(), unix_us(SystemTime::now()));
    let offset_us = move |at: Instant| {
        (base_unix_us + at.saturating_duration_since(base_instant).as_micros() as u64).saturating_sub(epoch_us)
    };
    let kill_events: Option<usize> = std::env::var(KILL_EVENTS).ok().and_then(|e| e.parse().ok());
    let reading = if var(READING) == "throttled" { Reading::Throttled } else { Reading::AtOnce };
    let tally = Arc::new(Tally::default());
    let received = Arc::new(AtomicU64::new(0));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(clients);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::with_capacity(clients);
    // At most this many handshakes at once: a crowd of tens of thousands overflows the
    // servers' backlogs and times out, which measures the generator, not the server.
    let gate = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES_AT_ONCE));
    for i in 0..clients {
        let addr = addrs[i % addrs.len()];
        let (ready, stop) = (ready_tx.clone(), stop_rx.clone());
        let permit = gate.clone().acquire_owned().await.ok();
        tasks.push(match kill_events {
            Some(events) => tokio::spawn(failover_client(addrs.clone(), i, events, tally.clone(), ready, stop, permit)),
            None => {
                let dial = Dial { index: i, addr, tls: None, reading };
                tokio::spawn(client(dial, received.clone(), ready, stop, permit))
            }
        });
    }
    drop(ready_tx);
    let reporter = {
        let (received, tally) = (received.clone(), tally.clone());
        tokio::spawn(async move {
            let mut connected = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                while let Ok(()) = ready_rx.try_recv() {
                    connected += 1;
                }
                println!("r {connected}");
                println!("n {}", received.load(Ordering::Relaxed) + tally.received.load(Ordering::Relaxed));
                println!("t {}", counts_line(&tally));
            }
        })
    };
    // Until `stop` (or the parent's end).
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = stdin.next_line().await {
        if line.trim() == "stop" {
            break;
        }
    }
    reporter.abort();
    let _ = stop_tx.send(true);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for task in tasks {
        let got = task.await.unwrap_or_default();
        let items: Vec<String> = got.iter().map(|(seq, at)| format!("{seq}:{}", offset_us(*at))).collect();
        let _ = writeln!(out, "c {}", items.join(","));
    }
    if kill_events.is_some() {
        // The counts once every client has stopped (the parent reads them after `end`).
        let _ = writeln!(out, "t {}", counts_line(&tally));
        let gaps = tally.gaps.lock().unwrap_or_else(|e| e.into_inner()).to_line();
        let _ = writeln!(out, "g {gaps}");
    }
    let _ = writeln!(out, "end");
    let _ = out.flush();
    std::process::ExitCode::SUCCESS
}

/// A kill run's counts as a `t` line carries them.
fn counts_line(tally: &Tally) -> String {
    let counts: Vec<String> = tally.counts().iter().map(|c| c.load(Ordering::Relaxed).to_string()).collect();
    counts.join(" ")
}

/// A generator child as the parent sees it: its readings come back from [`Child::finish`].
pub(crate) struct Child {
    process: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::task::JoinHandle<Vec<Readings>>,
}

/// Where a child's reports are counted in the parent.
pub(crate) struct Counts {
    /// One message per client connected.
    pub(crate) ready: tokio::sync::mpsc::Sender<()>,
    /// Deliveries read.
    pub(crate) received: Arc<AtomicU64>,
    /// A kill-a-node run's counts.
    pub(crate) tally: Option<Arc<Tally>>,
}

impl Child {
    /// Starts one with `clients` clients on `addrs`, reading as `reading` says (failover
    /// clients for a kill-a-node run of `kill_events` events); what it reports goes to
    /// `counts`. `epoch` is the parent's instant at Unix time `epoch_us`.
    pub(crate) fn start(
        addrs: &[SocketAddr],
        clients: usize,
        (epoch, epoch_us): (Instant, u64),
        (kill_events, reading): (Option<usize>, Reading),
        counts: Counts,
    ) -> Result<Child, String> {
        let Counts { ready, received, tally } = counts;
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let list: Vec<String> = addrs.iter().map(SocketAddr::to_string).collect();
        let mut command = tokio::process::Command::new(exe);
        if let Some(events) = kill_events {
            command.env(KILL_EVENTS, events.to_string());
        }
        if reading == Reading::Throttled {
            command.env(READING, "throttled");
        }
        let mut process = command
            .arg("generate")
            .env(ADDRS, list.join(","))
            .env(CLIENTS, clients.to_string())
            .env(EPOCH_US, epoch_us.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start a load generator: {e}"))?;
        let stdin = process.stdin.take().ok_or("no stdin")?;
        let stdout = process.stdout.take().ok_or("no stdout")?;
        let lines = tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let (mut connected, mut seen) = (0u64, 0u64);
            let mut counted = [0u64; 9];
            let mut got = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                let (kind, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                match kind {
                    "r" => {
                        let now: u64 = rest.parse().unwrap_or(connected);
                        for _ in connected..now {
                            let _ = ready.send(()).await;
                        }
                        connected = connected.max(now);
                    }
                    "n" => {
                        let now: u64 = rest.parse().unwrap_or(seen);
                        received.fetch_add(now.saturating_sub(seen), Ordering::Relaxed);
                        seen = seen.max(now);
                    }
                    "t" => {
                        let now: Vec<u64> = rest.split(' ').filter_map(|n| n.parse().ok()).collect();
                        if let Some(tally) = &tally
                            && now.len() == counted.len()
                        {
                            for (i, (counter, &value)) in tally.counts().into_iter().zip(&now).enumerate() {
                                counter.fetch_add(value.saturating_sub(counted[i]), Ordering::Relaxed);
                                counted[i] = counted[i].max(value);
                            }
                        }
                    }
                    "c" => got.push(
                        rest.split(',')
                            .filter_map(|item| {
                                let (seq, us) = item.split_once(':')?;
                                Some((seq.parse().ok()?, epoch + Duration::from_micros(us.parse().ok()?)))
                            })
                            .collect(),
                    ),
                    "g" => {
                        if let (Some(tally), Some(gaps)) = (&tally, crate::kill::Gaps::from_line(rest)) {
                            tally.gaps.lock().unwrap_or_else(|e| e.into_inner()).add(&gaps);
                        }
                    }
                    "end" => break,
                    _ => {}
                }
            }
            got
        });
        Ok(Child { process, stdin, lines })
    }

    /// Its process id (for its CPU time), while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.process.id()
    }

    /// Tells it to stop, and takes each of its clients' readings.
    pub(crate) async fn finish(mut self) -> Vec<Readings> {
        let _ = self.stdin.write_all(b"stop\n").await;
        let _ = self.stdin.flush().await;
        let got = tokio::time::timeout(Duration::from_secs(120), self.lines).await;
        let _ = self.process.kill().await;
        match got {
            Ok(Ok(got)) => got,
            _ => Vec::new(),
        }
    }
}

/// How a case's clients are shared among generator processes (each at most
/// `--clients-per-process`), or None when this process holds them all.
pub(crate) fn sizes(case: crate::args::Case) -> Option<Vec<usize>> {
    let per = case.per_process.max(1);
    (case.clients > per).then(|| (0..case.clients).step_by(per).map(|first| per.min(case.clients - first)).collect())
}

/// The parent's epoch: an instant and the same moment in µs of Unix time.
pub(crate) fn epoch() -> (Instant, u64) {
    (Instant::now(), unix_us(SystemTime::now()))
}
