//! Field ownership (`metadata.managedFields`) and server-side apply.
//!
//! A field set is the set of leaf paths of an object: maps are merged field by field, while lists and
//! scalars are atomic (the default for CRD schemas without `x-kubernetes-list-type`). An apply owns exactly
//! the fields of its configuration; fields it owned before and no longer sends are removed, and fields
//! another manager owns with a different value are conflicts unless `force` is set. An update takes
//! ownership of the fields whose values it changed, and of the maps it created themselves (the `"."` entry of
//! `fieldsV1`, a path ending in [`SELF`] here), as kube-apiserver's updates do.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// A path of map keys from the object root to a leaf.
pub type FieldPath = Vec<String>;

/// Metadata fields the server owns; never part of a field set.
const SERVER_METADATA: [&str; 9] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
];

/// The last element of a path that stands for the map at the rest of the path itself (`"."` in `fieldsV1`).
pub const SELF: &str = ".";

/// Whether the field at `path` exists in `object` (for a [`SELF`] path: whether the map does).
fn present(object: &Value, path: &[String]) -> bool {
    match path.split_last() {
        Some((last, map)) if last == SELF => get(object, map).is_some_and(Value::is_object),
        _ => get(object, path).is_some(),
    }
}

/// The leaf paths of `object`, without `apiVersion`, `kind` and server-owned metadata.
pub fn leaf_paths(object: &Value) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    if let Some(map) = object.as_object() {
        for (k, v) in map {
            match k.as_str() {
                "apiVersion" | "kind" => {}
                "metadata" => {
                    if let Some(meta) = v.as_object() {
                        for (mk, mv) in meta.iter().filter(|(mk, _)| !SERVER_METADATA.contains(&mk.as_str())) {
                            collect(mv, &mut vec!["metadata".into(), mk.clone()], &mut out);
                        }
                    }
                }
                _ => collect(v, &mut vec![k.clone()], &mut out),
            }
        }
    }
    out
}

fn collect(v: &Value, path: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    match v.as_object() {
        Some(map) if !map.is_empty() => {
            for (k, child) in map {
                path.push(k.clone());
                collect(child, path, out);
                path.pop();
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
}

/// The value at `path`, if any.
pub fn get<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(object, |v, k| v.as_object()?.get(k))
}

fn remove(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut cur = object;
    for k in parents {
        match cur.as_object_mut().and_then(|m| m.get_mut(k)) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(last);
    }
}

/// Merges `patch` into `target`: maps field by field, everything else replaced.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// Encodes a field set as `fieldsV1` (`{"f:spec":{"f:args":{}}}`).
pub fn to_fields_v1(set: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for k in path {
            let key = if k == SELF { SELF.to_string() } else { format!("f:{k}") };
            cur =
                cur.entry(key).or_insert_with(|| Value::Object(Map::new())).as_object_mut().expect("built as objects");
        }
    }
    Value::Object(root)
}

/// Decodes `fieldsV1`: `.` is the map itself ([`SELF`]); other keys than `f:` fields (`k:`, `v:`) mark their
/// parent as owned.
pub fn from_fields_v1(v: &Value) -> BTreeSet<FieldPath> {
    fn walk(v: &Value, path: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        let fields: Vec<(&String, &Value)> =
            v.as_object().map(|m| m.iter().filter(|(k, _)| k.starts_with("f:")).collect()).unwrap_or_default();
        let itself = v.as_object().is_some_and(|m| m.contains_key(SELF));
        if itself && !path.is_empty() {
            let mut p = path.clone();
            p.push(SELF.into());
            out.insert(p);
        }
        if fields.is_empty() && !itself {
            if !path.is_empty() {
                out.insert(path.clone());
            }
            return;
        }
        for (k, child) in fields {
            path.push(k[2..].to_string());
            walk(child, path, out);
            path.pop();
        }
    }
    let mut out = BTreeSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Manager {
    /// The field manager's name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// `status` for writes through the status subresource, else empty.
    pub subresource: String,
    /// When it last wrote.
    pub time: String,
    /// The API version it wrote with.
    pub api_version: String,
    /// The fields it owns.
    pub fields: BTreeSet<FieldPath>,
}

/// Reads `metadata.managedFields`.
pub fn managers(object: &Value) -> Vec<Manager> {
    object["metadata"]["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| Manager {
                    manager: e["manager"].as_str().unwrap_or_default().to_string(),
                    operation: e["operation"].as_str().unwrap_or("Update").to_string(),
                    subresource: e["subresource"].as_str().unwrap_or_default().to_string(),
                    time: e["time"].as_str().unwrap_or_default().to_string(),
                    api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
                    fields: from_fields_v1(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Writes `metadata.managedFields`, dropping managers that own nothing, in kube-apiserver's order: by operation
/// (`Apply` first), then time (to the second), then manager and subresource.
pub fn set_managers(object: &mut Value, managers: &[Manager]) {
    let mut sorted: Vec<&Manager> = managers.iter().filter(|m| !m.fields.is_empty()).collect();
    sorted.sort_by(|a, b| {
        (&a.operation, &a.time, &a.manager, &a.subresource).cmp(&(&b.operation, &b.time, &b.manager, &b.subresource))
    });
    let entries: Vec<Value> = sorted
        .into_iter()
        .map(|m| {
            let mut e = json!({
                "manager": m.manager,
                "operation": m.operation,
                "apiVersion": m.api_version,
                "time": m.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&m.fields),
            });
            if !m.subresource.is_empty() {
                e["subresource"] = json!(m.subresource);
            }
            e
        })
        .collect();
    if !object["metadata"].is_object() && object.is_object() {
        object["metadata"] = json!({});
    }
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(entries));
        }
    }
}

/// Whether writing one of the fields changes the other: one holds the other. A [`SELF`] path is held only by
/// itself and by the fields that hold its map, not by the map's own fields.
fn overlaps(a: &[String], b: &[String]) -> bool {
    let (dot, other) = match (a.last(), b.last()) {
        (Some(l), _) if l == SELF => (a, b),
        (_, Some(l)) if l == SELF => (b, a),
        _ => return a.starts_with(b) || b.starts_with(a),
    };
    dot == other || dot[..dot.len() - 1].starts_with(other)
}

/// Who wrote, how and when.
pub struct Writer {
    /// The field manager.
    pub manager: String,
    /// `status` or empty.
    pub subresource: String,
    /// The object's API version.
    pub api_version: String,
    /// RFC 3339 time of the write.
    pub time: String,
}

fn entry<'m>(managers: &'m mut Vec<Manager>, w: &Writer, operation: &str) -> &'m mut Manager {
    let i = managers
        .iter()
        .position(|m| m.manager == w.manager && m.operation == operation && m.subresource == w.subresource)
        .unwrap_or_else(|| {
            managers.push(Manager {
                manager: w.manager.to_string(),
                operation: operation.to_string(),
                subresource: w.subresource.to_string(),
                time: String::new(),
                api_version: String::new(),
                fields: BTreeSet::new(),
            });
            managers.len() - 1
        });
    let m = &mut managers[i];
    m.time = w.time.clone();
    m.api_version = w.api_version.clone();
    m
}

/// Records an update (create, PUT, merge or JSON patch) from `old` to `new` in `new`'s managedFields: the
/// writer takes every field whose value it changed.
pub fn record_update(old: Option<&Value>, new: &mut Value, w: &Writer) {
    let mut ms = old.map(managers).unwrap_or_default();
    let new_paths = leaf_paths(new);
    let mut changed: BTreeSet<FieldPath> = match old {
        None => new_paths.clone(),
        Some(old) => {
            let old_paths = leaf_paths(old);
            new_paths
                .iter()
                .filter(|p| get(old, p) != get(new, p))
                .chain(old_paths.iter().filter(|p| get(new, p).is_none()))
                .cloned()
                .collect()
        }
    };
    // The maps the write created (not `metadata`, which every object has) are the writer's too.
    let created: Vec<FieldPath> = changed
        .iter()
        .filter(|p| get(new, p).is_some())
        .flat_map(|p| (1..p.len()).map(move |n| &p[..n]))
        .filter(|map| *map != ["metadata"] && old.is_none_or(|o| !get(o, map).is_some_and(Value::is_object)))
        .map(|map| [map, &[SELF.to_string()]].concat())
        .collect();
    changed.extend(created);
    for m in ms.iter_mut() {
        if !(m.manager == w.manager && m.operation == "Update" && m.subresource == w.subresource) {
            m.fields.retain(|f| !changed.iter().any(|c| overlaps(c, f)));
        }
    }
    let me = entry(&mut ms, w, "Update");
    me.fields.extend(changed.into_iter().filter(|p| present(new, p)));
    // Fields that no longer exist are owned by nobody.
    for m in ms.iter_mut() {
        m.fields.retain(|f| present(new, f));
    }
    set_managers(new, &ms);
}

/// A field that another manager owns with a different value.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The other manager.
    pub manager: String,
    /// The field, as `.spec.args`.
    pub field: String,
}

/// Server-side apply of `config` by `w` onto `current` (None: a create). Returns the new object with its
/// managedFields, or the conflicts when another manager owns a field with another value and not `force`.
pub fn apply(current: Option<&Value>, config: &Value, w: &Writer, force: bool) -> Result<Value, Vec<Conflict>> {
    let mut ms = current.map(managers).unwrap_or_default();
    let applied = leaf_paths(config);
    let mut conflicts = Vec::new();
    if let Some(cur) = current {
        for m in ms.iter_mut().filter(|m| !(m.manager == w.manager && m.operation == "Apply")) {
            let mut lost = Vec::new();
            for f in m.fields.iter() {
                for p in applied.iter().filter(|p| overlaps(p, f)) {
                    if get(cur, p) != get(config, p) {
                        if force {
                            lost.push(f.clone());
                        } else {
                            conflicts.push(Conflict { manager: m.manager.clone(), field: format!(".{}", p.join(".")) });
                        }
                    }
                }
            }
            m.fields.retain(|f| !lost.contains(f));
        }
    }
    if !conflicts.is_empty() {
        conflicts.dedup();
        return Err(conflicts);
    }
    let mut result = current.cloned().unwrap_or_else(|| json!({}));
    let previously: BTreeSet<FieldPath> = ms
        .iter()
        .find(|m| m.manager == w.manager && m.operation == "Apply" && m.subresource == w.subresource)
        .map(|m| m.fields.clone())
        .unwrap_or_default();
    for gone in previously.difference(&applied) {
        let owned_by_other = ms
            .iter()
            .any(|m| !(m.manager == w.manager && m.operation == "Apply") && m.fields.iter().any(|f| overlaps(f, gone)));
        // Still applied when the configuration has the field or something inside it; an ancestor sent as an
        // empty map (`localResourceInfo: {}`) does not keep the fields it used to hold.
        if !owned_by_other && !applied.iter().any(|p| p.starts_with(gone)) {
            remove(&mut result, gone);
            // Maps left empty by the removal go too, unless the configuration still has them.
            for depth in (1..gone.len()).rev() {
                let parent = &gone[..depth];
                let empty = get(&result, parent).and_then(Value::as_object).is_some_and(Map::is_empty);
                if empty && get(config, parent).is_none() {
                    remove(&mut result, parent);
                }
            }
        }
    }
    merge(&mut result, config);
    let me = entry(&mut ms, w, "Apply");
    me.fields = applied;
    for m in ms.iter_mut() {
        m.fields.retain(|f| present(&result, f));
    }
    set_managers(&mut result, &ms);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(manager: &str) -> Writer {
        Writer {
            manager: manager.into(),
            subresource: String::new(),
            api_version: "tilt.dev/v1alpha1".into(),
            time: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn fields_v1_round_trip() {
        let obj = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"args": ["a"], "dir": "d"}});
        let set = leaf_paths(&obj);
        assert_eq!(
            to_fields_v1(&set),
            json!({"f:metadata": {"f:labels": {"f:x": {}}}, "f:spec": {"f:args": {}, "f:dir": {}}})
        );
        assert_eq!(from_fields_v1(&to_fields_v1(&set)), set);
    }

    #[test]
    fn apply_removes_fields_it_stopped_sending() {
        let a = apply(None, &json!({"metadata": {"name": "a"}, "spec": {"args": ["x"], "dir": "d"}}), &w("m"), false)
            .unwrap();
        let b = apply(Some(&a), &json!({"metadata": {"name": "a"}, "spec": {"args": ["y"]}}), &w("m"), false).unwrap();
        assert_eq!(b["spec"], json!({"args": ["y"]}));
        assert_eq!(b["metadata"]["managedFields"][0]["manager"], "m");
    }

    #[test]
    fn apply_prunes_maps_left_empty() {
        let a = apply(None, &json!({"status": {"running": {"pid": 1}, "ready": true}}), &w("m"), false).unwrap();
        let b = apply(Some(&a), &json!({"status": {"terminated": {"exitCode": 0}}}), &w("m"), false).unwrap();
        assert_eq!(b["status"], json!({"terminated": {"exitCode": 0}}));
        assert_eq!(managers(&b).len(), 1);
    }

    #[test]
    fn apply_of_an_empty_map_drops_what_it_held() {
        let a = apply(None, &json!({"status": {"info": {"pid": 7}, "ok": true}}), &w("m"), false).unwrap();
        let b = apply(Some(&a), &json!({"status": {"info": {}, "ok": true}}), &w("m"), false).unwrap();
        assert_eq!(b["status"], json!({"info": {}, "ok": true}));
    }

    #[test]
    fn apply_conflicts_with_other_manager_unless_forced() {
        let a = apply(None, &json!({"metadata": {"name": "a"}, "spec": {"args": ["x"]}}), &w("one"), false).unwrap();
        let cfg = json!({"metadata": {"name": "a"}, "spec": {"args": ["y"]}});
        let err = apply(Some(&a), &cfg, &w("two"), false).unwrap_err();
        assert_eq!(err, vec![Conflict { manager: "one".into(), field: ".spec.args".into() }]);
        // Same value: shared ownership, no conflict.
        let same = apply(Some(&a), &json!({"metadata": {"name": "a"}, "spec": {"args": ["x"]}}), &w("two"), false);
        assert!(same.is_ok());
        let forced = apply(Some(&a), &cfg, &w("two"), true).unwrap();
        assert_eq!(forced["spec"]["args"], json!(["y"]));
        let ms = managers(&forced);
        assert_eq!(ms.len(), 1);
        assert_eq!(ms[0].manager, "two");
    }

    #[test]
    fn update_takes_changed_fields() {
        let a = apply(None, &json!({"metadata": {"name": "a"}, "spec": {"args": ["x"], "dir": "d"}}), &w("one"), false)
            .unwrap();
        let mut b = a.clone();
        b["spec"]["dir"] = json!("e");
        record_update(Some(&a), &mut b, &w("editor"));
        let ms = managers(&b);
        let one = ms.iter().find(|m| m.manager == "one").unwrap();
        let editor = ms.iter().find(|m| m.manager == "editor").unwrap();
        assert!(!one.fields.contains(&vec!["spec".to_string(), "dir".to_string()]));
        assert!(editor.fields.contains(&vec!["spec".to_string(), "dir".to_string()]));
        // Now "one" re-applying a different dir does not conflict with "editor"? It does: editor owns it.
        let err =
            apply(Some(&b), &json!({"metadata": {"name": "a"}, "spec": {"args": ["x"], "dir": "f"}}), &w("one"), false);
        assert!(err.is_err());
    }

    #[test]
    fn an_update_owns_the_maps_it_created_as_kube_apiserver_records_them() {
        let mut created = json!({"metadata": {"name": "a", "labels": {"l": "1"}}, "spec": {"args": ["x"]}});
        record_update(None, &mut created, &w("maker"));
        assert_eq!(
            created["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:metadata": {"f:labels": {".": {}, "f:l": {}}}, "f:spec": {".": {}, "f:args": {}}})
        );
        // A field added to an existing map: the map stays its creator's; the field is the editor's.
        let mut edited = created.clone();
        edited["spec"]["dir"] = json!("d");
        edited["status"] = json!({"ready": true});
        record_update(Some(&created), &mut edited, &w("editor"));
        let ms = managers(&edited);
        let of = |name: &str| ms.iter().find(|m| m.manager == name).unwrap().fields.clone();
        assert_eq!(to_fields_v1(&of("maker")), created["metadata"]["managedFields"][0]["fieldsV1"]);
        assert_eq!(to_fields_v1(&of("editor")), json!({"f:spec": {"f:dir": {}}, "f:status": {".": {}, "f:ready": {}}}));
        // Round trip through fieldsV1, and an apply of a field inside a map another manager created is no conflict.
        assert_eq!(from_fields_v1(&to_fields_v1(&of("editor"))), of("editor"));
        assert!(apply(Some(&edited), &json!({"spec": {"args": ["y"]}}), &w("applier"), false).is_err());
        assert!(apply(Some(&edited), &json!({"spec": {"env": ["E=1"]}}), &w("applier"), false).is_ok());
        // Removing the map drops its "." too.
        let mut emptied = edited.clone();
        emptied.as_object_mut().unwrap().remove("status");
        record_update(Some(&edited), &mut emptied, &w("remover"));
        let editor = managers(&emptied).into_iter().find(|m| m.manager == "editor").unwrap();
        assert_eq!(to_fields_v1(&editor.fields), json!({"f:spec": {"f:dir": {}}}));
    }
}
