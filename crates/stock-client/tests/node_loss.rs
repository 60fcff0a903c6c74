//! A cluster node lost under load (issue 26): three `stock-bridge` processes share a real
//! `redis-server`; a few hundred tills (the real client core, each given the three
//! addresses) are spread over them; broadcasts go on while one node is killed with
//! SIGKILL. Its tills must move on to the other two and every till must end with exactly
//! the latest value of every product. The node then comes back on its address and takes
//! new tills again. The size is `NODE_LOSS_TILLS` (default 240); the big run is
//! `bench/node-loss.sh`.

#![cfg(unix)]

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stock_client::{ClientEvent, LiveClient, SocketIoConnector, SocketTarget};
use stock_protocol::ConnectionState;
use tokio::sync::watch;

/// Products in every round of broadcasts.
const PRODUCTS: i64 = 25;
/// Rounds posted before the kill, and while the tills move.
const ROUNDS_BEFORE: i64 = 3;
const ROUNDS_DURING: i64 = 6;
/// How long the whole fleet may take to be back and caught up (a loaded 2-core machine).
const SETTLE: Duration = Duration::from_secs(90);

fn tills() -> usize {
    std::env::var("NODE_LOSS_TILLS").ok().and_then(|n| n.parse().ok()).unwrap_or(240)
}

/// A bridge node in cluster mode as its own process, on `listen`; its address.
async fn node(redis: &str, prefix: &str, name: &str, listen: &str) -> (Child, SocketAddr) {
    let env = [
        ("STOCK_BRIDGE_REDIS_URL", redis),
        ("STOCK_BRIDGE_REDIS_PREFIX", prefix),
        ("STOCK_BRIDGE_NODE_NAME", name),
        // Every till here comes from 127.0.0.1; in a shop each has its own address.
        ("STOCK_BRIDGE_HANDSHAKE_RATE", "100000"),
    ];
    bridge_process_with(listen, &env).await
}

/// What one till has: whether it is connected, and the latest stock of each product.
#[derive(Debug, Clone, Default)]
struct Till {
    connected: bool,
    /// Why it is not, when it is not.
    reason: Option<String>,
    latest: HashMap<i64, i64>,
}

/// Starts a till on `urls` beginning at `index`; its view follows its events.
fn till(urls: &[String], index: usize) -> (LiveClient, watch::Receiver<Till>) {
    let connector = SocketIoConnector::starting_at(SocketTarget::with_addresses(urls.to_vec(), None), index);
    // The product's timing (10 s per attempt, 1–5 s between them, with jitter): a third of
    // the fleet reconnecting at once is what it must cope with. (With the tests' fast
    // retries, 240 tills on debug builds time out and retry faster than the nodes answer.)
    let config = stock_client::ClientConfig { catch_up_timeout: Duration::from_secs(10), ..Default::default() };
    let (client, mut events) = LiveClient::start(Arc::new(connector), config);
    let (view, seen) = watch::channel(Till::default());
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                ClientEvent::State(s) => view.send_modify(|t| {
                    t.connected = s.state == ConnectionState::Connected;
                    t.reason = s.reason;
                }),
                ClientEvent::Stock { snapshot, .. } => {
                    view.send_modify(|t| {
                        t.latest.insert(snapshot.product_id, snapshot.in_stock);
                    });
                }
                _ => {}
            }
        }
    });
    (client, seen)
}

/// One round: every product's stock becomes `round * 1000 + product`, as one batch.
async fn post_round(to: SocketAddr, round: i64) {
    let events: Vec<Value> = (1..=PRODUCTS).map(|p| add_stock(p, round * 1000 + p)).collect();
    let res = reqwest::Client::new()
        .post(format!("http://{to}/broadcast"))
        .bearer_auth(KEY)
        .json(&json!({ "events": events }))
        .timeout(WAIT)
        .send()
        .await
        .expect("the batch was not posted");
    assert!(res.status().is_success(), "batch refused by {to}: {}", res.status());
}

/// Sockets node `addr` holds, from its metrics.
async fn connected_to(addr: SocketAddr) -> usize {
    let text = reqwest::Client::new()
        .get(format!("http://{addr}/metrics"))
        .bearer_auth(KEY)
        .timeout(WAIT)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("stock_bridge_connected_clients "))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as usize
}

/// Waits (bounded by `within`) until every till satisfies `ok`; says how many did not.
async fn all(tills: &[watch::Receiver<Till>], what: &str, within: Duration, ok: impl Fn(&Till) -> bool) {
    let deadline = Instant::now() + within;
    loop {
        let missing: Vec<Till> = tills.iter().map(|t| t.borrow().clone()).filter(|t| !ok(t)).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} tills never {what} within {within:?}; one of them: {:?}",
            missing.len(),
            tills.len(),
            missing[0]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_no_till_and_no_product() {
    let dir = tempfile::tempdir().unwrap();
    let redis = stock_testkit::redis::Redis::start(dir.path()).await;
    let prefix = format!("node-loss-{}", std::process::id());
    let mut nodes = Vec::new();
    for name in ["node-a", "node-b", "node-c"] {
        nodes.push(node(&redis.url(), &prefix, name, ANY_PORT).await);
    }
    let addrs: Vec<SocketAddr> = nodes.iter().map(|(_, a)| *a).collect();
    let urls: Vec<String> = addrs.iter().map(|a| format!("http://{a}")).collect();

    let count = tills();
    let mut clients = Vec::with_capacity(count);
    let mut views = Vec::with_capacity(count);
    for i in 0..count {
        let (client, view) = till(&urls, i % urls.len());
        clients.push(client);
        views.push(view);
    }
    all(&views, "connected", SETTLE, |t| t.connected).await;
    for (addr, name) in addrs.iter().zip(["A", "B", "C"]) {
        let n = connected_to(*addr).await;
        assert!(n >= count / 4, "node {name} holds {n} of {count} tills: they are spread over the list");
    }

    for round in 1..=ROUNDS_BEFORE {
        post_round(addrs[(round as usize) % 2], round).await;
    }
    // Node C dies without a word while the back office goes on posting (to A and B).
    let (c, _) = nodes.pop().unwrap();
    let killed = Instant::now();
    c.kill().await;
    for round in ROUNDS_BEFORE + 1..=ROUNDS_BEFORE + ROUNDS_DURING {
        post_round(addrs[(round as usize) % 2], round).await;
    }
    all(&views, "came back", SETTLE, |t| t.connected).await;
    println!("node-loss: {count} tills, the last one back {:.1} s after the kill", killed.elapsed().as_secs_f64());
    let last = ROUNDS_BEFORE + ROUNDS_DURING;
    let want: HashMap<i64, i64> = (1..=PRODUCTS).map(|p| (p, last * 1000 + p)).collect();
    all(&views, "showed the latest value of every product", SETTLE, |t| t.latest == want).await;
    println!(
        "node-loss: every till has the latest {PRODUCTS} products {:.1} s after the kill",
        killed.elapsed().as_secs_f64()
    );
    assert_eq!(connected_to(addrs[0]).await + connected_to(addrs[1]).await, count, "every till on A or B, once");

    // C comes back on its address and takes new tills again.
    let (_c, back) = node(&redis.url(), &prefix, "node-c", &addrs[2].to_string()).await;
    assert_eq!(back, addrs[2]);
    let mut newcomers = Vec::new();
    let mut newcomer_views = Vec::new();
    for _ in 0..6 {
        let (client, view) = till(&urls, 2);
        newcomers.push(client);
        newcomer_views.push(view);
    }
    all(&newcomer_views, "connected", SETTLE, |t| t.connected).await;
    assert_eq!(connected_to(back).await, newcomers.len(), "the returned node took the tills that start there");
    all(&newcomer_views, "caught up", SETTLE, |t| t.latest == want).await;

    for client in clients.into_iter().chain(newcomers) {
        client.stop().await;
    }
    redis.stop().await;
}
