//! Layers point one way: `db/` and `schema/` (and the error formatter every layer may use) reach
//! no feature above them; only `http/` turns errors into responses.

use std::path::Path;

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            files.push((path.display().to_string(), text));
        }
    }
    files
}

fn assert_reaches_none(files: &[(String, String)], above: &[&str]) {
    for (path, text) in files {
        for module in above {
            assert!(
                !text.contains(&format!("crate::{module}")),
                "{path} reaches crate::{module}, a layer above it"
            );
        }
    }
}

#[test]
fn db_and_schema_reach_no_layer_above_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let above = ["rest", "http", "auth", "realtime", "serve", "storage"];
    assert_reaches_none(&sources(&src.join("db")), &above);
    assert_reaches_none(&sources(&src.join("schema")), &above);
}

#[test]
fn storage_reaches_no_http_rest_or_realtime() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    assert_reaches_none(
        &sources(&src.join("storage")),
        &["http", "rest", "realtime", "serve"],
    );
}

#[test]
fn the_error_formatter_knows_no_feature() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/error.rs");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains("use crate::"),
        "src/error.rs imports a module"
    );
}
