//! `assert: http:` against a stand-in HTTP server on 127.0.0.1 that is "starting" (503) for
//! its first requests: retries until the deadline, status as a number or a list, method,
//! headers and body, `contains`, a JSON pointer check, and a located failure message. Asserts
//! never report "changed".

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Answers 503 to the first `warmup` requests, then: GET /ready → JSON; POST /echo → 201
/// when header `x-token: t1` and body `ping` came along, 400 otherwise.
fn serve(warmup: usize) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let (mut token, mut length) = (String::new(), 0usize);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("x-token:") {
                    token = v.trim().to_string();
                }
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let (status, text) = if n < warmup {
                ("503 Service Unavailable", "starting".to_string())
            } else if request_line.starts_with("GET /ready") {
                (
                    "200 OK",
                    r#"{"status":"ready","items":[{"name":"x"}]}"#.to_string(),
                )
            } else if request_line.starts_with("POST /echo") && token == "t1" && body == b"ping" {
                ("201 Created", "pong".to_string())
            } else {
                ("400 Bad Request", "no".to_string())
            };
            let mut w = &stream;
            let _ = write!(
                w,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    (port, hits)
}

fn run(dir: &Path, name: &str, text: &str) -> (i32, String) {
    let p: PathBuf = dir.join(name);
    std::fs::write(&p, text).expect("write playbook");
    let out = Command::new(env!("CARGO_BIN_EXE_preset"))
        .args(["apply", p.to_str().expect("utf-8 path")])
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

#[test]
fn http_assert_retries_then_checks_status_body_and_json() {
    let (port, hits) = serve(3);
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, text) = run(
        dir.path(),
        "ok.yml",
        &format!(
            r#"- name: ready after start-up
  assert:
    http:
      url: http://127.0.0.1:{port}/ready
      status: 200
      contains: ready
      json: {{path: /items/0/name, equals: x}}
      timeout: 2s
      within: 20s
- name: post with headers and body
  assert:
    http:
      url: http://127.0.0.1:{port}/echo
      method: POST
      headers: {{x-token: t1}}
      body: ping
      status: [200, 201]
      contains: pong
"#
        ),
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("ok=2 changed=0"), "{text}");
    assert!(
        hits.load(Ordering::SeqCst) >= 5,
        "no retries happened: {text}"
    );
}

#[test]
fn failing_http_assert_says_what_differed_and_where() {
    let (port, _) = serve(0);
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, text) = run(
        dir.path(),
        "bad.yml",
        &format!(
            "- name: wrong value\n  assert:\n    http:\n      url: http://127.0.0.1:{port}/ready\n      json: {{path: /items/0/name, equals: y}}\n      within: 1s\n"
        ),
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("/items/0/name"), "{text}");
    assert!(
        text.contains("bad.yml:1:3"),
        "the failing step is located: {text}"
    );

    let (code, text) = run(
        dir.path(),
        "status.yml",
        &format!(
            "- assert:\n    http:\n      url: http://127.0.0.1:{port}/echo\n      method: POST\n      status: [200, 201]\n      within: 1s\n"
        ),
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("400"), "{text}");
}
