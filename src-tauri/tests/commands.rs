//! The app's commands through Tauri's mock runtime (`tauri::test::mock_builder`), against
//! a real `stock-bridge demo` served in process on 127.0.0.1:0.

use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stock_dashboard::credentials::{CredentialStore, MemoryCredentials};
use stock_dashboard::settings::{MemoryVault, SESSION_KEY, Settings, Vault};
use stock_dashboard::state::AppState;
use stock_testkit::TestBridge;
use tauri::Manager;
use tauri::test::{INVOKE_KEY, get_ipc_response, mock_builder};
use tauri::webview::InvokeRequest;

const WAIT: Duration = Duration::from_secs(15);

/// A demo bridge in this process ([`TestBridge::demo`]), serving until dropped.
fn demo_bridge() -> TestBridge {
    tauri::async_runtime::block_on(TestBridge::demo(stock_bridge::demo::DEFAULT_TOKEN_TTL))
}

/// A demo bridge that also posts synthetic updates every `every` (both stopped on drop).
fn demo_bridge_with_feed(every: Duration) -> (TestBridge, stock_bridge::demo::Feed) {
    tauri::async_runtime::block_on(async {
        let bridge = TestBridge::demo(stock_bridge::demo::DEFAULT_TOKEN_TTL).await;
        let feed = stock_bridge::demo::start_feed(bridge.bridge.clone(), every);
        (bridge, feed)
    })
}

struct TestApp {
    _app: tauri::App<tauri::test::MockRuntime>,
    webview: tauri::WebviewWindow<tauri::test::MockRuntime>,
    state: Arc<AppState>,
    vault: Arc<MemoryVault>,
    credentials: Arc<dyn CredentialStore>,
}

fn app_with(vault: Arc<MemoryVault>, url: &str) -> TestApp {
    app_with_credentials(vault, Arc::new(MemoryCredentials::default()), url)
}

fn app_with_credentials(vault: Arc<MemoryVault>, credentials: Arc<dyn CredentialStore>, url: &str) -> TestApp {
    let settings = Settings {
        api_base_url: url.into(),
        socket_url: url.into(),
        ca_file: None,
        allow_unencrypted: false,
        close_to_tray: true,
        notifications: true,
        till_name: String::new(),
        update_url: String::new(),
    };
    vault.save("settings", Some(serde_json::to_value(&settings).unwrap())).unwrap();
    let state = Arc::new(AppState::load(vault.clone(), credentials.clone()));
    let app = mock_builder()
        .invoke_handler(stock_dashboard::handler())
        .build(tauri::generate_context!(test = true))
        .expect("mock app");
    app.manage(state.clone());
    stock_dashboard::resume(state.clone());
    let webview = tauri::WebviewWindowBuilder::new(&app, "main", Default::default()).build().unwrap();
    TestApp { _app: app, webview, state, vault, credentials }
}

fn call(app: &TestApp, cmd: &str, args: Value) -> Result<Value, Value> {
    get_ipc_response(
        &app.webview,
        InvokeRequest {
            cmd: cmd.into(),
            callback: tauri::ipc::CallbackFn(0),
            error: tauri::ipc::CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: tauri::ipc::InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|b| b.deserialize::<Value>().unwrap())
}

fn wait_for_state(app: &TestApp, want: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let view = call(app, "dashboard", json!({})).unwrap();
        if view["state"]["state"] == want {
            return view;
        }
        assert!(Instant::now() < deadline, "never reached {want}: {view}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn login_starts_the_feed_remembers_the_session_and_logout_forgets_it() {
    let bridge = demo_bridge();
    let url = bridge.url();
    let app = app_with(Arc::new(MemoryVault::default()), &url);
    assert_eq!(call(&app, "current_session", json!({})).unwrap()["logged_in"], false);

    let session =
        call(&app, "login", json!({"email": "demo@mediboy.local", "password": "demo1234", "remember": true})).unwrap();
    assert_eq!(session["logged_in"], true);
    assert_eq!(session["user"]["id"], "1");
    assert!(session.get("token").is_none() && !session.to_string().contains("eyJ"), "the page never sees the token");
    assert_eq!(app.vault.load(SESSION_KEY).expect("remembered")["user"]["id"], "1", "the vault keeps who");
    let token =
        app.credentials.load().unwrap().expect("the credential store keeps the token").expose_secret().to_owned();
    assert!(!app.vault.contents().contains(&token), "no token in the store file");

    wait_for_state(&app, "socket connected");
    let diagnostics = call(&app, "diagnostics", json!({})).unwrap();
    assert_eq!(diagnostics["socket_url"], url);
    assert!(!diagnostics.to_string().contains(&token), "no secrets in diagnostics");

    call(&app, "logout", json!({})).unwrap();
    let view = wait_for_state(&app, "socket offline");
    assert_eq!(view["state"]["reason"], "logged out");
    assert!(app.vault.load(SESSION_KEY).is_none());
    assert!(app.credentials.load().unwrap().is_none(), "logging out deletes the credential");
    assert_eq!(call(&app, "current_session", json!({})).unwrap()["logged_in"], false);
}

#[test]
fn without_a_credential_store_remember_me_is_unavailable_and_nothing_is_kept_in_clear() {
    let bridge = demo_bridge();
    let url = bridge.url();
    let vault = Arc::new(MemoryVault::default());
    let credentials = Arc::new(MemoryCredentials::unavailable("no Secret Service on this desktop"));
    let app = app_with_credentials(vault.clone(), credentials.clone(), &url);
    let view = call(&app, "current_session", json!({})).unwrap();
    assert_eq!(view["remember"]["available"], false);
    assert!(view["remember"]["reason"].as_str().unwrap().contains("no Secret Service"), "{view}");
    let err = call(&app, "login", json!({"email": "demo@mediboy.local", "password": "demo1234", "remember": true}))
        .unwrap_err();
    assert_eq!(err["kind"], "remember_unavailable", "{err}");
    assert!(app.state.session().is_none(), "a refused login changes nothing");
    call(&app, "login", json!({"email": "demo@mediboy.local", "password": "demo1234", "remember": false})).unwrap();
    assert!(app.state.session().is_some());
    assert!(vault.load(SESSION_KEY).is_none() && !vault.contents().contains("eyJ"), "no token, no user kept");
}

#[test]
fn a_login_without_remember_me_is_not_kept() {
    let bridge = demo_bridge();
    let url = bridge.url();
    let app = app_with(Arc::new(MemoryVault::default()), &url);
    call(&app, "login", json!({"email": "demo@mediboy.local", "password": "demo1234", "remember": false})).unwrap();
    assert!(app.vault.load(SESSION_KEY).is_none());
    assert!(app.state.session().is_some(), "still logged in for this run");
}

#[test]
fn errors_have_a_kind_the_page_can_match() {
    let bridge = demo_bridge();
    let url = bridge.url();
    let app = app_with(Arc::new(MemoryVault::default()), &url);
    let err =
        call(&app, "login", json!({"email": "demo@mediboy.local", "password": "nope", "remember": true})).unwrap_err();
    assert_eq!(err["kind"], "wrong_credentials");
    assert!(!err.to_string().contains("nope"));
    let err =
        call(&app, "save_settings", json!({"settings": {"api_base_url": "ftp://x", "socket_url": url}})).unwrap_err();
    assert_eq!(err["kind"], "invalid_settings");
    assert_eq!(call(&app, "get_settings", json!({})).unwrap()["api_base_url"], url, "a refused change changes nothing");
    let unreachable = "http://127.0.0.1:9";
    call(&app, "save_settings", json!({"settings": {"api_base_url": unreachable, "socket_url": url}})).unwrap();
    let err = call(&app, "login", json!({"email": "a@b.c", "password": "pw", "remember": false})).unwrap_err();
    assert_eq!(err["kind"], "unreachable");
}

#[test]
fn a_remembered_session_skips_the_login_screen() {
    let bridge = demo_bridge();
    let url = bridge.url();
    let first = app_with(Arc::new(MemoryVault::default()), &url);
    call(&first, "login", json!({"email": "demo@mediboy.local", "password": "demo1234", "remember": true})).unwrap();
    let (vault, credentials) = (first.vault.clone(), first.credentials.clone());
    drop(first);

    let second = app_with_credentials(vault, credentials, &url);
    assert_eq!(call(&second, "current_session", json!({})).unwrap()["logged_in"], true);
    wait_for_state(&second, "socket connected");
}

#[test]
fn the_page_pulls_live_updates_and_a_reloaded_page_supersedes_the_old_one() {
    let (bridge, _feed) = demo_bridge_with_feed(Duration::from_millis(20));
    let url = bridge.url();
    let app = app_with(Arc::new(MemoryVault::default()), &url);
    let old = call(&app, "subscribe", json!({})).unwrap();
    let page = call(&app, "subscribe", json!({})).unwrap();
    assert_ne!(old, page, "each page gets its own generation");
    let err = call(&app, "next_updates", json!({"generation": old})).unwrap_err();
    assert_eq!(err["kind"], "superseded", "{err}");
    let err = call(&app, "next_updates", json!({"generation": "latest"})).unwrap_err();
    assert!(err.to_string().contains("generation"), "a bad argument is named: {err}");

    call(&app, "login", json!({"email": "demo@mediboy.local", "password": "demo1234", "remember": false})).unwrap();
    // The demo feed's add_stock snapshots reach the page through the bridge, the socket and
    // the outlet, after the state words.
    let (mut connected, mut stock) = (false, None);
    let deadline = Instant::now() + WAIT;
    while stock.is_none() {
        assert!(Instant::now() < deadline, "no stock update pulled (connected: {connected})");
        let batch = call(&app, "next_updates", json!({"generation": page})).unwrap();
        assert_eq!(batch["resync"], false);
        for update in batch["updates"].as_array().unwrap() {
            match update["type"].as_str() {
                Some("state") if update["state"] == "socket connected" => connected = true,
                Some("stock") => stock = Some(update.clone()),
                _ => {}
            }
        }
    }
    assert!(connected, "the state came before the first snapshot");
    let stock = stock.unwrap();
    assert!(stock["product_id"].is_i64() && stock["in_stock"].is_i64(), "{stock}");
    let view = call(&app, "dashboard", json!({})).unwrap();
    assert!(view["products"].as_array().unwrap().iter().any(|p| p["product_id"] == stock["product_id"]));
}

// ---- the operating system's credential store, for real -------------------------------
// Run by scripts/keyring-test.sh: under `dbus-run-session` with `gnome-keyring-daemon
// --unlock` for the `secret_service` tests, and with no session bus for the other. A plain
// `cargo test` has no Secret Service, so they are ignored there (and never pass vacuously:
// each one fails when its store does not behave).

mod os_store {
    use super::*;
    use stock_dashboard::credentials::{CredentialError, OsCredentials};

    /// What `secret-tool` (libsecret, not our code) finds under the entry's attributes.
    fn secret_tool_lookup(service: &str) -> Option<String> {
        let out = std::process::Command::new("secret-tool")
            .args(["lookup", "service", service, "username", "session"])
            .output()
            .expect("secret-tool (Debian package libsecret-tools) must be installed");
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    #[test]
    #[ignore = "needs a Secret Service: scripts/keyring-test.sh"]
    fn secret_service_remember_me_survives_a_restart_and_logout_removes_the_token() {
        let service = "stock-dashboard-test";
        let credentials: Arc<dyn CredentialStore> = Arc::new(OsCredentials::new(service));
        credentials.delete().expect("the Secret Service answers");
        let bridge = demo_bridge();
        let url = bridge.url();
        let vault = Arc::new(MemoryVault::default());

        let start = |vault: Arc<MemoryVault>| app_with_credentials(vault, credentials.clone(), &url);

        let first = start(vault.clone());
        assert_eq!(call(&first, "current_session", json!({})).unwrap()["remember"]["available"], true);
        call(&first, "login", json!({"email": "demo@mediboy.local", "password": "demo1234", "remember": true}))
            .unwrap();
        let token = secret_tool_lookup(service).expect("the token is in the Secret Service");
        assert!(token.starts_with("eyJ"), "a JWT: {}…", &token[..token.len().min(3)]);
        assert!(!vault.contents().contains(&token), "the store file has no trace of the token");
        drop(first);

        let second = start(vault.clone());
        assert_eq!(
            call(&second, "current_session", json!({})).unwrap()["logged_in"],
            true,
            "remembered across a restart"
        );
        wait_for_state(&second, "socket connected");
        call(&second, "logout", json!({})).unwrap();
        assert_eq!(secret_tool_lookup(service), None, "logging out removes the credential");
        assert!(matches!(credentials.load(), Ok(None)));
    }

    #[test]
    #[ignore = "needs no session bus: scripts/keyring-test.sh"]
    fn no_secret_service_makes_the_os_store_unavailable() {
        let err = OsCredentials::new("stock-dashboard-test").check().unwrap_err();
        assert!(matches!(err, CredentialError::Unavailable(_)), "{err:?}");
        let vault = Arc::new(MemoryVault::default());
        let state = AppState::load(vault, Arc::new(OsCredentials::new("stock-dashboard-test")));
        assert!(state.remember_check().is_err(), "\"remember me\" is reported unavailable");
    }
}

#[test]
fn moving_the_socket_address_while_logged_in_restarts_the_feed_there() {
    let (first_bridge, second_bridge) = (demo_bridge(), demo_bridge());
    let (first, second) = (first_bridge.url(), second_bridge.url());
    let app = app_with(Arc::new(MemoryVault::default()), &first);
    call(&app, "login", json!({"email": "demo@mediboy.local", "password": "demo1234", "remember": false})).unwrap();
    wait_for_state(&app, "socket connected");
    // save_settings stops the running feed and starts one on the new address. The call
    // blocks this thread, so a watchdog bounds it: no answer within WAIT ends the process.
    let (answered, watch) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if watch.recv_timeout(WAIT).is_err() {
            eprintln!("save_settings did not answer within {WAIT:?}");
            std::process::exit(101);
        }
    });
    let settings =
        json!({"settings": {"api_base_url": first, "socket_url": second, "ca_file": null, "allow_unencrypted": false}});
    let saved = call(&app, "save_settings", settings);
    let _ = answered.send(());
    assert_eq!(saved.unwrap()["socket_url"], second);
    let view = wait_for_state(&app, "socket connected");
    let diagnostics = call(&app, "diagnostics", json!({})).unwrap();
    assert_eq!(diagnostics["socket_url"], second, "{view}");
}
