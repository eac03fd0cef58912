//! What the server serves, documented: `tilt api-resources` (the discovery catalog, like
//! `kubectl api-resources`) and `tilt explain TYPE[.FIELD…]` (like `kubectl explain`, from the server's
//! OpenAPI v3 document for the type's group version, `/openapi/v3` → `apis/<group>/<version>`, in
//! kubectl's plain-text layout).

use std::fmt::Write as _;

use anyhow::{Context, Result, anyhow};
use serde_json::Value;

use super::cluster::{Cluster, Kind};
use super::output::{TextTable, emit};
use crate::client;

/// Flags of `tilt api-resources`.
#[derive(clap::Args)]
pub struct ApiResourcesArgs {
    /// Only resources of this API group.
    #[arg(long)]
    api_group: Option<String>,
    /// Only namespaced (true) or cluster-scoped (false) resources.
    #[arg(long)]
    namespaced: Option<bool>,
    /// Only resources supporting all these verbs (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    verbs: Vec<String>,
    /// Output format: wide (adds VERBS and CATEGORIES) or name.
    #[arg(short = 'o', long = "output", value_parser = ["wide", "name"])]
    output: Option<String>,
    /// Print the table without its header line.
    #[arg(long)]
    no_headers: bool,
    #[command(flatten)]
    target: client::Target,
}

/// Runs `tilt api-resources`.
pub async fn api_resources(args: ApiResourcesArgs) -> Result<()> {
    let cluster = Cluster::connect(&args.target).await?;
    let kinds = cluster.kinds.iter().filter(|k| {
        args.api_group.as_ref().is_none_or(|g| *g == k.resource.group)
            && args.namespaced.is_none_or(|n| n == k.namespaced)
            && args.verbs.iter().all(|v| k.verbs.contains(v))
    });
    let wide = args.output.as_deref() == Some("wide");
    if args.output.as_deref() == Some("name") {
        emit(&kinds.map(|k| format!("{}\n", k.plural_group())).collect::<String>());
        return Ok(());
    }
    let mut header: Vec<String> = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"].map(String::from).into();
    if wide {
        header.extend(["VERBS".into(), "CATEGORIES".into()]);
    }
    let rows = kinds
        .map(|k| {
            let mut row = vec![
                k.resource.plural.clone(),
                k.short_names.join(","),
                k.resource.api_version.clone(),
                k.namespaced.to_string(),
                k.resource.kind.clone(),
            ];
            if wide {
                row.extend([k.verbs.join(","), k.categories.join(",")]);
            }
            row
        })
        .collect();
    emit(&TextTable { header, rows }.render(args.no_headers));
    Ok(())
}

/// Flags of `tilt explain`.
#[derive(clap::Args)]
pub struct ExplainArgs {
    /// `TYPE[.FIELD…]`, e.g. `cmd.spec` or `fw.spec.ignores`.
    #[arg(value_name = "TYPE.FIELD")]
    path: String,
    /// Print every nested field (names and types only).
    #[arg(long)]
    recursive: bool,
    #[command(flatten)]
    target: client::Target,
}

/// Runs `tilt explain`.
pub async fn explain(args: ExplainArgs) -> Result<()> {
    let cluster = Cluster::connect(&args.target).await?;
    let mut parts = args.path.split('.');
    let kind = cluster.resolve(parts.next().unwrap_or_default())?;
    let doc = openapi(&cluster, kind).await?;
    let schemas = &doc["components"]["schemas"];
    let root = schemas
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, s)| s)
        .find(|s| is_schema_of(s, kind))
        .ok_or_else(|| anyhow!("couldn't find the OpenAPI schema of {}", kind.plural_group()))?;
    let mut schema = root;
    let mut field = None;
    for name in parts {
        let container = element(schemas, schema);
        schema = deref(
            schemas,
            container["properties"].get(name).ok_or_else(|| anyhow!("field \"{name}\" does not exist"))?,
        );
        field = Some(name);
    }
    emit(&render(schemas, kind, field, schema, args.recursive));
    Ok(())
}

/// The OpenAPI v3 document of the kind's group version.
async fn openapi(cluster: &Cluster, kind: &Kind) -> Result<Value> {
    let get = |path: String| http::Request::get(path).body(Vec::new());
    let index: Value = cluster.client.request(get("/openapi/v3".into())?).await.context("reading /openapi/v3")?;
    let key = match kind.resource.group.as_str() {
        "" => format!("api/{}", kind.resource.version),
        group => format!("apis/{group}/{}", kind.resource.version),
    };
    let url = index["paths"][&key]["serverRelativeURL"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| format!("/openapi/v3/{key}"));
    cluster.client.request(get(url)?).await.with_context(|| format!("reading the OpenAPI document of {key}"))
}

fn is_schema_of(schema: &Value, kind: &Kind) -> bool {
    schema["x-kubernetes-group-version-kind"].as_array().is_some_and(|gvks| {
        gvks.iter().any(|g| {
            g["group"] == kind.resource.group.as_str()
                && g["version"] == kind.resource.version.as_str()
                && g["kind"] == kind.resource.kind.as_str()
        })
    })
}

/// Follows `$ref` (and a single-entry `allOf`) to the schema meant.
fn deref<'a>(schemas: &'a Value, schema: &'a Value) -> &'a Value {
    let target = schema["$ref"].as_str().or_else(|| schema["allOf"][0]["$ref"].as_str());
    match target.and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) if schemas.get(name).is_some() => deref(schemas, &schemas[name]),
        _ => schema,
    }
}

/// What a schema's fields hang off: the items of an array, the values of a map, or the schema itself.
fn element<'a>(schemas: &'a Value, schema: &'a Value) -> &'a Value {
    let schema = deref(schemas, schema);
    match schema["type"].as_str() {
        Some("array") => element(schemas, &schema["items"]),
        Some("object") if schema.get("properties").is_none() && schema["additionalProperties"].is_object() => {
            element(schemas, &schema["additionalProperties"])
        }
        _ => schema,
    }
}

/// kubectl's type names: `string`, `[]string`, `Object`, `map[string]string`, `[]Object`.
fn type_name(schemas: &Value, schema: &Value) -> String {
    let schema = deref(schemas, schema);
    match schema["type"].as_str() {
        Some("array") => format!("[]{}", type_name(schemas, &schema["items"])),
        Some("object") if schema.get("properties").is_none() && schema["additionalProperties"].is_object() => {
            format!("map[string]{}", type_name(schemas, &schema["additionalProperties"]))
        }
        Some("object") => "Object".into(),
        Some(t) => t.into(),
        None if schema["x-kubernetes-int-or-string"] == true => "IntOrString".into(),
        None => "Object".into(),
    }
}

/// The schema's description and, for arrays and maps, its elements'.
fn description(schemas: &Value, schema: &Value) -> Vec<String> {
    let schema = deref(schemas, schema);
    let mut out: Vec<String> =
        schema["description"].as_str().map(|d| d.lines().map(String::from).collect()).unwrap_or_default();
    let inner = element(schemas, schema);
    if !std::ptr::eq(inner, schema) {
        out.extend(inner["description"].as_str().into_iter().flat_map(|d| d.lines().map(String::from)));
    }
    out
}

/// Word-wraps `text` to lines of at most 80 columns after `indent` spaces.
fn wrap(text: &str, indent: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent + line.len() + 1 + word.len() > 80 {
            let _ = writeln!(out, "{:indent$}{line}", "");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    let _ = writeln!(out, "{:indent$}{line}", "");
    out
}

fn enum_values(schema: &Value) -> Vec<String> {
    schema["enum"].as_array().into_iter().flatten().filter(|v| !v.is_null()).map(super::jsonpath::plain).collect()
}

/// The whole explanation, laid out as kubectl's plain-text template does.
fn render(schemas: &Value, kind: &Kind, field: Option<&str>, schema: &Value, recursive: bool) -> String {
    let mut out = format!(
        "GROUP:      {}\nKIND:       {}\nVERSION:    {}\n\n",
        kind.resource.group, kind.resource.kind, kind.resource.version
    );
    if let Some(name) = field {
        let _ = writeln!(out, "FIELD: {name} <{}>", type_name(schemas, schema));
        let values = enum_values(deref(schemas, schema));
        if values.is_empty() {
            out.push_str("\n\n");
        } else {
            out.push_str("ENUM:\n");
            values.iter().for_each(|v| out.push_str(&format!("    {v}\n")));
            out.push('\n');
        }
    }
    out.push_str("DESCRIPTION:\n");
    for line in description(schemas, schema) {
        out.push_str(&wrap(&line, 4));
    }
    out.push_str("    \n");
    let container = element(schemas, schema);
    if container["properties"].as_object().is_none_or(|p| p.is_empty()) {
        out.push('\n');
        return out;
    }
    out.push_str("FIELDS:\n");
    if recursive {
        fields_recursive(&mut out, schemas, container, 2);
    } else {
        let required = required(container);
        for (name, prop) in container["properties"].as_object().into_iter().flatten() {
            let _ = writeln!(
                out,
                "  {name}\t<{}>{}",
                type_name(schemas, prop),
                if required.contains(&name.as_str()) { " -required-" } else { "" }
            );
            let values = enum_values(deref(schemas, prop));
            if !values.is_empty() {
                let _ = writeln!(out, "  enum: {}", values.join(", "));
            }
            for line in deref(schemas, prop)["description"].as_str().into_iter().flat_map(str::lines) {
                out.push_str(&wrap(line, 4));
            }
            out.push('\n');
        }
    }
    out.push('\n');
    out
}

fn required(schema: &Value) -> Vec<&str> {
    schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect()
}

/// `--recursive`: every nested field's name and type, indented by depth.
fn fields_recursive(out: &mut String, schemas: &Value, container: &Value, indent: usize) {
    let required = required(container);
    for (name, prop) in container["properties"].as_object().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{:indent$}{name}\t<{}>{}",
            "",
            type_name(schemas, prop),
            if required.contains(&name.as_str()) { " -required-" } else { "" }
        );
        let values = enum_values(deref(schemas, prop));
        if !values.is_empty() {
            let _ = writeln!(out, "{:indent$}enum: {}", "", values.join(", "));
        }
        let inner = element(schemas, prop);
        if inner["properties"].is_object() {
            fields_recursive(out, schemas, inner, indent + 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::GroupVersionKind;
    use kube::discovery::ApiResource;
    use serde_json::json;

    #[test]
    fn renders_like_kubectl() {
        let kind = Kind {
            resource: ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("tilt.dev", "v1alpha1", "Cmd"), "cmds"),
            singular: "cmd".into(),
            short_names: vec![],
            namespaced: false,
            verbs: vec![],
            categories: vec![],
        };
        let spec = json!({"description": "How to run.", "type": "object", "required": ["args"], "properties": {
            "args": {"description": "Arguments.", "type": "array", "items": {"type": "string"}},
            "policy": {"description": "When.", "type": "string", "enum": ["Never", "Always"]},
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
            "probe": {"type": "object", "properties": {"exec": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}}}}},
        }});
        let schemas = json!({});
        let text = render(&schemas, &kind, Some("spec"), &spec, false);
        assert!(text.starts_with("GROUP:      tilt.dev\nKIND:       Cmd\nVERSION:    v1alpha1\n\nFIELD: spec <Object>\n\n\nDESCRIPTION:\n    How to run.\n    \nFIELDS:\n"), "{text}");
        assert!(text.contains("  args\t<[]string> -required-\n    Arguments.\n\n"), "{text}");
        assert!(text.contains("  env\t<map[string]string>\n\n"), "{text}");
        assert!(text.contains("  policy\t<string>\n  enum: Never, Always\n    When.\n\n"), "{text}");
        let recursive = render(&schemas, &kind, Some("spec"), &spec, true);
        assert!(
            recursive.contains("  probe\t<Object>\n    exec\t<Object>\n      command\t<[]string>\n"),
            "{recursive}"
        );
        assert!(recursive.contains("  policy\t<string>\n  enum: Never, Always\n"), "{recursive}");
        let leaf = render(&schemas, &kind, Some("policy"), &spec["properties"]["policy"], false);
        assert!(
            leaf.ends_with("FIELD: policy <string>\nENUM:\n    Never\n    Always\n\nDESCRIPTION:\n    When.\n    \n\n"),
            "{leaf}"
        );
    }

    #[test]
    fn wraps_at_80_columns() {
        let text = "Objects that start (or restart) this command; with any, the command waits for one to fire.";
        assert_eq!(
            wrap(text, 4),
            "    Objects that start (or restart) this command; with any, the command waits\n    for one to fire.\n"
        );
    }
}
