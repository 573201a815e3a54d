//! TLS for both servers when a certificate is configured: the gRPC server
//! (optionally asking callers for a client certificate: mutual TLS) and the
//! HTTP server that will carry the contact-facing pages.

use anyhow::Context;
use clap::Args;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Certificate settings shared by the gRPC and HTTP servers.
#[derive(Clone, Debug, Default, Args)]
pub struct TlsArgs {
    /// PEM certificate chain for both servers; with `--tls-key-file`, turns TLS on.
    #[arg(long, env = "ACCESS_TLS_CERT_FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of that certificate (keep it mode 0600).
    #[arg(long, env = "ACCESS_TLS_KEY_FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA certificates: gRPC callers must present a client certificate
    /// signed by one of them (mutual TLS).
    #[arg(long, env = "ACCESS_TLS_CLIENT_CA_FILE", requires = "tls_cert_file")]
    pub tls_client_ca_file: Option<PathBuf>,
}

/// The PEM files read once at start.
#[derive(Clone)]
pub struct TlsFiles {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading the {what} {}", path.display()))
}

impl TlsArgs {
    /// The files, if TLS is configured; a missing or unreadable file is an error.
    pub fn load(&self) -> anyhow::Result<Option<TlsFiles>> {
        let (Some(cert), Some(key)) = (&self.tls_cert_file, &self.tls_key_file) else {
            return Ok(None);
        };
        let files = TlsFiles {
            cert: read(cert, "TLS certificate")?,
            key: read(key, "TLS key")?,
            client_ca: match &self.tls_client_ca_file {
                Some(ca) => Some(read(ca, "client CA")?),
                None => None,
            },
        };
        // Parse now, so a bad file stops the start instead of the first caller.
        files.rustls_config()?;
        Ok(Some(files))
    }
}

impl TlsFiles {
    /// The gRPC server's TLS settings.
    pub fn grpc(&self) -> tonic::transport::ServerTlsConfig {
        let config = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(&self.cert, &self.key));
        match &self.client_ca {
            Some(ca) => config.client_ca_root(tonic::transport::Certificate::from_pem(ca)),
            None => config,
        }
    }

    /// Whether callers must present a client certificate.
    pub fn mutual(&self) -> bool {
        self.client_ca.is_some()
    }

    /// The HTTP server's rustls settings (no client certificates: browsers).
    pub fn rustls_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let chain = CertificateDer::pem_slice_iter(&self.cert)
            .collect::<Result<Vec<_>, _>>()
            .context("the TLS certificate file is not PEM certificates")?;
        anyhow::ensure!(
            !chain.is_empty(),
            "the TLS certificate file holds no certificate"
        );
        let key = PrivateKeyDer::from_pem_slice(&self.key)
            .context("the TLS key file holds no PEM private key")?;
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TLS key does not fit the certificate")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Serves `router` over TLS on `listener` until `stop` turns true.
pub async fn serve_https(
    listener: TcpListener,
    router: axum::Router,
    config: Arc<rustls::ServerConfig>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an HTTPS connection");
                    continue;
                }
            },
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        crate::startup::set_nodelay(&tcp);
        let acceptor = acceptor.clone();
        // The pages rate-limit by client address, as over plain HTTP.
        let service = TowerToHyperService::new(
            router
                .clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        );
        tokio::spawn(async move {
            // A client that never finishes its handshake is dropped.
            let handshake =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp));
            let tls = match handshake.await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            if let Err(e) = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(error = %e, "HTTPS connection ended");
            }
        });
    }
}
