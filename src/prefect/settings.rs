//! Prefect connection settings, resolved from the environment and the active profile.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

/// Prefect's default `PREFECT_API_REQUEST_TIMEOUT`, in seconds.
const DEFAULT_REQUEST_TIMEOUT_SECONDS: f64 = 60.0;
/// Prefect's default `PREFECT_CLIENT_MAX_RETRIES`.
const DEFAULT_MAX_RETRIES: u32 = 5;

/// A secret string. `Debug` and `Display` print `***`, so it is safe inside logged structs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the secret value. Callers must keep it out of logs, metrics and error messages.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Settings for talking to the Prefect API.
#[derive(Debug, Clone)]
pub struct PrefectSettings {
    /// `PREFECT_API_URL`, for example `http://127.0.0.1:4200/api`.
    pub api_url: Url,
    /// `PREFECT_API_KEY`, sent as a Bearer token unless an auth string is set.
    pub api_key: Option<Secret>,
    /// `PREFECT_API_AUTH_STRING` (`user:password`), sent as Basic auth; wins over the key.
    pub auth_string: Option<Secret>,
    /// `PREFECT_API_REQUEST_TIMEOUT`: timeout of each HTTP attempt.
    pub request_timeout: Duration,
    /// `PREFECT_API_TLS_INSECURE_SKIP_VERIFY`: accept any server certificate.
    pub tls_insecure_skip_verify: bool,
    /// `PREFECT_API_SSL_CERT_FILE`: PEM bundle of extra CA certificates.
    pub ssl_cert_file: Option<PathBuf>,
    /// `PREFECT_CLIENT_MAX_RETRIES`: retries after the first attempt of a call.
    pub max_retries: u32,
}

/// Failure to resolve [`PrefectSettings`].
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "PREFECT_API_URL is not set in the environment nor in profile {profile:?} of {path}: \
         export PREFECT_API_URL (for example http://127.0.0.1:4200/api) or run \
         `prefect config set PREFECT_API_URL=...`"
    )]
    MissingApiUrl { profile: String, path: PathBuf },
    #[error("invalid {name} {value:?}: {expected}")]
    InvalidValue {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("failed to read Prefect profiles file {path}")]
    ReadProfiles {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid TOML in Prefect profiles file {path}: fix or remove the file")]
    ParseProfiles {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
}

impl PrefectSettings {
    /// Builds settings for `api_url` with Prefect's defaults and no credentials.
    pub fn new(api_url: Url) -> Self {
        Self {
            api_url,
            api_key: None,
            auth_string: None,
            request_timeout: Duration::from_secs_f64(DEFAULT_REQUEST_TIMEOUT_SECONDS),
            tls_insecure_skip_verify: false,
            ssl_cert_file: None,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }

    /// Resolves settings from the process environment and the active Prefect profile.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::resolve(|name| std::env::var(name).ok())
    }

    /// Resolves settings from `env` (a variable lookup), falling back to the active profile
    /// of `$PREFECT_PROFILES_PATH` (default `$PREFECT_HOME/profiles.toml`, home `~/.prefect`).
    /// The profile is `$PREFECT_PROFILE` if set, else the file's `active` key. Environment
    /// values win over profile values; a missing profiles file counts as empty.
    pub fn resolve(env: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let env = |name: &str| env(name).filter(|value| !value.is_empty());
        let path = profiles_path(&env);
        let (profile_name, profile) = load_active_profile(&path, env("PREFECT_PROFILE"))?;
        let get = |name: &str| env(name).or_else(|| profile.get(name).cloned());

        let Some(raw_url) = get("PREFECT_API_URL") else {
            return Err(SettingsError::MissingApiUrl {
                profile: profile_name,
                path,
            });
        };
        let mut settings = Self::new(parse_api_url(&raw_url)?);
        settings.api_key = get("PREFECT_API_KEY").map(Secret::new);
        settings.auth_string = get("PREFECT_API_AUTH_STRING").map(Secret::new);
        if let Some(raw) = get("PREFECT_API_REQUEST_TIMEOUT") {
            settings.request_timeout = parse_seconds("PREFECT_API_REQUEST_TIMEOUT", &raw)?;
        }
        if let Some(raw) = get("PREFECT_API_TLS_INSECURE_SKIP_VERIFY") {
            settings.tls_insecure_skip_verify =
                parse_bool("PREFECT_API_TLS_INSECURE_SKIP_VERIFY", &raw)?;
        }
        settings.ssl_cert_file = get("PREFECT_API_SSL_CERT_FILE").map(PathBuf::from);
        if let Some(raw) = get("PREFECT_CLIENT_MAX_RETRIES") {
            settings.max_retries = raw
                .trim()
                .parse()
                .map_err(|_| SettingsError::InvalidValue {
                    name: "PREFECT_CLIENT_MAX_RETRIES",
                    value: raw.clone(),
                    expected: "a whole number of retries such as 5",
                })?;
        }
        Ok(settings)
    }
}

fn profiles_path(env: &impl Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(path) = env("PREFECT_PROFILES_PATH") {
        return expand_home(&path, env);
    }
    let home = env("PREFECT_HOME").unwrap_or_else(|| "~/.prefect".to_owned());
    expand_home(&home, env).join("profiles.toml")
}

fn expand_home(path: &str, env: &impl Fn(&str) -> Option<String>) -> PathBuf {
    match (path.strip_prefix("~/"), env("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Reads the profile named `selected` (or the file's `active` one, else `ephemeral` as
/// the Prefect CLI does) and returns its name and its settings as strings.
fn load_active_profile(
    path: &Path,
    selected: Option<String>,
) -> Result<(String, HashMap<String, String>), SettingsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(SettingsError::ReadProfiles {
                path: path.to_owned(),
                source,
            });
        }
    };
    let doc: toml::Table =
        toml::from_str(&text).map_err(|source| SettingsError::ParseProfiles {
            path: path.to_owned(),
            source,
        })?;
    let active = doc
        .get("active")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let name = selected
        .or(active)
        .unwrap_or_else(|| "ephemeral".to_owned());
    let table = doc
        .get("profiles")
        .and_then(|profiles| profiles.get(&name))
        .and_then(|profile| profile.as_table());
    let values = table
        .into_iter()
        .flatten()
        .map(|(key, value)| (key.clone(), toml_value_text(value)))
        .collect();
    Ok((name, values))
}

fn toml_value_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn parse_api_url(raw: &str) -> Result<Url, SettingsError> {
    let invalid = || SettingsError::InvalidValue {
        name: "PREFECT_API_URL",
        value: raw.to_owned(),
        expected: "an http(s) URL ending in /api, such as http://127.0.0.1:4200/api",
    };
    let url = Url::parse(raw.trim()).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid());
    }
    Ok(url)
}

fn parse_seconds(name: &'static str, raw: &str) -> Result<Duration, SettingsError> {
    raw.trim()
        .parse::<f64>()
        .ok()
        .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| SettingsError::InvalidValue {
            name,
            value: raw.to_owned(),
            expected: "a positive number of seconds such as 60",
        })
}

/// Parses a boolean the way pydantic does for Prefect settings.
fn parse_bool(name: &'static str, raw: &str) -> Result<bool, SettingsError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "y" | "on" => Ok(true),
        "0" | "false" | "f" | "no" | "n" | "off" => Ok(false),
        _ => Err(SettingsError::InvalidValue {
            name,
            value: raw.to_owned(),
            expected: "true or false",
        }),
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
