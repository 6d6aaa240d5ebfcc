//! Real HTTP(S) servers on 127.0.0.1 for the subscription tests: a small
//! HTTP/1.1 server (one connection at a time, `Connection: close`), with
//! TLS through rustls and certificates from a test CA made with rcgen.
//! Every request is logged so that tests can check what the client sent.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    /// Path with query string.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    /// A query parameter, percent-decoded.
    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == key).then(|| decode(v))
        })
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub enum Body {
    Bytes(Vec<u8>),
    /// `bytes`, under a Content-Length of `declared` (more): the
    /// connection is closed after `bytes`, a download cut midway.
    Cut {
        bytes: Vec<u8>,
        declared: u64,
    },
    /// `total` bytes of `x`, generated while writing (never held in
    /// memory); with a Content-Length header when `declare`, else chunked.
    Endless {
        total: u64,
        declare: bool,
    },
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Resp {
    pub fn ok(body: impl Into<Vec<u8>>) -> Resp {
        Resp {
            status: 200,
            headers: Vec::new(),
            body: Body::Bytes(body.into()),
        }
    }
    pub fn status(status: u16) -> Resp {
        Resp {
            status,
            headers: Vec::new(),
            body: Body::Bytes(Vec::new()),
        }
    }
    pub fn with_header(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

type Handler = dyn Fn(&Req) -> Resp + Send + Sync;

pub struct Server {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<Req>>>,
    /// Bytes of response bodies written, across requests.
    pub written: Arc<Mutex<u64>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn http(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Server {
        Self::start(None, Arc::new(handler))
    }

    pub fn https(
        tls: Arc<rustls::ServerConfig>,
        handler: impl Fn(&Req) -> Resp + Send + Sync + 'static,
    ) -> Server {
        Self::start(Some(tls), Arc::new(handler))
    }

    fn start(tls: Option<Arc<rustls::ServerConfig>>, handler: Arc<Handler>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let written = Arc::new(Mutex::new(0u64));
        let stop = Arc::new(AtomicBool::new(false));
        let (log2, written2, stop2) = (log.clone(), written.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(tcp) = conn else { continue };
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = tcp.set_write_timeout(Some(Duration::from_secs(10)));
                let res = match &tls {
                    Some(cfg) => match rustls::ServerConnection::new(cfg.clone()) {
                        Ok(sc) => {
                            let mut s = rustls::StreamOwned::new(sc, tcp);
                            serve(&mut s, &*handler, &log2, &written2)
                        }
                        Err(_) => continue,
                    },
                    None => {
                        let mut s = tcp;
                        serve(&mut s, &*handler, &log2, &written2)
                    }
                };
                let _ = res;
            }
        });
        Server {
            addr,
            log,
            written,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve<S: Read + Write>(
    s: &mut S,
    handler: &Handler,
    log: &Mutex<Vec<Req>>,
    written: &Mutex<u64>,
) -> std::io::Result<()> {
    let mut r = BufReader::new(&mut *s);
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(());
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len.min(1 << 20)];
    r.read_exact(&mut body)?;
    drop(r);
    let req = Req {
        method,
        target,
        headers,
        body,
    };
    let resp = handler(&req);
    log.lock().unwrap().push(req);
    let reason = match resp.status {
        200 => "OK",
        304 => "Not Modified",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\nConnection: close\r\n", resp.status);
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match &resp.body {
        Body::Bytes(b) => {
            if resp.status != 304 {
                head.push_str(&format!("Content-Length: {}\r\n", b.len()));
            }
            head.push_str("\r\n");
            s.write_all(head.as_bytes())?;
            s.write_all(b)?;
            *written.lock().unwrap() += b.len() as u64;
        }
        Body::Cut { bytes, declared } => {
            head.push_str(&format!("Content-Length: {declared}\r\n\r\n"));
            s.write_all(head.as_bytes())?;
            s.write_all(bytes)?;
            *written.lock().unwrap() += bytes.len() as u64;
        }
        Body::Endless { total, declare } => {
            if *declare {
                head.push_str(&format!("Content-Length: {total}\r\n"));
            } else {
                head.push_str("Transfer-Encoding: chunked\r\n");
            }
            head.push_str("\r\n");
            s.write_all(head.as_bytes())?;
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = *total;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                if *declare {
                    s.write_all(&chunk[..n])?;
                } else {
                    s.write_all(format!("{n:x}\r\n").as_bytes())?;
                    s.write_all(&chunk[..n])?;
                    s.write_all(b"\r\n")?;
                }
                *written.lock().unwrap() += n as u64;
                left -= n as u64;
            }
            if !*declare {
                s.write_all(b"0\r\n\r\n")?;
            }
        }
    }
    s.flush()
}

/// A test CA and a server certificate for 127.0.0.1 and localhost signed
/// by it.
pub struct TestPki {
    pub ca_pem: String,
    pub server: Arc<rustls::ServerConfig>,
}

pub fn test_pki(ca_name: &str) -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca_cert.der().clone()], key)
        .unwrap();
    TestPki {
        ca_pem: ca_cert.pem(),
        server: Arc::new(server),
    }
}

/// No environment variables: the tests' credentials come from elsewhere.
pub fn no_env(_: &str) -> Option<String> {
    None
}

/// Subscribe `name` to `source` with `spec`, a lookback of 30 days and a
/// history grace of 7 (the CLI's defaults).
pub fn sub(
    store: &mut orbwatch_store::Store,
    name: &str,
    source: &str,
    spec: &orbwatch_subscribe::SubscriptionSpec,
) {
    orbwatch_subscribe::subscribe(
        store,
        name,
        &orbwatch_subscribe::Source::parse(source).unwrap(),
        spec,
        jiff::SignedDuration::from_hours(30 * 24),
        jiff::SignedDuration::from_hours(7 * 24),
        None,
    )
    .unwrap();
}

/// The error and kept version of an update that must have failed.
pub fn failed(out: orbwatch_subscribe::UpdateOutcome) -> (String, Option<i64>) {
    match out {
        orbwatch_subscribe::UpdateOutcome::Failed {
            error,
            kept_version,
            ..
        } => (error, kept_version),
        other => panic!("expected a failed update, got {other:?}"),
    }
}
