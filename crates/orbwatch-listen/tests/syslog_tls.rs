//! Syslog over TLS on loopback, with a test CA made by rcgen: a rustls
//! client and `openssl s_client` deliver; with client certificates
//! required, a client without one is refused and counted; file errors name
//! the file.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use orbwatch_listen::{ListenerConfig, SyslogTcpConfig, TlsConfig};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as
/// PEM files in a temporary folder.
struct Pki {
    dir: tempfile::TempDir,
    ca_der: CertificateDer<'static>,
    client_chain: Vec<CertificateDer<'static>>,
    client_key: Vec<u8>,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn tls(&self, client_ca: bool) -> TlsConfig {
        TlsConfig {
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            client_ca: client_ca.then(|| self.path("ca.pem")),
        }
    }
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "orbwatch test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["client.example".into()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    let w = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
    w("ca.pem", ca.pem());
    w("server.pem", format!("{}{}", server.pem(), ca.pem()));
    w("server.key", server_key.serialize_pem());
    w("client.pem", client.pem());
    w("client.key", client_key.serialize_pem());
    Pki {
        dir,
        ca_der: ca.der().clone(),
        client_chain: vec![client.der().clone()],
        client_key: client_key.serialize_der(),
    }
}

fn tls_listener(p: &Pki, client_ca: bool) -> Running {
    let mut cfg = SyslogTcpConfig::new(loopback());
    cfg.tls = Some(p.tls(client_ca));
    cfg.idle_timeout = Duration::from_secs(5);
    start(ListenerConfig::SyslogTcp(cfg), 1024)
}

fn client_config(p: &Pki, with_cert: bool) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(p.ca_der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let c = if with_cert {
        let key = PrivateKeyDer::try_from(p.client_key.clone()).unwrap();
        b.with_client_auth_cert(p.client_chain.clone(), key)
            .unwrap()
    } else {
        b.with_no_client_auth()
    };
    Arc::new(c)
}

/// Send `msgs` octet-counted over TLS and close cleanly; the error, if any.
fn rustls_send(
    addr: std::net::SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
    msgs: &[String],
) -> Result<(), std::io::Error> {
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(cfg, name).unwrap();
    let sock = TcpStream::connect(addr)?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    for m in msgs {
        tls.write_all(format!("{} {m}", m.len()).as_bytes())?;
    }
    tls.flush()?;
    tls.conn.send_close_notify();
    tls.flush()?;
    // Wait for the server's answer (its close, or an alert).
    let mut b = [0u8; 16];
    let r = std::io::Read::read(&mut tls, &mut b);
    r.map(|_| ())
}

#[test]
fn a_rustls_client_delivers_over_tls() {
    let p = pki();
    let run = tls_listener(&p, false);
    let msgs: Vec<String> = (0..100)
        .map(|i| format!("<13>1 - host app - - - tls {i}"))
        .collect();
    rustls_send(run.addr(), client_config(&p, false), &msgs).unwrap();
    let recs = run.take(100, Duration::from_secs(5));
    assert_eq!(recs.iter().map(text).collect::<Vec<_>>(), msgs);
    assert!(
        recs[0]
            .stream
            .starts_with(&format!("syslog-tls {} from 127.0.0.1:", run.addr()))
    );
    let s = run.settled(|s| s.records == 100);
    assert_eq!((s.connections, s.malformed), (1, 0));
    let plain: u64 = msgs
        .iter()
        .map(|m| (m.len().to_string().len() + 1 + m.len()) as u64)
        .sum();
    assert!(wait_for(Duration::from_secs(2), || run.snap().bytes == plain));
}

fn have_openssl() -> bool {
    let ok = Command::new("openssl").arg("version").output().is_ok();
    if !ok {
        println!("skipped: openssl is not installed");
    }
    ok
}

/// `openssl s_client`, sending `input` then closing.
fn s_client(port: u16, p: &Pki, cert: bool, input: &[u8]) -> std::process::Output {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{port}"),
        "-CAfile",
    ])
    .arg(p.path("ca.pem"))
    .args(["-verify_return_error", "-quiet", "-no_ign_eof"]);
    if cert {
        cmd.arg("-cert").arg(p.path("client.pem"));
        cmd.arg("-key").arg(p.path("client.key"));
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn openssl_s_client_delivers_newline_framed_messages() {
    if !have_openssl() {
        return;
    }
    let p = pki();
    let run = tls_listener(&p, false);
    let input = b"<13>Dec  3 18:25:27 vm app: one\n<13>Dec  3 18:25:27 vm app: two\n";
    let out = s_client(run.addr().port(), &p, false, input);
    let recs = run.take(2, Duration::from_secs(5));
    assert_eq!(
        recs.iter().map(text).collect::<Vec<_>>(),
        vec![
            "<13>Dec  3 18:25:27 vm app: one",
            "<13>Dec  3 18:25:27 vm app: two"
        ],
        "s_client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn client_certificates_when_required_refuse_clients_without_one() {
    let p = pki();
    let run = tls_listener(&p, true);
    let msgs = vec!["<13>with a certificate".to_string()];
    // Without a certificate: refused (TLS 1.3 lets the client write before
    // it hears; nothing it wrote is delivered).
    let _ = rustls_send(
        run.addr(),
        client_config(&p, false),
        &["<13>no certificate".to_string()],
    );
    assert!(wait_for(Duration::from_secs(3), || run.snap().malformed == 1));
    // With one: delivered.
    rustls_send(run.addr(), client_config(&p, true), &msgs).unwrap();
    let recs = run.take(1, Duration::from_secs(5));
    assert_eq!(recs.iter().map(text).collect::<Vec<_>>(), msgs);
    if have_openssl() {
        s_client(run.addr().port(), &p, false, b"<13>openssl no cert\n");
        assert!(wait_for(Duration::from_secs(3), || run.snap().malformed == 2));
        s_client(run.addr().port(), &p, true, b"<13>openssl with cert\n");
        let recs = run.take(1, Duration::from_secs(5));
        assert_eq!(
            recs.iter().map(text).collect::<Vec<_>>(),
            vec!["<13>openssl with cert"]
        );
    }
    assert!(run.drain(Duration::from_millis(200)).is_empty());
    let want = if have_openssl() { 2 } else { 1 };
    run.settled(|s| s.records == want);
}

#[test]
fn a_plaintext_client_on_the_tls_port_is_counted_and_closed() {
    let p = pki();
    let run = tls_listener(&p, false);
    let mut s = TcpStream::connect(run.addr()).unwrap();
    s.write_all(b"<13>plain text on a TLS port\n").unwrap();
    assert!(wait_for(Duration::from_secs(3), || run.snap().malformed == 1));
    assert_eq!(run.snap().records, 0);
}

fn spawn_err(tls: TlsConfig) -> String {
    let mut cfg = SyslogTcpConfig::new(loopback());
    cfg.tls = Some(tls);
    let (tx, _rx) = orbwatch_live::channel(1);
    orbwatch_listen::spawn(
        ListenerConfig::SyslogTcp(cfg),
        tx,
        Default::default(),
        Default::default(),
    )
    .unwrap_err()
    .to_string()
}

#[test]
fn bad_tls_files_are_named_in_the_error() {
    let p = pki();
    let missing = Path::new("/nonexistent/server.pem");
    let e = spawn_err(TlsConfig {
        cert: missing.into(),
        ..p.tls(false)
    });
    assert!(
        e.starts_with("cannot read the TLS certificate /nonexistent/server.pem: "),
        "{e}"
    );
    // A certificate given as the key.
    let e = spawn_err(TlsConfig {
        key: p.path("server.pem"),
        ..p.tls(false)
    });
    assert_eq!(
        e,
        format!(
            "TLS key {}: holds no private key (expected a PEM block `BEGIN PRIVATE KEY`, `BEGIN RSA PRIVATE KEY` or `BEGIN EC PRIVATE KEY`)",
            p.path("server.pem").display()
        )
    );
    // The client's key with the server's certificate.
    let e = spawn_err(TlsConfig {
        key: p.path("client.key"),
        ..p.tls(false)
    });
    assert!(
        e.starts_with(&format!(
            "TLS key {}: does not fit the certificate {}",
            p.path("client.key").display(),
            p.path("server.pem").display()
        )),
        "{e}"
    );
    // A key given as the client CA.
    let e = spawn_err(TlsConfig {
        client_ca: Some(p.path("server.key")),
        ..p.tls(false)
    });
    assert!(
        e.starts_with(&format!(
            "TLS client CA {}: holds no certificate",
            p.path("server.key").display()
        )),
        "{e}"
    );
}

#[test]
fn a_client_that_never_finishes_its_handshake_is_closed_when_idle() {
    let p = pki();
    let mut cfg = SyslogTcpConfig::new(loopback());
    cfg.tls = Some(p.tls(false));
    cfg.idle_timeout = Duration::from_millis(300);
    let run = start(ListenerConfig::SyslogTcp(cfg), 16);
    let mut s = TcpStream::connect(run.addr()).unwrap();
    // Half a ClientHello record header, then nothing.
    s.write_all(&[0x16, 0x03]).unwrap();
    assert!(wait_for(Duration::from_secs(3), || run.snap().idle_closed == 1));
    let s2 = run.snap();
    assert_eq!((s2.records, s2.malformed, s2.connections), (0, 0, 1));
}
