//! Login throttling (SPEC §7): per user 5 failures in 15 minutes, per client address
//! 100, answered with 429 and `Retry-After` for the rest of the window — even for the
//! right password. Kept in memory: a restart clears it, which an attacker cannot cause.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tracked keys per map before stale ones are pruned; bounds memory under a
/// spray of random user names.
const TRACKED_MAX: usize = 100_000;

/// Limits, from `SYSGP_LOGIN_*`.
#[derive(Clone, Copy, Debug)]
pub struct ThrottleLimits {
    /// Failures per user within the window.
    pub user_failures: usize,
    /// Failures per client address within the window.
    pub address_failures: usize,
    /// The window.
    pub window: Duration,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        ThrottleLimits { user_failures: 5, address_failures: 100, window: Duration::from_secs(15 * 60) }
    }
}

struct Failures<K>(Mutex<HashMap<K, VecDeque<Instant>>>);

impl<K: Eq + Hash + Clone> Failures<K> {
    fn new() -> Self {
        Failures(Mutex::new(HashMap::new()))
    }

    /// Seconds until a key at its limit may try again, if it is at its limit.
    fn blocked_for(&self, key: &K, limit: usize, window: Duration, now: Instant) -> Option<u64> {
        let mut map = self.0.lock().ok()?;
        let times = map.get_mut(key)?;
        while times.front().is_some_and(|t| now.duration_since(*t) >= window) {
            times.pop_front();
        }
        if times.len() < limit {
            return None;
        }
        let oldest = *times.front()?;
        Some((window.saturating_sub(now.duration_since(oldest))).as_secs().max(1))
    }

    fn record(&self, key: K, window: Duration, now: Instant) {
        let Ok(mut map) = self.0.lock() else { return };
        if map.len() >= TRACKED_MAX {
            map.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        if map.len() < TRACKED_MAX || map.contains_key(&key) {
            map.entry(key).or_default().push_back(now);
        }
    }

    fn clear(&self, key: &K) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(key);
        }
    }
}

/// Failure counters per user and per address.
pub struct LoginThrottle {
    limits: ThrottleLimits,
    users: Failures<String>,
    addresses: Failures<IpAddr>,
}

impl LoginThrottle {
    /// A throttle with these limits.
    pub fn new(limits: ThrottleLimits) -> LoginThrottle {
        LoginThrottle { limits, users: Failures::new(), addresses: Failures::new() }
    }

    /// `Some(retry_after_secs)` when this user or address may not try now.
    pub fn blocked(&self, user: &str, address: Option<IpAddr>) -> Option<u64> {
        let now = Instant::now();
        let l = self.limits;
        let by_user = self.users.blocked_for(&user.to_owned(), l.user_failures, l.window, now);
        let by_addr = address.and_then(|a| self.addresses.blocked_for(&a, l.address_failures, l.window, now));
        by_user.max(by_addr)
    }

    /// Records a failed attempt.
    pub fn failed(&self, user: &str, address: Option<IpAddr>) {
        let now = Instant::now();
        self.users.record(user.to_owned(), self.limits.window, now);
        if let Some(a) = address {
            self.addresses.record(a, self.limits.window, now);
        }
    }

    /// A successful login forgets the user's earlier failures.
    pub fn succeeded(&self, user: &str) {
        self.users.clear(&user.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fifth_failure_blocks_the_user_but_not_others_from_the_same_address() {
        let t = LoginThrottle::new(ThrottleLimits::default());
        let addr: IpAddr = "10.0.0.1".parse().expect("ip");
        for _ in 0..4 {
            t.failed("alice", Some(addr));
            assert_eq!(t.blocked("alice", Some(addr)), None);
        }
        t.failed("alice", Some(addr));
        let retry = t.blocked("alice", Some(addr)).expect("blocked");
        assert!(retry > 800 && retry <= 900, "{retry}");
        assert_eq!(t.blocked("bob", Some(addr)), None);
    }

    #[test]
    fn an_address_is_blocked_after_its_own_limit() {
        let t = LoginThrottle::new(ThrottleLimits {
            user_failures: 5,
            address_failures: 3,
            window: Duration::from_secs(60),
        });
        let addr: IpAddr = "10.0.0.2".parse().expect("ip");
        for user in ["a", "b", "c"] {
            t.failed(user, Some(addr));
        }
        assert!(t.blocked("d", Some(addr)).is_some());
        assert!(t.blocked("d", Some("10.0.0.3".parse().expect("ip"))).is_none());
    }

    #[test]
    fn failures_expire_with_the_window() {
        let t = LoginThrottle::new(ThrottleLimits {
            user_failures: 1,
            address_failures: 9,
            window: Duration::from_millis(1),
        });
        t.failed("alice", None);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(t.blocked("alice", None), None);
    }
}
