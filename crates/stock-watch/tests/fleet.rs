//! `stock-watch` as a till of the fleet, and `stock-watch fleet` reading it, against the
//! embedded demo bridge served in this process.

use serde_json::Value;
use std::process::Stdio;
use stock_bridge::demo::{DEFAULT_TOKEN_TTL, DEMO_EMAIL, DEMO_PASSWORD, DEMO_SUPPORT_KEY};
use stock_testkit::{TestBridge, WAIT, eventually};
use tokio::io::AsyncBufReadExt;

const WATCH: &str = env!("CARGO_BIN_EXE_stock-watch");

/// `stock-watch fleet` with `args`: exit code, stdout, stderr.
async fn fleet(url: &str, args: &[&str]) -> (i32, String, String) {
    let out = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(WATCH)
            .args(["fleet", "--url", url])
            .args(args)
            .env_remove("STOCK_BRIDGE_SUPPORT_KEY")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("stock-watch fleet ended in time")
    .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn a_terminal_is_a_till_and_fleet_lists_it_alerts_on_it_and_never_prints_the_key() {
    let bridge = TestBridge::demo(DEFAULT_TOKEN_TTL).await;
    let url = bridge.url();
    let mut till = tokio::process::Command::new(WATCH)
        .args(["--api", &url, "--socket", &url, "--email", DEMO_EMAIL, "--password", DEMO_PASSWORD])
        .args(["--name", "Support desk <b>1</b>", "--till-id", "desk-1"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(till.stdout.take().unwrap()).lines();
    tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("socket connected") {
                return;
            }
        }
    })
    .await
    .expect("stock-watch connected");
    let key = ["--support-key", DEMO_SUPPORT_KEY];
    let listed = std::sync::Mutex::new(Value::Null);
    eventually("desk-1 listed online", WAIT, || async {
        let (code, out, _) = fleet(&url, &[&key[..], &["--json"]].concat()).await;
        let fleet: Value = serde_json::from_str(&out).unwrap_or_default();
        let online = code == 0
            && fleet["tills"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["key"] == "desk-1" && t["status"] == "online"));
        *listed.lock().unwrap() = fleet;
        online
    })
    .await;
    let fleet_json = listed.into_inner().unwrap();
    let desk = fleet_json["tills"].as_array().unwrap().iter().find(|t| t["key"] == "desk-1").unwrap().clone();
    assert_eq!(desk["identity"]["app"], "terminal");
    assert_eq!(desk["identity"]["name"], "Support desk <b>1</b>", "kept as typed");
    // The table, readable.
    let (code, table, _) = fleet(&url, &key).await;
    assert_eq!(code, 0);
    assert!(table.contains("1 tills: 1 online"), "{table}");
    assert!(table.contains("Support desk <b>1</b>") && table.contains("desk-1"), "{table}");
    assert!(!table.contains(DEMO_SUPPORT_KEY), "the key is never printed");
    // The till goes: after a moment offline, --alert-after says so with exit status 1.
    till.kill().await.unwrap();
    eventually("desk-1 offline", WAIT, || async {
        let (_, out, _) = fleet(&url, &[&key[..], &["--json", "--state", "offline"]].concat()).await;
        serde_json::from_str::<Value>(&out).is_ok_and(|f| f["matching"] == 1)
            || serde_json::from_str::<Value>(&out).is_ok_and(|f| {
                f["tills"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t["key"] == "desk-1" && t["status"] == "offline"))
            })
    })
    .await;
    // Once it has been offline for over a second, --alert-after 1s exits 1 and marks it.
    eventually("an alert once desk-1 is offline for over a second", WAIT, || async {
        let (code, table, _) = fleet(&url, &[&key[..], &["--alert-after", "1s"]].concat()).await;
        code == 1 && table.contains("<< ALERT")
    })
    .await;
    let (code, _, _) = fleet(&url, &[&key[..], &["--alert-after", "1h"]].concat()).await;
    assert_eq!(code, 0, "not offline for an hour");
    // A wrong key, or an unreachable bridge: exit 2, said, and the key not repeated.
    let (code, _, err) = fleet(&url, &["--support-key", "not-the-support-key"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("401") && !err.contains("not-the-support-key"), "{err}");
    let (code, _, err) = fleet("http://127.0.0.1:9", &key).await;
    assert_eq!(code, 2);
    assert!(err.contains("could not reach"), "{err}");
}
