//! Shell-style patterns as Python's `fnmatch.fnmatch` reads them on POSIX (case-sensitive):
//! `*` any run of characters, `?` one character, `[seq]` / `[!seq]` a set with ranges. MLflow
//! matches Host headers and CORS origins with it, so the same lists behave the same here.

/// Whether `text` matches `pattern` as a whole.
pub fn matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    match_from(&pattern, &text)
}

fn match_from(pattern: &[char], text: &[char]) -> bool {
    // Iterative with one backtrack point per `*`: linear in practice, never exponential.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                '*' => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                '?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = class(pattern, p, text[t]) {
                        if matched {
                            p = next;
                            t += 1;
                            continue;
                        }
                    } else if text[t] == '[' {
                        // An unclosed '[' is a literal, as in Python.
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
                c if c == text[t] => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// The set starting at `pattern[start] == '['`: whether `c` is in it and where the pattern
/// goes on, or `None` when the bracket is never closed.
fn class(pattern: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = pattern.get(i) == Some(&'!');
    if negate {
        i += 1;
    }
    // A ']' right after '[' or '[!' is a member, not the end.
    let first = i;
    let mut found = false;
    while i < pattern.len() {
        if pattern[i] == ']' && i > first {
            return Some((found != negate, i + 1));
        }
        if i + 2 < pattern.len() && pattern[i + 1] == '-' && pattern[i + 2] != ']' {
            if pattern[i] <= c && c <= pattern[i + 2] {
                found = true;
            }
            i += 3;
        } else {
            if pattern[i] == c {
                found = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn behaves_as_pythons_fnmatch() {
        let cases = [
            ("localhost", "localhost", true),
            ("localhost", "localhost:5000", false),
            ("localhost:*", "localhost:5000", true),
            ("localhost:*", "localhost", false),
            ("192.168.*", "192.168.1.7:5000", true),
            ("192.168.*", "192.169.1.7", false),
            ("[[]::1]:*", "[::1]:5000", true),
            ("[[]::1]:*", "[::2]:5000", false),
            ("app-?.internal", "app-1.internal", true),
            ("app-?.internal", "app-12.internal", false),
            ("10.0.0.[1-3]", "10.0.0.2", true),
            ("10.0.0.[!1-3]", "10.0.0.2", false),
            ("10.0.0.[!1-3]", "10.0.0.9", true),
            ("[unclosed", "[unclosed", true),
            ("https://*.example.com", "https://app.example.com", true),
            (
                "https://*.example.com",
                "https://example.com.evil.net",
                false,
            ),
            ("*", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("LOCALHOST", "localhost", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(matches(pattern, text), expected, "{pattern} vs {text}");
        }
    }
}
