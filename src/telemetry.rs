//! Logging setup: `tracing` to stderr as text or JSON lines.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::cli::{LogFormat, LoggingArgs};

/// Filter used when neither `--log-level` nor `RUST_LOG` is set.
const DEFAULT_FILTER: &str = "info";

/// Errors from setting up logging.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The `--log-level` value is not a valid `tracing` filter directive.
    #[error(
        "invalid --log-level {value:?}: {source}; use a level such as `info` or a directive such as `prefect_aci_worker=debug,info`"
    )]
    InvalidFilter {
        value: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
}

/// Installs the global subscriber. Call once, before any log line is written.
pub fn init(args: &LoggingArgs) -> Result<(), TelemetryError> {
    let filter = match &args.log_level {
        Some(value) => {
            EnvFilter::try_new(value).map_err(|source| TelemetryError::InvalidFilter {
                value: value.clone(),
                source,
            })?
        }
        None => {
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_span_events(FmtSpan::NONE);
    // A second init (as in tests that call commands twice) keeps the first subscriber.
    let _ = match args.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
    Ok(())
}
