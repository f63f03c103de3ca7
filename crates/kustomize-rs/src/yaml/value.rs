//! The document tree every transformer works on.
//!
//! Scalars are typed the way kustomize's YAML library (go-yaml v3) types plain scalars, because
//! kustomize serialises each resource through JSON before printing it: the type decides the
//! printed text (`1.0` prints as `1`, a quoted `"1.0"` stays a string).

use indexmap::IndexMap;

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

/// An insertion-ordered string-keyed map with a hash index, so lookups stay O(1) in large
/// generated manifests (a linear scan made 80,000 keys quadratic).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map(IndexMap<String, Value>);

impl Map {
    /// An empty map.
    pub fn new() -> Self {
        Map(IndexMap::new())
    }
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }
    /// The value under `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.get_mut(key)
    }
    /// Sets `key` to `value`, keeping the position of an existing key.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        self.0.insert(key.into(), value);
    }
    /// Appends `key` when it is absent; returns false (and drops `value`) when present.
    pub fn insert_new(&mut self, key: String, value: Value) -> bool {
        match self.0.entry(key) {
            indexmap::map::Entry::Occupied(_) => false,
            indexmap::map::Entry::Vacant(v) => {
                v.insert(value);
                true
            }
        }
    }
    /// Removes `key`, returning its value (the other keys keep their order).
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.0.shift_remove(key)
    }
    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
    /// The entry under `key`, created as an empty map when absent or not a map.
    pub fn entry_map(&mut self, key: &str) -> &mut Map {
        let slot = self
            .0
            .entry(key.to_string())
            .or_insert_with(|| Value::Map(Map::new()));
        if !matches!(slot, Value::Map(_)) {
            *slot = Value::Map(Map::new());
        }
        match slot {
            Value::Map(m) => m,
            _ => unreachable!("entry was just made a map"),
        }
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Iterates over the entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter()
    }
    /// Iterates over the entries in insertion order, values mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut Value)> {
        self.0.iter_mut()
    }
    /// Keeps the entries `f` returns true for.
    pub fn retain(&mut self, f: impl FnMut(&String, &mut Value) -> bool) {
        self.0.retain(f)
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = indexmap::map::IntoIter<String, Value>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl FromIterator<(String, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Map(iter.into_iter().collect())
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
