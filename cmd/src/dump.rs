//! `tilt dump engine|webview`: the running `tilt up`'s state as one JSON document, for debugging and
//! bug reports.
//!
//! - `engine`: every object of every kind the server serves, as `{"<plural>": [objects…], …}`, each
//!   list sorted by name (a kind with no objects has an empty list).
//! - `webview`: what the web UI renders: `{"uiSession": …, "uiResources": […], "uiButtons": […],
//!   "session": …}`.

use anyhow::Result;
use serde_json::{Map, Value};

use crate::client;
use crate::resources::cluster::{Cluster, Filter, Selection};
use crate::resources::output::{emit, to_json};

/// What to dump.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Dump {
    /// Every object of every kind.
    Engine,
    /// The UI's resources, buttons, UI session and session.
    Webview,
}

/// Flags of `tilt dump`.
#[derive(clap::Args)]
pub struct DumpArgs {
    /// What to dump.
    #[arg(value_enum)]
    what: Dump,
    #[command(flatten)]
    target: client::Target,
}

/// Runs `tilt dump`.
pub async fn dump(args: DumpArgs) -> Result<()> {
    let cluster = Cluster::connect(&args.target).await?;
    let doc = match args.what {
        Dump::Engine => {
            let mut doc = Map::new();
            for kind in &cluster.kinds {
                doc.insert(kind.resource.plural.clone(), Value::Array(all(&cluster, &kind.resource.plural).await?));
            }
            Value::Object(doc)
        }
        Dump::Webview => {
            let first = |mut objects: Vec<Value>| if objects.is_empty() { Value::Null } else { objects.swap_remove(0) };
            let mut doc = Map::new();
            doc.insert("uiSession".into(), first(all(&cluster, "uisessions").await?));
            doc.insert("uiResources".into(), Value::Array(all(&cluster, "uiresources").await?));
            doc.insert("uiButtons".into(), Value::Array(all(&cluster, "uibuttons").await?));
            doc.insert("session".into(), first(all(&cluster, "sessions").await?));
            Value::Object(doc)
        }
    };
    emit(&format!("{}\n", to_json(&doc)));
    Ok(())
}

/// Every object of the resource type `plural`, sorted by name.
async fn all(cluster: &Cluster, plural: &str) -> Result<Vec<Value>> {
    let selection = Selection { kind: cluster.resolve(plural)?, names: Vec::new() };
    let mut objects = cluster.fetch(&selection, &Filter::default()).await?.objects;
    objects.sort_by(|a, b| a["metadata"]["name"].as_str().cmp(&b["metadata"]["name"].as_str()));
    Ok(objects)
}
