//! The query-embedding cache: `recall_text` embeds one text per call, and
//! agents ask the same things again (the same task, retries, several
//! replicas of one agent). A bounded LRU (the `lru` crate) of text ->
//! vector in front of the embedder; one process-wide cache, since one
//! process has one embedder. 4,096 entries of 384 f32 take about 6 MiB.

use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

pub struct QueryCache {
    entries: Option<Mutex<LruCache<String, Arc<Vec<f32>>>>>,
}

impl QueryCache {
    /// `capacity` 0 turns the cache off.
    pub fn new(capacity: usize) -> QueryCache {
        QueryCache { entries: NonZeroUsize::new(capacity).map(|c| Mutex::new(LruCache::new(c))) }
    }

    pub fn get(&self, text: &str) -> Option<Vec<f32>> {
        let entries = self.entries.as_ref()?;
        let hit = entries.lock().unwrap_or_else(|e| e.into_inner()).get(text).cloned();
        hit.map(|v| v.as_ref().clone())
    }

    pub fn put(&self, text: &str, vector: &[f32]) {
        if let Some(entries) = &self.entries {
            entries.lock().unwrap_or_else(|e| e.into_inner()).put(text.to_string(), Arc::new(vector.to_vec()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_recent_entries() {
        let c = QueryCache::new(2);
        c.put("a", &[1.0]);
        c.put("b", &[2.0]);
        assert_eq!(c.get("a"), Some(vec![1.0]));
        c.put("c", &[3.0]); // evicts b, the least recently used
        assert_eq!(c.get("b"), None);
        assert_eq!(c.get("a"), Some(vec![1.0]));
        assert_eq!(c.get("c"), Some(vec![3.0]));
        let off = QueryCache::new(0);
        off.put("a", &[1.0]);
        assert_eq!(off.get("a"), None);
    }
}
