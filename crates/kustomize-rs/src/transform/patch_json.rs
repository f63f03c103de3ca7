//! JSON 6902 patches (add, remove, replace, move, copy, test).

use crate::yaml::Value;

/// One operation.
#[derive(Debug, Clone)]
pub struct Op {
    op: String,
    path: Vec<String>,
    from: Vec<String>,
    value: Option<Value>,
}

/// Reads the operations from a parsed patch (a sequence of maps).
pub fn parse_ops(v: &Value) -> Result<Vec<Op>, String> {
    let Value::Seq(items) = v else {
        return Err("a JSON 6902 patch must be a list of operations".into());
    };
    items
        .iter()
        .map(|item| {
            let m = item
                .as_map()
                .ok_or("a JSON 6902 operation must be a mapping")?;
            let op = m
                .get("op")
                .and_then(Value::as_str)
                .ok_or("a JSON 6902 operation needs 'op'")?
                .to_string();
            let path = pointer(
                m.get("path")
                    .and_then(Value::as_str)
                    .ok_or("a JSON 6902 operation needs 'path'")?,
            )?;
            let from = match m.get("from").and_then(Value::as_str) {
                Some(f) => pointer(f)?,
                None => Vec::new(),
            };
            if !matches!(
                op.as_str(),
                "add" | "remove" | "replace" | "move" | "copy" | "test"
            ) {
                return Err(format!("unexpected JSON 6902 operation {op:?}"));
            }
            if matches!(op.as_str(), "move" | "copy") && m.get("from").is_none() {
                return Err(format!("JSON 6902 operation {op:?} needs 'from'"));
            }
            Ok(Op {
                op,
                path,
                from,
                value: m.get("value").cloned(),
            })
        })
        .collect()
}

fn pointer(p: &str) -> Result<Vec<String>, String> {
    if p.is_empty() {
        return Ok(Vec::new());
    }
    let rest = p
        .strip_prefix('/')
        .ok_or_else(|| format!("JSON pointer {p:?} must start with '/'"))?;
    Ok(rest
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn show(path: &[String]) -> String {
    path.iter().map(|s| format!("/{s}")).collect()
}

fn get<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = doc;
    for seg in path {
        cur = match cur {
            Value::Map(m) => m.get(seg)?,
            Value::Seq(s) => s.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn parent_mut<'a>(doc: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = doc;
    for seg in &path[..path.len() - 1] {
        cur = match cur {
            Value::Map(m) => m.get_mut(seg)?,
            Value::Seq(s) => s.get_mut(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn add(doc: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let last = &path[path.len() - 1];
    let parent = parent_mut(doc, path).ok_or_else(|| {
        format!(
            "add operation does not apply: doc is missing path: {}",
            show(path)
        )
    })?;
    match parent {
        Value::Map(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Seq(s) => {
            if last == "-" {
                s.push(value);
                return Ok(());
            }
            let i: usize = last
                .parse()
                .map_err(|_| format!("add operation: invalid index {last:?} at {}", show(path)))?;
            if i > s.len() {
                return Err(format!(
                    "add operation: index out of bounds at {}",
                    show(path)
                ));
            }
            s.insert(i, value);
            Ok(())
        }
        _ => Err(format!(
            "add operation does not apply: doc is missing path: {}",
            show(path)
        )),
    }
}

fn remove(doc: &mut Value, path: &[String]) -> Result<Value, String> {
    let missing = || {
        format!(
            "remove operation does not apply: doc is missing path: {}",
            show(path)
        )
    };
    if path.is_empty() {
        return Err(missing());
    }
    let last = &path[path.len() - 1];
    match parent_mut(doc, path).ok_or_else(missing)? {
        Value::Map(m) => m.remove(last).ok_or_else(missing),
        Value::Seq(s) => {
            let i: usize = last.parse().map_err(|_| missing())?;
            if i >= s.len() {
                return Err(missing());
            }
            Ok(s.remove(i))
        }
        _ => Err(missing()),
    }
}

/// Applies the operations in order.
pub fn apply(doc: &mut Value, ops: &[Op]) -> Result<(), String> {
    for op in ops {
        match op.op.as_str() {
            "add" => add(doc, &op.path, op.value.clone().unwrap_or(Value::Null))?,
            "remove" => {
                remove(doc, &op.path)?;
            }
            "replace" => {
                // evanphx/json-patch v4 (kustomize's): a missing key of an existing object is
                // set, as `add` would; a missing parent is an error.
                let parent_is_map = !op.path.is_empty()
                    && matches!(get(doc, &op.path[..op.path.len() - 1]), Some(Value::Map(_)));
                if get(doc, &op.path).is_none() && !parent_is_map {
                    return Err(format!(
                        "replace operation does not apply: doc is missing path: {}",
                        show(&op.path)
                    ));
                }
                let v = op.value.clone().unwrap_or(Value::Null);
                if op.path.is_empty() {
                    *doc = v;
                } else {
                    let last = &op.path[op.path.len() - 1];
                    match parent_mut(doc, &op.path) {
                        Some(Value::Map(m)) => m.insert(last.clone(), v),
                        Some(Value::Seq(s)) => {
                            let i: usize = last
                                .parse()
                                .map_err(|_| "replace operation: invalid index".to_string())?;
                            s[i] = v;
                        }
                        _ => {
                            return Err(format!(
                                "replace operation does not apply: doc is missing key: {}",
                                show(&op.path)
                            ));
                        }
                    }
                }
            }
            "move" => {
                let v = remove(doc, &op.from).map_err(|_| {
                    format!(
                        "move operation does not apply: doc is missing from path: {}",
                        show(&op.from)
                    )
                })?;
                add(doc, &op.path, v)?;
            }
            "copy" => {
                let v = get(doc, &op.from).cloned().ok_or_else(|| {
                    format!(
                        "copy operation does not apply: doc is missing from path: {}",
                        show(&op.from)
                    )
                })?;
                add(doc, &op.path, v)?;
            }
            "test" => {
                let want = op.value.clone().unwrap_or(Value::Null);
                if get(doc, &op.path) != Some(&want) {
                    return Err(format!(
                        "testing value {} failed: test failed",
                        show(&op.path)
                    ));
                }
            }
            _ => unreachable!("checked in parse_ops"),
        }
    }
    Ok(())
}
