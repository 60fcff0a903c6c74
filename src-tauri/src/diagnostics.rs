//! What support staff read about this till: [`Diagnostics`], shown in the Diagnostics
//! panel, copied by its Copy button ([`text`]), and sent to support through the bridge
//! when they ask for it from the fleet view. One builder for all three: no token, no
//! password.

use crate::feed::Feed;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use serde::Serialize;
use stock_client::dashboard::GapNotice;
use stock_client::{StateChange, StatsSnapshot, User};

/// For support staff: no token, no password.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostics {
    pub app_version: String,
    /// This till in the fleet view: read it out on the phone.
    pub till_id: String,
    pub till_name: String,
    pub api_base_url: String,
    pub socket_url: String,
    pub user: Option<User>,
    pub state: StateChange,
    pub history: Vec<StateChange>,
    pub gap: Option<GapNotice>,
    pub counters: Option<StatsSnapshot>,
    pub events_shown: u64,
    pub last_event_at: Option<DateTime<Utc>>,
    pub last_event_age_secs: Option<i64>,
    /// Updates: this version, what was found, the last problem.
    pub update: stock_client::update::UpdateView,
    pub generated_at: DateTime<Utc>,
}

/// The diagnostics of `state` now.
pub async fn collect(state: &AppState) -> Diagnostics {
    let settings = state.settings();
    let view = state.view();
    let counters = state.feed.lock().await.as_ref().and_then(Feed::stats);
    let now = Utc::now();
    Diagnostics {
        app_version: state.version.clone(),
        till_id: state.till_id().to_owned(),
        till_name: settings.till_name,
        api_base_url: settings.api_base_url,
        socket_url: settings.socket_url,
        user: state.session().and_then(|s| s.user),
        state: view.state,
        history: view.history,
        gap: view.gap,
        counters,
        events_shown: view.events_received,
        last_event_at: view.last_event_at,
        last_event_age_secs: view.last_event_at.map(|t| (now - t).num_seconds()),
        update: state.update_view(),
        generated_at: now,
    }
}

/// The text the Copy button gives (`JSON.stringify(diagnostics, null, 2)` in the page: the
/// same JSON, indented by two spaces).
pub fn text(diagnostics: &Diagnostics) -> String {
    serde_json::to_string_pretty(diagnostics).unwrap_or_default()
}
