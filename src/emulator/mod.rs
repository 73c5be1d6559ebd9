//! `aci-emulator`: a local ARM endpoint that runs container groups as local processes.
//!
//! It serves the container group, log and resource group paths of ARM, a managed identity
//! endpoint and an Entra token endpoint, and an admin API for faults and counters. Start it
//! in-process with [`Emulator::start`], or run the `aci-emulator` binary.

mod admin;
mod config;
mod errors;
mod fault_args;
mod faults;
mod group_actions;
mod groups;
mod identity;
mod lifecycle;
mod lifecycle_faults;
mod listing;
mod process;
mod resource_groups;
mod routes;
mod server;
mod simulate;
mod state;
mod tls;
mod validate;
mod validate_resources;
mod view;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::signal::unix;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{
    ClientCredential, DEFAULT_ENTRYPOINT_SHIM, DEFAULT_LISTEN, EmulatorConfig, ImageCommand,
    SUPPORTED_API_VERSIONS,
};
pub use fault_args::{FaultArgs, OperationSelector, OperationValue};
pub use faults::{Faults, Operation, OperationFaults};
pub use identity::MANAGED_IDENTITY_PATH;
pub use simulate::{
    EXIT_CODE_VARIABLE as SIM_EXIT_CODE_VARIABLE, SECONDS_VARIABLE as SIM_SECONDS_VARIABLE,
};

use faults::FaultState;
use state::{RateBuckets, Shared, Store};

/// Time the server gets to finish open requests at shutdown.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Failures to start the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The listen address is not loopback and `--allow-remote` was not given.
    #[error(
        "refusing to listen on non-loopback address {0}: the emulator runs every command it is \
         sent; pass --allow-remote to accept it"
    )]
    RemoteListen(SocketAddr),
    #[error("cannot listen on {address}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the working directory")]
    WorkDir(#[source] std::io::Error),
    #[error("cannot read {path}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the certificate to {path}")]
    WriteCertificate {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot generate a TLS certificate")]
    Certificate(#[source] rcgen::Error),
    #[error("invalid PEM in the TLS certificate or key: {0}")]
    Pem(String),
    #[error("invalid TLS certificate or key")]
    Tls(#[source] rustls::Error),
    #[error("cannot watch for SIGTERM or SIGINT")]
    Signal(#[source] std::io::Error),
}

/// Entry point of the emulator.
pub struct Emulator;

impl Emulator {
    /// Binds the listen address and serves until [`EmulatorHandle::shutdown`]. Call it
    /// inside a tokio runtime.
    pub async fn start(config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
        if !config.listen.ip().is_loopback() && !config.allow_remote {
            return Err(EmulatorError::RemoteListen(config.listen));
        }

        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| EmulatorError::Bind {
                address: config.listen,
                source,
            })?;
        let address = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                address: config.listen,
                source,
            })?;

        let tls = tls_material(&config)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base_url = format!("{scheme}://{}", client_address(address));
        let (work_root, temporary) = work_root(&config)?;
        let identity_header = config
            .identity_header
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());

        let (stop, shutdown) = watch::channel(false);
        let faults = FaultState::new(config.faults.to_faults(), config.faults.seed);
        let shared = Arc::new(Shared {
            config,
            base_url,
            identity_header,
            work_root,
            store: Mutex::new(Store::default()),
            faults: Mutex::new(faults),
            counters: Mutex::new(Default::default()),
            tokens: Mutex::new(Default::default()),
            buckets: Mutex::new(RateBuckets::default()),
            shutdown,
        });

        let certificate_pem = tls.as_ref().map(|t| t.trust_pem.clone());
        let server = spawn_server(shared.clone(), listener, tls, stop.subscribe());
        tracing::info!(endpoint = %shared.base_url, "ACI emulator listening");
        Ok(EmulatorHandle {
            shared,
            address,
            server: Some(server),
            stop,
            certificate_pem,
            _temporary: temporary,
        })
    }
}

fn tls_material(config: &EmulatorConfig) -> Result<Option<tls::TlsMaterial>, EmulatorError> {
    let material = match (&config.tls_cert, &config.tls_key) {
        (Some(certificate), Some(key)) => tls::load(certificate, key)?,
        _ if config.tls => tls::generate()?,
        _ => return Ok(None),
    };
    if let Some(path) = &config.tls_cert_out {
        std::fs::write(path, &material.trust_pem).map_err(|source| {
            EmulatorError::WriteCertificate {
                path: path.clone(),
                source,
            }
        })?;
    }
    Ok(Some(material))
}

/// Returns the address clients use: an unspecified listen address is reached through
/// loopback.
fn client_address(address: SocketAddr) -> SocketAddr {
    if address.ip().is_unspecified() {
        return SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), address.port());
    }
    address
}

fn work_root(
    config: &EmulatorConfig,
) -> Result<(PathBuf, Option<tempfile::TempDir>), EmulatorError> {
    if let Some(directory) = &config.work_dir {
        std::fs::create_dir_all(directory).map_err(EmulatorError::WorkDir)?;
        return Ok((directory.clone(), None));
    }
    let temporary = tempfile::Builder::new()
        .prefix("aci-emulator-")
        .tempdir()
        .map_err(EmulatorError::WorkDir)?;
    Ok((temporary.path().to_path_buf(), Some(temporary)))
}

fn spawn_server(
    shared: Arc<Shared>,
    listener: tokio::net::TcpListener,
    tls: Option<tls::TlsMaterial>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let router = server::router(shared);
    tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|stopping| *stopping).await;
        };
        let result = match tls {
            Some(tls) => match tls::TlsListener::new(listener, tls.config) {
                Ok(listener) => {
                    axum::serve(listener, router)
                        .with_graceful_shutdown(stopped)
                        .await
                }
                Err(error) => Err(error),
            },
            None => {
                axum::serve(listener, router)
                    .with_graceful_shutdown(stopped)
                    .await
            }
        };
        if let Err(error) = result {
            tracing::error!(%error, "ACI emulator server failed");
        }
    })
}

/// A running emulator. Dropping it kills every container process; [`Self::shutdown`] also
/// stops the server.
pub struct EmulatorHandle {
    shared: Arc<Shared>,
    address: SocketAddr,
    server: Option<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    certificate_pem: Option<String>,
    _temporary: Option<tempfile::TempDir>,
}

impl EmulatorHandle {
    /// Base URL of the ARM endpoint, like `http://127.0.0.1:8181`, without a trailing slash.
    pub fn arm_endpoint(&self) -> String {
        self.shared.base_url.clone()
    }

    /// URL for IDENTITY_ENDPOINT.
    pub fn identity_endpoint(&self) -> String {
        format!("{}{MANAGED_IDENTITY_PATH}", self.shared.base_url)
    }

    /// Value for IDENTITY_HEADER.
    pub fn identity_header(&self) -> &str {
        &self.shared.identity_header
    }

    /// Authority host for Entra credentials (AZURE_AUTHORITY_HOST); the token path is
    /// `/{tenant}/oauth2/v2.0/token`. azure_identity accepts it only with --tls.
    pub fn authority_host(&self) -> String {
        self.shared.base_url.clone()
    }

    /// Base URL of the admin API, like `http://127.0.0.1:8181/admin`.
    pub fn admin_url(&self) -> String {
        format!("{}/admin", self.shared.base_url)
    }

    /// PEM that clients trust the server by when TLS is on: the generated CA certificate,
    /// or the certificate chain given with --tls-cert.
    pub fn ca_certificate_pem(&self) -> Option<&str> {
        self.certificate_pem.as_deref()
    }

    /// Returns the bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Issues a bearer token for ARM requests, as the token endpoints do.
    pub fn issue_token(&self) -> String {
        identity::issue_token(&self.shared).0
    }

    /// Replaces the active faults, as `PUT /admin/faults` does.
    pub fn set_faults(&self, faults: Faults) {
        self.shared
            .faults
            .lock()
            .expect("fault lock poisoned")
            .faults = faults;
    }

    /// Kills every container process, ends hanging requests and stops the server.
    pub async fn shutdown(mut self) {
        self.kill_all();
        let _ = self.stop.send(true);
        if let Some(server) = self.server.take()
            && tokio::time::timeout(SHUTDOWN_TIMEOUT, server)
                .await
                .is_err()
        {
            tracing::warn!("ACI emulator server did not stop in time");
        }
    }

    fn kill_all(&self) {
        let mut store = self.shared.lock_store();
        for group in store.groups.values_mut() {
            group.stop_requested = true;
            if let Some(pid) = group.pid.take() {
                process::signal_group(pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.kill_all();
        let _ = self.stop.send(true);
    }
}

/// Runs the emulator until SIGINT or SIGTERM, for the `aci-emulator` binary.
pub async fn run_until_signal(config: EmulatorConfig) -> Result<(), EmulatorError> {
    // Watch for signals before announcing the endpoints, so a client that stops the
    // emulator right after reading them is handled gracefully.
    let mut terminate =
        unix::signal(unix::SignalKind::terminate()).map_err(EmulatorError::Signal)?;
    let mut interrupt =
        unix::signal(unix::SignalKind::interrupt()).map_err(EmulatorError::Signal)?;
    let handle = Emulator::start(config).await?;

    let announcement = format!(
        "ARM endpoint:      {}\nIDENTITY_ENDPOINT: {}\nIDENTITY_HEADER:   {}\nAdmin API:         {}\n",
        handle.arm_endpoint(),
        handle.identity_endpoint(),
        handle.identity_header(),
        handle.admin_url()
    );
    // A closed stdout must not stop the emulator, so a failed write is only logged.
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout
        .write_all(announcement.as_bytes())
        .and_then(|()| stdout.flush())
    {
        tracing::warn!(%error, "cannot print the endpoints to stdout");
    }
    drop(stdout);

    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    tracing::info!("ACI emulator stopping");
    handle.shutdown().await;
    Ok(())
}
