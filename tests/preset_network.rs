//! The mlflow preset's settings for a server on a network: basic auth (the admin password only
//! from the environment, only in the 0600 environment file), allowed hosts, TLS and the web
//! UI. Here: every wrong combination is refused with a located error before anything changes,
//! and the planned files carry the settings with the secret masked in all output.

mod common;

use std::process::Command;

use common::{refused, write};

const PASSWORD_ENV: (&str, &str) = ("MLFLOW_ADMIN_PASSWORD", "long-enough \"Zq9-pw\" $x");

#[test]
fn auth_needs_an_admin_password_from_the_environment() {
    let auth = "- preset: mlflow\n  with:\n    auth: true\n";
    let from_env = format!("{auth}    admin_password: \"{{{{ env.MLFLOW_ADMIN_PASSWORD }}}}\"\n");
    let needed = "needs parameter `admin_password` when `auth`";
    // Missing, or from an empty variable: pointed at `auth: true`, saying how to give it.
    refused(
        auth,
        &[],
        &[
            "playbook.yml:3:5",
            needed,
            "{{ env.MLFLOW_ADMIN_PASSWORD }}",
        ],
    );
    refused(
        &from_env,
        &[("MLFLOW_ADMIN_PASSWORD", "")],
        &["playbook.yml:3:5", needed],
    );
    // From an unset variable: where it is used.
    refused(
        &from_env,
        &[],
        &["playbook.yml:4:21", "MLFLOW_ADMIN_PASSWORD"],
    );
    // Written in the playbook: refused where it is written, and not repeated.
    let literal = format!("{auth}    admin_password: hunter2-hunter2\n");
    let err = refused(&literal, &[], &["playbook.yml:4:21", "is a secret"]);
    assert!(!err.contains("hunter2"), "{err}");
    // Too short: refused without showing it.
    let short = [("MLFLOW_ADMIN_PASSWORD", "abc12")];
    let err = refused(&from_env, &short, &["at least 12 characters"]);
    assert!(!err.contains("abc12"), "{err}");
    // The default permission is one of MLflow's.
    let wrong = format!("{from_env}    auth_default_permission: WRITE\n");
    refused(
        &wrong,
        &[PASSWORD_ENV],
        &["READ, USE, EDIT, MANAGE, NO_PERMISSIONS"],
    );
    // On the command line: refused, not echoed.
    let dir = tempfile::tempdir().expect("temp dir");
    let pb = write(dir.path(), "p.yml", auth);
    let out = Command::new(env!("CARGO_BIN_EXE_preset"))
        .args(["validate", "-e", "admin_password=cmdline-secret-1"])
        .arg(&pb)
        .output()
        .expect("run preset");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not taken from the command line"), "{err}");
    assert!(!err.contains("cmdline-secret-1"), "{err}");
}

#[test]
fn tls_needs_both_files_and_https_needs_tls() {
    let with = |lines: &str| format!("- preset: mlflow\n  with:\n{lines}");
    let at = "playbook.yml:3:5";
    refused(
        &with("    tls_cert: /etc/ssl/m.pem\n"),
        &[],
        &[at, "parameter `tls_key`"],
    );
    refused(
        &with("    tls_key: /etc/ssl/m.key\n"),
        &[],
        &[at, "parameter `tls_cert`"],
    );
    let https = with("    tracking_uri: https://0.0.0.0:5443\n");
    refused(&https, &[], &[at, "parameter `tls_cert` when"]);
    let relative = with("    tls_cert: certs/m.pem\n    tls_key: /k\n");
    refused(&relative, &[], &["playbook.yml:3:15", "absolute path"]);
}

#[test]
fn allowed_hosts_are_a_list_or_a_comma_separated_string() {
    let empty = "- preset: mlflow\n  with:\n    allowed_hosts: \"a.example.com, ,b\"\n";
    refused(empty, &[], &["playbook.yml:3:20", "empty item"]);
    let spaced = "- preset: mlflow\n  with:\n    allowed_hosts: [\"a b\"]\n";
    refused(spaced, &[], &["playbook.yml:3:20", "with spaces"]);
}

/// `--check --diff` of every network setting at once: the environment file holds them (the
/// password masked, as it is everywhere), the auth settings file holds no secret, the UI is
/// installed from the given wheel, and the health check and the message use https.
#[test]
fn planned_files_carry_the_settings_and_never_the_password() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().display();
    let pb = write(
        dir.path(),
        "p.yml",
        &format!(
            "- preset: mlflow\n  with:\n    tracking_uri: https://0.0.0.0:5443\n    auth: true\n    admin_password: \"{{{{ env.MLFLOW_ADMIN_PASSWORD }}}}\"\n    auth_default_permission: NO_PERMISSIONS\n    allowed_hosts: mlflow.example.com,10.0.0.5:5443\n    tls_cert: {d}/cert.pem\n    tls_key: {d}/key.pem\n    ui: true\n    ui_dir: {d}/ui\n    ui_source: {d}/mlflow-3.17.2-py3-none-any.whl\n    data_dir: {d}/data\n    config_dir: {d}/etc\n    bin_dir: {d}/bin\n    source: {{path: {}}}\n",
            common::stand_in_binary(dir.path()).display()
        ),
    );
    for args in [
        &["apply", "--check", "--diff"][..],
        &["apply", "--check", "--diff", "--format", "json"],
        &["plan"],
        &["plan", "--format", "json"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_preset"))
            .args(args)
            .arg(&pb)
            .env(PASSWORD_ENV.0, PASSWORD_ENV.1)
            .output()
            .expect("run preset");
        let text = common::both(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {text}");
        assert!(!text.contains("Zq9"), "{args:?} shows the password: {text}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_preset"))
        .args(["apply", "--check", "--diff"])
        .arg(&pb)
        .env(PASSWORD_ENV.0, PASSWORD_ENV.1)
        .output()
        .expect("run preset");
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "| +MLFLOW_HOST=0.0.0.0",
        "| +MLFLOW_PORT=5443",
        &format!("| +MLFLOW_UI_DIR={d}/ui"),
        "| +MLFLOW_SERVER_ALLOWED_HOSTS=mlflow.example.com,10.0.0.5:5443",
        &format!("| +MLFLOW_TLS_CERT={d}/cert.pem"),
        &format!("| +MLFLOW_TLS_KEY={d}/key.pem"),
        &format!("| +MLFLOW_AUTH_CONFIG_PATH={d}/etc/mlflow.auth.ini"),
        "| +MLFLOW_AUTH_ADMIN_PASSWORD=********",
        "| +default_permission = NO_PERMISSIONS",
        &format!("| +database_uri = sqlite:///{d}/data/basic_auth.db"),
        "| +admin_username = admin",
        &format!("--dir {d}/ui --from-wheel {d}/mlflow-3.17.2-py3-none-any.whl"),
        "at https://127.0.0.1:5443",
        "basic auth, admin user admin",
    ] {
        assert!(text.contains(line), "missing `{line}` in: {text}");
    }
}

/// The preset installs the UI of the MLflow release the server is compatible with.
#[test]
fn ui_version_is_the_servers() {
    let lib = std::fs::read_to_string(common::root().join("server/src/lib.rs"))
        .expect("server/src/lib.rs");
    let preset = std::fs::read_to_string(common::root().join("presets/mlflow/preset.yml"))
        .expect("preset.yml");
    let version = lib
        .lines()
        .find_map(|l| l.split("MLFLOW_COMPAT_VERSION: &str = \"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .expect("MLFLOW_COMPAT_VERSION in server/src/lib.rs");
    assert!(
        preset.contains(&format!(
            "  ui_version:\n    type: string\n    default: \"{version}\""
        )),
        "presets/mlflow/preset.yml: ui_version's default is not {version}"
    );
}
