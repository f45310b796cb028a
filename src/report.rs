//! Output: one line per step (or one JSON event per step with `--format json`), diffs, the
//! recap, and masking of secrets in everything printed.

use std::io::Write;

use serde_json::json;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Replaces secret values with a masked form in any text.
#[derive(Debug, Default, Clone)]
pub struct Masker {
    secrets: Vec<String>,
}

impl Masker {
    pub fn new(mut secrets: Vec<String>) -> Self {
        // As written into an environment file, a secret may be quoted and escaped.
        let quoted: Vec<String> = secrets
            .iter()
            .filter_map(|s| crate::envfile::quote(s).filter(|q| q != s))
            .collect();
        secrets.extend(quoted);
        secrets.retain(|s| s.len() >= 3);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                let masked = mask_userinfo(s);
                let replacement = if masked != *s {
                    masked
                } else {
                    "********".to_string()
                };
                out = out.replace(s.as_str(), &replacement);
            }
        }
        mask_userinfo(&out)
    }
}

/// Final status of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Changed,
    Skipped,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Changed => "changed",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }
}

/// One finished step.
pub struct StepEvent<'a> {
    pub index: usize,
    pub name: &'a str,
    pub action: &'a str,
    pub origin: &'a str,
    pub status: Status,
    pub message: &'a str,
    pub diff: Option<&'a str>,
    pub seconds: f64,
}

/// Counts for the recap.
#[derive(Debug, Default, Clone, Copy)]
pub struct Recap {
    pub ok: usize,
    pub changed: usize,
    pub skipped: usize,
    pub failed: usize,
}

/// Writes events to stdout.
pub struct Reporter {
    pub format: Format,
    pub show_diff: bool,
    pub verbose: bool,
    pub masker: Masker,
}

impl Reporter {
    fn emit(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    pub fn header(&self, text: &str) {
        if self.format == Format::Text {
            self.emit(&self.masker.mask(text));
        }
    }

    pub fn note(&self, text: &str) {
        match self.format {
            Format::Text => self.emit(&self.masker.mask(text)),
            Format::Json => {
                self.emit(&json!({"event": "note", "message": self.masker.mask(text)}).to_string())
            }
        }
    }

    pub fn step(&self, e: &StepEvent<'_>) {
        let message = self.masker.mask(e.message);
        let diff = e.diff.map(|d| self.masker.mask(d));
        match self.format {
            Format::Json => self.emit(
                &json!({
                    "event": "step",
                    "index": e.index,
                    "name": self.masker.mask(e.name),
                    "action": e.action,
                    "origin": e.origin,
                    "status": e.status.as_str(),
                    "message": message,
                    // Like the text output: file diffs only with --diff.
                    "diff": if self.show_diff { diff } else { None },
                    "duration_ms": (e.seconds * 1000.0).round() as u64,
                })
                .to_string(),
            ),
            Format::Text => {
                let mut line = format!(
                    "{:<8} {}  ({:.2}s)",
                    e.status.as_str(),
                    self.masker.mask(e.name),
                    e.seconds
                );
                if !message.is_empty() {
                    line.push_str(&format!(
                        "\n         {}",
                        message.replace('\n', "\n         ")
                    ));
                }
                if self.verbose {
                    line.push_str(&format!("\n         at {}", e.origin));
                }
                if let (true, Some(d)) = (self.show_diff, diff) {
                    for l in d.lines() {
                        line.push_str(&format!("\n         | {l}"));
                    }
                }
                self.emit(&line);
            }
        }
    }

    pub fn recap(&self, r: &Recap, check_mode: bool, seconds: f64) {
        match self.format {
            Format::Json => self.emit(
                &json!({
                    "event": "recap",
                    "ok": r.ok,
                    "changed": r.changed,
                    "skipped": r.skipped,
                    "failed": r.failed,
                    "check_mode": check_mode,
                    "duration_ms": (seconds * 1000.0).round() as u64,
                })
                .to_string(),
            ),
            Format::Text => self.emit(&format!(
                "\nrecap: ok={} changed={} skipped={} failed={}  ({:.2}s){}",
                r.ok,
                r.changed,
                r.skipped,
                r.failed,
                seconds,
                if check_mode {
                    "  [check mode: nothing was changed; `changed` is what apply would do]"
                } else {
                    ""
                }
            )),
        }
    }
}

/// Replaces the password of `scheme://user:password@host` forms with `***`.
pub fn mask_userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon + 1]);
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secret_values_and_passwords() {
        let m = Masker::new(vec![
            "postgresql://u:hunter2@db/x".into(),
            "tok-12345".into(),
        ]);
        assert_eq!(
            m.mask("uri=postgresql://u:hunter2@db/x token tok-12345"),
            "uri=postgresql://u:***@db/x token ********"
        );
        assert_eq!(m.mask("mysql://a:b@h/d"), "mysql://a:***@h/d");
        // Quoted and escaped as in an environment file.
        let m = Masker::new(vec!["pa ss\"word".into()]);
        assert_eq!(
            m.mask("MLFLOW_AUTH_ADMIN_PASSWORD=\"pa ss\\\"word\""),
            "MLFLOW_AUTH_ADMIN_PASSWORD=********"
        );
    }

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_userinfo("postgresql://u:secret@db:5432/x and http://h/y"),
            "postgresql://u:***@db:5432/x and http://h/y"
        );
        assert_eq!(mask_userinfo("sqlite:///a.db"), "sqlite:///a.db");
    }
}
