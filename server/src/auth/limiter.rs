//! The failed-login limit: a client (by IP address) that fails `max` logins within a minute
//! is answered 429 without a password check until that minute is over, which caps password
//! guessing at `max` attempts a minute per address and keeps scrypt from being a way to burn
//! the server's CPU.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Entries kept at most; past it, expired ones are dropped first.
const MAX_CLIENTS: usize = 100_000;

/// Failed logins per client address.
pub struct Limiter {
    max: u32,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Limiter {
    /// `max` = 0 turns the limit off.
    pub fn new(max: u32) -> Self {
        Limiter {
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds until `client` may try again, when it is over the limit.
    pub fn blocked_for(&self, client: IpAddr) -> Option<u64> {
        self.blocked_at(client, Instant::now())
    }

    fn blocked_at(&self, client: IpAddr, now: Instant) -> Option<u64> {
        if self.max == 0 {
            return None;
        }
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (start, count) = map.get(&client)?;
        let elapsed = now.duration_since(*start);
        (elapsed < WINDOW && *count >= self.max).then(|| (WINDOW - elapsed).as_secs().max(1))
    }

    pub fn record_failure(&self, client: IpAddr) {
        self.failure_at(client, Instant::now());
    }

    fn failure_at(&self, client: IpAddr, now: Instant) {
        if self.max == 0 {
            return;
        }
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_CLIENTS {
            map.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let entry = map.entry(client).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// A successful login clears the client's count.
    pub fn record_success(&self, client: IpAddr) {
        if self.max > 0 {
            let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            map.remove(&client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_within_the_window() {
        let limiter = Limiter::new(3);
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let other: IpAddr = "10.0.0.8".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..2 {
            limiter.failure_at(ip, t0);
        }
        assert_eq!(limiter.blocked_at(ip, t0), None);
        limiter.failure_at(ip, t0);
        assert_eq!(limiter.blocked_at(ip, t0), Some(60));
        assert_eq!(limiter.blocked_at(other, t0), None);
        assert_eq!(limiter.blocked_at(ip, t0 + WINDOW), None);
        limiter.record_success(ip);
        assert_eq!(limiter.blocked_at(ip, t0), None);
        assert_eq!(Limiter::new(0).blocked_at(ip, t0), None);
    }
}
