//! `POST /broadcast` with a batch (`{"events": [...]}`) against a bridge on a real port,
//! read by raw WebSocket clients: order, sequence numbers, all-or-nothing validation, the
//! limits, catch-up after a batch, and that a batch leaves each socket in few writes.

mod common;

use common::{KEY, TestBridge, Ws, add_stock, start_isolated};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use stock_bridge::accounting::account;
use stock_bridge::config::BridgeConfig;
use stock_protocol::CatchUpRequest;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

async fn bridge(config: BridgeConfig) -> TestBridge {
    start_isolated(BridgeConfig { api_key: Some(stock_testkit::api_key()), ..config }).await
}

async fn post(running: &TestBridge, body: &Value) -> (u16, Value) {
    common::post_with(running.addr, Some(KEY), body).await
}

/// The next `count` events `ws` receives, as (event name, args), answering pings; all
/// within [`common::WAIT`] (a per-frame wait would be renewed by every ping forever).
async fn events(ws: &mut Ws, count: usize) -> Vec<(String, Vec<Value>)> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while seen.len() < count {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} events arrived", seen.len()))
            .expect("the socket closed")
            .unwrap();
        let Message::Text(text) = frame else { continue };
        if text.as_str() == "2" {
            ws.send(Message::text("3")).await.unwrap();
            continue;
        }
        let packet = text.as_str().strip_prefix("42").unwrap_or_else(|| panic!("not an event: {text}"));
        let mut args: Vec<Value> = serde_json::from_str(packet).unwrap();
        let name = args.remove(0).as_str().unwrap().to_owned();
        seen.push((name, args));
    }
    seen
}

/// Nothing more arrives for a moment (a ping is answered and ignored).
async fn nothing_more(ws: &mut Ws) {
    let quiet = std::time::Duration::from_millis(300);
    while let Ok(frame) = timeout(quiet, ws.next()).await {
        let frame = frame.expect("the socket closed").unwrap();
        match frame {
            Message::Text(text) if text.as_str() == "2" => ws.send(Message::text("3")).await.unwrap(),
            other => panic!("nothing more was expected, got {other:?}"),
        }
    }
}

fn product_of(args: &[Value]) -> i64 {
    args[0]["product_id"].as_i64().unwrap()
}

fn seq_of(args: &[Value]) -> u64 {
    args[1]["seq"].as_u64().unwrap()
}

#[tokio::test]
async fn a_batch_arrives_in_order_with_consecutive_sequence_numbers_in_few_writes() {
    let running = bridge(BridgeConfig::default()).await;
    let mut ws = common::raw_client(running.addr).await;
    common::in_audience(&running.bridge, 1).await;
    let socket = running.bridge.io.sockets().pop().expect("the client is connected");
    let account = account(&socket).expect("every socket has an account");
    let writes_before = account.writes().expect("a WebSocket is metered");

    let mut batch: Vec<Value> = (1..=200).map(add_stock).collect();
    batch.insert(100, json!({"event": "sale_mode", "data": {"mode": "peak"}}));
    let (status, answer) = post(&running, &json!({ "events": batch })).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["message"], "Batch queued");
    assert_eq!(answer["queued"], 201);
    assert_eq!(answer["deliveries"], 201);
    assert_eq!((answer["first_seq"].as_u64(), answer["last_seq"].as_u64()), (Some(1), Some(200)));

    let got = events(&mut ws, 201).await;
    assert_eq!(got[100].0, "sale_mode");
    let stock: Vec<&Vec<Value>> = got.iter().filter(|(name, _)| name == "add_stock").map(|(_, a)| a).collect();
    assert_eq!(stock.iter().map(|a| product_of(a)).collect::<Vec<_>>(), (1..=200).collect::<Vec<_>>());
    assert_eq!(stock.iter().map(|a| seq_of(a)).collect::<Vec<_>>(), (1..=200).collect::<Vec<_>>());

    // Queued together, they leave together: one write per event would be 201 writes.
    let writes = account.writes().unwrap() - writes_before;
    eprintln!("{writes} writes carried 201 events");
    assert!(writes <= 201 / 4, "{writes} writes for 201 events: the burst was not coalesced");

    // The single-event body is unchanged and numbered after the batch.
    let (status, answer) = post(&running, &add_stock(7)).await;
    assert_eq!((status, answer["seq"].as_u64()), (200, Some(201)), "{answer}");
    assert_eq!(seq_of(&events(&mut ws, 1).await[0].1), 201);
}

#[tokio::test]
async fn one_bad_event_refuses_the_batch_and_nothing_is_sent_or_numbered() {
    let running = bridge(BridgeConfig::default()).await;
    let mut ws = common::raw_client(running.addr).await;
    common::in_audience(&running.bridge, 1).await;
    let bad = json!({"event": "add_stock", "data": {"product_id": 3}});
    let batch = json!({"events": [add_stock(1), add_stock(2), bad, {"event": "shutdown", "data": {}}]});
    let (status, answer) = post(&running, &batch).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["message"], "Invalid batch: 2 of 4 events are invalid; nothing was sent");
    let indexes: Vec<u64> = answer["items"].as_array().unwrap().iter().map(|i| i["index"].as_u64().unwrap()).collect();
    assert_eq!(indexes, [2, 3]);
    let errors: Vec<&str> = answer["errors"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    assert!(errors.iter().any(|e| e.starts_with("events[2]: ") && e.contains("in_stock")), "{errors:?}");
    assert!(errors.iter().any(|e| e.starts_with("events[3]: event \"shutdown\" is not relayed")), "{errors:?}");

    let (status, answer) = post(&running, &add_stock(9)).await;
    assert_eq!((status, answer["seq"].as_u64()), (200, Some(1)), "no sequence number was used: {answer}");
    let got = events(&mut ws, 1).await;
    assert_eq!(product_of(&got[0].1), 9, "nothing of the refused batch arrived");
    nothing_more(&mut ws).await;
}

#[tokio::test]
async fn the_limits_are_named() {
    let running = bridge(BridgeConfig { batch_max: 5, batch_body_limit: 4096, ..BridgeConfig::default() }).await;
    let (status, answer) = post(&running, &json!({"events": (1..=6).map(add_stock).collect::<Vec<_>>()})).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(
        answer["message"],
        "Payload too large: a batch holds at most 5 events (STOCK_BRIDGE_BATCH_MAX), got 6; nothing was sent"
    );
    let big = json!({"event": "sale_mode", "data": {"note": "x".repeat(1000)}});
    let (status, answer) =
        post(&running, &json!({"events": [big.clone(), big.clone(), big.clone(), big.clone(), big]})).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["message"], "Payload too large: the limit is 4096 bytes");
    let (status, answer) = post(&running, &json!({"events": []})).await;
    assert_eq!((status, answer["errors"][0].as_str()), (400, Some("events: the batch is empty")));
    let (status, answer) = post(&running, &json!({"events": (1..=5).map(add_stock).collect::<Vec<_>>()})).await;
    assert_eq!((status, answer["queued"].as_u64()), (200, Some(5)));
}

#[tokio::test]
async fn catch_up_after_a_batch_gives_each_product_once_at_its_latest() {
    let running = bridge(BridgeConfig::default()).await;
    let mut late = add_stock(1);
    late["data"]["in_stock"] = json!(0);
    let batch = json!({"events": [add_stock(1), add_stock(2), add_stock(3), late, add_stock(2)]});
    let (status, answer) = post(&running, &batch).await;
    assert_eq!(status, 200, "{answer}");
    let caught = running.bridge.catch_up(&CatchUpRequest::default(), 1 << 20).await.unwrap();
    let items: Vec<(u64, i64, i64)> = caught
        .items
        .iter()
        .map(|item| {
            let data: Value = serde_json::from_str(item.data.get()).unwrap();
            (item.seq, data["product_id"].as_i64().unwrap(), data["in_stock"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(items, [(3, 3, 10), (4, 1, 0), (5, 2, 10)]);
    assert_eq!(caught.seq, 5);
}

/// `stock-bridge send --file` against the bridge: its output and exit status.
async fn send_file(running: &TestBridge, lines: &str, batch_size: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("import.jsonl");
    std::fs::write(&path, lines).unwrap();
    let url = format!("http://{}/broadcast", running.addr);
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_stock-bridge"))
        .args(["send", "--url", &url, "--batch-size", batch_size, "--file"])
        .arg(&path)
        .env("STOCK_BRIDGE_API_KEY", KEY)
        .kill_on_drop(true)
        .output();
    let out = timeout(common::WAIT, run).await.expect("send --file did not finish").unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn send_file_posts_a_file_in_batches_and_names_the_lines_refused() {
    let running = bridge(BridgeConfig::default()).await;
    let mut ws = common::raw_client(running.addr).await;
    common::in_audience(&running.bridge, 1).await;
    let lines: String = (1..=5).map(|p| format!("{}\n", add_stock(p))).collect();
    let (ok, out, err) = send_file(&running, &lines, "2").await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("batch 1/3 (lines 1-2): 200 "), "{out}");
    assert!(out.contains("batch 3/3 (lines 5-5): 200 "), "{out}");
    assert!(out.trim_end().ends_with("in 3 batches"), "{out}");
    let got = events(&mut ws, 5).await;
    assert_eq!(got.iter().map(|(_, a)| seq_of(a)).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);

    // Line 4 (after a blank line) is wrong: the first batch goes, the second is refused whole.
    let bad = format!("{}\n{}\n\n{}\n{}\n", add_stock(6), add_stock(7), json!({"event": "add_stock"}), add_stock(8));
    let (ok, out, err) = send_file(&running, &bad, "2").await;
    assert!(!ok, "{out}");
    assert!(
        err.contains("batch 2 (lines 4-5) was refused with 400; 2 events were sent before it")
            && err.contains("line 4: data is missing"),
        "{err}"
    );
    let got = events(&mut ws, 2).await;
    assert_eq!(got.iter().map(|(_, a)| product_of(a)).collect::<Vec<_>>(), [6, 7]);
    nothing_more(&mut ws).await;

    let (ok, _, err) = send_file(&running, "{\"event\":\"sale_mode\",\"data\":{}}\nnot json\n", "2").await;
    assert!(!ok && err.contains("import.jsonl:2: not valid JSON"), "{err}");
    nothing_more(&mut ws).await;
}
