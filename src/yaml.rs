//! YAML loading with positions: duplicate keys are errors, only `true`/`false` are booleans,
//! and parser errors become located [`Diag`]s.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::diag::{did_you_mean, Diag, Loc, Source};

/// Parser options shared by playbooks and presets.
pub fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        leading_zero_numbers_as_strings: true,
        with_snippet: false,
    }
}

/// Deserializes `source` into `T`, turning any error into one located diagnostic.
pub fn parse<T: DeserializeOwned>(source: &Arc<Source>) -> Result<T, Diag> {
    serde_saphyr::from_str_with_options::<T>(&source.text, options())
        .map_err(|e| to_diag(source, &e))
}

fn to_diag(source: &Arc<Source>, e: &serde_saphyr::Error) -> Diag {
    let loc = e
        .location()
        .map(|l| Loc::from_saphyr(&l))
        .unwrap_or_default();
    let raw = e.without_snippet().to_string();
    let message = clean_message(&raw);
    let mut d = Diag::at(source, loc, message.clone());
    if let Some(help) = hint_for(&message) {
        d = d.with_help(help);
    }
    d
}

/// Removes the parser's own "at line X column Y" suffix: our header already says it.
fn clean_message(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or(raw).trim();
    let cut = first
        .find(" at line ")
        .map(|i| &first[..i])
        .unwrap_or(first);
    cut.trim_end_matches(':').to_string()
}

/// Adds "did you mean" for unknown fields and a hint for YAML 1.1 booleans.
fn hint_for(message: &str) -> Option<String> {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (name, tail) = rest.split_once('`')?;
        // serde_saphyr writes "expected one of a, b"; serde itself "expected `a` or `b`".
        let list = tail
            .split_once("expected")
            .map(|(_, l)| l.trim_start_matches(" one of"))
            .unwrap_or("");
        let expected: Vec<&str> = list
            .split([',', '`'])
            .flat_map(|s| s.split(" or "))
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        return did_you_mean(name, expected.iter().copied());
    }
    if message.contains("invalid boolean") {
        return Some("write `true` or `false` (yes/no/on/off are not booleans here)".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct S {
        with: Option<u32>,
        #[serde(rename = "become")]
        r#become: Option<bool>,
    }

    #[test]
    fn unknown_field_is_located_with_hint() {
        let src = Source::new("x.yml", "become: true\nwiht: 3\n");
        let d = parse::<S>(&src).unwrap_err();
        assert_eq!(d.loc.line, 2, "{d:?}");
        assert!(d.message.contains("unknown field `wiht`"), "{d:?}");
        assert_eq!(d.help.as_deref(), Some("did you mean `with`?"), "{d:?}");
    }

    #[test]
    fn duplicate_key_and_yes_are_errors() {
        let src = Source::new("x.yml", "become: true\nbecome: false\n");
        let d = parse::<S>(&src).unwrap_err();
        assert_eq!(d.loc.line, 2, "{d:?}");
        let src = Source::new("x.yml", "become: yes\n");
        let d = parse::<S>(&src).unwrap_err();
        assert_eq!(d.loc.line, 1, "{d:?}");
        assert!(d.help.is_some(), "{d:?}");
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for text in [
            "",
            "[",
            "{a: *x}",
            "a: &a [*a]",
            "\u{0}\u{1}",
            "- - - - - - - - - - - - - - - - - -",
            "!!binary xx",
        ] {
            let src = Source::new("x.yml", text);
            let _ = parse::<S>(&src);
        }
    }
}
