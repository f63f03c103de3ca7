//! The entries of an envelope: names to secret values, ordered by name.

use std::collections::BTreeMap;

use secrecy::SecretString;

use crate::names::EntryName;

/// Entry name → secret value, ordered by name. `Debug` shows names and `[REDACTED]` values.
#[derive(Debug, Default)]
pub struct Entries {
    map: BTreeMap<EntryName, SecretString>,
}

impl Entries {
    pub fn new() -> Self {
        Self::default()
    }

    /// Insert an entry; returns the previous value under that name, if any.
    pub fn insert(&mut self, name: EntryName, value: SecretString) -> Option<SecretString> {
        self.map.insert(name, value)
    }

    pub fn get(&self, name: &str) -> Option<&SecretString> {
        self.map.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    pub fn remove(&mut self, name: &str) -> Option<SecretString> {
        self.map.remove(name)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Entry names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(EntryName::as_str)
    }

    /// Entries in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&EntryName, &SecretString)> {
        self.map.iter()
    }
}

impl IntoIterator for Entries {
    type Item = (EntryName, SecretString);
    type IntoIter = std::collections::btree_map::IntoIter<EntryName, SecretString>;
    fn into_iter(self) -> Self::IntoIter {
        self.map.into_iter()
    }
}

impl FromIterator<(EntryName, SecretString)> for Entries {
    fn from_iter<I: IntoIterator<Item = (EntryName, SecretString)>>(iter: I) -> Self {
        Self {
            map: iter.into_iter().collect(),
        }
    }
}
