//! Password hashes in werkzeug's format, which MLflow's auth store writes:
//! `scrypt:N:r:p$SALT$HEX` (its default) and `pbkdf2:sha256:ITERATIONS$SALT$HEX`. The salt is
//! used as its UTF-8 text, and the digest is lowercase hex, as werkzeug does; so a hash either
//! server writes verifies on the other.

use std::num::NonZeroU32;

use ring::rand::{SecureRandom, SystemRandom};

const SALT_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SALT_LEN: usize = 16;
/// werkzeug's scrypt defaults (n = 2^15, r = 8, p = 1, 64-byte key).
const SCRYPT_LOG_N: u8 = 15;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
const SCRYPT_LEN: usize = 64;
const PBKDF2_DEFAULT_ITERATIONS: u32 = 1_000_000;
/// Stored parameters are trusted, but a corrupted row must not make one login take minutes or
/// gigabytes.
const SCRYPT_MAX_LOG_N: u8 = 20;
const PBKDF2_MAX_ITERATIONS: u32 = 10_000_000;

/// Why a hash could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct HashError(&'static str);

/// A new `scrypt:32768:8:1$salt$hex` hash with a fresh random salt.
pub fn generate(password: &str) -> Result<String, HashError> {
    let salt = random_salt()?;
    let digest = scrypt_hex(password, &salt, SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P)
        .ok_or(HashError("scrypt parameters"))?;
    Ok(format!(
        "scrypt:{}:{SCRYPT_R}:{SCRYPT_P}${salt}${digest}",
        1u32 << SCRYPT_LOG_N
    ))
}

/// Whether `password` matches `stored`; an unreadable hash matches nothing.
pub fn verify(stored: &str, password: &str) -> bool {
    let mut parts = stored.splitn(3, '$');
    let (Some(method), Some(salt), Some(expected)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let mut args = method.split(':');
    let computed = match args.next() {
        Some("scrypt") => {
            let params: Vec<&str> = args.collect();
            let (n, r, p) = match params.as_slice() {
                [] => (1u64 << SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P),
                [n, r, p] => match (n.parse(), r.parse(), p.parse()) {
                    (Ok(n), Ok(r), Ok(p)) => (n, r, p),
                    _ => return false,
                },
                _ => return false,
            };
            if !n.is_power_of_two() || n < 2 {
                return false;
            }
            let log_n = n.trailing_zeros() as u8;
            if log_n > SCRYPT_MAX_LOG_N {
                return false;
            }
            scrypt_hex(password, salt, log_n, r, p)
        }
        Some("pbkdf2") => {
            let params: Vec<&str> = args.collect();
            let (name, iterations) = match params.as_slice() {
                [] => ("sha256", Some(PBKDF2_DEFAULT_ITERATIONS)),
                [name] => (*name, Some(PBKDF2_DEFAULT_ITERATIONS)),
                [name, iterations] => (*name, iterations.parse().ok()),
                _ => return false,
            };
            let Some(iterations) = iterations.filter(|i| *i <= PBKDF2_MAX_ITERATIONS) else {
                return false;
            };
            pbkdf2_hex(name, password, salt, iterations)
        }
        _ => None,
    };
    computed.is_some_and(|c| constant_time_eq(c.as_bytes(), expected.as_bytes()))
}

fn scrypt_hex(password: &str, salt: &str, log_n: u8, r: u32, p: u32) -> Option<String> {
    let params = scrypt::Params::new(log_n, r, p, SCRYPT_LEN).ok()?;
    let mut out = [0u8; SCRYPT_LEN];
    scrypt::scrypt(password.as_bytes(), salt.as_bytes(), &params, &mut out).ok()?;
    Some(hex(&out))
}

fn pbkdf2_hex(name: &str, password: &str, salt: &str, iterations: u32) -> Option<String> {
    let (algorithm, len) = match name {
        "sha256" => (ring::pbkdf2::PBKDF2_HMAC_SHA256, 32),
        "sha512" => (ring::pbkdf2::PBKDF2_HMAC_SHA512, 64),
        "sha384" => (ring::pbkdf2::PBKDF2_HMAC_SHA384, 48),
        "sha1" => (ring::pbkdf2::PBKDF2_HMAC_SHA1, 20),
        _ => return None,
    };
    let mut out = vec![0u8; len];
    ring::pbkdf2::derive(
        algorithm,
        NonZeroU32::new(iterations)?,
        salt.as_bytes(),
        password.as_bytes(),
        &mut out,
    );
    Some(hex(&out))
}

fn random_salt() -> Result<String, HashError> {
    let mut bytes = [0u8; SALT_LEN * 2];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| HashError("no randomness from the operating system"))?;
    // Rejection sampling keeps every character equally likely (62 does not divide 256).
    let salt: String = bytes
        .iter()
        .filter(|b| (**b as usize) < 248)
        .take(SALT_LEN)
        .map(|b| SALT_CHARS[*b as usize % SALT_CHARS.len()] as char)
        .collect();
    if salt.len() < SALT_LEN {
        return random_salt();
    }
    Ok(salt)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by MLflow 3.17.2's auth store (werkzeug 3.1) for "password1234".
    const WERKZEUG_SCRYPT: &str = "scrypt:32768:8:1$YVf5tWHttECL7l4K$2c709b4493f185d454c6e4f8e6a821fe8cdf9704b41623326f2e79ff67363a8e5ce73c02fc87fa89c796f1acbea34f37c37a8a3023d9bf6d2aabf470ce943e0a";
    /// werkzeug's generate_password_hash("s3cret-pass", "pbkdf2:sha256:1000", salt_length=8).
    const WERKZEUG_PBKDF2: &str =
        "pbkdf2:sha256:1000$kLIQB0Ly$0e7ff63dd273c7759b672e02f6c7ec324a4ca09760d157d75b7e25c1833e29f0";

    #[test]
    fn verifies_werkzeug_scrypt() {
        assert!(verify(WERKZEUG_SCRYPT, "password1234"));
        assert!(!verify(WERKZEUG_SCRYPT, "password1235"));
    }

    #[test]
    fn generated_hashes_verify_and_differ() {
        let a = generate("correct horse").unwrap();
        let b = generate("correct horse").unwrap();
        assert!(a.starts_with("scrypt:32768:8:1$"));
        assert_ne!(a, b);
        assert!(verify(&a, "correct horse"));
        assert!(!verify(&a, "correct horsf"));
    }

    #[test]
    fn verifies_werkzeug_pbkdf2_and_refuses_garbage() {
        assert!(verify(WERKZEUG_PBKDF2, "s3cret-pass"));
        assert!(!verify(WERKZEUG_PBKDF2, "s3cret-pasS"));
        for bad in [
            "",
            "plain",
            "md5$a$b",
            "scrypt:3:8:1$a$b",
            "pbkdf2:sha256:x$a$b",
        ] {
            assert!(!verify(bad, ""), "{bad}");
        }
    }
}
