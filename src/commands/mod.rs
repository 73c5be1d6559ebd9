//! The commands behind the command line: each builds its runtime and returns an exit code.

mod render;

use std::process::ExitCode;

use crate::cli::{Cli, Command, StartArgs};
use crate::config::WorkerConfig;

/// Exit code for invalid settings, as command-line tools use for usage errors.
const USAGE_ERROR: u8 = 2;

/// Runs one parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    if let Err(error) = crate::telemetry::init(&cli.logging) {
        eprintln!("error: {error}");
        return ExitCode::from(USAGE_ERROR);
    }
    match cli.command {
        Command::DefaultTemplate => default_template(),
        Command::Start(args) => start(&args),
        Command::Render(args) => match runtime() {
            Ok(runtime) => runtime.block_on(render::run(&args)),
            Err(code) => code,
        },
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            eprintln!("error: could not start the async runtime: {error}");
            ExitCode::FAILURE
        })
}

fn default_template() -> ExitCode {
    let template = crate::template::default_base_job_template();
    match serde_json::to_string_pretty(&template) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: could not print the template: {error}");
            ExitCode::FAILURE
        }
    }
}

fn start(args: &StartArgs) -> ExitCode {
    let config = match WorkerConfig::from_args(args) {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(%error, "invalid settings");
            eprintln!("error: {error}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(crate::worker::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "worker failed");
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
