//! Label and field selector parsing (`a=b,c!=d,e in (x,y),!f`); matching is kube-core's `Selector`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use kube::core::{Expression, Selector, SelectorExt};

use crate::store::Labels;

/// Labels a selector can be matched against: a map, or a stored object's compact [`Labels`].
pub trait LabelSet {
    /// The labels as the map kube-core's selector takes.
    fn as_map(&self) -> Cow<'_, BTreeMap<String, String>>;
}

impl LabelSet for BTreeMap<String, String> {
    fn as_map(&self) -> Cow<'_, BTreeMap<String, String>> {
        Cow::Borrowed(self)
    }
}

impl LabelSet for Labels {
    fn as_map(&self) -> Cow<'_, BTreeMap<String, String>> {
        Cow::Owned(self.to_map())
    }
}

/// A parsed `labelSelector`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Selector);

impl LabelSelector {
    /// Parses the Kubernetes label selector syntax; the error names the offending part.
    pub fn parse(input: &str) -> Result<Self, String> {
        let mut exprs = Vec::new();
        for req in split_requirements(input)? {
            exprs.push(parse_requirement(req.trim())?);
        }
        Ok(LabelSelector(Selector::from_iter(exprs)))
    }

    /// Whether `labels` satisfy the selector.
    pub fn matches(&self, labels: &impl LabelSet) -> bool {
        match labels.as_map() {
            Cow::Borrowed(map) => self.0.matches(map),
            Cow::Owned(map) => self.0.matches(&map),
        }
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.0.selects_all()
    }
}

/// Splits on top-level commas (commas inside `( … )` belong to a value set).
fn split_requirements(input: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(format!("unbalanced parentheses in {input:?}"));
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced parentheses in {input:?}"));
    }
    let last = &input[start..];
    if !(out.is_empty() && last.trim().is_empty()) {
        out.push(last);
    }
    if out.iter().any(|r| r.trim().is_empty()) {
        return Err(format!("empty requirement in {input:?}"));
    }
    Ok(out)
}

fn parse_requirement(req: &str) -> Result<Expression, String> {
    if let Some(key) = req.strip_prefix('!') {
        let key = key.trim();
        check_key(key)?;
        return Ok(Expression::DoesNotExist(key.to_string()));
    }
    for (op, build) in [
        ("!=", Expression::NotEqual as fn(String, String) -> Expression),
        ("==", Expression::Equal),
        ("=", Expression::Equal),
    ] {
        if let Some((k, v)) = req.split_once(op) {
            let (k, v) = (k.trim(), v.trim());
            check_key(k)?;
            check_value(v)?;
            return Ok(build(k.to_string(), v.to_string()));
        }
    }
    let words: Vec<&str> = req.splitn(2, char::is_whitespace).collect();
    if words.len() == 2 {
        let key = words[0];
        let rest = words[1].trim_start();
        let (not, set) = if let Some(s) = rest.strip_prefix("notin") {
            (true, s)
        } else if let Some(s) = rest.strip_prefix("in") {
            (false, s)
        } else {
            return Err(format!("unknown operator in {req:?}: expected =, ==, !=, in, notin"));
        };
        check_key(key)?;
        let set = set.trim();
        let inner = set
            .strip_prefix('(')
            .and_then(|s| s.strip_suffix(')'))
            .ok_or_else(|| format!("expected a parenthesized value set in {req:?}"))?;
        let mut values = BTreeSet::new();
        for v in inner.split(',') {
            let v = v.trim();
            check_value(v)?;
            values.insert(v.to_string());
        }
        if values.is_empty() || (values.len() == 1 && values.contains("") && inner.trim().is_empty()) {
            return Err(format!("for 'in', 'notin' operators, values set can't be empty in {req:?}"));
        }
        return Ok(if not { Expression::NotIn(key.into(), values) } else { Expression::In(key.into(), values) });
    }
    check_key(req)?;
    Ok(Expression::Exists(req.to_string()))
}

fn is_name_part(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        p.len() <= 253 && p.split('.').all(|l| is_name_part(l, 63) && !l.contains('_') && !l.contains('.'))
    });
    if prefix_ok && is_name_part(name, 63) {
        Ok(())
    } else {
        Err(format!(
            "invalid label key {key:?}: must be a qualified name ([prefix/]name, alphanumerics, '-', '_', '.')"
        ))
    }
}

fn check_value(v: &str) -> Result<(), String> {
    if v.is_empty() || is_name_part(v, 63) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value {v:?}: at most 63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
        ))
    }
}

/// A parsed `fieldSelector`. Only `metadata.name` and `metadata.namespace` are selectable, as for CRDs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `metadata.name=x,metadata.namespace!=y`.
    pub fn parse(input: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for req in input.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let (field, eq, value) = if let Some((f, v)) = req.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = req.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = req.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!("invalid field selector {req:?}: expected field=value or field!=value"));
            };
            let field = field.trim();
            if field != "metadata.name" && field != "metadata.namespace" {
                return Err(format!("field label not supported: {field}"));
            }
            out.push((field.to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector(out))
    }

    /// Whether an object with this namespace (empty for cluster-scoped kinds) and name matches.
    pub fn matches(&self, namespace: &str, name: &str) -> bool {
        self.0.iter().all(|(field, eq, value)| {
            let actual = if field == "metadata.name" { name } else { namespace };
            (actual == value) == *eq
        })
    }

    /// The name an equality on `metadata.name` pins, which lets a LIST skip a scan.
    pub fn exact_name(&self) -> Option<&str> {
        self.0.iter().find(|(f, eq, _)| f == "metadata.name" && *eq).map(|(_, _, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_and_matches_every_operator() {
        let s = LabelSelector::parse("a=b,c!=d,e in (x, y),f notin (z),g,!h,tilt.dev/owner==up").unwrap();
        let good = labels(&[("a", "b"), ("e", "y"), ("g", ""), ("tilt.dev/owner", "up")]);
        assert!(s.matches(&good));
        let mut bad = good.clone();
        bad.insert("h".into(), "1".into());
        assert!(!s.matches(&bad));
        let mut bad = good.clone();
        bad.insert("f".into(), "z".into());
        assert!(!s.matches(&bad));
        assert!(LabelSelector::parse("").unwrap().is_empty());
    }

    #[test]
    fn rejects_bad_selectors() {
        for bad in ["a=b,", "=b", "a in x", "a in (b", "a foo (b)", "a=b c", "a in ()", "-a=b", "a=b)"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn field_selectors() {
        let f = FieldSelector::parse("metadata.name=x").unwrap();
        assert!(f.matches("", "x") && !f.matches("", "y"));
        assert_eq!(f.exact_name(), Some("x"));
        assert!(FieldSelector::parse("metadata.name!=x").unwrap().matches("", "y"));
        let f = FieldSelector::parse("metadata.namespace=a,metadata.name=x").unwrap();
        assert!(f.matches("a", "x") && !f.matches("b", "x") && !f.matches("", "x"));
        assert!(FieldSelector::parse("metadata.namespace!=a").unwrap().matches("b", "x"));
        assert!(FieldSelector::parse("spec.args=x").is_err());
        assert!(FieldSelector::parse("metadata.name").is_err());
    }
}
