//! Helpers shared by the integration tests that run the seed's playbooks with the real
//! `preset` and `mlflow` binaries (`mod common;`): a temporary install whose `-e` overrides
//! keep the machine's /usr/local/bin, /etc and /var/lib/mlflow untouched, `--format json`
//! runs read as events, and a small HTTP client.

// Each test crate that includes this module uses a different part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `mlflow` binary the preset installs by default: next to the `preset` executable.
pub fn server_binary() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_preset")).with_file_name("mlflow");
    assert!(
        p.is_file(),
        "{} is missing: build the server first with `cargo build --workspace --bins` \
         (the mlflow preset installs the `mlflow` binary found next to `preset`)",
        p.display()
    );
    p
}

/// What a test that cannot run on this machine (not root, a tool missing) does instead: under
/// `tests/run`, which installs those tools, runs as root and sets
/// `PRESET_TESTS_REQUIRE_ALL=1`, it fails, so that no skipped test passes for a run one;
/// elsewhere (a developer's `cargo test` without root) it says why and the test stops.
pub fn cannot_run(reason: &str) {
    if std::env::var_os("PRESET_TESTS_REQUIRE_ALL").is_some() {
        panic!("this test must run under tests/run, but cannot here: {reason}");
    }
    eprintln!("skipped: {reason}");
}

/// Runs the `preset` binary in `dir`.
pub fn preset(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_preset"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run preset")
}

/// Writes `dir/name` and returns its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write a test file");
    p
}

/// A script that answers `--version` like our server, standing in for it.
pub fn stand_in_binary(dir: &Path) -> PathBuf {
    let p = write(dir, "mlflow", "#!/bin/sh\necho 'mlflow 0.0.0'\n");
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod the stand-in binary");
    p
}

/// Runs `apply` on a broken playbook (with `env` set) and returns stderr; asserts exit 2 and
/// no side effect.
pub fn broken_with(text: &str, env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("temporary folder");
    let pb = write(dir.path(), "playbook.yml", text);
    let out = Command::new(env!("CARGO_BIN_EXE_preset"))
        .args(["apply", pb.to_str().expect("utf-8 path")])
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .output()
        .expect("run preset");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains("nothing was changed"), "{err}");
    // Nothing was created next to the playbook.
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("read dir").count(),
        1,
        "{err}"
    );
    err
}

/// [`broken_with`] whose errors say each of `expected`; returns them.
pub fn refused(text: &str, env: &[(&str, &str)], expected: &[&str]) -> String {
    let err = broken_with(text, env);
    for e in expected {
        assert!(err.contains(e), "no `{e}` in: {err}");
    }
    err
}

/// Runs `script` with the official MLflow client of the test venv and `env`; returns its
/// stdout, or `None` when the venv is missing (a failure under tests/run, see [`cannot_run`]).
pub fn official_client(script: &str, args: &[&str], env: &[(&str, &Path)]) -> Option<String> {
    let python = root().join(".venv/bin/python");
    if !python.is_file() {
        cannot_run(&format!(
            "{} missing (tests/setup-python.sh): the official client cannot run",
            python.display()
        ));
        return None;
    }
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "the official client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// What a run printed: stdout, then stderr.
pub fn both(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// [`broken_with`] without environment.
pub fn broken(text: &str) -> String {
    broken_with(text, &[])
}

/// A self-signed certificate for localhost and 127.0.0.1, made with the openssl CLI (marked
/// as no CA: rustls refuses a CA certificate as a server's own).
pub fn self_signed(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .is_ok_and(|o| o.status.success());
    made.then_some((cert, key))
}

/// MLflow's UI bundle inside the official client's wheel in the test venv
/// (tests/setup-python.sh), if it is there.
pub fn venv_ui_bundle() -> Option<PathBuf> {
    let lib = root().join(".venv/lib");
    std::fs::read_dir(lib).ok()?.flatten().find_map(|python| {
        let build = python.path().join("site-packages/mlflow/server/js/build");
        build.join("index.html").is_file().then_some(build)
    })
}

/// `-e` overrides that install the UI (the preset's default `ui: true`) offline from the
/// venv's bundle into `dir/ui`, instead of downloading the wheel from PyPI in every test.
/// Without the venv the UI is left out (`ui=false`), which fails under tests/run.
pub fn ui_overrides(dir: &Path) -> Vec<String> {
    match venv_ui_bundle() {
        Some(bundle) => vec![
            format!("ui_dir={}/ui", dir.display()),
            format!("ui_source={}", bundle.display()),
        ],
        None => {
            cannot_run("no UI bundle in .venv (tests/setup-python.sh): applied with ui=false");
            vec!["ui=false".into()]
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// One run of `preset apply --format json`: exit code, step events and the recap.
pub struct Run {
    pub code: i32,
    pub steps: Vec<Value>,
    pub recap: Value,
    pub raw: String,
}

impl Run {
    pub fn count(&self, key: &str) -> u64 {
        self.recap[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no `{key}` in the recap: {}", self.raw))
    }
    pub fn step(&self, name_part: &str) -> &Value {
        self.steps
            .iter()
            .find(|s| s["name"].as_str().is_some_and(|n| n.contains(name_part)))
            .unwrap_or_else(|| panic!("no step `{name_part}` in: {}", self.raw))
    }
}

/// The temporary install: its folder, port, `-e` overrides and the environment `preset` runs
/// with. Kills the server it started when dropped, even when an assertion failed half-way.
pub struct Install {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// `http`, or `https` for a server with TLS.
    pub scheme: &'static str,
    env: Vec<(String, String)>,
}

impl Install {
    /// On a free port (`-e tracking_uri=http://127.0.0.1:PORT`).
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary folder"),
            port: free_port(),
            scheme: "http",
            env: Vec::new(),
        }
    }

    /// Listening with TLS (`tracking_uri` is https; the playbook gives the certificate).
    pub fn https(mut self) -> Self {
        self.scheme = "https";
        self
    }

    /// An environment variable for every `preset` run (e.g. a password for `{{ env.X }}`).
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn overrides(&self) -> Vec<String> {
        let d = self.dir.path().display();
        let user = if preset::facts::euid() == 0 {
            "root".to_string()
        } else {
            std::env::var("USER").unwrap_or_default()
        };
        let mut e = vec![
            format!("tracking_uri={}://127.0.0.1:{}", self.scheme, self.port),
            format!("data_dir={d}/data"),
            format!("bin_dir={d}/bin"),
            format!("config_dir={d}/etc"),
            format!("unit_dir={d}/units"),
        ];
        e.extend(ui_overrides(self.dir.path()));
        if !user.is_empty() {
            // Run as ourselves: no system user is created on this machine.
            e.push(format!("user={user}"));
        }
        e
    }

    /// `preset apply` of `playbook` (relative to the repository, or absolute).
    pub fn apply(&self, playbook: &str, extra: &[&str]) -> Run {
        let mut args: Vec<String> = vec!["apply".into(), "--format".into(), "json".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        for e in self.overrides() {
            args.push("-e".into());
            args.push(e);
        }
        args.push(root().join(playbook).display().to_string());
        let out = Command::new(env!("CARGO_BIN_EXE_preset"))
            .args(&args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path())
            .output()
            .expect("run preset");
        let raw = both(&out);
        let mut steps = Vec::new();
        let mut recap = Value::Null;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON event ({e}): {line}\n{raw}"));
            match v["event"].as_str() {
                Some("step") => steps.push(v),
                Some("recap") => recap = v,
                _ => {}
            }
        }
        assert!(recap.is_object(), "no recap event: {raw}");
        Run {
            code: out.status.code().unwrap_or(-1),
            steps,
            recap,
            raw,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.port)
    }

    pub fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.path("data/mlflow.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }
}

impl Drop for Install {
    fn drop(&mut self) {
        if let Some(pid) = self.pid().filter(|p| *p > 1) {
            // SAFETY: plain signal delivery to the server this test started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

pub fn http(method: &str, url: &str, body: Option<&str>) -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    let req = match method {
        "POST" => client
            .post(url)
            .header("content-type", "application/json")
            .body(body.unwrap_or("{}").to_string()),
        _ => client.get(url),
    };
    match req.send() {
        Ok(r) => (r.status().as_u16(), r.text().unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

pub fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}
