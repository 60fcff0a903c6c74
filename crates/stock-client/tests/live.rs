//! The client core against real servers: our bridge (in process and as a process killed
//! with SIGKILL), the old Node.js bridge, and a TCP proxy that cuts, drops and restores.

mod common;

use common::*;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use stock_bridge::config::{BridgeConfig, ClientAuth};
use stock_client::{ClientConfig, ClientEvent, SocketTarget, connect};
use stock_protocol::ConnectionState::{Connected, Connecting, Offline};

/// The next add_stock as (product, stock), skipping gap notices.
async fn next_stock(events: &mut tokio::sync::mpsc::Receiver<ClientEvent>) -> (i64, i64) {
    stock_of(&next_stock_event(events).await)
}

/// The next event that is not a gap notice ("data may be incomplete" / "caught up"):
/// those depend on how fast the catch-up answer comes, which is not what these tests check.
async fn next_stock_event(events: &mut tokio::sync::mpsc::Receiver<ClientEvent>) -> ClientEvent {
    loop {
        match data(events).await {
            ClientEvent::GapClosed | ClientEvent::Gap { .. } => continue,
            other => return other,
        }
    }
}

fn stock_of(e: &ClientEvent) -> (i64, i64) {
    match e {
        ClientEvent::Stock { snapshot, .. } => (snapshot.product_id, snapshot.in_stock),
        other => panic!("expected add_stock, got {other:?}"),
    }
}

#[tokio::test]
async fn our_bridge_killed_with_sigkill_and_restarted() {
    let (bridge, addr) = bridge_process(ANY_PORT).await;
    let (client, mut events) = connect(SocketTarget::new(format!("http://{addr}"), None), fast());
    state(&mut events, Connected).await;
    post(addr, &add_stock(1, 10)).await;
    let first = data(&mut events).await;
    assert_eq!(stock_of(&first), (1, 10));
    let ClientEvent::Stock { meta: Some(first_meta), .. } = first else { panic!("no delivery meta") };

    bridge.kill().await;
    let offline = state(&mut events, Offline).await;
    assert!(offline.reason.is_some(), "offline says why");
    state(&mut events, Connecting).await;

    let (_bridge, _) = bridge_process(&addr.to_string()).await; // the same address
    state(&mut events, Connected).await;
    // The restarted bridge lost its memory: a new epoch, whose sequence starts again at 1,
    // and the client takes its events (it does not drop them as "older" than seq 1 of the
    // old epoch).
    post(addr, &add_stock(1, 11)).await;
    let next = next_stock_event(&mut events).await;
    let ClientEvent::Stock { snapshot, meta: Some(meta), .. } = next else {
        panic!("expected add_stock with meta, got {next:?}")
    };
    assert_eq!((snapshot.product_id, snapshot.in_stock, meta.seq), (1, 11, 1));
    assert_ne!(meta.epoch, first_meta.epoch);
    client.stop().await;
}

#[tokio::test]
async fn a_server_never_reachable_at_start_is_retried_until_it_comes() {
    let (port, addr) = reserved_port();
    let (client, mut events) = connect(SocketTarget::new(format!("http://{addr}"), None), fast());
    state(&mut events, Offline).await;
    state(&mut events, Connecting).await;
    state(&mut events, Offline).await;
    let bridge =
        TestBridge::start_on(port.listen(1024).unwrap().into_std().unwrap(), keyed(BridgeConfig::default())).await;
    state(&mut events, Connected).await;
    assert!(client.stats().attempts >= 3);
    client.stop().await;
    bridge.stop().await;
}

#[tokio::test]
async fn a_graceful_server_stop_is_reported_as_closed_by_the_server() {
    let bridge = bridge(BridgeConfig::default()).await;
    let (client, mut events) = connect(SocketTarget::new(bridge.url(), None), fast());
    state(&mut events, Connected).await;
    bridge.stop().await;
    assert_eq!(state(&mut events, Offline).await.reason.as_deref(), Some("server closed the connection"));
    client.stop().await;
}

#[tokio::test]
async fn an_auth_rejection_is_offline_unauthorized() {
    let config = BridgeConfig {
        client_auth: ClientAuth::jwt_hs256("jwt-secret-0123456789").unwrap(),
        ..BridgeConfig::default()
    };
    let bridge = bridge(config).await;
    let (client, mut events) = connect(SocketTarget::new(bridge.url(), Some("forged".into())), fast());
    let offline = state(&mut events, Offline).await;
    assert_eq!(offline.reason.as_deref(), Some("unauthorized"));
    match data(&mut events).await {
        ClientEvent::Unauthorized { message, .. } => assert!(message.starts_with("unauthorized"), "{message}"),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert_eq!(client.stats().attempts, 1);
    client.stop().await;
    bridge.stop().await;
}

#[tokio::test]
async fn a_silent_network_cut_is_offline_within_the_watchdog_then_recovers() {
    let bridge = bridge(BridgeConfig::default()).await;
    let proxy = Proxy::start(bridge.addr).await;
    let config =
        ClientConfig { probe_interval: Duration::from_millis(200), watchdog: Duration::from_millis(1500), ..fast() };
    let mut target = SocketTarget::new(proxy.url(), None);
    target.transport = stock_client::link::Transport::Websocket;
    let (client, mut events) = connect(target, config);
    state(&mut events, Connected).await;
    // Wait (bounded) until the server has answered a probe, so it is known to answer them.
    stock_testkit::eventually("a probe answered", WAIT, || async { client.stats().probes_answered > 0 }).await;
    proxy.cut_silently();
    assert_eq!(state(&mut events, Offline).await.reason.as_deref(), Some("no answer for 1.5 s"));
    proxy.come_back();
    state(&mut events, Connected).await;
    client.stop().await;
    bridge.stop().await;
}

/// A server that accepts and hangs up at once (every attempt fails), counting attempts.
async fn hang_up_server() -> (SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepts = Arc::new(AtomicUsize::new(0));
    let counted = accepts.clone();
    let server = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (addr, accepts, server)
}

#[tokio::test]
async fn stop_while_offline_ends_all_reconnecting() {
    let (addr, accepts, server) = hang_up_server().await;
    let (client, mut events) = connect(SocketTarget::new(format!("http://{addr}"), None), fast());
    state(&mut events, Offline).await;
    state(&mut events, Offline).await;
    tokio::time::timeout(WAIT, client.stop()).await.expect("stop did not finish");
    let after_stop = accepts.load(Ordering::SeqCst);
    // The barrier: a witness with the same backoff, against a server of its own, starts six
    // attempts. The five pauses between them add up to at least 750 ms; a stopped client
    // that still reconnected would have tried within its longest pause (400 ms + 50 %
    // jitter) by then.
    let (witness_addr, witness_accepts, witness_server) = hang_up_server().await;
    let (witness, mut witness_events) = connect(SocketTarget::new(format!("http://{witness_addr}"), None), fast());
    for _ in 0..6 {
        state(&mut witness_events, Connecting).await;
        state(&mut witness_events, Offline).await;
    }
    assert!(witness_accepts.load(Ordering::SeqCst) >= 6, "the witness really tried");
    assert_eq!(accepts.load(Ordering::SeqCst), after_stop, "still connecting after stop");
    witness.stop().await;
    server.abort();
    witness_server.abort();
}

#[tokio::test]
async fn offline_while_100_products_change_then_exactly_the_latest_of_each_in_order() {
    let bridge = bridge(BridgeConfig::default()).await;
    let proxy = Proxy::start(bridge.addr).await;
    let (client, mut events) = connect(SocketTarget::new(proxy.url(), None), fast());
    state(&mut events, Connected).await;
    post(bridge.addr, &add_stock(999, 1)).await;
    assert_eq!(stock_of(&data(&mut events).await), (999, 1));

    proxy.go_down();
    state(&mut events, Offline).await;
    let mut last_seq = HashMap::new();
    for round in 1..=3 {
        for product in 0..100 {
            let answer = post(bridge.addr, &add_stock(product, round * 1000 + product)).await;
            last_seq.insert(product, answer["seq"].as_u64().unwrap());
        }
    }
    // Duplicate and out-of-order deliveries are the catch-up's job to drop as well.
    proxy.come_back();
    state(&mut events, Connected).await;
    let mut got = Vec::new();
    while got.len() < 100 {
        match data(&mut events).await {
            ClientEvent::Stock { snapshot, meta, .. } => {
                got.push((snapshot.product_id, snapshot.in_stock, meta.unwrap().seq))
            }
            ClientEvent::GapClosed | ClientEvent::Gap { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut want: Vec<(i64, i64, u64)> = (0..100).map(|p| (p, 3000 + p, last_seq[&p])).collect();
    want.sort_by_key(|w| w.2);
    assert_eq!(got, want, "the latest value of each product, in the order it was changed");
    post(bridge.addr, &add_stock(5, 7)).await;
    assert_eq!(next_stock(&mut events).await, (5, 7), "live events follow the catch-up");
    client.stop().await;
    bridge.stop().await;
}

#[tokio::test]
async fn against_the_node_reference_bridge_receive_kill_restart_receive() {
    let (node, addr) = node_bridge(0).await;
    let config = ClientConfig { catch_up_timeout: Duration::from_secs(1), ..fast() };
    let (client, mut events) =
        connect(SocketTarget::new(format!("http://{addr}"), Some("ignored-by-node".into())), config);
    state(&mut events, Connected).await;
    post(addr, &add_stock(1, 10)).await;
    assert_eq!(stock_of(&data(&mut events).await), (1, 10));
    node.kill().await;
    state(&mut events, Offline).await;
    let (_node, _) = node_bridge(addr.port()).await;
    state(&mut events, Connected).await;
    post(addr, &add_stock(2, 20)).await;
    // The Node bridge cannot replay what was missed: the client says so.
    let mut saw_gap = false;
    loop {
        match data(&mut events).await {
            ClientEvent::Gap { reason, .. } => {
                assert_eq!(reason, "the server cannot replay missed updates");
                saw_gap = true;
            }
            other => {
                assert_eq!(stock_of(&other), (2, 20));
                break;
            }
        }
    }
    assert!(saw_gap);
    client.stop().await;
}

#[tokio::test]
async fn an_attempt_against_a_server_that_never_answers_times_out_and_is_retried() {
    // Accepts TCP connections and never says a word (rust_socketio's connect has no timeout).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            sockets.push(socket);
        }
    });
    let config = ClientConfig { attempt_timeout: Duration::from_secs(1), ..fast() };
    let (client, mut events) = connect(SocketTarget::new(format!("http://{addr}"), None), config);
    assert_eq!(state(&mut events, Offline).await.reason.as_deref(), Some("no answer within 1 s"));
    state(&mut events, Connecting).await;
    assert_eq!(state(&mut events, Offline).await.reason.as_deref(), Some("no answer within 1 s"));
    tokio::time::timeout(WAIT, client.stop()).await.expect("stop did not finish");
    held.abort();
}

/// `stock-watch` stops with exit code 3 and the operator's sentence when the bridge refuses
/// its token, saying whether the session expired.
#[tokio::test]
async fn stock_watch_exits_3_with_the_reason_when_the_token_is_refused() {
    let secret = "jwt-secret-0123456789";
    let config = BridgeConfig { client_auth: ClientAuth::jwt_hs256(secret).unwrap(), ..BridgeConfig::default() };
    let bridge = bridge(config).await;
    let expired = stock_bridge::auth::jwt::sign_hs256(
        &serde_json::json!({"sub": 1, "exp": chrono::Utc::now().timestamp() - 3600}),
        secret.as_bytes(),
    );
    for (token, sentence) in [
        (expired.as_str(), "Your session has expired — please sign in again"),
        ("not-a-token", "Your session was refused by the server — please sign in again"),
    ] {
        let out = tokio::process::Command::new(bin("stock-watch"))
            .args(["--socket", &bridge.url(), "--token", token])
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(WAIT, out).await.expect("stock-watch exits").unwrap();
        assert_eq!(out.status.code(), Some(3), "{token}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(sentence), "{stderr}");
        assert!(!stderr.contains(token) || token == "not-a-token", "the token is not printed");
    }
    bridge.stop().await;
}

/// Values restored from disk are "missing since" when they were saved: the first catch-up
/// that completes says so (GapClosed), after the products it brought.
#[tokio::test]
async fn a_client_starting_from_restored_values_hears_when_its_first_catch_up_completes() {
    let bridge = bridge(BridgeConfig::default()).await;
    let addr: SocketAddr = bridge.url().trim_start_matches("http://").parse().unwrap();
    post(addr, &add_stock(4, 2)).await;
    let config = ClientConfig { missing_since: Some(chrono::Utc::now() - chrono::Duration::hours(1)), ..fast() };
    let (client, mut events) = connect(SocketTarget::new(bridge.url(), None), config);
    state(&mut events, Connected).await;
    let mut seen = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await.expect("events ended") {
                ClientEvent::GapClosed => return,
                ClientEvent::Stock { snapshot, .. } => seen.push(snapshot.product_id),
                _ => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "no GapClosed after the first catch-up");
    assert_eq!(seen, vec![4], "the catch-up's products come before it");
    client.stop().await;
    bridge.stop().await;
}

/// A till given several addresses starting at `index`.
fn several(urls: Vec<String>, index: usize) -> (stock_client::LiveClient, tokio::sync::mpsc::Receiver<ClientEvent>) {
    let connector = stock_client::SocketIoConnector::starting_at(SocketTarget::with_addresses(urls, None), index);
    stock_client::LiveClient::start(Arc::new(connector), fast())
}

#[tokio::test]
async fn a_till_with_several_addresses_moves_on_from_one_that_refuses_and_says_which() {
    let (_held, dead) = reserved_port();
    let bridge = bridge(BridgeConfig::default()).await;
    let (client, mut events) = several(vec![format!("http://{dead}"), bridge.url()], 0);
    let offline = state(&mut events, Offline).await;
    let why = offline.reason.unwrap_or_default();
    assert!(why.starts_with(&format!("http://{dead}: ")), "the failure names the address: {why}");
    state(&mut events, Connected).await;
    post(bridge.addr, &add_stock(5, 50)).await;
    assert_eq!(next_stock(&mut events).await, (5, 50), "live on the second address");
    client.stop().await;
    bridge.stop().await;
}

#[tokio::test]
async fn a_till_whose_bridge_goes_away_reconnects_to_the_next_address() {
    let first = bridge(BridgeConfig::default()).await;
    let second = bridge(BridgeConfig::default()).await;
    let (client, mut events) = several(vec![first.url(), second.url()], 0);
    state(&mut events, Connected).await;
    post(first.addr, &add_stock(1, 10)).await;
    assert_eq!(next_stock(&mut events).await, (1, 10), "on the first address");
    first.stop().await;
    state(&mut events, Offline).await;
    state(&mut events, Connected).await;
    post(second.addr, &add_stock(2, 20)).await;
    assert_eq!(next_stock(&mut events).await, (2, 20), "moved on to the second address");
    client.stop().await;
    second.stop().await;
}
