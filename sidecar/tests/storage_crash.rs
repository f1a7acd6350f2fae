//! Crash safety of storage: the sidecar is SIGKILLed in the middle of an upload and in the middle
//! of a delete, on the file backend and on S3 (a moto server). Afterwards there is never a row
//! without its bytes, and the bytes no row names, and on S3 the interrupted multipart upload (whose
//! parts no object listing shows), are found and removed by the sweep of the next sidecar, which
//! works in bounded passes (a small `SLUICE_STORAGE_SWEEP_PAGE` here, so it takes many).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use support::moto::Moto;
use support::postgres::{Server, TestDb};
use support::realtime::{authenticator_url, sign};
use support::sidecar::{serve_command, Sidecar};
use support::{random_suffix, repo_root};

/// Keys one pass of the sweep reads in these tests: far fewer than the keys there are.
const SWEEP_PAGE: usize = 50;

/// Where the bytes go.
enum Store {
    File(PathBuf),
    S3(Moto),
}

impl Store {
    /// Every key with its size, as the backend itself shows it (not through the sidecar).
    fn keys(&self) -> Vec<(String, u64)> {
        match self {
            Store::File(root) => {
                let mut keys: Vec<(String, u64)> = files(root)
                    .into_iter()
                    .map(|(path, size)| {
                        let relative = path.strip_prefix(root).unwrap();
                        (relative.to_string_lossy().into_owned(), size)
                    })
                    .collect();
                keys.sort();
                keys
            }
            Store::S3(moto) => moto.keys(),
        }
    }
}

/// A sidecar on `db` over `store`, whose sweep, at start-up, takes every unreferenced key older
/// than `grace` seconds, `SWEEP_PAGE` keys a pass.
fn sidecar(url: &str, store: &Store, grace: u64) -> Sidecar {
    let mut command = serve_command(url);
    command
        .env("SLUICE_STORAGE_SWEEP_GRACE", grace.to_string())
        .env("SLUICE_STORAGE_SWEEP_PAGE", SWEEP_PAGE.to_string());
    match store {
        Store::File(root) => {
            command
                .env("SLUICE_STORAGE_BACKEND", "file")
                .env("SLUICE_STORAGE_ROOT", root);
        }
        Store::S3(moto) => moto.configure(&mut command),
    }
    let mut sidecar = Sidecar::spawn(command);
    sidecar.wait_listening(Duration::from_secs(30));
    sidecar
}

/// No row without its bytes: every row's version is a key of the store.
fn assert_rows_have_bytes(db: &TestDb, store: &Store) {
    let keys: Vec<String> = store.keys().into_iter().map(|(key, _)| key).collect();
    let rows =
        db.rows("SELECT bucket_id || '/' || name || '/' || version AS key FROM storage.objects");
    for row in rows.as_array().unwrap() {
        let key = row["key"].as_str().unwrap();
        assert!(
            keys.iter().any(|k| k == key),
            "a row without its bytes: {key}"
        );
    }
}

/// The passes the sweep logged (`... in T ms, N passes`), summed over its log lines.
fn sweep_passes(log: &str) -> usize {
    log.lines()
        .filter_map(|line| {
            line.split(", ")
                .last()?
                .strip_suffix(" passes")?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .sum()
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
    store: Store,
}

impl Fixture {
    fn new(s3: bool) -> Fixture {
        let server = Server::shared();
        let db = TestDb::create(&server);
        db.install_extension();
        db.execute("INSERT INTO storage.buckets (id, name) VALUES ('b', 'b')");
        let url = authenticator_url(&db);
        let store = if s3 {
            Store::S3(Moto::start("sluice-crash"))
        } else {
            Store::File(
                repo_root()
                    .join(".sluice")
                    .join(format!("storage-crash-{}", random_suffix())),
            )
        };
        Fixture { db, url, store }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Store::File(root) = &self.store {
            let _ = std::fs::remove_dir_all(root);
        }
    }
}

#[test]
fn a_sidecar_killed_mid_upload_leaves_garbage_the_sweep_removes_and_no_row() {
    killed_mid_upload(false);
}

#[test]
fn on_s3_a_sidecar_killed_mid_upload_leaves_an_incomplete_multipart_upload_the_sweep_aborts() {
    killed_mid_upload(true);
}

fn killed_mid_upload(s3: bool) {
    let fixture = Fixture::new(s3);
    let store = &fixture.store;
    let mut first = sidecar(&fixture.url, store, 3600);
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
    let kept_keys = store.keys();
    assert_eq!(kept_keys.len(), 1);

    // An upload of 64 MiB of which 24 MiB are sent, then the sidecar dies: on disk, a partial
    // file; on S3, a multipart upload with a part or two (8 MiB parts).
    let mut stream = TcpStream::connect(addr).unwrap();
    let total = 64 * 1024 * 1024;
    let head = format!(
        "POST /storage/v1/object/b/big.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {total}\r\n\r\n",
        service_token()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&vec![7u8; 24 * 1024 * 1024]).unwrap();
    match store {
        Store::File(root) => wait_until(
            Duration::from_secs(30),
            "the partial upload reaching the disk",
            || {
                files(root).iter().any(|(path, size)| {
                    !kept_keys.iter().any(|(k, _)| root.join(k) == *path) && *size > 0
                })
            },
        ),
        Store::S3(moto) => {
            let started = Instant::now();
            while !moto.uploads().iter().any(|upload| upload.parts > 0) {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "no part of the multipart upload reached S3; the sidecar's log:\n{}",
                    first.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    first.signal(libc::SIGKILL);
    first.wait_exit(Duration::from_secs(10));
    drop(stream);

    // No row for the interrupted upload; its partial bytes are left behind, named by no row.
    assert_eq!(
        count(
            &fixture.db,
            "SELECT count(*) AS n FROM storage.objects WHERE name = 'big.bin'"
        ),
        0
    );
    assert_rows_have_bytes(&fixture.db, store);
    match store {
        Store::File(_) => assert_eq!(
            store.keys().len(),
            2,
            "the partial upload's bytes are left behind"
        ),
        Store::S3(moto) => {
            // Not an object: only the list of multipart uploads shows it, and the record.
            assert_eq!(store.keys(), kept_keys);
            let uploads = moto.uploads();
            assert_eq!(uploads.len(), 1, "{uploads:?}");
            let recorded = fixture
                .db
                .rows("SELECT upload_id, key FROM storage.sluice_multipart_uploads");
            assert_eq!(recorded[0]["upload_id"], uploads[0].upload_id.as_str());
            assert_eq!(recorded[0]["key"], uploads[0].key.as_str());
            eprintln!(
                "on S3, the killed upload left {} parts of 8 MiB",
                uploads[0].parts
            );
        }
    }

    // The next sidecar's sweep removes them, and only them.
    let started = Instant::now();
    let second = sidecar(&fixture.url, store, 0);
    wait_until(
        Duration::from_secs(30),
        "the sweep removing the partial upload",
        || match store {
            Store::File(_) => store.keys().len() == 1,
            Store::S3(moto) => moto.uploads().is_empty(),
        },
    );
    eprintln!(
        "the next sidecar's start-up sweep cleaned up within {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(store.keys(), kept_keys);
    assert_eq!(
        count(
            &fixture.db,
            "SELECT count(*) AS n FROM storage.sluice_multipart_uploads"
        ),
        0
    );
    assert_eq!(
        count(&fixture.db, "SELECT count(*) AS n FROM storage.objects"),
        1
    );
    assert_rows_have_bytes(&fixture.db, store);
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
    killed_mid_delete(false);
}

#[test]
fn on_s3_a_sidecar_killed_mid_delete_leaves_no_row_and_the_sweep_removes_the_bytes() {
    killed_mid_delete(true);
}

fn killed_mid_delete(s3: bool) {
    let fixture = Fixture::new(s3);
    let store = &fixture.store;
    let mut first = sidecar(&fixture.url, store, 3600);
    let addr = first.addr();
    let names: Vec<String> = (0..600).map(|i| format!("many/{i:04}.txt")).collect();
    for name in &names {
        let path = format!("/storage/v1/object/b/{name}");
        assert_eq!(
            request(addr, "POST", &path, "text/plain", name.as_bytes()),
            200
        );
    }
    // One more that stays: the sweep must leave it, whichever page it falls in.
    assert_eq!(
        request(
            addr,
            "POST",
            "/storage/v1/object/b/z/kept.txt",
            "text/plain",
            b"kept"
        ),
        200
    );
    assert_eq!(store.keys().len(), names.len() + 1);

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
        count(&fixture.db, "SELECT count(*) AS n FROM storage.objects") == 1
    });
    first.signal(libc::SIGKILL);
    first.wait_exit(Duration::from_secs(10));
    deleting.join().unwrap();
    let left = store.keys().len() - 1;
    eprintln!(
        "keys left when the sidecar was killed mid-delete: {left} of {}",
        names.len()
    );

    // No row names any of them; whatever bytes were left, the next sidecar's sweep removes, in
    // passes of SWEEP_PAGE keys.
    assert_eq!(
        count(&fixture.db, "SELECT count(*) AS n FROM storage.objects"),
        1
    );
    assert_rows_have_bytes(&fixture.db, store);
    let started = Instant::now();
    let second = sidecar(&fixture.url, store, 0);
    wait_until(
        Duration::from_secs(60),
        "the sweep removing the deleted objects' bytes",
        || store.keys().len() == 1,
    );
    eprintln!(
        "the sweep removed {left} keys within {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_rows_have_bytes(&fixture.db, store);
    if left > 0 {
        wait_until(Duration::from_secs(10), "the sweep's log line", || {
            sweep_passes(&second.log()) > 0
        });
        let log = second.log();
        for line in log
            .lines()
            .filter(|line| line.contains("storage sweep removed"))
        {
            eprintln!("{line}");
        }
        let passes = sweep_passes(&log);
        assert!(
            passes > left / SWEEP_PAGE,
            "{left} keys in pages of {SWEEP_PAGE} took {passes} passes"
        );
    }
    let (status, body) = get_bytes(second.addr(), "/storage/v1/object/b/z/kept.txt");
    assert_eq!(status, 200);
    assert_eq!(body, b"kept");
}
