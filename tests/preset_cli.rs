//! The `preset` binary on invalid input: every broken playbook exits 2 with located errors and
//! changes nothing; plus `validate`, `plan`, `show`, `list`, `facts` and the systemd unit check.

mod common;

use std::path::Path;
use std::process::Command;

use common::{broken, preset, stand_in_binary, write};

#[test]
fn bad_yaml_is_located() {
    let err = broken("- preset: mlflow\n  with: {state: present\n");
    assert!(err.contains("playbook.yml:"), "{err}");
}

#[test]
fn unknown_key_suggests_the_right_one() {
    let err = broken("- preset: mlflow\n  wiht:\n    service: true\n");
    assert!(err.contains("playbook.yml:2:3"), "{err}");
    assert!(err.contains("did you mean `with`?"), "{err}");
}

#[test]
fn wrong_type_and_yaml11_boolean() {
    let err = broken("- preset: mlflow\n  with:\n    service: yes\n");
    assert!(err.contains("playbook.yml:3:14"), "{err}");
    assert!(err.contains("must be a boolean"), "{err}");
    assert!(err.contains("write `true` or `false`"), "{err}");
}

#[test]
fn unknown_preset_and_parameter() {
    let err = broken("- preset: mlflw\n");
    assert!(err.contains("playbook.yml:1:11"), "{err}");
    assert!(err.contains("did you mean `mlflow`?"), "{err}");
    let err = broken("- preset: mlflow\n  with:\n    trackin_uri: http://127.0.0.1:5000\n");
    assert!(err.contains("unknown parameter `trackin_uri`"), "{err}");
    assert!(err.contains("did you mean `tracking_uri`?"), "{err}");
}

#[test]
fn bad_uri_and_bad_enum_are_all_reported_at_once() {
    let err = broken(
        "- preset: mlflow\n  with:\n    backend_store_uri: not a uri\n    state: absnt\n    workers: 0\n",
    );
    assert!(err.contains("playbook.yml:3:24"), "{err}");
    assert!(err.contains("not a valid uri"), "{err}");
    assert!(err.contains("did you mean `absent`?"), "{err}");
    assert!(err.contains("at least 1"), "{err}");
    assert!(err.contains("3 errors found"), "{err}");
}

#[test]
fn duplicate_keys_and_step_shape() {
    let err = broken("- preset: mlflow\n  become: true\n  become: false\n");
    assert!(err.contains("playbook.yml:3:3"), "{err}");
    let err = broken("- name: nothing\n");
    assert!(err.contains("step has no action"), "{err}");
    let err = broken("- print: a\n  file: {path: /tmp/x}\n");
    assert!(err.contains("several actions"), "{err}");
    let err = broken("- print: \"{{ nope }}\"\n");
    assert!(err.contains("playbook.yml:1:10"), "{err}");
}

#[test]
fn secrets_are_masked_in_errors_and_plans() {
    let dir = tempfile::tempdir().unwrap();
    let fake = stand_in_binary(dir.path());
    let pb = write(
        dir.path(),
        "p.yml",
        &format!("- preset: mlflow\n  with:\n    backend_store_uri: postgresql://u:hunter2@db/x\n    service: true\n    source: {{path: {}}}\n", fake.display()),
    );
    let out = preset(&["plan", pb.to_str().unwrap()], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let out = preset(
        &["apply", "--check", "--diff", pb.to_str().unwrap()],
        dir.path(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("postgresql://u:***@db/x"), "{text}");
}

#[test]
fn validate_plan_show_list_facts() {
    let dir = tempfile::tempdir().unwrap();
    let pb = write(dir.path(), "p.yml", "- preset: mlflow\n");
    let out = preset(&["validate", pb.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(0));
    let out = preset(
        &["plan", "--format", "json", pb.to_str().unwrap()],
        dir.path(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["origin"]
            .as_str()
            .unwrap()
            .starts_with("presets/mlflow/preset.yml:"));
    }
    // The web UI is installed by default, from PyPI (no offline source given).
    let ui_step = text
        .lines()
        .find(|l| l.contains("MLflow web UI in"))
        .unwrap_or_else(|| panic!("no UI step in the default plan: {text}"));
    assert!(ui_step.contains("ui install"), "{ui_step}");
    assert!(!ui_step.contains("--from-"), "{ui_step}");
    let out = preset(&["show", "mlflow"], dir.path());
    assert!(String::from_utf8_lossy(&out.stdout).contains("tracking_uri"));
    let out = preset(&["list"], dir.path());
    assert!(String::from_utf8_lossy(&out.stdout).contains("mlflow"));
    let out = preset(&["facts", "--format", "json"], dir.path());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["os"].is_string());
    assert!(v["systemd"].is_boolean());
}

#[test]
fn presets_dir_override() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("presets/hello")).unwrap();
    write(
        &dir.path().join("presets/hello"),
        "preset.yml",
        "name: hello\ndescription: says hello\nparameters:\n  who: {type: string, default: world}\nsteps:\n  - print: \"hello {{ who }}\"\n",
    );
    let pb = write(dir.path(), "p.yml", "- preset: hello\n  with: {who: you}\n");
    let out = preset(
        &[
            "--presets-dir",
            dir.path().join("presets").to_str().unwrap(),
            "apply",
            pb.to_str().unwrap(),
        ],
        dir.path(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("hello you"), "{text}");
}

#[test]
fn primitive_actions_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let pb = write(
        dir.path(),
        "p.yml",
        &format!(
            "- vars:\n    greeting: hi\n- name: a directory\n  file: {{path: {d}/out, state: directory, mode: \"0750\"}}\n- file:\n    path: {d}/out/a.txt\n    content: \"{{{{ greeting }}}} {{{{ who }}}}\\n\"\n    mode: \"0600\"\n- command:\n    argv: [touch, {d}/out/made]\n    creates: {d}/out/made\n- assert:\n    file: {{path: {d}/out/a.txt, mode: \"0600\", contains: hi}}\n- assert:\n    command: {{argv: [cat, {d}/out/a.txt], contains: there}}\n"
        ),
    );
    let args = ["apply", "-e", "who=there", pb.to_str().unwrap()];
    let out = preset(&args, dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("changed=3"), "{text}");
    let out = preset(&args, dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("changed=0"), "{text}");
    // A failing assert exits 1.
    let out = preset(
        &["apply", "-e", "who=nobody", pb.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The rendered unit passes `systemd-analyze verify`, as it is by default and with the
/// network settings (basic auth, TLS, allowed hosts), and holds no secret.
#[test]
fn rendered_unit_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        common::cannot_run("systemd-analyze is not installed (Debian's systemd package)");
        return;
    }
    let password = "unit-test \"Zq9-pw\" $x";
    for network in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        // A stand-in binary so ExecStart points at an executable.
        stand_in_binary(dir.path());
        let mut with = format!(
            "    service: true\n    user: root\n    bin_dir: {d}\n    unit_dir: {d}/units\n    data_dir: {d}/data\n    config_dir: {d}/etc\n    source: {{path: {d}/mlflow}}\n    extra_args: [--static-prefix, /mlflow]\n    backend_store_uri: postgresql://u:pw@db/x\n"
        );
        if network {
            with.push_str(&format!(
                "    auth: true\n    admin_password: \"{{{{ env.MLFLOW_ADMIN_PASSWORD }}}}\"\n    allowed_hosts: [mlflow.example.com]\n    tracking_uri: https://0.0.0.0:5443\n    tls_cert: {d}/tls/cert.pem\n    tls_key: {d}/tls/key.pem\n    ui: true\n    ui_source: {d}/mlflow-3.17.2-py3-none-any.whl\n"
            ));
        }
        let pb = write(
            dir.path(),
            "p.yml",
            &format!("- preset: mlflow\n  with:\n{with}"),
        );
        let out = Command::new(env!("CARGO_BIN_EXE_preset"))
            .args(["apply", "--check", "--diff", pb.to_str().unwrap()])
            .env("MLFLOW_ADMIN_PASSWORD", password)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(!text.contains("Zq9"), "the password in the output: {text}");
        let unit: String = text
            .lines()
            .skip_while(|l| !l.contains("units/mlflow.service (after)"))
            .skip(2)
            .take_while(|l| l.trim_start().starts_with("| +"))
            .map(|l| format!("{}\n", l.trim_start().trim_start_matches("| +")))
            .collect();
        assert!(unit.contains("[Service]"), "{text}");
        assert!(unit.contains("NoNewPrivileges=true") && unit.contains("ProtectSystem=strict"));
        assert!(
            !unit.contains("pw@"),
            "secrets must not be in the unit: {unit}"
        );
        if network {
            assert!(
                unit.contains("ExecStart=")
                    && unit.contains(" server --app-name basic-auth --static-prefix /mlflow\n"),
                "{unit}"
            );
            assert!(
                text.contains("MLFLOW_AUTH_ADMIN_PASSWORD=********"),
                "{text}"
            );
            assert!(text.contains("--from-wheel"), "{text}");
        }
        let unit_path = write(dir.path(), "mlflow.service", &unit);
        let out = Command::new("systemd-analyze")
            .args(["verify", unit_path.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        // Only complaints about the unit itself matter (not the absent system manager).
        let problems: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("mlflow.service"))
            .collect();
        assert!(problems.is_empty(), "systemd-analyze verify: {err}");
    }
}

/// Every playbook in examples/ (one per YAML block of the seed) validates.
#[test]
fn examples_validate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for e in std::fs::read_dir(root.join("examples")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yml") {
            let out = Command::new(env!("CARGO_BIN_EXE_preset"))
                .args(["validate", p.to_str().unwrap()])
                .env("MLFLOW_DB_PASSWORD", "example-password")
                .env("MLFLOW_ADMIN_PASSWORD", "example-admin-password")
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}: {}",
                p.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            n += 1;
        }
    }
    assert!(n >= 4, "expected the seed's examples, found {n}");
}
