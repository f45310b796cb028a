//! Opaque page tokens: base64 of `{"offset": N}`, the form MLflow's SQL store uses.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::error::{MlflowError, Result};

pub fn encode(offset: i64) -> String {
    STANDARD.encode(format!("{{\"offset\": {offset}}}"))
}

/// Decodes a token; absent or empty means the first page.
pub fn decode(token: Option<&str>) -> Result<i64> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok(0);
    };
    let bytes = STANDARD
        .decode(token)
        .map_err(|_| MlflowError::invalid(format!("Invalid page token '{token}': not base64")))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| MlflowError::invalid(format!("Invalid page token '{token}': not JSON")))?;
    value
        .get("offset")
        .and_then(|o| o.as_i64())
        .filter(|o| *o >= 0)
        .ok_or_else(|| MlflowError::invalid(format!("Invalid page token '{token}': no offset")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(decode(Some(&encode(42))).unwrap(), 42);
        assert_eq!(decode(None).unwrap(), 0);
        assert_eq!(decode(Some("")).unwrap(), 0);
        assert!(decode(Some("!!")).is_err());
        assert!(decode(Some(&STANDARD.encode("{\"offset\": -1}"))).is_err());
    }
}
