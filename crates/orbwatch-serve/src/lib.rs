//! `orbwatch serve`: the store's findings, triage, hunts, feeds and
//! blocklists over HTTP, for analysts (JSON API), firewalls (External
//! Dynamic Lists) and monitoring (Prometheus).
//!
//! Secure by default:
//! - every route but `/healthz` needs a token (`Authorization: Bearer`;
//!   EDLs also take basic auth with the token as password, as Palo Alto
//!   and FortiGate send it), checked against the store on every request so
//!   that a revocation takes effect at once;
//! - routes are declared once, in [`routes()`], with the scope each needs:
//!   the router is built from that table and the tests walk it, so a new
//!   route cannot be left open by mistake;
//! - bodies are capped (413) and requests time out (408);
//! - without TLS the server binds only to loopback ([`check_listen`]).
//!
//! The store is used from blocking threads, never from the async reactor:
//! writes (triage, feed uploads) go through one connection behind a
//! mutex, reads through a small pool of read-only connections
//! ([`ReaderPool`]), so that list requests run side by side (SQLite in WAL
//! mode lets readers work while another reads or writes) instead of
//! queueing behind one lock.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::MethodRouter;
use orbwatch_store::{Store, TokenScope};
use tokio::net::TcpListener;

pub mod api;
pub mod auth;
pub mod config;
pub mod dashboard;
pub mod edl;
pub mod error;
pub mod extract;
pub mod metrics;

pub use config::{EdlList, ServeConfig};
pub use error::{ApiError, ServeError};
/// The TLS set-up [`tls_config`] gives and [`serve_tls`] takes.
pub use rustls::ServerConfig as TlsServerConfig;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The store's writing connection; lock it only inside
    /// `spawn_blocking` ([`AppState::with_store`]), and only to write.
    pub store: Arc<Mutex<Store>>,
    /// Read-only connections for everything else ([`AppState::with_reader`]).
    pub readers: Arc<ReaderPool>,
    /// The totals of the findings list, kept until the findings change.
    pub totals: Arc<api::TotalsCache>,
    pub config: Arc<ServeConfig>,
    /// The guard of each named EDL, built (allowlist files read) at start.
    pub guards: Arc<std::collections::BTreeMap<String, orbwatch_blocklist::Guard>>,
    /// The guard of `/api/v1/blocklist`: special ranges and the default
    /// allowlist.
    pub default_guard: Arc<orbwatch_blocklist::Guard>,
    /// Dashboard sessions and failed logins.
    pub sessions: Arc<dashboard::Sessions>,
    /// Served over TLS: session cookies get `Secure`.
    pub tls: bool,
    /// EDLs built, served again until the store changes.
    pub edl_cache: Arc<edl::EdlCache>,
    /// The counters of the `watch` daemon this server runs in, if any,
    /// appended to `/metrics`.
    pub live: Option<Arc<metrics::LiveMetrics>>,
    /// Where feed uploads are written while they arrive
    /// (`upload_spool_dir`, or the store's folder).
    pub spool_dir: Arc<std::path::PathBuf>,
    /// The store's file, for the connections long writes open of their
    /// own ([`AppState::with_own_writer`]).
    pub db_path: Arc<std::path::PathBuf>,
    /// Held by the upload being imported: uploads wait for each other (two
    /// imports of one feed at once would undo each other's staging), but
    /// not other writers.
    pub imports: Arc<Mutex<()>>,
}

impl AppState {
    /// Open the state: builds every EDL's guard, so that an unreadable
    /// allowlist stops the server at start rather than on a firewall's
    /// first pull.
    pub fn new(store: Store, config: ServeConfig) -> Result<AppState, ServeError> {
        let mut guards = std::collections::BTreeMap::new();
        for (name, list) in &config.edl {
            let mut g = orbwatch_blocklist::Guard::standard(
                &list.internal,
                &list.allowlist,
                list.default_allowlist,
            )
            .map_err(|source| ServeError::Guard {
                list: name.clone(),
                source,
            })?;
            g.finish();
            guards.insert(name.clone(), g);
        }
        let mut default_guard =
            orbwatch_blocklist::Guard::standard(&[], &[], true).map_err(|source| {
                ServeError::Guard {
                    list: "/api/v1/blocklist".into(),
                    source,
                }
            })?;
        default_guard.finish();
        let readers = ReaderPool::open(store.path(), ReaderPool::default_size())?;
        let spool_dir = match &config.upload_spool_dir {
            Some(dir) => dir.clone(),
            None => match store.path().parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => std::path::PathBuf::from("."),
            },
        };
        // Checked at start, not on the first upload hours later.
        if !spool_dir.is_dir() {
            return Err(ServeError::Spool {
                dir: spool_dir,
                reason: "it is not a folder that exists".into(),
            });
        }
        remove_stale_spool_files(
            &spool_dir,
            std::time::Duration::from_secs(config.upload_timeout_secs),
            std::time::SystemTime::now(),
        );
        Ok(AppState {
            readers: Arc::new(readers),
            totals: Arc::new(api::TotalsCache::default()),
            config: Arc::new(config),
            guards: Arc::new(guards),
            default_guard: Arc::new(default_guard),
            sessions: Arc::new(dashboard::Sessions::default()),
            tls: false,
            edl_cache: Arc::new(edl::EdlCache::default()),
            live: None,
            spool_dir: Arc::new(spool_dir),
            db_path: Arc::new(store.path().to_path_buf()),
            imports: Arc::new(Mutex::new(())),
            store: Arc::new(Mutex::new(store)),
        })
    }

    /// Serve inside a daemon: its counters (see [`metrics::LiveMetrics`])
    /// are appended to `/metrics`.
    pub fn with_live_metrics(mut self, live: Arc<metrics::LiveMetrics>) -> AppState {
        self.live = Some(live);
        self
    }

    /// Mark the state as served over TLS (cookies get `Secure`).
    pub fn with_tls(mut self) -> AppState {
        self.tls = true;
        self
    }

    /// Run `f` on a read-only connection of the store in a blocking
    /// thread, waiting for one to be free.
    pub async fn with_reader<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
    {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let lent = readers.take()?;
            f(&lent)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("store task failed: {e}")))?
    }

    /// Run `f` on a writing connection of its own, opened for it, in a
    /// blocking thread, one import at a time. For an upload's import: it
    /// commits in batches, and on the shared writer ([`AppState::with_store`])
    /// it held that lock for the whole import, so a triage posted during a
    /// large upload waited minutes for it. On its own connection, other
    /// writes get in between its batches (SQLite's lock, not ours).
    pub async fn with_own_writer<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, ApiError> + Send + 'static,
    {
        let path = self.db_path.clone();
        let imports = self.imports.clone();
        tokio::task::spawn_blocking(move || {
            let _one = imports
                .lock()
                .map_err(|_| ApiError::Internal("the imports' lock is poisoned".into()))?;
            let mut store = Store::open(path.as_path())?;
            f(&mut store)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("store task failed: {e}")))?
    }

    /// Run `f` on the store's writing connection in a blocking thread (one
    /// at a time).
    pub async fn with_store<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, ApiError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = store
                .lock()
                .map_err(|_| ApiError::Internal("the store's lock is poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("store task failed: {e}")))?
    }
}

/// Read-only connections to the store, lent to one request at a time.
///
/// Why a pool: one connection behind one mutex made every list request
/// wait for the one before it, so at 200 requests/s the queue grew
/// without bound (p99 19.8 s). SQLite connections are not shared between
/// threads at once, but several connections read the same WAL store in
/// parallel.
pub struct ReaderPool {
    idle: Mutex<Vec<Store>>,
    returned: Condvar,
}

impl std::fmt::Debug for ReaderPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderPool").finish_non_exhaustive()
    }
}

/// A connection of the [`ReaderPool`], given back when dropped (also when
/// the request's code panics).
pub struct LentReader<'a> {
    pool: &'a ReaderPool,
    store: Option<Store>,
}

impl std::ops::Deref for LentReader<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        // Present from `take` until `drop`.
        self.store.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for LentReader<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.store.take() {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.push(s);
            drop(idle);
            self.pool.returned.notify_one();
        }
    }
}

impl ReaderPool {
    /// As many connections as cores (at least 2, at most 8): reads are
    /// CPU work on a store that fits the page cache, so more connections
    /// than cores would only take turns.
    pub fn default_size() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(2, 8)
    }

    /// Open `size` read-only connections to the store at `path` (already
    /// at this build's schema: open it for writing first).
    pub fn open(path: &std::path::Path, size: usize) -> Result<ReaderPool, ServeError> {
        let idle = (0..size.max(1))
            .map(|_| Store::open_read_only(path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ReaderPool {
            idle: Mutex::new(idle),
            returned: Condvar::new(),
        })
    }

    /// A free connection, waiting for one if all are lent.
    pub fn take(&self) -> Result<LentReader<'_>, ApiError> {
        let mut idle = self
            .idle
            .lock()
            .map_err(|_| ApiError::Internal("the readers' lock is poisoned".into()))?;
        loop {
            if let Some(store) = idle.pop() {
                return Ok(LentReader {
                    pool: self,
                    store: Some(store),
                });
            }
            idle = self
                .returned
                .wait(idle)
                .map_err(|_| ApiError::Internal("the readers' lock is poisoned".into()))?;
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token (`/healthz` only).
    Public,
    /// A bearer token of at least this scope.
    Bearer(TokenScope),
    /// A bearer token, or basic auth with the token as password (EDLs).
    BearerOrBasic(TokenScope),
    /// A dashboard session cookie (or a bearer token) of at least this
    /// scope; without, a 401 page with the login form.
    Session(TokenScope),
}

/// One route of the server.
pub struct Route {
    pub method: Method,
    /// The path as axum matches it (`/api/v1/findings/{id}`).
    pub path: &'static str,
    /// A concrete path that reaches this route, for the tests.
    pub example: &'static str,
    pub access: Access,
    /// Takes a feed file: `upload_limit` applies, not `body_limit`.
    pub large_body: bool,
    /// The handler.
    pub handler: fn() -> MethodRouter<AppState>,
}

/// Every route of the server, with the access it needs. The router is
/// built from this table only ([`router`]).
pub fn routes() -> Vec<Route> {
    use TokenScope::{Admin, Read, Triage};
    use axum::routing::{get, post};
    vec![
        Route {
            method: Method::GET,
            path: "/healthz",
            example: "/healthz",
            access: Access::Public,
            large_body: false,
            handler: || get(api::healthz),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/openapi.json",
            example: "/api/v1/openapi.json",
            access: Access::Bearer(Read),
            large_body: false,
            handler: || get(api::openapi_json),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/findings",
            example: "/api/v1/findings",
            access: Access::Bearer(Read),
            large_body: false,
            handler: || get(api::list_findings),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/findings/{id}",
            example: "/api/v1/findings/0123456789abcdef",
            access: Access::Bearer(Read),
            large_body: false,
            handler: || get(api::get_finding),
        },
        Route {
            method: Method::POST,
            path: "/api/v1/findings/{id}/triage",
            example: "/api/v1/findings/0123456789abcdef/triage",
            access: Access::Bearer(Triage),
            large_body: false,
            handler: || post(api::triage_finding),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/hunts",
            example: "/api/v1/hunts",
            access: Access::Bearer(Read),
            large_body: false,
            handler: || get(api::list_hunts),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/hunts/{id}",
            example: "/api/v1/hunts/1",
            access: Access::Bearer(Read),
            large_body: false,
            handler: || get(api::get_hunt),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/routers",
            example: "/api/v1/routers",
            access: Access::Bearer(Read),
            large_body: false,
            handler: || get(api::list_routers),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/routers/{name}/history",
            example: "/api/v1/routers/branch-lyon/history",
            access: Access::Bearer(Read),
            large_body: false,
            handler: || get(api::router_history),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/feeds",
            example: "/api/v1/feeds",
            access: Access::Bearer(Read),
            large_body: false,
            handler: || get(api::list_feeds),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/feeds/{name}",
            example: "/api/v1/feeds/certfr",
            access: Access::Bearer(Read),
            large_body: false,
            handler: || get(api::get_feed),
        },
        Route {
            method: Method::POST,
            path: "/api/v1/feeds/{name}",
            example: "/api/v1/feeds/certfr",
            access: Access::Bearer(Admin),
            large_body: true,
            handler: || post(api::upload_feed),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/blocklist",
            example: "/api/v1/blocklist?target=plain",
            access: Access::Bearer(Read),
            large_body: false,
            handler: || get(api::blocklist),
        },
        Route {
            method: Method::GET,
            path: "/edl/{file}",
            example: "/edl/orb.txt",
            access: Access::BearerOrBasic(Read),
            large_body: false,
            handler: || get(edl::serve_edl),
        },
        Route {
            method: Method::GET,
            path: "/login",
            example: "/login",
            access: Access::Public,
            large_body: false,
            handler: || get(dashboard::login_form),
        },
        Route {
            method: Method::POST,
            path: "/login",
            example: "/login",
            access: Access::Public,
            large_body: false,
            handler: || post(dashboard::login),
        },
        Route {
            method: Method::POST,
            path: "/logout",
            example: "/logout",
            access: Access::Session(Read),
            large_body: false,
            handler: || post(dashboard::logout),
        },
        Route {
            method: Method::GET,
            path: "/",
            example: "/",
            access: Access::Session(Read),
            large_body: false,
            handler: || get(dashboard::overview_page),
        },
        Route {
            method: Method::GET,
            path: "/feeds",
            example: "/feeds",
            access: Access::Session(Read),
            large_body: false,
            handler: || get(dashboard::feeds_page),
        },
        Route {
            method: Method::GET,
            path: "/hunts",
            example: "/hunts",
            access: Access::Session(Read),
            large_body: false,
            handler: || get(dashboard::hunts_page),
        },
        Route {
            method: Method::GET,
            path: "/hunts/{id}",
            example: "/hunts/1",
            access: Access::Session(Read),
            large_body: false,
            handler: || get(dashboard::hunt_page),
        },
        Route {
            method: Method::GET,
            path: "/hunts/{id}/report",
            example: "/hunts/1/report",
            access: Access::Session(Read),
            large_body: false,
            handler: || get(dashboard::hunt_report),
        },
        Route {
            method: Method::GET,
            path: "/findings",
            example: "/findings",
            access: Access::Session(Read),
            large_body: false,
            handler: || get(dashboard::findings_page),
        },
        Route {
            method: Method::GET,
            path: "/findings/{id}",
            example: "/findings/0123456789abcdef",
            access: Access::Session(Read),
            large_body: false,
            handler: || get(dashboard::finding_page),
        },
        Route {
            method: Method::POST,
            path: "/findings/{id}/triage",
            example: "/findings/0123456789abcdef/triage",
            access: Access::Session(Triage),
            large_body: false,
            handler: || post(dashboard::triage_form),
        },
        Route {
            method: Method::GET,
            path: "/metrics",
            example: "/metrics",
            access: Access::Bearer(Read),
            large_body: false,
            handler: || get(metrics::metrics),
        },
    ]
}

/// The application: every route of [`routes()`] behind its access check,
/// the body limit and the request timeout.
pub fn router(state: AppState) -> Router {
    let mut app: Router<AppState> = Router::new();
    let limit = state.config.body_limit;
    let upload_limit = state.config.upload_limit;
    let timeout = Duration::from_secs(state.config.request_timeout_secs.max(1));
    let upload_timeout = Duration::from_secs(state.config.upload_timeout_secs.max(1));
    for r in routes() {
        let mut mr = (r.handler)();
        // Body limits and timeouts per route: feed uploads are larger and
        // take longer than the rest.
        let (max, time) = if r.large_body {
            (upload_limit, upload_timeout)
        } else {
            (limit, timeout)
        };
        mr = mr
            .layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(max))
            .layer::<_, std::convert::Infallible>(tower_http::limit::RequestBodyLimitLayer::new(
                max,
            ));
        if r.access != Access::Public {
            mr = mr.route_layer(axum::middleware::from_fn_with_state(
                auth::Need {
                    state: state.clone(),
                    access: r.access,
                },
                auth::require,
            ));
        }
        // Outside the access check, so that it bounds that too.
        mr = mr.layer::<_, std::convert::Infallible>(
            tower_http::timeout::TimeoutLayer::with_status_code(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                time,
            ),
        );
        app = app.route(r.path, mr);
    }
    // Paths no route matches answer 404 at once: no timeout needed there.
    app.with_state(state)
}

/// Refuse to listen beyond loopback in clear text unless told to: tokens
/// and findings would cross the network readable by anyone on the path.
pub fn check_listen(addr: SocketAddr, tls: bool, insecure_listen: bool) -> Result<(), ServeError> {
    if addr.ip().is_loopback() || tls || insecure_listen {
        Ok(())
    } else {
        Err(ServeError::InsecureListen { addr })
    }
}

/// Serve `state` on `listener` until `shutdown` completes; requests under
/// way are finished first.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// How long a TLS handshake may take before the connection is dropped (a
/// client that connects and says nothing must not hold a task forever).
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Load the TLS certificate chain and key (PEM), through the same loader
/// as `watch --syslog-tls`: a wrong path or a key that does not fit stops
/// the server at start with the file named.
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    orbwatch_listen::tls_server_config(&orbwatch_listen::TlsConfig {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        client_ca: None,
    })
    .map_err(|e| ServeError::Tls(e.to_string()))
}

/// [`serve`] over TLS (rustls): each connection is handshaken, then served
/// as HTTP/1.1 by hyper with the same router. On `shutdown` the listener
/// closes and the connections under way finish their current request.
pub async fn serve_tls(
    listener: TcpListener,
    state: AppState,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of descriptors and the like: wait, not spin.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let conn = hyper::server::conn::http1::Builder::new()
                        .header_read_timeout(Duration::from_secs(30))
                        .timer(hyper_util::rt::TokioTimer::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, "connection ended: {e}");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Completes on ctrl-c (SIGINT) or SIGTERM, for [`serve`].
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for ctrl-c: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("stopping: finishing the requests under way");
}

/// Remove the upload spool files that a server stopped by a crash or a
/// `kill -9` left behind (the spool file of an upload is removed on every
/// other way out): those not written for longer than `upload_timeout`.
/// An upload that is still under way, in this server or another one
/// sharing the folder, was written more recently than that: a request,
/// from its first byte to the end of its import, is cut at
/// `upload_timeout`, and its file was created after it began. A file
/// that cannot be removed is a warning too, not a
/// reason to refuse to start. Each removal is a warning (shown by default):
/// the upload it held was lost. Returns how many were removed.
pub fn remove_stale_spool_files(
    dir: &std::path::Path,
    upload_timeout: std::time::Duration,
    now: std::time::SystemTime,
) -> usize {
    let swept = match orbwatch_feedload::spool::remove_stale(
        dir,
        api::UPLOAD_SPOOL_PREFIX,
        upload_timeout,
        now,
    ) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "cannot list the upload spool folder: {e}");
            return 0;
        }
    };
    for path in &swept.removed {
        // A warning, shown by default: the upload it held was never
        // stored, and whoever sent it should send it again.
        tracing::warn!(
            file = %path.display(),
            "removed an upload spool file left by a server that stopped without finishing \
             (crash or kill -9); that upload was not stored: send it again"
        );
    }
    for (path, e) in &swept.failed {
        tracing::warn!(file = %path.display(), "cannot remove an old upload spool file: {e}");
    }
    swept.removed.len()
}
