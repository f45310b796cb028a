//! The seed's quick start as a user runs it: `examples/quickstart.yml` (`- preset: mlflow`)
//! and `examples/uninstall.yml`, verbatim, with the real `mlflow` binary that sits next to the
//! `preset` executable (the preset's default source). Only `-e` overrides point the install
//! at a temporary folder and a free port, so the machine's /usr/local/bin and /var/lib/mlflow
//! are never touched. Output is read as `--format json` events.
//!
//! apply → /health OK → an experiment is created and the seed's Python snippet logs a run with
//! the official client (when .venv from tests/setup-python.sh exists) → apply again: 0 changed → `--check --diff`
//! with a changed parameter predicts the change and changes nothing → uninstall: binary gone,
//! data kept → uninstall again: 0 changed → apply again: the experiment and the run are still
//! there.
//!
//! Needs the server binary: `cargo build --workspace --bins` before `cargo test`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{free_port, http, listening, root, server_binary, Install};

/// Runs the seed's "Log experiment from Python" snippet against `uri` with the official
/// client from the test venv. Returns false when the venv is missing.
fn seed_python_snippet(uri: &str) -> bool {
    let snippet = "\nimport mlflow\nmlflow.start_run()\nmlflow.log_param('learning_rate', 0.01)\nmlflow.log_metric('accuracy', 0.95)\nmlflow.end_run()\n";
    common::official_client(snippet, &[], &[("MLFLOW_TRACKING_URI", Path::new(uri))]).is_some()
}

#[test]
fn quickstart_lifecycle_with_the_seed_playbooks() {
    server_binary();
    let inst = Install::new();

    // 1. The quick start installs and starts the server, and reports what changed.
    let run = inst.apply("examples/quickstart.yml", &[]);
    assert_eq!(run.code, 0, "{}", run.raw);
    assert!(run.count("changed") >= 3, "{}", run.raw);
    assert_eq!(run.count("failed"), 0, "{}", run.raw);
    assert_eq!(
        run.step("install the mlflow binary")["status"],
        "changed",
        "{}",
        run.raw
    );
    let started = run.step("run the tracking server");
    assert_eq!(started["status"], "changed", "{}", run.raw);
    assert!(
        started["message"]
            .as_str()
            .is_some_and(|m| m.contains("/health")),
        "{}",
        run.raw
    );
    assert_eq!(http("GET", &inst.url("/health"), None), (200, "OK".into()));
    // The web UI (default `ui: true`, here from the test venv's bundle) is installed and
    // served at /.
    if let Some(bundle) = common::venv_ui_bundle() {
        assert_eq!(
            run.step("MLflow web UI")["status"],
            "changed",
            "{}",
            run.raw
        );
        let index = std::fs::read_to_string(bundle.join("index.html")).expect("index.html");
        assert_eq!(http("GET", &inst.url("/"), None), (200, index));
    }
    let binary = inst.path("bin/mlflow");
    let version = Command::new(&binary)
        .arg("--version")
        .output()
        .expect("installed binary runs");
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("mlflow "));
    let env_file = inst.path("etc/mlflow.env");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&env_file)
            .expect("env file")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the environment file holds secrets");
    let (status, body) = http(
        "POST",
        &inst.url("/api/2.0/mlflow/experiments/create"),
        Some(r#"{"name":"quickstart-kept"}"#),
    );
    assert_eq!(status, 200, "{body}");
    let pid = inst.pid().expect("pid file under data_dir");
    // The seed's Python snippet, verbatim, through the official client when the test venv
    // (tests/setup-python.sh) is there.
    let logged_with_python = seed_python_snippet(&inst.url(""));

    // 2. A second apply changes nothing and leaves the same process running.
    let run = inst.apply("examples/quickstart.yml", &[]);
    assert_eq!(run.code, 0, "{}", run.raw);
    assert_eq!(run.count("changed"), 0, "{}", run.raw);
    assert_eq!(inst.pid(), Some(pid));

    // 3. --check with a changed parameter predicts the change and changes nothing.
    let before = std::fs::read(&env_file).expect("env file");
    let run = inst.apply(
        "examples/quickstart.yml",
        &["--check", "--diff", "-e", "workers=2"],
    );
    assert_eq!(run.code, 0, "{}", run.raw);
    assert_eq!(run.recap["check_mode"], true, "{}", run.raw);
    assert_eq!(run.count("changed"), 2, "{}", run.raw);
    let env_step = run.step("environment file");
    assert_eq!(env_step["status"], "changed", "{}", run.raw);
    assert!(
        env_step["diff"]
            .as_str()
            .is_some_and(|d| d.contains("+MLFLOW_WORKERS=2")),
        "{}",
        run.raw
    );
    assert!(
        run.step("run the tracking server")["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("would restart")),
        "{}",
        run.raw
    );
    assert_eq!(std::fs::read(&env_file).expect("env file"), before);
    assert_eq!(inst.pid(), Some(pid), "--check restarted the server");
    assert_eq!(http("GET", &inst.url("/health"), None).0, 200);

    // 4. The seed's uninstall block: server stopped, binary and env file gone, data kept.
    let run = inst.apply("examples/uninstall.yml", &[]);
    assert_eq!(run.code, 0, "{}", run.raw);
    assert!(run.count("changed") >= 2, "{}", run.raw);
    assert!(!binary.exists(), "binary still there: {}", run.raw);
    assert!(!env_file.exists(), "env file still there: {}", run.raw);
    assert!(inst.path("data/mlflow.db").exists(), "{}", run.raw);
    let kept = run.step("keep the tracking data");
    assert!(
        kept["message"]
            .as_str()
            .is_some_and(|m| m.contains(&inst.path("data/mlflow.db").display().to_string())),
        "absent must say where the data is: {}",
        run.raw
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!listening(inst.port), "server still listening");

    // 5. Uninstall again: all ok.
    let run = inst.apply("examples/uninstall.yml", &[]);
    assert_eq!(run.code, 0, "{}", run.raw);
    assert_eq!(run.count("changed"), 0, "{}", run.raw);

    // 6. Apply again: the experiment created before the uninstall is still there.
    let run = inst.apply("examples/quickstart.yml", &[]);
    assert_eq!(run.code, 0, "{}", run.raw);
    let (status, body) = http(
        "GET",
        &inst.url("/api/2.0/mlflow/experiments/get-by-name?experiment_name=quickstart-kept"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("quickstart-kept"), "{body}");
    if logged_with_python {
        let (status, body) = http(
            "POST",
            &inst.url("/api/2.0/mlflow/runs/search"),
            Some(r#"{"experiment_ids":["0"]}"#),
        );
        assert_eq!(status, 200, "{body}");
        assert!(
            body.contains("learning_rate") && body.contains("accuracy"),
            "the run logged before the uninstall is gone: {body}"
        );
    }

    // 7. Leave nothing running: uninstall with purge removes the data too.
    let run = inst.apply("examples/uninstall.yml", &["-e", "purge=true"]);
    assert_eq!(run.code, 0, "{}", run.raw);
    assert!(!inst.path("data").exists(), "{}", run.raw);
}

/// A start that cannot succeed (the port is taken) fails with exit 1, shows the server's
/// log lines, and leaves no process behind.
#[test]
fn failed_start_shows_the_log_and_stops() {
    server_binary();
    let inst = Install::new();
    let _taken = std::net::TcpListener::bind(("127.0.0.1", inst.port)).expect("bind the port");
    let run = inst.apply("examples/quickstart.yml", &["-e", "health_timeout=20"]);
    assert_eq!(run.code, 1, "{}", run.raw);
    assert_eq!(run.count("failed"), 1, "{}", run.raw);
    let step = run.step("run the tracking server");
    assert_eq!(step["status"], "failed", "{}", run.raw);
    assert!(
        step["message"]
            .as_str()
            .is_some_and(|m| m.contains("mlflow.log")),
        "the failure shows the log: {}",
        run.raw
    );
    assert!(
        inst.pid().is_none(),
        "pid file left after a failed start: {}",
        run.raw
    );
}

/// Runs `preset` as the unprivileged `nobody` (uid 65534) with HOME in a temporary folder.
/// Whether the `nobody` user can read `path` (every folder above it searchable).
fn nobody_can_read(path: &Path) -> bool {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "test",
            "-r",
        ])
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

fn preset_as_nobody(home: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "env",
            "-i",
        ])
        .arg(format!("HOME={}", home.display()))
        .args([
            "PATH=/usr/bin:/bin",
            "USER=nobody",
            env!("CARGO_BIN_EXE_preset"),
        ])
        .args(args)
        .current_dir(home)
        .output()
        .expect("run setpriv");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Not root and no `become`: the quick start installs into the user's home (~/.local/bin,
/// ~/.local/share/mlflow, ~/.config/mlflow) and runs the server as that user. `become: true`
/// without root and without sudo is refused before anything changes. Runs where the test
/// runs as root (to drop to `nobody`) and `setpriv` exists.
#[test]
fn user_level_install_without_root() {
    let server = server_binary();
    let can_drop = preset::facts::euid() == 0
        && Command::new("setpriv")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !can_drop {
        common::cannot_run("needs root and setpriv to run preset as an unprivileged user");
        return;
    }
    let home = tempfile::tempdir().expect("temporary home");
    let h = home.path();
    let chown = Command::new("chown")
        .args(["65534:65534", h.to_str().expect("utf-8 temp path")])
        .status()
        .expect("chown");
    assert!(chown.success());
    let (code, _) = preset_as_nobody(h, &["--version"]);
    let runs = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&server)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if code != 0 || !runs {
        common::cannot_run(&format!(
            "`nobody` cannot run {} or {} (folder permissions)",
            env!("CARGO_BIN_EXE_preset"),
            server.display()
        ));
        return;
    }
    let port = free_port();
    let quickstart = root().join("examples/quickstart.yml");
    let uri = format!("tracking_uri=http://127.0.0.1:{port}");
    let pid_file = h.join(".local/share/mlflow/mlflow.pid");
    struct Kill(PathBuf);
    impl Drop for Kill {
        fn drop(&mut self) {
            if let Some(pid) = std::fs::read_to_string(&self.0)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
                .filter(|p| *p > 1)
            {
                // SAFETY: plain signal delivery to the server this test started.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
    let _kill = Kill(pid_file.clone());

    // The UI (default `ui: true`) from the test venv's bundle when `nobody` can read it, into
    // the user-level default folder; otherwise left out.
    let bundle = common::venv_ui_bundle().filter(|b| nobody_can_read(&b.join("index.html")));
    let ui = match &bundle {
        Some(b) => format!("ui_source={}", b.display()),
        None => "ui=false".to_string(),
    };
    let (code, text) = preset_as_nobody(
        h,
        &[
            "apply",
            "-e",
            &uri,
            "-e",
            &ui,
            quickstart.to_str().unwrap_or(""),
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(h.join(".local/bin/mlflow").is_file(), "{text}");
    if bundle.is_some() {
        let ui_dir = h.join(".local/share/mlflow/ui/3.17.2");
        assert!(ui_dir.join("index.html").is_file(), "{text}");
        let (status, page) = http("GET", &format!("http://127.0.0.1:{port}/"), None);
        assert_eq!(status, 200, "{page}");
        assert_eq!(
            page,
            std::fs::read_to_string(ui_dir.join("index.html")).expect("index.html"),
            "/ serves the installed UI"
        );
    }
    assert!(h.join(".config/mlflow/mlflow.env").is_file(), "{text}");
    assert!(pid_file.is_file(), "{text}");
    assert!(
        !text.contains("create user"),
        "no system user without root: {text}"
    );
    assert_eq!(
        http("GET", &format!("http://127.0.0.1:{port}/health"), None),
        (200, "OK".into())
    );
    let uninstall = root().join("examples/uninstall.yml");
    let (code, text) =
        preset_as_nobody(h, &["apply", "-e", &uri, uninstall.to_str().unwrap_or("")]);
    assert_eq!(code, 0, "{text}");
    assert!(!h.join(".local/bin/mlflow").exists(), "{text}");
    assert!(h.join(".local/share/mlflow/mlflow.db").exists(), "{text}");

    // become without root: sudo -n, or (no sudo at all) a located error and no change.
    if !Path::new("/usr/bin/sudo").exists() && !Path::new("/bin/sudo").exists() {
        let pb = h.join("become.yml");
        std::fs::write(&pb, "- preset: mlflow\n  become: true\n").expect("write playbook");
        let (code, text) = preset_as_nobody(h, &["apply", pb.to_str().unwrap_or("")]);
        assert_eq!(code, 2, "{text}");
        assert!(text.contains("become.yml:2:11"), "{text}");
        assert!(text.contains("sudo is not installed"), "{text}");
    }
}

/// Another program that already answers /health on the port is not mistaken for the new
/// server: the start is refused with a clear message and no process is left.
#[test]
fn busy_port_is_not_mistaken_for_a_healthy_server() {
    use std::io::{BufRead, BufReader, Write};
    server_binary();
    let mut inst = Install::new();
    // Hold the port from the start: a port picked free and bound later can be taken in between
    // by another test's connection.
    let other = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    inst.port = other.local_addr().expect("bound address").port();
    std::thread::spawn(move || {
        for stream in other.incoming().flatten() {
            let mut line = String::new();
            let mut reader = BufReader::new(&stream);
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut w = &stream;
            let _ =
                w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK");
        }
    });
    let run = inst.apply("examples/quickstart.yml", &[]);
    assert_eq!(run.code, 1, "{}", run.raw);
    assert!(
        run.step("run the tracking server")["message"]
            .as_str()
            .is_some_and(|m| m.contains("another program holds the port")),
        "{}",
        run.raw
    );
    assert!(inst.pid().is_none(), "{}", run.raw);
}

/// `-e NAME=VALUE` for a preset parameter is type-checked like `with:`: a wrong value is
/// invalid input (exit 2) and a right one shows in the plan.
#[test]
fn extra_vars_override_preset_parameters_and_are_checked() {
    let quickstart = root().join("examples/quickstart.yml");
    let pb = quickstart.to_str().expect("utf-8 path");
    let out = Command::new(env!("CARGO_BIN_EXE_preset"))
        .args(["validate", "-e", "workers=many", "-e", "state=gone", pb])
        .output()
        .expect("run preset");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("-e workers=many"), "{err}");
    assert!(err.contains("must be a number"), "{err}");
    assert!(
        err.contains("did you mean") || err.contains("one of"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_preset"))
        .args([
            "plan",
            "-e",
            "data_dir=/srv/elsewhere",
            "-e",
            "state=absent",
            pb,
        ])
        .output()
        .expect("run preset");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("remove the mlflow binary"), "{text}");
    assert!(text.contains("/srv/elsewhere"), "{text}");
}
