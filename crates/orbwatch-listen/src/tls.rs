//! The rustls server configuration of `--syslog-tls`: certificate chain,
//! key and, optionally, the CA that client certificates must chain to.
//!
//! Loaded once, before the listener starts, so that a wrong path or a key
//! that does not fit the certificate stops `watch` at start-up with the
//! file named, rather than failing every handshake later. The crypto
//! provider is rustls' `ring` one, as elsewhere in the workspace.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use crate::{ListenError, TlsConfig};

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, ListenError> {
    std::fs::read(path).map_err(|source| ListenError::TlsFile {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn content(what: &'static str, path: &Path, problem: String) -> ListenError {
    ListenError::TlsContent {
        what,
        path: path.to_path_buf(),
        problem,
    }
}

fn certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ListenError> {
    let bytes = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content(what, path, format!("not a readable PEM file: {e}")))?;
    if certs.is_empty() {
        return Err(content(
            what,
            path,
            "holds no certificate (expected PEM blocks `-----BEGIN CERTIFICATE-----`)".into(),
        ));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, ListenError> {
    let what = "key";
    let bytes = read(what, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => content(
            what,
            path,
            "holds no private key (expected a PEM block `BEGIN PRIVATE KEY`, `BEGIN RSA PRIVATE KEY` or `BEGIN EC PRIVATE KEY`)".into(),
        ),
        e => content(what, path, format!("not a readable PEM key: {e}")),
    })
}

/// Build the server configuration from the files of `t` (also used by
/// `orbwatch serve --tls-cert/--tls-key`).
pub fn server_config(t: &TlsConfig) -> Result<Arc<ServerConfig>, ListenError> {
    let chain = certificates("certificate", &t.cert)?;
    let key = private_key(&t.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            content(
                "certificate",
                &t.cert,
                format!("no usable TLS version: {e}"),
            )
        })?;
    let builder = match &t.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in certificates("client CA", ca)? {
                roots.add(c).map_err(|e| {
                    content("client CA", ca, format!("not a usable CA certificate: {e}"))
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| {
                    content(
                        "client CA",
                        ca,
                        format!("cannot verify clients with it: {e}"),
                    )
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(chain, key).map_err(|e| {
        content(
            "key",
            &t.key,
            format!(
                "does not fit the certificate {} or is not usable: {e}",
                t.cert.display()
            ),
        )
    })?;
    Ok(Arc::new(config))
}
