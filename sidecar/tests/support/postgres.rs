//! Real Postgres for tests: the server named by `SLUICE_TEST_DATABASE_URL`, or throwaway clusters made
//! with `scripts/pg-cluster.sh`; and one fresh database per test, so tests stay independent.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio_postgres::NoTls;

use super::{free_port, random_suffix, repo_root};

/// A cluster of our own in `.sluice/sidecar-test-*` under the repository: the cluster runs as the
/// `postgres` OS user when the tests run as root, so its directory must be reachable by that user,
/// which a private temporary directory is not. Stopped and removed on drop, panics included.
pub struct Cluster {
    datadir: PathBuf,
    port: u16,
    preload: bool,
}

impl Cluster {
    pub fn start() -> Cluster {
        Cluster::start_with(true)
    }

    /// A cluster that does not preload sluice.so (no `shared_preload_libraries`), where the
    /// extension runs without its background worker.
    pub fn start_without_preload() -> Cluster {
        Cluster::start_with(false)
    }

    fn start_with(preload: bool) -> Cluster {
        let datadir = repo_root()
            .join(".sluice")
            .join(format!("sidecar-test-{}", random_suffix()));
        let cluster = Cluster {
            datadir,
            port: free_port(),
            preload,
        };
        cluster.start_again();
        cluster
    }

    /// Starts the cluster (again) on its port; initdb happens on the first start only.
    pub fn start_again(&self) {
        self.script(&[
            "start",
            &self.datadir.to_string_lossy(),
            &self.port.to_string(),
        ]);
    }

    pub fn stop(&self) {
        self.script(&["stop", &self.datadir.to_string_lossy()]);
    }

    /// The cluster's data folder.
    pub fn datadir(&self) -> &std::path::Path {
        &self.datadir
    }

    pub fn url(&self) -> String {
        format!(
            "postgres://postgres:postgres@127.0.0.1:{}/postgres",
            self.port
        )
    }

    fn script(&self, args: &[&str]) {
        let script = repo_root().join("scripts/pg-cluster.sh");
        let output = Command::new("bash")
            .arg(&script)
            .args(args)
            .env("SLUICE_NO_PRELOAD", if self.preload { "0" } else { "1" })
            .output()
            .unwrap_or_else(|err| panic!("running {}: {err}", script.display()));
        assert!(
            output.status.success(),
            "pg-cluster.sh {args:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let script = repo_root().join("scripts/pg-cluster.sh");
        let _ = Command::new("bash")
            .arg(script)
            .arg("stop")
            .arg(&self.datadir)
            .output();
        let _ = std::fs::remove_dir_all(&self.datadir);
    }
}

/// Where test databases are created.
#[derive(Clone)]
pub enum Server {
    /// `SLUICE_TEST_DATABASE_URL`: a superuser URL of a server someone else runs (`make test`).
    External(String),
    /// A cluster of our own, kept alive by whoever holds it.
    Cluster(Arc<Cluster>),
}

impl Server {
    /// The server for ordinary tests: the external one if configured, else one cluster shared by the
    /// tests of this process, started on first use and stopped when the last test holding it ends.
    pub fn shared() -> Server {
        if let Some(url) = std::env::var("SLUICE_TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
        {
            return Server::External(url);
        }
        static SHARED: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());
        let mut shared = SHARED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(cluster) = shared.upgrade() {
            return Server::Cluster(cluster);
        }
        let cluster = Arc::new(Cluster::start());
        *shared = Arc::downgrade(&cluster);
        Server::Cluster(cluster)
    }

    pub fn url(&self) -> String {
        match self {
            Server::External(url) => url.clone(),
            Server::Cluster(cluster) => cluster.url(),
        }
    }

    /// The URL of another database on this server (which need not exist).
    pub fn url_for(&self, dbname: &str) -> String {
        with_dbname(&self.url(), dbname)
    }
}

/// A database of its own for one test, dropped at the end.
pub struct TestDb {
    name: String,
    server: Server,
}

impl TestDb {
    pub fn create(server: &Server) -> TestDb {
        let name = format!("sluice_test_{}", random_suffix());
        execute(&server.url(), &format!("CREATE DATABASE \"{name}\""))
            .unwrap_or_else(|err| panic!("creating database {name}: {err}"));
        TestDb {
            name,
            server: server.clone(),
        }
    }

    pub fn url(&self) -> String {
        self.server.url_for(&self.name)
    }

    pub fn execute(&self, sql: &str) {
        execute(&self.url(), sql).unwrap_or_else(|err| panic!("{sql}: {err}"));
    }

    /// The rows of `sql` (one JSON object per row), as the superuser sees them.
    pub fn rows(&self, sql: &str) -> serde_json::Value {
        let wrapped = format!("SELECT coalesce(json_agg(_x), '[]')::text FROM ({sql}) _x");
        with_connection(&self.url(), |client| async move {
            let row = client.query_one(&wrapped, &[]).await.map_err(pg_error)?;
            serde_json::from_str(&row.get::<_, String>(0)).map_err(|e| e.to_string())
        })
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
    }

    /// Polls `sql` (as in `rows`) until `accept` holds for its rows; panics with the last rows after
    /// `timeout`.
    pub fn rows_until(
        &self,
        sql: &str,
        timeout: Duration,
        accept: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let started = std::time::Instant::now();
        loop {
            let rows = self.rows(sql);
            if accept(&rows) {
                return rows;
            }
            assert!(
                started.elapsed() < timeout,
                "{sql}: not as expected within {timeout:?}; last: {rows}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `CREATE EXTENSION sluice`. The extension creates cluster-wide roles, and two databases doing
    /// that at once can collide on the role catalog; so this is serialised within the test process
    /// and retried on a concurrency error from another process.
    pub fn install_extension(&self) {
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let _guard = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut attempts = 0;
        loop {
            attempts += 1;
            match execute(&self.url(), "CREATE EXTENSION sluice") {
                Ok(()) => return,
                Err(err)
                    if attempts < 5 && (err.contains("concurrently") || err.contains("23505")) =>
                {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(err) => panic!(
                    "CREATE EXTENSION sluice failed: {err}\n(is the extension installed? \
                     cd extension && cargo pgrx install --pg-config /usr/bin/pg_config)"
                ),
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // FORCE ends sessions a test left behind (a killed sidecar's pool, say).
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        if let Err(err) = execute(&self.server.url(), &sql) {
            eprintln!("warning: could not drop test database {}: {err}", self.name);
        }
    }
}

/// Runs `work` on a fresh connection to `url`. Each call has its own small runtime, so that tests
/// can stay plain synchronous code that drives child processes.
fn with_connection<T, F, Fut>(url: &str, work: F) -> Result<T, String>
where
    F: FnOnce(tokio_postgres::Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| err.to_string())?;
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(pg_error)?;
        let connection = tokio::spawn(connection);
        // `work` drops the client when it is done, which ends the connection.
        let result = work(client).await;
        let _ = connection.await;
        result
    })
}

/// Runs SQL on a fresh connection.
pub fn execute(url: &str, sql: &str) -> Result<(), String> {
    with_connection(url, |client| async move {
        client.batch_execute(sql).await.map_err(pg_error)
    })
}

/// tokio-postgres prints only "db error"; the server's message and SQLSTATE are what a reader needs.
/// The first column of the first row of `sql`, as text.
pub fn query_text(url: &str, sql: &str) -> Result<String, String> {
    let sql = sql.to_owned();
    with_connection(url, |client| async move {
        let row = client.query_one(&sql, &[]).await.map_err(pg_error)?;
        Ok(row.get::<_, String>(0))
    })
}

fn pg_error(err: tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{} ({}): {}", db.severity(), db.code().code(), db.message()),
        None => match std::error::Error::source(&err) {
            Some(cause) => format!("{err}: {cause}"),
            None => err.to_string(),
        },
    }
}

/// The same URL with another database name (the path), keeping any query string.
fn with_dbname(url: &str, dbname: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    format!("{}/{dbname}{query}", &base[..path_start])
}

#[test]
fn with_dbname_replaces_only_the_path() {
    assert_eq!(
        with_dbname("postgres://u:p@h:1/postgres?sslmode=disable", "x"),
        "postgres://u:p@h:1/x?sslmode=disable"
    );
    assert_eq!(with_dbname("postgresql://h", "x"), "postgresql://h/x");
}
