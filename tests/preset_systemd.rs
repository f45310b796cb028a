//! The systemd path of the mlflow preset on a machine whose init is not systemd: `preset` runs
//! in a private mount namespace where a tmpfs on /run/systemd holds `system/` (so systemd
//! looks like the running init, for that process only), with a stand-in `systemctl` first on
//! PATH that records every call and runs the unit's ExecStart with its EnvironmentFile. The
//! real server answers /health. Checks the order of systemctl calls: daemon-reload, enable,
//! start; nothing on a second apply; a restart only when the environment changed; stop,
//! disable, unit removed and daemon-reload on `state: absent`; and that a server started
//! earlier by the supervisor is stopped before systemd takes over its port.
//!
//! What this does not cover: systemd itself (the real unit is checked with
//! `systemd-analyze verify` in tests/preset_cli.rs). Needs root and `unshare`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{free_port, server_binary};

const FAKE_SYSTEMCTL: &str = r#"#!/bin/sh
# Stand-in systemctl for tests: records calls; start runs the unit's ExecStart.
state="$FAKE_SYSTEMD_STATE"
echo "$*" >> "$state/calls"
cmd="$1"; shift
[ "$1" = "--quiet" ] && shift
name="$1"
unit="$FAKE_UNIT_DIR/$name.service"
pidf="$state/$name.pid"
alive() {
  [ -f "$pidf" ] || return 1
  p=$(cat "$pidf")
  kill -0 "$p" 2>/dev/null && ! grep -q ') Z' "/proc/$p/stat" 2>/dev/null
}
stop() {
  if alive; then
    kill "$(cat "$pidf")"
    i=0
    while alive && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
  fi
  rm -f "$pidf"
}
case "$cmd" in
  daemon-reload) ;;
  enable) touch "$state/$name.enabled" ;;
  disable) rm -f "$state/$name.enabled" ;;
  is-enabled) [ -f "$state/$name.enabled" ] ;;
  is-active) alive ;;
  stop) stop ;;
  start|restart)
    stop
    envf=$(sed -n 's/^EnvironmentFile=//p' "$unit")
    exec_line=$(sed -n 's/^ExecStart=//p' "$unit")
    ( set -a; . "$envf"; set +a; exec $exec_line ) >> "$state/$name.log" 2>&1 &
    echo $! > "$pidf" ;;
  *) echo "fake systemctl: $cmd is not supported" >&2; exit 1 ;;
esac
"#;

fn can_fake_systemd() -> bool {
    preset::facts::euid() == 0
        && Command::new("unshare")
            .args(["-m", "sh", "-c", "mount -t tmpfs tmpfs /run && true"])
            .output()
            .is_ok_and(|o| o.status.success())
}

struct Machine {
    dir: tempfile::TempDir,
    port: u16,
}

impl Machine {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `preset apply PLAYBOOK -e ...` with systemd apparently running.
    fn apply(&self, playbook: &str, extra: &[&str]) -> (i32, String) {
        let d = self.dir.path().display();
        let path = format!(
            "{d}/fakebin:{}",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
        );
        let mut args: Vec<String> = vec![
            "-m".into(),
            "sh".into(),
            "-c".into(),
            "mount -t tmpfs tmpfs /run/systemd 2>/dev/null || mount -t tmpfs tmpfs /run; mkdir -p /run/systemd/system && exec \"$@\"".into(),
            "sh".into(),
            env!("CARGO_BIN_EXE_preset").into(),
            "apply".into(),
        ];
        for e in [
            format!("tracking_uri=http://127.0.0.1:{}", self.port),
            format!("data_dir={d}/data"),
            format!("bin_dir={d}/bin"),
            format!("config_dir={d}/etc"),
            format!("unit_dir={d}/units"),
            "user=root".into(),
            "health_timeout=30".into(),
        ]
        .into_iter()
        .chain(common::ui_overrides(self.dir.path()))
        {
            args.push("-e".into());
            args.push(e);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(playbook)
                .display()
                .to_string(),
        );
        let out = Command::new("unshare")
            .args(&args)
            .env("PATH", path)
            .env("FAKE_SYSTEMD_STATE", self.path("state"))
            .env("FAKE_UNIT_DIR", self.path("units"))
            .output()
            .expect("run unshare");
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// systemctl calls since the last look that change something (not `is-*` questions).
    fn calls(&self) -> Vec<String> {
        let (changes, questions) = self.all_calls();
        // The service step inspects once and its plan is carried out without asking again.
        for q in &questions {
            assert_eq!(
                questions.iter().filter(|x| *x == q).count(),
                1,
                "`systemctl {q}` asked more than once: {questions:?}"
            );
        }
        changes
    }

    /// systemctl calls since the last look: (changes, `is-*` questions).
    fn all_calls(&self) -> (Vec<String>, Vec<String>) {
        let p = self.path("state/calls");
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let _ = std::fs::write(&p, "");
        text.lines()
            .map(str::to_string)
            .partition(|l| !l.starts_with("is-"))
    }

    fn health(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok_and(|mut s| {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n");
            let mut body = String::new();
            let _ = s.read_to_string(&mut body);
            body.starts_with("HTTP/1.") && body.contains(" 200 ") && body.ends_with("OK")
        })
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        for pid_file in ["state/mlflow.pid", "data/mlflow.pid"] {
            if let Some(pid) = std::fs::read_to_string(self.path(pid_file))
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
                .filter(|p| *p > 1)
            {
                // SAFETY: plain signal delivery to a server this test started.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

fn recap_changed(text: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with("recap:"))
        .flat_map(|l| l.split_whitespace())
        .find_map(|w| w.strip_prefix("changed=").and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("no recap in: {text}"))
}

#[test]
fn systemd_service_lifecycle_with_a_stand_in_systemctl() {
    server_binary();
    if !can_fake_systemd() {
        common::cannot_run("needs root and `unshare -m` to make systemd look like the init");
        return;
    }
    let m = Machine {
        dir: tempfile::tempdir().expect("temp dir"),
        port: free_port(),
    };
    std::fs::create_dir_all(m.path("fakebin")).expect("fakebin");
    std::fs::create_dir_all(m.path("state")).expect("state");
    let systemctl = m.path("fakebin/systemctl");
    std::fs::write(&systemctl, FAKE_SYSTEMCTL).expect("write systemctl");
    std::fs::set_permissions(
        &systemctl,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");

    // 0. The quick start without `service`: the supervisor runs it, systemctl is not used.
    let (code, text) = m.apply("examples/quickstart.yml", &[]);
    assert_eq!(code, 0, "{text}");
    assert!(m.path("data/mlflow.pid").is_file(), "{text}");
    assert!(m.calls().is_empty(), "{text}");

    // 1. service: true: the supervised server is stopped, the unit written, then
    //    daemon-reload, enable, start; /health answers from the systemd-run server.
    let (code, text) = m.apply("examples/quickstart.yml", &["-e", "service=true"]);
    assert_eq!(code, 0, "{text}");
    assert!(m.path("units/mlflow.service").is_file(), "{text}");
    assert!(
        !m.path("data/mlflow.pid").exists(),
        "supervised pid left: {text}"
    );
    assert_eq!(
        m.calls(),
        ["daemon-reload", "enable mlflow", "start mlflow"],
        "{text}"
    );
    assert!(m.health(), "{text}");
    let unit = std::fs::read_to_string(m.path("units/mlflow.service")).expect("unit");
    assert!(unit.contains("EnvironmentFile="), "{unit}");
    assert!(
        !unit.contains("sqlite:"),
        "store URI on the command line: {unit}"
    );

    // 2. Again: nothing changes and systemctl only answers questions.
    let (code, text) = m.apply("examples/quickstart.yml", &["-e", "service=true"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(recap_changed(&text), 0, "{text}");
    assert!(m.calls().is_empty(), "{text}");

    // 3. A changed environment restarts it (once); the unit is enabled already.
    let (code, text) = m.apply(
        "examples/quickstart.yml",
        &["-e", "service=true", "-e", "workers=2"],
    );
    assert_eq!(code, 0, "{text}");
    assert_eq!(m.calls(), ["daemon-reload", "restart mlflow"], "{text}");
    assert!(m.health(), "{text}");

    // 4. absent: stop, disable, unit removed, daemon-reload; data kept.
    let (code, text) = m.apply("examples/uninstall.yml", &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        m.calls(),
        ["stop mlflow", "disable mlflow", "daemon-reload"],
        "{text}"
    );
    assert!(!m.path("units/mlflow.service").exists(), "{text}");
    assert!(!m.path("bin/mlflow").exists(), "{text}");
    assert!(m.path("data/mlflow.db").exists(), "{text}");
    assert!(!m.health(), "still answering after absent: {text}");

    // 5. absent again: all ok.
    let (code, text) = m.apply("examples/uninstall.yml", &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(recap_changed(&text), 0, "{text}");
}
