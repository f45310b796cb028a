//! MLflow's search grammar: filter strings and `order_by` clauses.
//!
//! `lexer` turns a string into tokens, `parser` into untyped clauses, and `target`
//! checks them against what one kind of search allows (runs, experiments) and
//! canonicalises names ([`traces`] does it for MLflow's trace filter grammar). The store
//! compiles the result to SQL with bound parameters,
//! so no part of a filter is ever spliced into SQL text.

mod lexer;
mod parser;
pub mod target;
pub mod traces;

pub use target::{parse_filter, parse_order_by, SearchTarget};

/// What a clause talks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Attribute,
    Metric,
    Param,
    Tag,
    Dataset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    /// Regular-expression match (trace search only).
    RLike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

impl Comparator {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Like => "LIKE",
            Self::ILike => "ILIKE",
            Self::RLike => "RLIKE",
            Self::In => "IN",
            Self::NotIn => "NOT IN",
            Self::IsNull => "IS NULL",
            Self::IsNotNull => "IS NOT NULL",
        }
    }
}

/// The right-hand side of a clause.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    List(Vec<String>),
    /// `IS NULL` / `IS NOT NULL` take no value.
    None,
}

/// One `entity.key comparator value` clause; clauses are joined by AND.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub entity: Entity,
    pub key: String,
    pub comparator: Comparator,
    pub value: Literal,
}

/// One `order_by` item.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderKey {
    pub entity: Entity,
    pub key: String,
    pub ascending: bool,
}
