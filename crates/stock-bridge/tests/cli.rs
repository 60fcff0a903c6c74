//! The `stock-bridge` binary refuses what it must not run with, at start, with a message
//! naming what to fix (and never a secret).

use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Runs the binary with `args` and `env`, killed if it is still running after 20 s.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stock-bridge"))
        .args(args)
        .env_remove("STOCK_BRIDGE_JWT_SECRET")
        .env_remove("STOCK_BRIDGE_JWT_PUBLIC_KEY")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("stock-bridge {args:?} is still running: it should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn refused(out: &Output) -> String {
    assert!(!out.status.success(), "expected a refusal, got success");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_demo_refuses_a_non_loopback_address() {
    let err = refused(&run(&["demo", "--listen", "0.0.0.0:0", "--interval-ms", "0"], &[]));
    assert!(err.contains("--listen") && err.contains("this computer only"), "{err}");
}

#[test]
fn jwt_misconfiguration_names_the_variable_and_the_file() {
    let serve = ["serve", "--listen", "127.0.0.1:0", "--client-auth", "jwt"];
    let env = [("STOCK_BRIDGE_API_KEY", "0123456789abcdef-key")];
    let err = refused(&run(&serve, &env));
    assert!(err.contains("STOCK_BRIDGE_JWT_SECRET") && err.contains("STOCK_BRIDGE_JWT_PUBLIC_KEY"), "{err}");

    let both = [
        env[0],
        ("STOCK_BRIDGE_JWT_SECRET", "a-secret-long-enough-0123"),
        ("STOCK_BRIDGE_JWT_PUBLIC_KEY", "/nonexistent/key.pem"),
    ];
    let err = refused(&run(&serve, &both));
    assert!(err.contains("not both"), "{err}");
    assert!(!err.contains("a-secret-long-enough-0123"), "the secret is never printed: {err}");

    let missing = [env[0], ("STOCK_BRIDGE_JWT_PUBLIC_KEY", "/nonexistent/key.pem")];
    let err = refused(&run(&serve, &missing));
    assert!(err.contains("STOCK_BRIDGE_JWT_PUBLIC_KEY") && err.contains("/nonexistent/key.pem"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let not_a_key = dir.path().join("not-a-key.pem");
    std::fs::write(&not_a_key, "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n").unwrap();
    let garbage = [env[0], ("STOCK_BRIDGE_JWT_PUBLIC_KEY", not_a_key.to_str().unwrap())];
    let err = refused(&run(&serve, &garbage));
    assert!(err.contains("STOCK_BRIDGE_JWT_PUBLIC_KEY") && err.contains("not a PEM RSA or EC"), "{err}");

    let short = [env[0], ("STOCK_BRIDGE_JWT_SECRET", "short")];
    let err = refused(&run(&serve, &short));
    assert!(err.contains("STOCK_BRIDGE_JWT_SECRET") && err.contains("at least 16"), "{err}");
}

#[test]
fn tls_misconfiguration_names_the_variable_and_the_file() {
    use stock_testkit::{Leaf, Pki};
    let pki = Pki::new("CLI Test CA");
    let one = pki.issue("one", &Leaf::default());
    let two = pki.issue("two", &Leaf::default());
    let serve = ["serve", "--listen", "127.0.0.1:0"];
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();

    let err = refused(&run(&serve, &[("STOCK_BRIDGE_TLS_CERT", &path(&one.cert_file))]));
    assert!(err.contains("STOCK_BRIDGE_TLS_KEY") && err.contains("is required"), "{err}");

    let mismatched = [("STOCK_BRIDGE_TLS_CERT", path(&one.cert_file)), ("STOCK_BRIDGE_TLS_KEY", path(&two.key_file))];
    let env: Vec<(&str, &str)> = mismatched.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let err = refused(&run(&serve, &env));
    assert!(
        err.contains("is not the key of the certificate") && err.contains("two.key") && err.contains("one.pem"),
        "{err}"
    );

    let no_cert = pki.dir().join("empty.pem");
    std::fs::write(&no_cert, "nothing here\n").unwrap();
    let empty = [("STOCK_BRIDGE_TLS_CERT", path(&no_cert)), ("STOCK_BRIDGE_TLS_KEY", path(&one.key_file))];
    let env: Vec<(&str, &str)> = empty.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let err = refused(&run(&serve, &env));
    assert!(
        err.contains("STOCK_BRIDGE_TLS_CERT") && err.contains("empty.pem") && err.contains("no PEM certificate"),
        "{err}"
    );

    let missing =
        [("STOCK_BRIDGE_TLS_CERT", "/nonexistent/cert.pem".to_owned()), ("STOCK_BRIDGE_TLS_KEY", path(&one.key_file))];
    let env: Vec<(&str, &str)> = missing.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let err = refused(&run(&serve, &env));
    assert!(err.contains("STOCK_BRIDGE_TLS_CERT") && err.contains("/nonexistent/cert.pem"), "{err}");
}

#[test]
fn back_office_listener_misconfiguration_names_the_variable_and_the_file() {
    use stock_testkit::{Leaf, Pki};
    let pki = Pki::new("CLI Admin Test CA");
    let one = pki.issue("one", &Leaf::default());
    let two = pki.issue("two", &Leaf::default());
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let ca = path(&pki.ca_file);
    let serve = ["serve", "--listen", "127.0.0.1:0"];
    let admin = ("STOCK_BRIDGE_ADMIN_LISTEN", "127.0.0.1:0");

    // An admin setting without the admin listener.
    let err = refused(&run(&serve, &[("STOCK_BRIDGE_ADMIN_CLIENT_CA", &ca)]));
    assert!(err.contains("STOCK_BRIDGE_ADMIN_CLIENT_CA") && err.contains("needs STOCK_BRIDGE_ADMIN_LISTEN"), "{err}");

    // Mutual TLS asked without TLS.
    let err = refused(&run(&serve, &[admin, ("STOCK_BRIDGE_ADMIN_CLIENT_CA", &ca)]));
    assert!(err.contains("STOCK_BRIDGE_ADMIN_CLIENT_CA") && err.contains("mutual TLS needs TLS"), "{err}");

    // A CA file with no certificate.
    let empty = pki.dir().join("empty-ca.pem");
    std::fs::write(&empty, "nothing here\n").unwrap();
    let (cert, key) = (path(&one.cert_file), path(&one.key_file));
    let env = [
        admin,
        ("STOCK_BRIDGE_TLS_CERT", cert.as_str()),
        ("STOCK_BRIDGE_TLS_KEY", key.as_str()),
        ("STOCK_BRIDGE_ADMIN_CLIENT_CA", empty.to_str().unwrap()),
    ];
    let err = refused(&run(&serve, &env));
    assert!(
        err.contains("STOCK_BRIDGE_ADMIN_CLIENT_CA")
            && err.contains("empty-ca.pem")
            && err.contains("no PEM certificate"),
        "{err}"
    );

    // The back office's own pair, mismatched.
    let other_key = path(&two.key_file);
    let env =
        [admin, ("STOCK_BRIDGE_ADMIN_TLS_CERT", cert.as_str()), ("STOCK_BRIDGE_ADMIN_TLS_KEY", other_key.as_str())];
    let err = refused(&run(&serve, &env));
    assert!(err.contains("STOCK_BRIDGE_ADMIN_TLS_KEY") && err.contains("two.key") && err.contains("one.pem"), "{err}");

    // `mtls` without a client CA; names without a client CA.
    let err = refused(&run(&serve, &[admin, ("STOCK_BRIDGE_ADMIN_AUTH", "mtls")]));
    assert!(err.contains("STOCK_BRIDGE_ADMIN_AUTH") && err.contains("STOCK_BRIDGE_ADMIN_CLIENT_CA"), "{err}");
    let err = refused(&run(&serve, &[admin, ("STOCK_BRIDGE_ADMIN_CLIENT_NAMES", "laravel")]));
    assert!(err.contains("STOCK_BRIDGE_ADMIN_CLIENT_NAMES") && err.contains("STOCK_BRIDGE_ADMIN_CLIENT_CA"), "{err}");

    // Untrusted-proxy lists are checked like the allow-list.
    let err = refused(&run(&serve, &[("STOCK_BRIDGE_TRUSTED_PROXIES", "10.0.0.0/8,nginx")]));
    assert!(err.contains("nginx") && err.contains("not an IP address"), "{err}");
}

/// `serve` with `STOCK_BRIDGE_ADMIN_LISTEN` prints both addresses and serves the back
/// office on the second only.
#[tokio::test]
async fn serve_prints_and_serves_the_back_office_listener() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let key = "cli-admin-key-0123456789";
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stock-bridge"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("STOCK_BRIDGE_ADMIN_LISTEN", "127.0.0.1:0")
        .env("STOCK_BRIDGE_API_KEY", key)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let wait = Duration::from_secs(20);
    let mut next_line = async || tokio::time::timeout(wait, lines.next_line()).await.unwrap().unwrap().unwrap();
    let admin = next_line().await;
    let public = next_line().await;
    let url = |line: &str| line.rsplit(' ').next().unwrap().to_owned();
    assert!(admin.starts_with("stock-bridge back office listening on http://127.0.0.1:"), "{admin}");
    assert!(public.starts_with("stock-bridge listening on http://127.0.0.1:"), "{public}");
    let (admin, public) = (url(&admin), url(&public));
    let client = reqwest::Client::builder().timeout(wait).build().unwrap();
    let body = serde_json::json!({"event": "sale_mode", "data": {"mode": "normal"}});
    let post = |base: &str| client.post(format!("{base}/broadcast")).bearer_auth(key).json(&body).send();
    assert_eq!(post(&admin).await.unwrap().status(), 200);
    assert_eq!(post(&public).await.unwrap().status(), 404);
    assert_eq!(client.get(format!("{public}/healthz")).send().await.unwrap().status(), 200);
}
