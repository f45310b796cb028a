//! Parses tokens into untyped clauses: `key comparator value [AND ...]`, and order-by items.

use super::lexer::{tokenize, Token};
use super::{Comparator, Literal};
use crate::error::{MlflowError, Result};

/// A key as written: `metrics.acc` → (Some("metrics"), "acc"); `run_name` → (None, "run_name").
#[derive(Debug, Clone, PartialEq)]
pub struct RawKey {
    pub prefix: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RawClause {
    pub key: RawKey,
    pub comparator: Comparator,
    pub value: Literal,
}

struct Cursor<'a> {
    tokens: Vec<Token>,
    pos: usize,
    input: &'a str,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn error(&self, what: &str) -> MlflowError {
        MlflowError::invalid(format!("Invalid filter '{}': {what}", self.input))
    }

    fn key(&mut self) -> Result<RawKey> {
        match self.next() {
            Some(Token::Word(w)) => {
                if let Some(prefix) = w.strip_suffix('.') {
                    return match self.next() {
                        Some(Token::Backticked(name)) | Some(Token::DoubleQuoted(name)) => {
                            Ok(RawKey {
                                prefix: Some(prefix.to_string()),
                                name,
                            })
                        }
                        _ => Err(self.error(&format!("expected a key after '{w}'"))),
                    };
                }
                Ok(match w.split_once('.') {
                    Some((prefix, name)) => RawKey {
                        prefix: Some(prefix.to_string()),
                        name: name.to_string(),
                    },
                    None => RawKey {
                        prefix: None,
                        name: w,
                    },
                })
            }
            Some(Token::Backticked(name)) | Some(Token::DoubleQuoted(name)) => {
                Ok(RawKey { prefix: None, name })
            }
            Some(other) => Err(self.error(&format!("expected a key, found {}", describe(&other)))),
            None => Err(self.error("expected a key, found the end of the filter")),
        }
    }

    fn comparator(&mut self) -> Result<Comparator> {
        let token = self
            .next()
            .ok_or_else(|| self.error("expected a comparison operator, found the end"))?;
        let cmp = match &token {
            Token::Op("=") => Comparator::Eq,
            Token::Op("!=") => Comparator::Ne,
            Token::Op("<") => Comparator::Lt,
            Token::Op("<=") => Comparator::Le,
            Token::Op(">") => Comparator::Gt,
            Token::Op(">=") => Comparator::Ge,
            t if t.is_keyword("LIKE") => Comparator::Like,
            t if t.is_keyword("ILIKE") => Comparator::ILike,
            t if t.is_keyword("RLIKE") => Comparator::RLike,
            t if t.is_keyword("IN") => Comparator::In,
            t if t.is_keyword("NOT") => match self.next() {
                Some(t) if t.is_keyword("IN") => Comparator::NotIn,
                _ => return Err(self.error("expected IN after NOT")),
            },
            t if t.is_keyword("IS") => {
                let negated = self.peek().is_some_and(|t| t.is_keyword("NOT"));
                if negated {
                    self.pos += 1;
                }
                match self.next() {
                    Some(t) if t.is_keyword("NULL") => {
                        if negated {
                            Comparator::IsNotNull
                        } else {
                            Comparator::IsNull
                        }
                    }
                    _ => return Err(self.error("expected NULL after IS / IS NOT")),
                }
            }
            other => {
                return Err(self.error(&format!(
                    "expected a comparison operator, found {}",
                    describe(other)
                )))
            }
        };
        Ok(cmp)
    }

    fn value(&mut self, cmp: Comparator) -> Result<Literal> {
        if matches!(cmp, Comparator::IsNull | Comparator::IsNotNull) {
            return Ok(Literal::None);
        }
        if matches!(cmp, Comparator::In | Comparator::NotIn) {
            return self.list();
        }
        match self.next() {
            Some(Token::SingleQuoted(s)) | Some(Token::DoubleQuoted(s)) => Ok(Literal::Str(s)),
            Some(Token::Number(n)) => Ok(Literal::Num(n)),
            Some(other) => Err(self.error(&format!(
                "expected a quoted string or a number, found {}",
                describe(&other)
            ))),
            None => Err(self.error("expected a value, found the end of the filter")),
        }
    }

    fn list(&mut self) -> Result<Literal> {
        if self.next() != Some(Token::LParen) {
            return Err(self.error("IN and NOT IN take a parenthesised list of quoted strings"));
        }
        let mut items = Vec::new();
        loop {
            match self.next() {
                Some(Token::SingleQuoted(s)) | Some(Token::DoubleQuoted(s)) => items.push(s),
                Some(Token::RParen) if items.is_empty() => {
                    return Err(self.error("the list after IN / NOT IN must not be empty"))
                }
                _ => return Err(self.error("IN and NOT IN lists may only hold quoted strings")),
            }
            match self.next() {
                Some(Token::Comma) => continue,
                Some(Token::RParen) => return Ok(Literal::List(items)),
                _ => return Err(self.error("expected ',' or ')' in the IN list")),
            }
        }
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word(w) => format!("'{w}'"),
        Token::Backticked(s) => format!("`{s}`"),
        Token::SingleQuoted(s) => format!("'{s}'"),
        Token::DoubleQuoted(s) => format!("\"{s}\""),
        Token::Number(n) => n.to_string(),
        Token::Op(op) => format!("'{op}'"),
        Token::LParen => "'('".into(),
        Token::RParen => "')'".into(),
        Token::Comma => "','".into(),
    }
}

/// Parses a whole filter; an empty or blank filter yields no clauses.
pub fn parse_clauses(input: &str) -> Result<Vec<RawClause>> {
    let mut cur = Cursor {
        tokens: tokenize(input)?,
        pos: 0,
        input,
    };
    let mut clauses = Vec::new();
    if cur.tokens.is_empty() {
        return Ok(clauses);
    }
    loop {
        let key = cur.key()?;
        let comparator = cur.comparator()?;
        let value = cur.value(comparator)?;
        clauses.push(RawClause {
            key,
            comparator,
            value,
        });
        match cur.next() {
            None => return Ok(clauses),
            Some(t) if t.is_keyword("AND") => continue,
            Some(t) if t.is_keyword("OR") => {
                return Err(cur.error("OR is not supported; join clauses with AND"))
            }
            Some(other) => {
                return Err(cur.error(&format!("expected AND, found {}", describe(&other))))
            }
        }
    }
}

/// Parses one order-by item: `key [ASC|DESC]`.
pub fn parse_order_item(input: &str) -> Result<(RawKey, bool)> {
    let mut cur = Cursor {
        tokens: tokenize(input).map_err(|_| invalid_order(input))?,
        pos: 0,
        input,
    };
    let key = cur.key().map_err(|_| invalid_order(input))?;
    let ascending = match cur.next() {
        None => true,
        Some(t) if t.is_keyword("ASC") => true,
        Some(t) if t.is_keyword("DESC") => false,
        Some(_) => return Err(invalid_order(input)),
    };
    if cur.next().is_some() {
        return Err(invalid_order(input));
    }
    Ok((key, ascending))
}

fn invalid_order(input: &str) -> MlflowError {
    MlflowError::invalid(format!(
        "Invalid order_by clause '{input}'. Expected '<key> [ASC|DESC]'"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_clauses() {
        let c =
            parse_clauses("metrics.acc > 0.5 and params.`lr rate` = '0.1' AND tags.x IS NOT NULL")
                .unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].key.prefix.as_deref(), Some("metrics"));
        assert_eq!(c[1].key.name, "lr rate");
        assert_eq!(c[2].comparator, Comparator::IsNotNull);
        let c = parse_clauses("run_id NOT IN ('a', 'b')").unwrap();
        assert_eq!(c[0].value, Literal::List(vec!["a".into(), "b".into()]));
        assert!(parse_clauses("   ").unwrap().is_empty());
    }

    #[test]
    fn rejects_bad_filters() {
        for bad in [
            "metrics.acc >",
            "metrics.acc 0.5",
            "a = 1 OR b = 2",
            "a = 1 b = 2",
            "a IN ()",
            "a IN (1, 2)",
            "a IN 'x'",
            "(a = 1)",
            "a IS 'x'",
            "a NOT LIKE 'x'",
            "= 1",
        ] {
            assert!(parse_clauses(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_order_items() {
        let (k, asc) = parse_order_item("metrics.`a b` DESC").unwrap();
        assert_eq!(
            (k.prefix.as_deref(), k.name.as_str(), asc),
            (Some("metrics"), "a b", false)
        );
        assert!(parse_order_item("name ASC extra").is_err());
        assert!(parse_order_item("").is_err());
    }
}
