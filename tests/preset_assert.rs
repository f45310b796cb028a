//! `assert: http:` against a stand-in HTTP server on 127.0.0.1 that is "starting" (503) for
//! its first requests: retries until the deadline, status as a number or a list, method,
//! headers and body, `contains`, a JSON pointer check, and a located failure message; basic
//! auth with the password from the environment and never in the output; and https against
//! `openssl s_server` with a certificate the test generates: trusted through `ca:`, refused
//! without it, accepted with `validate_certs: false`. Asserts never report "changed".

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The `Authorization` header the stand-in server accepts on GET /private.
const BASIC_ADMIN: &str = "basic YWRtaW46cCRzcyB3b3JkIjE="; // admin:p$ss word"1

/// Answers 503 to the first `warmup` requests, then: GET /ready → JSON; POST /echo → 201
/// when header `x-token: t1` and body `ping` came along, 400 otherwise; GET /private → 200
/// with [`BASIC_ADMIN`], 401 otherwise.
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
            let (mut token, mut length, mut auth) = (String::new(), 0usize, String::new());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("x-token:") {
                    token = v.trim().to_string();
                }
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("authorization:") {
                    auth = line["authorization:".len()..].trim().to_string();
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
            } else if request_line.starts_with("GET /private") {
                match auth.eq_ignore_ascii_case(BASIC_ADMIN) {
                    true => ("200 OK", "private area".to_string()),
                    false => ("401 Unauthorized", "who are you".to_string()),
                }
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
    run_with(dir, name, text, &[])
}

/// `preset apply --diff -v` of a playbook, with `env` set.
fn run_with(dir: &Path, name: &str, text: &str, env: &[(&str, &str)]) -> (i32, String) {
    let p: PathBuf = dir.join(name);
    std::fs::write(&p, text).expect("write playbook");
    let out = Command::new(env!("CARGO_BIN_EXE_preset"))
        .args(["apply", "--diff", "-v", p.to_str().expect("utf-8 path")])
        .envs(env.iter().copied())
        .output()
        .expect("run preset");
    (out.status.code().unwrap_or(-1), common::both(&out))
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

#[test]
fn basic_auth_password_comes_from_the_environment_and_is_never_shown() {
    let (port, _) = serve(0);
    let dir = tempfile::tempdir().expect("temp dir");
    let password = "p$ss word\"1";
    let playbook = |user: &str| {
        format!(
            "- name: behind basic auth\n  assert:\n    http:\n      url: http://127.0.0.1:{port}/private\n      username: {user}\n      password: \"{{{{ env.PRESET_TEST_PASSWORD }}}}\"\n      contains: private\n      within: 1s\n"
        )
    };
    let env = [("PRESET_TEST_PASSWORD", password)];
    let (code, text) = run_with(dir.path(), "auth.yml", &playbook("admin"), &env);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("ok=1 changed=0"), "{text}");
    assert!(!text.contains("p$ss"), "password shown: {text}");
    // Refused (another user): the failure says so, still without the password.
    let (code, text) = run_with(dir.path(), "auth.yml", &playbook("alice"), &env);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("401"), "{text}");
    assert!(!text.contains("p$ss"), "password shown: {text}");
    let out = Command::new(env!("CARGO_BIN_EXE_preset"))
        .args(["plan", dir.path().join("auth.yml").to_str().expect("path")])
        .envs(env)
        .output()
        .expect("preset plan");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && !text.contains("p$ss"), "{text}");
}

/// `openssl s_server -www` on a free port (it answers any GET with 200 and a status page);
/// killed when dropped.
struct TlsServer(std::process::Child, u16);

impl TlsServer {
    fn start(cert: &Path, key: &Path) -> Self {
        let port = common::free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start openssl s_server");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "s_server did not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self(child, port)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn https_assert_trusts_its_ca_or_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some((cert, key)) = common::self_signed(dir.path()) else {
        common::cannot_run("the openssl CLI cannot make a certificate (Debian's openssl package)");
        return;
    };
    let server = TlsServer::start(&cert, &key);
    let port = server.1;
    let assert = |extra: &str| {
        format!(
            "- assert:\n    http:\n      url: https://localhost:{port}/\n      within: 1s\n{extra}"
        )
    };
    let ca = format!("      ca: {}\n", cert.display());
    let (code, text) = run(dir.path(), "ca.yml", &assert(&ca));
    assert_eq!(code, 0, "{text}");
    let (code, text) = run(dir.path(), "system.yml", &assert(""));
    assert_eq!(
        code, 1,
        "a self-signed certificate is not trusted by default: {text}"
    );
    assert!(text.to_ascii_lowercase().contains("certificate"), "{text}");
    let (code, text) = run(
        dir.path(),
        "any.yml",
        &assert("      validate_certs: false\n"),
    );
    assert_eq!(code, 0, "{text}");
    let (code, text) = run(
        dir.path(),
        "both.yml",
        &assert(&format!("{ca}      validate_certs: false\n")),
    );
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("not both"), "{text}");
}
