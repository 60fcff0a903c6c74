//! The client core as a till of the fleet, against the real bridge: it says who it is, its
//! health reports reach support, and support's request for its Diagnostics reaches the
//! embedder and its answer reaches support.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;
use stock_bridge::api_key::ApiKey;
use stock_bridge::config::BridgeConfig;
use stock_client::{ClientConfig, ClientEvent, SocketTarget, connect};
use stock_protocol::ConnectionState::Connected;
use stock_protocol::{TillApp, TillIdentity};

const SUPPORT: &str = "support-key-0123456789";

async fn fleet_till(url: &str, key: &str) -> Option<Value> {
    let res = reqwest::Client::new()
        .get(format!("{url}/fleet/{key}"))
        .bearer_auth(SUPPORT)
        .header("accept", "application/json")
        .send()
        .await
        .ok()?;
    if !res.status().is_success() {
        return None;
    }
    res.json::<Value>().await.ok()
}

#[tokio::test]
async fn a_till_says_who_it_is_reports_its_health_and_answers_supports_request() {
    let bridge = bridge(BridgeConfig { support_key: Some(ApiKey::new(SUPPORT)), ..BridgeConfig::default() }).await;
    let till = TillIdentity {
        till_id: "client-core-till".into(),
        name: "Gulshan, counter 1".into(),
        app: TillApp::Desktop,
        version: "9.9.9".into(),
        os: "linux".into(),
    };
    let target = SocketTarget { till: Some(till), ..SocketTarget::new(bridge.url(), None) };
    let config = ClientConfig { probe_interval: Duration::from_millis(100), ..fast() };
    let (client, mut events) = connect(target, config);
    state(&mut events, Connected).await;
    // The first report goes out on connecting.
    let url = bridge.url();
    stock_testkit::eventually("the till's first report", WAIT, || async {
        fleet_till(&url, "client-core-till").await.is_some_and(|t| t["till"]["report"]["state"] == "socket connected")
    })
    .await;
    let seen = fleet_till(&url, "client-core-till").await.unwrap();
    assert_eq!(seen["till"]["identity"]["name"], "Gulshan, counter 1");
    assert_eq!(seen["till"]["identity"]["version"], "9.9.9");
    assert_eq!(seen["till"]["status"], "online");
    // What it shows: turning notifications on is a change, reported within seconds, with
    // the product count and the round trip of its probes.
    client.set_shown(321, true);
    stock_testkit::eventually("the report with notifications on", WAIT, || async {
        fleet_till(&url, "client-core-till")
            .await
            .is_some_and(|t| t["till"]["report"]["notifications"] == true && t["till"]["report"]["products"] == 321)
    })
    .await;
    let report = fleet_till(&url, "client-core-till").await.unwrap()["till"]["report"].clone();
    assert!(report["rtt_ms"].is_u64(), "{report}");
    assert!(report["clock_offset_ms"].as_i64().is_some_and(|o| o.abs() < 5_000), "same machine: {report}");
    // Support asks for its Diagnostics: the embedder is asked, and its answer comes back.
    let ask = tokio::spawn({
        let url = url.clone();
        async move {
            let res = reqwest::Client::new()
                .post(format!("{url}/fleet/client-core-till/diagnostics"))
                .bearer_auth(SUPPORT)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    });
    let id = tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await.expect("events") {
                ClientEvent::DiagnosticsAsked { id } => return id,
                _ => continue,
            }
        }
    })
    .await
    .expect("the embedder was asked");
    client.answer_diagnostics(id, "{\n  \"till_name\": \"Gulshan, counter 1\"\n}".into());
    let (status, body) = tokio::time::timeout(WAIT, ask).await.unwrap().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["text"], "{\n  \"till_name\": \"Gulshan, counter 1\"\n}");
    client.stop().await;
    stock_testkit::eventually("offline once it left", WAIT, || async {
        fleet_till(&url, "client-core-till").await.is_some_and(|t| t["till"]["status"] == "offline")
    })
    .await;
    bridge.stop().await;
}
