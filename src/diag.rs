//! Located diagnostics: `file:line:col: message`, the offending line with a caret, and a hint.
//!
//! Every user-input problem found before touching the system becomes a [`Diag`]; the CLI prints
//! them all at once and exits with code 2.

use std::fmt;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, NamedSource, SourceSpan};

/// A loaded input file (playbook or preset) kept for error snippets.
#[derive(Debug, Clone)]
pub struct Source {
    /// Display name, e.g. `playbook.yml` or `presets/mlflow/preset.yml`.
    pub name: String,
    /// Full text.
    pub text: Arc<str>,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            text: text.into(),
        })
    }
}

/// A position inside a [`Source`] (1-based line and column, byte range when known).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loc {
    pub line: u64,
    pub col: u64,
    pub offset: Option<usize>,
    pub len: usize,
}

impl Loc {
    pub fn from_saphyr(l: &serde_saphyr::Location) -> Self {
        let span = l.span();
        Self {
            line: l.line(),
            col: l.column(),
            offset: span.byte_offset().and_then(|o| usize::try_from(o).ok()),
            len: span
                .byte_len()
                .and_then(|o| usize::try_from(o).ok())
                .unwrap_or(0),
        }
    }
}

/// One located problem.
#[derive(Debug, Clone)]
pub struct Diag {
    pub source: Option<Arc<Source>>,
    pub loc: Loc,
    pub message: String,
    pub help: Option<String>,
}

impl Diag {
    pub fn at(source: &Arc<Source>, loc: Loc, message: impl Into<String>) -> Self {
        Self {
            source: Some(source.clone()),
            loc,
            message: message.into(),
            help: None,
        }
    }

    /// A problem without a position (e.g. a file that cannot be read).
    pub fn plain(message: impl Into<String>) -> Self {
        Self {
            source: None,
            loc: Loc::default(),
            message: message.into(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `file:line:col`, or the file name alone when there is no position.
    pub fn location(&self) -> String {
        match &self.source {
            Some(s) if self.loc.line > 0 => {
                format!("{}:{}:{}", s.name, self.loc.line, self.loc.col)
            }
            Some(s) => s.name.clone(),
            None => "preset".to_string(),
        }
    }

    /// Renders the header line, the source snippet (through miette) and the hint.
    pub fn render(&self) -> String {
        let mut out = format!("{}: error: {}\n", self.location(), self.message);
        if let (Some(src), Some(offset)) = (&self.source, self.byte_offset()) {
            let snippet = Snippet {
                src: NamedSource::new(src.name.clone(), src.text.to_string()),
                span: SourceSpan::new(offset.into(), self.loc.len.max(1)),
                help: self.help.clone(),
            };
            let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
                .with_context_lines(1)
                .with_width(100);
            let mut text = String::new();
            if handler.render_report(&mut text, &snippet).is_ok() {
                // Drop miette's own first line (it repeats our message) and keep the snippet.
                for line in text.lines().skip(1) {
                    out.push_str(line);
                    out.push('\n');
                }
                return out;
            }
        }
        if let Some(h) = &self.help {
            out.push_str(&format!("  help: {h}\n"));
        }
        out
    }

    /// Byte offset of the position, computed from line/column when the parser gave none.
    fn byte_offset(&self) -> Option<usize> {
        let src = self.source.as_ref()?;
        let text = &src.text;
        if let Some(o) = self.loc.offset {
            if o <= text.len() && text.is_char_boundary(o) {
                return Some(o);
            }
        }
        if self.loc.line == 0 {
            return None;
        }
        let mut offset = 0usize;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            if i as u64 + 1 == self.loc.line {
                let col = usize::try_from(self.loc.col.saturating_sub(1)).ok()?;
                let within: usize = line.chars().take(col).map(char::len_utf8).sum();
                return Some(offset + within);
            }
            offset += line.len();
        }
        Some(text.len())
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location(), self.message)
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("snippet")]
struct Snippet {
    #[source_code]
    src: NamedSource<String>,
    #[label("here")]
    span: SourceSpan,
    #[help]
    help: Option<String>,
}

/// Collects every problem found in one validation pass, and the secret values known so far
/// (masked wherever the problems are shown: a snippet may show the line that holds one).
#[derive(Debug, Default)]
pub struct Diags {
    list: Vec<Diag>,
    secrets: Vec<String>,
}

impl Diags {
    /// A single problem.
    pub fn one(d: Diag) -> Self {
        Self {
            list: vec![d],
            secrets: Vec::new(),
        }
    }
    pub fn push(&mut self, d: Diag) {
        self.list.push(d);
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    pub fn len(&self) -> usize {
        self.list.len()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Diag> {
        self.list.iter()
    }
    /// Records values that must not be shown.
    pub fn secrets(&mut self, values: impl IntoIterator<Item = String>) {
        self.secrets.extend(values);
    }
    /// The values that must not be shown.
    pub fn secret_values(&self) -> &[String] {
        &self.secrets
    }
    /// Orders errors by position within each file (files keep the order they first appear
    /// in), so a playbook's errors read top to bottom.
    pub fn sort_by_location(&mut self) {
        let mut files: Vec<String> = Vec::new();
        for d in &self.list {
            let name = d
                .source
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default();
            if !files.contains(&name) {
                files.push(name);
            }
        }
        self.list.sort_by_key(|d| {
            let name = d.source.as_ref().map(|s| s.name.as_str()).unwrap_or("");
            let file = files.iter().position(|f| f == name).unwrap_or(usize::MAX);
            (file, d.loc.line, d.loc.col)
        });
    }
    pub fn render(&self) -> String {
        let mut s = String::new();
        for d in &self.list {
            s.push_str(&d.render());
            s.push('\n');
        }
        let n = self.list.len();
        s.push_str(&format!(
            "{n} error{} found; nothing was changed\n",
            if n == 1 { "" } else { "s" }
        ));
        s
    }
}

/// Suggests the closest candidate for a misspelt name.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_header_and_snippet() {
        let src = Source::new("p.yml", "- preset: mlflow\n  wiht: {}\n");
        let d = Diag::at(
            &src,
            Loc {
                line: 2,
                col: 3,
                offset: None,
                len: 4,
            },
            "unknown field `wiht`",
        )
        .with_help("did you mean `with`?");
        let r = d.render();
        assert!(
            r.starts_with("p.yml:2:3: error: unknown field `wiht`"),
            "{r}"
        );
        assert!(r.contains("wiht: {}"), "{r}");
        assert!(r.contains("did you mean `with`?"), "{r}");
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("trackin_uri", ["tracking_uri", "state"]).as_deref(),
            Some("did you mean `tracking_uri`?")
        );
        assert_eq!(did_you_mean("zzz", ["tracking_uri"]), None);
    }
}
