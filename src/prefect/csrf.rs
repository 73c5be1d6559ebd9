//! CSRF tokens for self-hosted Prefect servers that enable CSRF protection.
//!
//! Before the first mutating request the client calls `GET /csrf-token?client=<uuid>`. A 404,
//! or a 422 whose detail is "CSRF protection is disabled.", turns CSRF off for the client.
//! Otherwise the token goes into `Prefect-Csrf-Token` and `Prefect-Csrf-Client` on every
//! mutating request, and a 403 "Invalid CSRF token" makes the client fetch a new one.

use serde::Deserialize;
use time::OffsetDateTime;
use tokio::sync::Mutex;
use uuid::Uuid;

use super::error::PrefectError;

/// Header carrying the token (`Prefect-Csrf-Token`), lowercase for `HeaderName`.
pub const TOKEN_HEADER: &str = "prefect-csrf-token";
/// Header carrying the client id the token was issued for.
pub const CLIENT_HEADER: &str = "prefect-csrf-client";
/// The 422 detail of a server that has CSRF protection off (Prefect 3.x default).
const DISABLED_DETAIL: &str = "CSRF protection is disabled.";
/// The 403 detail of a request with a missing, expired or wrong token.
const INVALID_DETAIL: &str = "Invalid CSRF token";

/// A token and the client id it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrfToken {
    pub token: String,
    pub client: String,
}

#[derive(Debug)]
enum CsrfState {
    /// No token fetched yet.
    Unknown,
    /// The server does not use CSRF tokens, or the client is talking to Prefect Cloud.
    Disabled,
    Active {
        token: CsrfToken,
        expiration: Option<OffsetDateTime>,
    },
}

#[derive(Deserialize)]
struct TokenResponse {
    token: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expiration: Option<OffsetDateTime>,
}

/// Result of asking the server for a token.
pub enum FetchOutcome {
    Token(String, Option<OffsetDateTime>),
    Disabled,
}

/// Per-client CSRF state. The mutex also serialises token fetches.
#[derive(Debug)]
pub struct Csrf {
    client_id: String,
    state: Mutex<CsrfState>,
}

impl Csrf {
    /// State for a new client; `enabled` is false for Prefect Cloud.
    pub fn new(enabled: bool) -> Self {
        let state = if enabled {
            CsrfState::Unknown
        } else {
            CsrfState::Disabled
        };
        Self {
            client_id: Uuid::new_v4().to_string(),
            state: Mutex::new(state),
        }
    }

    /// Returns the `client` query value of the token request.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Returns the current token, calling `fetch` first when none is known or it expired.
    /// Returns `None` when CSRF is off.
    pub async fn token<F, Fut>(&self, fetch: F) -> Result<Option<CsrfToken>, PrefectError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<FetchOutcome, PrefectError>>,
    {
        let mut state = self.state.lock().await;
        match &*state {
            CsrfState::Disabled => return Ok(None),
            CsrfState::Active { token, expiration } if !is_expired(*expiration) => {
                return Ok(Some(token.clone()));
            }
            _ => {}
        }
        match fetch().await? {
            FetchOutcome::Disabled => {
                *state = CsrfState::Disabled;
                Ok(None)
            }
            FetchOutcome::Token(token, expiration) => {
                let token = CsrfToken {
                    token,
                    client: self.client_id.clone(),
                };
                *state = CsrfState::Active {
                    token: token.clone(),
                    expiration,
                };
                Ok(Some(token))
            }
        }
    }

    /// Forgets the token so the next mutating request fetches a new one.
    pub async fn invalidate(&self) {
        let mut state = self.state.lock().await;
        if matches!(*state, CsrfState::Active { .. }) {
            *state = CsrfState::Unknown;
        }
    }
}

fn is_expired(expiration: Option<OffsetDateTime>) -> bool {
    expiration.is_some_and(|at| at <= OffsetDateTime::now_utc())
}

/// Interprets the response to `GET /csrf-token`.
pub fn parse_fetch_result(
    result: Result<Vec<u8>, PrefectError>,
) -> Result<FetchOutcome, PrefectError> {
    match result {
        Ok(body) => {
            let parsed: TokenResponse =
                serde_json::from_slice(&body).map_err(|source| PrefectError::Decode {
                    operation: "read_csrf_token",
                    source,
                })?;
            Ok(FetchOutcome::Token(parsed.token, parsed.expiration))
        }
        Err(err) if err.status() == Some(404) => Ok(FetchOutcome::Disabled),
        Err(err) if err.status() == Some(422) && err.detail().contains(DISABLED_DETAIL) => {
            Ok(FetchOutcome::Disabled)
        }
        Err(err) => Err(err),
    }
}

/// True if `err` is the server rejecting the CSRF token.
pub fn is_invalid_token(err: &PrefectError) -> bool {
    err.status() == Some(403) && err.detail().contains(INVALID_DETAIL)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, detail: &str) -> Result<Vec<u8>, PrefectError> {
        let body = serde_json::json!({ "detail": detail }).to_string();
        Err(PrefectError::from_status("read_csrf_token", code, &body))
    }

    #[test]
    fn disabled_on_404_and_422() {
        assert!(matches!(
            parse_fetch_result(status(404, "Not Found")),
            Ok(FetchOutcome::Disabled)
        ));
        assert!(matches!(
            parse_fetch_result(status(422, "CSRF protection is disabled.")),
            Ok(FetchOutcome::Disabled)
        ));
        assert!(parse_fetch_result(status(422, "something else")).is_err());
        assert!(parse_fetch_result(status(500, "boom")).is_err());
    }

    #[test]
    fn token_parsed() {
        let body = br#"{"token":"abc","client":"c","expiration":"2999-01-01T00:00:00Z"}"#.to_vec();
        match parse_fetch_result(Ok(body)) {
            Ok(FetchOutcome::Token(token, Some(_))) => assert_eq!(token, "abc"),
            _ => panic!("expected a token"),
        }
    }

    #[tokio::test]
    async fn token_cached_until_invalidated() {
        let csrf = Csrf::new(true);
        let fetch = || async { Ok(FetchOutcome::Token("t1".into(), None)) };
        assert_eq!(csrf.token(fetch).await.unwrap().unwrap().token, "t1");
        let unused = || async { panic!("token should be cached") };
        assert_eq!(csrf.token(unused).await.unwrap().unwrap().token, "t1");
        csrf.invalidate().await;
        let refetch = || async { Ok(FetchOutcome::Token("t2".into(), None)) };
        assert_eq!(csrf.token(refetch).await.unwrap().unwrap().token, "t2");
    }

    #[tokio::test]
    async fn disabled_client_never_fetches() {
        let csrf = Csrf::new(false);
        let unused = || async { panic!("CSRF is disabled") };
        assert!(csrf.token(unused).await.unwrap().is_none());
        assert!(is_invalid_token(&PrefectError::from_status(
            "op",
            403,
            r#"{"detail":"Invalid CSRF token or client identifier."}"#
        )));
    }
}
