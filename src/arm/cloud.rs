//! Azure clouds, the ARM endpoint and its loopback-only `http://` rule, and extra CA roots.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use url::{Host, Url};

/// Environment variable naming a PEM bundle of extra CA certificates to trust.
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";

/// An Azure cloud: picks the ARM endpoint, the Entra authority host and the token scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AzureCloud {
    #[default]
    Public,
    #[value(name = "usgov")]
    UsGov,
    China,
}

impl AzureCloud {
    /// Returns the ARM endpoint, which is also the audience of ARM tokens.
    pub fn arm_endpoint(self) -> &'static str {
        match self {
            Self::Public => "https://management.azure.com",
            Self::UsGov => "https://management.usgovcloudapi.net",
            Self::China => "https://management.chinacloudapi.cn",
        }
    }

    /// Returns the Entra ID authority host, as azure_identity 1.0 names it for each cloud.
    pub fn authority_host(self) -> &'static str {
        match self {
            Self::Public => "https://login.microsoftonline.com",
            Self::UsGov => "https://login.microsoftonline.us",
            Self::China => "https://login.chinacloudapi.cn",
        }
    }

    /// Returns the scope to request ARM tokens for.
    pub fn token_scope(self) -> String {
        format!("{}/.default", self.arm_endpoint())
    }
}

/// Errors in endpoint and TLS settings.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The ARM endpoint is not a URL.
    #[error(
        "invalid ARM endpoint {value:?}: {source}; expected a URL such as https://management.azure.com"
    )]
    InvalidUrl {
        value: String,
        #[source]
        source: url::ParseError,
    },
    /// The ARM endpoint's scheme is neither `https` nor `http`.
    #[error(
        "invalid ARM endpoint {value:?}: the scheme must be https (or http for a loopback host)"
    )]
    UnsupportedScheme { value: String },
    /// A plain `http://` endpoint on a host that is not loopback.
    #[error(
        "rejected ARM endpoint {value:?}: plain http is accepted only for loopback hosts \
         (127.0.0.0/8, ::1, localhost) because the bearer token would cross the network \
         unencrypted; use https"
    )]
    InsecureRemote { value: String },
    /// The CA bundle could not be read.
    #[error("failed to read the CA bundle {path} (from {SSL_CERT_FILE}): {source}")]
    ReadCaBundle {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The CA bundle is not valid PEM or contains no certificate.
    #[error("invalid CA bundle {path} (from {SSL_CERT_FILE}): {reason}; expected PEM certificates")]
    InvalidCaBundle { path: PathBuf, reason: String },
    /// reqwest rejected the TLS settings.
    #[error("failed to build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
}

/// Location of ARM: a cloud, optionally overridden by an explicit endpoint for an emulator
/// or a private cloud.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointSettings {
    pub cloud: AzureCloud,
    /// Replaces the cloud's ARM endpoint when set.
    pub arm_endpoint: Option<String>,
}

impl EndpointSettings {
    /// Returns the ARM endpoint to use, checked by [`check_arm_endpoint`].
    pub fn arm_endpoint(&self) -> Result<Url, EndpointError> {
        let value = self
            .arm_endpoint
            .as_deref()
            .unwrap_or(self.cloud.arm_endpoint());
        check_arm_endpoint(value)
    }
}

/// Parses an ARM endpoint, accepting `https://` anywhere and `http://` only for loopback
/// hosts, since every request carries a bearer token.
pub fn check_arm_endpoint(value: &str) -> Result<Url, EndpointError> {
    let url = Url::parse(value).map_err(|source| EndpointError::InvalidUrl {
        value: value.to_owned(),
        source,
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(EndpointError::InsecureRemote {
            value: value.to_owned(),
        }),
        _ => Err(EndpointError::UnsupportedScheme {
            value: value.to_owned(),
        }),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Reads the PEM bundle at `path` (the value of `SSL_CERT_FILE`) into certificates for
/// reqwest. Every certificate in it is trusted in addition to the system roots.
pub fn read_ca_bundle(path: &Path) -> Result<Vec<reqwest::Certificate>, EndpointError> {
    let pem = std::fs::read(path).map_err(|source| EndpointError::ReadCaBundle {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |reason: String| EndpointError::InvalidCaBundle {
        path: path.to_owned(),
        reason,
    };
    let certificates =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| invalid(e.to_string()))?;
    if certificates.is_empty() {
        return Err(invalid("no certificate found".to_owned()));
    }
    Ok(certificates)
}

/// Builds the reqwest client for ARM and for Entra calls, trusting the system roots plus
/// the certificates of `ca_bundle`.
///
/// Redirects are not followed, so a bearer token is never sent to a host named by a
/// `Location` header.
pub fn http_client(ca_bundle: Option<&Path>) -> Result<reqwest::Client, EndpointError> {
    let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if let Some(path) = ca_bundle {
        builder = builder.tls_certs_merge(read_ca_bundle(path)?);
    }
    builder.build().map_err(EndpointError::HttpClient)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_http_accepted() {
        for value in [
            "http://127.0.0.1:8080",
            "http://127.3.4.5",
            "http://[::1]:9000/",
            "http://localhost:1234",
            "http://LOCALHOST",
            "https://management.azure.com",
            "https://10.0.0.1",
        ] {
            assert!(check_arm_endpoint(value).is_ok(), "{value}");
        }
    }

    #[test]
    fn remote_http_rejected() {
        for value in [
            "http://10.0.0.1",
            "http://management.azure.com",
            "http://localhost.example.com",
            "http://[::2]",
        ] {
            let err = check_arm_endpoint(value).unwrap_err();
            assert!(
                matches!(err, EndpointError::InsecureRemote { .. }),
                "{value}"
            );
            assert!(err.to_string().contains("loopback"), "{err}");
        }
        assert!(matches!(
            check_arm_endpoint("ftp://127.0.0.1"),
            Err(EndpointError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            check_arm_endpoint("not a url"),
            Err(EndpointError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn cloud_table() {
        assert_eq!(
            AzureCloud::UsGov.token_scope(),
            "https://management.usgovcloudapi.net/.default"
        );
        assert_eq!(
            AzureCloud::China.authority_host(),
            "https://login.chinacloudapi.cn"
        );
        let settings = EndpointSettings::default();
        assert_eq!(
            settings.arm_endpoint().unwrap().as_str(),
            "https://management.azure.com/"
        );
    }

    #[test]
    fn ca_bundle_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not pem").unwrap();
        let err = read_ca_bundle(&path).unwrap_err();
        assert!(err.to_string().contains("empty.pem"), "{err}");
        let missing = read_ca_bundle(&dir.path().join("missing.pem")).unwrap_err();
        assert!(matches!(missing, EndpointError::ReadCaBundle { .. }));
    }
}
