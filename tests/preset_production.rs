//! The seed's "Production Model Deployment" block as a user runs it: `examples/production.yml`
//! (`service: true`, `become: true`, the backend on the local PostgreSQL, the password from
//! MLFLOW_DB_PASSWORD, and its `assert: http:` block checking
//! http://localhost:5000/api/2.0/experiments), with the real `mlflow` binary next to `preset`.
//! `-e` overrides put the binary, data, environment file and unit in a temporary folder. Other
//! tests (and other checkouts' test runs) share this machine and its PostgreSQL, so the test
//! runs a copy of the playbook in which only two things differ: the assert's `5000` is a free
//! port (the server listens there), and the `mlflow` role and database are this run's own.
//!
//! PostgreSQL is prepared as examples/local-postgres.yml leaves it (a login role with a fresh
//! random password, a database owned by it) through `psql -h 127.0.0.1 -U postgres` with the
//! SQL on stdin, and both are dropped at the end. Then: apply → the assert step holds, /health
//! OK, an experiment created over HTTP is a row in that database, the password is in no
//! output, not on the server's command line, not in the unit, only in the 0600 environment
//! file → apply again: 0 changed, same process → examples/uninstall.yml: server stopped,
//! binary, environment file and unit gone, the database and its rows kept, and the uninstall
//! names that PostgreSQL store (password masked) as the kept data.
//!
//! Needs root (the block has `become: true`), PostgreSQL on 127.0.0.1:5432 with trust auth for
//! `postgres` (tests/db/setup.sh) and `cargo build --workspace --bins` before `cargo test`.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{http, listening, server_binary, Install};

/// Runs `sql` (on stdin, so nothing secret is on a command line) in database `db` as the
/// `postgres` superuser; returns the unaligned, tuples-only output.
fn psql(db: &str, sql: &str) -> Result<String, String> {
    let mut child = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-d", db])
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    child
        .stdin
        .take()
        .expect("psql stdin")
        .write_all(sql.as_bytes())
        .map_err(|e| format!("writing to psql: {e}"))?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A fresh password: 32 hex digits from the kernel's random source.
fn random_password() -> String {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What examples/local-postgres.yml leaves behind, under this run's own name: a login role
/// with `password` and a database owned by it. Both are dropped when this is dropped (also
/// after a failed assertion).
struct Database {
    name: String,
}

impl Database {
    fn create(password: &str) -> Self {
        let name = format!(
            "preset_production_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_nanos()
        );
        let sql = format!(
            "CREATE ROLE {name} LOGIN PASSWORD '{password}';
             CREATE DATABASE {name} OWNER {name};"
        );
        if let Err(e) = psql("postgres", &sql) {
            panic!("cannot create the role and database {name}: {e}");
        }
        Self { name }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let name = &self.name;
        let sql = format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE);
             DROP ROLE IF EXISTS {name};"
        );
        if let Err(e) = psql("postgres", &sql) {
            eprintln!("could not drop the role and database {name}: {e}");
        }
    }
}

/// Replaces the one occurrence of `from` in `text`.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "`{from}` in: {text}");
    text.replace(from, to)
}

/// examples/production.yml with its assert pointed at the install's port and its store at
/// `db`, written into the install's folder; returns its path.
fn production_playbook(inst: &Install, db: &Database) -> String {
    let text = std::fs::read_to_string(common::root().join("examples/production.yml"))
        .expect("examples/production.yml");
    assert_eq!(text.matches("5000").count(), 1, "{text}");
    let text = replace_once(
        &text,
        "url: http://localhost:5000/api/2.0/experiments",
        &format!("url: http://localhost:{}/api/2.0/experiments", inst.port),
    );
    let text = replace_once(
        &text,
        "postgresql://mlflow:{{ env.MLFLOW_DB_PASSWORD }}@127.0.0.1:5432/mlflow\"",
        &format!(
            "postgresql://{0}:{{{{ env.MLFLOW_DB_PASSWORD }}}}@127.0.0.1:5432/{0}\"",
            db.name
        ),
    );
    let path = inst.path("production.yml");
    std::fs::write(&path, text).expect("write the playbook");
    path.display().to_string()
}

#[test]
fn production_block_on_local_postgresql() {
    let started = Instant::now();
    server_binary();
    if preset::facts::euid() != 0 {
        common::cannot_run("the production block has `become: true`; run the tests as root");
        return;
    }
    if let Err(e) = psql("postgres", "SELECT 1") {
        panic!(
            "PostgreSQL does not answer on 127.0.0.1:5432 as user postgres \
             (run tests/db/setup.sh first): {e}"
        );
    }
    let password = random_password();
    let db = Database::create(&password);
    let inst = Install::new().with_env("MLFLOW_DB_PASSWORD", &password);
    let playbook = production_playbook(&inst, &db);
    let verify_url = format!("http://localhost:{}/api/2.0/experiments", inst.port);
    let env_file = inst.path("etc/mlflow.env");
    let unit_file = inst.path("units/mlflow.service");
    let binary = inst.path("bin/mlflow");

    // 1. The block installs and starts the server on PostgreSQL; its assert holds.
    let run = inst.apply(&playbook, &[]);
    assert_eq!(run.code, 0, "{}", run.raw);
    assert_eq!(run.count("failed"), 0, "{}", run.raw);
    assert!(
        !run.raw.contains(&password),
        "password in the output: {}",
        run.raw
    );
    assert_eq!(
        run.step("run the tracking server")["status"],
        "changed",
        "{}",
        run.raw
    );
    let verify = run.step("Verify MLflow service");
    assert_eq!(verify["status"], "ok", "{}", run.raw);
    assert!(
        verify["message"]
            .as_str()
            .is_some_and(|m| m.contains(&verify_url)),
        "{}",
        run.raw
    );
    assert_eq!(http("GET", &inst.url("/health"), None), (200, "OK".into()));

    // The URI with its password lives only in the 0600 environment file.
    let mode = std::fs::metadata(&env_file)
        .expect("env file")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the environment file holds the password"
    );
    let env_text = std::fs::read_to_string(&env_file).expect("env file");
    assert!(
        env_text.contains(&format!(
            "MLFLOW_BACKEND_STORE_URI=postgresql://{0}:{password}@127.0.0.1:5432/{0}\n",
            db.name
        )),
        "the environment file does not hold the PostgreSQL URI"
    );
    let unit = std::fs::read_to_string(&unit_file).expect("the unit (service: true)");
    assert!(
        unit.contains(&format!("EnvironmentFile={}", env_file.display())),
        "{unit}"
    );
    assert!(!unit.contains(&password), "password in the unit: {unit}");
    let pid = inst.pid().expect("pid file under data_dir");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("server cmdline");
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.contains("server"), "{cmdline}");
    assert!(
        !cmdline.contains(&password),
        "password on the command line: {cmdline}"
    );

    // The server really stores in PostgreSQL: an experiment created over HTTP is a row in
    // this run's database.
    let name = format!("{}-experiment", db.name);
    let (status, body) = http(
        "POST",
        &inst.url("/api/2.0/mlflow/experiments/create"),
        Some(&format!(r#"{{"name":"{name}"}}"#)),
    );
    assert_eq!(status, 200, "{body}");
    let id: serde_json::Value = serde_json::from_str(&body).expect("JSON answer");
    let id = id["experiment_id"]
        .as_str()
        .expect("experiment_id")
        .to_string();
    let row_sql = format!("SELECT experiment_id FROM experiments WHERE name = '{name}'");
    assert_eq!(psql(&db.name, &row_sql), Ok(id.clone()));

    // 2. A second apply changes nothing and leaves the same process running.
    let run = inst.apply(&playbook, &[]);
    assert_eq!(run.code, 0, "{}", run.raw);
    assert_eq!(run.count("changed"), 0, "{}", run.raw);
    assert_eq!(
        run.step("Verify MLflow service")["status"],
        "ok",
        "{}",
        run.raw
    );
    assert!(
        !run.raw.contains(&password),
        "password in the output: {}",
        run.raw
    );
    assert_eq!(inst.pid(), Some(pid));

    // 3. The seed's uninstall block: server stopped, binary, env file and unit gone; the
    // PostgreSQL database keeps the data, and the uninstall says that is where it is.
    let run = inst.apply("examples/uninstall.yml", &[]);
    assert_eq!(run.code, 0, "{}", run.raw);
    assert!(run.count("changed") >= 3, "{}", run.raw);
    assert!(
        !run.raw.contains(&password),
        "password in the output: {}",
        run.raw
    );
    assert!(!binary.exists(), "binary still there: {}", run.raw);
    assert!(!env_file.exists(), "env file still there: {}", run.raw);
    assert!(!unit_file.exists(), "unit still there: {}", run.raw);
    assert!(
        run.step("keep the tracking data")["message"]
            .as_str()
            .is_some_and(
                |m| m.contains(&format!("postgresql://{0}:***@127.0.0.1:5432/{0}", db.name))
            ),
        "absent must name the PostgreSQL store it keeps: {}",
        run.raw
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!listening(inst.port), "server still listening: {}", run.raw);
    assert_eq!(psql(&db.name, &row_sql), Ok(id), "data lost");

    eprintln!(
        "production block on PostgreSQL: {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
