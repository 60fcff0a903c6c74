//! The fleet view against the real bridge: tills over raw Engine.IO WebSockets (so a test
//! can send exactly what it means to), support's API with its own key, bad reports,
//! Diagnostics pulled through the bridge, the live stream, and the stores (memory, a real
//! SQLite file, a real `redis-server`) held to the same cases.

mod common;

use common::{KEY, TestBridge, WAIT, Ws, emit_with_ack, eventually, http, raw_till, sio_client};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use stock_bridge::api_key::ApiKey;
use stock_bridge::config::{BridgeConfig, ClientAuth};
use stock_bridge::fleet::record::{TillRecord, TimelineEntry};
use stock_bridge::fleet::sqlite::SqliteStore;
use stock_bridge::fleet::store::{Batch, FleetStore, MemoryStore};
use stock_protocol::{EndReason, FleetStatus, TillApp, TillIdentity};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

const SUPPORT: &str = "support-key-0123456789";

fn config() -> BridgeConfig {
    BridgeConfig {
        api_key: Some(stock_testkit::api_key()),
        support_key: Some(ApiKey::new(SUPPORT)),
        ..Default::default()
    }
}

fn identity(id: &str, name: &str) -> Value {
    json!({"till_id": id, "name": name, "app": "terminal", "version": "0.1.0", "os": "linux"})
}

fn report(products: u32) -> Value {
    json!({"state": "socket connected", "since": "2026-12-06T08:00:00Z", "reconnects_1h": 1, "reconnects_24h": 2,
        "gaps": 0, "notifications": true, "products": products, "sent_at": "2026-12-06T08:00:30Z",
        "rtt_ms": 12, "clock_offset_ms": -40})
}

/// `GET` `path` with `key` (when given): status and JSON.
async fn get(addr: SocketAddr, path: &str, key: Option<&str>) -> (u16, Value) {
    let mut request = http().get(format!("http://{addr}{path}")).header("accept", "application/json");
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let res = request.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or_default())
}

/// The till `key` as support sees it, once `check` holds (within WAIT).
async fn till_when(addr: SocketAddr, key: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let seen = std::sync::Mutex::new(Value::Null);
    eventually(what, WAIT, || async {
        let (status, body) = get(addr, &format!("/fleet/{key}"), Some(SUPPORT)).await;
        let ok = status == 200 && check(&body);
        *seen.lock().unwrap() = body;
        ok
    })
    .await;
    seen.into_inner().unwrap()
}

async fn metric(addr: SocketAddr, line_start: &str) -> f64 {
    let (_, text) =
        (0, http().get(format!("http://{addr}/metrics")).bearer_auth(KEY).send().await.unwrap().text().await.unwrap());
    text.lines().find(|l| l.starts_with(line_start)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0.0)
}

#[tokio::test]
async fn support_staff_read_the_fleet_with_their_own_key_and_only_with_it() {
    let bridge = TestBridge::start(config()).await;
    assert_eq!(get(bridge.addr, "/fleet", None).await.0, 401, "no key");
    assert_eq!(get(bridge.addr, "/fleet", Some(KEY)).await.0, 401, "the API key cannot read the fleet");
    let (status, body) = get(bridge.addr, "/fleet", Some(SUPPORT)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["counts"]["total"], 0);
    let with_x_header = http()
        .get(format!("http://{}/fleet", bridge.addr))
        .header("x-support-key", SUPPORT)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(with_x_header.status(), 200);
    let (status, _) = common::post_with(bridge.addr, Some(SUPPORT), &common::add_stock(1)).await;
    assert_eq!(status, 401, "the support key cannot broadcast");
    // The page itself needs no key (it asks for one), and loads nothing from elsewhere.
    let page = http().get(format!("http://{}/fleet", bridge.addr)).header("accept", "text/html").send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(!html.contains("http://") && !html.contains("https://"), "nothing loaded from outside");
    for asset in ["fleet.js", "fleet.css"] {
        let res = http().get(format!("http://{}/fleet-assets/{asset}", bridge.addr)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{asset}");
    }
    // Without a support key the fleet is not served at all.
    let off = TestBridge::start(BridgeConfig { support_key: None, ..config() }).await;
    let (status, body) = get(off.addr, "/fleet", Some(SUPPORT)).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["message"].as_str().unwrap().contains("STOCK_BRIDGE_SUPPORT_KEY"));
    // A support key that is the API key, or short, does not start.
    let same = BridgeConfig { support_key: Some(stock_testkit::api_key()), ..config() }.validate();
    assert!(same.unwrap_err().to_string().contains("it is the API key"));
    let short = BridgeConfig { support_key: Some(ApiKey::new("short")), ..config() }.validate();
    assert!(short.unwrap_err().to_string().contains("at least 16"));
}

#[tokio::test]
async fn a_till_is_listed_with_its_identity_report_and_timeline_and_leaves_with_a_reason() {
    let bridge = TestBridge::start(config()).await;
    let (mut ws, answer) = raw_till(bridge.addr, &json!({"till": identity("till-a", "Dhanmondi, counter 2")})).await;
    assert!(answer.starts_with("40"), "{answer}");
    let till = till_when(bridge.addr, "till-a", "till-a online", |b| b["till"]["status"] == "online").await;
    assert_eq!(till["till"]["identity"]["name"], "Dhanmondi, counter 2");
    assert_eq!(till["till"]["identity"]["app"], "terminal");
    assert_eq!(till["till"]["transport"], "websocket");
    assert_eq!(till["till"]["node"].as_str().map(str::is_empty), Some(false));
    assert_eq!(emit_with_ack(&mut ws, 1, "stock:health", &report(120).to_string()).await, json!([{"ok": true}]));
    let till = till_when(bridge.addr, "till-a", "its report", |b| b["till"]["report"]["products"] == 120).await;
    assert_eq!(till["till"]["report"]["clock_offset_ms"], -40);
    // An old client that says nothing of itself is listed, unidentified, by its socket.
    let _old = common::raw_client(bridge.addr).await;
    eventually("the old client listed, unidentified", WAIT, || async {
        let (_, page) = get(bridge.addr, "/fleet", Some(SUPPORT)).await;
        page["counts"]["unidentified"] == 1 && page["counts"]["online"] == 2
    })
    .await;
    // It closes its connection: offline, and why.
    ws.close(None).await.unwrap();
    let till = till_when(bridge.addr, "till-a", "till-a offline", |b| b["till"]["status"] == "offline").await;
    assert_eq!(till["till"]["end_reason"], "transport_closed");
    assert_eq!(till["till"]["end_text"], EndReason::TransportClosed.text());
    assert_eq!(till["till"]["report"]["products"], 120, "its last report stays");
    let timeline: Vec<&str> =
        till["timeline"].as_array().unwrap().iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(timeline, ["online", "offline"]);
    // Search finds it by name, in any case; state filters.
    let (_, found) = get(bridge.addr, "/fleet?q=dhanMONDI", Some(SUPPORT)).await;
    assert_eq!(found["matching"], 1);
    let (_, online) = get(bridge.addr, "/fleet?state=online", Some(SUPPORT)).await;
    assert_eq!(online["matching"], 1, "only the old client is online now");
    let (status, _) = get(bridge.addr, "/fleet?state=sleeping", Some(SUPPORT)).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn bad_reports_are_refused_counted_and_change_nothing_and_the_till_stays() {
    let bridge = TestBridge::start(BridgeConfig {
        client_auth: ClientAuth::jwt_hs256("fleet-jwt-secret-0123456789").unwrap(),
        ..config()
    })
    .await;
    let token = stock_bridge::auth::jwt::sign_hs256(
        &json!({"sub": 7, "exp": chrono::Utc::now().timestamp() + 3600}),
        b"fleet-jwt-secret-0123456789",
    );
    let (mut ws, answer) = raw_till(bridge.addr, &json!({"token": token, "till": identity("till-b", "B")})).await;
    assert!(answer.starts_with("40"), "{answer}");
    assert_eq!(emit_with_ack(&mut ws, 1, "stock:health", &report(5).to_string()).await, json!([{"ok": true}]));
    let before = till_when(bridge.addr, "till-b", "the good report", |b| b["till"]["report"]["products"] == 5).await;
    let refused = |code: &str| json!([{"error": {"code": code}}]);
    let code_of = |answer: &Value| json!([{"error": {"code": answer[0]["error"]["code"]}}]);
    let metric_of = |outcome: &str| format!("stock_bridge_fleet_reports_total{{outcome=\"{outcome}\"}}");
    let invalid_before = metric(bridge.addr, &metric_of("invalid")).await;
    // Too big.
    let mut big = report(6);
    big["last_error"] = json!({"kind": "x", "text": "y".repeat(250), "at": "2026-12-06T08:00:00Z"});
    big["padding"] = json!("z".repeat(3000));
    assert_eq!(code_of(&emit_with_ack(&mut ws, 2, "stock:health", &big.to_string()).await), refused("invalid_report"));
    // Wrong types.
    let mut wrong = report(6);
    wrong["products"] = json!("many");
    assert_eq!(
        code_of(&emit_with_ack(&mut ws, 3, "stock:health", &wrong.to_string()).await),
        refused("invalid_report")
    );
    // Not an object at all.
    assert_eq!(code_of(&emit_with_ack(&mut ws, 4, "stock:health", "[1,2,3]").await), refused("invalid_report"));
    // Too frequent: a burst beyond the allowance.
    let mut frequent = 0;
    for ack in 10..20 {
        if emit_with_ack(&mut ws, ack, "stock:health", &report(5).to_string()).await[0]["error"]["code"]
            == "rate_limited"
        {
            frequent += 1;
        }
    }
    assert!(frequent >= 5, "only {frequent} of 10 reports in a burst were refused as too frequent");
    // From a connection that did not say which till it is.
    let (mut old, answer) = raw_till(bridge.addr, &json!({"token": token})).await;
    assert!(answer.starts_with("40"), "{answer}");
    assert_eq!(
        code_of(&emit_with_ack(&mut old, 1, "stock:health", &report(1).to_string()).await),
        refused("not_identified")
    );
    // From a socket that was refused at the handshake: nothing happens, nothing is kept.
    let (mut intruder, answer) =
        raw_till(bridge.addr, &json!({"token": "forged", "till": identity("till-x", "X")})).await;
    assert!(answer.starts_with("44"), "refused: {answer}");
    let _ = intruder.send(Message::text(format!("421[\"stock:health\",{}]", report(99)))).await;
    // None of it changed the report, and the till is still connected.
    let after = till_when(bridge.addr, "till-b", "till-b still online", |b| b["till"]["status"] == "online").await;
    assert_eq!(after["till"]["report"], before["till"]["report"], "the fleet is unchanged");
    assert_eq!(emit_with_ack(&mut ws, 30, "stock:ping", "{}").await[0], "pong", "the till's connection is alive");
    let intruded = till_when(bridge.addr, "till-x", "the refused till", |b| b["till"]["status"] == "refused").await;
    assert_eq!(intruded["till"]["refusals"], 1);
    assert_eq!(intruded["till"]["refusal_code"], "unauthorized");
    assert!(intruded["till"]["report"].is_null(), "a refused socket's report is not taken");
    assert!(metric(bridge.addr, &metric_of("invalid")).await >= invalid_before + 3.0);
    assert!(metric(bridge.addr, &metric_of("too_frequent")).await >= 5.0);
    assert!(metric(bridge.addr, &metric_of("not_identified")).await >= 1.0);
    common::assert_healthy(bridge.addr, "after the bad reports").await;
}

/// Answers every Diagnostics request on `ws` with `text` (when given), until the connection ends.
fn answering(mut ws: Ws, text: Option<&'static str>) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut asked = 0;
        while let Ok(Some(Ok(frame))) = timeout(Duration::from_secs(30), ws.next()).await {
            let Message::Text(t) = frame else { continue };
            if t.as_str() == "2" {
                let _ = ws.send(Message::text("3")).await;
            } else if let Some(rest) = t.strip_prefix("42") {
                let args: Value = serde_json::from_str(rest).unwrap();
                if args[0] == "stock:diagnostics" {
                    asked += 1;
                    if let Some(text) = text {
                        let answer = json!(["stock:diagnostics_answer", {"id": args[1]["id"], "text": text}]);
                        ws.send(Message::text(format!("42{answer}"))).await.unwrap();
                    }
                }
            }
        }
        asked
    })
}

#[tokio::test]
async fn support_pulls_a_tills_diagnostics_through_the_bridge_and_only_that_till_is_asked() {
    let bridge = TestBridge::start(config()).await;
    let (asked, _) = raw_till(bridge.addr, &json!({"till": identity("till-c", "C")})).await;
    let (other, _) = raw_till(bridge.addr, &json!({"till": identity("till-d", "D")})).await;
    let (silent, _) = raw_till(bridge.addr, &json!({"till": identity("till-e", "E")})).await;
    let asked = answering(asked, Some("{\n  \"app_version\": \"0.1.0\"\n}"));
    let other = answering(other, Some("not asked"));
    let silent = answering(silent, None);
    till_when(bridge.addr, "till-e", "all three online", |b| b["till"]["status"] == "online").await;
    let ask = |till: &'static str, key: &'static str| {
        let addr = bridge.addr;
        async move {
            let res =
                http().post(format!("http://{addr}/fleet/{till}/diagnostics")).bearer_auth(key).send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap_or_default())
        }
    };
    let (status, body) = ask("till-c", SUPPORT).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["text"], "{\n  \"app_version\": \"0.1.0\"\n}");
    assert_eq!(ask("till-c", KEY).await.0, 401, "only support can ask");
    let (status, body) = ask("till-e", SUPPORT).await;
    assert_eq!(status, 504, "{body}");
    assert!(body["message"].as_str().unwrap().contains("did not answer"), "{body}");
    assert_eq!(ask("nobody", SUPPORT).await.0, 409, "a till that is not connected cannot be asked");
    assert_eq!(ask("bad%2Fid", SUPPORT).await.0, 400);
    drop(bridge);
    assert_eq!(asked.await.unwrap(), 1);
    assert_eq!(other.await.unwrap(), 0, "only the till support asked is asked");
    assert_eq!(silent.await.unwrap(), 1);
}

#[tokio::test]
async fn the_live_stream_carries_a_tills_change_with_the_key_in_a_header() {
    let bridge = TestBridge::start(config()).await;
    let refused = http().get(format!("http://{}/fleet-events", bridge.addr)).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let mut stream = http()
        .get(format!("http://{}/fleet-events", bridge.addr))
        .bearer_auth(SUPPORT)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let (_ws, _) = raw_till(bridge.addr, &json!({"till": identity("till-live", "Live one")})).await;
    let mut seen = String::new();
    timeout(WAIT, async {
        while !(seen.contains("event: till") && seen.contains("till-live") && seen.contains("event: counts")) {
            let chunk = stream.chunk().await.unwrap().expect("the stream ended");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no till event on the stream: {seen}"));
}

/// A till record as the fleet writes it.
fn record(key: &str, status: FleetStatus, offline_days_ago: Option<i64>) -> TillRecord {
    let now = chrono::Utc::now();
    let identity = TillIdentity {
        till_id: key.into(),
        name: format!("Till {key}"),
        app: TillApp::Desktop,
        version: "0.1.0".into(),
        os: "linux".into(),
    };
    TillRecord {
        status,
        offline_since: offline_days_ago.map(|d| now - chrono::Duration::days(d)),
        ..TillRecord::new(key.into(), Some(identity), "node-x", now)
    }
}

/// The same cases for every store.
async fn store_keeps_records_timelines_and_forgets(store: &dyn FleetStore) {
    let now = chrono::Utc::now();
    let timeline: Vec<(String, TimelineEntry)> = (0..150)
        .map(|i| {
            let entry = TimelineEntry { at: now, status: FleetStatus::Online, detail: format!("change {i}") };
            ("one".to_owned(), entry)
        })
        .collect();
    let batch = Batch {
        records: vec![record("one", FleetStatus::Online, None), record("two", FleetStatus::Offline, Some(1))],
        timeline,
        forget: vec![],
    };
    store.write(batch).await.unwrap();
    let mut loaded = store.load().await.unwrap();
    loaded.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(loaded.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["one", "two"], "{}", store.kind());
    assert_eq!(loaded[0].identity.as_ref().unwrap().name, "Till one");
    let kept = store.timeline("one").await.unwrap();
    assert_eq!(kept.len(), 100, "{}: the last 100 changes", store.kind());
    assert_eq!(kept.first().unwrap().detail, "change 50");
    assert_eq!(kept.last().unwrap().detail, "change 149");
    // An update replaces, and one more entry pushes the oldest out.
    let mut changed = record("one", FleetStatus::Offline, Some(0));
    changed.cuts = 3;
    let entry = TimelineEntry { at: now, status: FleetStatus::Offline, detail: "gone".into() };
    store.write(Batch { records: vec![changed], timeline: vec![("one".into(), entry)], forget: vec![] }).await.unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.iter().find(|r| r.key == "one").unwrap().cuts, 3);
    let kept = store.timeline("one").await.unwrap();
    assert_eq!((kept.len(), kept.first().unwrap().detail.as_str()), (100, "change 51"));
    // Forgotten: the record and its timeline.
    store.write(Batch { forget: vec!["one".into()], ..Batch::default() }).await.unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["two"], "{}", store.kind());
    assert!(store.timeline("one").await.unwrap().is_empty());
}

#[tokio::test]
async fn memory_sqlite_and_redis_keep_the_same_things() {
    store_keeps_records_timelines_and_forgets(&MemoryStore::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("fleet.db")).unwrap();
    store_keeps_records_timelines_and_forgets(&sqlite).await;
    #[cfg(unix)]
    {
        let redis = stock_testkit::redis::Redis::start(dir.path()).await;
        let client = redis::Client::open(format!("{}?protocol=resp3", redis.url())).unwrap();
        let conn = client.get_connection_manager().await.unwrap();
        let store = stock_bridge::fleet::redis::RedisStore::new(conn, "store-test");
        store_keeps_records_timelines_and_forgets(&store).await;
    }
}

#[tokio::test]
async fn sqlite_keeps_tills_and_timelines_across_a_restart_and_forgets_by_retention_and_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fleet.db");
    // Written before the bridge starts: one till long offline, one "online" from a crash.
    {
        let store = SqliteStore::open(&db).unwrap();
        let batch = Batch {
            records: vec![
                record("ancient", FleetStatus::Offline, Some(40)),
                record("crashed", FleetStatus::Online, None),
            ],
            ..Batch::default()
        };
        store.write(batch).await.unwrap();
    }
    let with_db = || BridgeConfig { fleet_db: Some(db.clone()), ..config() };
    let first = TestBridge::start(with_db()).await;
    let (status, _) = get(first.addr, "/fleet/ancient", Some(SUPPORT)).await;
    assert_eq!(status, 404, "forgotten after the 30-day retention");
    let crashed = till_when(first.addr, "crashed", "the crashed one", |b| b["till"]["status"] == "offline").await;
    assert_eq!(crashed["till"]["end_reason"], "bridge_stopped", "online at a crash means offline now");
    let (mut ws, _) = raw_till(first.addr, &json!({"till": identity("till-f", "Banani 1")})).await;
    assert_eq!(emit_with_ack(&mut ws, 1, "stock:health", &report(42).to_string()).await, json!([{"ok": true}]));
    till_when(first.addr, "till-f", "its report", |b| b["till"]["report"]["products"] == 42).await;
    first.stop().await;
    drop(ws);
    assert_eq!(stock_bridge::fleet::sqlite::count_tills(&db).unwrap(), 2, "crashed and till-f");

    let second = TestBridge::start(with_db()).await;
    let till = till_when(second.addr, "till-f", "till-f after the restart", |b| b["till"]["status"] == "offline").await;
    assert_eq!(till["till"]["end_reason"], "bridge_stopped");
    assert_eq!(till["till"]["report"]["products"], 42, "its report survived the restart");
    assert_eq!(till["till"]["identity"]["name"], "Banani 1");
    let timeline: Vec<&str> =
        till["timeline"].as_array().unwrap().iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(timeline, ["online", "offline"], "the timeline survived too");
    // Support forgets it: gone, also after the next restart.
    let deleted =
        http().delete(format!("http://{}/fleet/till-f", second.addr)).bearer_auth(SUPPORT).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    let deleted =
        http().delete(format!("http://{}/fleet/till-f", second.addr)).bearer_auth(SUPPORT).send().await.unwrap();
    assert_eq!(deleted.status(), 404, "forgetting twice");
    second.stop().await;
    let third = TestBridge::start(with_db()).await;
    assert_eq!(get(third.addr, "/fleet/till-f", Some(SUPPORT)).await.0, 404);
    assert_eq!(get(third.addr, "/fleet/crashed", Some(SUPPORT)).await.0, 200);
}

#[tokio::test]
async fn a_rust_socketio_client_without_an_identity_still_connects_and_is_listed() {
    let bridge = TestBridge::start(config()).await;
    let (_client, mut rx) = sio_client(bridge.addr, rust_socketio::TransportType::Websocket, None).await;
    common::next(&mut rx, "open").await;
    let fleet = Arc::new(bridge.bridge.fleet.clone());
    eventually("listed", WAIT, || async { fleet.records().iter().any(|r| r.key.starts_with("sid:")) }).await;
}
