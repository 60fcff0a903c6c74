//! One till as the fleet keeps it ([`TillRecord`]), its timeline entries, and the view
//! support staff read: counts, filters and the "needs attention first" order
//! ([`FleetQuery`], [`FleetPage`]). Pure: no I/O, no clock but the one given.

use chrono::{DateTime, Duration as Span, Utc};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use stock_protocol::{EndReason, FleetStatus, TillApp, TillIdentity, TillReport};

/// An offline till whose connection ended this recently is shown as reconnecting.
pub const RECONNECT_GRACE: Span = Span::seconds(60);
/// A till whose last delivered sequence is this far behind the latest counts as lagging.
pub const LAGGING_BEHIND: u64 = 100;
/// State changes kept per till.
pub const TIMELINE_MAX: usize = 100;

/// One till: who it is, where it stands, what it and the bridge last said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TillRecord {
    /// The till id, or `sid:<socket id>` for a client that did not say who it is.
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Box<TillIdentity>>,
    /// The verified user (when client authentication is on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The bridge node it is (or was last) connected to.
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    pub status: FleetStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    /// The refusal code of its last refused handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_since: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_since: Option<DateTime<Utc>>,
    pub last_seen: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Box<TillReport>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_at: Option<DateTime<Utc>>,
    /// Events delivered to its current (or last) connection.
    #[serde(default)]
    pub deliveries: u64,
    /// Bytes queued for it and not yet written (while online).
    #[serde(default)]
    pub queued_bytes: u64,
    /// How far the last sequence delivered to it is behind the latest.
    #[serde(default)]
    pub behind: u64,
    #[serde(default)]
    pub cuts: u32,
    #[serde(default)]
    pub refusals: u32,
    #[serde(default)]
    pub connections: u32,
}

/// One state change of a till.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub status: FleetStatus,
    /// What happened, in words (the end reason's text, the refusal, the node).
    pub detail: String,
}

/// How a till is counted and shown: its status, with an offline till that ended moments
/// ago shown as reconnecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shown {
    Online,
    Connecting,
    Offline,
    Refused,
    Cut,
}

impl Shown {
    pub const ALL: [Shown; 5] = [Shown::Online, Shown::Connecting, Shown::Offline, Shown::Refused, Shown::Cut];

    pub fn as_str(self) -> &'static str {
        match self {
            Shown::Online => "online",
            Shown::Connecting => "connecting",
            Shown::Offline => "offline",
            Shown::Refused => "refused",
            Shown::Cut => "cut",
        }
    }

    pub fn parse(s: &str) -> Option<Shown> {
        Shown::ALL.into_iter().find(|shown| shown.as_str() == s)
    }
}

impl TillRecord {
    /// A till seen for the first time, at `now`, on `node`.
    pub fn new(key: String, identity: Option<TillIdentity>, node: &str, now: DateTime<Utc>) -> Self {
        TillRecord {
            key,
            identity: identity.map(Box::new),
            user: None,
            source: None,
            node: node.to_owned(),
            transport: None,
            status: FleetStatus::Offline,
            end_reason: None,
            refusal_code: None,
            connected_since: None,
            offline_since: Some(now),
            last_seen: now,
            report: None,
            report_at: None,
            deliveries: 0,
            queued_bytes: 0,
            behind: 0,
            cuts: 0,
            refusals: 0,
            connections: 0,
        }
    }

    pub fn is_identified(&self) -> bool {
        self.identity.is_some()
    }

    pub fn name(&self) -> &str {
        self.identity.as_ref().map_or("", |i| i.name.as_str())
    }

    pub fn version(&self) -> &str {
        self.identity.as_ref().map_or("", |i| i.version.as_str())
    }

    pub fn app(&self) -> Option<TillApp> {
        self.identity.as_ref().map(|i| i.app)
    }

    /// How it is counted and shown at `now`.
    pub fn shown(&self, now: DateTime<Utc>) -> Shown {
        match self.status {
            FleetStatus::Online => Shown::Online,
            FleetStatus::Refused => Shown::Refused,
            FleetStatus::Cut if self.ended_within(now) => Shown::Connecting,
            FleetStatus::Cut => Shown::Cut,
            FleetStatus::Offline if self.ended_within(now) && self.end_reason != Some(EndReason::TransportClosed) => {
                Shown::Connecting
            }
            FleetStatus::Offline => Shown::Offline,
        }
    }

    fn ended_within(&self, now: DateTime<Utc>) -> bool {
        self.offline_since.is_some_and(|since| now - since < RECONNECT_GRACE)
    }

    pub fn is_lagging(&self) -> bool {
        self.status == FleetStatus::Online && self.behind >= LAGGING_BEHIND
    }

    /// True when `query`'s text is in its name, user, id or key (any case).
    fn matches_text(&self, text: &str) -> bool {
        let text = text.to_lowercase();
        [self.name(), self.user.as_deref().unwrap_or(""), self.key.as_str()]
            .iter()
            .any(|field| field.to_lowercase().contains(&text))
    }
}

/// Compares two versions the way people number releases (`0.10.0` after `0.9.2`); parts
/// that are not numbers compare as text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let mut a = a.split(['.', '-', '+']);
    let mut b = b.split(['.', '-', '+']);
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    _ => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// What support asks for: a page of tills, filtered.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FleetQuery {
    /// `online`, `connecting`, `offline`, `refused` or `cut`.
    pub state: Option<String>,
    /// Exactly this version, or `old` for every till on an older version than the newest seen.
    pub version: Option<String>,
    /// Text in the name, user or id.
    pub q: Option<String>,
    pub page: Option<usize>,
    pub per_page: Option<usize>,
}

/// Tills per page unless asked; and at most.
pub const PER_PAGE: usize = 100;
pub const PER_PAGE_MAX: usize = 1000;

/// The counts at the top of the page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FleetCounts {
    pub total: usize,
    pub online: usize,
    pub connecting: usize,
    pub offline: usize,
    pub refused: usize,
    pub cut: usize,
    pub lagging: usize,
    pub old_version: usize,
    pub unidentified: usize,
}

/// One till as the API shows it: the record, how it is shown now, and its flags.
#[derive(Debug, Clone, Serialize)]
pub struct TillView<'a> {
    #[serde(flatten)]
    pub record: &'a TillRecord,
    pub shown: Shown,
    pub lagging: bool,
    pub old_version: bool,
    /// The end reason in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_text: Option<&'static str>,
}

/// A page of the fleet, "needs attention first".
#[derive(Debug, Clone, Serialize)]
pub struct FleetPage<'a> {
    pub counts: FleetCounts,
    /// The newest version any till runs (others count as old).
    pub latest_version: Option<String>,
    /// Tills matching the query.
    pub matching: usize,
    pub page: usize,
    pub per_page: usize,
    pub tills: Vec<TillView<'a>>,
}

/// The newest version among `records`.
pub fn latest_version<'a>(records: impl Iterator<Item = &'a TillRecord>) -> Option<String> {
    records.map(TillRecord::version).filter(|v| !v.is_empty()).max_by(|a, b| compare_versions(a, b)).map(str::to_owned)
}

fn view<'a>(record: &'a TillRecord, now: DateTime<Utc>, latest: Option<&str>) -> TillView<'a> {
    let old_version = latest.is_some_and(|latest| {
        let version = record.version();
        !version.is_empty() && compare_versions(version, latest) == Ordering::Less
    });
    TillView {
        record,
        shown: record.shown(now),
        lagging: record.is_lagging(),
        old_version,
        end_text: (record.status != FleetStatus::Online).then(|| record.end_reason.map(EndReason::text)).flatten(),
    }
}

/// Where a till goes in "needs attention first": offline longest first, then refused, cut,
/// reconnecting, lagging, old versions, then the rest by name.
fn attention_rank(view: &TillView<'_>) -> u8 {
    match view.shown {
        Shown::Offline => 0,
        Shown::Refused => 1,
        Shown::Cut => 2,
        Shown::Connecting => 3,
        Shown::Online if view.lagging => 4,
        Shown::Online if view.old_version => 5,
        Shown::Online => 6,
    }
}

/// What "needs attention first" sorts by: the rank, then offline longest first, then the
/// name (any case) and the key. Built once per till, not once per comparison.
fn attention_key(view: &TillView<'_>) -> (u8, Option<DateTime<Utc>>, String, String) {
    (attention_rank(view), view.record.offline_since, view.record.name().to_lowercase(), view.record.key.clone())
}

/// The page `query` asks for among `records`, at `now`.
pub fn page<'a>(
    records: impl Iterator<Item = &'a TillRecord> + Clone,
    query: &FleetQuery,
    now: DateTime<Utc>,
) -> FleetPage<'a> {
    let latest = latest_version(records.clone());
    let mut counts = FleetCounts::default();
    let state = query.state.as_deref().and_then(Shown::parse);
    let text = query.q.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let mut matching: Vec<TillView<'a>> = Vec::new();
    for record in records {
        let view = view(record, now, latest.as_deref());
        counts.total += 1;
        match view.shown {
            Shown::Online => counts.online += 1,
            Shown::Connecting => counts.connecting += 1,
            Shown::Offline => counts.offline += 1,
            Shown::Refused => counts.refused += 1,
            Shown::Cut => counts.cut += 1,
        }
        counts.lagging += usize::from(view.lagging);
        counts.old_version += usize::from(view.old_version);
        counts.unidentified += usize::from(!record.is_identified());
        let wanted = state.is_none_or(|s| s == view.shown)
            && match query.version.as_deref() {
                None | Some("") => true,
                Some("old") => view.old_version,
                Some(version) => record.version() == version,
            }
            && text.is_none_or(|t| record.matches_text(t));
        if wanted {
            matching.push(view);
        }
    }
    matching.sort_by_cached_key(attention_key);
    let per_page = query.per_page.unwrap_or(PER_PAGE).clamp(1, PER_PAGE_MAX);
    let page = query.page.unwrap_or(1).max(1);
    let total = matching.len();
    let tills: Vec<TillView<'a>> = matching.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    FleetPage { counts, latest_version: latest, matching: total, page, per_page, tills }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn till(key: &str, name: &str, version: &str, status: FleetStatus, offline_since: Option<&str>) -> TillRecord {
        let identity = TillIdentity {
            till_id: key.into(),
            name: name.into(),
            app: TillApp::Desktop,
            version: version.into(),
            os: "linux".into(),
        };
        TillRecord {
            status,
            offline_since: offline_since.map(at),
            ..TillRecord::new(key.into(), Some(identity), "node-a", at("2026-12-06T08:00:00Z"))
        }
    }

    #[test]
    fn versions_compare_as_numbers() {
        assert_eq!(compare_versions("0.10.0", "0.9.2"), Ordering::Greater);
        assert_eq!(compare_versions("0.1.0", "0.1.0"), Ordering::Equal);
        assert_eq!(compare_versions("1.2", "1.2.1"), Ordering::Less);
    }

    #[test]
    fn needs_attention_comes_first_and_offline_longest_first() {
        let now = at("2026-12-06T10:00:00Z");
        let mut lagging = till("lag", "Lagging", "0.2.0", FleetStatus::Online, None);
        lagging.behind = 500;
        let records = [
            till("ok", "Banani", "0.2.0", FleetStatus::Online, None),
            till("old", "Old one", "0.1.0", FleetStatus::Online, None),
            lagging,
            till("cut", "Cut", "0.2.0", FleetStatus::Cut, Some("2026-12-06T09:00:00Z")),
            till("refused", "Refused", "0.2.0", FleetStatus::Refused, Some("2026-12-06T09:30:00Z")),
            till("off-recent", "Recent", "0.2.0", FleetStatus::Offline, Some("2026-12-06T09:50:00Z")),
            till("off-long", "Long", "0.2.0", FleetStatus::Offline, Some("2026-12-05T10:00:00Z")),
            till("again", "Reconnecting", "0.2.0", FleetStatus::Offline, Some("2026-12-06T09:59:50Z")),
        ];
        let page = page(records.iter(), &FleetQuery::default(), now);
        let order: Vec<&str> = page.tills.iter().map(|v| v.record.key.as_str()).collect();
        assert_eq!(order, ["off-long", "off-recent", "refused", "cut", "again", "lag", "old", "ok"]);
        assert_eq!(page.counts.online, 3);
        assert_eq!(page.counts.offline, 2);
        assert_eq!(page.counts.connecting, 1);
        assert_eq!((page.counts.refused, page.counts.cut, page.counts.lagging, page.counts.old_version), (1, 1, 1, 1));
        assert_eq!(page.latest_version.as_deref(), Some("0.2.0"));
    }

    #[test]
    fn filters_by_state_version_and_text_and_pages() {
        let now = at("2026-12-06T10:00:00Z");
        let records: Vec<TillRecord> = (0..250)
            .map(|i| {
                let status = if i % 2 == 0 { FleetStatus::Online } else { FleetStatus::Offline };
                let since = (status == FleetStatus::Offline).then_some("2026-12-05T00:00:00Z");
                till(
                    &format!("t{i:03}"),
                    &format!("Counter {i}"),
                    if i < 10 { "0.1.0" } else { "0.2.0" },
                    status,
                    since,
                )
            })
            .collect();
        let q = |state: Option<&str>, version: Option<&str>, q: Option<&str>, page: usize| FleetQuery {
            state: state.map(Into::into),
            version: version.map(Into::into),
            q: q.map(Into::into),
            page: Some(page),
            per_page: Some(100),
        };
        let online = page(records.iter(), &q(Some("online"), None, None, 1), now);
        assert_eq!((online.matching, online.tills.len()), (125, 100));
        let second = page(records.iter(), &q(Some("online"), None, None, 2), now);
        assert_eq!(second.tills.len(), 25);
        assert_eq!(page(records.iter(), &q(None, Some("old"), None, 1), now).matching, 10);
        assert_eq!(page(records.iter(), &q(None, Some("0.2.0"), None, 1), now).matching, 240);
        let found = page(records.iter(), &q(None, None, Some("COUNTER 12"), 1), now);
        let keys: Vec<&str> = found.tills.iter().map(|v| v.record.key.as_str()).collect();
        assert_eq!(keys.len(), 11, "12 and 120-129: {keys:?}");
        assert_eq!(page(records.iter(), &q(None, None, Some("t007"), 1), now).matching, 1, "by id");
    }
}
