//! `tilt`: the command line. It parses flags and wires the libraries together; the work happens in the
//! API server (`tilt-apiserver`), the controllers (`tilt-controllers`) and the Tiltfile loader (`tilt-config`).

mod kubeconfig;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "tilt", version, about = "Tilt: a dev loop for microservices, in Rust")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the API server and controllers, and run the Tiltfile's resources until interrupted.
    Up(up::UpArgs),
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TILT_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Version => {
            println!("tilt-rs v{}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Up(args) => tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(up::up(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
