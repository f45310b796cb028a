//! Turning rendered spec values into typed action fields: paths, modes, booleans, durations
//! and the words a field may take ([`Choice`]), each problem reported at its position.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::diag::{did_you_mean, Diag, Diags, Source};
use crate::presets::Library;
use crate::spec::Tpl;

/// Converts rendered spec values, reporting problems at their position.
pub struct Builder<'a> {
    pub source: Arc<Source>,
    pub diags: &'a mut Diags,
    pub ctx: &'a tera::Context,
    pub library: &'a Library,
    /// Preset the step comes from (`None` for playbook steps).
    pub preset: Option<&'a str>,
    /// Folder of the playbook, for relative template paths.
    pub base: &'a std::path::Path,
    /// Values a step marks as secret (a password): masked in everything printed.
    pub secrets: &'a mut Vec<String>,
}

/// A field that takes one of a few words (`state: present|absent`), read into an enum.
pub trait Choice: Copy + PartialEq + 'static {
    /// Every value with the word a step writes for it.
    const WORDS: &'static [(&'static str, Self)];

    /// The word for this value.
    fn word(self) -> &'static str {
        Self::WORDS
            .iter()
            .find(|(_, v)| *v == self)
            .map(|(w, _)| *w)
            .unwrap_or_default()
    }
}

/// Declares an enum whose values are written as words in a step, with its [`Choice`] impl.
macro_rules! choice {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name { $($(#[$vm])* $variant),+ }
        impl $crate::actions::Choice for $name {
            const WORDS: &'static [(&'static str, Self)] = &[$(($word, Self::$variant)),+];
        }
    };
}
pub(crate) use choice;

choice! {
    /// Whether a package, file, user or binary should be there.
    pub enum Presence { Present = "present", Absent = "absent" }
}

impl Builder<'_> {
    pub fn error(&mut self, t: &Tpl, msg: impl Into<String>) {
        self.diags.push(Diag::at(&self.source, t.loc, msg));
    }

    /// A problem with the step as a whole (no single field to point at).
    pub fn problem(&mut self, msg: impl Into<String>) {
        self.diags.push(Diag::plain(msg));
    }

    pub fn path(&mut self, t: &Tpl) -> PathBuf {
        if t.value.trim().is_empty() {
            self.error(t, "empty path");
        }
        crate::system::expand_home(&t.value)
    }

    pub fn opt_path(&mut self, t: &Option<Tpl>) -> Option<PathBuf> {
        t.as_ref()
            .filter(|t| !t.value.trim().is_empty())
            .map(|t| self.path(t))
    }

    /// The rendered text, `None` when absent or rendered empty.
    pub fn opt_string(&self, t: &Option<Tpl>) -> Option<String> {
        t.as_ref()
            .map(|t| t.value.clone())
            .filter(|v| !v.is_empty())
    }

    pub fn mode(&mut self, t: &Option<Tpl>) -> Option<u32> {
        let t = t.as_ref()?;
        match u32::from_str_radix(t.value.trim_start_matches("0o"), 8) {
            Ok(m) if m <= 0o7777 => Some(m),
            _ => {
                self.diags.push(
                    Diag::at(&self.source, t.loc, format!("invalid mode `{}`", t.value))
                        .with_help("write an octal mode in quotes, e.g. \"0640\""),
                );
                None
            }
        }
    }

    pub fn boolean(&mut self, t: &Option<Tpl>, default: bool) -> bool {
        let Some(t) = t else { return default };
        match t.value.trim() {
            "true" => true,
            "false" => false,
            other => {
                self.diags.push(
                    Diag::at(
                        &self.source,
                        t.loc,
                        format!("expected true or false, got `{other}`"),
                    )
                    .with_help("write `true` or `false`"),
                );
                default
            }
        }
    }

    /// One of the words of `T`; `default` when the field is absent.
    pub fn choice<T: Choice>(&mut self, t: &Option<Tpl>, default: T) -> T {
        let Some(t) = t else { return default };
        if let Some((_, v)) = T::WORDS.iter().find(|(w, _)| *w == t.value) {
            return *v;
        }
        let words: Vec<&str> = T::WORDS.iter().map(|(w, _)| *w).collect();
        let mut d = Diag::at(
            &self.source,
            t.loc,
            format!("`{}` is not one of {}", t.value, words.join(", ")),
        );
        d.help = did_you_mean(&t.value, words.iter().copied());
        self.diags.push(d);
        default
    }

    pub fn duration(&mut self, t: &Option<Tpl>, default: Duration) -> Duration {
        let Some(t) = t else { return default };
        match parse_duration(&t.value) {
            Some(d) => d,
            None => {
                self.diags.push(
                    Diag::at(
                        &self.source,
                        t.loc,
                        format!("invalid duration `{}`", t.value),
                    )
                    .with_help("write seconds (30) or a unit: 500ms, 30s, 2m"),
                );
                default
            }
        }
    }

    /// The strings of a field that renders to a JSON list (`exec_args_json`, `argv_json`);
    /// none when it renders empty.
    pub fn json_list(&mut self, t: &Option<Tpl>, field: &str) -> Vec<String> {
        let Some(t) = t.as_ref().filter(|t| !t.value.trim().is_empty()) else {
            return Vec::new();
        };
        serde_json::from_str(&t.value).unwrap_or_else(|e| {
            self.error(
                t,
                format!("{field} must render to a JSON list of strings: {e}"),
            );
            Vec::new()
        })
    }

    pub fn strings(&self, v: &[Tpl]) -> Vec<String> {
        v.iter().map(|t| t.value.clone()).collect()
    }

    /// Marks a rendered value as secret (masked in all output).
    pub fn secret(&mut self, value: &str) {
        if !value.is_empty() {
            self.secrets.push(value.to_string());
        }
    }
}

/// Parses `30`, `30s`, `500ms`, `2m`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.trim().parse().ok().map(Duration::from_millis);
    }
    if let Some(m) = s.strip_suffix('m') {
        return m
            .trim()
            .parse::<u64>()
            .ok()
            .map(|m| Duration::from_secs(m * 60));
    }
    let secs = s.strip_suffix('s').unwrap_or(s).trim();
    secs.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0 && *v < 1e7)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("-1"), None);
    }

    #[test]
    fn choices_read_words() {
        assert_eq!(Presence::Absent.word(), "absent");
        let mut diags = Diags::default();
        let mut secrets = Vec::new();
        let mut b = Builder {
            source: Source::new("x.yml", ""),
            diags: &mut diags,
            ctx: &tera::Context::new(),
            library: &Library::default(),
            preset: None,
            base: std::path::Path::new("."),
            secrets: &mut secrets,
        };
        let absent = Some(Tpl::literal("absent"));
        assert_eq!(b.choice(&absent, Presence::Present), Presence::Absent);
        assert_eq!(b.choice(&None, Presence::Present), Presence::Present);
        let typo = Some(Tpl::literal("absnt"));
        assert_eq!(b.choice(&typo, Presence::Present), Presence::Present);
        assert_eq!(
            diags.iter().next().and_then(|d| d.help.as_deref()),
            Some("did you mean `absent`?"),
            "{diags:?}"
        );
    }
}
