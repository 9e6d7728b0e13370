//! [`JudgeCache`]: judge replies by a hash of everything that determines them, so a repeated
//! sample (same judge, rubric, question, reference and response) does not call the judge again.
//!
//! Only replies are cached, not failures (a timed-out request is tried again next time); the
//! verdict is re-parsed from the cached reply, which gives the same result. The cache holds at
//! most `capacity` replies and forgets the oldest first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// A cache key: SHA-256 of the length-prefixed parts.
pub type CacheKey = [u8; 32];

/// The key of `parts` (judge identity, rubric, question, reference, response).
pub fn cache_key(parts: &[&str]) -> CacheKey {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize().into()
}

/// The replies by key, and the keys in insertion order (for eviction).
type Entries = (HashMap<CacheKey, String>, VecDeque<CacheKey>);

/// A bounded map of judge replies, oldest evicted first.
#[derive(Debug)]
pub struct JudgeCache {
    capacity: usize,
    inner: Mutex<Entries>,
}

impl JudgeCache {
    /// An empty cache holding at most `capacity` replies (0 disables caching).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    /// The cached reply for `key`.
    pub fn get(&self, key: &CacheKey) -> Option<String> {
        self.lock().0.get(key).cloned()
    }

    /// Stores a reply, evicting the oldest when full.
    pub fn insert(&self, key: CacheKey, reply: String) {
        if self.capacity == 0 {
            return;
        }
        let mut guard = self.lock();
        let (map, order) = &mut *guard;
        if map.insert(key, reply).is_none() {
            order.push_back(key);
            while order.len() > self.capacity {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
    }

    /// How many replies are held.
    pub fn len(&self) -> usize {
        self.lock().0.len()
    }

    /// Whether no reply is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave the map inconsistent with its use here.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_parts_and_the_oldest_is_evicted() {
        assert_ne!(cache_key(&["ab", "c"]), cache_key(&["a", "bc"]));
        let cache = JudgeCache::new(2);
        let (a, b, c) = (cache_key(&["a"]), cache_key(&["b"]), cache_key(&["c"]));
        cache.insert(a, "A".into());
        cache.insert(b, "B".into());
        cache.insert(a, "A2".into());
        assert_eq!(cache.get(&a).as_deref(), Some("A2"));
        cache.insert(c, "C".into());
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&a), None);
        assert_eq!(cache.get(&c).as_deref(), Some("C"));
        let off = JudgeCache::new(0);
        off.insert(a, "A".into());
        assert!(off.is_empty());
    }
}
