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
//! - `args`: the command line, the cases, TLS files.
//! - `server`: [`server::Server`], a server process (ours, ours ×2 with Redis, a Node
//!   peer, the floor), with /proc readings.
//! - `load`: the clients, [`load::run_case`] (one configuration against one server) and
//!   its [`load::Outcome`]; `generator`: the `fanout-bench generate` processes that hold
//!   the clients of a case too big for one process; `kill`: the kill-a-node run
//!   (`--kill-node`) and its failover clients.
//! - `report`: rows and ratios; `procfs`: a process's memory and CPU time.
//! - This file: the run, case by case, and the side-by-side tables.

mod args;
mod generator;
mod kill;
mod load;
mod procfs;
mod report;
mod server;

use args::{Args, Case, Tls, parse_cases};
use clap::Parser;
use load::{Outcome, run_case};
use report::{ratio, row};
use server::{FLOOR, NODE, NODE_CLUSTER, Server, UWS, floor, floor_stats, node, node_cluster, ours, redis_server};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    if generator::is_generator() {
        return generator::run_child().await;
    }
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

/// Cluster placements: the clients split over both nodes, or all on the node the
/// broadcasts are not posted to.
const SPLIT: &str = "clients split";
const OTHER_NODE: &str = "clients on the other node";

/// A free loopback port (for redis-server, which takes a port number).
async fn free_port() -> Result<u16, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Runs `case` on our `server`, stops it and prints its row; `clean` turns false if it
/// lost or duplicated anything, or clients failed to connect.
async fn run_ours(server: Server, case: Case, clean: &mut bool) -> Result<Outcome, String> {
    let name = server.name.clone();
    let outcome = run_case(&server, case).await;
    server.stop().await;
    let outcome = outcome?;
    println!("{}", row(&name, &outcome));
    *clean &= outcome.lost() == 0 && outcome.dups() == 0 && outcome.connected == case.clients;
    Ok(outcome)
}

/// Runs `case` on a peer that may have failed to start and stops it; prints its row or
/// why there is none (the floor's own figures go to `notes`).
async fn run_peer(name: &str, started: Result<Server, String>, case: Case, notes: &mut Vec<String>) -> Option<Outcome> {
    let server = match started {
        Ok(server) => server,
        Err(e) => {
            println!("| {name} | failed to start: {e} | | | | | | | | | | | | | |");
            return None;
        }
    };
    let outcome = run_case(&server, case).await;
    if name == FLOOR
        && let Some(stats) = floor_stats(&server).await
    {
        notes.push(format!("{case}: the floor's write loop per request: {stats}"));
    }
    server.stop().await;
    match outcome {
        Ok(outcome) => {
            println!("{}", row(name, &outcome));
            Some(outcome)
        }
        Err(e) => {
            println!("| {name} | failed: {e} | | | | | | | | | | | | | |");
            None
        }
    }
}

/// One case: our outcome and each peer's (by name).
type CaseResults = (Case, Outcome, Vec<(String, Outcome)>);

async fn run(args: Args) -> Result<bool, String> {
    let mut cases = parse_cases(&args.cases)?;
    for case in &mut cases {
        case.per_process = args.clients_per_process;
    }
    let floor_bin = match &args.floor {
        Some(path) => path.clone(),
        None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("fanout-floor"),
    };
    let mut clean = true;
    println!(
        "| server | clients connected | p50 ms | p99 ms | max ms | lost | dup | POST/s | POST p50 ms | RSS idle MiB | RSS peak MiB | RSS after MiB | idle KB/conn | CPU µs/delivery | M deliveries/CPU-s | load generator CPU % of a core |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut ratios: Vec<CaseResults> = Vec::new();
    let mut kills: Vec<String> = Vec::new();
    let mut tls_costs = Vec::new();
    let mut notes = Vec::new();
    let tls = args.wss.then(Tls::new);
    for case in &cases {
        println!("| **{case}** | | | | | | | | | | | | | | | |");
        if case.nodes > 1 {
            let port = free_port().await?;
            let redis = redis_server(port).await?;
            let url = format!("redis://127.0.0.1:{port}");
            let server = ours(&args.bridge, args.server_cpu, Some(&url), case.nodes, None).await?;
            let a = run_ours(server, *case, &mut clean).await?;
            let mut peers = Vec::new();
            if !args.no_node {
                let peer = node_cluster(&args.node_cluster, args.server_cpu, &url, case.nodes).await;
                if let Some(b) = run_peer(NODE_CLUSTER, peer, *case, &mut notes).await {
                    peers.push((NODE_CLUSTER.to_owned(), b));
                }
            }
            if args.kill_node {
                let mut server = ours(&args.bridge, args.server_cpu, Some(&url), case.nodes, None).await?;
                let k = kill::run_kill(&mut server, *case).await;
                server.stop().await;
                let k = k?;
                let secs = |s: Option<f64>| s.map_or("never".to_owned(), |s| format!("{s:.1} s"));
                kills.push(format!(
                    "| {case} | {} | {} | {} ({} closed by a node, {} broken; {} opened again, {} CONNECT answered, {} catch-up answers, {} refused) | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.1} |",
                    k.connected,
                    k.refused_posts,
                    k.counts.lost,
                    k.counts.closed,
                    k.counts.broken,
                    k.counts.reopened,
                    k.counts.back,
                    k.counts.catch_ups,
                    k.counts.catch_ups_refused,
                    k.counts.attempts_failed,
                    k.survivors.ended,
                    k.survivors.catch_ups,
                    k.survivors.places.map_or("?".to_owned(), |p| p.to_string()),
                    secs(k.back_after_s),
                    secs(k.complete_after_s),
                    k.gaps.summary(),
                    k.p99_ms,
                    k.rss_peak_kib as f64 / 1024.0
                ));
                clean &= k.incomplete == 0 && k.back_after_s.is_some();
            }
            drop(redis);
            ratios.push((*case, a, peers));
            continue;
        }
        let server = ours(&args.bridge, args.server_cpu, None, 1, None).await?;
        let a = run_ours(server, *case, &mut clean).await?;
        if let Some(tls) = &tls {
            let server = ours(&args.bridge, args.server_cpu, None, 1, Some(tls)).await?;
            let w = run_ours(server, *case, &mut clean).await?;
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
        // The floor writes once per request and keeps what a full socket did not take for
        // the next one: slow readers would wait for it forever.
        if !args.no_floor && !case.slow {
            wanted.push(FLOOR);
        }
        for peer in wanted {
            let server = match peer {
                NODE => node(NODE, &args.node_bridge, args.server_cpu).await,
                UWS => node(UWS, &args.uws_bridge, args.server_cpu).await,
                _ => floor(&floor_bin, args.server_cpu).await,
            };
            if let Some(b) = run_peer(peer, server, *case, &mut notes).await {
                peers.push((peer.to_owned(), b));
            }
        }
        ratios.push((*case, a, peers));
    }
    let mut cluster_rows: Vec<(Case, &str, Outcome, Option<Outcome>)> = Vec::new();
    // The middle of the cases for one node (a case of several nodes is a cluster run already).
    let alone: Vec<Case> = cases.iter().copied().filter(|c| c.nodes == 1).collect();
    if args.redis
        && let Some(&case) = alone.get(alone.len() / 2)
    {
        for (placement, clients_from) in [(SPLIT, 0), (OTHER_NODE, 1)] {
            let port = free_port().await?;
            let redis = redis_server(port).await?;
            let url = format!("redis://127.0.0.1:{port}");
            println!(
                "| **{case}, two nodes sharing Redis ({placement}, posts to node 1)** | | | | | | | | | | | | | | | |"
            );
            let mut server = ours(&args.bridge, args.server_cpu, Some(&url), 2, None).await?;
            server.clients_from = clients_from;
            let o = run_ours(server, case, &mut clean).await?;
            let mut peer = None;
            if !args.no_node {
                let started = node_cluster(&args.node_cluster, args.server_cpu, &url, 2).await;
                let started = started.map(|server| Server { clients_from, ..server });
                peer = run_peer(NODE_CLUSTER, started, case, &mut notes).await;
            }
            drop(redis);
            cluster_rows.push((case, placement, o, peer));
        }
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
    if !cluster_rows.is_empty() {
        println!();
        println!(
            "Cluster mode, same run: ours on two nodes / ours alone on the same case (targets: CPU per delivery \
             at most 1.3, p99 at most 1.5), and ours / the Node bridge on socket.io's Redis adapter:"
        );
        println!();
        println!(
            "| case | placement | CPU per delivery, cluster / alone | p99, cluster / alone | CPU per delivery, ours / Node cluster | p99, ours / Node cluster |"
        );
        println!("|---|---|---|---|---|---|");
        for (case, placement, o, peer) in &cluster_rows {
            let alone = ratios.iter().find(|(c, ..)| c.to_string() == case.to_string()).map(|(_, a, _)| a);
            let (cpu, p99) = match alone {
                Some(a) => (ratio(o.cpu_us_per_delivery, a.cpu_us_per_delivery), ratio(o.p99_ms, a.p99_ms)),
                None => ("-".into(), "-".into()),
            };
            let (peer_cpu, peer_p99) = match peer {
                Some(b) => (ratio(o.cpu_us_per_delivery, b.cpu_us_per_delivery), ratio(o.p99_ms, b.p99_ms)),
                None => ("-".into(), "-".into()),
            };
            println!("| {case} | {placement} | {cpu} | {p99} | {peer_cpu} | {peer_p99} |");
        }
    }
    if !kills.is_empty() {
        println!();
        println!(
            "Kill a node (`--kill-node`): the case again, the last node killed with SIGKILL halfway through; its \
             clients move on to the next address and catch up (times from the kill):"
        );
        println!();
        println!(
            "| case | clients connected | posts answered 503 (posted again) | connections lost | connection attempts failed | connections the surviving nodes ended, by reason | catch-ups they were asked for, by outcome | places on the surviving nodes (their caps under the open-file limit) | last one back after | last one with every product's latest value after | clients without it | live p99 ms | RSS peak MiB (nodes) |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for line in &kills {
            println!("{line}");
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
