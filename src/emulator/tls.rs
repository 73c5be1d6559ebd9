//! HTTPS serving: a generated or given certificate, and a listener that completes TLS
//! handshakes off the accept loop so one slow client cannot stall the others.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::EmulatorError;

/// Time a client gets to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to pick them up.
const ACCEPT_BACKLOG: usize = 64;

/// A server configuration and the PEM clients trust it by.
pub struct TlsMaterial {
    /// The generated CA certificate, or the given certificate chain.
    pub trust_pem: String,
    pub config: Arc<rustls::ServerConfig>,
}

/// Generates a CA and a server certificate it signs for 127.0.0.1 and localhost. Clients
/// trust the CA, so the server certificate is a plain end-entity certificate as usual.
pub fn generate() -> Result<TlsMaterial, EmulatorError> {
    let ca_key = KeyPair::generate().map_err(EmulatorError::Certificate)?;
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(EmulatorError::Certificate)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "aci-emulator local CA");
    let ca = ca_params
        .self_signed(&ca_key)
        .map_err(EmulatorError::Certificate)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let mut server_params = CertificateParams::new(names).map_err(EmulatorError::Certificate)?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "aci-emulator");
    let server_key = KeyPair::generate().map_err(EmulatorError::Certificate)?;
    let server = server_params
        .signed_by(&server_key, &issuer)
        .map_err(EmulatorError::Certificate)?;
    let chain_pem = format!("{}{}", server.pem(), ca.pem());
    let mut material = build(chain_pem, &server_key.serialize_pem())?;
    material.trust_pem = ca.pem();
    Ok(material)
}

/// Loads a certificate chain and private key from PEM files.
pub fn load(certificate: &Path, key: &Path) -> Result<TlsMaterial, EmulatorError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| EmulatorError::ReadFile {
            path: path.to_path_buf(),
            source,
        })
    };
    build(read(certificate)?, &read(key)?)
}

fn build(certificate_pem: String, key_pem: &str) -> Result<TlsMaterial, EmulatorError> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(certificate_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| EmulatorError::Pem(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| EmulatorError::Pem(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(EmulatorError::Tls)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(EmulatorError::Tls)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        trust_pem: certificate_pem,
        config: Arc::new(config),
    })
}

/// Accepts TCP connections and hands over those that completed a TLS handshake.
pub struct TlsListener {
    connections: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (sender, connections) = mpsc::channel(ACCEPT_BACKLOG);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(accept_loop(listener, acceptor, sender));
        Ok(Self {
            connections,
            local_addr,
        })
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    sender: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if sender.is_closed() {
            return;
        }
        let acceptor = acceptor.clone();
        let sender = sender.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = sender.send((tls, peer)).await;
                }
                Ok(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.connections.recv().await {
            Some(connection) => connection,
            // The accept loop ended: wait forever, as a listener with no more clients does.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}
