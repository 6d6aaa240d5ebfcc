//! `/metrics`: the store's state in the Prometheus text format (0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use orbwatch_store::Store;

use crate::AppState;
use crate::error::ApiError;

/// The counters of the daemon `serve` runs inside (`watch --listen`), as
/// Prometheus text the daemon renders itself at each commit: the daemon
/// knows its counters, the server only hands them on, so neither depends
/// on the other's types. Empty until the daemon's first commit.
#[derive(Debug, Default)]
pub struct LiveMetrics {
    text: std::sync::Mutex<String>,
}

impl LiveMetrics {
    /// Replace the text (complete `# HELP`/`# TYPE` blocks and samples).
    pub fn set(&self, text: String) {
        if let Ok(mut t) = self.text.lock() {
            *t = text;
        }
    }

    /// The text last set.
    pub fn get(&self) -> String {
        self.text.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

/// A label value with `\`, `"` and newlines escaped.
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics text of a store.
pub fn render(store: &Store) -> Result<String, ApiError> {
    // One GROUP BY over an index (the triage state is kept on each row),
    // not a decode of every finding at each scrape.
    let mut by: BTreeMap<(String, String, bool), u64> = BTreeMap::new();
    for c in store.finding_counts()? {
        let sev = c.severity.unwrap_or_else(|| "none".into());
        *by.entry((c.kind, sev, c.status.suppresses())).or_default() += c.count;
    }
    let mut out = String::new();
    out.push_str("# HELP orbwatch_findings Findings in the store (latest copy of each id), by kind, severity and whether triage dismissed them.\n# TYPE orbwatch_findings gauge\n");
    for ((kind, sev, suppressed), n) in &by {
        let _ = writeln!(
            out,
            "orbwatch_findings{{kind=\"{}\",severity=\"{}\",suppressed=\"{suppressed}\"}} {n}",
            label(kind),
            label(sev)
        );
    }
    let feeds = store.list_feeds()?;
    let _ = writeln!(
        out,
        "# HELP orbwatch_feeds Feeds in the store.\n# TYPE orbwatch_feeds gauge\norbwatch_feeds {}",
        feeds.len()
    );
    out.push_str("# HELP orbwatch_feed_indicators Present indicators of a feed, by kind.\n# TYPE orbwatch_feed_indicators gauge\n");
    for f in &feeds {
        for (kind, n) in &f.counts {
            let _ = writeln!(
                out,
                "orbwatch_feed_indicators{{feed=\"{}\",kind=\"{}\"}} {n}",
                label(&f.name),
                label(kind)
            );
        }
    }
    let hunts = store.hunts()?;
    let _ = writeln!(
        out,
        "# HELP orbwatch_hunts Hunts kept in the store.\n# TYPE orbwatch_hunts gauge\norbwatch_hunts {}",
        hunts.len()
    );
    Ok(out)
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut text = state.with_reader(render).await?;
    if let Some(live) = &state.live {
        text.push_str(&live.get());
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response())
}
