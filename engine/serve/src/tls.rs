//! TLS for the server and trust for its clients. The server takes a certificate chain and its
//! private key as PEM files (what a hospital's certificate authority issues); a client trusts
//! the public web roots by default and, for a hospital's own authority, the certificates of a
//! PEM file it is given instead.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::ServeError;

/// The variable naming a PEM file of the certificates clients trust for `https://` servers
/// instead of the public web roots (a hospital's own certificate authority).
pub const CA_VARIABLE: &str = "GROUNDGLASS_REMOTE_CA";

/// The server's TLS configuration from `cert` (a PEM chain, the server's own certificate first)
/// and `key` (its PEM private key: PKCS#8, PKCS#1 or SEC1).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    let bad = |what: &Path, detail: String| ServeError::Tls {
        file: what.display().to_string(),
        detail,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(bad(cert, "no PEM certificate in it".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| bad(key, format!("does not go with the certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The certificates a client trusts instead of the public roots, from the PEM file `ca`.
pub fn root_certs(ca: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, ServeError> {
    let bad = |detail: String| ServeError::Tls {
        file: ca.display().to_string(),
        detail,
    };
    let pem = std::fs::read(ca).map_err(|e| bad(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| bad(e.to_string()))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}
