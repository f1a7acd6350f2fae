//! The real `sluice` binary as a child process, with its log captured.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::http::{self, Response};
use super::JWT_SECRET;

pub const BINARY: &str = env!("CARGO_BIN_EXE_sluice");

/// `sluice serve` against `database_url` on a free port, with every setting explicit so that the
/// caller's environment cannot leak in. Adjust with `.env(...)` before spawning.
pub fn serve_command(database_url: &str) -> Command {
    let mut command = Command::new(BINARY);
    command
        .arg("serve")
        .env_remove("SLUICE_POOL_SIZE")
        .env_remove("SLUICE_STARTUP_TIMEOUT")
        .env_remove("SLUICE_JWT_PUBLIC_KEY_FILE")
        .env_remove("SLUICE_JWT_JWKS_FILE")
        .env_remove("SLUICE_JWT_AUD")
        .env_remove("SLUICE_JWT_LEEWAY")
        .env_remove("SLUICE_JWT_ROLES")
        .env_remove("SLUICE_DB_SCHEMAS")
        .env_remove("SLUICE_MAX_ROWS")
        .env("DATABASE_URL", database_url)
        .env("SLUICE_JWT_SECRET", JWT_SECRET)
        .env("SLUICE_LISTEN", "127.0.0.1:0")
        // Storage files of each sidecar under the repository's ignored .sluice/, not the cwd.
        .env(
            "SLUICE_STORAGE_ROOT",
            super::repo_root()
                .join(".sluice")
                .join(format!("test-storage-{}", super::random_suffix())),
        )
        .env("RUST_LOG", "info")
        // The tests' raw sockets send no heartbeats, and a slow machine may take over a minute;
        // the test of the timeout sets its own.
        .env("SLUICE_REALTIME_HEARTBEAT_TIMEOUT", "600");
    command
}

pub struct Sidecar {
    child: Child,
    log: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    listening: Receiver<SocketAddr>,
    addr: Option<SocketAddr>,
}

impl Sidecar {
    /// Spawns `sluice serve` and waits until it listens.
    pub fn serve(database_url: &str) -> Sidecar {
        let mut sidecar = Sidecar::spawn(serve_command(database_url));
        sidecar.wait_listening(Duration::from_secs(30));
        sidecar
    }

    pub fn spawn(mut command: Command) -> Sidecar {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("spawning {BINARY}: {err}"));
        let log = Arc::new(Mutex::new(String::new()));
        let (listening_tx, listening) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let readers = vec![
            collect_lines(stdout, Arc::clone(&log), listening_tx.clone()),
            collect_lines(stderr, Arc::clone(&log), listening_tx),
        ];
        Sidecar {
            child,
            log,
            readers,
            listening,
            addr: None,
        }
    }

    /// Waits for the "listening on http://ADDR" line; panics with the log if the process exits first.
    pub fn wait_listening(&mut self, timeout: Duration) -> SocketAddr {
        match self.listening.recv_timeout(timeout) {
            Ok(addr) => {
                self.addr = Some(addr);
                addr
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "sluice did not listen within {timeout:?}; log:\n{}",
                    self.log()
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.wait_exit(Duration::from_secs(5));
                panic!(
                    "sluice exited ({status}) before listening; log:\n{}",
                    self.log()
                )
            }
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("the sidecar is listening")
    }

    pub fn get(&self, path: &str) -> Result<Response, String> {
        http::get(self.addr(), path)
    }

    /// Polls `path` until `accept` holds for a response, or panics with the last one and the log.
    pub fn get_until(
        &self,
        path: &str,
        timeout: Duration,
        accept: impl Fn(&Response) -> bool,
    ) -> Response {
        let started = Instant::now();
        loop {
            let last = self.get(path);
            match last {
                Ok(response) if accept(&response) => return response,
                _ if started.elapsed() > timeout => panic!(
                    "GET {path}: no acceptable answer within {timeout:?}; last: {:?}; log:\n{}",
                    last.map(|r| (r.status, r.body)),
                    self.log()
                ),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped, so not reused).
        let result = unsafe { libc::kill(pid, signal) };
        assert_eq!(result, 0, "kill({pid}, {signal}) failed");
    }

    /// Waits for the process to exit and for its output to be fully read.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if started.elapsed() > timeout {
                panic!(
                    "sluice still running after {timeout:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        status
    }

    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs a command to completion (for commands that are expected to exit by themselves).
pub fn run(command: Command, timeout: Duration) -> (ExitStatus, String) {
    let mut sidecar = Sidecar::spawn(command);
    let status = sidecar.wait_exit(timeout);
    (status, sidecar.log())
}

fn collect_lines(
    stream: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    listening: Sender<SocketAddr>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.split("listening on http://").nth(1) {
                if let Ok(addr) = addr.trim().parse() {
                    let _ = listening.send(addr);
                }
            }
            let mut log = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            log.push_str(&line);
            log.push('\n');
        }
    })
}
