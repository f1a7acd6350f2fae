//! A real S3-compatible server for the storage tests: moto's server (PyPI `moto[server]`), started on
//! a free port, with boto3 (installed with moto) as an independent client to look at what the
//! sidecar left in the bucket: objects, and incomplete multipart uploads with their parts.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// boto3, as a client independent of the sidecar's object_store: `<endpoint> <bucket> <op>`.
const CLIENT: &str = r#"
import json, sys
import boto3
endpoint, bucket, op = sys.argv[1:4]
s3 = boto3.client('s3', endpoint_url=endpoint, region_name='us-east-1',
                  aws_access_key_id='test', aws_secret_access_key='test')
if op == 'create':
    s3.create_bucket(Bucket=bucket)
    out = []
elif op == 'keys':
    out = []
    for page in s3.get_paginator('list_objects_v2').paginate(Bucket=bucket):
        out += [[o['Key'], o['Size']] for o in page.get('Contents', [])]
elif op == 'uploads':
    out = []
    for u in s3.list_multipart_uploads(Bucket=bucket).get('Uploads', []):
        parts = s3.list_parts(Bucket=bucket, Key=u['Key'], UploadId=u['UploadId']).get('Parts', [])
        out.append([u['Key'], u['UploadId'], len(parts)])
else:
    raise SystemExit('unknown op ' + op)
print(json.dumps(out))
"#;

/// An incomplete multipart upload as `ListMultipartUploads` and `ListParts` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub key: String,
    pub upload_id: String,
    pub parts: usize,
}

pub struct Moto {
    child: Child,
    pub endpoint: String,
    pub bucket: String,
}

impl Moto {
    /// Starts moto on a free port and creates `bucket`. Fails loudly when moto is not installed:
    /// `pip install 'moto[server]'` (it brings boto3).
    pub fn start(bucket: &str) -> Moto {
        let port = super::free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server is required for the S3 tests: pip install 'moto[server]'");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: bucket.to_owned(),
        };
        moto.client("create");
        moto
    }

    /// The sidecar's S3 settings for this server.
    pub fn configure(&self, command: &mut Command) {
        command
            .env("SLUICE_STORAGE_BACKEND", "s3")
            .env("SLUICE_STORAGE_S3_BUCKET", &self.bucket)
            .env("AWS_ENDPOINT", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test");
    }

    fn client(&self, op: &str) -> serde_json::Value {
        let output = Command::new("python3")
            .args(["-c", CLIENT, &self.endpoint, &self.bucket, op])
            .output()
            .expect("python3 with boto3");
        assert!(
            output.status.success(),
            "boto3 {op}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("boto3's JSON")
    }

    /// Every object in the bucket, with its size.
    pub fn keys(&self) -> Vec<(String, u64)> {
        let mut keys: Vec<(String, u64)> = self
            .client("keys")
            .as_array()
            .unwrap()
            .iter()
            .map(|k| (k[0].as_str().unwrap().to_owned(), k[1].as_u64().unwrap()))
            .collect();
        keys.sort();
        keys
    }

    /// The incomplete multipart uploads, with how many parts each holds.
    pub fn uploads(&self) -> Vec<Upload> {
        self.client("uploads")
            .as_array()
            .unwrap()
            .iter()
            .map(|u| Upload {
                key: u[0].as_str().unwrap().to_owned(),
                upload_id: u[1].as_str().unwrap().to_owned(),
                parts: u[2].as_u64().unwrap() as usize,
            })
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
