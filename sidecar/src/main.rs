//! `sluice`: the command-line entry point. Parsing, logging set-up and dispatch only; the work lives in
//! the library so that tests can drive it without a process.

use std::process::ExitCode;

use clap::Parser;
use sluice_sidecar::auth::jwt::keys::{ApiKeys, JwtSecret};
use sluice_sidecar::config::{Cli, Command, KeysArgs};
use sluice_sidecar::{cli, logging, serve};

/// jemalloc instead of glibc's malloc: allocating and freeing took 8% of the sidecar's CPU per GET
/// by key (many small, short-lived buffers per request, freed on other threads), 4% with jemalloc
/// for 3 MB more resident memory (mimalloc: 7%, 11 MB more); bench/README.md, "The fixed cost of
/// a GET: allocator and the request call".
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    let outcome = match cli.command {
        Command::Serve(args) => serve::run(*args).map_err(|err| err.to_string()),
        Command::Keys(args) => print_keys(args),
        // The project commands talk to a person at a terminal: plain `error: ...` lines.
        Command::Migration(args) => return report(cli::migration::run(args)),
        Command::Db(args) => return report(cli::db::run(args)),
        Command::Start(args) => return report(cli::start::run(args)),
        Command::Gen(args) => return report(cli::gen_types::run(args)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn report(outcome: Result<(), cli::CliError>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `sluice keys`: the two API keys a client library is configured with, signed with the project secret.
fn print_keys(args: KeysArgs) -> Result<(), String> {
    let secret = JwtSecret::new(args.jwt_secret).map_err(|err| err.to_string())?;
    let keys =
        ApiKeys::sign(&secret, std::time::SystemTime::now()).map_err(|err| err.to_string())?;
    println!("anon key: {}", keys.anon);
    println!("service_role key: {}", keys.service_role);
    Ok(())
}
