//! The red-team's memory bomb: with 10,000 products cached (a full catch-up answer is
//! about 1.5 MB), clients that send catch-up requests in a burst and stop reading must
//! not take the bridge's memory: one catch-up in flight per socket, answers paged, the
//! queue bounded in bytes, client events rate-limited. Alone in its test binary, so the
//! process's memory is the bridge's.

mod common;

use common::{HEALTHY, TestBridge, WAIT, raw_client, rss_bytes, spam_catch_ups};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use stock_bridge::config::BridgeConfig;
use stock_protocol::{BroadcastRequest, EventPolicy};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

const PRODUCTS: i64 = 10_000;

async fn assert_healthy(addr: SocketAddr, during: &str) {
    let answer = timeout(HEALTHY, common::http().get(format!("http://{addr}/healthz")).send()).await;
    assert!(matches!(answer, Ok(Ok(ref r)) if r.status() == 200), "/healthz slow or failing {during}: {answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_spamming_catch_ups_without_reading_cannot_take_the_memory() {
    let running = TestBridge::start(BridgeConfig {
        ping_interval: Duration::from_secs(60),
        ping_timeout: Duration::from_secs(60),
        ..Default::default()
    })
    .await;
    let (addr, bridge) = (running.addr, running.bridge.clone());
    let policy = EventPolicy::default();
    for product in 0..PRODUCTS {
        let body = json!({"event": "add_stock", "data": {"product_id": product, "in_stock": 10, "discount_price": 120.5,
            "peak_hour_price": 140, "mediboy_offer_price": 90, "sync_at": "2024-01-01T00:00:00.000Z",
            "note": "padding to make a realistic snapshot of about one hundred and fifty bytes"}});
        let req = BroadcastRequest::parse(body.to_string().as_bytes(), &policy).unwrap();
        bridge.relay(req).await.unwrap();
    }
    let before = rss_bytes();

    // A well-behaved client asks once and reads its answer, whole, across pages.
    let mut good = raw_client(addr).await;
    let mut spammers = Vec::new();
    for _ in 0..2 {
        let mut ws = raw_client(addr).await;
        spam_catch_ups(&mut ws, 1_100).await;
        spammers.push(ws);
        assert_healthy(addr, "while the spam arrives").await;
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        assert_healthy(addr, "after the spam").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let grown = rss_bytes().saturating_sub(before);
    assert!(grown < 128 * 1024 * 1024, "the bridge grew by {} MiB", grown / (1024 * 1024));

    // The good client still gets the whole set, page by page.
    let mut after: Option<u64> = None;
    let mut epoch = serde_json::Value::Null;
    let mut items = 0;
    for id in 0.. {
        let request = json!({"epoch": epoch, "after": after});
        good.send(Message::text(format!("42{id}[\"stock:catch_up\",{request}]"))).await.unwrap();
        let answer = loop {
            let frame = timeout(WAIT, good.next()).await.expect("no catch-up answer").unwrap().unwrap();
            let text = frame.into_text().unwrap();
            if text.as_str() == "2" {
                good.send(Message::text("3")).await.unwrap();
            } else if let Some(rest) = text.strip_prefix(&format!("43{id}")) {
                break serde_json::from_str::<serde_json::Value>(rest).unwrap()[0].clone();
            }
        };
        items += answer["items"].as_array().expect("a catch-up, not a refusal").len();
        epoch = answer["epoch"].clone();
        after = answer["seq"].as_u64();
        if answer["more"] != true {
            break;
        }
        assert!(id < 20, "too many pages");
    }
    assert_eq!(items, PRODUCTS as usize, "every product exactly once across the pages");
    drop(spammers);
}
