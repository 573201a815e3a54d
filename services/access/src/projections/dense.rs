//! A map that keeps its rows side by side in a vector, found through a
//! table of their positions.
//!
//! A hash map's buckets hold whole rows and come in powers of two at most
//! seven-eighths full: a tenant's thousand contacts of 160 bytes took 2,048
//! buckets, twice the rows' size. Here the rows grow as a vector does and
//! only a 4-byte position per bucket is rounded up, which at a million
//! contacts saves about 150 MB and the time a start takes to touch it.

use serde::de::{Deserialize, Deserializer};
use serde::ser::{Serialize, Serializer};
use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash, RandomState};

/// Rows by key, in insertion order (a removal moves the last row into the
/// gap).
#[derive(Clone)]
pub(super) struct Dense<K, V> {
    /// The rows with their keys, side by side.
    rows: Vec<(K, V)>,
    /// Positions in `rows`, hashed by their row's key.
    at: hashbrown::HashTable<u32>,
    /// Keyed per process: keys include caller-chosen ones.
    hasher: RandomState,
}

impl<K, V> Default for Dense<K, V> {
    fn default() -> Self {
        Dense {
            rows: Vec::new(),
            at: hashbrown::HashTable::new(),
            hasher: RandomState::new(),
        }
    }
}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for Dense<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.rows.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl<K: Hash + Eq, V> Dense<K, V> {
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    fn position<Q>(&self, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let rows = &self.rows;
        self.at
            .find(self.hash(key), |&i| {
                rows.get(i as usize).is_some_and(|(k, _)| k.borrow() == key)
            })
            .map(|&i| i as usize)
    }

    /// The row of `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = self.position(key)?;
        self.rows.get(i).map(|(_, v)| v)
    }

    /// The row of `key`, to change.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = self.position(key)?;
        self.rows.get_mut(i).map(|(_, v)| v)
    }

    /// Puts `value` as the row of `key`; the row it replaces, if any.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(i) = self.position(&key)
            && let Some((_, old)) = self.rows.get_mut(i)
        {
            return Some(std::mem::replace(old, value));
        }
        let hash = self.hash(&key);
        // Positions are 4 bytes: a tenant's rows number far fewer than 2^32.
        let i = self.rows.len() as u32;
        self.rows.push((key, value));
        let (rows, hasher) = (&self.rows, &self.hasher);
        self.at.insert_unique(hash, i, |&j| {
            rows.get(j as usize).map_or(0, |(k, _)| hasher.hash_one(k))
        });
        None
    }

    /// Takes the row of `key` out.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let rows = &self.rows;
        let found = self
            .at
            .find_entry(self.hash(key), |&i| {
                rows.get(i as usize).is_some_and(|(k, _)| k.borrow() == key)
            })
            .ok()?;
        let (i, _) = found.remove();
        let i = i as usize;
        let last = self.rows.len() - 1;
        if i != last {
            // The last row moves into the gap: its position changes.
            let moved = self.hash(&self.rows[last].0);
            let position = self.at.find_mut(moved, |&j| j as usize == last);
            debug_assert!(position.is_some(), "every row has its position");
            if let Some(p) = position {
                *p = i as u32;
            }
        }
        Some(self.rows.swap_remove(i).1)
    }

    /// Every row, with its key.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.rows.iter().map(|(k, v)| (k, v))
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }
}

impl<K: Hash + Eq, V: PartialEq> PartialEq for Dense<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl<'a, K, V> IntoIterator for &'a Dense<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.rows.iter().map(|(k, v)| (k, v))
    }
}

// Stored as a map is (a count, then key and row after key and row), so a
// snapshot reads the same either way.
impl<K: Serialize, V: Serialize> Serialize for Dense<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.rows.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de, K, V> Deserialize<'de> for Dense<K, V>
where
    K: Deserialize<'de> + Hash + Eq,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Rows<K, V>(std::marker::PhantomData<(K, V)>);
        impl<'de, K, V> serde::de::Visitor<'de> for Rows<K, V>
        where
            K: Deserialize<'de> + Hash + Eq,
            V: Deserialize<'de>,
        {
            type Value = Dense<K, V>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of rows")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut dense = Dense::default();
                // A damaged count reserves at most 65,536 rows ahead of
                // the bytes that hold them.
                let hint = map.size_hint().unwrap_or(0).min(1 << 16);
                dense.rows.reserve(hint);
                dense.at.reserve(hint, |_| 0);
                while let Some((k, v)) = map.next_entry()? {
                    dense.insert(k, v);
                }
                Ok(dense)
            }
        }
        deserializer.deserialize_map(Rows(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn it_answers_as_a_hash_map_through_inserts_replacements_and_removals() {
        let mut dense: Dense<Box<str>, u32> = Dense::default();
        let mut map: HashMap<Box<str>, u32> = HashMap::new();
        // A fixed pseudo-random walk over a small key space, so keys come
        // back after their removal and removals hit the last row and others.
        let mut x = 7u64;
        for step in 0..20_000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key: Box<str> = format!("k{}", (x >> 33) % 300).into();
            if (x >> 20).is_multiple_of(3) {
                assert_eq!(dense.remove(&*key), map.remove(&key), "step {step}");
            } else {
                assert_eq!(dense.insert(key.clone(), step), map.insert(key, step));
            }
            assert_eq!(dense.len(), map.len());
        }
        for (k, v) in &map {
            assert_eq!(dense.get(&**k), Some(v));
        }
        assert_eq!(dense.iter().count(), map.len());
        if let Some(v) = dense.get_mut("k1") {
            *v = u32::MAX;
        }
        assert!(dense.get("k1").is_none_or(|v| *v == u32::MAX));
    }

    #[test]
    fn it_is_stored_as_a_map_and_reads_back() {
        let mut dense: Dense<u32, String> = Dense::default();
        dense.insert(3, "three".into());
        dense.insert(1, "one".into());
        let as_map: std::collections::BTreeMap<u32, String> =
            [(3, "three".to_owned()), (1, "one".to_owned())].into();
        let bytes = postcard::to_stdvec(&dense).expect("encoded");
        let read: std::collections::BTreeMap<u32, String> =
            postcard::from_bytes(&bytes).expect("a map");
        assert_eq!(read, as_map);
        let back: Dense<u32, String> = postcard::from_bytes(&bytes).expect("decoded");
        assert_eq!(back, dense);
        let from_map: Dense<u32, String> =
            postcard::from_bytes(&postcard::to_stdvec(&as_map).expect("encoded")).expect("read");
        assert_eq!(from_map, dense);
    }
}
