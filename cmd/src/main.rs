//! `tilt`: the command line. It parses flags and wires the libraries together; the work happens in the
//! API server (`tilt-apiserver`), the controllers (`tilt-controllers`) and the Tiltfile loader (`tilt-config`).

mod args;
mod client;
mod crds;
mod doctor;
mod down;
mod dump;
mod enable;
mod kubeconfig;
mod loader;
mod logs;
mod resources;
mod shared;
mod trigger;
mod up;
mod view;
mod web;

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
    /// Like `up`, but exit 0 once every resource is ready, or 1 when one fails or the timeout passes.
    Ci(up::CiArgs),
    /// Delete everything the running `tilt up`'s Tiltfile declared (and stop it with `--stop`).
    Down(down::DownArgs),
    /// Print resource logs from the running `tilt up`.
    Logs(logs::LogsArgs),
    /// Run a resource's update (and restart its server) now.
    Trigger(trigger::TriggerArgs),
    /// Enable resources: `tilt enable NAME…`, `--all`, `--only NAME…` or `--labels L`.
    Enable(enable::EnableArgs),
    /// Disable resources: `tilt disable NAME…`, `--all` or `--labels L`.
    Disable(enable::DisableArgs),
    /// Change the running Tiltfile's arguments: `tilt args -- …` (or edit them, or `--clear`).
    Args(args::ArgsArgs),
    /// Print the running `tilt up`'s state as JSON: `engine` (every object) or `webview` (the UI's).
    Dump(dump::DumpArgs),
    /// Web UI snapshots: `tilt snapshot view FILE` serves a downloaded snapshot.
    #[command(subcommand)]
    Snapshot(web::SnapshotCommand),
    /// Print the CustomResourceDefinitions of the tilt.dev kinds: `tilt crds | kubectl apply -f -`.
    Crds(crds::CrdsArgs),
    /// Print what tilt sees: version, kubeconfig and cluster, Docker, the running `tilt up`.
    Doctor(doctor::DoctorArgs),
    #[command(flatten)]
    Resources(resources::Command),
    /// Print the version.
    Version,
    /// Internal: the orphan reaper that `tilt up` starts (kills its process groups if tilt dies).
    #[command(name = "__reaper", hide = true)]
    Reaper,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("TILT_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = || tokio::runtime::Runtime::new().map_err(anyhow::Error::from);
    let result = match cli.command {
        Command::Version => {
            println!("tilt-rs v{}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Reaper => {
            tilt_controllers::process::reaper::serve(std::io::stdin().lock());
            Ok(())
        }
        Command::Up(args) => runtime().and_then(|rt| rt.block_on(up::up(args))),
        Command::Snapshot(command) => runtime().and_then(|rt| rt.block_on(web::snapshot(command))),
        Command::Down(args) => runtime().and_then(|rt| rt.block_on(down::down(args))),
        Command::Logs(args) => runtime().and_then(|rt| rt.block_on(logs::logs(args))),
        Command::Trigger(args) => runtime().and_then(|rt| rt.block_on(trigger::trigger(args))),
        Command::Enable(args) => return resources::exit(enable::enable(args)),
        Command::Disable(args) => return resources::exit(enable::disable(args)),
        Command::Args(a) => return resources::exit(args::args(a)),
        Command::Dump(args) => return resources::exit(dump::dump(args)),
        Command::Crds(args) => crds::crds(args),
        Command::Doctor(args) => return resources::exit(doctor::doctor(args)),
        Command::Resources(command) => return resources::run(command),
        Command::Ci(args) => match runtime().and_then(|rt| rt.block_on(up::ci(args))) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
