//! One Socket.IO connection attempt, and everything rust_socketio 0.6 needs around it.
//!
//! The supervisor owns the lifecycle; a [`Link`] is a single attempt it can throw away.
//! rust_socketio 0.6 is used only for what it does well (the protocol) and is fenced off
//! from everything else:
//! - its own reconnect is switched off (it ignores `max_reconnect_attempts` and keeps
//!   looping after `disconnect()` while offline), and every client runs on a private
//!   tokio runtime on its own thread; dropping the [`SocketIoLink`] shuts that runtime
//!   down, which ends every task the crate spawned, whatever state it was in;
//! - `"connect"` never fires, so the server's CONNECT is observed through `"open"`;
//! - an auth rejection arrives while `connect()` returned Ok; upstream passed it to
//!   `"error"` behind a text prefix, our patch (`patches/rust_socketio`) to its own event,
//!   [`CONNECT_ERROR`], with the server's data, which is mapped to [`LinkSignal::Refused`]
//!   here (nothing decides by searching an error's text);
//! - its errors are named by their cause (the patched rust_engineio's texts: a message too
//!   large, a web page instead of Socket.IO, no ping for so long), shown as they are;
//! - callbacks run one at a time on its read loop, so ours only push into an unbounded
//!   channel and never wait.

use futures_util::FutureExt;
use rust_socketio::asynchronous::{CONNECT_ERROR, Client, ClientBuilder};
use rust_socketio::{Payload, TransportType};
use stock_protocol::Refused;

/// Which Engine.IO transport to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// Long-polling first, upgraded to WebSocket (what socket.io-client does).
    #[default]
    Any,
    Websocket,
    Polling,
}

impl From<Transport> for TransportType {
    fn from(t: Transport) -> Self {
        match t {
            Transport::Any => TransportType::Any,
            Transport::Websocket => TransportType::Websocket,
            Transport::Polling => TransportType::Polling,
        }
    }
}
use serde_json::{Value, json};
use std::time::Duration;
use stock_protocol::{CatchUpRequest, DiagnosticsAnswer, DiagnosticsAsk, TillIdentity, TillReport, events};
use tokio::sync::mpsc;

/// What a link reports to the supervisor.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkSignal {
    /// The server accepted the Socket.IO connection (its CONNECT arrived).
    Opened,
    /// The server refused the connection (CONNECT_ERROR): its code (when it follows our
    /// contract) and message.
    Refused(Refused),
    /// The transport failed (could not connect, ping timeout, reset, write error…).
    Failed(String),
    /// The server closed the connection (DISCONNECT).
    Closed,
    /// An application event and all its arguments.
    Event { name: String, args: Vec<Value> },
    /// The server acknowledged a liveness probe (with its clock, when it says it).
    Pong { server_now_ms: Option<i64> },
    /// Support asked for this till's Diagnostics text (the request's id).
    DiagnosticsAsked(String),
    /// The server answered a catch-up request (the raw acknowledgement arguments).
    CatchUp(Vec<Value>),
}

/// A live connection attempt. Dropping it tears the connection down.
pub trait Link: Send + Sync {
    /// Sends a liveness probe; a [`LinkSignal::Pong`] follows if the server answers.
    fn probe(&self);
    /// Asks for everything since `req`; a [`LinkSignal::CatchUp`] follows if answered.
    fn request_catch_up(&self, req: CatchUpRequest);
    /// Sends the till's health report (no answer is waited for).
    fn report(&self, _report: &TillReport) {}
    /// Sends the Diagnostics text support asked for.
    fn answer_diagnostics(&self, _answer: DiagnosticsAnswer) {}
}

/// Starts connection attempts. Implemented for real Socket.IO by [`SocketIoConnector`].
pub trait Connector: Send + Sync + 'static {
    fn connect(&self, signals: mpsc::UnboundedSender<LinkSignal>) -> Box<dyn Link>;
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct SocketTarget {
    /// The bridge's address, or the addresses of a cluster's nodes: each attempt after a
    /// failed one or a lost connection goes to the next in the list (see
    /// [`SocketIoConnector`]), so a till whose node is gone moves on to another. Catch-up
    /// works on any node, so the till keeps its position.
    pub urls: Vec<String>,
    /// Sent as the handshake `auth: {"token": ...}` and as `Authorization: Bearer`.
    pub token: Option<String>,
    /// Events passed on to the supervisor.
    pub events: Vec<String>,
    pub transport: Transport,
    /// Which servers are trusted over https/wss.
    pub trust: crate::trust::Trust,
    /// Who this till is, sent in the handshake's `auth.till` (None: an unidentified client).
    pub till: Option<TillIdentity>,
}

impl SocketTarget {
    /// One bridge address.
    pub fn new(url: impl Into<String>, token: Option<String>) -> Self {
        Self::with_addresses(vec![url.into()], token)
    }

    /// Several bridge addresses (a cluster's nodes), moved through in turn.
    pub fn with_addresses(urls: Vec<String>, token: Option<String>) -> Self {
        SocketTarget {
            urls,
            token,
            events: vec![events::ADD_STOCK.to_owned(), events::SALE_MODE.to_owned()],
            transport: Transport::Any,
            trust: crate::trust::Trust::system(),
            till: None,
        }
    }
}

/// The addresses in a setting or an option that holds one or more of them, separated by
/// commas or spaces (`http://node-a:3001, http://node-b:3001`).
pub fn split_addresses(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace()).filter(|a| !a.is_empty()).map(str::to_owned).collect()
}

/// Real Socket.IO connections through rust_socketio, to the target's addresses in turn:
/// the first attempt goes to the first address of the till's order, and every later
/// attempt (the supervisor makes one only after a failed attempt or a lost connection) to
/// the next one in that order, round it. [`SocketIoConnector::new`] gives each till an
/// order of its own, shuffled: tills start spread over a cluster's nodes, and when a node
/// goes, its tills spread over the nodes left instead of all moving to the one after it in
/// the setting (measured: at 36,000 tills, the 12,000 of a killed node all went to the
/// same node, which then had more tills than it had places). A node that comes back gets
/// its share of the tills that connect after that.
pub struct SocketIoConnector {
    target: SocketTarget,
    /// The order the addresses are tried in (indexes into the target's).
    order: Vec<usize>,
    /// Attempts made so far.
    next: std::sync::atomic::AtomicUsize,
}

impl SocketIoConnector {
    /// Tries the target's addresses in an order of its own, shuffled.
    pub fn new(target: SocketTarget) -> Self {
        use rand::seq::SliceRandom;
        let mut order: Vec<usize> = (0..target.urls.len()).collect();
        order.shuffle(&mut rand::rng());
        SocketIoConnector { target, order, next: std::sync::atomic::AtomicUsize::new(0) }
    }

    /// Tries the target's addresses in the setting's order, starting at number `index`
    /// (counted round the list).
    pub fn starting_at(target: SocketTarget, index: usize) -> Self {
        let len = target.urls.len().max(1);
        let order = (0..target.urls.len()).map(|i| (index + i) % len).collect();
        SocketIoConnector { target, order, next: std::sync::atomic::AtomicUsize::new(0) }
    }

    /// The address of attempt number `attempt` (None without any).
    fn url_for(&self, attempt: usize) -> Option<&str> {
        let i = *self.order.get(attempt % self.order.len().max(1))?;
        self.target.urls.get(i).map(String::as_str)
    }
}

enum Command {
    Probe,
    CatchUp(CatchUpRequest),
    Report(Box<TillReport>),
    Answer(DiagnosticsAnswer),
}

/// See the module docs.
/// Dropping it closes both channels, which stops the connection's thread.
pub struct SocketIoLink {
    commands: mpsc::UnboundedSender<Command>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// How long an acknowledgement is waited for inside rust_socketio.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a failed write waits for the server's goodbye to be read (it may be why the
/// write failed) before the connection counts as lost.
const CLOSE_GRACE: Duration = Duration::from_millis(300);

/// How long a dropped link may take to say goodbye before its runtime is shut down.
const GOODBYE_GRACE: Duration = Duration::from_millis(1500);

impl Connector for SocketIoConnector {
    fn connect(&self, signals: mpsc::UnboundedSender<LinkSignal>) -> Box<dyn Link> {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let target = self.target.clone();
        let failed = signals.clone();
        if target.urls.is_empty() {
            let _ = failed.send(LinkSignal::Failed("no bridge address is set".into()));
            return Box::new(SocketIoLink { commands, _stop: stop });
        }
        let attempt = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let url = self.url_for(attempt).unwrap_or_default().to_owned();
        tracing::debug!(%url, "connecting");
        let spawned = std::thread::Builder::new().name("socketio-link".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = signals.send(LinkSignal::Failed(format!("cannot start a runtime: {e}")));
                    return;
                }
            };
            runtime.block_on(async move {
                // `drive` ends by itself when the link is dropped (its command channel
                // closes), unless rust_socketio is stuck; the grace period bounds that.
                let driver = tokio::spawn(drive(target, url, signals, command_rx));
                tokio::select! {
                    _ = driver => {}
                    _ = async { let _ = stop_rx.await; tokio::time::sleep(GOODBYE_GRACE).await } => {}
                }
            });
            // Ends every task rust_socketio spawned, including a stuck connect or read loop.
            runtime.shutdown_timeout(Duration::from_millis(200));
        });
        if let Err(e) = spawned {
            let _ = failed.send(LinkSignal::Failed(format!("cannot start a connection thread: {e}")));
        }
        Box::new(SocketIoLink { commands, _stop: stop })
    }
}

impl Link for SocketIoLink {
    fn probe(&self) {
        let _ = self.commands.send(Command::Probe);
    }
    fn request_catch_up(&self, req: CatchUpRequest) {
        let _ = self.commands.send(Command::CatchUp(req));
    }
    fn report(&self, report: &TillReport) {
        let _ = self.commands.send(Command::Report(Box::new(report.clone())));
    }
    fn answer_diagnostics(&self, answer: DiagnosticsAnswer) {
        let _ = self.commands.send(Command::Answer(answer));
    }
}

async fn drive(
    target: SocketTarget,
    url: String,
    signals: mpsc::UnboundedSender<LinkSignal>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    // With several addresses, a failure says which one failed.
    let several = target.urls.len() > 1;
    let signals = Named { signals, url: several.then(|| url.clone()) };
    let mut builder = ClientBuilder::new(url.clone())
        .transport_type(target.transport.into())
        .reconnect(false)
        .reconnect_on_disconnect(false);
    if url.starts_with("https:") || url.starts_with("wss:") {
        match target.trust.socket_connector() {
            Ok(tls) => builder = builder.tls_config(tls),
            Err(e) => {
                let _ = signals.send(LinkSignal::Failed(format!("TLS cannot be set up: {e}")));
                return;
            }
        }
    }
    // The handshake's auth: the token, and who this till is.
    let mut auth = serde_json::Map::new();
    if let Some(token) = &target.token {
        auth.insert("token".into(), json!(token));
        builder = builder.opening_header("Authorization", format!("Bearer {token}"));
    }
    if let Some(till) = &target.till {
        auth.insert("till".into(), serde_json::to_value(till).unwrap_or_default());
    }
    if !auth.is_empty() {
        builder = builder.auth(Value::Object(auth));
    }
    let tx = signals.clone();
    builder = builder.on("open", move |_, _| {
        let _ = tx.send(LinkSignal::Opened);
        async {}.boxed()
    });
    let tx = signals.clone();
    let closed = std::sync::Arc::new(tokio::sync::Notify::new());
    let closing = closed.clone();
    builder = builder.on("close", move |_, _| {
        let _ = tx.send(LinkSignal::Closed);
        closing.notify_one();
        async {}.boxed()
    });
    let tx = signals.clone();
    builder = builder.on(CONNECT_ERROR, move |payload, _| {
        let _ = tx.send(LinkSignal::Refused(Refused::from_data(&payload_json(&payload))));
        async {}.boxed()
    });
    let tx = signals.clone();
    builder = builder.on(events::DIAGNOSTICS, move |payload, _| {
        let args = match payload {
            Payload::Text(values) => values,
            _ => Vec::new(),
        };
        if let Some(ask) = args.first().and_then(|a| serde_json::from_value::<DiagnosticsAsk>(a.clone()).ok()) {
            let _ = tx.send(LinkSignal::DiagnosticsAsked(ask.id));
        }
        async {}.boxed()
    });
    let tx = signals.clone();
    builder = builder.on("error", move |payload, _| {
        let _ = tx.send(LinkSignal::Failed(payload_text(&payload)));
        async {}.boxed()
    });
    for name in &target.events {
        let tx = signals.clone();
        let event = name.clone();
        builder = builder.on(name.as_str(), move |payload, _| {
            let args = match payload {
                Payload::Text(values) => values,
                #[allow(deprecated)]
                Payload::String(s) => vec![serde_json::from_str(&s).unwrap_or(Value::String(s))],
                Payload::Binary(_) => Vec::new(),
            };
            let _ = tx.send(LinkSignal::Event { name: event.clone(), args });
            async {}.boxed()
        });
    }
    let client: Client = match builder.connect().await {
        Ok(c) => c,
        Err(e) => {
            // Named by its cause when the network or the certificate says which.
            let why = match crate::trust::why_unreachable(&url, &target.trust).await {
                Some(why) => why.to_string(),
                None => format!("could not connect: {e}"),
            };
            let _ = signals.send(LinkSignal::Failed(why));
            return;
        }
    };
    while let Some(command) = commands.recv().await {
        let sent = match command {
            Command::Probe => {
                let tx = signals.clone();
                client
                    .emit_with_ack(events::PING, json!({}), ACK_TIMEOUT, move |payload, _| {
                        // ["pong", {"now": ms}] from our bridge; any answer counts as one.
                        let server_now_ms = ack_args(payload).get(1).and_then(|v| v.get("now")?.as_i64());
                        let _ = tx.send(LinkSignal::Pong { server_now_ms });
                        async {}.boxed()
                    })
                    .await
            }
            Command::CatchUp(req) => {
                let tx = signals.clone();
                let body = serde_json::to_value(&req).unwrap_or_default();
                client
                    .emit_with_ack(events::CATCH_UP, body, ACK_TIMEOUT, move |payload, _| {
                        let args = ack_args(payload);
                        let _ = tx.send(LinkSignal::CatchUp(args));
                        async {}.boxed()
                    })
                    .await
            }
            Command::Report(report) => {
                client.emit(events::HEALTH, serde_json::to_value(&*report).unwrap_or_default()).await
            }
            Command::Answer(answer) => {
                client.emit(events::DIAGNOSTICS_ANSWER, serde_json::to_value(&answer).unwrap_or_default()).await
            }
        };
        if let Err(e) = sent {
            // A write that fails because the server has just closed the connection (a
            // goodbye on its way, a graceful stop) is that close, not a loss: the close
            // is given a moment to be read first.
            if tokio::time::timeout(CLOSE_GRACE, closed.notified()).await.is_err() {
                let _ = signals.send(LinkSignal::Failed(format!("connection lost: {e}")));
            }
            return;
        }
    }
    // The link was dropped: say goodbye so the server frees the socket at once.
    let _ = tokio::time::timeout(Duration::from_secs(1), client.disconnect()).await;
}

/// The link's signals; a failure is prefixed with the address when there are several.
#[derive(Clone)]
struct Named {
    signals: mpsc::UnboundedSender<LinkSignal>,
    url: Option<String>,
}

impl Named {
    fn send(&self, signal: LinkSignal) -> Result<(), mpsc::error::SendError<LinkSignal>> {
        let signal = match (signal, &self.url) {
            (LinkSignal::Failed(why), Some(url)) => LinkSignal::Failed(format!("{url}: {why}")),
            (signal, _) => signal,
        };
        self.signals.send(signal)
    }
}

/// The arguments of an acknowledgement. rust_socketio hands an ack's data over as one
/// value holding the whole argument array (`[[arg1, arg2]]`), unlike events.
fn ack_args(payload: Payload) -> Vec<Value> {
    match payload {
        Payload::Text(mut values) if values.len() == 1 && values[0].is_array() => match values.remove(0) {
            Value::Array(args) => args,
            other => vec![other],
        },
        Payload::Text(values) => values,
        _ => Vec::new(),
    }
}

/// The data of a CONNECT_ERROR as JSON text (rust_socketio hands it over parsed).
fn payload_json(payload: &Payload) -> String {
    match payload {
        Payload::Text(values) if values.len() == 1 => values[0].to_string(),
        other => payload_text(other),
    }
}

fn payload_text(payload: &Payload) -> String {
    match payload {
        Payload::Text(values) => values
            .iter()
            .map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
            .collect::<Vec<_>>()
            .join(" "),
        #[allow(deprecated)]
        Payload::String(s) => s.clone(),
        Payload::Binary(_) => "binary error payload".into(),
    }
}

/// The human message in a CONNECT_ERROR's data (`{"message": "..."}` or a bare string).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tills_of_a_lost_node_spread_over_the_nodes_left() {
        let urls: Vec<String> = ["http://a", "http://b", "http://c"].map(String::from).to_vec();
        let mut after_c = std::collections::HashMap::<&str, usize>::new();
        let connectors: Vec<_> =
            (0..900).map(|_| SocketIoConnector::new(SocketTarget::with_addresses(urls.clone(), None))).collect();
        for connector in &connectors {
            // Each tries every address once per round, its first one again after a round.
            let round: std::collections::HashSet<_> = (0..3).filter_map(|a| connector.url_for(a)).collect();
            assert_eq!(round.len(), 3);
            assert_eq!(connector.url_for(3), connector.url_for(0));
            if connector.url_for(0) == Some("http://c") {
                *after_c.entry(connector.url_for(1).unwrap()).or_default() += 1;
            }
        }
        // About 300 started on c; before, every one of them went on to a. (Either count
        // under 75 has a chance far below one in a billion.)
        let (a, b) = (after_c.get("http://a").copied().unwrap_or(0), after_c.get("http://b").copied().unwrap_or(0));
        assert!(a > 75 && b > 75, "after c: a {a}, b {b}");
    }

    #[test]
    fn starting_at_keeps_the_settings_order() {
        let urls: Vec<String> = ["http://a", "http://b", "http://c"].map(String::from).to_vec();
        let connector = SocketIoConnector::starting_at(SocketTarget::with_addresses(urls, None), 2);
        let tried: Vec<_> = (0..4).filter_map(|a| connector.url_for(a)).collect();
        assert_eq!(tried, ["http://c", "http://a", "http://b", "http://c"]);
        assert_eq!(SocketIoConnector::new(SocketTarget::with_addresses(vec![], None)).url_for(0), None);
    }

    #[test]
    fn unwraps_ack_arguments() {
        let answer = json!({"epoch": "e"});
        assert_eq!(ack_args(Payload::Text(vec![json!([answer.clone()])])), vec![answer.clone()]);
        assert_eq!(ack_args(Payload::Text(vec![answer.clone()])), vec![answer]);
    }

    #[test]
    fn reads_connect_error_messages() {
        let r = Refused::from_data(r#"{"message":"unauthorized: the token has expired"}"#);
        assert_eq!(r.message, "unauthorized: the token has expired");
        assert_eq!(r.code, Some(stock_protocol::RefusalCode::TokenExpired));
        assert_eq!(Refused::from_data(r#""nope""#).message, "nope");
        assert_eq!(Refused::from_data("garbage").message, "garbage");
    }
}
