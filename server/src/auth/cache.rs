//! MLflow's optional cache of successful logins (`auth_cache_ttl_seconds`, off by default, and
//! `auth_cache_max_size`): a hit skips the scrypt check, which costs tens to hundreds of
//! milliseconds of CPU per request. Keys hold an HMAC of the password under a per-process random
//! key, never the password; changes made through this server's API drop the user's entries at
//! once, other servers' changes show after the TTL (as in MLflow).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ring::hmac;
use ring::rand::SystemRandom;

use super::store::User;

/// A username and the HMAC of a password.
type Credential = (String, Vec<u8>);

pub struct LoginCache {
    ttl: Duration,
    max: usize,
    key: Option<hmac::Key>,
    entries: Mutex<HashMap<Credential, (Instant, User)>>,
}

impl LoginCache {
    pub fn new(ttl_seconds: u64, max: usize) -> Self {
        let key = (ttl_seconds > 0)
            .then(|| hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new()).ok())
            .flatten();
        LoginCache {
            ttl: Duration::from_secs(ttl_seconds),
            max,
            key,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn key_of(&self, username: &str, password: &str) -> Option<Credential> {
        let key = self.key.as_ref()?;
        let tag = hmac::sign(key, password.as_bytes());
        Some((username.to_string(), tag.as_ref().to_vec()))
    }

    pub fn get(&self, username: &str, password: &str) -> Option<User> {
        let key = self.key_of(username, password)?;
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (at, user) = entries.get(&key)?;
        (at.elapsed() < self.ttl).then(|| user.clone())
    }

    pub fn put(&self, username: &str, password: &str, user: &User) {
        let Some(key) = self.key_of(username, password) else {
            return;
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.max {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= self.max {
                return;
            }
        }
        entries.insert(key, (Instant::now(), user.clone()));
    }

    /// Drops every entry of `username` (password, admin flag or the user changed).
    pub fn forget(&self, username: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(name, _), _| name != username);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            id: 1,
            username: "u".into(),
            password_hash: String::new(),
            is_admin: false,
        }
    }

    #[test]
    fn hits_only_the_same_password_and_forgets() {
        let cache = LoginCache::new(60, 10);
        cache.put("u", "pw-one", &user());
        assert!(cache.get("u", "pw-one").is_some());
        assert!(cache.get("u", "pw-two").is_none());
        cache.forget("u");
        assert!(cache.get("u", "pw-one").is_none());
        let off = LoginCache::new(0, 10);
        off.put("u", "pw-one", &user());
        assert!(off.get("u", "pw-one").is_none());
    }
}
