//! The commands behind the command line: each builds its runtime and returns an exit code.

use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// Runs one parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    if let Err(error) = crate::telemetry::init(&cli.logging) {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    match cli.command {
        Command::DefaultTemplate => ExitCode::SUCCESS,
        Command::Start(_) | Command::Render(_) => ExitCode::FAILURE,
    }
}
