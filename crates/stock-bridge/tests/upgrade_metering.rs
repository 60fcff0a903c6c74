//! A socket is metered in bytes against the connection that carries its WebSocket, however
//! it got there (issue 22, F3): rust_socketio (the client core's library) opens on
//! long-polling, upgrades, and only then sends its Socket.IO CONNECT, so its WebSocket is
//! not the connection that opened the session. Metered against the polling request's
//! connection, which never writes again, such a client was cut as "too slow" after every
//! 4 MiB it read.

mod common;

use common::*;
use rust_socketio::TransportType;
use serde_json::{Value, json};
use std::time::Duration;
use stock_bridge::config::BridgeConfig;
use tokio::time::timeout;

const BATCHES: i64 = 30;
const PER_BATCH: i64 = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_upgrades_before_connect_is_metered_on_its_websocket() {
    let bridge = start_isolated(BridgeConfig::default()).await;
    let (client, mut events) = sio_client(bridge.addr, TransportType::Any, None).await;
    next(&mut events, "open").await;
    let upgraded =
        || bridge.bridge.io.sockets().pop().filter(|s| s.transport_type() == socketioxide::TransportType::Websocket);
    eventually("the client upgraded", WAIT, || async { upgraded().is_some() }).await;
    let socket = upgraded().expect("upgraded");
    let account = stock_bridge::accounting::account(&socket).expect("every socket has an account");
    assert!(account.is_metered(), "an upgraded socket is counted in bytes");
    assert!(bridge.bridge.upgrades.is_empty(), "the upgrade's tap was taken by its socket");

    // Over the 4 MiB per-client budget in all, read as fast as it comes.
    for batch in 0..BATCHES {
        let items: Vec<Value> = (0..PER_BATCH).map(|i| add_stock(batch * PER_BATCH + i)).collect();
        let (status, body) = post(bridge.addr, &json!({ "events": items })).await;
        assert_eq!(status, 200, "{body}");
    }
    let mut received = 0;
    let read = timeout(WAIT * 6, async {
        while received < BATCHES * PER_BATCH {
            let (name, args) = events.recv().await.expect("client channel closed");
            match name.as_str() {
                "add_stock" => received += 1,
                "error" | "close" => return Err(format!("{name}: {args:?}")),
                _ => {}
            }
        }
        Ok(())
    })
    .await;
    assert_eq!(read, Ok(Ok(())), "{received} of {} events read", BATCHES * PER_BATCH);
    assert!(socket.connected(), "a client that reads everything is not cut as slow");
    let settled = timeout(WAIT, async {
        while account.queued() != Some(0) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(settled.is_ok(), "bytes counted against the wrong connection: {:?} still queued", account.queued());
    let _ = client.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_polling_client_is_metered_by_what_its_polls_carry() {
    let bridge = start_isolated(BridgeConfig::default()).await;
    let (client, mut events) = sio_client(bridge.addr, TransportType::Polling, None).await;
    next(&mut events, "open").await;
    let socket = bridge.bridge.io.sockets().pop().expect("connected");
    let account = stock_bridge::accounting::account(&socket).expect("every socket has an account");
    // Metered by its session's own count (issue 22, F13), not by some TCP connection's.
    assert_eq!(account.writes(), None, "not attached to a connection");
    for product in 0..20 {
        assert_eq!(common::post(bridge.addr, &common::add_stock(product)).await.0, 200);
        assert_eq!(next(&mut events, "add_stock").await[0]["product_id"], product);
    }
    let settled = timeout(WAIT, async {
        while account.queued() != Some(0) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(settled.is_ok(), "what it read is not counted as left: {:?} still queued", account.queued());
    let _ = client.disconnect().await;
}
