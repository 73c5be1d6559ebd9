//! `aci-emulator`: serves ACI's ARM API on this machine and runs container groups as local
//! processes. See docs/emulator.md.

use clap::Parser;
use prefect_aci_worker::emulator::{EmulatorConfig, run_until_signal};

/// Text after the flag list: what the emulator serves besides ARM.
const AFTER_HELP: &str = "\
Endpoints besides ARM:
  GET  /msi/token                         managed identity (IDENTITY_ENDPOINT)
  POST /{tenant}/oauth2/v2.0/token        Entra client credentials
  GET  /admin/faults, PUT /admin/faults   read or replace faults (JSON)
  GET  /admin/counters                    requests by operation and status
  POST /admin/reset                       restore start-up faults, clear counters
  GET  /admin/groups                      groups with their states and process ids
  DELETE /admin/groups/{sub}/{rg}/{name}  delete a group out of band

Simulated containers read ACI_EMULATOR_SIM_SECONDS (run time, seconds) and
ACI_EMULATOR_SIM_EXIT_CODE (exit code) from their environment.
See docs/emulator.md.";

/// A local Azure Container Instances endpoint: ARM container groups run as local processes.
#[derive(Parser, Debug)]
#[command(
    name = "aci-emulator",
    version,
    about = "A local Azure Container Instances endpoint: ARM container groups run as local processes",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(flatten)]
    config: EmulatorConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    run_until_signal(cli.config).await?;
    Ok(())
}
