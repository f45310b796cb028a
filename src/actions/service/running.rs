//! The running copy of a service, whoever manages it: why it must restart (a watched file
//! changed in this run, or the recorded fingerprint of binary, arguments and environment
//! differs), and whether it answers its health URL.

use std::process::Child;
use std::time::{Duration, Instant};

use super::supervise;
use super::ServiceAction;
use crate::actions::Cx;

impl ServiceAction {
    fn recorded_fingerprint(&self) -> Option<String> {
        std::fs::read_to_string(supervise::fingerprint_file(&self.proc.pid_file))
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// Records what the service was just started with.
    pub(super) fn record_fingerprint(&self, cx: &Cx<'_>) -> Result<(), String> {
        let fp = supervise::fingerprint(&cx.sys, &self.proc)?;
        let path = supervise::fingerprint_file(&self.proc.pid_file);
        cx.sys
            .write_atomic(&path, format!("{fp}\n").as_bytes(), 0o644, None)
    }

    /// Why a running service must restart, if it must.
    pub(super) fn restart_reason(&self, cx: &Cx<'_>) -> Result<Option<String>, String> {
        let changed: Vec<String> = self
            .watch
            .iter()
            .filter(|w| cx.changed.contains(*w))
            .map(|w| w.display().to_string())
            .collect();
        if !changed.is_empty() {
            return Ok(Some(format!("{} changed", changed.join(", "))));
        }
        let now = supervise::fingerprint(&cx.sys, &self.proc)?;
        if self.recorded_fingerprint().as_deref() != Some(now.as_str()) {
            return Ok(Some(
                "binary, arguments or environment changed since it started".into(),
            ));
        }
        Ok(None)
    }

    /// Fails when something already answers the health URL before our server starts: the
    /// health check would otherwise be passed by another program holding the port.
    pub(super) fn port_is_free(&self) -> Result<(), String> {
        match &self.health_url {
            Some(url) if probe(url, Duration::from_secs(2)).is_ok() => Err(format!(
                "{url} already answers before {} is started: another program holds the port; stop it or choose another port (tracking_uri)",
                self.name
            )),
            _ => Ok(()),
        }
    }

    pub(super) fn healthy_now(&self) -> bool {
        let Some(url) = &self.health_url else {
            return true;
        };
        probe(url, Duration::from_secs(2)).is_ok()
    }

    /// Waits for the health URL (and for `child`, started by the supervisor, not to exit);
    /// on failure returns the last lines of `logs()`.
    pub(super) fn wait_healthy(
        &self,
        mut child: Option<Child>,
        logs: impl FnOnce() -> String,
    ) -> Result<String, String> {
        let Some(url) = &self.health_url else {
            return Ok(String::new());
        };
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < self.health_timeout {
            if let Some(c) = child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    return Err(format!(
                        "{} exited during start-up ({status}); last log lines ({}):\n{}",
                        self.name,
                        self.proc.log_file.display(),
                        supervise::log_tail(&self.proc, 20)
                    ));
                }
            }
            match probe(url, Duration::from_secs(2)) {
                Ok(()) => {
                    return Ok(format!(
                        ", healthy at {url} after {:.1}s",
                        start.elapsed().as_secs_f64()
                    ))
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!(
            "{} did not become healthy at {url} within {}s (last error: {last}); last log lines:\n{}",
            self.name,
            self.health_timeout.as_secs(),
            logs()
        ))
    }
}

/// One GET that must answer 2xx. An https health URL is our own server on a loopback
/// address, whose certificate names the host clients use: its chain is not what this
/// liveness probe checks, and it sends nothing secret.
fn probe(url: &str, timeout: Duration) -> Result<(), String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .tls_danger_accept_invalid_certs(url.starts_with("https:"))
        .build()
        .map_err(|e| e.to_string())?;
    match client.get(url).send() {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("HTTP {}", r.status())),
        Err(e) => Err(e.to_string()),
    }
}
