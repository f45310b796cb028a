//! Writing successful responses: typed values serialised straight to the body, without an
//! intermediate `serde_json::Value` tree (which costs a map insert per field).

use axum::http::header;
use axum::response::IntoResponse;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::{ApiError, ApiResult};
use crate::error::MlflowError;
use crate::service::Paged;

/// Serialises `value` as the JSON response body.
pub fn reply<T: Serialize + ?Sized>(value: &T) -> ApiResult {
    let body = serde_json::to_vec(value).map_err(|e| {
        ApiError(MlflowError::internal(format!(
            "cannot encode the response: {e}"
        )))
    })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The empty message `{}` that MLflow returns for most writes.
pub fn empty() -> ApiResult {
    Ok(([(header::CONTENT_TYPE, "application/json")], "{}").into_response())
}

/// A one-field object `{"name": value}`.
pub struct Field<T>(pub &'static str, pub T);

impl<T: Serialize> Serialize for Field<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(self.0, &self.1)?;
        map.end()
    }
}

/// `{"<name>": [...], "next_page_token": "..."}`, the token only when there is a next page.
pub struct PageReply<T> {
    name: &'static str,
    page: Paged<T>,
    omit_empty: bool,
}

impl<T> PageReply<T> {
    pub fn new(name: &'static str, page: Paged<T>) -> Self {
        Self {
            name,
            page,
            omit_empty: false,
        }
    }

    /// Leaves out an empty list, as MLflow does for search-runs.
    pub fn omit_empty(mut self) -> Self {
        self.omit_empty = true;
        self
    }
}

impl<T: Serialize> Serialize for PageReply<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if !(self.omit_empty && self.page.items.is_empty()) {
            map.serialize_entry(self.name, &self.page.items)?;
        }
        if let Some(token) = &self.page.next_page_token {
            map.serialize_entry("next_page_token", token)?;
        }
        map.end()
    }
}
