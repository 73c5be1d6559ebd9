use std::collections::HashMap;

use super::*;

fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

fn home_with_profiles(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("profiles.toml"), text).unwrap();
    dir
}

const PROFILES: &str = r#"
active = "cloud"

[profiles.local]
PREFECT_API_URL = "http://127.0.0.1:4200/api"

[profiles.cloud]
PREFECT_API_URL = "https://api.prefect.cloud/api/accounts/a/workspaces/w"
PREFECT_API_KEY = "pnu_profile"
PREFECT_API_REQUEST_TIMEOUT = 12
PREFECT_API_TLS_INSECURE_SKIP_VERIFY = true
"#;

#[test]
fn env_only() {
    let settings = PrefectSettings::resolve(lookup(&[
        ("PREFECT_HOME", "/nonexistent/prefect-home"),
        ("PREFECT_API_URL", "http://127.0.0.1:4200/api"),
        ("PREFECT_API_AUTH_STRING", "admin:pass"),
        ("PREFECT_API_REQUEST_TIMEOUT", "2.5"),
        ("PREFECT_CLIENT_MAX_RETRIES", "3"),
    ]))
    .unwrap();
    assert_eq!(settings.api_url.as_str(), "http://127.0.0.1:4200/api");
    assert_eq!(settings.auth_string.unwrap().expose(), "admin:pass");
    assert!(settings.api_key.is_none());
    assert_eq!(settings.request_timeout, Duration::from_millis(2500));
    assert_eq!(settings.max_retries, 3);
    assert!(!settings.tls_insecure_skip_verify);
}

#[test]
fn defaults_apply() {
    let settings = PrefectSettings::resolve(lookup(&[
        ("PREFECT_HOME", "/nonexistent/prefect-home"),
        ("PREFECT_API_URL", "http://127.0.0.1:4200/api"),
    ]))
    .unwrap();
    assert_eq!(settings.request_timeout, Duration::from_secs(60));
    assert_eq!(settings.max_retries, 5);
    assert!(settings.ssl_cert_file.is_none());
}

#[test]
fn active_profile_is_read() {
    let home = home_with_profiles(PROFILES);
    let home_path = home.path().to_str().unwrap();
    let settings = PrefectSettings::resolve(lookup(&[("PREFECT_HOME", home_path)])).unwrap();
    assert!(
        settings
            .api_url
            .as_str()
            .starts_with("https://api.prefect.cloud/api/")
    );
    assert_eq!(settings.api_key.unwrap().expose(), "pnu_profile");
    assert_eq!(settings.request_timeout, Duration::from_secs(12));
    assert!(settings.tls_insecure_skip_verify);
}

#[test]
fn env_wins_over_profile() {
    let home = home_with_profiles(PROFILES);
    let home_path = home.path().to_str().unwrap();
    let settings = PrefectSettings::resolve(lookup(&[
        ("PREFECT_HOME", home_path),
        ("PREFECT_API_URL", "http://127.0.0.1:9999/api"),
        ("PREFECT_API_KEY", "pnu_env"),
    ]))
    .unwrap();
    assert_eq!(settings.api_url.as_str(), "http://127.0.0.1:9999/api");
    assert_eq!(settings.api_key.unwrap().expose(), "pnu_env");
    assert_eq!(settings.request_timeout, Duration::from_secs(12));
}

#[test]
fn prefect_profile_selects_profile() {
    let home = home_with_profiles(PROFILES);
    let home_path = home.path().to_str().unwrap();
    let settings = PrefectSettings::resolve(lookup(&[
        ("PREFECT_HOME", home_path),
        ("PREFECT_PROFILE", "local"),
    ]))
    .unwrap();
    assert_eq!(settings.api_url.as_str(), "http://127.0.0.1:4200/api");
    assert!(settings.api_key.is_none());
}

#[test]
fn home_defaults_to_dot_prefect() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".prefect")).unwrap();
    std::fs::write(home.path().join(".prefect/profiles.toml"), PROFILES).unwrap();
    let settings =
        PrefectSettings::resolve(lookup(&[("HOME", home.path().to_str().unwrap())])).unwrap();
    assert_eq!(settings.api_key.unwrap().expose(), "pnu_profile");
}

#[test]
fn missing_url_names_both_places() {
    let home = home_with_profiles("active = \"empty\"\n[profiles.empty]\n");
    let home_path = home.path().to_str().unwrap();
    let err = PrefectSettings::resolve(lookup(&[("PREFECT_HOME", home_path)])).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("environment"), "{text}");
    assert!(text.contains("profiles.toml"), "{text}");
    assert!(text.contains("\"empty\""), "{text}");
    assert!(text.contains("export PREFECT_API_URL"), "{text}");
}

#[test]
fn invalid_values_are_named() {
    let base = [
        ("PREFECT_HOME", "/nonexistent/prefect-home"),
        ("PREFECT_API_URL", "http://127.0.0.1:4200/api"),
    ];
    let cases = [
        ("PREFECT_API_REQUEST_TIMEOUT", "soon"),
        ("PREFECT_API_TLS_INSECURE_SKIP_VERIFY", "maybe"),
        ("PREFECT_CLIENT_MAX_RETRIES", "-1"),
        ("PREFECT_API_URL", "ftp://example"),
    ];
    for (name, value) in cases {
        let mut pairs = base.to_vec();
        pairs.push((name, value));
        pairs.retain(|(k, v)| *k != name || *v == value);
        let err = PrefectSettings::resolve(lookup(&pairs)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(name), "{text}");
        assert!(text.contains(value), "{text}");
    }
}

#[test]
fn invalid_profiles_file_is_reported() {
    let home = home_with_profiles("active = [");
    let home_path = home.path().to_str().unwrap();
    let err = PrefectSettings::resolve(lookup(&[("PREFECT_HOME", home_path)])).unwrap_err();
    assert!(matches!(err, SettingsError::ParseProfiles { .. }), "{err}");
}

#[test]
fn secrets_are_masked() {
    let mut settings = PrefectSettings::new("http://127.0.0.1:1/api".parse().unwrap());
    settings.api_key = Some(Secret::new("pnu_very_secret"));
    settings.auth_string = Some(Secret::new("admin:hunter2"));
    let debug = format!("{settings:?}");
    assert!(!debug.contains("pnu_very_secret"), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert_eq!(Secret::new("x").to_string(), "***");
}
