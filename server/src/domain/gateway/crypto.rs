//! Envelope encryption of AI-gateway secrets, byte-compatible with MLflow's scheme so that a
//! database written by either server is read by the other.
//!
//! * The key-encryption key (KEK) is PBKDF2-HMAC-SHA256 (600,000 iterations, 32 bytes) of
//!   the passphrase in `MLFLOW_CRYPTO_KEK_PASSPHRASE` (MLflow's development default when it
//!   is unset), salted with MLflow's fixed application salt followed by the KEK version
//!   (`MLFLOW_CRYPTO_KEK_VERSION`, default 1) as four big-endian bytes.
//! * Each secret gets a fresh random 256-bit data-encryption key (DEK). The value (JSON
//!   text) is sealed with AES-256-GCM under the DEK with `"{secret_id}|{secret_name}"` as
//!   associated data, so a ciphertext moved to another row no longer opens.
//! * The DEK is sealed with AES-256-GCM under the KEK (no associated data).
//! * Both blobs are stored as `nonce (12 bytes) || ciphertext || tag (16 bytes)`.
//!
//! The primitives are ring's (already the TLS provider of this workspace); nothing here is
//! hand-rolled. Plaintexts and keys are never logged.

use std::num::NonZeroU32;
use std::sync::Mutex;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{MlflowError, Result};

/// The environment variable with the KEK passphrase (MLflow's name).
pub const PASSPHRASE_ENV: &str = "MLFLOW_CRYPTO_KEK_PASSPHRASE";
/// The environment variable with the KEK version (MLflow's name).
pub const KEK_VERSION_ENV: &str = "MLFLOW_CRYPTO_KEK_VERSION";
/// MLflow's passphrase when none is configured; fine for development only.
const DEFAULT_PASSPHRASE: &str = "mlflow-default-kek-passphrase-for-development-only";
/// MLflow's fixed salt of the KEK derivation.
const KEK_SALT: &[u8] = b"mlflow-secrets-kek-v1-2025";
const PBKDF2_ITERATIONS: u32 = 600_000;
const KEY_LEN: usize = 32;

/// The KEK in use: derived from the configured passphrase and version.
#[derive(Clone)]
pub struct Kek {
    key: [u8; KEY_LEN],
    pub version: i64,
    pub default_passphrase: bool,
}

/// The last derived KEK; PBKDF2 at 600,000 rounds is too slow to repeat per request.
static KEK_CACHE: Mutex<Option<(String, i64, [u8; KEY_LEN])>> = Mutex::new(None);

/// Whether the operator left the passphrase unset (MLflow's test: unset or empty).
pub fn using_default_passphrase() -> bool {
    std::env::var(PASSPHRASE_ENV).map_or(true, |p| p.is_empty())
}

impl Kek {
    /// The KEK of the server's environment.
    pub fn from_env() -> Result<Self> {
        let passphrase = std::env::var(PASSPHRASE_ENV).ok().filter(|p| !p.is_empty());
        let version = match std::env::var(KEK_VERSION_ENV) {
            Ok(v) if !v.trim().is_empty() => v.trim().parse::<i64>().map_err(|_| {
                MlflowError::invalid(format!("{KEK_VERSION_ENV} must be an integer"))
            })?,
            _ => 1,
        };
        let default_passphrase = passphrase.is_none();
        let passphrase = passphrase.unwrap_or_else(|| DEFAULT_PASSPHRASE.to_string());
        Ok(Self::derive(&passphrase, version, default_passphrase))
    }

    /// Derives the KEK of `passphrase` and `version` (cached for the last pair).
    pub fn derive(passphrase: &str, version: i64, default_passphrase: bool) -> Self {
        let mut cache = KEK_CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((p, v, key)) = cache.as_ref() {
            if p == passphrase && *v == version {
                return Kek {
                    key: *key,
                    version,
                    default_passphrase,
                };
            }
        }
        let mut salt = KEK_SALT.to_vec();
        salt.extend_from_slice(&(version as u32).to_be_bytes());
        let mut key = [0u8; KEY_LEN];
        let rounds = NonZeroU32::new(PBKDF2_ITERATIONS).unwrap_or(NonZeroU32::MIN);
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            rounds,
            &salt,
            passphrase.as_bytes(),
            &mut key,
        );
        *cache = Some((passphrase.to_string(), version, key));
        Kek {
            key,
            version,
            default_passphrase,
        }
    }
}

/// The stored form of one secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Sealed {
    pub encrypted_value: Vec<u8>,
    pub wrapped_dek: Vec<u8>,
    pub kek_version: i64,
}

fn crypto_failure() -> MlflowError {
    MlflowError::internal("secret encryption failed")
}

fn seal(key: &[u8], plaintext: &[u8], aad: &[u8], rng: &SystemRandom) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| crypto_failure())?;
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).map_err(|_| crypto_failure())?);
    let mut body = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut body,
    )
    .map_err(|_| crypto_failure())?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&body);
    Ok(out)
}

fn open(key: &[u8], blob: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    if blob.len() < NONCE_LEN + AES_256_GCM.tag_len() {
        return None;
    }
    let (nonce, body) = blob.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let mut body = body.to_vec();
    let plain = key.open_in_place(nonce, Aad::from(aad), &mut body).ok()?;
    Some(plain.to_vec())
}

fn aad(secret_id: &str, secret_name: &str) -> Vec<u8> {
    format!("{secret_id}|{secret_name}").into_bytes()
}

/// Seals `plaintext` (the secret's JSON text) for the row `secret_id`/`secret_name`.
pub fn encrypt(kek: &Kek, plaintext: &str, secret_id: &str, secret_name: &str) -> Result<Sealed> {
    let rng = SystemRandom::new();
    let mut dek = [0u8; KEY_LEN];
    rng.fill(&mut dek).map_err(|_| crypto_failure())?;
    let encrypted_value = seal(
        &dek,
        plaintext.as_bytes(),
        &aad(secret_id, secret_name),
        &rng,
    )?;
    let wrapped_dek = seal(&kek.key, &dek, &[], &rng)?;
    Ok(Sealed {
        encrypted_value,
        wrapped_dek,
        kek_version: kek.version,
    })
}

/// Opens a stored secret; the error names the likely cause, never the data.
pub fn decrypt(kek: &Kek, sealed: &Sealed, secret_id: &str, secret_name: &str) -> Result<String> {
    let failed = || {
        MlflowError::invalid(if kek.default_passphrase {
            format!(
                "Failed to decrypt secret. The server is using the default KEK passphrase, but \
                 the secret was likely encrypted with a custom one: set {PASSPHRASE_ENV} to the \
                 passphrase the secrets were created with."
            )
        } else {
            "Failed to decrypt secret. Check the KEK passphrase, the secret's metadata or the \
             database's integrity."
                .to_string()
        })
    };
    let dek = open(&kek.key, &sealed.wrapped_dek, &[]).ok_or_else(failed)?;
    let plain =
        open(&dek, &sealed.encrypted_value, &aad(secret_id, secret_name)).ok_or_else(failed)?;
    String::from_utf8(plain).map_err(|_| failed())
}

/// Re-wraps a secret's DEK under `new` (KEK rotation); the value itself is checked to open
/// under the old KEK first, so a rotation never keeps a row it could not read.
pub fn rewrap(
    old: &Kek,
    new: &Kek,
    sealed: &Sealed,
    secret_id: &str,
    secret_name: &str,
) -> Result<Sealed> {
    decrypt(old, sealed, secret_id, secret_name)?;
    let dek = open(&old.key, &sealed.wrapped_dek, &[])
        .ok_or_else(|| MlflowError::invalid("Failed to unwrap the secret's key"))?;
    let wrapped_dek = seal(&new.key, &dek, &[], &SystemRandom::new())?;
    Ok(Sealed {
        encrypted_value: sealed.encrypted_value.clone(),
        wrapped_dek,
        kek_version: new.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_aad_binding() {
        let kek = Kek::derive("unit-test-passphrase", 1, false);
        let sealed = encrypt(&kek, r#"{"api_key": "sk-1"}"#, "s-1", "name").unwrap();
        assert_eq!(sealed.encrypted_value.len(), 12 + 19 + 16);
        assert_eq!(sealed.wrapped_dek.len(), 12 + 32 + 16);
        let plain = decrypt(&kek, &sealed, "s-1", "name").unwrap();
        assert_eq!(plain, r#"{"api_key": "sk-1"}"#);
        assert!(decrypt(&kek, &sealed, "s-1", "other").is_err());
        let other = Kek::derive("another-passphrase", 1, false);
        assert!(decrypt(&other, &sealed, "s-1", "name").is_err());
        let rotated = rewrap(&kek, &other, &sealed, "s-1", "name").unwrap();
        assert_eq!(decrypt(&other, &rotated, "s-1", "name").unwrap(), plain);
    }

    /// A row written by MLflow 3.17.2's Python code (`mlflow.utils.crypto._encrypt_secret`
    /// with passphrase "interop-passphrase", KEK version 1) opens here.
    #[test]
    fn opens_a_secret_sealed_by_mlflow() {
        let kek = Kek::derive("interop-passphrase", 1, false);
        let sealed = Sealed {
            encrypted_value: hex(PY_ENCRYPTED_VALUE),
            wrapped_dek: hex(PY_WRAPPED_DEK),
            kek_version: 1,
        };
        let plain = decrypt(&kek, &sealed, "s-interop", "interop-key").unwrap();
        assert_eq!(plain, r#"{"api_key": "sk-interop-12345"}"#);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const PY_ENCRYPTED_VALUE: &str = "604542460b332ac991effcbed668f259c491f953f52926061496d5f19e6137f412a64266b09263256f36ea50cce1b26c189defdc986b10b0a1aff9";
    const PY_WRAPPED_DEK: &str = "acdff5d0e563db5e3254cd820f54e00c975cee5635e2bb5884c16ac7dfb269a391894a23a8834719cebb3e13607755fde9be6fad22bcfe1e816e9908";
}
