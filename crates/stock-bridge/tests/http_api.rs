//! The HTTP API driven in process through [`App::build`]'s router: every answer of the wire contract.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use stock_bridge::App;
use stock_bridge::config::BridgeConfig;
use stock_testkit::{KEY, api_key};
use tower::ServiceExt;

fn config() -> BridgeConfig {
    BridgeConfig { api_key: Some(api_key()), ..BridgeConfig::default() }
}

async fn router(config: BridgeConfig) -> Router {
    App::build(Arc::new(config.validate().unwrap()), Router::new()).await.unwrap().router
}

fn add_stock() -> Value {
    json!({"event": "add_stock", "data": {"product_id": 5486, "in_stock": 10, "discount_price": 120,
        "peak_hour_price": 140, "mediboy_offer_price": 90, "sync_at": "2024-01-01T00:00:00.000Z"}})
}

fn post() -> axum::http::request::Builder {
    Request::post("/broadcast").header("content-type", "application/json")
}

async fn send(router: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, body)
}

async fn broadcast(router: &Router, body: impl Into<Body>) -> (StatusCode, Value) {
    let body = body.into();
    let req = post().header("authorization", format!("Bearer {KEY}")).body(body).unwrap();
    send(router, req).await
}

#[tokio::test]
async fn accepts_a_valid_broadcast_with_either_key_header() {
    let r = router(config()).await;
    let (status, body) = broadcast(&r, add_stock().to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "Broadcast queued");
    assert_eq!(body["seq"], 1);
    let req = post().header("x-api-key", KEY).body(Body::from(add_stock().to_string())).unwrap();
    let (status, body) = send(&r, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["seq"], 2);
}

#[tokio::test]
async fn refuses_missing_and_wrong_keys_with_401() {
    let r = router(config()).await;
    for auth in [
        None,
        Some(("authorization", "Bearer wrong-key-0123456789")),
        Some(("x-api-key", "nope")),
        Some(("authorization", KEY)),
    ] {
        let mut req = post();
        if let Some((h, v)) = auth {
            req = req.header(h, v);
        }
        let (status, body) = send(&r, req.body(Body::from(add_stock().to_string())).unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert!(body["message"].as_str().unwrap().starts_with("Unauthorized"));
        assert!(!body.to_string().contains(KEY), "the key never appears in an answer");
    }
}

#[tokio::test]
async fn invalid_payloads_get_400_with_one_line_per_problem() {
    let r = router(config()).await;
    let cases: Vec<(String, Vec<&str>)> = vec![
        (r#"{"event":"connect","data":{}}"#.into(), vec!["event \"connect\" is reserved by Socket.IO"]),
        (r#"{"event":"removeListener","data":{}}"#.into(), vec!["event \"removeListener\" is reserved by Socket.IO"]),
        (r#"{"data":{}}"#.into(), vec!["event is missing"]),
        (r#"{"event":"sale_mode","data":[1]}"#.into(), vec!["data must be an object, got an array"]),
        (r#"{"event":"sale_mode","data":"x"}"#.into(), vec!["data must be an object, got a string"]),
        (
            r#"{"event":"add_stock","data":{"product_id":"1","in_stock":1,"discount_price":1,"peak_hour_price":1,"mediboy_offer_price":1,"sync_at":"nope"}}"#.into(),
            vec!["data.product_id must be an integer, got a string", "data.sync_at must be an RFC 3339 timestamp, got \"nope\""],
        ),
    ];
    for (body, want) in cases {
        let (status, answer) = broadcast(&r, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["message"], "Invalid payload");
        assert_eq!(answer["errors"], json!(want), "{body}");
    }
}

#[tokio::test]
async fn hostile_bodies_never_get_a_500_and_change_nothing() {
    let r = router(config()).await;
    let deep = format!(r#"{{"event":"sale_mode","data":{{"a":{}0{}}}}}"#, "[".repeat(5000), "]".repeat(5000));
    let huge_int = r#"{"event":"add_stock","data":{"product_id":123456789012345678901234567890,"in_stock":1,"discount_price":1,"peak_hour_price":1,"mediboy_offer_price":1,"sync_at":"2024-01-01T00:00:00Z"}}"#;
    let bodies: Vec<Vec<u8>> = vec![
        b"\xff\xfe{\"event\":\"add_stock\"}".to_vec(),
        b"{\"event\":\"sale_mode\",\"data\":{\"k\":\"\xc3\x28\"}}".to_vec(),
        deep.into_bytes(),
        br#"{"event":"sale_mode","data":{"n":1e999}}"#.to_vec(),
        huge_int.as_bytes().to_vec(),
        b"".to_vec(),
        b"null".to_vec(),
        b"{".to_vec(),
        br#"{"event":"sale_mode","data":{},"to":"everyone"}"#.to_vec(),
    ];
    for body in bodies {
        let (status, answer) = broadcast(&r, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&body));
        assert_eq!(answer["message"], "Invalid payload");
        assert!(answer["errors"][0].as_str().is_some_and(|e| !e.is_empty()));
    }
    let (status, body) = broadcast(&r, add_stock().to_string()).await;
    assert_eq!(status, StatusCode::OK, "a normal broadcast still works");
    assert_eq!(body["seq"], 1, "nothing refused took a sequence number");
}

#[tokio::test]
async fn wrong_content_type_gets_415() {
    let r = router(config()).await;
    for ct in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let mut req = Request::post("/broadcast").header("authorization", format!("Bearer {KEY}"));
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let (status, body) = send(&r, req.body(Body::from(add_stock().to_string())).unwrap()).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        assert!(body["message"].as_str().unwrap().contains("application/json"));
    }
    let req = post()
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json; charset=utf-8")
        .body(Body::from(add_stock().to_string()))
        .unwrap();
    assert_eq!(send(&r, req).await.0, StatusCode::OK);
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let r = router(BridgeConfig { body_limit: 1024, ..config() }).await;
    let mut big = add_stock();
    big["data"]["note"] = json!("x".repeat(2000));
    let (status, body) = broadcast(&r, big.to_string()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["message"], "Payload too large: the limit is 1024 bytes");
    // Without a Content-Length (chunked), the limit still holds.
    let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(big.to_string().into_bytes())]);
    let req = post().header("authorization", format!("Bearer {KEY}")).body(Body::from_stream(stream)).unwrap();
    assert_eq!(send(&r, req).await.0, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_burst_over_the_rate_limit_gets_429_then_recovers() {
    let r = router(BridgeConfig { rate_limit: 5, ..config() }).await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(broadcast(&r, add_stock().to_string()).await.0);
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 5, "{statuses:?}");
    let (status, body) = broadcast(&r, add_stock().to_string()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["message"], "Too many requests: the limit is 5 broadcasts per second");
    // Bounded wait for the bucket to refill (one token takes 200 ms at 5/s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if broadcast(&r, add_stock().to_string()).await.0 == StatusCode::OK {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "rate limit never recovered");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn source_allow_list_answers_403_to_others() {
    let r = router(BridgeConfig { allow_sources: vec!["10.1.0.0/16".parse().unwrap()], ..config() }).await;
    let from = |ip: &str| {
        let mut req =
            post().header("authorization", format!("Bearer {KEY}")).body(Body::from(add_stock().to_string())).unwrap();
        req.extensions_mut().insert(ConnectInfo(format!("{ip}:5000").parse::<SocketAddr>().unwrap()));
        req
    };
    assert_eq!(send(&r, from("10.1.2.3")).await.0, StatusCode::OK);
    let (status, body) = send(&r, from("127.0.0.1")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["message"].as_str().unwrap().starts_with("Forbidden"));
}

#[tokio::test]
async fn health_metrics_and_snapshot() {
    let r = router(config()).await;
    assert_eq!(broadcast(&r, add_stock().to_string()).await.0, StatusCode::OK);
    assert_eq!(broadcast(&r, r#"{"event":"connect","data":{}}"#).await.0, StatusCode::BAD_REQUEST);
    let (status, body) = send(&r, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok", "tls": {"enabled": false}})));
    let (status, metrics) = send(&r, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = metrics.as_str().unwrap().to_owned();
    for name in [
        "stock_bridge_connected_clients",
        "stock_bridge_broadcasts_accepted_total{event=\"add_stock\"}",
        "stock_bridge_broadcasts_rejected_total{reason=\"invalid\"}",
        "stock_bridge_deliveries_total",
        "stock_bridge_broadcast_to_emit_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
    let (status, _) = send(&r, Request::get("/snapshot").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let req = Request::get("/snapshot").header("x-api-key", KEY).body(Body::empty()).unwrap();
    let (status, snap) = send(&r, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(snap["items"][0]["data"], add_stock()["data"]);
    assert_eq!(snap["full"], true);
}
