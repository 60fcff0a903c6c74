//! Who a broadcast to everyone reaches: every connected socket and none that has gone. The
//! bridge keeps that list itself (`stock_bridge::audience`) instead of asking socketioxide
//! at each broadcast, so it must follow clients that leave cleanly, drop their connection,
//! or come back.

mod common;

use common::{TestBridge, WAIT, add_stock, eventually, post, raw_client, start_isolated};
use futures_util::{SinkExt, StreamExt};
use stock_bridge::config::BridgeConfig;
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::Message;

/// Waits (at most [`WAIT`]) until the bridge's audience has `n` members.
async fn audience_of(bridge: &TestBridge, n: usize) {
    eventually(&format!("the audience has {n} members"), WAIT, || async { bridge.bridge.audience.len() == n }).await;
}

#[tokio::test]
async fn the_audience_follows_clients_that_come_and_go() {
    let bridge = start_isolated(BridgeConfig::default()).await;
    let mut stays = raw_client(bridge.addr).await;
    let mut closes = raw_client(bridge.addr).await;
    let drops = raw_client(bridge.addr).await;
    audience_of(&bridge, 3).await;
    assert_eq!(post(bridge.addr, &add_stock(1)).await.1["recipients"], 3);

    // One says goodbye (a WebSocket close), one just goes (its connection dropped).
    closes.close(None).await.unwrap();
    drop(drops);
    audience_of(&bridge, 1).await;
    assert_eq!(post(bridge.addr, &add_stock(2)).await.1["recipients"], 1);

    // A newcomer is in the audience of the next broadcast.
    let mut newcomer = raw_client(bridge.addr).await;
    audience_of(&bridge, 2).await;
    let (status, answer) = post(bridge.addr, &add_stock(3)).await;
    assert_eq!((status, answer["recipients"].clone()), (200, serde_json::json!(2)));

    assert_eq!(products_received(&mut stays, 3).await, [1, 2, 3], "the one that stayed gets every broadcast");
    assert_eq!(products_received(&mut newcomer, 1).await, [3]);
}

/// The product ids of the next `n` `add_stock` events `ws` receives (answering pings).
async fn products_received(ws: &mut common::Ws, n: usize) -> Vec<i64> {
    let mut products = Vec::new();
    // One deadline for all (a per-frame wait would be renewed by every ping).
    let deadline = Instant::now() + WAIT;
    while products.len() < n {
        let frame = timeout_at(deadline, ws.next()).await.expect("an add_stock never came").unwrap().unwrap();
        let text = frame.to_text().unwrap();
        if text == "2" {
            ws.send(Message::text("3")).await.unwrap();
        } else if let Some(args) = text.strip_prefix("42") {
            let args: serde_json::Value = serde_json::from_str(args).unwrap();
            assert_eq!(args[0], "add_stock", "{text}");
            products.push(args[1]["product_id"].as_i64().unwrap());
        }
    }
    products
}
