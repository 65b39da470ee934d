//! Passwords and login throttling.
//!
//! Passwords are argon2id PHC strings with the crate's default parameters (m = 19 MiB,
//! t = 2, p = 1, OWASP's minimum). Hashing and verifying run on the blocking pool so a
//! burst of logins cannot stall the async workers.
//!
//! Guessing is slowed twice: a per-account counter locks the account after
//! [`LOCK_AFTER`] consecutive failures (15 minutes, doubling with each further round of
//! failures, at most a day), and an in-memory token bucket per source IP caps login
//! attempts from one address. An unknown email is verified against a dummy hash so it
//! costs the same time and gets the same answer as a wrong password.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Consecutive failures that lock an account.
pub const LOCK_AFTER: i32 = 5;
/// First lock duration.
pub const FIRST_LOCK_MS: i64 = 15 * 60 * 1000;
/// Longest lock.
pub const MAX_LOCK_MS: i64 = 24 * 60 * 60 * 1000;
/// Shortest password a new user may get.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted (argon2 takes any length; this bounds the work).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Hash a password with argon2id and a fresh salt, on the blocking pool.
pub async fn hash_password(password: Zeroizing<String>) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Verify `password` against a PHC string, on the blocking pool. The comparison of the
/// computed and stored outputs is constant-time (password-hash's `Output` equality).
pub async fn verify_password(password: Zeroizing<String>, phc: String) -> bool {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), phc.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

/// A hash of a random password, verified against when the email is unknown so both
/// cases take the same time.
pub fn dummy_hash() -> String {
    let random: [u8; 32] = crate::crypto::random_bytes();
    Argon2::default()
        .hash_password(&random)
        .map(|h| h.to_string())
        .unwrap_or_default()
}

/// After `failed` consecutive failures, lock until when (epoch ms)? Every
/// [`LOCK_AFTER`]-th failure locks, each time twice as long.
pub fn lock_after_failure(failed: i32, now_ms: i64) -> Option<i64> {
    if failed < LOCK_AFTER || failed % LOCK_AFTER != 0 {
        return None;
    }
    let round = (failed / LOCK_AFTER - 1).min(16) as u32;
    let ms = FIRST_LOCK_MS
        .saturating_mul(1_i64 << round)
        .min(MAX_LOCK_MS);
    Some(now_ms + ms)
}

/// Token buckets of login attempts per source IP.
pub struct IpLimiter {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// Most addresses tracked before full (idle) buckets are dropped.
const MAX_TRACKED: usize = 100_000;

impl IpLimiter {
    /// `burst` attempts at once, refilled at `per_second`.
    pub fn new(burst: u32, per_second: f64) -> IpLimiter {
        IpLimiter {
            burst: f64::from(burst),
            per_second,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one attempt for `ip` at `now`; `Err(wait)` when the bucket is empty.
    pub fn take(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_TRACKED {
            let (burst, rate) = (self.burst, self.per_second);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(ip).or_insert((self.burst, now));
        let refilled = (*tokens
            + now.saturating_duration_since(*at).as_secs_f64() * self.per_second)
            .min(self.burst);
        *at = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            Ok(())
        } else {
            *tokens = refilled;
            let wait = (1.0 - refilled) / self.per_second;
            Err(Duration::from_secs_f64(wait.max(0.0)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_grow_and_cap() {
        assert_eq!(lock_after_failure(4, 0), None);
        assert_eq!(lock_after_failure(5, 0), Some(FIRST_LOCK_MS));
        assert_eq!(lock_after_failure(6, 0), None);
        assert_eq!(lock_after_failure(10, 0), Some(2 * FIRST_LOCK_MS));
        assert_eq!(lock_after_failure(500, 0), Some(MAX_LOCK_MS));
    }

    #[test]
    fn bucket_empties_and_refills() {
        let limiter = IpLimiter::new(3, 1.0);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.take(ip, t0).unwrap();
        }
        assert!(limiter.take(ip, t0).is_err());
        limiter.take(ip, t0 + Duration::from_millis(1100)).unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        limiter.take(other, t0).unwrap();
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash_password(Zeroizing::new("correct horse".into()))
            .await
            .unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(Zeroizing::new("correct horse".into()), h.clone()).await);
        assert!(!verify_password(Zeroizing::new("wrong".into()), h).await);
        assert!(!verify_password(Zeroizing::new("x".into()), dummy_hash()).await);
    }
}
