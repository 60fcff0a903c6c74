//! The bridge on a real port (127.0.0.1:0) with real Socket.IO clients (rust_socketio).

mod common;

use common::CONNECT_ERROR;
use common::{Events, KEY, TestBridge, next};
use futures_util::{SinkExt, StreamExt};
use rust_socketio::TransportType;
use rust_socketio::asynchronous::Client;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use stock_bridge::auth::jwt::sign_hs256;
use stock_bridge::config::{BridgeConfig, ClientAuth};
use stock_testkit::api_key;
use tokio::time::timeout;

const JWT_SECRET: &str = "jwt-secret-for-tests-only";
const WAIT: Duration = Duration::from_secs(10);

/// A bridge with the test key (see [`TestBridge`]), logging to the test's output.
async fn start(config: BridgeConfig) -> TestBridge {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    TestBridge::start(BridgeConfig { api_key: Some(api_key()), ..config }).await
}

async fn post(addr: SocketAddr, body: &Value) -> (u16, Value) {
    common::post_with(addr, Some(KEY), body).await
}

/// A Socket.IO client (see [`common::sio_client`]).
async fn client(addr: SocketAddr, transport: TransportType, token: Option<String>) -> (Client, Events) {
    common::sio_client(addr, transport, token.as_deref()).await
}

fn add_stock(product: i64) -> Value {
    json!({"event": "add_stock", "data": {"product_id": product, "in_stock": 10, "discount_price": 120.5,
        "peak_hour_price": 140, "mediboy_offer_price": 90, "sync_at": "2024-01-01T00:00:00.000Z",
        "zz_extra": {"kept": [1, 2]}, "aa_extra": null}})
}

#[tokio::test]
async fn relays_the_payload_unchanged_over_websocket_and_polling() {
    let bridge = start(BridgeConfig::default()).await;
    for transport in [TransportType::Websocket, TransportType::Polling] {
        let (c, mut rx) = client(bridge.addr, transport, None).await;
        next(&mut rx, "open").await;
        common::in_audience(&bridge.bridge, 1).await;
        let body = add_stock(5486);
        let (status, answer) = post(bridge.addr, &body).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["recipients"], 1);
        let args = next(&mut rx, "add_stock").await;
        assert_eq!(args[0].to_string(), body["data"].to_string(), "same fields, same values, same order");
        assert_eq!(args[1]["seq"], answer["seq"]);
        assert!(args[1]["epoch"].as_str().is_some_and(|e| !e.is_empty()));
        post(bridge.addr, &json!({"event": "sale_mode", "data": {"mode": "peak_hour"}})).await;
        assert_eq!(next(&mut rx, "sale_mode").await, vec![json!({"mode": "peak_hour"})]);
        c.disconnect().await.unwrap();
        common::in_audience(&bridge.bridge, 0).await;
    }
}

fn token(sub: u64, exp_in: i64) -> String {
    sign_hs256(&json!({"sub": sub, "exp": chrono::Utc::now().timestamp() + exp_in}), JWT_SECRET.as_bytes())
}

#[tokio::test]
async fn private_broadcasts_reach_only_their_user() {
    let config = BridgeConfig { client_auth: ClientAuth::jwt_hs256(JWT_SECRET).unwrap(), ..Default::default() };
    let bridge = start(config).await;
    let (_a, mut rx_a) = client(bridge.addr, TransportType::Websocket, Some(token(41, 600))).await;
    let (_b, mut rx_b) = client(bridge.addr, TransportType::Websocket, Some(token(42, 600))).await;
    next(&mut rx_a, "open").await;
    next(&mut rx_b, "open").await;
    common::in_audience(&bridge.bridge, 2).await;

    let mut private = add_stock(1);
    private["to"] = json!("user:42");
    let (status, answer) = post(bridge.addr, &private).await;
    assert_eq!((status, answer["recipients"].clone()), (200, json!(1)));
    let global = add_stock(2);
    post(bridge.addr, &global).await;

    assert_eq!(next(&mut rx_b, "add_stock").await[0]["product_id"], 1);
    assert_eq!(next(&mut rx_b, "add_stock").await[0]["product_id"], 2);
    // A's first add_stock is the global one: the private one never reached it.
    assert_eq!(next(&mut rx_a, "add_stock").await[0]["product_id"], 2);
}

#[tokio::test]
async fn forged_expired_and_missing_tokens_are_refused_with_connect_error() {
    let config = BridgeConfig { client_auth: ClientAuth::jwt_hs256(JWT_SECRET).unwrap(), ..Default::default() };
    let bridge = start(config).await;
    let forged = sign_hs256(&json!({"sub": 1}), b"not-the-shared-secret-at-all");
    for (tok, why) in [
        (Some(forged), "unauthorized: the token signature is wrong"),
        (Some(token(1, -600)), "unauthorized: the token has expired"),
        (None, "unauthorized: no token given"),
    ] {
        let (_c, mut rx) = client(bridge.addr, TransportType::Websocket, tok).await;
        let text = common::text_of(&next(&mut rx, CONNECT_ERROR).await);
        assert!(text.contains(why), "{text}");
    }
    assert_eq!(bridge.bridge.connected_clients(), 0);
}

/// Issue 22, F16: `exp` was checked only at the handshake; a till kept its user's private
/// events after its token expired (8 s past exp + leeway when measured).
#[tokio::test]
async fn a_socket_is_closed_when_its_token_expires_and_its_reconnect_is_refused() {
    let config = BridgeConfig { client_auth: ClientAuth::jwt_hs256(JWT_SECRET).unwrap(), ..Default::default() };
    let bridge = start(config).await;
    // Past exp, with 1 s left of the 60 s leeway (refused from the second after).
    let expiring = token(42, -59);
    let (_lasting, mut rx_lasting) = client(bridge.addr, TransportType::Websocket, Some(token(42, 600))).await;
    let (_expiring, mut rx) = client(bridge.addr, TransportType::Websocket, Some(expiring.clone())).await;
    next(&mut rx_lasting, "open").await;
    next(&mut rx, "open").await;
    common::in_audience(&bridge.bridge, 2).await;
    let mut private = add_stock(1);
    private["to"] = json!("user:42");
    assert_eq!(post(bridge.addr, &private).await.1["recipients"], 2, "both sockets of user 42, before");

    timeout(WAIT, async {
        while bridge.bridge.connected_clients() != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the socket whose token expired is still connected");
    assert_eq!(post(bridge.addr, &private).await.1["recipients"], 1, "only the socket with a good token");
    assert_eq!(next(&mut rx_lasting, "add_stock").await[0]["product_id"], 1);

    let (_again, mut rx_again) = client(bridge.addr, TransportType::Websocket, Some(expiring)).await;
    let text = common::text_of(&next(&mut rx_again, CONNECT_ERROR).await);
    assert!(text.contains("unauthorized: the token has expired"), "{text}");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_while_others_keep_up() {
    let config = BridgeConfig {
        client_buffer: 16,
        batch_max: 16,
        body_limit: 256 * 1024,
        rate_limit: 100_000,
        // The heartbeat must not close the stalled client before its queue fills.
        ping_interval: Duration::from_secs(20),
        ping_timeout: Duration::from_secs(20),
        ..Default::default()
    };
    let bridge = start(config).await;
    let (_fast, mut fast_rx) = client(bridge.addr, TransportType::Websocket, None).await;
    next(&mut fast_rx, "open").await;
    let _stalled = common::raw_client(bridge.addr).await;
    assert_eq!(bridge.bridge.connected_clients(), 2);

    let mut body = add_stock(7);
    body["data"]["note"] = json!("x".repeat(100 * 1024));
    let mut sent = 0;
    let mut received = 0;
    // Bounded: at most 600 broadcasts (60 MB through loopback) until the stalled one is cut.
    while bridge.bridge.connected_clients() == 2 {
        assert!(sent < 600, "the stalled client was never found too slow");
        let (status, _) = post(bridge.addr, &body).await;
        assert_eq!(status, 200);
        sent += 1;
        // The fast client keeps up: drain what it has.
        while let Ok((name, _)) = fast_rx.try_recv() {
            received += (name == "add_stock") as usize;
        }
    }
    assert_eq!(bridge.bridge.connected_clients(), 1, "nothing more is queued to the slow one");
    // Nothing more is queued to it: later broadcasts reach only the fast client.
    for _ in 0..5 {
        assert_eq!(post(bridge.addr, &body).await.1["recipients"], 1);
        sent += 1;
    }
    while received < sent {
        next(&mut fast_rx, "add_stock").await;
        received += 1;
    }
    assert_eq!(received, sent, "the fast client got every broadcast");
    // Its engine session is closed by the heartbeat (the ping cannot be queued); from
    // then on it is not counted either.
    assert_eq!(bridge.bridge.connected_clients(), 1);
}

#[tokio::test]
async fn shutdown_closes_clients_and_returns() {
    let bridge = start(BridgeConfig::default()).await;
    let addr = bridge.addr;
    let (_c, mut rx) = client(addr, TransportType::Websocket, None).await;
    next(&mut rx, "open").await;
    // Stops gracefully and waits until serving has returned, without an error.
    let stopping = tokio::spawn(bridge.stop());
    next(&mut rx, "close").await;
    timeout(WAIT, stopping).await.expect("shutdown did not finish").unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no longer accepting");
}

/// A stand-in for the Mediboy API's `GET /user` (the real one cannot run here): knows the
/// bearer `good-7` as user 7, counts requests, and can be switched to answering 500.
async fn user_service() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use axum::http::{HeaderMap, StatusCode};
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    let router = axum::Router::new().route(
        "/user",
        axum::routing::get(move |headers: HeaderMap| {
            let hits = counted.clone();
            async move {
                hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                    Some("Bearer good-7") => (StatusCode::OK, axum::Json(json!({"data": {"id": 7, "name": "Ann"}}))),
                    Some("Bearer broken") => {
                        (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"message": "boom"})))
                    }
                    _ => (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "Unauthenticated."}))),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}/user"), hits)
}

fn introspecting(url: String) -> BridgeConfig {
    BridgeConfig {
        client_auth: ClientAuth::Introspect { url, cache_for: Duration::from_secs(60) },
        ..Default::default()
    }
}

async fn refusal(addr: SocketAddr, token: &str) -> String {
    let (_c, mut rx) = client(addr, TransportType::Websocket, Some(token.into())).await;
    common::text_of(&next(&mut rx, CONNECT_ERROR).await)
}

#[tokio::test]
async fn introspection_identifies_users_caches_answers_and_refuses_unknown_tokens() {
    let (url, hits) = user_service().await;
    let bridge = start(introspecting(url)).await;
    let (_a, mut rx_a) = client(bridge.addr, TransportType::Websocket, Some("good-7".into())).await;
    next(&mut rx_a, "open").await;
    let (_b, mut rx_b) = client(bridge.addr, TransportType::Websocket, Some("good-7".into())).await;
    next(&mut rx_b, "open").await;
    common::in_audience(&bridge.bridge, 2).await;
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1, "the second handshake used the cached answer");
    let mut private = json!({"event": "sale_mode", "data": {"mode": "peak_hour"}, "to": "user:7"});
    assert_eq!(post(bridge.addr, &private).await.1["recipients"], 2);
    private["to"] = json!("user:8");
    assert_eq!(post(bridge.addr, &private).await.1["recipients"], 0);

    let text = refusal(bridge.addr, "stolen").await;
    assert!(text.contains("unauthorized: the user service does not know this token"), "{text}");
    let text = refusal(bridge.addr, "broken").await;
    assert!(text.contains("auth unavailable: the user service answered with an error"), "{text}");

    // The snapshot endpoint accepts a client token the bridge accepts, and refuses others.
    let snapshot = |token: &'static str| {
        let url = format!("http://{}/snapshot", bridge.addr);
        async move { reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(snapshot("good-7").await, 200);
    assert_eq!(snapshot("stolen").await, 401);
}

#[tokio::test]
async fn introspection_down_refuses_as_unavailable_not_unauthorized() {
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let bridge = start(introspecting(format!("http://127.0.0.1:{port}/user"))).await;
    let text = refusal(bridge.addr, "good-7").await;
    assert!(text.contains("auth unavailable: the user service could not be reached"), "{text}");
}

#[tokio::test]
async fn a_flood_of_handshakes_with_one_bogus_token_makes_a_handful_of_user_service_calls() {
    let (url, hits) = user_service().await;
    let config = BridgeConfig { handshake_rate: std::num::NonZeroU32::new(10_000).unwrap(), ..introspecting(url) };
    let bridge = start(config).await;
    // 500 handshakes at once, raw (the Socket.IO CONNECT with the token), all refused.
    let mut flood = Vec::new();
    for _ in 0..500 {
        let addr = bridge.addr;
        flood.push(tokio::spawn(async move {
            let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
            let (mut ws, _) = timeout(WAIT, tokio_tungstenite::connect_async(url)).await.unwrap().unwrap();
            timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
            ws.send(tokio_tungstenite::tungstenite::Message::text(r#"40{"token":"stolen"}"#)).await.unwrap();
            loop {
                let frame = timeout(WAIT, ws.next()).await.expect("no answer to the handshake").unwrap().unwrap();
                let text = frame.into_text().unwrap();
                if text.starts_with("44") {
                    return text.to_string();
                }
            }
        }));
    }
    for handshake in flood {
        let answer = handshake.await.unwrap();
        assert!(answer.contains("unauthorized"), "{answer}");
    }
    let calls = hits.load(std::sync::atomic::Ordering::SeqCst);
    assert!(calls <= 3, "{calls} calls to the user service for one token");
    // And /snapshot with that token shares the same cache.
    let res = reqwest::Client::new()
        .get(format!("http://{}/snapshot", bridge.addr))
        .bearer_auth("stolen")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), calls);
}

#[tokio::test]
async fn handshakes_beyond_the_rate_of_one_address_are_refused_as_retryable() {
    let config = BridgeConfig { handshake_rate: std::num::NonZeroU32::new(1).unwrap(), ..Default::default() };
    let bridge = start(config).await;
    let mut refused = None;
    // A burst of two is allowed; the third or a later one within the second is refused.
    for _ in 0..6 {
        let (_c, mut rx) = client(bridge.addr, TransportType::Websocket, None).await;
        let (name, args) = timeout(WAIT, async {
            loop {
                let (n, a) = rx.recv().await.unwrap();
                if n == "open" || n == CONNECT_ERROR {
                    return (n, a);
                }
            }
        })
        .await
        .unwrap();
        if name == CONNECT_ERROR {
            refused = Some(common::text_of(&args));
            break;
        }
    }
    let text = refused.expect("no handshake was refused");
    assert!(text.contains("auth unavailable: too many connection attempts"), "{text}");
}

#[tokio::test]
async fn tokens_that_cannot_be_tokens_are_refused_as_unauthorized_without_asking() {
    let (url, hits) = user_service().await;
    let bridge = start(introspecting(url)).await;
    // (A 100 KB one cannot even be sent: WebSocket messages over 16 KB close the connection.)
    for token in ["good-7\nX-Injected: 1".to_owned(), "a".repeat(9 * 1024)] {
        let text = refusal(bridge.addr, &token).await;
        assert!(text.contains("unauthorized: the token"), "{text}");
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "the user service was not asked");
}

#[tokio::test]
async fn snapshot_with_a_user_token_while_the_user_service_is_down_is_503_not_401() {
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let bridge = start(introspecting(format!("http://127.0.0.1:{port}/user"))).await;
    let res = reqwest::Client::new()
        .get(format!("http://{}/snapshot", bridge.addr))
        .bearer_auth("good-7")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
}

/// `POST /broadcast` is limited per source address: one back office over its rate does
/// not stop another. (127.0.0.2 is loopback too on Linux.)
#[tokio::test]
async fn the_broadcast_rate_limit_is_per_source_address() {
    let bridge = start(BridgeConfig { rate_limit: 2, ..Default::default() }).await;
    let from = |ip: [u8; 4]| {
        reqwest::Client::builder().local_address(std::net::IpAddr::from(ip)).timeout(WAIT).build().unwrap()
    };
    let post_from = |client: reqwest::Client| async move {
        let res = client
            .post(format!("http://{}/broadcast", bridge.addr))
            .bearer_auth(KEY)
            .json(&json!({"event": "sale_mode", "data": {"mode": "x"}}))
            .send()
            .await
            .unwrap();
        res.status().as_u16()
    };
    let first = from([127, 0, 0, 1]);
    let statuses = [post_from(first.clone()).await, post_from(first.clone()).await, post_from(first.clone()).await];
    assert_eq!(statuses, [200, 200, 429], "the burst allowance is one second's worth");
    assert_eq!(post_from(from([127, 0, 0, 2])).await, 200, "another address has its own allowance");
}
