//! The one output layer of the kubectl-twin commands: `-o json|yaml|wide|name|jsonpath=…|custom-columns=…`
//! and the default table, for `get`, `apply`, `patch`, `api-resources` and anything else that prints
//! objects or rows.
//!
//! Tables come from the server (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, as kubectl asks),
//! so each kind's columns are defined once, next to its type. Text tables are laid out like kubectl's
//! tabwriter (cells padded by 3, at least 6 wide, the last column unpadded). JSON is indented by four
//! spaces and lists are wrapped in a `v1 List`, as kubectl does; `metadata.managedFields` is left out
//! unless asked for.

use std::fmt::Write as _;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::jsonpath::Template;

/// An output format (`-o`).
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    /// The server's table, columns of priority 0.
    Table,
    /// The server's table, every column.
    Wide,
    /// JSON: the object, or a `List` of objects.
    Json,
    /// YAML: the object, or a `List` of objects.
    Yaml,
    /// `kind.group/name`, one per line.
    Name,
    /// A kubectl JSONPath template applied to the object or `List`.
    JsonPath(Template),
    /// Columns `HEADER:path`, one row per object.
    CustomColumns(Vec<(String, Template)>),
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        let (name, arg) = s.split_once('=').unwrap_or((s, ""));
        match name {
            "" | "table" => Ok(Format::Table),
            "wide" => Ok(Format::Wide),
            "json" => Ok(Format::Json),
            "yaml" => Ok(Format::Yaml),
            "name" => Ok(Format::Name),
            "jsonpath" if arg.is_empty() => {
                Err("jsonpath: a template is required, e.g. -o jsonpath='{.metadata.name}'".into())
            }
            "jsonpath" => Template::parse(arg).map(Format::JsonPath).map_err(|e| format!("{e:#}")),
            "custom-columns" => parse_columns(arg).map(Format::CustomColumns).map_err(|e| format!("{e:#}")),
            _ => Err(format!(
                "unable to match a printer suitable for the output format {s:?}, allowed formats are: \
                 custom-columns,json,jsonpath,name,wide,yaml"
            )),
        }
    }
}

fn parse_columns(spec: &str) -> Result<Vec<(String, Template)>> {
    if spec.is_empty() {
        bail!("custom-columns format specified but no custom columns given");
    }
    spec.split(',')
        .map(|col| {
            let (header, path) = col.split_once(':').with_context(|| {
                format!("unexpected custom-columns spec: {col}, expected <header>:<json-path-expr>")
            })?;
            Ok((header.to_string(), Template::relaxed(path)?))
        })
        .collect()
}

/// The output flags shared by the commands that print objects.
#[derive(clap::Args, Debug, Clone)]
pub struct OutputArgs {
    /// Output format: json, yaml, wide, name, jsonpath=TEMPLATE or custom-columns=HEADER:PATH,….
    #[arg(short = 'o', long = "output", value_parser = Format::from_str)]
    pub output: Option<Format>,
    /// Print tables without their header line.
    #[arg(long)]
    pub no_headers: bool,
    /// Add a LABELS column to tables.
    #[arg(long)]
    pub show_labels: bool,
    /// Prefix names in tables with their kind (always on when several kinds are printed).
    #[arg(long)]
    pub show_kind: bool,
    /// Keep `metadata.managedFields` in JSON and YAML output.
    #[arg(long)]
    pub show_managed_fields: bool,
}

/// Prints objects and tables in the format the flags ask for.
#[derive(Debug, Clone)]
pub struct Printer {
    /// The format.
    pub format: Format,
    no_headers: bool,
    show_labels: bool,
    show_kind: bool,
    show_managed_fields: bool,
}

/// A `meta.k8s.io/v1 Table` as the server sends it.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServerTable {
    /// The columns.
    #[serde(default)]
    pub column_definitions: Vec<ColumnDefinition>,
    /// One row per object.
    #[serde(default)]
    pub rows: Vec<TableRow>,
    /// The list's metadata (its `resourceVersion`).
    #[serde(default)]
    pub metadata: Value,
}

/// One column of a [`ServerTable`].
#[derive(Deserialize, Debug, Clone, Default)]
pub struct ColumnDefinition {
    /// Column title, e.g. `Created At`.
    pub name: String,
    /// `name` for the object-name column.
    #[serde(default)]
    pub format: String,
    /// 0: always shown; higher: only with `-o wide`.
    #[serde(default)]
    pub priority: i64,
}

/// One row of a [`ServerTable`].
#[derive(Deserialize, Debug, Clone, Default)]
pub struct TableRow {
    /// Cell values, one per column.
    #[serde(default)]
    pub cells: Vec<Value>,
    /// The object's metadata (a `PartialObjectMetadata`), when included.
    #[serde(default)]
    pub object: Option<Value>,
}

impl ServerTable {
    /// The list's `resourceVersion`, to watch from.
    pub fn resource_version(&self) -> String {
        self.metadata["resourceVersion"].as_str().unwrap_or_default().to_string()
    }
}

/// Rows of text cells with an optional header, laid out like kubectl's tabwriter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextTable {
    /// Column titles.
    pub header: Vec<String>,
    /// Cells, row by row.
    pub rows: Vec<Vec<String>>,
}

/// kubectl's tabwriter settings: minimum cell width and padding.
const MIN_WIDTH: usize = 6;
const PADDING: usize = 3;

impl TextTable {
    /// Column widths (padding included) that fit the header and every row.
    pub fn widths(&self) -> Vec<usize> {
        widths(std::iter::once(&self.header).chain(&self.rows))
    }

    /// The table as text, one line per row, the header first unless `no_headers` (then the header
    /// does not widen the columns either).
    pub fn render(&self, no_headers: bool) -> String {
        let with_header = !no_headers && !self.header.is_empty();
        let widths = if with_header { self.widths() } else { widths(&self.rows) };
        let mut out = String::new();
        if with_header {
            out.push_str(&render_row(&self.header, &widths));
        }
        for row in &self.rows {
            out.push_str(&render_row(row, &widths));
        }
        out
    }
}

/// Like Go's tabwriter: a row's last cell is not aligned, so it does not widen its column.
fn widths<'a>(rows: impl IntoIterator<Item = &'a Vec<String>>) -> Vec<usize> {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            if i >= widths.len() {
                widths.push(0);
            }
            widths[i] = widths[i].max((cell.chars().count() + PADDING).max(MIN_WIDTH));
        }
    }
    widths
}

/// One line of cells padded to `widths` (cells wider than their column push the rest right).
pub fn render_row(cells: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i + 1 == cells.len() {
            line.push_str(cell);
        } else {
            let width = widths.get(i).copied().unwrap_or(0).max(cell.chars().count() + PADDING);
            let _ = write!(line, "{cell:<width$}");
        }
    }
    line.push('\n');
    line
}

impl Printer {
    /// A printer for the given flags (the server's table when no `-o`).
    pub fn new(args: &OutputArgs) -> Printer {
        Printer {
            format: args.output.clone().unwrap_or(Format::Table),
            no_headers: args.no_headers,
            show_labels: args.show_labels,
            show_kind: args.show_kind,
            show_managed_fields: args.show_managed_fields,
        }
    }

    /// Whether this prints the server's table (default or `-o wide`).
    pub fn is_table(&self) -> bool {
        matches!(self.format, Format::Table | Format::Wide)
    }

    /// Whether this prints `kind.group/name` instead of bare names in tables.
    pub fn show_kind(&self) -> bool {
        self.show_kind
    }

    /// Converts a server table into text rows. `kind_prefix` (`cmd.tilt.dev`) goes before names when set.
    pub fn text_table(&self, table: &ServerTable, kind_prefix: Option<&str>) -> TextTable {
        let shown: Vec<usize> = table
            .column_definitions
            .iter()
            .enumerate()
            .filter(|(_, c)| c.priority == 0 || self.format == Format::Wide)
            .map(|(i, _)| i)
            .collect();
        let mut header: Vec<String> = shown.iter().map(|&i| table.column_definitions[i].name.to_uppercase()).collect();
        if self.show_labels {
            header.push("LABELS".into());
        }
        let rows = table
            .rows
            .iter()
            .map(|row| {
                let mut cells: Vec<String> = shown
                    .iter()
                    .map(|&i| {
                        let text = row.cells.get(i).map(cell_text).unwrap_or_else(|| "<none>".into());
                        match kind_prefix {
                            Some(prefix) if table.column_definitions[i].format == "name" => format!("{prefix}/{text}"),
                            _ => text,
                        }
                    })
                    .collect();
                if self.show_labels {
                    cells.push(labels_text(
                        row.object.as_ref().map(|o| &o["metadata"]["labels"]).unwrap_or(&Value::Null),
                    ));
                }
                cells
            })
            .collect();
        TextTable { header, rows }
    }

    /// Renders a text table with this printer's header setting.
    pub fn render(&self, table: &TextTable) -> String {
        table.render(self.no_headers)
    }

    /// Renders one table per kind as kubectl does: separated by a blank line, or, without headers, as
    /// one run of lines whose columns line up across kinds.
    pub fn render_tables(&self, tables: &[TextTable]) -> String {
        // kubectl aligns each kind's rows on their own, with or without headers.
        if self.no_headers {
            return tables.iter().map(|t| t.render(true)).collect();
        }
        tables.iter().map(|t| t.render(false)).collect::<Vec<_>>().join("\n")
    }

    /// Prints `objects` in a non-table format: as one object when `single`, else as a `List`.
    /// (The table formats print a NAME column here; `get` uses the server's tables instead.)
    pub fn objects(&self, objects: &[Value], single: bool) -> Result<String> {
        let objects: Vec<Value> = objects.iter().map(|o| self.prepare(o)).collect();
        let doc = match (single, objects.as_slice()) {
            (true, [one]) => one.clone(),
            _ => list(objects.clone()),
        };
        Ok(match &self.format {
            Format::Json => format!("{}\n", to_json(&doc)),
            Format::Yaml => to_yaml(&doc)?,
            Format::Name => objects.iter().map(|o| format!("{}\n", qualified_name(o))).collect(),
            Format::JsonPath(t) => t.render(&doc)?,
            Format::CustomColumns(cols) => self.render(&custom_columns(cols, &objects)?),
            Format::Table | Format::Wide => {
                let rows = objects.iter().map(|o| vec![qualified_name(o)]).collect();
                self.render(&TextTable { header: vec!["NAME".into()], rows })
            }
        })
    }

    /// Prints one object seen by a watch (`get -w` in a non-table format).
    pub fn watched(&self, object: &Value, widths: &[usize]) -> Result<String> {
        let object = self.prepare(object);
        Ok(match &self.format {
            Format::Yaml => format!("---\n{}", to_yaml(&object)?),
            Format::CustomColumns(cols) => {
                let table = custom_columns(cols, std::slice::from_ref(&object))?;
                table.rows.iter().map(|r| render_row(r, widths)).collect()
            }
            _ => self.objects(std::slice::from_ref(&object), true)?,
        })
    }

    /// The object as printed: without `metadata.managedFields` unless asked for.
    fn prepare(&self, object: &Value) -> Value {
        let mut object = object.clone();
        if !self.show_managed_fields
            && let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.remove("managedFields");
        }
        object
    }
}

/// Writes `text` to stdout as is; a closed stdout (`tilt get cmds | head -1`) is not an error.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// A cell as kubectl prints it (nothing for null).
fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        other => super::jsonpath::plain(other),
    }
}

/// `a=b,c=d`, or `<none>`.
fn labels_text(labels: &Value) -> String {
    match labels.as_object() {
        Some(map) if !map.is_empty() => {
            map.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect::<Vec<_>>().join(",")
        }
        _ => "<none>".into(),
    }
}

/// The table of `-o custom-columns=`: several results of one path joined by commas, none as `<none>`.
pub fn custom_columns(cols: &[(String, Template)], objects: &[Value]) -> Result<TextTable> {
    let header = cols.iter().map(|(h, _)| h.clone()).collect();
    let rows = objects
        .iter()
        .map(|o| {
            cols.iter()
                .map(|(_, t)| {
                    let values = t.values(o)?;
                    Ok(if values.is_empty() {
                        "<none>".into()
                    } else {
                        values.iter().map(go_format).collect::<Vec<_>>().join(",")
                    })
                })
                .collect::<Result<Vec<String>>>()
        })
        .collect::<Result<_>>()?;
    Ok(TextTable { header, rows })
}

/// A value as Go's `%v` prints decoded JSON (kubectl's custom columns): `[a b]`, `map[k:v]`.
pub fn go_format(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(go_format).collect::<Vec<_>>().join(" ")),
        Value::Object(map) => {
            format!("map[{}]", map.iter().map(|(k, v)| format!("{k}:{}", go_format(v))).collect::<Vec<_>>().join(" "))
        }
        other => other.to_string(),
    }
}

/// A `v1 List` holding `items`, as kubectl prints several objects.
pub fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}})
}

/// `kind.group/name` (kubectl's `-o name`), e.g. `cmd.tilt.dev/a:serve`.
pub fn qualified_name(object: &Value) -> String {
    format!("{}/{}", kind_group(object), object["metadata"]["name"].as_str().unwrap_or_default())
}

/// `kind.group` of an object, e.g. `cmd.tilt.dev` (just `kind` in the core group).
fn kind_group(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or_default().to_lowercase();
    match object["apiVersion"].as_str().and_then(|v| v.split_once('/')) {
        Some((group, _)) => format!("{kind}.{group}"),
        None => kind,
    }
}

/// JSON indented by four spaces, as kubectl prints it.
pub fn to_json(value: &Value) -> String {
    let mut out = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(b"    "));
    value.serialize(&mut ser).expect("JSON values serialize");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// One YAML document.
pub fn to_yaml(value: &Value) -> Result<String> {
    tilt_apis::yaml::to_string(value).context("encoding YAML")
}

/// Reads manifests: JSON (an object or array) or a YAML stream; `List` objects are expanded into their
/// items and empty documents skipped.
pub fn parse_manifests(text: &str) -> Result<Vec<Value>> {
    let trimmed = text.trim_start();
    let docs: Vec<Value> = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        match serde_json::from_str::<Value>(text).context("parsing JSON")? {
            Value::Array(items) => items,
            one => vec![one],
        }
    } else {
        serde_saphyr::from_multiple::<Value>(text).context("parsing YAML")?
    };
    let mut out = Vec::new();
    for doc in docs {
        match doc {
            Value::Null => {}
            Value::Object(ref map)
                if map.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"))
                    && map.contains_key("items") =>
            {
                out.extend(map["items"].as_array().cloned().unwrap_or_default());
            }
            Value::Object(_) => out.push(doc),
            other => bail!("expected an object, found {other}"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printer(format: &str) -> Printer {
        Printer::new(&OutputArgs {
            output: Some(format.parse().unwrap()),
            no_headers: false,
            show_labels: false,
            show_kind: false,
            show_managed_fields: false,
        })
    }

    fn cmd(name: &str) -> Value {
        json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "Cmd", "metadata": {"name": name, "managedFields": [{}]}, "spec": {"args": ["sh", "-c", "x"], "n": 2}})
    }

    #[test]
    fn formats_parse() {
        assert_eq!("json".parse::<Format>().unwrap(), Format::Json);
        assert!(matches!("jsonpath={.a}".parse::<Format>().unwrap(), Format::JsonPath(_)));
        assert!(
            matches!("custom-columns=N:.metadata.name,A:{.spec.args}".parse::<Format>().unwrap(), Format::CustomColumns(c) if c.len() == 2)
        );
        assert!("custom-columns=N".parse::<Format>().is_err());
        assert!("xml".parse::<Format>().unwrap_err().contains("allowed formats"));
    }

    #[test]
    fn tables_align_like_kubectl() {
        let t = TextTable {
            header: vec!["NAME".into(), "CREATED AT".into()],
            rows: vec![vec!["a:serve".into(), "2026".into()]],
        };
        assert_eq!(t.render(false), "NAME      CREATED AT\na:serve   2026\n");
        assert_eq!(t.render(true), "a:serve   2026\n");
        let tiny =
            TextTable { header: vec!["NAMESPACED".into(), "K".into()], rows: vec![vec!["false".into(), "x".into()]] };
        assert_eq!(tiny.render(true), "false   x\n", "without headers, only the rows set the widths");
        let narrow = TextTable { header: vec!["A".into(), "B".into()], rows: vec![vec!["x".into(), "y".into()]] };
        assert_eq!(narrow.render(false), "A     B\nx     y\n", "cells are at least 6 wide");
        let ragged = [
            t.clone(),
            TextTable { header: vec!["NAME".into()], rows: vec![vec!["long-name-x".into(), "1".into(), "2".into()]] },
        ];
        let mut p = printer("table");
        assert_eq!(p.render_tables(&ragged), "NAME      CREATED AT\na:serve   2026\n\nNAME\nlong-name-x   1     2\n");
        p.no_headers = true;
        assert_eq!(p.render_tables(&ragged), "a:serve   2026\nlong-name-x   1     2\n", "each kind aligned on its own");
        let longer = TextTable { header: t.header.clone(), rows: vec![vec!["b:update".into(), "2026".into()]] };
        assert_eq!(longer.render(false), "NAME       CREATED AT\nb:update   2026\n", "as kubectl lays out `get cmds`");
    }

    #[test]
    fn server_tables_hide_wide_columns_and_prefix_kinds() {
        let table: ServerTable = serde_json::from_value(json!({
            "columnDefinitions": [{"name": "Name", "format": "name", "priority": 0}, {"name": "Args", "priority": 1}],
            "rows": [{"cells": ["a", "[x]"], "object": {"metadata": {"labels": {"k": "v"}}}}],
        }))
        .unwrap();
        let narrow = printer("table").text_table(&table, Some("cmd.tilt.dev"));
        assert_eq!(narrow.rows, [["cmd.tilt.dev/a"]]);
        let mut wide = printer("wide");
        wide.show_labels = true;
        let t = wide.text_table(&table, None);
        assert_eq!(t.header, ["NAME", "ARGS", "LABELS"]);
        assert_eq!(t.rows, [["a", "[x]", "k=v"]]);
    }

    #[test]
    fn objects_in_every_format() {
        let objs = [cmd("a"), cmd("b")];
        let one: Value = serde_json::from_str(&printer("json").objects(&objs[..1], true).unwrap()).unwrap();
        assert_eq!(one["metadata"], json!({"name": "a"}), "managedFields are left out");
        let list: Value = serde_json::from_str(&printer("json").objects(&objs, false).unwrap()).unwrap();
        assert_eq!((list["kind"].as_str(), list["items"].as_array().map(Vec::len)), (Some("List"), Some(2)));
        let yaml = printer("yaml").objects(&objs[..1], true).unwrap();
        assert!(yaml.contains("\"n\": 2") && yaml.contains("- sh"), "{yaml}");
        assert_eq!(parse_manifests(&yaml).unwrap()[0]["spec"]["n"], 2);
        assert_eq!(printer("name").objects(&objs, false).unwrap(), "cmd.tilt.dev/a\ncmd.tilt.dev/b\n");
        assert_eq!(printer("jsonpath={.items[*].metadata.name}").objects(&objs, false).unwrap(), "a b");
        assert_eq!(
            printer("custom-columns=NAME:.metadata.name,ARGS:.spec.args,X:.nope").objects(&objs, false).unwrap(),
            "NAME   ARGS        X\na      [sh -c x]   <none>\nb      [sh -c x]   <none>\n"
        );
    }

    #[test]
    fn manifests_from_yaml_json_and_lists() {
        let docs = parse_manifests("a: 1\n---\n---\nkind: List\nitems:\n- b: 2\n- c: 3\n").unwrap();
        assert_eq!(docs, [json!({"a": 1}), json!({"b": 2}), json!({"c": 3})]);
        assert_eq!(parse_manifests(r#"[{"a": 1}]"#).unwrap(), [json!({"a": 1})]);
        assert!(parse_manifests("- 1\n").is_err());
    }
}
