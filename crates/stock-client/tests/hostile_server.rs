//! The client core against a small hostile Engine.IO server written here (long-polling,
//! raw HTTP/1.1 on loopback): what a broken or malicious server does must not make the
//! till lie (issue 22).
//! - F5: a poll answer sent in many small chunks is one payload (rust_engineio 0.6 parsed
//!   each chunk as a whole payload: any answer over about 8 KB broke the connection).
//! - F8: a server announcing a ping interval of 2^31 ms and then going silent is called
//!   offline within the 30 s bound, whatever it announced.

mod common;

use common::WAIT;
use std::time::Duration;
use stock_client::link::Transport;
use stock_client::{ClientEvent, SocketTarget};
use stock_protocol::ConnectionState;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What the server does after the Socket.IO CONNECT.
#[derive(Clone, Copy)]
enum Then {
    /// One poll answer of `events` add_stock packets, written 512 bytes at a time; then silence.
    ChunkedBurst { events: usize },
    /// Nothing, ever.
    Silence,
}

/// Serves Engine.IO long-polling on 127.0.0.1:0 with `ping_interval` announced.
async fn hostile(ping_interval: u64, then: Then) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let polls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve(tcp, ping_interval, then, polls.clone()));
        }
    });
    format!("http://{addr}")
}

async fn serve(tcp: TcpStream, ping_interval: u64, then: Then, polls: std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let mut tcp = BufReader::new(tcp);
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if tcp.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let length = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
            .unwrap_or(0usize);
        let mut body = vec![0; length];
        tcp.read_exact(&mut body).await.unwrap();
        let post = head.starts_with("POST");
        let handshake = !head.contains("sid=");
        let answer = if handshake {
            format!(
                r#"0{{"sid":"hostile","upgrades":[],"pingInterval":{ping_interval},"pingTimeout":{ping_interval},"maxPayload":1000000}}"#
            )
        } else if post {
            "ok".to_owned()
        } else {
            let n = polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            match (n, then) {
                (0, _) => r#"40{"sid":"s"}"#.to_owned(),
                (1, Then::ChunkedBurst { events }) => {
                    let packets: Vec<String> = (0..events)
                        .map(|p| {
                            format!(
                                r#"42["add_stock",{{"product_id":{p},"in_stock":1,"discount_price":1,"peak_hour_price":1,"mediboy_offer_price":1,"sync_at":"2024-01-01T00:00:00Z"}}]"#
                            )
                        })
                        .collect();
                    let body = packets.join("\u{1e}");
                    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";
                    if tcp.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    for chunk in body.as_bytes().chunks(512) {
                        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
                        if tcp.write_all(&framed).await.is_err() {
                            return;
                        }
                        tcp.flush().await.ok();
                        tokio::task::yield_now().await;
                    }
                    let _ = tcp.write_all(b"0\r\n\r\n").await;
                    continue;
                }
                // Silence: the poll is held open and never answered.
                _ => return std::future::pending().await,
            }
        };
        let response =
            format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{answer}", answer.len());
        if tcp.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn polling(url: String) -> SocketTarget {
    let mut target = SocketTarget::new(url, None);
    target.transport = Transport::Polling;
    target
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_answer_in_many_chunks_is_read_as_one_payload() {
    const EVENTS: usize = 500; // about 70 KB, sent 512 bytes at a time
    let url = hostile(10_000, Then::ChunkedBurst { events: EVENTS }).await;
    let (client, mut events) = stock_client::connect(polling(url), common::fast());
    let mut shown = std::collections::HashSet::new();
    let outcome = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.recv().await {
            match event {
                ClientEvent::Stock { snapshot, .. } => {
                    shown.insert(snapshot.product_id);
                    if shown.len() == EVENTS {
                        return Ok(());
                    }
                }
                ClientEvent::State(s) if s.state == ConnectionState::Offline => return Err(s.reason),
                _ => {}
            }
        }
        Err(None)
    })
    .await;
    assert_eq!(outcome, Ok(Ok(())), "{} of {EVENTS} shown", shown.len());
    client.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_announcing_an_endless_ping_interval_then_going_silent_is_offline_within_30_s() {
    let url = hostile(1 << 31, Then::Silence).await;
    let (client, mut events) = stock_client::connect(polling(url), common::fast());
    common::state(&mut events, ConnectionState::Connected).await;
    let connected_at = tokio::time::Instant::now();
    // Bounded: the promise is 30 s of silence; the test allows for a loaded machine.
    let offline = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match events.recv().await.expect("client ended") {
                ClientEvent::State(s) if s.state == ConnectionState::Offline => return s,
                _ => {}
            }
        }
    })
    .await
    .expect("still \"socket connected\" 60 s into a silent connection");
    // Not a timing assertion on the machine's speed: the bound comes from the clamp, and
    // the server's announced 2^31 ms would have been 24 days.
    assert!(connected_at.elapsed() >= Duration::from_secs(29), "gone before the server fell silent for long");
    assert!(offline.reason.is_some(), "offline says why");
    client.stop().await;
}
