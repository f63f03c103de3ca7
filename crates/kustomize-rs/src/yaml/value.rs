//! The document tree every transformer works on.
//!
//! Scalars are typed the way kustomize's YAML library (go-yaml v3) types plain scalars, because
//! kustomize serialises each resource through JSON before printing it: the type decides the
//! printed text (`1.0` prints as `1`, a quoted `"1.0"` stays a string).

/// A YAML/JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or an empty plain scalar.
    Null,
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

/// An insertion-ordered string-keyed map. Kubernetes objects have few keys per level, so a
/// vector with linear lookup beats hashing here.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map(pub Vec<(String, Value)>);

impl Map {
    /// An empty map.
    pub fn new() -> Self {
        Map(Vec::new())
    }
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    /// The value under `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    /// Sets `key` to `value`, keeping the position of an existing key.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }
    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let pos = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(pos).1)
    }
    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
    /// The entry under `key`, created as an empty map when absent or not a map.
    pub fn entry_map(&mut self, key: &str) -> &mut Map {
        let pos = match self.0.iter().position(|(k, _)| k == key) {
            Some(p) => {
                if !matches!(self.0[p].1, Value::Map(_)) {
                    self.0[p].1 = Value::Map(Map::new());
                }
                p
            }
            None => {
                self.0.push((key.to_string(), Value::Map(Map::new())));
                self.0.len() - 1
            }
        };
        match &mut self.0[pos].1 {
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
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl Value {
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
            Value::Null => Some(String::new()),
            _ => None,
        }
    }
}
