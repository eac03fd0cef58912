//! `tilt get`: like `kubectl get`. Tables are the server's own (`as=Table`), so the columns are the
//! ones each kind defines; `-o` formats go through [`super::output`]. `-w` keeps watching (from the
//! listed resource version, so no change is missed) and prints each change as a row or object.

use anyhow::{Result, bail};
use futures::TryStreamExt;
use http::header::{ACCEPT, HeaderValue};
use kube::api::{GetParams, WatchEvent, WatchParams};
use serde_json::Value;

use super::cluster::{Cluster, Filter, Selection};
use super::output::{Format, OutputArgs, Printer, ServerTable, TextTable, custom_columns, emit, render_row};
use crate::client;

/// What kubectl asks for to get the server's tables.
pub const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

/// Flags of `tilt get`.
#[derive(clap::Args)]
pub struct GetArgs {
    /// `TYPE[,TYPE…] [NAME…]` or `TYPE/NAME…`, e.g. `cmds`, `fw a b`, `uiresource/a`.
    #[arg(value_name = "TYPE NAME | TYPE/NAME")]
    args: Vec<String>,
    #[command(flatten)]
    filter: Filter,
    #[command(flatten)]
    output: OutputArgs,
    /// After listing, watch for changes and print them.
    #[arg(short = 'w', long)]
    watch: bool,
    /// Watch for changes without listing first.
    #[arg(long)]
    watch_only: bool,
    #[command(flatten)]
    target: client::Target,
}

/// Runs `tilt get`.
pub async fn get(args: GetArgs) -> Result<()> {
    if args.args.is_empty() {
        bail!(
            "you must specify the type of resource to get. Use \"tilt api-resources\" for a complete list of supported resources"
        );
    }
    let cluster = Cluster::connect(&args.target).await?;
    let selections = cluster.select(&args.args)?;
    let printer = Printer::new(&args.output);
    let watching = args.watch || args.watch_only;
    let objects_asked = selections.iter().map(|s| s.names.len().max(1)).sum::<usize>();
    if watching && objects_asked > 1 {
        bail!(
            "watch is only supported on individual resources and resource collections, but {objects_asked} resources were found"
        );
    }
    let mut watch = WatchPrint {
        printer: &printer,
        widths: Vec::new(),
        header: false,
        prefix: printer.show_kind().then(|| selections[0].kind.kind_group()),
    };
    let resource_version = if printer.is_table() {
        print_tables(&cluster, &selections, &args, &mut watch).await?
    } else {
        print_objects(&cluster, &selections, &args, &mut watch).await?
    };
    if watching {
        follow(&cluster, &selections[0], &args.filter, resource_version, &mut watch).await?;
    }
    Ok(())
}

/// Prints the server's tables, one per kind; returns the resource version to watch from.
async fn print_tables(
    cluster: &Cluster,
    selections: &[Selection<'_>],
    args: &GetArgs,
    watch: &mut WatchPrint<'_>,
) -> Result<String> {
    let printer = watch.printer;
    let mut tables = Vec::new();
    let mut rv = String::new();
    for selection in selections {
        let table = fetch_table(cluster, selection, &args.filter).await?;
        rv = table.resource_version();
        let prefix = (selections.len() > 1 || printer.show_kind()).then(|| selection.kind.kind_group());
        let text = printer.text_table(&table, prefix.as_deref());
        watch.widths = text.widths();
        if !text.rows.is_empty() {
            tables.push(text);
        }
    }
    if !args.watch_only {
        emit(&printer.render_tables(&tables));
        if tables.is_empty() && selections.iter().all(|s| s.names.is_empty()) {
            eprintln!("No resources found");
        }
    }
    // Without a listed row, the first watched row brings the header and sets the widths.
    watch.header = !tables.is_empty() && !args.watch_only;
    Ok(rv)
}

/// Prints the objects in a `-o` format; returns the resource version to watch from.
async fn print_objects(
    cluster: &Cluster,
    selections: &[Selection<'_>],
    args: &GetArgs,
    watch: &mut WatchPrint<'_>,
) -> Result<String> {
    let printer = watch.printer;
    let mut objects = Vec::new();
    let mut rv = String::new();
    for selection in selections {
        let fetched = cluster.fetch(selection, &args.filter).await?;
        objects.extend(fetched.objects);
        rv = fetched.resource_version;
    }
    if let Format::CustomColumns(cols) = &printer.format {
        watch.widths = custom_columns(cols, &objects)?.widths();
    }
    if args.watch_only {
        return Ok(rv);
    }
    let named: Vec<&String> = selections.iter().flat_map(|s| &s.names).collect();
    if objects.is_empty() && named.is_empty() && !matches!(printer.format, Format::Json | Format::Yaml) {
        eprintln!("No resources found");
    } else {
        // One object asked for by name prints as itself, anything else as a List.
        emit(&printer.objects(&objects, selections.len() == 1 && named.len() == 1)?);
    }
    Ok(rv)
}

/// GETs the server's table for the selection: one list, or one table per name merged.
async fn fetch_table(cluster: &Cluster, selection: &Selection<'_>, filter: &Filter) -> Result<ServerTable> {
    let request = selection.kind.request();
    if selection.names.is_empty() {
        return table(cluster, request.list(&filter.list_params())?).await;
    }
    let mut merged: Option<ServerTable> = None;
    for name in &selection.names {
        let t = table(cluster, request.get(&tilt_apis::path_name(name), &GetParams::default())?).await?;
        match &mut merged {
            Some(m) => m.rows.extend(t.rows),
            None => merged = Some(t),
        }
    }
    Ok(merged.unwrap_or_default())
}

async fn table(cluster: &Cluster, mut request: http::Request<Vec<u8>>) -> Result<ServerTable> {
    request.headers_mut().insert(ACCEPT, HeaderValue::from_static(TABLE_ACCEPT));
    Ok(cluster.client.request::<ServerTable>(request).await?)
}

/// How `-w` prints what it sees.
struct WatchPrint<'p> {
    printer: &'p Printer,
    /// Column widths of what was listed, so watched rows line up with it.
    widths: Vec<usize>,
    /// Whether the table header was printed already.
    header: bool,
    /// What goes before names in table rows (`--show-kind`).
    prefix: Option<String>,
}

impl WatchPrint<'_> {
    /// Prints an event's object (a one-row table in the table formats).
    fn print(&mut self, object: &Value) -> Result<()> {
        if !self.printer.is_table() {
            emit(&self.printer.watched(object, &self.widths)?);
            return Ok(());
        }
        let table: ServerTable = serde_json::from_value(object.clone())?;
        let text = self.printer.text_table(&table, self.prefix.as_deref());
        if !self.header {
            self.header = true;
            self.widths = text.widths();
            emit(&self.printer.render(&TextTable { header: text.header.clone(), rows: Vec::new() }));
        }
        emit(&text.rows.iter().map(|r| render_row(r, &self.widths)).collect::<String>());
        Ok(())
    }
}

/// Watches the selection from `resource_version` until interrupted, re-watching when the server ends a
/// watch.
async fn follow(
    cluster: &Cluster,
    selection: &Selection<'_>,
    filter: &Filter,
    resource_version: String,
    out: &mut WatchPrint<'_>,
) -> Result<()> {
    let mut params = WatchParams::default().timeout(290);
    if let Some(labels) = &filter.selector {
        params = params.labels(labels);
    }
    let fields: Vec<String> = filter
        .field_selector
        .iter()
        .cloned()
        .chain(selection.names.iter().map(|n| format!("metadata.name={n}")))
        .collect();
    if !fields.is_empty() {
        params = params.fields(&fields.join(","));
    }
    let request = selection.kind.request();
    let mut rv = resource_version;
    loop {
        let mut req = request.watch(&params, &rv)?;
        if out.printer.is_table() {
            req.headers_mut().insert(ACCEPT, HeaderValue::from_static(TABLE_ACCEPT));
        }
        let events = cluster.client.request_events::<Value>(req).await?;
        futures::pin_mut!(events);
        while let Some(event) = events.try_next().await? {
            match event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
                    if let Some(v) = event_version(&o) {
                        rv = v;
                    }
                    out.print(&o)?;
                }
                WatchEvent::Bookmark(b) => rv = b.metadata.resource_version,
                WatchEvent::Error(status) => return Err(kube::Error::Api(status).into()),
            }
        }
    }
}

/// The resource version of a watched object or one-row table.
fn event_version(object: &Value) -> Option<String> {
    let of = |v: &Value| v["metadata"]["resourceVersion"].as_str().filter(|s| !s.is_empty()).map(String::from);
    of(object).or_else(|| object["rows"].as_array()?.iter().filter_map(|r| of(&r["object"])).next_back())
}
