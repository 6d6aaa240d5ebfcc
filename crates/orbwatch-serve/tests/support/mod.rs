//! The test server both `server.rs` and `upload.rs` start:
//! `orbwatch_serve::serve` on 127.0.0.1 with an ephemeral port and a
//! temporary store in a temporary folder (which is also where uploads are
//! spooled).

#![allow(dead_code)] // each test binary uses part of it

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use orbwatch_detect::Finding;
use orbwatch_serve::api::UPLOAD_SPOOL_PREFIX;
use orbwatch_serve::{AppState, ServeConfig};
use orbwatch_store::{Store, TokenScope};

pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    pub db: PathBuf,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A second connection to the store, as `orbwatch token` would open.
    pub fn store(&self) -> Store {
        Store::open(&self.db).unwrap()
    }

    pub fn token(&self, name: &str, scope: TokenScope) -> String {
        self.store().create_token(name, scope).unwrap().1
    }

    pub fn admin(&self) -> String {
        self.token("ops", TokenScope::Admin)
    }

    /// The upload spool files now in the store's folder.
    pub fn spool_files(&self) -> Vec<String> {
        spool_files(self.dir.path())
    }

    /// Stop gracefully and wait for the server's task to end.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

/// The upload spool files in `dir`.
pub fn spool_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(UPLOAD_SPOOL_PREFIX))
        .collect()
}

/// Start a server whose store `setup` filled; `config` is TOML with
/// `{dir}` replaced by the temporary folder.
pub async fn start(config: &str, setup: impl FnOnce(&mut Store, &Path)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut store = Store::open(&db).unwrap();
    setup(&mut store, dir.path());
    let text = config.replace("{dir}", &dir.path().display().to_string());
    let cfg = ServeConfig::parse(&text, Path::new("test.toml")).unwrap();
    let state = AppState::new(store, cfg).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let kept = state.clone();
    let task = tokio::spawn(orbwatch_serve::serve(listener, state, async move {
        let _ = rx.await;
    }));
    Server {
        addr,
        state: kept,
        db,
        dir,
        stop: Some(tx),
        task: Some(task),
    }
}

/// An IOC match of `indicator` with `peer`, its evidence hostile (a
/// script tag and an RLO character).
pub fn finding(id: &str, indicator: &str, peer: &str, severity: &str, score: u8) -> Finding {
    serde_json::from_value(serde_json::json!({
        "id": id, "kind": "ioc_match", "first_seen": "2021-03-02T00:00:00Z",
        "last_seen": "2021-03-02T01:00:00Z", "count": 2,
        "src_ip": indicator, "dst_ip": peer, "peer": peer, "indicator": indicator,
        "indicator_type": "ipv4", "feed": "certfr", "direction": "inbound",
        "in_validity_window": true, "confidence": 80, "severity": severity, "score": score,
        "valid_from": null, "valid_until": null, "matched_value": indicator,
        "matched_field": "src_ip",
        "evidence": [{"file": "auth.log", "line": 3, "format": "syslog",
                      "raw": "<script>alert(1)</script> \u{202e}gnp.exe"}],
        "evidence_total": 1
    }))
    .unwrap()
}
