//! The page's wire format: what the page receives from `next_updates` (one [`PageUpdate`]
//! per change, tagged by `type`). The other answers (`dashboard`, `current_session`,
//! `diagnostics`) serialize their Rust types as they are. The tests at the end of this file write
//! a sample of each to `tests/node/page-samples.json`, which the browser tests' stand-in
//! answers with, so the page and these types cannot drift apart unnoticed.

use serde::Serialize;
use serde_json::Value;
use stock_client::StateChange;
use stock_client::dashboard::{Change, GapNotice, ProductRow};

/// One change, as the page receives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PageUpdate {
    State(StateChange),
    Stock(ProductRow),
    SaleMode {
        data: Value,
    },
    Gap(GapNotice),
    GapClosed,
    /// The session ended: the page shows `message` on the login screen.
    Unauthorized {
        message: String,
    },
    /// Where updating stands (the banner's offer, Diagnostics).
    Update(stock_client::update::UpdateView),
}

impl From<Change> for PageUpdate {
    fn from(change: Change) -> Self {
        match change {
            Change::State(s) => PageUpdate::State(s),
            Change::Stock(row) => PageUpdate::Stock(row),
            Change::SaleMode(data) => PageUpdate::SaleMode { data },
            Change::Gap(gap) => PageUpdate::Gap(gap),
            Change::GapClosed => PageUpdate::GapClosed,
            Change::SessionEnded(code) => {
                PageUpdate::Unauthorized { message: stock_client::session_ended_text(code).to_owned() }
            }
        }
    }
}

impl PageUpdate {
    /// The product a stock update is about (a newer one replaces it in a queued batch).
    pub fn product_id(&self) -> Option<i64> {
        match self {
            PageUpdate::Stock(row) => Some(row.product_id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The page contract: one sample of every answer the page reads, written by these
    //! types. `tests/node/page-samples.json` is checked in; the browser tests' stand-in
    //! answers with it and checks the page's own tables against it.

    use super::*;
    use crate::commands::{RememberView, SessionView};
    use crate::diagnostics::Diagnostics;
    use crate::error::{CommandError, ErrorKind};
    use crate::outlet::Batch;
    use crate::settings::Settings;
    use chrono::{DateTime, Utc};
    use serde_json::json;
    use stock_client::dashboard::DashboardView;
    use stock_client::update::{UpdateError, UpdateProblem, UpdateStatus, UpdateStep, UpdateView};
    use stock_client::{StatsSnapshot, User};
    use stock_protocol::{ConnectionState, RefusalCode};

    const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/node/page-samples.json");

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn samples() -> Value {
        let settings = Settings {
            api_base_url: "http://127.0.0.1:3001".into(),
            socket_url: "http://127.0.0.1:3001".into(),
            ca_file: None,
            allow_unencrypted: false,
            close_to_tray: true,
            notifications: true,
            till_name: String::new(),
            update_url: String::new(),
        };
        let user = User { id: "1".into(), name: Some("Demo Operator".into()) };
        let connected = StateChange {
            state: ConnectionState::Connected,
            reason: None,
            since: at("2026-01-01T09:00:00Z"),
            attempt: 0,
        };
        let offline = StateChange {
            state: ConnectionState::Offline,
            reason: Some("server closed the connection".into()),
            since: at("2026-01-01T08:59:00Z"),
            attempt: 2,
        };
        let row = ProductRow {
            product_id: 5486,
            name: Some("Napa 500 mg".into()),
            in_stock: 12,
            discount_price: 95.5,
            peak_hour_price: 110.0,
            mediboy_offer_price: 90.25,
            sync_at: "2026-01-01T09:00:05Z".into(),
            seq: Some(42),
            received_at: at("2026-01-01T09:00:05.120Z"),
        };
        let gap =
            GapNotice { since: at("2026-01-01T08:59:00Z"), reason: "the server cannot replay missed updates".into() };
        let view = DashboardView {
            state: connected.clone(),
            history: vec![offline.clone(), connected.clone()],
            latest: Some(row.clone()),
            products: vec![row.clone()],
            sale_mode: Some(json!({"mode": "peak_hour"})),
            gap: Some(gap.clone()),
            events_received: 1,
            last_event_at: Some(row.received_at),
            last_known: None,
        };
        let update = |status| UpdateView {
            current_version: "0.1.0".into(),
            status,
            last_checked: Some(at("2026-01-01T08:00:00Z")),
            problem: None,
        };
        let update_ready = update(UpdateStatus::Ready { version: "0.1.1".into(), notes: Some("Faster start".into()) });
        let update_problem = UpdateView {
            problem: Some(UpdateProblem {
                step: UpdateStep::Signature,
                version: Some("0.1.1".into()),
                message: UpdateError::Signature("signature verification failed".into()).to_string(),
                at: at("2026-01-01T08:00:01Z"),
            }),
            ..update(UpdateStatus::Idle)
        };
        let update_views = json!({
            "off": UpdateView::off("0.1.0"),
            "idle": update(UpdateStatus::Idle),
            "checking": update(UpdateStatus::Checking),
            "downloading": update(UpdateStatus::Downloading { version: "0.1.1".into(), received: 3_500_000, total: Some(7_000_000) }),
            "downloading_unknown_size": update(UpdateStatus::Downloading { version: "0.1.1".into(), received: 2_500_000, total: None }),
            "ready": update_ready.clone(),
            "deferred": update(UpdateStatus::Deferred { version: "0.1.1".into() }),
            "installing": update(UpdateStatus::Installing { version: "0.1.1".into() }),
            "refused": update_problem.clone(),
        });
        let batch = Batch {
            updates: vec![
                PageUpdate::State(offline.clone()),
                PageUpdate::Stock(row.clone()),
                PageUpdate::SaleMode { data: json!({"mode": "peak_hour"}) },
                PageUpdate::Gap(gap.clone()),
                PageUpdate::GapClosed,
                Change::SessionEnded(RefusalCode::TokenExpired).into(),
                PageUpdate::Update(update_ready.clone()),
            ],
            resync: false,
        };
        let diagnostics = Diagnostics {
            app_version: "0.0.0".into(),
            till_id: "5f0c0ffee5f0c0ffee5f0c0ffee5f0c0".into(),
            till_name: "Dhanmondi, counter 2".into(),
            api_base_url: settings.api_base_url.clone(),
            socket_url: settings.socket_url.clone(),
            user: Some(user.clone()),
            state: connected.clone(),
            history: vec![offline, connected],
            gap: Some(gap),
            counters: Some(StatsSnapshot {
                attempts: 3,
                events_received: 1,
                events_dropped: 0,
                malformed: 0,
                duplicates_skipped: 0,
                probes_answered: 4,
                last_event_at: Some(row.received_at),
            }),
            events_shown: 1,
            last_event_at: Some(row.received_at),
            last_event_age_secs: Some(3),
            update: update_problem,
            generated_at: at("2026-01-01T09:00:08Z"),
        };
        json!({
            "error_kinds": ErrorKind::ALL,
            "command_error": CommandError::new(ErrorKind::WrongCredentials, "wrong email or password"),
            "settings": settings,
            "session": SessionView {
                logged_in: true,
                user: Some(user),
                settings: settings.clone(),
                remember: RememberView { available: true, reason: None },
                unencrypted: false,
                watched: vec![5486],
            },
            "dashboard": view,
            "batch": batch,
            "diagnostics": diagnostics,
            "update_views": update_views,
            "update_actions": crate::updates::UpdateAction::ALL,
        })
    }

    /// Fails when the page's samples are not what these types serialize to; run with
    /// `UPDATE_PAGE_SAMPLES=1` to rewrite them (then the browser tests show what the page
    /// must learn).
    #[test]
    fn the_page_samples_are_what_the_app_sends() {
        let ours = serde_json::to_string_pretty(&samples()).unwrap() + "\n";
        if std::env::var_os("UPDATE_PAGE_SAMPLES").is_some() {
            std::fs::write(SAMPLES, &ours).unwrap();
        }
        let theirs = std::fs::read_to_string(SAMPLES).unwrap_or_default();
        assert!(
            theirs == ours,
            "tests/node/page-samples.json differs from what the app sends; rerun with UPDATE_PAGE_SAMPLES=1 \
             and make the page follow.\n--- app sends:\n{ours}"
        );
    }
}
