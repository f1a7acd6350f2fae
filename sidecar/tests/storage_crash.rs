//! Crash safety of storage: the sidecar is SIGKILLed in the middle of an upload and in the middle
//! of a delete. Afterwards there is never a row without its bytes, and the bytes no row names are
//! found and removed by the sweep of the next sidecar.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use support::postgres::{Server, TestDb};
use support::realtime::{authenticator_url, sign};
use support::sidecar::{serve_command, Sidecar};
use support::{random_suffix, repo_root};

/// A sidecar on `db` whose file backend is `root` and whose sweep, at start-up, takes every
/// unreferenced key however young (`grace`).
fn sidecar(url: &str, root: &Path, grace: u64) -> Sidecar {
    let mut command = serve_command(url);
    command
        .env("SLUICE_STORAGE_BACKEND", "file")
        .env("SLUICE_STORAGE_ROOT", root)
        .env("SLUICE_STORAGE_SWEEP_GRACE", grace.to_string());
    let mut sidecar = Sidecar::spawn(command);
    sidecar.wait_listening(Duration::from_secs(30));
    sidecar
}

fn service_token() -> String {
    sign(json!({"role": "service_role"}))
}

/// Sends a request head and `body`, returns the status (Connection: close).
fn request(addr: SocketAddr, method: &str, path: &str, content_type: &str, body: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        service_token(),
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"))
}

/// Every file under `root`, with its size.
fn files(root: &Path) -> Vec<(PathBuf, u64)> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            // A file may vanish while we look (the sweep is running).
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                found.push((entry.path(), meta.len()));
            }
        }
    }
    found
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.rows(sql)[0]["n"].as_i64().unwrap()
}

fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < timeout,
            "{what}: not within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Fixture {
    db: TestDb,
    url: String,
    root: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let server = Server::shared();
        let db = TestDb::create(&server);
        db.install_extension();
        db.execute("INSERT INTO storage.buckets (id, name) VALUES ('b', 'b')");
        let url = authenticator_url(&db);
        let root = repo_root()
            .join(".sluice")
            .join(format!("storage-crash-{}", random_suffix()));
        Fixture { db, url, root }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[test]
fn a_sidecar_killed_mid_upload_leaves_garbage_the_sweep_removes_and_no_row() {
    let fixture = Fixture::new();
    let mut first = sidecar(&fixture.url, &fixture.root, 3600);
    let addr = first.addr();
    // A finished upload, which must survive everything below.
    let kept = b"kept bytes";
    assert_eq!(
        request(
            addr,
            "POST",
            "/storage/v1/object/b/kept.txt",
            "text/plain",
            kept
        ),
        200
    );
    let kept_file = files(&fixture.root);
    assert_eq!(kept_file.len(), 1);

    // An upload of 64 MiB of which 8 MiB are sent, then the sidecar dies.
    let mut stream = TcpStream::connect(addr).unwrap();
    let total = 64 * 1024 * 1024;
    let head = format!(
        "POST /storage/v1/object/b/big.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {total}\r\n\r\n",
        service_token()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&vec![7u8; 8 * 1024 * 1024]).unwrap();
    wait_until(
        Duration::from_secs(30),
        "the partial upload reaching the disk",
        || {
            files(&fixture.root)
                .iter()
                .any(|(path, size)| !kept_file.iter().any(|(k, _)| k == path) && *size > 0)
        },
    );
    first.signal(libc::SIGKILL);
    first.wait_exit(Duration::from_secs(10));
    drop(stream);

    // No row for the interrupted upload; its partial bytes are on disk, named by no row.
    assert_eq!(
        count(
            &fixture.db,
            "SELECT count(*) AS n FROM storage.objects WHERE name = 'big.bin'"
        ),
        0
    );
    assert_eq!(
        files(&fixture.root).len(),
        2,
        "the partial upload's bytes are left behind"
    );

    // The next sidecar's sweep removes them, and only them.
    let second = sidecar(&fixture.url, &fixture.root, 0);
    wait_until(
        Duration::from_secs(20),
        "the sweep removing the partial upload",
        || files(&fixture.root).len() == 1,
    );
    assert_eq!(files(&fixture.root), kept_file);
    assert_eq!(
        count(&fixture.db, "SELECT count(*) AS n FROM storage.objects"),
        1
    );
    let (status, body) = get_bytes(second.addr(), "/storage/v1/object/b/kept.txt");
    assert_eq!(status, 200);
    assert_eq!(body, kept);
}

/// GET with the service token; status and body bytes.
fn get_bytes(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        service_token()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw[split + 4..].to_vec())
}

#[test]
fn a_sidecar_killed_mid_delete_leaves_no_row_and_the_sweep_removes_the_bytes() {
    let fixture = Fixture::new();
    let mut first = sidecar(&fixture.url, &fixture.root, 3600);
    let addr = first.addr();
    let names: Vec<String> = (0..600).map(|i| format!("many/{i:04}.txt")).collect();
    for name in &names {
        let path = format!("/storage/v1/object/b/{name}");
        assert_eq!(
            request(addr, "POST", &path, "text/plain", name.as_bytes()),
            200
        );
    }
    assert_eq!(files(&fixture.root).len(), names.len());

    // Remove them all in one request; kill the sidecar as soon as the deletion has committed,
    // while it is removing the bytes.
    let body = serde_json::to_vec(&json!({ "prefixes": names })).unwrap();
    let deleting = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        let head = format!(
            "DELETE /storage/v1/object/b HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            service_token(),
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    });
    wait_until(Duration::from_secs(30), "the deletion committing", || {
        count(&fixture.db, "SELECT count(*) AS n FROM storage.objects") == 0
    });
    first.signal(libc::SIGKILL);
    first.wait_exit(Duration::from_secs(10));
    deleting.join().unwrap();
    let left = files(&fixture.root).len();
    eprintln!(
        "files left when the sidecar was killed mid-delete: {left} of {}",
        names.len()
    );

    // No row names any of them; whatever bytes were left, the next sidecar's sweep removes.
    assert_eq!(
        count(&fixture.db, "SELECT count(*) AS n FROM storage.objects"),
        0
    );
    let _second = sidecar(&fixture.url, &fixture.root, 0);
    wait_until(
        Duration::from_secs(20),
        "the sweep removing the deleted objects' bytes",
        || files(&fixture.root).is_empty(),
    );
}
