//! The supervisor's state machine on tokio's paused clock, with a scripted connector
//! standing in for the network (backoff, timeouts and watchdogs are about time, not I/O).

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stock_client::link::{Connector, Link, LinkSignal};
use stock_client::supervisor::{ClientConfig, ClientEvent, LiveClient};
use stock_protocol::{CatchUpRequest, ConnectionState};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What one connection attempt does.
#[derive(Clone)]
enum Attempt {
    Fail(&'static str),
    Refuse(&'static str),
    Hang,
    /// Opens; answers probes if `pongs`.
    Open {
        pongs: bool,
    },
}

#[derive(Default)]
struct Script {
    attempts: VecDeque<Attempt>,
    /// When each attempt started.
    started: Vec<Instant>,
    /// The signal sender of the latest attempt, for the test to inject into.
    current: Option<mpsc::UnboundedSender<LinkSignal>>,
    catch_up_requests: Vec<CatchUpRequest>,
    live_links: usize,
    /// Probes go unanswered (a silent network cut).
    silent: bool,
}

#[derive(Clone, Default)]
struct Scripted(Arc<Mutex<Script>>);

struct FakeLink {
    script: Scripted,
    signals: mpsc::UnboundedSender<LinkSignal>,
    pongs: bool,
}

impl Link for FakeLink {
    fn probe(&self) {
        if self.pongs && !self.script.0.lock().unwrap().silent {
            let _ = self.signals.send(LinkSignal::Pong { server_now_ms: None });
        }
    }
    fn request_catch_up(&self, req: CatchUpRequest) {
        self.script.0.lock().unwrap().catch_up_requests.push(req);
    }
}

impl Drop for FakeLink {
    fn drop(&mut self) {
        self.script.0.lock().unwrap().live_links -= 1;
    }
}

impl Connector for Scripted {
    fn connect(&self, signals: mpsc::UnboundedSender<LinkSignal>) -> Box<dyn Link> {
        let mut s = self.0.lock().unwrap();
        s.started.push(Instant::now());
        s.live_links += 1;
        s.current = Some(signals.clone());
        let attempt = s.attempts.pop_front().unwrap_or(Attempt::Fail("connection refused"));
        let pongs = matches!(attempt, Attempt::Open { pongs: true });
        match attempt {
            Attempt::Fail(why) => signals.send(LinkSignal::Failed(why.into())).unwrap(),
            Attempt::Refuse(why) => signals.send(LinkSignal::Refused(stock_protocol::Refused::from_data(why))).unwrap(),
            Attempt::Hang => {}
            Attempt::Open { .. } => signals.send(LinkSignal::Opened).unwrap(),
        }
        Box::new(FakeLink { script: self.clone(), signals, pongs })
    }
}

impl Scripted {
    fn new(attempts: Vec<Attempt>) -> Self {
        Scripted(Arc::new(Mutex::new(Script { attempts: attempts.into(), ..Default::default() })))
    }
    fn attempts(&self) -> usize {
        self.0.lock().unwrap().started.len()
    }
    fn inject(&self, signal: LinkSignal) {
        self.0.lock().unwrap().current.as_ref().unwrap().send(signal).unwrap();
    }
}

fn config() -> ClientConfig {
    ClientConfig { jitter_seed: Some(42), ..ClientConfig::default() }
}

/// Waits (on the paused clock, so instantly in real time) for a state, bounded.
async fn state(events: &mut mpsc::Receiver<ClientEvent>, want: ConnectionState) -> Option<String> {
    let found = tokio::time::timeout(Duration::from_secs(3600), async {
        loop {
            match events.recv().await.expect("supervisor ended") {
                ClientEvent::State(s) if s.state == want => return s.reason,
                _ => {}
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("never reached {want}"))
}

async fn next_data(events: &mut mpsc::Receiver<ClientEvent>) -> ClientEvent {
    tokio::time::timeout(Duration::from_secs(3600), async {
        loop {
            match events.recv().await.expect("supervisor ended") {
                ClientEvent::State(_) => {}
                other => return other,
            }
        }
    })
    .await
    .expect("no data event")
}

#[tokio::test(start_paused = true)]
async fn retries_forever_with_capped_jittered_backoff() {
    let connector = Scripted::new(vec![]);
    let (client, mut events) = LiveClient::start(Arc::new(connector.clone()), config());
    for _ in 0..8 {
        state(&mut events, ConnectionState::Connecting).await;
        assert_eq!(state(&mut events, ConnectionState::Offline).await.as_deref(), Some("connection refused"));
    }
    state(&mut events, ConnectionState::Connecting).await;
    let started = connector.0.lock().unwrap().started.clone();
    let gaps: Vec<Duration> = started.windows(2).map(|w| w[1] - w[0]).collect();
    let mut rng = StdRng::seed_from_u64(42);
    let expected: Vec<Duration> = (0..gaps.len() as u32).map(|a| config().backoff.delay(a, &mut rng)).collect();
    // The paused clock sleeps in whole milliseconds.
    for (gap, want) in gaps.iter().zip(&expected) {
        assert!(
            gap.abs_diff(*want) < Duration::from_millis(1),
            "each wait is the backoff's delay: {gaps:?} vs {expected:?}"
        );
    }
    assert!(gaps.iter().all(|g| *g <= Duration::from_secs(5)), "{gaps:?}");
    assert!(gaps[0] >= Duration::from_millis(500) && gaps[0] <= Duration::from_millis(1500));
    assert!(client.state().attempt >= 8, "attempts are counted: {:?}", client.state());
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_never_answers_times_out() {
    let connector = Scripted::new(vec![Attempt::Hang, Attempt::Open { pongs: false }]);
    let (client, mut events) = LiveClient::start(Arc::new(connector.clone()), config());
    let t0 = Instant::now();
    assert_eq!(state(&mut events, ConnectionState::Offline).await.as_deref(), Some("no answer within 10 s"));
    assert_eq!(t0.elapsed(), Duration::from_secs(10));
    state(&mut events, ConnectionState::Connected).await;
    assert_eq!(connector.attempts(), 2);
    assert_eq!(connector.0.lock().unwrap().live_links, 1, "the hung attempt was torn down");
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn silence_after_probes_were_answered_means_offline_within_the_watchdog() {
    let connector = Scripted::new(vec![Attempt::Open { pongs: true }]);
    let (client, mut events) = LiveClient::start(Arc::new(connector.clone()), config());
    state(&mut events, ConnectionState::Connected).await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(client.state().state, ConnectionState::Connected, "answered probes keep it connected");
    // A silent cut: no pong, no packet, no close from now on.
    connector.0.lock().unwrap().silent = true;
    let cut = Instant::now();
    assert_eq!(state(&mut events, ConnectionState::Offline).await.as_deref(), Some("no answer for 30 s"));
    let took = cut.elapsed();
    assert!(took > Duration::from_secs(25) && took <= Duration::from_secs(30), "{took:?}");
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_probes_is_not_called_dead_for_being_quiet() {
    let connector = Scripted::new(vec![Attempt::Open { pongs: false }]);
    let (client, mut events) = LiveClient::start(Arc::new(connector.clone()), config());
    state(&mut events, ConnectionState::Connected).await;
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(client.state().state, ConnectionState::Connected);
    assert_eq!(connector.attempts(), 1);
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_auth_rejection_is_offline_unauthorized_and_stops_trying() {
    let connector = Scripted::new(vec![Attempt::Refuse("unauthorized: the token has expired")]);
    let (client, mut events) = LiveClient::start(Arc::new(connector.clone()), config());
    assert_eq!(state(&mut events, ConnectionState::Offline).await.as_deref(), Some("unauthorized"));
    assert_eq!(
        next_data(&mut events).await,
        ClientEvent::Unauthorized {
            code: stock_protocol::RefusalCode::TokenExpired,
            message: "unauthorized: the token has expired".into()
        }
    );
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(connector.attempts(), 1, "no hammering with refused credentials");
    assert_eq!(connector.0.lock().unwrap().live_links, 0);
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_passing_refusal_is_retried() {
    let connector = Scripted::new(vec![
        Attempt::Refuse("auth unavailable: the user service could not be reached"),
        Attempt::Open { pongs: false },
    ]);
    let (client, mut events) = LiveClient::start(Arc::new(connector.clone()), config());
    let reason = state(&mut events, ConnectionState::Offline).await.unwrap();
    assert!(reason.starts_with("refused: auth unavailable"), "{reason}");
    state(&mut events, ConnectionState::Connected).await;
    client.stop().await;
}

/// "Never retry" is decided by the refusal's code, not by words in its text: a passing
/// refusal that mentions a token is retried (it once stopped reconnecting for good).
#[tokio::test(start_paused = true)]
async fn a_passing_refusal_that_mentions_the_token_is_retried() {
    let connector = Scripted::new(vec![
        Attempt::Refuse(r#"{"message":"auth unavailable: the token service is down"}"#),
        Attempt::Refuse(r#"{"code":"auth_unavailable","message":"JWT keys are being rotated"}"#),
        // The bridge's own shape: the code in `data` (socket.io-client's `err.data`).
        Attempt::Refuse(
            r#"{"message":"auth unavailable: token check failed","data":{"code":"auth_unavailable","message":"auth unavailable: token check failed"}}"#,
        ),
        Attempt::Open { pongs: false },
    ]);
    let (client, mut events) = LiveClient::start(Arc::new(connector.clone()), config());
    let reason = state(&mut events, ConnectionState::Offline).await.unwrap();
    assert!(reason.contains("token service is down"), "{reason}");
    state(&mut events, ConnectionState::Connected).await;
    assert_eq!(connector.attempts(), 4);
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn stop_while_offline_ends_all_reconnecting() {
    let connector = Scripted::new(vec![]);
    let (client, mut events) = LiveClient::start(Arc::new(connector.clone()), config());
    state(&mut events, ConnectionState::Offline).await;
    state(&mut events, ConnectionState::Offline).await;
    let before = connector.attempts();
    client.stop().await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(connector.attempts(), before);
    assert_eq!(connector.0.lock().unwrap().live_links, 0);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_stops_it_too() {
    let connector = Scripted::new(vec![]);
    let (client, mut events) = LiveClient::start(Arc::new(connector.clone()), config());
    state(&mut events, ConnectionState::Offline).await;
    drop(client);
    tokio::time::sleep(Duration::from_secs(600)).await;
    let after = connector.attempts();
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(connector.attempts(), after);
    assert_eq!(connector.0.lock().unwrap().live_links, 0);
}

#[tokio::test(start_paused = true)]
async fn a_lost_connection_without_close_goes_offline_and_reconnects() {
    let connector = Scripted::new(vec![Attempt::Open { pongs: false }, Attempt::Open { pongs: false }]);
    let (client, mut events) = LiveClient::start(Arc::new(connector.clone()), config());
    state(&mut events, ConnectionState::Connected).await;
    connector.inject(LinkSignal::Failed("connection reset".into()));
    assert_eq!(state(&mut events, ConnectionState::Offline).await.as_deref(), Some("connection reset"));
    state(&mut events, ConnectionState::Connecting).await;
    state(&mut events, ConnectionState::Connected).await;
    connector.inject(LinkSignal::Closed);
    assert_eq!(state(&mut events, ConnectionState::Offline).await.as_deref(), Some("server closed the connection"));
    client.stop().await;
}

fn stock(product: i64, stock: i64) -> Value {
    json!({"product_id": product, "in_stock": stock, "discount_price": 1, "peak_hour_price": 2,
           "mediboy_offer_price": 3, "sync_at": "2024-01-01T00:00:00Z"})
}

fn live(product: i64, stock_: i64, seq: u64) -> LinkSignal {
    LinkSignal::Event {
        name: "add_stock".into(),
        args: vec![stock(product, stock_), json!({"seq": seq, "epoch": "e"})],
    }
}

fn product_and_seq(e: &ClientEvent) -> (i64, u64) {
    match e {
        ClientEvent::Stock { snapshot, meta, .. } => (snapshot.product_id, meta.as_ref().unwrap().seq),
        other => panic!("expected a stock event, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn catch_up_is_applied_before_live_events_without_duplicates() {
    let connector = Scripted::new(vec![Attempt::Open { pongs: true }]);
    let (client, mut events) = LiveClient::start(Arc::new(connector.clone()), config());
    state(&mut events, ConnectionState::Connected).await;
    // A live event overtakes the catch-up answer...
    connector.inject(live(2, 20, 5));
    // ...whose items include an older value of the same product and a duplicate.
    connector.inject(LinkSignal::CatchUp(vec![json!({"epoch": "e", "seq": 5, "full": true, "incomplete": false,
        "items": [{"seq": 3, "data": stock(1, 10)}, {"seq": 4, "data": stock(2, 19)}, {"seq": 5, "data": stock(2, 20)}]})]));
    connector.inject(live(2, 20, 5));
    connector.inject(live(3, 30, 6));
    let got: Vec<(i64, u64)> = [
        next_data(&mut events).await,
        next_data(&mut events).await,
        next_data(&mut events).await,
        next_data(&mut events).await,
    ]
    .iter()
    .map(product_and_seq)
    .collect();
    assert_eq!(got, vec![(1, 3), (2, 4), (2, 5), (3, 6)]);
    assert_eq!(connector.0.lock().unwrap().catch_up_requests[0], CatchUpRequest { epoch: None, after: None });
    assert_eq!(client.stats().duplicates_skipped, 2, "the overtaking live event and its repeat");
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn reconnecting_asks_from_the_last_position_and_reports_unclosable_gaps() {
    let connector = Scripted::new(vec![Attempt::Open { pongs: true }, Attempt::Open { pongs: false }]);
    let (client, mut events) = LiveClient::start(Arc::new(connector.clone()), config());
    state(&mut events, ConnectionState::Connected).await;
    connector.inject(LinkSignal::CatchUp(vec![
        json!({"epoch": "e", "seq": 7, "full": true, "incomplete": false, "items": []}),
    ]));
    connector.inject(live(1, 1, 8));
    next_data(&mut events).await;
    connector.inject(LinkSignal::Failed("connection reset".into()));
    state(&mut events, ConnectionState::Connected).await;
    assert_eq!(
        connector.0.lock().unwrap().catch_up_requests[1],
        CatchUpRequest { epoch: Some("e".into()), after: Some(8) }
    );
    // This server never answers the catch-up: after the timeout the gap is reported.
    match next_data(&mut events).await {
        ClientEvent::Gap { reason, .. } => assert_eq!(reason, "the server cannot replay missed updates"),
        other => panic!("expected a gap, got {other:?}"),
    }
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_slow_embedder_never_stalls_the_supervisor() {
    let connector = Scripted::new(vec![Attempt::Open { pongs: true }]);
    let cfg = ClientConfig { events_capacity: 8, ..config() };
    let (client, mut events) = LiveClient::start(Arc::new(connector.clone()), cfg);
    state(&mut events, ConnectionState::Connected).await;
    connector.inject(LinkSignal::CatchUp(vec![
        json!({"epoch": "e", "seq": 0, "full": true, "incomplete": false, "items": []}),
    ]));
    for i in 0..100 {
        connector.inject(live(i, i, i as u64 + 1));
    }
    // Nobody reads; the supervisor still handles every signal (and a close) at once.
    connector.inject(LinkSignal::Closed);
    stock_testkit::eventually("the supervisor handled the close (it stalled)", Duration::from_secs(60), || async {
        client.state().state == ConnectionState::Offline
    })
    .await;
    let stats = client.stats();
    assert_eq!(stats.events_received, 100);
    assert!(stats.events_dropped >= 90, "{stats:?}");
    client.stop().await;
}

/// A catch-up page of `items` (product, seq) in epoch "e" ending at `seq`.
fn page(items: &[(i64, u64)], seq: u64, more: bool) -> LinkSignal {
    let items: Vec<Value> = items.iter().map(|(p, s)| json!({"seq": s, "data": stock(*p, 1)})).collect();
    LinkSignal::CatchUp(vec![json!({"epoch": "e", "seq": seq, "full": true, "incomplete": false,
        "items": items, "more": more})])
}

fn refused(code: &str) -> LinkSignal {
    LinkSignal::CatchUp(vec![json!({"error": {"code": code, "message": "wait"}})])
}

/// Waits (paused clock) until the client has sent `n` catch-up requests; returns them.
async fn catch_up_requests(connector: &Scripted, n: usize) -> Vec<CatchUpRequest> {
    tokio::time::timeout(Duration::from_secs(3600), async {
        loop {
            let asked = connector.0.lock().unwrap().catch_up_requests.clone();
            if asked.len() >= n {
                return asked;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never asked {n} catch-ups"))
}

/// Everything the client has handed over so far that is not a state change.
fn drain_data(events: &mut mpsc::Receiver<ClientEvent>) -> Vec<ClientEvent> {
    std::iter::from_fn(|| events.try_recv().ok()).filter(|e| !matches!(e, ClientEvent::State(_))).collect()
}

#[tokio::test(start_paused = true)]
async fn a_refused_catch_up_page_is_asked_again_and_nothing_is_missed() {
    // Issue 22 (F4): every page after the first was refused `catch_up_pending`, taken for
    // "not understood": paging ended and no gap was reported.
    let connector = Scripted::new(vec![Attempt::Open { pongs: true }]);
    let (client, mut events) = LiveClient::start(Arc::new(connector.clone()), config());
    state(&mut events, ConnectionState::Connected).await;
    catch_up_requests(&connector, 1).await;
    connector.inject(page(&[(1, 1), (2, 2)], 2, true));
    let asked = catch_up_requests(&connector, 2).await;
    assert_eq!(asked[1], CatchUpRequest { epoch: Some("e".into()), after: Some(2) });
    connector.inject(refused("catch_up_pending"));
    connector.inject(live(9, 1, 9)); // held back behind the catch-up
    catch_up_requests(&connector, 3).await;
    connector.inject(refused("rate_limited"));
    let asked = catch_up_requests(&connector, 4).await;
    assert_eq!(asked[2], asked[1], "the refused page is asked again");
    assert_eq!(asked[3], asked[1], "and again");
    connector.inject(page(&[(3, 3)], 3, false));
    let mut shown = Vec::new();
    while shown.len() < 4 {
        match next_data(&mut events).await {
            ClientEvent::Stock { snapshot, .. } => shown.push(snapshot.product_id),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(shown, vec![1, 2, 3, 9], "catch-up first, then what was held back");
    assert!(drain_data(&mut events).is_empty(), "no gap: nothing is missing");
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn retries_are_spaced_and_bounded_then_the_gap_is_reported() {
    let connector = Scripted::new(vec![Attempt::Open { pongs: true }]);
    let (client, mut events) = LiveClient::start(Arc::new(connector.clone()), config());
    state(&mut events, ConnectionState::Connected).await;
    catch_up_requests(&connector, 1).await;
    connector.inject(page(&[(1, 1)], 1, true));
    catch_up_requests(&connector, 2).await;
    let mut asked_at = Vec::new();
    for n in 0..=MAX_RETRIES {
        let before = Instant::now();
        connector.inject(refused("catch_up_pending"));
        if n < MAX_RETRIES {
            catch_up_requests(&connector, 3 + n as usize).await;
            asked_at.push(Instant::now() - before);
        }
    }
    let expected: Vec<Duration> =
        (0..MAX_RETRIES).map(|n| (Duration::from_millis(250) * 2u32.pow(n)).min(Duration::from_secs(4))).collect();
    // Polled every 10 ms: each pause is seen within one poll of its due time.
    for (seen, want) in asked_at.iter().zip(&expected) {
        assert!(*seen >= *want && *seen <= *want + Duration::from_millis(10), "{asked_at:?} vs {expected:?}");
    }
    let data = loop {
        let data = drain_data(&mut events);
        if data.iter().any(|e| matches!(e, ClientEvent::Gap { .. })) {
            break data;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        data.iter().any(|e| matches!(e, ClientEvent::Gap { reason, .. } if reason.contains("kept refusing"))),
        "{data:?}"
    );
    assert_eq!(connector.0.lock().unwrap().catch_up_requests.len(), 2 + MAX_RETRIES as usize, "no more retries");
    client.stop().await;
}

const MAX_RETRIES: u32 = 8;

#[tokio::test(start_paused = true)]
async fn a_catch_up_cut_short_is_asked_again_from_where_it_started_even_after_live_events_passed() {
    // The catch-up after a reconnect goes unanswered past its timeout, so live events pass
    // (the gap reported); then that connection is lost too. The next catch-up must start
    // where the unfinished one did: from the live event's position, what lay between would
    // never be asked for, and the gap would close over it.
    let open = Attempt::Open { pongs: true };
    let connector = Scripted::new(vec![open.clone(), open.clone(), open]);
    let (client, mut events) = LiveClient::start(Arc::new(connector.clone()), config());
    state(&mut events, ConnectionState::Connected).await;
    connector.inject(page(&[(1, 3)], 3, false));
    assert!(matches!(next_data(&mut events).await, ClientEvent::Stock { .. }));
    connector.inject(LinkSignal::Failed("connection reset".into()));
    state(&mut events, ConnectionState::Connected).await;
    let asked = catch_up_requests(&connector, 2).await;
    let from_3 = CatchUpRequest { epoch: Some("e".into()), after: Some(3) };
    assert_eq!(asked[1], from_3);
    // No answer: after the timeout the gap is reported and live events pass.
    match next_data(&mut events).await {
        ClientEvent::Gap { .. } => {}
        other => panic!("expected a gap, got {other:?}"),
    }
    connector.inject(live(5, 1, 10));
    assert_eq!(product_and_seq(&next_data(&mut events).await), (5, 10));
    connector.inject(LinkSignal::Failed("connection reset".into()));
    state(&mut events, ConnectionState::Connected).await;
    let asked = catch_up_requests(&connector, 3).await;
    assert_eq!(asked[2], from_3, "asked from where the unfinished catch-up started, not from the live event");
    // Its answer brings what was missed, and only then does the gap close.
    connector.inject(page(&[(4, 7), (5, 10)], 10, false));
    assert_eq!(product_and_seq(&next_data(&mut events).await), (4, 7));
    assert!(matches!(next_data(&mut events).await, ClientEvent::GapClosed));
    assert_eq!(client.stats().duplicates_skipped, 1, "the live event, already shown");
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_catch_up_that_stops_after_its_first_page_is_a_gap_even_on_a_fresh_start() {
    let connector = Scripted::new(vec![Attempt::Open { pongs: true }]);
    let (client, mut events) = LiveClient::start(Arc::new(connector.clone()), config());
    state(&mut events, ConnectionState::Connected).await;
    connector.inject(page(&[(1, 1)], 1, true));
    // The second page never comes.
    let gap = loop {
        match next_data(&mut events).await {
            ClientEvent::Gap { reason, .. } => break reason,
            ClientEvent::Stock { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(gap, "the server's catch-up is not finished yet");
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_server_that_pages_forever_is_cut_off_and_its_live_events_are_bounded() {
    // Issue 22 (F6): held-back live events grew without bound while pages kept coming.
    let connector = Scripted::new(vec![Attempt::Open { pongs: true }]);
    let cfg = ClientConfig { events_capacity: 100_000, ..config() };
    let (client, mut events) = LiveClient::start(Arc::new(connector.clone()), cfg);
    state(&mut events, ConnectionState::Connected).await;
    let big = "x".repeat(64 * 1024);
    let mut pages = 0u64;
    loop {
        catch_up_requests(&connector, pages as usize + 1).await;
        if pages > 300 {
            panic!("still paging after {pages} pages");
        }
        let mut note = stock(1, 1);
        note["note"] = json!(big);
        connector
            .inject(LinkSignal::Event { name: "add_stock".into(), args: vec![note, json!({"seq": 1, "epoch": "x"})] });
        connector.inject(page(&[(pages as i64 + 10, pages + 10)], pages + 10, true));
        pages += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
        let data = drain_data(&mut events);
        if data.iter().any(|e| matches!(e, ClientEvent::Gap { reason, .. } if reason.contains("did not end"))) {
            break;
        }
    }
    assert_eq!(pages, 256, "pages one catch-up may take");
    assert!(client.stats().events_dropped > 0, "held-back events overflowed and were dropped");
    client.stop().await;
}
