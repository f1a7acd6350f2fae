//! `sluice start`: what `make run` does, for an installed binary. A local cluster in
//! `<project>/.sluice/data` (created on the first start, on the Supabase CLI's ports), the
//! project's `supabase/` applied (a new cluster: `db reset`; an existing one: `migration up`),
//! then the API until Ctrl-C or SIGTERM, after which the cluster is stopped too.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Args, Parser};

use super::db::{self, Privileges, ResetArgs};
use super::migration::{self, UpArgs};
use super::pitr::Cluster;
use super::project::{hex, Project};
use super::{block_on, connect, parse_url, CliError, Target};
use crate::auth::jwt::keys::{ApiKeys, JwtSecret};
use crate::config::{Cli, Command as SluiceCommand};

#[derive(Debug, Args)]
pub struct StartArgs {
    /// The project folder, the one holding `supabase/` (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,

    /// Port of the local Postgres (the Supabase CLI's).
    #[arg(long, default_value_t = 54322)]
    pub db_port: u16,

    /// Address of the API (the Supabase CLI's port).
    #[arg(long, env = "SLUICE_LISTEN", default_value = "127.0.0.1:54321")]
    pub listen: SocketAddr,

    /// JWT secret (32 bytes or more; the Supabase CLI's demo secret works); default: one
    /// generated on the first start and kept in .sluice/jwt_secret.
    #[arg(long, env = "SLUICE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Folder of initdb and pg_ctl (default: PG_CONFIG's bindir, else PATH).
    #[arg(long, env = "SLUICE_PG_BINDIR", value_name = "DIR")]
    pub pg_bindir: Option<PathBuf>,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
    let what = what.into();
    move |err| CliError::Io { what, err }
}

/// A file holding 48 random hex characters, made on first use.
fn secret_file(path: &Path) -> Result<String, CliError> {
    if let Ok(text) = std::fs::read_to_string(path) {
        if !text.trim().is_empty() {
            return Ok(text.trim().to_owned());
        }
    }
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|err| CliError::Input(format!("the system random source failed: {err}")))?;
    let secret = hex(&bytes);
    std::fs::write(path, &secret).map_err(io(path.display().to_string()))?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(io(path.display().to_string()))?;
    Ok(secret)
}

/// initdb, as the `postgres` user when run as root (Postgres refuses to run as root).
fn init_cluster(data: &Path, state: &Path, bindir: Option<&Path>) -> Result<(), CliError> {
    std::fs::create_dir_all(data).map_err(io(data.display().to_string()))?;
    let as_root = super::pitr::effective_uid() == 0;
    let pwfile = state.join("initdb-password");
    std::fs::write(&pwfile, "postgres\n").map_err(io(pwfile.display().to_string()))?;
    let mut command = if as_root {
        for path in [data, pwfile.as_path()] {
            let status = Command::new("chown")
                .arg("postgres:")
                .arg(path)
                .status()
                .map_err(io("chown"))?;
            if !status.success() {
                return Err(CliError::Input(
                    "running as root needs a `postgres` user to run the cluster".into(),
                ));
            }
        }
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(db::pg_tool(bindir, "initdb"));
        command
    } else {
        Command::new(db::pg_tool(bindir, "initdb"))
    };
    command
        .arg("-D")
        .arg(data)
        .args(["-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8"])
        .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
        .arg(format!("--pwfile={}", pwfile.display()));
    let output = command.output().map_err(io("running initdb"))?;
    let _ = std::fs::remove_file(&pwfile);
    if !output.status.success() {
        return Err(CliError::Db(format!(
            "initdb failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(())
}

/// The settings of the local cluster, rewritten on every start (the port may change).
fn write_settings(data: &Path, port: u16, bindir: Option<&Path>) -> Result<(), CliError> {
    let preload = {
        let pg_config = db::pg_tool(bindir, "pg_config");
        Command::new(pg_config)
            .arg("--pkglibdir")
            .output()
            .ok()
            .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
            .is_some_and(|dir| dir.join("sluice.so").is_file())
    };
    let mut settings = format!(
        "# Written by `sluice start` on every start.\nport = {port}\nlisten_addresses = '127.0.0.1'\n\
         unix_socket_directories = '{}'\nsluice.database = 'postgres'\n",
        data.display()
    );
    if preload {
        settings.push_str("shared_preload_libraries = 'sluice'\n");
    }
    let file = data.join("sluice-start.conf");
    std::fs::write(&file, settings).map_err(io(file.display().to_string()))?;
    let conf = data.join("postgresql.conf");
    let text = std::fs::read_to_string(&conf).map_err(io(conf.display().to_string()))?;
    let include = "include_if_exists = 'sluice-start.conf'";
    if !text.contains(include) {
        std::fs::write(&conf, format!("{text}\n{include}\n"))
            .map_err(io(conf.display().to_string()))?;
    }
    Ok(())
}

pub fn run(args: StartArgs) -> Result<(), CliError> {
    let project = Project::new(args.workdir.clone())?;
    let root = project.root().to_path_buf();
    let state = root.join(".sluice");
    std::fs::create_dir_all(&state).map_err(io(state.display().to_string()))?;
    let data = state.join("data");
    let bindir = args.pg_bindir.clone();
    let new = !data.join("PG_VERSION").is_file();
    if new {
        eprintln!("creating a local cluster in {}", data.display());
        init_cluster(&data, &state, bindir.as_deref())?;
    }
    write_settings(&data, args.db_port, bindir.as_deref())?;
    let cluster = Cluster::new(&data, bindir.clone())?;
    cluster.start("start")?;
    let outcome = prepare_and_serve(&args, &project, &state, new);
    let stopped = cluster.stop();
    outcome.and(stopped)
}

fn prepare_and_serve(
    args: &StartArgs,
    project: &Project,
    state: &Path,
    new: bool,
) -> Result<(), CliError> {
    let admin_url = format!(
        "postgres://postgres:postgres@127.0.0.1:{}/postgres",
        args.db_port
    );
    let target = || Target {
        db_url: admin_url.clone(),
        workdir: Some(project.root().to_path_buf()),
    };
    let has_migrations = project.migrations_dir().is_dir();
    if new && has_migrations {
        db::run_reset(ResetArgs {
            target: target(),
            supabase_privileges: Privileges::Auto,
            lock_timeout: 10,
        })?;
    } else {
        block_on(async {
            let client = connect(&parse_url(&admin_url)?).await?;
            client
                .batch_execute(
                    "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS sluice",
                )
                .await?;
            client
                .batch_execute("ALTER EXTENSION sluice UPDATE")
                .await?;
            Ok(())
        })?;
        if has_migrations {
            migration::run_up(UpArgs {
                target: target(),
                yes: false,
                lock_timeout: 10,
                supabase_privileges: project.is_supabase(),
            })?;
        }
    }
    // The sidecar logs in as authenticator, with a password kept in .sluice/.
    let password = secret_file(&state.join("authenticator_password"))?;
    block_on(async {
        let client = connect(&parse_url(&admin_url)?).await?;
        client
            .batch_execute(&format!(
                "ALTER ROLE authenticator LOGIN PASSWORD '{password}'"
            ))
            .await?;
        Ok(())
    })?;
    let secret = match &args.jwt_secret {
        Some(secret) => secret.clone(),
        None => secret_file(&state.join("jwt_secret"))?,
    };
    let keys = JwtSecret::new(secret.clone())
        .map_err(|err| CliError::Input(format!("SLUICE_JWT_SECRET: {err}")))
        .and_then(|key| {
            ApiKeys::sign(&key, std::time::SystemTime::now())
                .map_err(|err| CliError::Input(err.to_string()))
        })?;
    println!(
        "\nSluice is running. Ctrl-C stops it.\n\nAPI URL: http://{}\nDB URL: {admin_url}\n\
         anon key: {}\nservice_role key: {}\n",
        args.listen, keys.anon, keys.service_role
    );
    let sidecar_url = format!(
        "postgres://authenticator:{password}@127.0.0.1:{}/postgres",
        args.db_port
    );
    let listen = args.listen.to_string();
    let parsed = Cli::try_parse_from([
        "sluice",
        "serve",
        "--database-url",
        &sidecar_url,
        "--jwt-secret",
        &secret,
        "--listen",
        &listen,
    ])
    .map_err(|err| CliError::Input(err.to_string()))?;
    let SluiceCommand::Serve(serve_args) = parsed.command else {
        return Err(CliError::Input("could not build the serve settings".into()));
    };
    crate::serve::run(*serve_args).map_err(|err| CliError::Db(err.to_string()))
}
