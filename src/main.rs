use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = prefect_aci_worker::cli::Cli::parse();
    prefect_aci_worker::commands::run(cli)
}
