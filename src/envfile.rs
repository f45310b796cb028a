//! `KEY=value` files: /etc/os-release, and the environment files that systemd
//! (`EnvironmentFile=`), `sh` (`set -a; . FILE`, the launchd plist) and the built-in supervisor
//! all read. One reader, and one quoting rule that all three read back to the same value.

use std::collections::BTreeMap;

/// Parses `KEY=value` lines: `#` comments and blank lines are skipped, a value in double
/// quotes has `\"`, `\\`, `\$` and `` \` `` unescaped (as systemd and sh do), a value in single
/// quotes is taken as written.
pub fn parse(text: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            m.insert(k.trim().to_string(), unquote(v.trim()));
        }
    }
    m
}

fn unquote(v: &str) -> String {
    if let Some(inner) = v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
        return inner.to_string();
    }
    let Some(inner) = v.strip_prefix('"').and_then(|x| x.strip_suffix('"')) else {
        return v.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(&n)) if NEEDS_ESCAPE.contains(n) => {
                out.push(n);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// Characters that a backslash escapes inside double quotes, for systemd and sh alike.
const NEEDS_ESCAPE: &str = "\"\\$`";

/// A value as it must be written after `KEY=` so that systemd, sh and [`parse`] all read
/// `value` back: as it is when it holds only plain characters, else in double quotes with
/// `"`, `\`, `$` and `` ` `` escaped. A newline cannot be written (`None`).
pub fn quote(value: &str) -> Option<String> {
    if value.contains(['\n', '\r', '\0']) {
        return None;
    }
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if plain {
        return Some(value.to_string());
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if NEEDS_ESCAPE.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_env_and_os_release_forms() {
        let m = parse("# x\nA=1\nB=\"two words\"\n\nC = x=y\nID='rocky'\nE=\"a\\\"b\\\\c\\$d\"\n");
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], "two words");
        assert_eq!(m["C"], "x=y");
        assert_eq!(m["ID"], "rocky");
        assert_eq!(m["E"], "a\"b\\c$d");
    }

    #[test]
    fn quoting_round_trips() {
        for v in [
            "plain",
            "postgresql://u:p@h:5432/db?sslmode=require",
            "with space",
            "qu\"ote",
            "back\\slash",
            "$HOME and `cmd`",
            "it's # not a comment",
            "",
        ] {
            let q = quote(v).unwrap();
            assert_eq!(parse(&format!("K={q}\n"))["K"], v, "{q}");
        }
        assert_eq!(quote("a/b:c").as_deref(), Some("a/b:c"));
        assert_eq!(quote("a b").as_deref(), Some("\"a b\""));
        assert_eq!(quote("two\nlines"), None);
    }

    /// sh reads the quoted form back unchanged (the launchd plist sources the file with sh).
    #[test]
    fn sh_reads_quoted_values_back() {
        let v = "p@ss w\"o\\rd $HOME `id` it's";
        let q = quote(v).unwrap();
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("K={q}; printf %s \"$K\"")])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), v);
    }
}
