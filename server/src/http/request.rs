//! Decoding requests: JSON bodies for POST/PATCH/DELETE, query strings for GET, into one
//! typed message, with errors that name the offending field.

use std::collections::HashMap;

use axum::body::{to_bytes, Body};
use axum::extract::FromRequest;
use axum::http::{Method, Request};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::error::MlflowError;

/// Largest JSON body accepted; a log-batch at MLflow's limits is far below this.
pub const MAX_JSON_BODY: usize = 32 * 1024 * 1024;

/// The request message as a JSON object, whichever way it arrived.
pub struct Message(pub Value);

impl Message {
    /// Converts the message into `T`. A field of the wrong type is reported as MLflow's
    /// request validation words it (`Invalid value 123 for parameter 'name' supplied: ...`),
    /// a required field that is null or absent as MLflow's missing-value error. The message
    /// is borrowed, so several structs may be read from one request.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_path_to_error::deserialize(&self.0)
            .map_err(|err| ApiError(decode_error(&self.0, err.path(), &err.inner().to_string())))
    }
}

/// MLflow's error for a request that does not decode: `path` is where serde failed.
fn decode_error(message: &Value, path: &serde_path_to_error::Path, inner: &str) -> MlflowError {
    let mut name = Vec::new();
    let mut value = Some(message);
    for segment in path.iter() {
        use serde_path_to_error::Segment;
        match segment {
            Segment::Map { key } => {
                value = value.and_then(|v| v.get(key));
                name.push(format!(".{key}"));
            }
            Segment::Seq { index } => {
                value = value.and_then(|v| v.get(index));
                name.push(format!("[{index}]"));
            }
            Segment::Enum { .. } | Segment::Unknown => value = None,
        }
    }
    let name = name.concat();
    let name = name.trim_start_matches('.');
    // serde reports an absent required field at its parent: "missing field `key`".
    if let Some(field) = inner
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        let full = if name.is_empty() {
            field.to_string()
        } else {
            format!("{name}.{field}")
        };
        return MlflowError::missing(&full);
    }
    match value {
        Some(Value::Null) if !name.is_empty() => MlflowError::missing(name),
        Some(v) if !name.is_empty() => MlflowError::invalid_value(name, v),
        _ => MlflowError::invalid(format!("Invalid request: {inner}")),
    }
}

/// Query-string pairs as a JSON object; a key given several times becomes a list.
pub fn query_to_json(query: &str) -> Value {
    let mut grouped: HashMap<String, Vec<String>> = HashMap::new();
    let mut order = Vec::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let k = k.into_owned();
        if !grouped.contains_key(&k) {
            order.push(k.clone());
        }
        grouped.entry(k).or_default().push(v.into_owned());
    }
    let mut map = Map::new();
    for k in order {
        let mut values = grouped.remove(&k).unwrap_or_default();
        let value = if values.len() == 1 {
            Value::String(values.remove(0))
        } else {
            Value::Array(values.into_iter().map(Value::String).collect())
        };
        map.insert(k, value);
    }
    Value::Object(map)
}

impl<S: Send + Sync> FromRequest<S> for Message {
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, _state: &S) -> Result<Self, Self::Rejection> {
        let query = req.uri().query().unwrap_or("").to_string();
        let method = req.method().clone();
        if method == Method::GET {
            return Ok(Message(query_to_json(&query)));
        }
        if method == Method::POST || method == Method::PUT {
            check_content_type(req.headers())?;
        }
        let bytes = to_bytes(req.into_body(), MAX_JSON_BODY)
            .await
            .map_err(|_| {
                ApiError(MlflowError::invalid(format!(
                    "Request body is larger than the limit of {MAX_JSON_BODY} bytes"
                )))
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            // DELETE calls may carry their fields in the query string instead.
            return Ok(Message(query_to_json(&query)));
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError(MlflowError::invalid(format!(
                "Malformed JSON request body: {e}"
            )))
        })?;
        if !value.is_object() {
            return Err(ApiError(MlflowError::invalid(
                "The request body must be a JSON object",
            )));
        }
        Ok(Message(value))
    }
}

/// MLflow refuses POST and PUT bodies that are not declared as JSON; so do we, so that a
/// form-encoded body is never half-understood.
fn check_content_type(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(axum::http::header::CONTENT_TYPE) else {
        return Err(ApiError(MlflowError::invalid(
            "Bad Request. Content-Type header is missing.",
        )));
    };
    let mime = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(ApiError(MlflowError::invalid(
            "Bad Request. Content-Type must be one of ['application/json'].",
        )));
    }
    Ok(())
}

/// Returns a required field or MLflow's "missing value" error.
pub fn required<T>(value: Option<T>, name: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError(MlflowError::missing(name)))
}

/// Like [`required`], but an empty string counts as missing too.
pub fn required_str(value: Option<String>, name: &str) -> Result<String, ApiError> {
    match value {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(ApiError(MlflowError::missing(name))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_query_keys_become_lists() {
        let v = query_to_json("run_id=a&order_by=x&order_by=y%20DESC&empty=");
        assert_eq!(v["run_id"], "a");
        assert_eq!(v["order_by"], serde_json::json!(["x", "y DESC"]));
        assert_eq!(v["empty"], "");
    }
}
