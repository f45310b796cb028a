//! End to end, for real, as root, against the real `mlflow` binary: quick start → healthy →
//! experiment created → apply again (0 changed) → `--check` on a changed port predicts and
//! changes nothing → `state: absent` (binary gone, data kept) → absent again (0 changed) →
//! apply again: the experiment is still there → purge. Everything lives in a temporary
//! folder and a unique service name; the server runs under preset's supervisor when systemd
//! is not the init. Needs root (see `common::cannot_run`) and the built `mlflow` binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{free_port, server_binary};

fn preset(args: &[&str]) -> (i32, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_preset"))
        .args(args)
        .output()
        .expect("run preset");
    (out.status.code().unwrap_or(-1), common::both(&out))
}

/// Stops a server left running by a failed test.
struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        }
    }
}

fn playbook(dir: &Path, name: &str, port: u16, bin: &Path, extra: &str) -> PathBuf {
    let d = dir.display();
    // The UI (default `ui: true`) from the test venv's bundle, as `key: value` lines.
    let ui: String = common::ui_overrides(dir)
        .iter()
        .map(|kv| format!("    {}\n", kv.replacen('=', ": ", 1)))
        .collect();
    let text = format!(
        "- preset: mlflow\n  with:\n    tracking_uri: http://0.0.0.0:{port}\n    data_dir: {d}/data\n    bin_dir: {d}/bin\n    config_dir: {d}/etc\n    unit_dir: {d}/units\n    service_name: mlflow-e2e-{port}\n    source: {{path: {}}}\n{ui}{extra}  become: true\n",
        bin.display()
    );
    // The seed's assert block, verbatim but for the port.
    let text = if extra.contains("absent") {
        text
    } else {
        format!("{text}\n- name: Verify MLflow service\n  assert:\n    http:\n      url: http://localhost:{port}/api/2.0/experiments\n      status: 200\n")
    };
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn recap(text: &str, key: &str) -> usize {
    let pat = format!("{key}=");
    text.lines()
        .filter(|l| l.starts_with("recap:"))
        .flat_map(|l| l.split_whitespace())
        .find_map(|w| w.strip_prefix(&pat).and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("no {key} in: {text}"))
}

fn http(method: &str, url: &str, body: Option<&str>) -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let req = match method {
        "POST" => client
            .post(url)
            .header("content-type", "application/json")
            .body(body.unwrap_or("{}").to_string()),
        _ => client.get(url),
    };
    let r = req.send().unwrap();
    (r.status().as_u16(), r.text().unwrap_or_default())
}

#[test]
fn mlflow_preset_lifecycle() {
    if facts_euid() != 0 {
        common::cannot_run("the end-to-end install needs root");
        return;
    }
    let bin = server_binary();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _cleanup = Cleanup(dir.path().join(format!("data/mlflow-e2e-{port}.pid")));
    let present = playbook(dir.path(), "present.yml", port, &bin, "    user: root\n");
    let pb = present.to_str().unwrap();

    // 1. Quick start: installs, starts, health and the seed's assert hold.
    let (code, text) = preset(&["apply", pb]);
    assert_eq!(code, 0, "{text}");
    assert!(recap(&text, "changed") > 0, "{text}");
    assert_eq!(
        http("GET", &format!("{base}/health"), None),
        (200, "OK".into())
    );
    let env_file = dir.path().join(format!("etc/mlflow-e2e-{port}.env"));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&env_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let (status, body) = http(
        "POST",
        &format!("{base}/api/2.0/mlflow/experiments/create"),
        Some(r#"{"name":"preset-e2e"}"#),
    );
    assert_eq!(status, 200, "{body}");

    // 2. Idempotent.
    let (code, text) = preset(&["apply", pb]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(recap(&text, "changed"), 0, "{text}");

    // 3. --check on a changed parameter predicts the change and changes nothing.
    let before = std::fs::read(&env_file).unwrap();
    let changed = playbook(
        dir.path(),
        "workers.yml",
        port,
        &bin,
        "    user: root\n    workers: 3\n",
    );
    let (code, text) = preset(&["apply", "--check", "--diff", changed.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("+MLFLOW_WORKERS=3"), "{text}");
    assert!(text.contains("would restart"), "{text}");
    assert_eq!(std::fs::read(&env_file).unwrap(), before);
    assert_eq!(http("GET", &format!("{base}/health"), None).0, 200);

    // 4. absent: binary and env file gone, server stopped, data kept.
    let absent = playbook(
        dir.path(),
        "absent.yml",
        port,
        &bin,
        "    user: root\n    state: absent\n",
    );
    let absent = absent.to_str().unwrap();
    let (code, text) = preset(&["apply", absent]);
    assert_eq!(code, 0, "{text}");
    assert!(!dir.path().join(format!("bin/mlflow-e2e-{port}")).exists());
    assert!(!env_file.exists());
    assert!(dir.path().join("data/mlflow.db").exists(), "{text}");
    assert!(text.contains("kept the tracking data"), "{text}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "server still listening"
    );

    // 5. absent again: nothing to do.
    let (code, text) = preset(&["apply", absent]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(recap(&text, "changed"), 0, "{text}");

    // 6. Apply again: the experiment created before is still there.
    let (code, text) = preset(&["apply", pb]);
    assert_eq!(code, 0, "{text}");
    let (_, body) = http("GET", &format!("{base}/api/2.0/experiments"), None);
    assert!(body.contains("preset-e2e"), "{body}");

    // 7. Purge removes everything.
    let purge = playbook(
        dir.path(),
        "purge.yml",
        port,
        &bin,
        "    user: root\n    state: absent\n    purge: true\n",
    );
    let (code, text) = preset(&["apply", purge.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(!dir.path().join("data").exists(), "{text}");
}

/// A foreign `mlflow` (pip's prints `mlflow, version X`) is never replaced without force.
#[test]
fn foreign_mlflow_is_not_overwritten() {
    let bin = server_binary();
    if facts_euid() != 0 {
        common::cannot_run("installing over /usr/local-like folders needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    let foreign = dir.path().join(format!("bin/mlflow-e2e-{port}"));
    std::fs::write(&foreign, "#!/bin/sh\necho 'mlflow, version 2.9.2'\n").unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&foreign)
        .status()
        .unwrap();
    let pb = playbook(dir.path(), "p.yml", port, &bin, "    user: root\n");
    let (code, text) = preset(&["apply", pb.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("not ours"), "{text}");
    assert!(std::fs::read_to_string(&foreign).unwrap().contains("2.9.2"));
    // Removing with state: absent keeps it too.
    let pb = playbook(
        dir.path(),
        "a.yml",
        port,
        &bin,
        "    user: root\n    state: absent\n",
    );
    let (code, text) = preset(&["apply", pb.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(foreign.exists(), "{text}");
}

fn facts_euid() -> u32 {
    preset::facts::euid()
}
