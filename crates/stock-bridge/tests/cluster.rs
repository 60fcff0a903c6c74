//! Cluster mode with a real `redis-server` (started by each test on a free port): two
//! bridge nodes, clients on each, Redis stopped and started during the test. Unix only
//! (Redis is reached over a Unix socket, as `redis-server` runs here).
#![cfg(unix)]

mod common;

use common::{Events, KEY, TestBridge, eventually, next};
use futures_util::FutureExt;
use rust_socketio::asynchronous::Client;
use rust_socketio::{Payload, TransportType};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use stock_bridge::accounting::account;
use stock_bridge::auth::jwt::sign_hs256;
use stock_bridge::config::{BridgeConfig, ClientAuth};
use stock_testkit::api_key;
use stock_testkit::redis::Redis;
use tokio::sync::mpsc;
use tokio::time::timeout;

const JWT_SECRET: &str = "cluster-jwt-secret-0123456789";
const WAIT: Duration = Duration::from_secs(15);

/// A folder for a test's Redis socket, removed at the end of the test.
fn socket_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

async fn node(redis: &str, prefix: &str) -> TestBridge {
    let config = BridgeConfig { client_auth: ClientAuth::jwt_hs256(JWT_SECRET).unwrap(), ..BridgeConfig::default() };
    node_with(redis, prefix, config).await
}

/// A node with `config` (the test key, Redis at `redis` and `prefix` added).
async fn node_with(redis: &str, prefix: &str, config: BridgeConfig) -> TestBridge {
    TestBridge::start(BridgeConfig {
        api_key: Some(api_key()),
        redis_url: Some(redis.to_owned()),
        redis_prefix: prefix.to_owned(),
        ..config
    })
    .await
}

async fn post(addr: SocketAddr, body: &Value) -> (u16, Value) {
    common::post_with(addr, Some(KEY), body).await
}

async fn ready(addr: SocketAddr) -> u16 {
    reqwest::get(format!("http://{addr}/readyz")).await.map(|r| r.status().as_u16()).unwrap_or(0)
}

async fn client(addr: SocketAddr, user: u64) -> (Client, Events) {
    let token = sign_hs256(&json!({"sub": user, "exp": chrono::Utc::now().timestamp() + 3600}), JWT_SECRET.as_bytes());
    let (client, mut rx) = common::sio_client(addr, TransportType::Websocket, Some(&token)).await;
    next(&mut rx, "open").await;
    (client, rx)
}

fn stock(product: i64, stock: i64) -> Value {
    json!({"event": "add_stock", "data": {"product_id": product, "in_stock": stock, "discount_price": 1, "peak_hour_price": 2,
        "mediboy_offer_price": 3, "sync_at": "2024-01-01T00:00:00Z"}})
}

#[tokio::test]
async fn broadcasts_reach_every_node_and_private_ones_only_their_user() {
    let dir = socket_dir();
    let redis = Redis::start(dir.path()).await;
    let (node_a, node_b) = (node(&redis.url(), "t1").await, node(&redis.url(), "t1").await);
    let (a, b) = (node_a.addr, node_b.addr);
    let (_c1, mut on_a) = client(a, 1).await;
    let (_c2, mut on_b) = client(b, 2).await;

    let (status, answer) = post(a, &stock(10, 5)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(next(&mut on_a, "add_stock").await[0]["product_id"], 10);
    let got = next(&mut on_b, "add_stock").await;
    assert_eq!(got[0]["product_id"], 10, "posted to A, received on B");
    assert_eq!(got[1]["seq"], answer["seq"]);

    let mut private = json!({"event": "sale_mode", "data": {"mode": "peak_hour"}, "to": "user:2"});
    assert_eq!(post(a, &private).await.0, 200);
    assert_eq!(next(&mut on_b, "sale_mode").await[0]["mode"], "peak_hour");
    private["data"]["mode"] = json!("for everyone");
    private.as_object_mut().unwrap().remove("to");
    post(b, &private).await;
    assert_eq!(next(&mut on_a, "sale_mode").await[0]["mode"], "for everyone", "user 1 never saw user 2's message");
    redis.stop().await;
}

/// Asks `client` for a catch-up from `request`; its answer (bounded wait).
async fn catch_up(client: &Client, request: Value) -> Value {
    let (tx, mut rx) = mpsc::unbounded_channel();
    client
        .emit_with_ack("stock:catch_up", request, WAIT, move |payload, _| {
            let _ = tx.send(payload);
            async {}.boxed()
        })
        .await
        .unwrap();
    let Payload::Text(args) = timeout(WAIT, rx.recv()).await.unwrap().unwrap() else { panic!("binary ack") };
    if args[0].is_array() { args[0][0].clone() } else { args[0].clone() }
}

#[tokio::test]
async fn catch_up_works_whichever_node_the_client_reconnects_to() {
    let dir = socket_dir();
    let redis = Redis::start(dir.path()).await;
    let (node_a, node_b) = (node(&redis.url(), "t2").await, node(&redis.url(), "t2").await);
    let (a, b) = (node_a.addr, node_b.addr);
    let (c1, mut on_a) = client(a, 1).await;
    post(a, &stock(1, 1)).await;
    let meta = next(&mut on_a, "add_stock").await[1].clone();
    c1.disconnect().await.unwrap();
    for (p, s) in [(2, 20), (3, 30), (2, 21)] {
        assert_eq!(post(a, &stock(p, s)).await.0, 200);
    }
    let (c2, _on_b) = client(b, 1).await;
    let answer = catch_up(&c2, json!({"epoch": meta["epoch"], "after": meta["seq"]})).await;
    assert_eq!(answer["full"], false);
    let items: Vec<(i64, i64)> = answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["data"]["product_id"].as_i64().unwrap(), i["data"]["in_stock"].as_i64().unwrap()))
        .collect();
    assert_eq!(items, vec![(3, 30), (2, 21)], "the latest of each product changed meanwhile, in change order");
    redis.stop().await;
}

/// Script calls Redis has run so far (`EVAL` and `EVALSHA`, from `INFO commandstats`).
async fn script_calls(redis: &Redis) -> u64 {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_eval:") || l.starts_with("cmdstat_evalsha:"))
        .filter_map(|l| l.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn a_batch_is_numbered_and_kept_in_one_call_to_redis_and_caught_up_in_order() {
    // A batch of 1,000 was a script call per event: about 250 ms of round trips before its
    // fan-out could start (cluster p99 1.5x a node alone).
    let dir = socket_dir();
    let redis = Redis::start(dir.path()).await;
    let (node_a, node_b) = (node(&redis.url(), "t6").await, node(&redis.url(), "t6").await);
    assert_eq!(post(node_a.addr, &stock(1, 1)).await.0, 200, "the script is loaded");
    let before = script_calls(&redis).await;
    let mut events: Vec<Value> = (0..150).map(|i| stock(100 + i % 40, i)).collect();
    // Neither a private snapshot nor another event is numbered.
    events.insert(10, json!({"event": "add_stock", "data": stock(7, 7)["data"], "to": "user:2"}));
    events.insert(20, json!({"event": "sale_mode", "data": {"mode": "peak_hour"}}));
    let (status, answer) = post(node_a.addr, &json!({"events": events})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(script_calls(&redis).await - before, 1, "one call for the whole batch");
    assert_eq!((answer["first_seq"].as_u64(), answer["last_seq"].as_u64()), (Some(2), Some(151)), "{answer}");
    // The latest of each product, in change order, whichever node is asked.
    let (c, _on_b) = client(node_b.addr, 1).await;
    let answer = catch_up(&c, json!({})).await;
    let items: Vec<(u64, i64, i64)> = answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let data = &i["data"];
            (i["seq"].as_u64().unwrap(), data["product_id"].as_i64().unwrap(), data["in_stock"].as_i64().unwrap())
        })
        .collect();
    let want: Vec<(u64, i64, i64)> =
        std::iter::once((1, 1, 1)).chain((110..150).map(|i| (i as u64 + 2, 100 + i % 40, i))).collect();
    assert_eq!(items, want);
    redis.stop().await;
}

#[tokio::test]
async fn redis_going_away_is_reported_refused_and_recovered_from() {
    let dir = socket_dir();
    let redis = Redis::start(dir.path()).await;
    let (node_a, node_b) = (node(&redis.url(), "t3").await, node(&redis.url(), "t3").await);
    let (a, b) = (node_a.addr, node_b.addr);
    let (c1, _on_a) = client(a, 1).await;
    let (_c2, mut on_b) = client(b, 2).await;
    assert_eq!(ready(a).await, 200);

    redis.stop().await;
    eventually("A to report Redis gone", WAIT, || async { ready(a).await == 503 }).await;
    let (status, body) = post(a, &stock(5, 5)).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["message"].as_str().unwrap().contains("Redis is unreachable"), "{body}");
    let metrics = reqwest::get(format!("http://{a}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("stock_bridge_redis_up 0"), "{metrics}");
    // A till's catch-up meanwhile is refused by name, so it asks again later (before, it
    // got no answer at all and reported a gap).
    let answer = catch_up(&c1, json!({})).await;
    assert_eq!(answer["error"]["code"], "store_unavailable", "{answer}");
    let metrics = reqwest::get(format!("http://{a}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"stock_bridge_catch_ups_total{outcome="store_unreadable"} 1"#), "{metrics}");

    let redis = Redis::start(dir.path()).await;
    eventually("A to be ready again", WAIT, || async { ready(a).await == 200 }).await;
    eventually("B to be ready again", WAIT, || async { ready(b).await == 200 }).await;
    // Fan-out works again once both nodes have re-subscribed: bounded retries (a
    // broadcast racing a reconnect may still get a 503, never a false 200).
    let mut delivered = false;
    for _ in 0..50 {
        let (status, body) = post(a, &stock(6, 6)).await;
        assert!(status == 200 || status == 503, "{status} {body}");
        if let Ok(Some((name, args))) = timeout(Duration::from_millis(300), on_b.recv()).await
            && name == "add_stock"
            && args[0]["product_id"] == 6
        {
            delivered = true;
            break;
        }
    }
    assert!(delivered, "a broadcast to A reached B after Redis came back");
    redis.stop().await;
}

/// Issue 22 F12: a client on node B that stops reading is cut by bytes, as on a bridge
/// alone, while broadcasts are posted to node A; its neighbour on B, reading, gets every
/// event in order, exactly once. (Through socketioxide's Redis adapter there was no byte
/// bound in cluster mode: a 2 KB/s reader took a node from 16 to 134 MiB, and a full queue
/// lost events without a cut or a metric.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_on_another_node_is_cut_by_bytes() {
    let dir = socket_dir();
    let redis = Redis::start(dir.path()).await;
    let budget = 256 * 1024;
    let config = || BridgeConfig {
        client_buffer: 1_000_000,
        client_buffer_bytes: budget,
        batch_body_limit: budget,
        body_limit: 64 * 1024,
        ping_interval: Duration::from_secs(30),
        ping_timeout: Duration::from_secs(30),
        ..BridgeConfig::default()
    };
    let node_a = node_with(&redis.url(), "t4", config()).await;
    let node_b = node_with(&redis.url(), "t4", config()).await;
    let (a, b, on_b) = (node_a.addr, node_b.addr, node_b.bridge.clone());
    let _stalled = common::raw_client(b).await;
    eventually("the stalled client on B", WAIT, || async { on_b.connected_clients() == 1 }).await;
    let stalled = account(&on_b.io.sockets()[0]).expect("a connected socket has its account");
    let reading = common::read_until(common::raw_client(b).await, r#"42["sale_mode",{"mode":"last"}]"#);
    eventually("both clients on B", WAIT, || async { on_b.connected_clients() == 2 }).await;

    let note = "x".repeat(60 * 1024);
    let mut sent = 0;
    // 3,000 × 60 KB = 180 MB: far more than the kernel's buffers and the budget hold, far
    // less than the bound in packets.
    while on_b.connected_clients() == 2 {
        assert!(sent < 3_000, "the stalled client on B was never cut by bytes");
        let body = json!({"event": "sale_mode", "data": {"mode": format!("m{sent}"), "note": note}});
        let (status, answer) = post(a, &body).await;
        assert_eq!(status, 200, "{answer}");
        sent += 1;
    }
    // The cut socket queued at most its budget (asserted even when it is already gone: its
    // account outlives it).
    assert!(stalled.is_doomed(), "the stalled client is the one cut");
    let queued = stalled.queued().expect("the stalled client is metered");
    assert!(queued <= budget as u64, "at most the budget was queued: {queued}");
    let metrics = reqwest::get(format!("http://{b}/metrics")).await.unwrap().text().await.unwrap();
    let cuts = metrics
        .lines()
        .find_map(|l| l.strip_prefix("stock_bridge_slow_clients_disconnected_total "))
        .and_then(|v| v.parse::<f64>().ok());
    assert!(cuts.is_some_and(|c| c >= 1.0), "B counts the cut: {metrics}");

    // One more, last, so the reader knows when it has everything.
    assert_eq!(post(a, &json!({"event": "sale_mode", "data": {"mode": "last"}})).await.0, 200);
    let frames = timeout(WAIT * 4, reading).await.expect("the reader on B got everything").unwrap();
    let modes: Vec<String> = frames
        .iter()
        .filter_map(|f| serde_json::from_str::<Value>(f.strip_prefix("42")?).ok())
        .map(|args| args[1]["mode"].as_str().unwrap_or_default().to_owned())
        .collect();
    let expected: Vec<String> = (0..sent).map(|n| format!("m{n}")).chain(["last".to_owned()]).collect();
    assert_eq!(modes.len(), expected.len(), "every event once");
    assert!(modes == expected, "in order, none lost or repeated");
    redis.stop().await;
}

/// A bridge node as its own process (so it can be killed with SIGKILL), in cluster mode on
/// `redis` with a fleet lease of `lease_secs`; its address.
async fn node_process(redis: &str, name: &str, lease_secs: u64) -> (tokio::process::Child, SocketAddr) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stock-bridge"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("STOCK_BRIDGE_REDIS_URL", redis)
        .env("STOCK_BRIDGE_REDIS_PREFIX", "fleet-kill")
        .env("STOCK_BRIDGE_API_KEY", KEY)
        .env("STOCK_BRIDGE_SUPPORT_KEY", SUPPORT)
        .env("STOCK_BRIDGE_FLEET_LEASE_SECS", lease_secs.to_string())
        .env("STOCK_BRIDGE_NODE_NAME", name)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    timeout(WAIT, tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut line)).await.unwrap().unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().parse().expect("the address it listens on");
    (child, addr)
}

const SUPPORT: &str = "support-key-0123456789";

/// The fleet as node `addr` shows it: till key → (status, end reason, report's products).
async fn fleet_of(addr: SocketAddr) -> std::collections::HashMap<String, (String, String, Value)> {
    let page: Value = common::http()
        .get(format!("http://{addr}/fleet"))
        .bearer_auth(SUPPORT)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["tills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let key = t["key"].as_str().unwrap().to_owned();
            let status = t["status"].as_str().unwrap().to_owned();
            let why = t["end_reason"].as_str().unwrap_or("").to_owned();
            (key, (status, why, t["report"]["products"].clone()))
        })
        .collect()
}

#[tokio::test]
async fn every_node_shows_every_till_and_a_killed_nodes_tills_go_offline_once_its_lease_runs_out() {
    let dir = socket_dir();
    let redis = Redis::start(dir.path()).await;
    let (_a, on_a) = node_process(&redis.url(), "node-a", 2).await;
    let (mut b, on_b) = node_process(&redis.url(), "node-b", 2).await;
    let till =
        |id: &str| json!({"till": {"till_id": id, "name": id, "app": "terminal", "version": "0.1.0", "os": "linux"}});
    let (mut till_a, _) = common::raw_till(on_a, &till("till-on-a")).await;
    let (mut till_b, _) = common::raw_till(on_b, &till("till-on-b")).await;
    let report = |n: u32| {
        json!({"state": "socket connected", "since": "2026-12-06T08:00:00Z", "reconnects_1h": 0, "reconnects_24h": 0,
            "gaps": 0, "notifications": false, "products": n, "sent_at": "2026-12-06T08:00:00Z"})
        .to_string()
    };
    assert_eq!(common::emit_with_ack(&mut till_a, 1, "stock:health", &report(11)).await, json!([{"ok": true}]));
    assert_eq!(common::emit_with_ack(&mut till_b, 1, "stock:health", &report(22)).await, json!([{"ok": true}]));
    // Each node shows both tills online, the other node's with its report.
    for node in [on_a, on_b] {
        eventually("both tills online on every node, with their reports", WAIT, || async {
            let fleet = fleet_of(node).await;
            fleet.get("till-on-a").is_some_and(|t| t.0 == "online" && t.2 == 11)
                && fleet.get("till-on-b").is_some_and(|t| t.0 == "online" && t.2 == 22)
        })
        .await;
    }
    // Node B dies without a word; once its 2 s lease has run out, A shows its till offline.
    b.start_kill().unwrap();
    b.wait().await.unwrap();
    eventually("B's till offline on A: bridge node lost", WAIT, || async {
        fleet_of(on_a).await.get("till-on-b").is_some_and(|t| t.0 == "offline" && t.1 == "bridge_node_lost")
    })
    .await;
    let fleet = fleet_of(on_a).await;
    assert_eq!(fleet["till-on-a"], ("online".to_owned(), String::new(), json!(11)), "A's own till is untouched");
    assert_eq!(fleet["till-on-b"].2, json!(22), "B's till keeps its last report");
    drop(till_b);
    redis.stop().await;
}
