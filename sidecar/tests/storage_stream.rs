//! Uploads and downloads stream: a 1 GiB file goes through the sidecar and back while the
//! sidecar's peak resident memory stays far below the file's size, on the file backend and on S3
//! (a moto server, which keeps every byte in its own memory; `SLUICE_TEST_S3_STREAM_MIB` changes the
//! size there).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;
use support::moto::Moto;
use support::postgres::{Server, TestDb};
use support::realtime::{authenticator_url, sign};
use support::sidecar::{serve_command, Sidecar};
use support::{random_suffix, repo_root};

const GIB: u64 = 1024 * 1024 * 1024;
/// Far below the file: the sidecar may buffer a few chunks, never the file.
const MAX_PEAK_RSS_BYTES: u64 = 150 * 1024 * 1024;

/// `VmHWM`: the process's peak resident set, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
fn a_one_gib_file_streams_up_and_down_in_flat_memory() {
    streams(GIB, None);
}

#[test]
fn on_s3_a_large_file_streams_up_and_down_in_flat_memory() {
    let mib: u64 = std::env::var("SLUICE_TEST_S3_STREAM_MIB")
        .ok()
        .and_then(|mib| mib.parse().ok())
        .unwrap_or(1024);
    let moto = Moto::start("sluice-stream");
    streams(mib * 1024 * 1024, Some(&moto));
    // The upload is one object, and no multipart upload is left incomplete.
    let keys = moto.keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0].1, mib * 1024 * 1024);
    assert!(moto.uploads().is_empty(), "{:?}", moto.uploads());
}

/// Uploads `size` bytes and downloads them again; the file backend, or S3 on `moto`.
fn streams(size: u64, moto: Option<&Moto>) {
    let server = Server::shared();
    let db = TestDb::create(&server);
    db.install_extension();
    db.execute("INSERT INTO storage.buckets (id, name) VALUES ('big', 'big')");
    let root = repo_root()
        .join(".sluice")
        .join(format!("storage-stream-{}", random_suffix()));
    let mut command = serve_command(&authenticator_url(&db));
    command.env("SLUICE_STORAGE_ROOT", &root);
    if let Some(moto) = moto {
        moto.configure(&mut command);
    }
    let mut sidecar = Sidecar::spawn(command);
    let addr = sidecar.wait_listening(Duration::from_secs(30));
    let token = sign(json!({"role": "service_role"}));
    let before = peak_rss(sidecar.pid());

    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /storage/v1/object/big/one.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let chunk: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    for _ in 0..size / chunk.len() as u64 {
        stream.write_all(&chunk).unwrap();
    }
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{answer}\nthe sidecar's log:\n{}",
        sidecar.log()
    );
    let upload = started.elapsed();

    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    let head = format!(
        "GET /storage/v1/object/big/one.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut buffer = vec![0u8; 1024 * 1024];
    let mut received = 0u64;
    loop {
        let n = stream.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        received += n as u64;
    }
    let download = started.elapsed();
    // The head is a few hundred bytes; the rest is the file.
    assert!(
        received > size && received < size + 4096,
        "received {received} bytes"
    );
    let peak = peak_rss(sidecar.pid());
    eprintln!(
        "{} MiB on {}: upload {:.1} s, download {:.1} s; sidecar peak RSS {} MiB before, {} MiB after",
        size / (1024 * 1024),
        if moto.is_some() { "S3" } else { "file" },
        upload.as_secs_f64(),
        download.as_secs_f64(),
        before / (1024 * 1024),
        peak / (1024 * 1024)
    );
    assert!(peak < MAX_PEAK_RSS_BYTES, "peak RSS {peak} bytes");
    sidecar.signal(libc::SIGTERM);
    sidecar.wait_exit(Duration::from_secs(20));
    let _ = std::fs::remove_dir_all(&root);
}
