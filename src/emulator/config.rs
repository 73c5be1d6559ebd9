//! Settings of the emulator: command-line flags, each with an `ACI_EMULATOR_*` variable.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::Args;

use super::fault_args::FaultArgs;

/// Default listen address. Port 8181 is not used by Prefect (4200) or the worker.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8181";
/// Entrypoint of the Prefect images: it only prepares the environment and execs its
/// arguments, so a command that starts with it runs the rest directly.
pub const DEFAULT_ENTRYPOINT_SHIM: &str = "/opt/prefect/entrypoint.sh";
/// The api-versions the emulator accepts: the newest stable one and the one before it.
pub const SUPPORTED_API_VERSIONS: [&str; 2] = ["2026-05-01", "2025-09-01"];

/// Every setting of `aci-emulator`. Tests build it with [`EmulatorConfig::for_tests`].
#[derive(Args, Debug, Clone)]
pub struct EmulatorConfig {
    /// Address to serve ARM, identity and admin requests on (host:port; port 0 picks one).
    #[arg(long, env = "ACI_EMULATOR_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Accept a non-loopback --listen address. The emulator runs every command it is sent,
    /// so only use this on a trusted network.
    #[arg(long, env = "ACI_EMULATOR_ALLOW_REMOTE")]
    pub allow_remote: bool,

    /// Serve HTTPS with a certificate for 127.0.0.1 and localhost signed by a CA generated at
    /// start, unless --tls-cert and --tls-key are given.
    #[arg(long, env = "ACI_EMULATOR_TLS")]
    pub tls: bool,

    /// File to write the certificate clients should trust to (PEM: the generated CA, or
    /// --tls-cert), for their SSL_CERT_FILE.
    #[arg(long, env = "ACI_EMULATOR_TLS_CERT_OUT", value_name = "FILE")]
    pub tls_cert_out: Option<PathBuf>,

    /// Certificate chain to serve (PEM). Implies --tls; needs --tls-key.
    #[arg(
        long,
        env = "ACI_EMULATOR_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// Private key of --tls-cert (PEM).
    #[arg(
        long,
        env = "ACI_EMULATOR_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Accept ARM requests with any or no Authorization header.
    #[arg(long, env = "ACI_EMULATOR_NO_AUTH")]
    pub no_auth: bool,

    /// Value clients must send in `x-identity-header` to the managed identity endpoint
    /// (IDENTITY_HEADER). A random value is generated when unset.
    #[arg(long, env = "ACI_EMULATOR_IDENTITY_HEADER", value_name = "VALUE")]
    pub identity_header: Option<String>,

    /// A client id and secret accepted by the Entra token endpoint, as ID=SECRET.
    /// Repeatable; the variable takes a comma-separated list.
    #[arg(
        long = "client-credential",
        env = "ACI_EMULATOR_CLIENT_CREDENTIALS",
        value_name = "ID=SECRET",
        value_delimiter = ','
    )]
    pub client_credentials: Vec<ClientCredential>,

    /// Lifetime of issued access tokens, in seconds.
    #[arg(
        long,
        env = "ACI_EMULATOR_TOKEN_LIFETIME_SECONDS",
        default_value_t = 3600
    )]
    pub token_lifetime_seconds: u64,

    /// Number of container groups per page of a list response before a nextLink is sent.
    #[arg(long, env = "ACI_EMULATOR_PAGE_SIZE", default_value_t = 100)]
    pub page_size: usize,

    /// Accept a container group whose location differs from its resource group's.
    #[arg(long, env = "ACI_EMULATOR_ANY_LOCATION")]
    pub any_location: bool,

    /// Maximum number of container groups per subscription and location. One more create
    /// returns 409 ContainerGroupQuotaReached.
    #[arg(long, env = "ACI_EMULATOR_MAX_CONTAINER_GROUPS", default_value_t = 100)]
    pub max_container_groups: usize,

    /// Time a new group spends in provisioning state Pending, in milliseconds.
    #[arg(long, env = "ACI_EMULATOR_PENDING_MS", default_value_t = 200)]
    pub pending_ms: u64,

    /// Time a new group spends in provisioning state Creating, in milliseconds.
    #[arg(long, env = "ACI_EMULATOR_CREATING_MS", default_value_t = 200)]
    pub creating_ms: u64,

    /// Time between SIGTERM and SIGKILL when a container is stopped or deleted, in
    /// milliseconds.
    #[arg(long, env = "ACI_EMULATOR_STOP_GRACE_MS", default_value_t = 1000)]
    pub stop_grace_ms: u64,

    /// Directory under which each container group gets its working directory (and HOME).
    /// A temporary directory, removed at shutdown, when unset.
    #[arg(long, env = "ACI_EMULATOR_WORK_DIR", value_name = "DIR")]
    pub work_dir: Option<PathBuf>,

    /// A leading command argument equal to this path is dropped before running it.
    /// Repeatable.
    #[arg(
        long,
        env = "ACI_EMULATOR_ENTRYPOINT_SHIM",
        value_name = "PATH",
        value_delimiter = ',',
        default_value = DEFAULT_ENTRYPOINT_SHIM
    )]
    pub entrypoint_shim: Vec<String>,

    /// Directory put in front of PATH for container processes (for example a venv's bin,
    /// so `prefect` resolves to it). Repeatable; earlier ones come first.
    #[arg(
        long,
        env = "ACI_EMULATOR_PATH_PREPEND",
        value_name = "DIR",
        value_delimiter = ','
    )]
    pub path_prepend: Vec<PathBuf>,

    /// For images matching GLOB (`*` and `?`), run PROGRAM (shell words) in front of the
    /// container's command; it is the image's entrypoint. The first match wins. Repeatable.
    #[arg(
        long,
        env = "ACI_EMULATOR_IMAGE_COMMAND",
        value_name = "GLOB=PROGRAM",
        value_delimiter = ','
    )]
    pub image_command: Vec<ImageCommand>,

    /// Simulate every container: run no process, wait ACI_EMULATOR_SIM_SECONDS and exit
    /// with ACI_EMULATOR_SIM_EXIT_CODE, reporting flow run states to PREFECT_API_URL.
    #[arg(long, env = "ACI_EMULATOR_SIMULATE")]
    pub simulate: bool,

    /// Simulate only containers whose image matches GLOB. Repeatable.
    #[arg(
        long,
        env = "ACI_EMULATOR_SIMULATE_IMAGE",
        value_name = "GLOB",
        value_delimiter = ','
    )]
    pub simulate_image: Vec<String>,

    /// Run time of a simulated container without ACI_EMULATOR_SIM_SECONDS, in seconds.
    #[arg(long, env = "ACI_EMULATOR_SIMULATE_SECONDS", default_value_t = 1.0)]
    pub simulate_seconds: f64,

    /// Size of the subscription read bucket (x-ms-ratelimit-remaining-subscription-reads).
    #[arg(long, env = "ACI_EMULATOR_READ_BUCKET", default_value_t = 250)]
    pub read_bucket: u32,

    /// Refill rate of the read bucket, in requests per second.
    #[arg(long, env = "ACI_EMULATOR_READ_REFILL", default_value_t = 25.0)]
    pub read_refill: f64,

    /// Size of the subscription write bucket.
    #[arg(long, env = "ACI_EMULATOR_WRITE_BUCKET", default_value_t = 200)]
    pub write_bucket: u32,

    /// Refill rate of the write bucket, in requests per second.
    #[arg(long, env = "ACI_EMULATOR_WRITE_REFILL", default_value_t = 10.0)]
    pub write_refill: f64,

    /// Size of the subscription delete bucket.
    #[arg(long, env = "ACI_EMULATOR_DELETE_BUCKET", default_value_t = 200)]
    pub delete_bucket: u32,

    /// Refill rate of the delete bucket, in requests per second.
    #[arg(long, env = "ACI_EMULATOR_DELETE_REFILL", default_value_t = 10.0)]
    pub delete_refill: f64,

    #[command(flatten)]
    pub faults: FaultArgs,
}

impl EmulatorConfig {
    /// Settings for tests: port 0 on 127.0.0.1, short timings, the defaults otherwise.
    pub fn for_tests() -> Self {
        Self {
            listen: "127.0.0.1:0".parse().expect("literal address"),
            pending_ms: 50,
            creating_ms: 50,
            stop_grace_ms: 500,
            ..Self::default()
        }
    }
}

impl Default for EmulatorConfig {
    /// Returns the command-line defaults.
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("literal address"),
            allow_remote: false,
            tls: false,
            tls_cert_out: None,
            tls_cert: None,
            tls_key: None,
            no_auth: false,
            identity_header: None,
            client_credentials: Vec::new(),
            token_lifetime_seconds: 3600,
            page_size: 100,
            any_location: false,
            max_container_groups: 100,
            pending_ms: 200,
            creating_ms: 200,
            stop_grace_ms: 1000,
            work_dir: None,
            entrypoint_shim: vec![DEFAULT_ENTRYPOINT_SHIM.to_string()],
            path_prepend: Vec::new(),
            image_command: Vec::new(),
            simulate: false,
            simulate_image: Vec::new(),
            simulate_seconds: 1.0,
            read_bucket: 250,
            read_refill: 25.0,
            write_bucket: 200,
            write_refill: 10.0,
            delete_bucket: 200,
            delete_refill: 10.0,
            faults: FaultArgs::default(),
        }
    }
}

/// A client id and secret the Entra token endpoint accepts. Debug hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredential {
    pub client_id: String,
    pub client_secret: String,
}

impl fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredential")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

impl FromStr for ClientCredential {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((id, secret)) if !id.is_empty() && !secret.is_empty() => Ok(Self {
                client_id: id.to_string(),
                client_secret: secret.to_string(),
            }),
            _ => Err("expected CLIENT_ID=SECRET with both parts non-empty".to_string()),
        }
    }
}

/// An image pattern and the local program run as the entrypoint of matching images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageCommand {
    pub pattern: String,
    pub program: Vec<String>,
}

impl FromStr for ImageCommand {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((pattern, program)) = s.split_once('=') else {
            return Err(format!(
                "invalid image command {s:?}: expected GLOB=PROGRAM"
            ));
        };
        let words = shlex::split(program)
            .ok_or_else(|| format!("invalid image command {s:?}: unbalanced quotes"))?;
        if pattern.is_empty() || words.is_empty() {
            return Err(format!(
                "invalid image command {s:?}: GLOB and PROGRAM are required"
            ));
        }
        Ok(Self {
            pattern: pattern.to_string(),
            program: words,
        })
    }
}

/// Matches `text` against a glob where `*` is any run of characters and `?` one character.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut expression = String::from("^");
    for c in pattern.chars() {
        match c {
            '*' => expression.push_str(".*"),
            '?' => expression.push('.'),
            other => expression.push_str(&regex::escape(&other.to_string())),
        }
    }
    expression.push('$');
    regex::Regex::new(&expression).is_ok_and(|re| re.is_match(text))
}
