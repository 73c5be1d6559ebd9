//! `aci-emulator`: serves ACI's ARM API on this machine and runs container groups as local
//! processes. See docs/emulator.md.

use clap::Parser;
use prefect_aci_worker::emulator::{EmulatorConfig, run_until_signal};

/// A local Azure Container Instances endpoint: ARM container groups run as local processes.
#[derive(Parser, Debug)]
#[command(name = "aci-emulator", version, about, long_about = None)]
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
