//! The document tree every transformer works on.
//!
//! Scalars are typed the way kustomize's YAML library (go-yaml v3) types plain scalars, because
//! kustomize serialises each resource through JSON before printing it: the type decides the
//! printed text (`1.0` prints as `1`, a quoted `"1.0"` stays a string).

/// A YAML/JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null` or `~` (and every null the renderer makes).
    Null,
    /// A null written as nothing (`key:`). It prints as `null` too, but a strategic-merge
    /// patch drops it from the objects it walks, where a spelled-out `null` stays (kyaml).
    EmptyNull,
    /// A boolean.
    Bool(bool),
    /// An integer (wide enough for YAML's unsigned 64-bit values).
    Int(i128),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Value>),
    /// A mapping with its keys in input order (output order is decided by the emitter).
    Map(Map),
}

/// An insertion-ordered string-keyed map. Kubernetes objects have few keys per level, where a
/// linear scan of a vector is fastest and smallest; a map that grows past [`INDEX_FROM`] keys
/// also gets a hash index, so large generated manifests stay linear (a plain scan made 80,000
/// keys quadratic). Either way it is three words, so a [`Value`] stays four.
#[derive(Debug, Clone)]
pub struct Map(Repr);

#[derive(Debug, Clone)]
enum Repr {
    Small(Vec<(String, Value)>),
    Large(Box<Indexed>),
}

#[derive(Debug, Clone)]
struct Indexed {
    entries: Vec<(String, Value)>,
    index: foldhash::HashMap<String, usize>,
}

impl Indexed {
    fn new(entries: Vec<(String, Value)>) -> Self {
        let mut index =
            foldhash::HashMap::with_capacity_and_hasher(entries.len(), Default::default());
        for (i, (k, _)) in entries.iter().enumerate() {
            index.entry(k.clone()).or_insert(i);
        }
        Indexed { entries, index }
    }
}

/// Size from which a [`Map`] keeps a hash index.
pub const INDEX_FROM: usize = 24;

impl Default for Map {
    fn default() -> Self {
        Map(Repr::Small(Vec::new()))
    }
}

impl PartialEq for Map {
    /// Maps are equal when they hold the same keys with equal values, in any order (JSON).
    fn eq(&self, other: &Map) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Map {
    /// An empty map.
    pub fn new() -> Self {
        Map::default()
    }
    #[inline]
    fn entries(&self) -> &Vec<(String, Value)> {
        match &self.0 {
            Repr::Small(v) => v,
            Repr::Large(l) => &l.entries,
        }
    }
    /// The entries, for changing values only (keys must stay as they are: the index).
    #[inline]
    fn entries_mut(&mut self) -> &mut Vec<(String, Value)> {
        match &mut self.0 {
            Repr::Small(v) => v,
            Repr::Large(l) => &mut l.entries,
        }
    }
    #[inline]
    fn position(&self, key: &str) -> Option<usize> {
        match &self.0 {
            Repr::Small(v) => v.iter().position(|(k, _)| k == key),
            Repr::Large(l) => l.index.get(key).copied(),
        }
    }
    /// Rebuilds the index after entries moved.
    fn reindex(&mut self) {
        if let Repr::Large(l) = &mut self.0 {
            let entries = std::mem::take(&mut l.entries);
            **l = Indexed::new(entries);
        }
    }
    #[inline]
    fn push(&mut self, key: String, value: Value) {
        match &mut self.0 {
            Repr::Small(v) => {
                v.push((key, value));
                if v.len() >= INDEX_FROM {
                    let entries = std::mem::take(v);
                    self.0 = Repr::Large(Box::new(Indexed::new(entries)));
                }
            }
            Repr::Large(l) => {
                l.index.entry(key.clone()).or_insert(l.entries.len());
                l.entries.push((key, value));
            }
        }
    }
    /// The value under `key`.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).map(|i| &self.entries()[i].1)
    }
    /// The value under `key`, mutably.
    #[inline]
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let i = self.position(key)?;
        Some(&mut self.entries_mut()[i].1)
    }
    /// Sets `key` to `value`, keeping the position of an existing key.
    #[inline]
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        match self.position(&key) {
            Some(i) => self.entries_mut()[i].1 = value,
            None => self.push(key, value),
        }
    }
    /// Appends `key`, which the caller knows is absent (the parser checks duplicates first).
    pub(crate) fn push_absent(&mut self, key: String, value: Value) {
        debug_assert!(!self.contains_key(&key));
        self.push(key, value);
    }
    /// Appends `key` when it is absent; returns false (and drops `value`) when present.
    pub fn insert_new(&mut self, key: String, value: Value) -> bool {
        if self.position(&key).is_some() {
            return false;
        }
        self.push(key, value);
        true
    }
    /// Removes `key`, returning its value (the other keys keep their order).
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.position(key)?;
        let (_, v) = self.entries_mut().remove(i);
        self.reindex();
        Some(v)
    }
    /// Whether `key` is present.
    #[inline]
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }
    /// The entry under `key`, created as an empty map when absent or not a map.
    pub fn entry_map(&mut self, key: &str) -> &mut Map {
        let i = match self.position(key) {
            Some(i) => i,
            None => {
                self.push(key.to_string(), Value::Map(Map::new()));
                self.len() - 1
            }
        };
        let slot = &mut self.entries_mut()[i].1;
        if !matches!(slot, Value::Map(_)) {
            *slot = Value::Map(Map::new());
        }
        match slot {
            Value::Map(m) => m,
            _ => unreachable!("entry was just made a map"),
        }
    }
    /// Number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.entries().len()
    }
    /// Whether the map is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }
    /// Iterates over the entries in insertion order.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.entries().iter().map(|(k, v)| (k, v))
    }
    /// Iterates over the entries in insertion order, values mutably.
    #[inline]
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut Value)> {
        self.entries_mut().iter_mut().map(|(k, v)| (&*k, v))
    }
    /// Keeps the entries `f` returns true for.
    pub fn retain(&mut self, mut f: impl FnMut(&String, &mut Value) -> bool) {
        let before = self.len();
        self.entries_mut().retain_mut(|(k, v)| f(k, v));
        if self.len() != before {
            self.reindex();
        }
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        match self.0 {
            Repr::Small(v) => v.into_iter(),
            Repr::Large(l) => l.entries.into_iter(),
        }
    }
}

impl FromIterator<(String, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        let mut m = Map::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl Value {
    /// Whether this is a null, however it was written.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null | Value::EmptyNull)
    }
    /// The map inside, if this is a map.
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }
    /// The map inside, mutably.
    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }
    /// The sequence inside, if this is a sequence.
    pub fn as_seq(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }
    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    /// `self[key]` for maps.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map()?.get(key)
    }
    /// `self[key]` for maps, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.as_map_mut()?.get_mut(key)
    }
    /// Follows a path of map keys.
    pub fn path(&self, keys: &[&str]) -> Option<&Value> {
        let mut cur = self;
        for k in keys {
            cur = cur.get(k)?;
        }
        Some(cur)
    }
    /// Follows a path of map keys and returns the string there.
    pub fn path_str(&self, keys: &[&str]) -> Option<&str> {
        self.path(keys)?.as_str()
    }
    /// The scalar as the text kustomize would compare it by (strings as is, numbers and
    /// booleans in their JSON form).
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Float(f) => Some(super::emit::json_float(*f)),
            Value::Null | Value::EmptyNull => Some(String::new()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> String {
        format!("k{i}")
    }

    #[test]
    fn indexed_map_keeps_order_and_lookups_through_changes() {
        let mut m = Map::new();
        for i in 0..100 {
            m.insert(key(i), Value::Int(i as i128));
        }
        assert!(matches!(m.0, Repr::Large(_)));
        assert_eq!(m.get("k57"), Some(&Value::Int(57)));
        // Replacing keeps the position; removing shifts the rest and keeps lookups right.
        m.insert("k3", Value::Str("three".into()));
        assert_eq!(m.iter().nth(3).map(|(k, _)| k.as_str()), Some("k3"));
        assert_eq!(m.remove("k10"), Some(Value::Int(10)));
        assert_eq!(m.get("k10"), None);
        assert_eq!(m.get("k11"), Some(&Value::Int(11)));
        assert_eq!(m.iter().nth(10).map(|(k, _)| k.as_str()), Some("k11"));
        m.retain(|k, _| k != "k50");
        assert_eq!(m.get("k51"), Some(&Value::Int(51)));
        assert!(!m.contains_key("k50"));
        assert!(!m.insert_new("k51".into(), Value::Null));
        assert!(m.insert_new("new".into(), Value::Null));
        assert_eq!(m.iter().last().map(|(k, _)| k.as_str()), Some("new"));
        m.entry_map("nested").insert("a", Value::Bool(true));
        assert_eq!(
            m.get("nested").and_then(|v| v.get("a")),
            Some(&Value::Bool(true))
        );
        assert_eq!(m.len(), 100 - 2 + 2);
        // Equality ignores order, as JSON objects do.
        let a: Map = [(key(1), Value::Null), (key(2), Value::Null)]
            .into_iter()
            .collect();
        let b: Map = [(key(2), Value::Null), (key(1), Value::Null)]
            .into_iter()
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn a_value_stays_four_words() {
        assert_eq!(std::mem::size_of::<Map>(), 24);
        assert_eq!(std::mem::size_of::<Value>(), 32);
    }
}
