//! `copy:` from a URL (the mlflow preset's `source: {url, sha256}`), against a small HTTP
//! server on 127.0.0.1 started by the test: the file is installed only when its checksum
//! matches, atomically, with its mode and owner; a second run downloads nothing and reports 0
//! changed; `--check` downloads nothing either.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use sha2::{Digest, Sha256};

const BODY: &str = "#!/bin/sh\necho 'mlflow 0.1.0 (Rust server, compatible with MLflow 3.17.2)'\n";

/// Serves BODY for every GET; counts the requests. The thread ends with the test process.
fn serve() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://127.0.0.1:{}/mlflow",
        listener.local_addr().expect("addr").port()
    );
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line == "\r\n" {
                    break;
                }
                line.clear();
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let mut w = &stream;
            let _ = write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n{BODY}",
                BODY.len()
            );
        }
    });
    (url, hits)
}

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn preset(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_preset"))
        .args(args)
        .output()
        .expect("run preset");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn playbook(dir: &Path, name: &str, url: &str, sha: &str, dest: &Path) -> PathBuf {
    let owner = if preset::facts::euid() == 0 {
        "    owner: nobody\n"
    } else {
        ""
    };
    let text = format!(
        "- name: install a binary from a URL\n  copy:\n    url: {url}\n    sha256: {sha}\n    dest: {}\n    mode: \"0755\"\n{owner}    version_check:\n      args: [--version]\n      prefix: \"mlflow \"\n",
        dest.display()
    );
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write playbook");
    p
}

#[test]
fn download_is_verified_installed_once_and_predicted_without_fetching() {
    let (url, hits) = serve();
    let dir = tempfile::tempdir().expect("temp dir");
    let dest = dir.path().join("bin/mlflow");
    let good = playbook(dir.path(), "good.yml", &url, &sha256(BODY), &dest);
    let good = good.to_str().expect("utf-8 path");

    // --check predicts the install and fetches nothing.
    let (code, text) = preset(&["apply", "--check", good]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("would install"), "{text}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "--check downloaded: {text}");
    assert!(!dest.exists());

    // apply downloads once, verifies, installs with mode and owner.
    let (code, text) = preset(&["apply", good]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("changed=1"), "{text}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(std::fs::read_to_string(&dest).expect("installed"), BODY);
    let meta = std::fs::metadata(&dest).expect("installed");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
        0o755
    );
    if preset::facts::euid() == 0 {
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 65534, "owner");
    }

    // Same checksum on disk: ok, nothing downloaded.
    let (code, text) = preset(&["apply", good]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("changed=0"), "{text}");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "downloaded again: {text}");

    // A wrong checksum fails and installs nothing.
    let other = dir.path().join("bin/other");
    let bad = playbook(dir.path(), "bad.yml", &url, &"0".repeat(64), &other);
    let (code, text) = preset(&["apply", bad.to_str().expect("utf-8 path")]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("checksum mismatch"), "{text}");
    assert!(!other.exists(), "{text}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("bin"))
        .expect("bin folder")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "temporary files left: {leftovers:?}");

    // A malformed checksum is invalid input: exit 2, located, nothing fetched.
    let short = playbook(dir.path(), "short.yml", &url, "abc", &other);
    let (code, text) = preset(&["apply", short.to_str().expect("utf-8 path")]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("short.yml:"), "{text}");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

/// The mlflow preset takes `source: {url, sha256}`; `--check` predicts the install from the
/// URL without downloading it.
#[test]
fn mlflow_preset_source_url_in_check_mode() {
    let (url, hits) = serve();
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().display();
    let source = format!(r#"source={{"url":"{url}","sha256":"{}"}}"#, sha256(BODY));
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart.yml");
    let (code, text) = preset(&[
        "apply",
        "--check",
        "-e",
        &source,
        "-e",
        &format!("bin_dir={d}/bin"),
        "-e",
        &format!("data_dir={d}/data"),
        "-e",
        &format!("config_dir={d}/etc"),
        "-e",
        "user=root",
        quickstart.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("would install {d}/bin/mlflow")),
        "{text}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "{text}");
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
}
