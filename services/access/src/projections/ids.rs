//! Ids kept once and referred to by number.
//!
//! A contact's id, its customer's, its identity's and its invitation's each
//! appear in several tables; a million contacts would otherwise hold each
//! several times over. The names sit one after another in one string, with
//! where each ends: a boxed name per id cost its 16-byte box and the
//! allocator's rounding besides its bytes (about 20 bytes an id, and four
//! million allocations a start had to make again).

use serde::{Deserialize, Serialize};
use std::hash::{BuildHasher, RandomState};

/// An id kept once in [`Ids`], by its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(super) struct Id(u32);

/// Every id the tables refer to, numbered in the order first seen.
#[derive(Clone, Default)]
pub(super) struct Ids {
    /// Every name, one after another.
    text: String,
    /// Where each name ends in `text`, by number.
    ends: Vec<usize>,
    /// Numbers, hashed by their name.
    index: hashbrown::HashTable<u32>,
    /// Keyed per process: the ids hashed include caller-chosen ones.
    hasher: RandomState,
}

impl std::fmt::Debug for Ids {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl PartialEq for Ids {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.ends == other.ends
    }
}

/// The name numbered `i` in `text` with `ends`, if there is one.
fn nth<'a>(text: &'a str, ends: &[usize], i: usize) -> Option<&'a str> {
    let end = *ends.get(i)?;
    let start = match i.checked_sub(1) {
        Some(before) => *ends.get(before)?,
        None => 0,
    };
    text.get(start..end)
}

impl Ids {
    /// The number of `name`, if it was ever kept.
    pub fn find(&self, name: &str) -> Option<Id> {
        let hash = self.hasher.hash_one(name);
        self.index
            .find(hash, |&i| {
                nth(&self.text, &self.ends, i as usize) == Some(name)
            })
            .map(|&i| Id(i))
    }

    /// The number of `name`, kept now if it was not.
    pub fn intern(&mut self, name: &str) -> Id {
        if let Some(id) = self.find(name) {
            return id;
        }
        let Ids {
            text,
            ends,
            index,
            hasher,
        } = self;
        let id = ends.len() as u32;
        text.push_str(name);
        ends.push(text.len());
        index.insert_unique(hasher.hash_one(name), id, |&i| {
            hasher.hash_one(nth(text, ends, i as usize).unwrap_or(""))
        });
        Id(id)
    }

    /// The id a number stands for.
    pub fn name(&self, id: Id) -> &str {
        nth(&self.text, &self.ends, id.0 as usize).unwrap_or("")
    }

    /// The names in number order, for a snapshot.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> + Clone {
        (0..self.ends.len()).map(|i| nth(&self.text, &self.ends, i).unwrap_or(""))
    }

    /// Ids from a snapshot's names (`text`, each ending where `ends` says),
    /// numbered as they come; `None` if the ends do not cut `text` into
    /// names or a name comes twice (numbers would then mean two things).
    pub fn from_parts(text: String, ends: Vec<usize>) -> Option<Self> {
        let hasher = RandomState::new();
        let mut index = hashbrown::HashTable::with_capacity(ends.len());
        for i in 0..ends.len() {
            let name = nth(&text, &ends, i)?;
            let hash = hasher.hash_one(name);
            // One probe finds a name that comes twice and the slot for it.
            match index.entry(
                hash,
                |&j: &u32| nth(&text, &ends, j as usize) == Some(name),
                |&j| hasher.hash_one(nth(&text, &ends, j as usize).unwrap_or("")),
            ) {
                hashbrown::hash_table::Entry::Occupied(_) => return None,
                hashbrown::hash_table::Entry::Vacant(slot) => {
                    slot.insert(i as u32);
                }
            }
        }
        (ends.last().copied().unwrap_or(0) == text.len()).then_some(Ids {
            text,
            ends,
            index,
            hasher,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(ids: &Ids) -> (String, Vec<usize>) {
        let mut text = String::new();
        let ends = ids
            .names()
            .map(|n| {
                text.push_str(n);
                text.len()
            })
            .collect();
        (text, ends)
    }

    #[test]
    fn an_id_is_kept_once_and_numbers_survive_a_snapshot() {
        let mut ids = Ids::default();
        let a = ids.intern("019a-contact");
        let empty = ids.intern("");
        let b = ids.intern("C000001");
        assert_eq!(ids.intern("019a-contact"), a);
        assert_eq!(ids.find("C000001"), Some(b));
        assert_eq!(ids.find(""), Some(empty));
        assert_eq!(ids.find("unknown"), None);
        assert_eq!(ids.name(b), "C000001");
        assert_eq!(ids.name(empty), "");
        let (text, ends) = parts(&ids);
        let again = Ids::from_parts(text, ends).expect("distinct names");
        assert_eq!(again.find("019a-contact"), Some(a));
        assert_eq!(again.find("C000001"), Some(b));
        assert_eq!(again, ids);
    }

    #[test]
    fn parts_that_do_not_cut_into_distinct_names_are_refused() {
        let ok = |text: &str, ends: &[usize]| Ids::from_parts(text.into(), ends.to_vec()).is_some();
        assert!(ok("ab", &[1, 2]));
        assert!(ok("", &[]));
        assert!(!ok("xx", &[1, 2]), "a name twice");
        assert!(!ok("abc", &[1, 2]), "bytes after the last name");
        assert!(!ok("ab", &[1, 3]), "an end past the text");
        assert!(!ok("ab", &[2, 1]), "ends going back");
        assert!(!ok("üa", &[1, 3]), "an end inside a character");
    }
}
