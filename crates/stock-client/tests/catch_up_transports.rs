//! A fresh start against a bridge that already holds 10,000 products: the client core must
//! show every one of them, on each Engine.IO transport, and say nothing is missing.
//!
//! Found by the second red team (issue 22): on the default transport (polling handshake,
//! upgrade, then CONNECT, as rust_socketio does it) the bridge metered the socket against
//! the polling request's connection, refused every page after the first as
//! `catch_up_pending`, and the client took that for "answer not understood" and reported no
//! gap (about 6,000 of 10,000 shown); on long-polling the client parsed each HTTP body
//! chunk as a whole payload and looped offline (0 shown).

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::HashSet;
use stock_bridge::config::BridgeConfig;
use stock_client::link::Transport;
use stock_client::{ClientEvent, SocketTarget};
use stock_protocol::ConnectionState;

const PRODUCTS: i64 = 10_000;
const BATCH: i64 = 1_000;

async fn bridge_with_products() -> TestBridge {
    let bridge = bridge(BridgeConfig::default()).await;
    for start in (0..PRODUCTS).step_by(BATCH as usize) {
        let events: Vec<Value> = (start..start + BATCH).map(|p| add_stock(p + 1, p % 97)).collect();
        post(bridge.addr, &json!({ "events": events })).await;
    }
    bridge
}

/// Connects over `transport` and collects products until all are shown; panics with what
/// was seen when they are not, or when the client reports a gap or goes offline.
async fn fresh_start_shows_every_product(transport: Transport) {
    // What the client and the bridge did, when RUST_LOG asks (shown for a failing test).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let bridge = bridge_with_products().await;
    let mut target = SocketTarget::new(bridge.url(), None);
    target.transport = transport;
    let (client, mut events) = stock_client::connect(target, fast());
    let mut shown = HashSet::new();
    let outcome = tokio::time::timeout(WAIT * 4, async {
        while let Some(event) = events.recv().await {
            match event {
                ClientEvent::Stock { snapshot, .. } => {
                    shown.insert(snapshot.product_id);
                    if shown.len() as i64 == PRODUCTS {
                        return Ok(());
                    }
                }
                ClientEvent::Gap { reason, .. } => return Err(format!("gap reported: {reason}")),
                ClientEvent::State(s) if s.state == ConnectionState::Offline => {
                    return Err(format!("went offline: {:?}", s.reason));
                }
                _ => {}
            }
        }
        Err("the client ended".into())
    })
    .await;
    let outcome = outcome.unwrap_or_else(|_| Err("not every product arrived in time".into()));
    assert_eq!(outcome, Ok(()), "{transport:?}: {} of {PRODUCTS} products shown", shown.len());
    assert_eq!(client.state().state, ConnectionState::Connected, "{transport:?}");
    client.stop().await;
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_start_shows_all_10000_products_over_the_default_transport() {
    fresh_start_shows_every_product(Transport::Any).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_start_shows_all_10000_products_over_websocket() {
    fresh_start_shows_every_product(Transport::Websocket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_start_shows_all_10000_products_over_long_polling() {
    fresh_start_shows_every_product(Transport::Polling).await;
}
