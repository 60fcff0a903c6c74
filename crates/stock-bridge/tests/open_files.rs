//! A node's connection cap stays under its open-file limit.
//!
//! Found in the 51,000-till node-loss run: the two nodes left had the default cap of 20,000
//! and as many files each; once the files ran out `accept` failed, and the listener took
//! nothing more, `/metrics` included, while tills waited in the kernel's backlog until
//! their connect timed out. Here the bridge runs with 200 files: connections past the cap
//! it derives from that (200 - 128 kept back = 72) must be closed at once, so a till moves
//! on to its next address instead of hanging.

use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);
/// A bound on each read, not a speed: why the connections were closed is counted below
/// (the bridge's header timeout would close held ones too, but never as over capacity).
const CLOSED_WITHIN: Duration = Duration::from_secs(30);
const FILES: u64 = 200;
const CONNECTIONS: usize = 260;

#[tokio::test]
async fn connections_past_the_open_file_limit_are_closed_at_once_not_left_waiting() {
    // The child's limit, set by the shell before it becomes the bridge.
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {FILES} && exec \"$0\" serve --listen 127.0.0.1:0"))
        .arg(env!("CARGO_BIN_EXE_stock-bridge"))
        .env("STOCK_BRIDGE_API_KEY", "0123456789abcdef-key")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: std::net::SocketAddr = tokio::time::timeout(WAIT, async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            if let Some(addr) = line.rsplit("http://").next().filter(|_| line.contains("listening on")) {
                return addr.trim().trim_end_matches('/').parse().unwrap();
            }
        }
        panic!("the bridge ended before it listened");
    })
    .await
    .expect("the bridge listens");
    let mut held = Vec::new();
    for _ in 0..CONNECTIONS {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // Every connection past the cap is closed by the bridge within the wait (before: the
    // ones past the file limit were never accepted, and read nothing until they gave up).
    let mut closed = 0;
    for tcp in held.iter_mut().skip(100) {
        let mut byte = [0u8; 1];
        match tokio::time::timeout(CLOSED_WITHIN, tcp.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
            Ok(Ok(_)) => panic!("the bridge sent something on an idle connection"),
            Err(_) => panic!("a connection past the cap was left waiting ({closed} were closed before it)"),
        }
    }
    assert_eq!(closed, CONNECTIONS - 100);
    drop(held);

    // It says why it holds fewer than configured.
    let warned = tokio::time::timeout(WAIT, async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if line.contains("STOCK_BRIDGE_MAX_CONNECTIONS") {
                return line;
            }
        }
        String::new()
    })
    .await
    .expect("a warning about the cap");
    assert!(warned.contains(&format!("may open {FILES} files")) && warned.contains("at most 72"), "{warned}");

    // Once the places are free, it answers, and shows the cap in force.
    let page = tokio::time::timeout(WAIT, async {
        loop {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
            let mut page = String::new();
            let _ = tcp.read_to_string(&mut page).await;
            if page.starts_with("HTTP/1.1 200") {
                return page;
            }
            // Its places are given back as the closed connections' tasks end.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("/metrics is answered once connections are gone");
    assert!(page.contains("stock_bridge_max_connections 72"), "{page}");
    let refused = page
        .lines()
        .find_map(|l| l.strip_prefix("stock_bridge_connections_over_capacity_total "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or(0);
    assert!(refused >= (CONNECTIONS - 72) as u64, "over capacity: {refused}\n{page}");
}
