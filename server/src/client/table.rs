//! Plain-text output: aligned tables, `key: value` blocks, timestamps and JSON helpers.

use serde_json::Value;

/// A table whose columns are as wide as their widest cell, separated by two spaces.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        // One line per row, so that `grep` sees whole records.
        self.rows.push(cells.iter().map(|c| one_line(c)).collect());
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let mut out = String::new();
        let headers: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        for row in std::iter::once(&headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let pad = widths.get(i).copied().unwrap_or(0);
                line.extend(std::iter::repeat_n(
                    ' ',
                    pad.saturating_sub(cell.chars().count()),
                ));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `Label:  value` lines with the values aligned.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}:{}  {}\n",
                " ".repeat(width - k.chars().count()),
                one_line(v)
            )
        })
        .map(|line| line.trim_end().to_string() + "\n")
        .collect()
}

fn one_line(text: &str) -> String {
    if text.contains(['\n', '\r', '\t']) {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        text.to_string()
    }
}

/// Cuts a cell to `max` characters, marking the cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((cut, _)) if text.chars().count() > max => format!("{}…", &text[..cut]),
        _ => text.to_string(),
    }
}

/// Pretty JSON plus a newline.
pub fn json(value: &Value) -> String {
    let mut out = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    out.push('\n');
    out
}

/// A string field, or "" when absent.
pub fn s<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// An int64 field, which MLflow may send as a number or a string.
pub fn int(value: &Value, key: &str) -> Option<i64> {
    match value.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A version string as a number for sorting ("10" after "9").
pub fn version_key(version: &str) -> (u64, String) {
    (version.parse().unwrap_or(u64::MAX), version.to_string())
}

/// `key=value, ...` from MLflow's `[{key, value}]` lists.
pub fn tags(value: &Value, key: &str) -> String {
    items(value, key)
        .iter()
        .map(|t| format!("{}={}", s(t, "key"), s(t, "value")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The array under `key`, or an empty slice.
pub fn items<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` UTC; "-" when absent.
pub fn time(ms: Option<i64>) -> String {
    let Some(ms) = ms.filter(|ms| *ms > 0) else {
        return "-".into();
    };
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = crate::domain::time::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_and_trims() {
        let mut t = Table::new(&["NAME", "V"]);
        t.row(vec!["a".into(), "1".into()]);
        t.row(vec!["long\nname".into(), "".into()]);
        assert_eq!(t.render(), "NAME       V\na          1\nlong name\n");
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(time(Some(0)), "-");
        assert_eq!(time(Some(1_795_838_754_961)), "2026-11-28 04:05:54");
        assert_eq!(time(Some(951_782_400_000)), "2000-02-29 00:00:00");
    }

    #[test]
    fn clip_marks_the_cut() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }
}
