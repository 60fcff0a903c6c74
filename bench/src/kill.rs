//! The kill-a-node run (`--kill-node`): a cluster case runs again, and halfway through
//! its events the last node is killed with SIGKILL. Its clients, given every node's
//! address, move on to the next one, ask for a catch-up from the last position they saw
//! (`stock:catch_up`, as a till does) and must end with the latest value of every product.
//! They wait between attempts as the client core does ([`stock_client::backoff::Backoff`]'s
//! defaults, seeded per client).
//! Reported: how many clients lost their node, when the last one was back, when the last
//! one had every product's latest value (both after the kill), and how many never did.
//!
//! Each [`failover_client`] keeps, per product, the highest `bench_seq` it has seen, live or
//! in a catch-up answer, and counts itself complete once every product is at the last one
//! posted for it ([`last_posted`]).

use futures_util::{SinkExt, StreamExt};
use rand::SeedableRng;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Products the bench's events cycle through (`product_id` 5000 + seq % 500).
pub(crate) const PRODUCTS: usize = 500;
const FIRST_PRODUCT: u64 = 5000;

/// What the clients of a kill run tell the run, counted over all of them.
#[derive(Default)]
pub(crate) struct Tally {
    /// Connections lost while the run was on (a node gone).
    pub(crate) lost: AtomicU64,
    /// Connections opened again after a loss.
    pub(crate) back: AtomicU64,
    /// Clients with the latest value of every product.
    pub(crate) complete: AtomicU64,
    /// Live deliveries read.
    pub(crate) received: AtomicU64,
    /// Of the connections lost: closed by the node (a Close frame), and broken (an error,
    /// or the stream's end without one: a killed node).
    pub(crate) closed: AtomicU64,
    pub(crate) broken: AtomicU64,
    /// Attempts to open a connection that failed or timed out (30 s).
    pub(crate) attempts_failed: AtomicU64,
    /// After a loss: WebSockets opened again, catch-up answers read, and answers that
    /// were a refusal (`{"error": …}`) or unreadable.
    pub(crate) reopened: AtomicU64,
    pub(crate) catch_ups: AtomicU64,
    pub(crate) catch_ups_refused: AtomicU64,
    /// What the clients that stopped without every product's latest value missed.
    pub(crate) gaps: std::sync::Mutex<Gaps>,
}

/// A [`Tally`]'s counts at one moment.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TallyCounts {
    pub(crate) lost: u64,
    pub(crate) back: u64,
    pub(crate) complete: u64,
    pub(crate) closed: u64,
    pub(crate) broken: u64,
    pub(crate) attempts_failed: u64,
    pub(crate) reopened: u64,
    pub(crate) catch_ups: u64,
    pub(crate) catch_ups_refused: u64,
}

impl Tally {
    /// Every count, in the order a generator child sends them to its parent.
    pub(crate) fn counts(&self) -> [&AtomicU64; 9] {
        [
            &self.lost,
            &self.back,
            &self.complete,
            &self.closed,
            &self.broken,
            &self.attempts_failed,
            &self.reopened,
            &self.catch_ups,
            &self.catch_ups_refused,
        ]
    }

    /// The counts now.
    pub(crate) fn snapshot(&self) -> TallyCounts {
        let [lost, back, complete, closed, broken, attempts_failed, reopened, catch_ups, catch_ups_refused] =
            self.counts().map(|c| c.load(Ordering::Relaxed));
        TallyCounts { lost, back, complete, closed, broken, attempts_failed, reopened, catch_ups, catch_ups_refused }
    }

    /// Adds one client's gaps.
    fn note_gaps(&self, gaps: &Gaps) {
        self.gaps.lock().unwrap_or_else(|e| e.into_inner()).add(gaps);
    }
}

/// The clients that stopped without every product's latest value, and what they missed.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Gaps {
    pub(crate) clients: u64,
    /// Of them: clients that had moved to another node, and clients that had a catch-up
    /// refused at least once.
    pub(crate) moved: u64,
    pub(crate) refused: u64,
    /// Each missing event (`bench_seq`), and how many of them ended without it.
    pub(crate) missing: std::collections::BTreeMap<u64, u64>,
}

impl Gaps {
    /// One client's: the events of `wanted` it has not seen.
    fn of_client(seen: &[Option<u64>], wanted: &[Option<u64>], moved: bool, refused: bool) -> Gaps {
        let missing: std::collections::BTreeMap<u64, u64> =
            seen.iter().zip(wanted).filter_map(|(s, w)| w.filter(|w| s < &Some(*w)).map(|w| (w, 1))).collect();
        if missing.is_empty() {
            return Gaps::default();
        }
        Gaps { clients: 1, moved: u64::from(moved), refused: u64::from(refused), missing }
    }

    pub(crate) fn add(&mut self, other: &Gaps) {
        self.clients += other.clients;
        self.moved += other.moved;
        self.refused += other.refused;
        for (seq, n) in &other.missing {
            *self.missing.entry(*seq).or_default() += n;
        }
    }

    /// As a generator child sends them: `<clients> <moved> <refused> <seq>:<n>,…`.
    pub(crate) fn to_line(&self) -> String {
        let missing: Vec<String> = self.missing.iter().map(|(seq, n)| format!("{seq}:{n}")).collect();
        format!("{} {} {} {}", self.clients, self.moved, self.refused, missing.join(","))
    }

    pub(crate) fn from_line(line: &str) -> Option<Gaps> {
        let mut parts = line.split(' ');
        let mut count = || parts.next()?.parse::<u64>().ok();
        let (clients, moved, refused) = (count()?, count()?, count()?);
        let missing = parts
            .next()
            .unwrap_or("")
            .split(',')
            .filter(|item| !item.is_empty())
            .map(|item| {
                let (seq, n) = item.split_once(':')?;
                Some((seq.parse().ok()?, n.parse().ok()?))
            })
            .collect::<Option<_>>()?;
        Some(Gaps { clients, moved, refused, missing })
    }

    /// For the report: who they were and the events most of them miss.
    pub(crate) fn summary(&self) -> String {
        if self.clients == 0 {
            return "none".to_owned();
        }
        let mut most: Vec<(u64, u64)> = self.missing.iter().map(|(seq, n)| (*seq, *n)).collect();
        most.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let shown: Vec<String> = most.iter().take(8).map(|(seq, n)| format!("event {seq} ×{n}")).collect();
        let more = if most.len() > 8 { format!(", {} events more", most.len() - 8) } else { String::new() };
        format!(
            "{} ({} had moved, {} had a catch-up refused; missing {}{more})",
            self.clients,
            self.moved,
            self.refused,
            shown.join(", ")
        )
    }
}

/// The last `bench_seq` posted for each product, when `events` events are posted.
pub(crate) fn last_posted(events: usize) -> Vec<Option<u64>> {
    (0..PRODUCTS).map(|r| (r < events).then(|| (r + PRODUCTS * ((events - 1 - r) / PRODUCTS)) as u64)).collect()
}

/// A client with every node's address (starting at `start`, then in an order of its own)
/// that moves on to the next after a loss and catches up; returns its live deliveries as
/// (bench_seq, read at).
pub(crate) async fn failover_client(
    addrs: Vec<SocketAddr>,
    start: usize,
    events: usize,
    tally: Arc<Tally>,
    ready: tokio::sync::mpsc::Sender<()>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut gate: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Vec<(u64, Instant)> {
    let wanted = last_posted(events);
    let mut seen: Vec<Option<u64>> = vec![None; PRODUCTS];
    let mut complete = false;
    let mut got = Vec::new();
    // The last position seen, for the catch-up after a move.
    let mut position: Option<(String, u64)> = None;
    let mut announced = false;
    let mut lost_once = false;
    let mut catch_ups = CatchUps::default();
    // Reconnects wait as the client core's do (its defaults: socket.io-client's).
    let backoff = stock_client::backoff::Backoff::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(start as u64);
    // The first address by `start` (the run counts the killed node's clients by it), the
    // others in an order of the client's own, as the client core's (`SocketIoConnector`):
    // a lost node's clients spread over the nodes left.
    let mut order: Vec<usize> = (0..addrs.len()).collect();
    order.rotate_left(start % addrs.len().max(1));
    if order.len() > 1 {
        rand::seq::SliceRandom::shuffle(&mut order[1..], &mut rng);
    }
    let mut failures = 0u32;
    let mut ever_refused = false;
    'client: for attempt in 0.. {
        if *stop.borrow() {
            break;
        }
        let addr = addrs[order[attempt % order.len()]];
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let connecting = tokio::time::timeout(Duration::from_secs(30), async {
            let tcp = crate::load::open_tcp(start, addr, crate::load::Reading::AtOnce)
                .await
                .map_err(tokio_tungstenite::tungstenite::Error::Io)?;
            tokio_tungstenite::client_async_with_config(url, tcp, Some(crate::load::ws_config())).await
        });
        let opened = connecting.await;
        // The first handshake is paced by the generator; a move after a loss is not (that
        // crowd is what the run measures).
        gate.take();
        let Ok(Ok((ws, _))) = opened else {
            tally.attempts_failed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(backoff.delay(failures, &mut rng)).await;
            failures += 1;
            continue;
        };
        failures = 0;
        if lost_once {
            tally.reopened.fetch_add(1, Ordering::Relaxed);
        }
        let (mut tx, mut rx) = ws.split();
        // A refused catch-up is asked again after the client core's pause, at most
        // `MAX_CATCH_UP_RETRIES` times.
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut refusals = 0u32;
        loop {
            let retry = async {
                match retry_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let frame = tokio::select! {
                f = rx.next() => f,
                _ = retry => {
                    retry_at = None;
                    let _ = tx.send(Message::text(catch_ups.again())).await;
                    continue;
                }
                _ = stop.changed() => break 'client,
            };
            let message = match frame {
                Some(Ok(Message::Close(_))) => {
                    tally.closed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Some(Ok(message)) => message,
                _ => {
                    tally.broken.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            };
            let Message::Text(text) = message else { continue };
            let t = text.as_str();
            match t.as_bytes().first() {
                Some(b'0') => {
                    let _ = tx.send(Message::text("40")).await;
                }
                Some(b'2') => {
                    let _ = tx.send(Message::text("3")).await;
                }
                Some(b'4') if t.starts_with("40") => {
                    if !announced {
                        announced = true;
                        let _ = ready.send(()).await;
                    }
                    if lost_once {
                        tally.back.fetch_add(1, Ordering::Relaxed);
                        let _ = tx.send(Message::text(catch_ups.begin(position.as_ref()))).await;
                    }
                }
                Some(b'4') if t.starts_with("42") => {
                    let now = Instant::now();
                    if let Some(bench_seq) = note_products(t, &mut seen) {
                        got.push((bench_seq, now));
                        tally.received.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(meta) = meta_of(t) {
                        position = Some(meta);
                    }
                }
                Some(b'4') if t.starts_with("43") => {
                    // A catch-up answer: `43<id>[{…}]`.
                    let body = t[2..].trim_start_matches(|c: char| c.is_ascii_digit());
                    let answer = serde_json::from_str::<Vec<stock_protocol::CatchUp>>(body).ok();
                    let answer = answer.and_then(|a| a.into_iter().next());
                    if answer.is_none() {
                        tally.catch_ups_refused.fetch_add(1, Ordering::Relaxed);
                        ever_refused = true;
                        if refusals < stock_client::supervisor::MAX_CATCH_UP_RETRIES {
                            refusals += 1;
                            let pause = stock_client::supervisor::catch_up_retry_pause(refusals);
                            retry_at = Some(tokio::time::Instant::now() + pause);
                        } else {
                            catch_ups.done();
                        }
                    }
                    if let Some(answer) = answer {
                        tally.catch_ups.fetch_add(1, Ordering::Relaxed);
                        for item in &answer.items {
                            note_products(&item.data.to_string(), &mut seen);
                        }
                        position = Some((answer.epoch.clone(), answer.seq));
                        if answer.more {
                            let _ = tx.send(Message::text(catch_ups.ask(position.clone()))).await;
                        } else {
                            catch_ups.done();
                        }
                    }
                }
                _ => {}
            }
            if !complete && seen.iter().zip(&wanted).all(|(s, w)| w.is_none() || s >= w) {
                complete = true;
                tally.complete.fetch_add(1, Ordering::Relaxed);
            }
        }
        if *stop.borrow() {
            break;
        }
        // The node is gone: the next address, after the till's delay (1–5 s with jitter:
        // a crowd that came back at once would measure the crowd, not the bridge).
        lost_once = true;
        tally.lost.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(backoff.delay(failures, &mut rng)).await;
        failures += 1;
    }
    tally.note_gaps(&Gaps::of_client(&seen, &wanted, lost_once, ever_refused));
    got
}

/// A client's catch-up requests, made as the client core makes them: a refused request is
/// asked again from the position it asked from, and one left unfinished by a lost
/// connection is asked again from where it had got to. Live events read meanwhile move
/// neither on: what lay before them would never be asked for.
#[derive(Default)]
struct CatchUps {
    ack: u64,
    /// The position the catch-up under way asked from (`Some(None)`: from the start).
    under_way: Option<Option<(String, u64)>>,
}

impl CatchUps {
    /// The catch-up after a (re)connection: where an unfinished one had got to, else from
    /// `position` (the last one seen).
    fn begin(&mut self, position: Option<&(String, u64)>) -> String {
        let from = self.under_way.take().unwrap_or_else(|| position.cloned());
        self.ask(from)
    }

    /// The request under way, asked again (after a refusal).
    fn again(&mut self) -> String {
        let from = self.under_way.take().flatten();
        self.ask(from)
    }

    /// A request from `from` (the next page).
    fn ask(&mut self, from: Option<(String, u64)>) -> String {
        self.ack += 1;
        let request = catch_up_request(self.ack, from.as_ref());
        self.under_way = Some(from);
        request
    }

    /// The catch-up is over (answered in full, or given up).
    fn done(&mut self) {
        self.under_way = None;
    }
}

/// A `stock:catch_up` request with ack id `ack` from `position` (from the start without one).
fn catch_up_request(ack: u64, position: Option<&(String, u64)>) -> String {
    let request = match position {
        Some((epoch, seq)) => serde_json::json!({"epoch": epoch, "after": seq}),
        None => serde_json::json!({}),
    };
    format!(r#"42{ack}["stock:catch_up",{request}]"#)
}

/// Notes the product and `bench_seq` of every payload in `text`; returns the bench_seq of
/// the first (a live event carries one).
fn note_products(text: &str, seen: &mut [Option<u64>]) -> Option<u64> {
    let mut first = None;
    let mut rest = text;
    while let Some(i) = rest.find("\"product_id\":") {
        rest = &rest[i + 13..];
        let product = digits(rest);
        let Some(j) = rest.find("\"bench_seq\":") else { break };
        rest = &rest[j + 12..];
        let (Some(product), Some(bench_seq)) = (product, digits(rest)) else { continue };
        if let Some(slot) = product.checked_sub(FIRST_PRODUCT).and_then(|r| seen.get_mut(r as usize)) {
            *slot = (*slot).max(Some(bench_seq));
        }
        first = first.or(Some(bench_seq));
    }
    first
}

/// The delivery position of a live `add_stock` (its second argument, `{"seq":…,"epoch":"…"}`).
fn meta_of(text: &str) -> Option<(String, u64)> {
    let i = text.rfind("{\"seq\":")?;
    let meta: serde_json::Value = serde_json::from_str(text[i..].strip_suffix(']')?).ok()?;
    Some((meta["epoch"].as_str()?.to_owned(), meta["seq"].as_u64()?))
}

fn digits(text: &str) -> Option<u64> {
    let end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    text[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_posted_of_each_product() {
        let last = last_posted(3);
        assert_eq!(&last[..4], &[Some(0), Some(1), Some(2), None]);
        let last = last_posted(1200);
        assert_eq!(last[0], Some(1000));
        assert_eq!(last[199], Some(1199));
        assert_eq!(last[200], Some(700));
    }

    #[test]
    fn a_client_s_gaps_name_the_events_it_misses_and_cross_the_pipe_unchanged() {
        let wanted = last_posted(4);
        let mut seen = vec![None; PRODUCTS];
        seen[0] = Some(0);
        seen[2] = Some(2);
        let one = Gaps::of_client(&seen, &wanted, true, false);
        assert_eq!((one.clients, one.moved, one.refused), (1, 1, 0));
        assert_eq!(one.missing.into_iter().collect::<Vec<_>>(), vec![(1, 1), (3, 1)]);
        seen[1] = Some(1);
        seen[3] = Some(3);
        assert_eq!(Gaps::of_client(&seen, &wanted, true, true), Gaps::default());

        let mut all = Gaps::default();
        all.add(&Gaps::of_client(&[None, Some(1)], &[Some(0), Some(1)], false, true));
        all.add(&Gaps::of_client(&[None, None], &[Some(0), Some(1)], true, true));
        assert_eq!(Gaps::from_line(&all.to_line()), Some(all.clone()));
        assert_eq!(Gaps::from_line(&Gaps::default().to_line()), Some(Gaps::default()));
        assert_eq!(all.summary(), "2 (1 had moved, 2 had a catch-up refused; missing event 0 ×2, event 1 ×1)");
    }

    #[test]
    fn a_catch_up_is_asked_again_from_where_it_started_not_from_live_events_read_since() {
        let at = |seq: u64| ("e".to_owned(), seq);
        let mut catch_ups = CatchUps::default();
        assert_eq!(catch_ups.begin(Some(&at(3))), r#"421["stock:catch_up",{"epoch":"e","after":3}]"#);
        // Refused; live events up to 10 are read meanwhile. The retry still asks from 3.
        assert_eq!(catch_ups.again(), r#"422["stock:catch_up",{"epoch":"e","after":3}]"#);
        // The connection is lost before an answer: the next one asks from 3 again.
        assert_eq!(catch_ups.begin(Some(&at(10))), r#"423["stock:catch_up",{"epoch":"e","after":3}]"#);
        // A page up to 7 with more: the next page from 7; once done, a new catch-up starts
        // at the position seen.
        assert_eq!(catch_ups.ask(Some(at(7))), r#"424["stock:catch_up",{"epoch":"e","after":7}]"#);
        catch_ups.done();
        assert_eq!(catch_ups.begin(Some(&at(12))), r#"425["stock:catch_up",{"epoch":"e","after":12}]"#);
        catch_ups.done();
        assert_eq!(catch_ups.begin(None), r#"426["stock:catch_up",{}]"#);
    }

    #[test]
    fn ends_are_read_by_reason_from_a_metrics_page() {
        let page = "# TYPE stock_bridge_disconnects_total counter\n\
                    stock_bridge_disconnects_total{reason=\"ping_timeout\"} 12\n\
                    stock_bridge_disconnects_total{reason=\"transport_closed\"} 40\n\
                    stock_bridge_deliveries_total 9\n";
        let ended = by_label(page, "stock_bridge_disconnects_total", "reason");
        assert_eq!(ended, vec![("ping_timeout".into(), 12), ("transport_closed".into(), 40)]);
        let page = "stock_bridge_max_connections_x 1\nstock_bridge_max_connections 19872\n";
        assert_eq!(gauge(page, "stock_bridge_max_connections"), Some(19872));
    }

    #[test]
    fn products_and_positions_are_read_from_frames() {
        let mut seen = vec![None; PRODUCTS];
        let live = r#"42["add_stock",{"product_id":5003,"in_stock":3,"bench_seq":3},{"seq":9,"epoch":"e1"}]"#;
        assert_eq!(note_products(live, &mut seen), Some(3));
        assert_eq!(seen[3], Some(3));
        assert_eq!(meta_of(live), Some(("e1".into(), 9)));
    }
}

/// Follows the tally from the kill (at `killed_at`) until the `expected_lost` clients of
/// the killed node are back and all `clients` have every product's latest value; the
/// seconds after the kill of each (polled every 20 ms).
async fn watch_recovery(
    tally: Arc<Tally>,
    killed_at: Instant,
    expected_lost: u64,
    clients: u64,
    seen: Arc<std::sync::Mutex<Recovery>>,
) {
    loop {
        let done = {
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.back.is_none() && tally.back.load(Ordering::Relaxed) >= expected_lost {
                seen.back = Some(killed_at.elapsed().as_secs_f64());
            }
            if seen.complete.is_none() && tally.complete.load(Ordering::Relaxed) >= clients {
                seen.complete = Some(killed_at.elapsed().as_secs_f64());
            }
            seen.back.is_some() && seen.complete.is_some()
        };
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Seconds after the kill until the last lost client was back, and until every client had
/// every product's latest value; what was reached is kept when the wait runs out.
#[derive(Debug, Default, Clone, Copy)]
struct Recovery {
    back: Option<f64>,
    complete: Option<f64>,
}

/// What the surviving nodes' `/metrics` say at the end of a kill run (read before the
/// bench's own clients stop, whose ends would be counted too).
#[derive(Debug, Default)]
pub(crate) struct Survivors {
    /// Connections they ended, summed by reason, e.g. `ping_timeout 12, transport_closed 40`.
    pub(crate) ended: String,
    /// Catch-ups they were asked for, by outcome (`answered 7094, not_joined 12`).
    pub(crate) catch_ups: String,
    /// Connections they can hold together (`stock_bridge_max_connections`: the cap under
    /// each one's open-file limit); None when a node did not answer.
    pub(crate) places: Option<u64>,
}

async fn survivors(http: &reqwest::Client, nodes: &[SocketAddr]) -> Survivors {
    let mut by_reason = std::collections::BTreeMap::<String, u64>::new();
    let mut catch_ups = std::collections::BTreeMap::<String, u64>::new();
    let mut places = Some(0);
    let mut unread = 0;
    for node in nodes {
        let page = match http.get(format!("http://{node}/metrics")).send().await {
            Ok(res) => res.text().await.ok(),
            Err(_) => None,
        };
        let Some(page) = page else {
            unread += 1;
            places = None;
            continue;
        };
        for (reason, count) in by_label(&page, "stock_bridge_disconnects_total", "reason") {
            *by_reason.entry(reason).or_default() += count;
        }
        for (outcome, count) in by_label(&page, "stock_bridge_catch_ups_total", "outcome") {
            *catch_ups.entry(outcome).or_default() += count;
        }
        places = places.zip(gauge(&page, "stock_bridge_max_connections")).map(|(a, b)| a + b);
    }
    let mut text: Vec<String> = by_reason.into_iter().map(|(r, n)| format!("{r} {n}")).collect();
    if unread > 0 {
        text.push(format!("{unread} node(s) did not answer"));
    }
    let catch_ups: Vec<String> = catch_ups.into_iter().map(|(o, n)| format!("{o} {n}")).collect();
    Survivors {
        ended: if text.is_empty() { "none".to_owned() } else { text.join(", ") },
        catch_ups: if catch_ups.is_empty() { "none".to_owned() } else { catch_ups.join(", ") },
        places,
    }
}

/// The `name{label="…"} N` lines of a metrics page, as (label value, N).
fn by_label(page: &str, name: &str, label: &str) -> Vec<(String, u64)> {
    let start = format!("{name}{{");
    let key = format!("{label}=\"");
    page.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(start.as_str())?;
            let value = rest.split(key.as_str()).nth(1)?.split('"').next()?;
            let count = line.rsplit(' ').next()?.parse::<f64>().ok()?;
            Some((value.to_owned(), count as u64))
        })
        .collect()
}

/// An unlabelled gauge's value on a metrics page.
fn gauge(page: &str, name: &str) -> Option<u64> {
    page.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok().map(|v| v as u64))
}

/// What a kill-a-node run measured.
#[derive(Debug, Default)]
pub(crate) struct KillOutcome {
    pub(crate) connected: usize,
    /// The clients' counts at the end (`lost`: connections lost when the node died).
    pub(crate) counts: TallyCounts,
    /// Seconds from the kill until the last of them was open again on another node.
    pub(crate) back_after_s: Option<f64>,
    /// Seconds from the kill until the last client had every product's latest value.
    pub(crate) complete_after_s: Option<f64>,
    /// Clients without every product's latest value at the end, and what they miss.
    pub(crate) incomplete: u64,
    pub(crate) gaps: Gaps,
    /// Live deliveries' latency (the catch-up is not counted in it).
    pub(crate) p99_ms: f64,
    pub(crate) rss_peak_kib: u64,
    /// Posts answered 503 (and posted again).
    pub(crate) refused_posts: u64,
    /// What the surviving nodes' `/metrics` said at the end.
    pub(crate) survivors: Survivors,
}

/// Times a post answered 503 is tried.
const POST_TRIES: usize = 40;

/// Runs `case` on `server` (a cluster), killing its last node halfway through the events.
pub(crate) async fn run_kill(
    server: &mut crate::server::Server,
    case: crate::args::Case,
) -> Result<KillOutcome, String> {
    let tally = Arc::new(Tally::default());
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(case.clients.max(1));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let mut generators = Vec::new();
    let epoch = crate::generator::epoch();
    let sizes = crate::generator::sizes(case);
    if let Some(sizes) = &sizes {
        for &these in sizes {
            let counts = crate::generator::Counts {
                ready: ready_tx.clone(),
                received: Arc::new(AtomicU64::new(0)),
                tally: Some(tally.clone()),
            };
            let work = (Some(case.events), crate::load::Reading::AtOnce);
            generators.push(crate::generator::Child::start(&server.addrs, these, epoch, work, counts)?);
        }
    } else {
        for i in 0..case.clients {
            let client = failover_client(
                server.addrs.clone(),
                i,
                case.events,
                tally.clone(),
                ready_tx.clone(),
                stop_rx.clone(),
                None,
            );
            tasks.push(tokio::spawn(async move { vec![client.await] }));
            if i % 200 == 199 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    drop(ready_tx);
    let connected = crate::load::wait_connected(&mut ready_rx, case.clients).await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().map_err(|e| e.to_string())?;
    let url = format!("http://{}/broadcast", server.addrs[0]);
    let interval = Duration::from_secs_f64(1.0 / case.rate.max(0.001));
    let started = Instant::now();
    let mut sent_at = Vec::with_capacity(case.events);
    let mut posts = tokio::task::JoinSet::new();
    let refused = Arc::new(AtomicU64::new(0));
    let mut watcher = None;
    let recovery = Arc::new(std::sync::Mutex::new(Recovery::default()));
    let mut rss_peak = server.rss_kib();
    // The clients that start on the last node (they start round the list).
    let nodes = server.addrs.len();
    let on_last = |clients: usize| (0..clients).filter(|i| i % nodes == nodes - 1).count() as u64;
    // Each generator counts its clients from 0; clients run here are counted as one group.
    let expected_lost: u64 = sizes.unwrap_or_else(|| vec![case.clients]).into_iter().map(on_last).sum();
    for seq in 0..case.events {
        if seq == case.events / 2 {
            let killed_at = Instant::now();
            server.kill_last().await;
            let watching = watch_recovery(tally.clone(), killed_at, expected_lost, connected as u64, recovery.clone());
            watcher = Some(tokio::spawn(watching));
        }
        tokio::time::sleep_until((started + interval * seq as u32).into()).await;
        sent_at.push(Instant::now());
        let (http, url, refused) = (http.clone(), url.clone(), refused.clone());
        posts.spawn(async move {
            // A node busy with the crowd moving in may answer 503 (it could not reach
            // Redis in time): the back office posts again, and so does this run.
            for _ in 0..POST_TRIES {
                let request =
                    http.post(&url).header("content-type", "application/json").body(crate::load::body_of(seq));
                match request.send().await {
                    Ok(res) if res.status().is_success() => return Ok(()),
                    Ok(res) if res.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                        refused.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    Ok(res) => return Err(format!("POST answered {}", res.status())),
                    Err(e) => return Err(format!("POST failed: {e}")),
                }
            }
            Err(format!("POST answered 503 {POST_TRIES} times"))
        });
        rss_peak = rss_peak.max(server.rss_kib());
    }
    while let Some(done) = posts.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    let mut outcome = KillOutcome { connected, ..KillOutcome::default() };
    if let Some(watcher) = watcher {
        let settle = tokio::time::timeout(Duration::from_secs(120), watcher);
        tokio::pin!(settle);
        loop {
            tokio::select! {
                _ = &mut settle => break,
                _ = tokio::time::sleep(Duration::from_millis(200)) => rss_peak = rss_peak.max(server.rss_kib()),
            }
        }
    }
    let reached = *recovery.lock().unwrap_or_else(|e| e.into_inner());
    (outcome.back_after_s, outcome.complete_after_s) = (reached.back, reached.complete);
    outcome.rss_peak_kib = rss_peak;
    outcome.refused_posts = refused.load(Ordering::Relaxed);
    outcome.survivors = survivors(&http, &server.addrs[..nodes - 1]).await;
    let _ = stop_tx.send(true);
    for generator in generators {
        let readings = generator.finish().await;
        tasks.push(tokio::spawn(async move { readings }));
    }
    let mut latencies = Vec::new();
    for got in futures_util::future::join_all(tasks).await.into_iter().flat_map(Result::unwrap_or_default) {
        for (seq, at) in got {
            if let Some(sent) = sent_at.get(seq as usize) {
                latencies.push(at.saturating_duration_since(*sent).as_secs_f64() * 1e3);
            }
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    outcome.p99_ms = crate::load::percentile(&latencies, 0.99);
    // Once every client has stopped: the children's last counts and what their clients
    // miss come with their readings (stopping counts nothing as lost or complete).
    outcome.counts = tally.snapshot();
    outcome.incomplete = (connected as u64).saturating_sub(outcome.counts.complete);
    outcome.gaps = tally.gaps.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(outcome)
}
