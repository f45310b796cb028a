//! Tokeniser for filter and order-by strings.

use crate::error::{MlflowError, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// A bare word: `metrics.acc`, `run_name`, `AND`, `LIKE`.
    Word(String),
    /// A backtick-quoted identifier.
    Backticked(String),
    /// A single-quoted string.
    SingleQuoted(String),
    /// A double-quoted string (a value, or an identifier after `prefix.`).
    DoubleQuoted(String),
    Number(f64),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

impl Token {
    pub fn is_keyword(&self, kw: &str) -> bool {
        matches!(self, Token::Word(w) if w.eq_ignore_ascii_case(kw))
    }
}

/// Splits `input` into tokens, or says where it is malformed.
pub fn tokenize(input: &str) -> Result<Vec<Token>> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::LParen);
                i += 1;
            }
            ')' => {
                tokens.push(Token::RParen);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '\'' | '"' | '`' => {
                let (text, next) = quoted(&chars, i, input)?;
                tokens.push(match c {
                    '\'' => Token::SingleQuoted(text),
                    '"' => Token::DoubleQuoted(text),
                    _ => Token::Backticked(text),
                });
                i = next;
            }
            '=' | '!' | '<' | '>' => {
                let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
                if two == "==" || two == "<>" {
                    return Err(MlflowError::invalid(format!(
                        "Invalid filter '{input}': '{two}' is not a comparison operator; use \
                         '=' or '!='"
                    )));
                }
                let (op, len) = match two.as_str() {
                    "!=" => ("!=", 2),
                    "<=" => ("<=", 2),
                    ">=" => (">=", 2),
                    _ => match c {
                        '=' => ("=", 1),
                        '<' => ("<", 1),
                        '>' => (">", 1),
                        _ => {
                            return Err(MlflowError::invalid(format!(
                                "Invalid filter '{input}': unexpected '!' at position {i}"
                            )))
                        }
                    },
                };
                tokens.push(Token::Op(op));
                i += len;
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+' || c == '.')
                    && chars
                        .get(i + 1)
                        .is_some_and(|n| n.is_ascii_digit() || *n == '.')) =>
            {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric()
                        || chars[i] == '.'
                        || ((chars[i] == '-' || chars[i] == '+')
                            && matches!(chars[i - 1], 'e' | 'E')))
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let value = text.parse::<f64>().map_err(|_| {
                    MlflowError::invalid(format!(
                        "Invalid filter '{input}': '{text}' is not a number"
                    ))
                })?;
                tokens.push(Token::Number(value));
            }
            c if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.'))
                {
                    i += 1;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
            other => {
                return Err(MlflowError::invalid(format!(
                    "Invalid filter '{input}': unexpected character '{other}' at position {i}"
                )))
            }
        }
    }
    Ok(tokens)
}

/// Reads a quoted run starting at `start`; a doubled quote or a backslash escapes it.
fn quoted(chars: &[char], start: usize, input: &str) -> Result<(String, usize)> {
    let quote = chars[start];
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() && chars[i + 1] == quote {
            out.push(quote);
            i += 2;
        } else if c == quote {
            if chars.get(i + 1) == Some(&quote) {
                out.push(quote);
                i += 2;
            } else {
                return Ok((out, i + 1));
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    Err(MlflowError::invalid(format!(
        "Invalid filter '{input}': unterminated {quote} quote starting at position {start}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_of_a_typical_filter() {
        let t = tokenize("metrics.acc >= 0.9 and tags.`my key` != 'it''s' AND x IN ('a',\"b\")")
            .unwrap();
        assert_eq!(t[0], Token::Word("metrics.acc".into()));
        assert_eq!(t[1], Token::Op(">="));
        assert_eq!(t[2], Token::Number(0.9));
        assert_eq!(t[4], Token::Word("tags.".into()));
        assert_eq!(t[5], Token::Backticked("my key".into()));
        assert_eq!(t[7], Token::SingleQuoted("it's".into()));
        assert!(t.contains(&Token::DoubleQuoted("b".into())));
    }

    #[test]
    fn numbers_and_errors() {
        assert_eq!(tokenize("-1.5e3").unwrap(), vec![Token::Number(-1500.0)]);
        assert!(tokenize("a = 'open").is_err());
        assert!(tokenize("a ; b").is_err());
        assert!(tokenize("a ! b").is_err());
    }
}
