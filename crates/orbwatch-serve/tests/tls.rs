//! `serve_tls` over real TLS on loopback, with a test CA made by rcgen and
//! a rustls client: the same router (401 without a token, 200 with one),
//! a plain-text client is not served, bad key files stop the start.

use std::sync::Arc;

use orbwatch_serve::{AppState, ServeConfig};
use orbwatch_store::{Store, TokenScope};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A raw HTTP/1.1 request over the TLS stream; the whole answer.
async fn request(
    connector: &tokio_rustls::TlsConnector,
    addr: std::net::SocketAddr,
    head: &str,
) -> String {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn the_router_over_tls() {
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
    let server = CertificateParams::new(vec!["127.0.0.1".into()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    std::fs::write(&cert, format!("{}{}", server.pem(), ca.pem())).unwrap();
    std::fs::write(&key, server_key.serialize_pem()).unwrap();

    // A key that is not one, and a missing file, stop the start.
    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, "not a key").unwrap();
    let e = orbwatch_serve::tls_config(&cert, &bad)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.key"), "{e}");
    assert!(orbwatch_serve::tls_config(&dir.path().join("none.pem"), &key).is_err());

    let tls = orbwatch_serve::tls_config(&cert, &key).unwrap();
    let db = dir.path().join("s.db");
    let store = Store::open(&db).unwrap();
    let token = Store::open(&db)
        .unwrap()
        .create_token("ci", TokenScope::Read)
        .unwrap()
        .1;
    let state = AppState::new(store, ServeConfig::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(orbwatch_serve::serve_tls(
        listener,
        state,
        tls,
        async move {
            let _ = stopped.await;
        },
    ));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.der().to_vec())).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));

    let health = request(
        &connector,
        addr,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let none = request(
        &connector,
        addr,
        "GET /api/v1/hunts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(none.starts_with("HTTP/1.1 401"), "{none}");
    let with = request(
        &connector,
        addr,
        &format!("GET /api/v1/hunts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(with.starts_with("HTTP/1.1 200"), "{with}");
    assert!(with.ends_with("[]"), "{with}");

    // Clear text on the TLS port gets no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = plain.read_to_end(&mut out).await;
    assert!(!String::from_utf8_lossy(&out).contains("200 OK"));

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
