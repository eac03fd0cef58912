//! `tilt describe`: like `kubectl describe` for custom resources — name, labels and annotations, then
//! every other field as indented `Title Case:  value` lines, and `Events:  <none>` (tilt records none).
//! A name that matches no object exactly describes the objects whose names start with it, as kubectl
//! does.

use std::fmt::Write as _;

use anyhow::Result;
use kube::ResourceExt;
use serde_json::{Map, Value};

use super::cluster::{Cluster, Filter, Selection, to_value};
use super::output::emit;
use crate::client;

/// Flags of `tilt describe`.
#[derive(clap::Args)]
pub struct DescribeArgs {
    /// `TYPE [NAME_PREFIX]…` or `TYPE/NAME…`.
    #[arg(value_name = "TYPE NAME | TYPE/NAME")]
    args: Vec<String>,
    #[command(flatten)]
    filter: Filter,
    #[command(flatten)]
    target: client::Target,
}

/// Runs `tilt describe`.
pub async fn describe(args: DescribeArgs) -> Result<()> {
    let cluster = Cluster::connect(&args.target).await?;
    let mut out = String::new();
    let mut any = false;
    for selection in cluster.select(&args.args)? {
        for (object, by_prefix) in matching(&cluster, &selection, &args.filter).await? {
            // kubectl's spacing: exact matches are separated by two blank lines, each prefix match is
            // followed by one.
            if by_prefix {
                out.push_str(&describe_object(&object));
                out.push('\n');
            } else {
                if any && !out.ends_with("\n\n") {
                    out.push_str("\n\n");
                }
                out.push_str(&describe_object(&object));
            }
            any = true;
        }
    }
    if !any {
        eprintln!("No resources found");
    }
    emit(&out);
    Ok(())
}

/// The objects a describe selection means: everything (filtered) without names; per name, the exact
/// object, else those whose names start with it (flagged true), else the server's NotFound.
async fn matching(cluster: &Cluster, selection: &Selection<'_>, filter: &Filter) -> Result<Vec<(Value, bool)>> {
    if selection.names.is_empty() {
        return Ok(cluster.fetch(selection, filter).await?.objects.into_iter().map(|o| (o, false)).collect());
    }
    let api = cluster.api(selection.kind);
    let mut out = Vec::new();
    for name in &selection.names {
        match api.get(&tilt_apis::path_name(name)).await {
            Ok(object) => out.push((to_value(selection.kind, object)?, false)),
            Err(kube::Error::Api(status)) if status.code == 404 => {
                let prefixed: Vec<_> = api
                    .list(&filter.list_params())
                    .await?
                    .items
                    .into_iter()
                    .filter(|o| o.name_any().starts_with(name.as_str()))
                    .collect();
                if prefixed.is_empty() {
                    return Err(kube::Error::Api(status).into());
                }
                for object in prefixed {
                    out.push((to_value(selection.kind, object)?, true));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// The description of one object.
pub fn describe_object(object: &Value) -> String {
    let meta = &object["metadata"];
    let mut lines = vec![
        format!("Name:\t{}", meta["name"].as_str().unwrap_or_default()),
        format!("Namespace:\t{}", meta["namespace"].as_str().unwrap_or_default()),
    ];
    lines.extend(pairs("Labels", &meta["labels"], "="));
    lines.extend(pairs("Annotations", &meta["annotations"], ": "));
    lines.push(format!("API Version:\t{}", object["apiVersion"].as_str().unwrap_or_default()));
    lines.push(format!("Kind:\t{}", object["kind"].as_str().unwrap_or_default()));
    let mut rest = object.as_object().cloned().unwrap_or_default();
    rest.remove("apiVersion");
    rest.remove("kind");
    if let Some(Value::Object(meta)) = rest.get_mut("metadata") {
        for key in ["name", "namespace", "labels", "annotations", "managedFields"] {
            meta.remove(key);
        }
    }
    map_lines(&mut lines, &rest, 0);
    lines.push("Events:\t<none>".into());
    align(&lines)
}

/// `Title:\tk=v` with one line per pair (continuations with an empty first cell), or `<none>`.
fn pairs(title: &str, map: &Value, sep: &str) -> Vec<String> {
    let pairs: Vec<String> = map
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}{sep}{}", v.as_str().unwrap_or_default()))
        .collect();
    if pairs.is_empty() {
        return vec![format!("{title}:\t<none>")];
    }
    pairs.iter().enumerate().map(|(i, p)| if i == 0 { format!("{title}:\t{p}") } else { format!("\t{p}") }).collect()
}

/// kubectl's layout of nested content: maps and lists open an indented block, scalars are `Title:\tvalue`,
/// list items that are maps are written one after the other at the list's depth.
fn map_lines(out: &mut Vec<String>, map: &Map<String, Value>, indent: usize) {
    for (key, value) in map {
        let title = title(key);
        match value {
            Value::Object(m) => {
                out.push(format!("{:indent$}{title}:", ""));
                map_lines(out, m, indent + 2);
            }
            Value::Array(items) => {
                out.push(format!("{:indent$}{title}:", ""));
                for item in items {
                    match item {
                        Value::Object(m) => map_lines(out, m, indent + 2),
                        scalar => out.push(format!("{:pad$}{}", "", scalar_text(scalar), pad = indent + 2)),
                    }
                }
            }
            scalar => out.push(format!("{:indent$}{title}:\t{}", "", scalar_text(scalar))),
        }
    }
}

/// A scalar as Go's `%v` prints it.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".into(),
        other => super::jsonpath::plain(other),
    }
}

/// Go's tabwriter (padding 2) on lines with at most one tab: consecutive lines with a tab form a block
/// whose first cells are padded to the block's widest plus two.
fn align(lines: &[String]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let block = lines[i..].iter().take_while(|l| l.contains('\t')).count();
        if block == 0 {
            let _ = writeln!(out, "{}", lines[i]);
            i += 1;
            continue;
        }
        let cells: Vec<(&str, &str)> = lines[i..i + block].iter().filter_map(|l| l.split_once('\t')).collect();
        let width = cells.iter().map(|(first, _)| first.chars().count()).max().unwrap_or(0) + 2;
        for (first, rest) in cells {
            let _ = writeln!(out, "{first:width$}{rest}");
        }
        i += block;
    }
    out
}

/// kubectl's field titles (`smartLabelFor`): `creationTimestamp` → `Creation Timestamp`, `uid` → `UID`;
/// keys with characters other than letters and `-` (`tilt.dev/resource`) stay as they are.
fn title(key: &str) -> String {
    const ACRONYMS: &[&str] = &["api", "url", "uid", "osb", "guid"];
    if key.chars().any(|c| !c.is_alphabetic() && c != '-') {
        return key.to_string();
    }
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let chars: Vec<char> = key.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        // A new word starts at an upper-case letter after a lower-case one, or before the last capital
        // of an acronym (`podIPs` → pod, IPs; `spanID` → span, ID).
        let boundary = c.is_uppercase()
            && i > 0
            && (chars[i - 1].is_lowercase()
                || chars.get(i + 1).is_some_and(|n| n.is_lowercase() && chars[i - 1].is_uppercase()));
        if (boundary || c == '-') && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        if c != '-' {
            word.push(c);
        }
    }
    words.push(word);
    words
        .iter()
        .filter(|w| !w.is_empty())
        .map(|w| {
            if ACRONYMS.contains(&w.to_lowercase().as_str()) {
                w.to_uppercase()
            } else {
                let mut cs = w.chars();
                cs.next().map(|f| f.to_uppercase().chain(cs).collect()).unwrap_or_default()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn titles() {
        assert_eq!(title("creationTimestamp"), "Creation Timestamp");
        assert_eq!(title("uid"), "UID");
        assert_eq!(title("apiVersion"), "API Version");
        assert_eq!(title("spanID"), "Span ID");
        assert_eq!(title("tilt.dev/resource"), "tilt.dev/resource");
        assert_eq!(title("readinessProbe"), "Readiness Probe");
    }

    #[test]
    fn describes_like_kubectl() {
        let obj = json!({
            "apiVersion": "tilt.dev/v1alpha1", "kind": "Cmd",
            "metadata": {"name": "a", "labels": {"x": "1", "y": "2"}, "uid": "u", "managedFields": [{}]},
            "spec": {"args": ["sh", "-c"], "dir": "/tmp", "restartOn": {}},
            "status": {"ready": true, "conditions": [{"type": "Ready", "status": "True"}], "state": "", "sources": []},
        });
        let expected = "\
Name:         a
Namespace:    
Labels:       x=1
              y=2
Annotations:  <none>
API Version:  tilt.dev/v1alpha1
Kind:         Cmd
Metadata:
  UID:  u
Spec:
  Args:
    sh
    -c
  Dir:  /tmp
  Restart On:
Status:
  Conditions:
    Status:  True
    Type:    Ready
  Ready:     true
  Sources:
  State:  
Events:   <none>
";
        assert_eq!(describe_object(&obj), expected);
    }
}
