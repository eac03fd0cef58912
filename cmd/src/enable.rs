//! `tilt enable` and `tilt disable`: turn resources on and off, as Go Tilt does, by writing the
//! ConfigMaps their disable sources name (`data[key] = "true"|"false"`).
//!
//! A resource's sources are listed in its UIResource's `status.disableStatus.sources`; a resource
//! that lists none uses Go Tilt's default, the ConfigMap `<resource>-disable` with key `isDisabled`.
//! The main Tiltfile's resource can never be disabled.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, bail};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use tilt_apis::{ConfigMap, ConfigMapDisableSource, UIResource};

use crate::client;
use crate::up::MAIN_TILTFILE;

/// Flags of `tilt enable`.
#[derive(clap::Args)]
pub struct EnableArgs {
    /// The resources to enable.
    resources: Vec<String>,
    /// Enable every resource.
    #[arg(long, conflicts_with_all = ["resources", "only"])]
    all: bool,
    /// Enable the named resources and disable all others.
    #[arg(long)]
    only: bool,
    /// Also enable the resources carrying any of these labels.
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
    #[command(flatten)]
    target: client::Target,
}

/// Flags of `tilt disable`.
#[derive(clap::Args)]
pub struct DisableArgs {
    /// The resources to disable.
    resources: Vec<String>,
    /// Disable every resource.
    #[arg(long, conflicts_with = "resources")]
    all: bool,
    /// Also disable the resources carrying any of these labels.
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
    #[command(flatten)]
    target: client::Target,
}

/// Runs `tilt enable`.
pub async fn enable(args: EnableArgs) -> Result<()> {
    let others = if args.only {
        Some(true)
    } else if args.all {
        Some(false)
    } else {
        None
    };
    let client = client::connect(&args.target).await?;
    change(&client, &args.resources, &args.labels, args.all, false, others).await
}

/// Runs `tilt disable`.
pub async fn disable(args: DisableArgs) -> Result<()> {
    let client = client::connect(&args.target).await?;
    change(&client, &args.resources, &args.labels, args.all, true, args.all.then_some(true)).await
}

/// Sets the named and labelled resources to `disabled`, and every other resource to `others` when set.
async fn change(
    client: &Client,
    names: &[String],
    labels: &[String],
    all: bool,
    disabled: bool,
    others: Option<bool>,
) -> Result<()> {
    if !all && names.is_empty() && labels.is_empty() {
        bail!("must specify at least one resource, --labels or --all");
    }
    let resources = Api::<UIResource>::all(client.clone()).list(&ListParams::default()).await?.items;
    let known: BTreeSet<String> = resources.iter().map(ResourceExt::name_any).collect();
    // Validate every name before changing anything.
    for name in names {
        if !known.contains(name) {
            bail!("no such resource {name:?}");
        }
        if name == MAIN_TILTFILE {
            bail!("{name} cannot be enabled or disabled");
        }
    }
    let mut selected: BTreeSet<String> = names.iter().cloned().collect();
    if !labels.is_empty() {
        let labelled: Vec<String> = resources
            .iter()
            .filter(|r| labels.iter().any(|l| r.labels().contains_key(l)))
            .map(ResourceExt::name_any)
            .collect();
        if labelled.is_empty() {
            bail!("no resources have the labels {labels:?}");
        }
        selected.extend(labelled);
    }
    let config_maps: Api<ConfigMap> = Api::all(client.clone());
    for resource in &resources {
        let name = resource.name_any();
        let Some(value) = (if selected.contains(&name) { Some(disabled) } else { others }) else { continue };
        for source in disable_sources(resource) {
            set_flag(&config_maps, &source, value).await?;
        }
    }
    Ok(())
}

/// The ConfigMap keys deciding whether `resource` is disabled (none for the main Tiltfile).
fn disable_sources(resource: &UIResource) -> Vec<ConfigMapDisableSource> {
    let name = resource.name_any();
    if name == MAIN_TILTFILE {
        return Vec::new();
    }
    let listed: Vec<ConfigMapDisableSource> = resource
        .status
        .iter()
        .flat_map(|s| &s.disable_status.sources)
        .flat_map(|s| s.config_map.iter().chain(&s.every_config_map))
        .cloned()
        .collect();
    if listed.is_empty() {
        vec![ConfigMapDisableSource { name: format!("{name}-disable"), key: "isDisabled".into() }]
    } else {
        listed
    }
}

/// Creates or updates the source's ConfigMap so its key says `disabled`.
async fn set_flag(config_maps: &Api<ConfigMap>, source: &ConfigMapDisableSource, disabled: bool) -> Result<()> {
    let value = disabled.to_string();
    match config_maps.get_opt(&tilt_apis::path_name(&source.name)).await? {
        Some(cm) if cm.data.get(&source.key) == Some(&value) => {}
        Some(_) => {
            let patch = json!({"data": {&source.key: value}});
            config_maps
                .patch(&tilt_apis::path_name(&source.name), &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        None => {
            let cm = ConfigMap::new(&source.name, BTreeMap::from([(source.key.clone(), value)]));
            config_maps.create(&PostParams::default(), &cm).await?;
        }
    }
    Ok(())
}
