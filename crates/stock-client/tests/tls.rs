//! HTTPS and WSS end to end: the bridge serving TLS itself (rustls) with a certificate
//! from a private CA made here (rcgen), and the client core, the login and `stock-watch`
//! trusting that CA only when told to. Certificate failures are named, never "could not
//! be reached".

mod common;

use common::*;
use std::sync::Arc;
use stock_bridge::config::BridgeConfig;
use stock_bridge::tls::{ServedCert, TlsFiles};
use stock_client::trust::{CertProblem, untrusted_text};
use stock_client::{ClientEvent, LoginError, LoginTarget, SocketTarget, Trust, connect, login};
use stock_protocol::ConnectionState::{Connected, Offline};
use stock_testkit::{Issued, Leaf, Pki, hours_ago};
use tokio::io::{AsyncBufReadExt, BufReader};

fn served(issued: &Issued) -> Arc<ServedCert> {
    ServedCert::load(TlsFiles::public(issued.cert_file.clone(), issued.key_file.clone())).unwrap()
}

async fn tls_bridge(issued: &Issued) -> TestBridge {
    bridge(BridgeConfig { tls: Some(served(issued)), ..BridgeConfig::default() }).await
}

/// The demo (login and bridge) over TLS, in this process; its https URL is `localhost`
/// and its port.
async fn tls_demo(issued: &Issued) -> TestBridge {
    let config = stock_bridge::demo::config("127.0.0.1:0".parse().unwrap(), stock_bridge::demo::DEMO_API_KEY).unwrap();
    let routes = stock_bridge::demo::routes(stock_bridge::demo::DEFAULT_TOKEN_TTL);
    TestBridge::start_with(BridgeConfig { tls: Some(served(issued)), ..config }, routes).await
}

fn trusting(pki: &Pki) -> Trust {
    Trust::with_ca_file(&pki.ca_file).unwrap()
}

/// Posts over https, trusting `pki`'s CA.
async fn post_tls(url: &str, pki: &Pki, body: &serde_json::Value) {
    let res = trusting(pki)
        .http_client()
        .timeout(WAIT)
        .build()
        .unwrap()
        .post(format!("{url}/broadcast"))
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
        .expect("post over https");
    assert!(res.status().is_success(), "{}", res.status());
}

#[tokio::test]
async fn with_the_private_ca_the_client_core_connects_over_wss_and_receives() {
    let pki = Pki::new("Stock Test CA");
    let bridge = tls_bridge(&pki.issue("server", &Leaf::default())).await;
    let url = format!("https://localhost:{}", bridge.addr.port());
    let target = SocketTarget { trust: trusting(&pki), ..SocketTarget::new(url.clone(), None) };
    let (client, mut events) = connect(target, fast());
    state(&mut events, Connected).await;
    post_tls(&url, &pki, &add_stock(5486, 7)).await;
    match data(&mut events).await {
        ClientEvent::Stock { snapshot, .. } => assert_eq!((snapshot.product_id, snapshot.in_stock), (5486, 7)),
        other => panic!("expected add_stock, got {other:?}"),
    }
    client.stop().await;
    bridge.stop().await;
}

/// Waits for the client to go offline with `reason`.
async fn offline_because(target: SocketTarget, reason: &str) {
    let (client, mut events) = connect(target, fast());
    let offline = state(&mut events, Offline).await;
    assert_eq!(offline.reason.as_deref(), Some(reason));
    client.stop().await;
}

#[tokio::test]
async fn certificate_failures_are_named_unknown_issuer_expired_and_wrong_name() {
    let pki = Pki::new("Stock Test CA");
    // Unknown issuer: the CA is not given.
    let bridge = tls_bridge(&pki.issue("server", &Leaf::default())).await;
    let url = format!("https://localhost:{}", bridge.addr.port());
    offline_because(SocketTarget::new(url, None), &untrusted_text("localhost", CertProblem::UnknownIssuer)).await;
    bridge.stop().await;

    // Expired.
    let expired = Leaf { not_before: hours_ago(48), not_after: hours_ago(24), ..Leaf::default() };
    let bridge = tls_bridge(&pki.issue("expired", &expired)).await;
    let url = format!("https://localhost:{}", bridge.addr.port());
    let target = SocketTarget { trust: trusting(&pki), ..SocketTarget::new(url, None) };
    offline_because(target, &untrusted_text("localhost", CertProblem::Expired)).await;
    bridge.stop().await;

    // For another name.
    let other = Leaf { names: &["socket.example.com"], ..Leaf::default() };
    let bridge = tls_bridge(&pki.issue("other", &other)).await;
    let url = format!("https://localhost:{}", bridge.addr.port());
    let target = SocketTarget { trust: trusting(&pki), ..SocketTarget::new(url, None) };
    offline_because(target, &untrusted_text("localhost", CertProblem::WrongHost)).await;
    bridge.stop().await;
}

#[tokio::test]
async fn login_over_https_trusts_the_ca_file_and_names_an_untrusted_certificate() {
    let pki = Pki::new("Stock Test CA");
    let server = tls_demo(&pki.issue("server", &Leaf::default())).await;
    let url = format!("https://localhost:{}", server.addr.port());
    let (email, password) = (stock_bridge::demo::DEMO_EMAIL, stock_bridge::demo::DEMO_PASSWORD);
    let trusted = LoginTarget { trust: trusting(&pki), ..LoginTarget::new(url.clone()) };
    let session = login(&trusted, email, password).await.expect("login over https with the CA");
    assert!(session.user.is_some());
    let err = login(&LoginTarget::new(url), email, password).await.unwrap_err();
    assert_eq!(
        err,
        LoginError::UntrustedCertificate { text: untrusted_text("localhost", CertProblem::UnknownIssuer) },
        "not \"could not be reached\""
    );
    assert_eq!(err.kind(), "untrusted_certificate");
    server.stop().await;
}

#[tokio::test]
async fn stock_watch_trusts_a_ca_file_and_otherwise_names_the_problem() {
    let pki = Pki::new("Stock Test CA");
    let server = tls_demo(&pki.issue("server", &Leaf::default())).await;
    let url = format!("https://localhost:{}", server.addr.port());
    let watch = |ca: Option<&std::path::Path>| {
        let mut cmd = tokio::process::Command::new(bin("stock-watch"));
        cmd.args(["--api", &url, "--socket", &url, "--email", stock_bridge::demo::DEMO_EMAIL])
            .args(["--password", stock_bridge::demo::DEMO_PASSWORD])
            .env_remove("STOCK_CA_FILE")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(ca) = ca {
            cmd.arg("--ca-file").arg(ca);
        }
        cmd.spawn().expect("stock-watch")
    };
    // Without the CA: the login fails, naming the certificate problem.
    let out = tokio::time::timeout(WAIT, watch(None).wait_with_output()).await.expect("exits").unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&untrusted_text("localhost", CertProblem::UnknownIssuer)), "{stderr}");
    // With it: logged in and connected.
    let mut child = watch(Some(&pki.ca_file));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("socket connected") {
                return;
            }
        }
        panic!("stock-watch ended before connecting");
    })
    .await
    .expect("socket connected over wss");
    let _ = child.kill().await;
    // A CA file that is not one is refused as a bad argument, naming the file.
    let not_pem = pki.dir().join("not-a-ca.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let out = tokio::time::timeout(WAIT, watch(Some(&not_pem)).wait_with_output()).await.expect("exits").unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not-a-ca.pem"));
    server.stop().await;
}
