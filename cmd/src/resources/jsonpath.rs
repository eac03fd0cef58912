//! kubectl's JSONPath templates (`{.spec.args}`, `{.items[*].metadata.name}`,
//! `{range .items[*]}{.metadata.name}{"\n"}{end}`), for `-o jsonpath=`, `-o custom-columns=` and
//! `wait --for=jsonpath=`.
//!
//! A template is literal text mixed with `{…}` actions: a field path, a quoted string, or `range PATH` …
//! `end`. Each path is translated into an RFC 9535 JSONPath (`$['spec']['args']`) and evaluated by
//! `jsonpath-rust`; this module only parses the template around the paths.

use anyhow::{Result, bail};
use jsonpath_rust::JsonPath;
use serde_json::Value;

/// A parsed kubectl JSONPath template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// Literal text, printed as is.
    Text(String),
    /// A JSONPath query (`$…`), its results printed space-separated.
    Path(String),
    /// `{range PATH}…{end}`: the body once per result of the path, relative to it.
    Range(String, Vec<Node>),
}

impl Template {
    /// Parses a template as `-o jsonpath=` does: text outside braces is literal.
    pub fn parse(text: &str) -> Result<Template> {
        let mut stack: Vec<Vec<Node>> = vec![Vec::new()];
        let mut ranges: Vec<String> = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let Some(open) = rest.find('{') else {
                push_text(stack.last_mut().expect("stack"), rest);
                break;
            };
            push_text(stack.last_mut().expect("stack"), &rest[..open]);
            let close = open
                + action_end(&rest[open..]).ok_or_else(|| anyhow::anyhow!("unclosed action in template {text:?}"))?;
            let action = rest[open + 1..close].trim();
            rest = &rest[close + 1..];
            if let Some(path) = action.strip_prefix("range ") {
                ranges.push(translate(path.trim())?);
                stack.push(Vec::new());
            } else if action == "end" {
                let (Some(path), Some(body)) = (ranges.pop(), stack.pop().filter(|_| !stack.is_empty())) else {
                    bail!("{{end}} without {{range}} in template {text:?}");
                };
                stack.last_mut().expect("stack").push(Node::Range(path, body));
            } else if action.starts_with('"') || action.starts_with('\'') {
                push_text(stack.last_mut().expect("stack"), &unquote(action)?);
            } else {
                stack.last_mut().expect("stack").push(Node::Path(translate(action)?));
            }
        }
        if !ranges.is_empty() {
            bail!("{{range}} without {{end}} in template {text:?}");
        }
        Ok(Template { nodes: stack.pop().expect("stack") })
    }

    /// Parses a template as custom columns and `wait --for=jsonpath=` do: a bare path (`.spec.args`,
    /// without braces) is one action.
    pub fn relaxed(text: &str) -> Result<Template> {
        if text.starts_with('{') { Template::parse(text) } else { Template::parse(&format!("{{{text}}}")) }
    }

    /// Renders the template against `root`: strings print raw, other values as compact JSON, several
    /// results of one path separated by spaces; missing fields print nothing.
    pub fn render(&self, root: &Value) -> Result<String> {
        let mut out = String::new();
        render_nodes(&self.nodes, root, &mut out)?;
        Ok(out)
    }

    /// The values the template's paths select in `root`, for templates used as a single expression
    /// (custom columns, `wait --for=jsonpath=`).
    pub fn values(&self, root: &Value) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for node in &self.nodes {
            match node {
                Node::Path(path) => out.extend(query(root, path)?.into_iter().cloned()),
                Node::Text(t) => out.push(Value::String(t.clone())),
                Node::Range(..) => bail!("range is not allowed here"),
            }
        }
        Ok(out)
    }
}

fn push_text(nodes: &mut Vec<Node>, text: &str) {
    if text.is_empty() {
        return;
    }
    match nodes.last_mut() {
        Some(Node::Text(t)) => t.push_str(text),
        _ => nodes.push(Node::Text(text.to_string())),
    }
}

/// The index of the `}` closing the action that starts at `s[0] == '{'`, skipping quoted strings.
fn action_end(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (Some(_), _) if escaped => escaped = false,
            (Some(_), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '}') => return Some(i),
            (None, _) => {}
        }
    }
    None
}

/// A quoted literal (`"\n"`, `'x'`) with its escapes interpreted.
fn unquote(action: &str) -> Result<String> {
    let quote = action.chars().next().unwrap_or('"');
    let Some(inner) = action.strip_prefix(quote).and_then(|a| a.strip_suffix(quote)) else {
        bail!("unterminated string {action:?} in template");
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    Ok(out)
}

/// Translates a kubectl path (`.items[*].metadata.labels.tilt\.dev/resource`, `@.name`, `$.a`) into an
/// RFC 9535 query with bracketed names (`$['items'][*]['metadata']['labels']['tilt.dev/resource']`).
fn translate(path: &str) -> Result<String> {
    let path = path.strip_prefix('$').or_else(|| path.strip_prefix('@')).unwrap_or(path);
    let mut out = String::from("$");
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if chars.peek() == Some(&'.') {
                    chars.next();
                    out.push_str("..");
                }
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    match n {
                        '.' | '[' => break,
                        '\\' => {
                            chars.next();
                            name.extend(chars.next());
                        }
                        _ => {
                            name.push(n);
                            chars.next();
                        }
                    }
                }
                match name.as_str() {
                    "" if out.ends_with("..") => bail!("invalid path {path:?}: `..` needs a field name"),
                    "" => {}
                    "*" => out.push_str("[*]"),
                    _ => out.push_str(&format!("['{}']", name.replace('\\', "\\\\").replace('\'', "\\'"))),
                }
            }
            '[' => {
                out.push('[');
                let mut depth = 1;
                let mut quote: Option<char> = None;
                for n in chars.by_ref() {
                    out.push(n);
                    match (quote, n) {
                        (Some(q), n) if n == q => quote = None,
                        (Some(_), _) => {}
                        (None, '"' | '\'') => quote = Some(n),
                        (None, '[') => depth += 1,
                        (None, ']') => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        (None, _) => {}
                    }
                }
                if depth != 0 {
                    bail!("invalid path {path:?}: unclosed `[`");
                }
            }
            c if c.is_whitespace() => {}
            _ => bail!("invalid path {path:?}: unexpected {c:?} (paths start with `.`, e.g. `{{.metadata.name}}`)"),
        }
    }
    Ok(out)
}

fn query<'a>(root: &'a Value, path: &str) -> Result<Vec<&'a Value>> {
    root.query(path).map_err(|e| anyhow::anyhow!("evaluating JSONPath {path}: {e}"))
}

/// How a selected value prints: strings raw, anything else as compact JSON.
pub fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn render_nodes(nodes: &[Node], current: &Value, out: &mut String) -> Result<()> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Path(path) => {
                let values = query(current, path)?;
                out.push_str(&values.iter().map(|v| plain(v)).collect::<Vec<_>>().join(" "));
            }
            Node::Range(path, body) => {
                let values = query(current, path)?;
                // `{range .items}` iterates the array itself, as `{range .items[*]}` does.
                let items: Vec<&Value> = match values.as_slice() {
                    [Value::Array(items)] => items.iter().collect(),
                    _ => values,
                };
                for item in items {
                    render_nodes(body, item, out)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(template: &str, v: &Value) -> String {
        Template::parse(template).unwrap().render(v).unwrap()
    }

    #[test]
    fn translates_kubectl_paths() {
        assert_eq!(translate(".spec.args").unwrap(), "$['spec']['args']");
        assert_eq!(translate(".items[*].metadata.name").unwrap(), "$['items'][*]['metadata']['name']");
        assert_eq!(
            translate(r".metadata.labels.tilt\.dev/resource").unwrap(),
            "$['metadata']['labels']['tilt.dev/resource']"
        );
        assert_eq!(translate("@").unwrap(), "$");
        assert_eq!(translate(".").unwrap(), "$");
        assert_eq!(translate("..name").unwrap(), "$..['name']");
        assert_eq!(translate(r#".c[?(@.type=="Ready")].status"#).unwrap(), r#"$['c'][?(@.type=="Ready")]['status']"#);
        assert!(translate("spec").is_err());
        assert!(translate(".a[0").is_err());
    }

    #[test]
    fn renders_fields_lists_and_literals() {
        let obj = json!({"metadata": {"name": "a", "labels": {"tilt.dev/resource": "r"}}, "spec": {"args": ["sh", "-c", "x y"], "n": 3}});
        assert_eq!(render("{.metadata.name}", &obj), "a");
        assert_eq!(Template::relaxed(".metadata.name").unwrap().render(&obj).unwrap(), "a");
        assert_eq!(render("name: {.metadata.name}", &obj), "name: a");
        assert_eq!(render("{.spec.args}", &obj), r#"["sh","-c","x y"]"#);
        assert_eq!(render("{.spec.args[*]}", &obj), "sh -c x y");
        assert_eq!(render("{.spec.args[1]}", &obj), "-c");
        assert_eq!(render("n={.spec.n}{\"\\n\"}", &obj), "n=3\n");
        assert_eq!(render(r"{.metadata.labels.tilt\.dev/resource}", &obj), "r");
        assert_eq!(render("{.spec.missing}", &obj), "");
    }

    #[test]
    fn ranges_and_filters() {
        let list = json!({"items": [
            {"metadata": {"name": "a"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
            {"metadata": {"name": "b"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}},
        ]});
        assert_eq!(render("{.items[*].metadata.name}", &list), "a b");
        assert_eq!(render("{range .items[*]}{.metadata.name}{\"\\n\"}{end}", &list), "a\nb\n");
        assert_eq!(render("{range .items}[{.metadata.name}]{end}", &list), "[a][b]");
        assert_eq!(
            render(r#"{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status};{end}"#, &list),
            "a=True;b=False;"
        );
        assert!(Template::parse("{range .items[*]}x").is_err());
        assert!(Template::parse("{end}").is_err());
        assert!(Template::parse("{.a").is_err());
    }

    #[test]
    fn values_for_single_expressions() {
        let obj = json!({"spec": {"args": ["a", "b"]}});
        assert_eq!(Template::relaxed(".spec.args").unwrap().values(&obj).unwrap(), vec![json!(["a", "b"])]);
        assert!(Template::parse("{.nope}").unwrap().values(&obj).unwrap().is_empty());
    }
}
