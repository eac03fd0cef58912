//! A connection to the running `tilt up`: the catalog of what it serves, read from its discovery
//! documents (`/apis`, then each group's `APIResourceList`); the one place where the types and names
//! users type (`cmds`, `cmd`, `fw`, `Cmd`, `cmds.tilt.dev`; `TYPE NAME…` or `TYPE/NAME…`) are resolved;
//! and reading the objects they select.
//!
//! kube's `kube::discovery` drops short and singular names, so the catalog is built from
//! `Client::list_api_group_resources` and turned into kube [`ApiResource`]s for `Api<DynamicObject>`.

use anyhow::{Context, Result, anyhow, bail};
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{GroupVersionKind, TypeMeta};
use kube::discovery::ApiResource;
use serde_json::Value;

use crate::client;

/// One resource type the server serves.
#[derive(Debug, Clone)]
pub struct Kind {
    /// Group, version, kind and plural, for kube's dynamic API.
    pub resource: ApiResource,
    /// Singular name (`cmd`).
    pub singular: String,
    /// Short names (`fw`).
    pub short_names: Vec<String>,
    /// Whether objects live in namespaces (never, for tilt's kinds).
    pub namespaced: bool,
    /// Verbs the server supports on it.
    pub verbs: Vec<String>,
    /// Categories it belongs to (`tilt`, for `kubectl get tilt`).
    pub categories: Vec<String>,
}

impl Kind {
    /// `plural.group`, as in server messages (`cmds.tilt.dev`).
    pub fn plural_group(&self) -> String {
        with_group(&self.resource.plural, &self.resource.group)
    }

    /// `kind.group` in lower case, as in kubectl's `-o name` and messages (`cmd.tilt.dev`).
    pub fn kind_group(&self) -> String {
        with_group(&self.resource.kind.to_lowercase(), &self.resource.group)
    }

    /// A raw request builder for the kind's collection (for what `Api` does not offer, like tables).
    pub fn request(&self) -> kube::core::Request {
        kube::core::Request::new(<DynamicObject as kube::Resource>::url_path(&self.resource, None))
    }

    /// Whether `typed` (already lower-cased) names this kind: its plural, singular, kind or a short
    /// name, optionally followed by `.group` or `.version.group`.
    fn matches(&self, typed: &str) -> bool {
        let r = &self.resource;
        let kind = r.kind.to_lowercase();
        let names = [r.plural.as_str(), self.singular.as_str(), kind.as_str()]
            .into_iter()
            .chain(self.short_names.iter().map(String::as_str));
        names.filter(|n| !n.is_empty()).any(|n| {
            typed == n
                || typed.strip_prefix(n).and_then(|rest| rest.strip_prefix('.')).is_some_and(|rest| {
                    rest == r.group
                        || rest.strip_prefix(r.version.as_str()).and_then(|g| g.strip_prefix('.'))
                            == Some(r.group.as_str())
                })
        })
    }
}

fn with_group(name: &str, group: &str) -> String {
    if group.is_empty() { name.to_string() } else { format!("{name}.{group}") }
}

/// A connection to a `tilt up` with its catalog of resource types.
pub struct Cluster {
    /// The API client.
    pub client: Client,
    /// Every resource type served, sorted by plural name.
    pub kinds: Vec<Kind>,
}

impl Cluster {
    /// Connects to the `tilt up` that `target` names and reads its discovery documents.
    pub async fn connect(target: &client::Target) -> Result<Cluster> {
        let client = client::connect(target).await?;
        let kinds = discover(&client).await?;
        Ok(Cluster { client, kinds })
    }

    /// The kind a user typed (`fw`, `cmds`, `Cmd`, `cmd.tilt.dev`), or kubectl's error.
    pub fn resolve(&self, typed: &str) -> Result<&Kind> {
        let lower = typed.to_lowercase();
        self.kinds
            .iter()
            .find(|k| k.matches(&lower))
            .ok_or_else(|| anyhow!("the server doesn't have a resource type \"{typed}\""))
    }

    /// The kind of a manifest's `apiVersion` and `kind`, or kubectl's error.
    pub fn kind_of(&self, object: &serde_json::Value) -> Result<&Kind> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        if api_version.is_empty() || kind.is_empty() {
            return Err(anyhow!("object {} has no apiVersion or kind", object["metadata"]["name"]));
        }
        self.kinds
            .iter()
            .find(|k| k.resource.api_version == api_version && k.resource.kind == kind)
            .ok_or_else(|| anyhow!("no matches for kind \"{kind}\" in version \"{api_version}\""))
    }

    /// The dynamic API of `kind`.
    pub fn api(&self, kind: &Kind) -> Api<DynamicObject> {
        Api::all_with(self.client.clone(), &kind.resource)
    }
}

/// Reads the core group's (`/api`) and every other group's preferred version's resources (subresources left
/// out), ordered as kubectl orders them: by group, then by name.
async fn discover(client: &Client) -> Result<Vec<Kind>> {
    let mut versions: Vec<(String, String)> = Vec::new();
    if let Some(core) = client.list_core_api_versions().await?.versions.into_iter().next() {
        versions.push((String::new(), core));
    }
    for group in client.list_api_groups().await?.groups {
        if let Some(gv) = group.preferred_version.or_else(|| group.versions.into_iter().next()) {
            versions.push((group.name, gv.version));
        }
    }
    let mut kinds = Vec::new();
    for (group, version) in versions {
        let list = if group.is_empty() {
            client.list_core_api_resources(&version).await?
        } else {
            client.list_api_group_resources(&format!("{group}/{version}")).await?
        };
        for r in list.resources.into_iter().filter(|r| !r.name.contains('/')) {
            let gvk = GroupVersionKind::gvk(&group, &version, &r.kind);
            kinds.push(Kind {
                resource: ApiResource::from_gvk_with_plural(&gvk, &r.name),
                singular: r.singular_name,
                short_names: r.short_names.unwrap_or_default(),
                namespaced: r.namespaced,
                verbs: r.verbs,
                categories: r.categories.unwrap_or_default(),
            });
        }
    }
    kinds.sort_by(|a, b| (&a.resource.group, &a.resource.plural).cmp(&(&b.resource.group, &b.resource.plural)));
    Ok(kinds)
}

/// Label and field selector flags.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Filter {
    /// Label selector, e.g. `-l tilt.dev/resource=a,env!=prod`.
    #[arg(short = 'l', long = "selector")]
    pub selector: Option<String>,
    /// Field selector, e.g. `--field-selector metadata.name=a`.
    #[arg(long)]
    pub field_selector: Option<String>,
}

impl Filter {
    /// The list parameters these selectors make.
    pub fn list_params(&self) -> ListParams {
        let mut lp = ListParams::default();
        if let Some(l) = &self.selector {
            lp = lp.labels(l);
        }
        if let Some(f) = &self.field_selector {
            lp = lp.fields(f);
        }
        lp
    }

    /// Whether a selector was given.
    pub fn is_set(&self) -> bool {
        self.selector.is_some() || self.field_selector.is_some()
    }
}

/// Objects of one kind named on the command line; no names means every object (that the filter allows).
pub struct Selection<'c> {
    /// The kind.
    pub kind: &'c Kind,
    /// The names; empty for all.
    pub names: Vec<String>,
}

impl Cluster {
    /// Resolves `TYPE[,TYPE…] [NAME…]` or `TYPE/NAME…` (kubectl's two forms), keeping their order.
    pub fn select(&self, args: &[String]) -> Result<Vec<Selection<'_>>> {
        let Some(first) = args.first() else {
            bail!(
                "you must specify the type of resource. Use \"tilt api-resources\" for a complete list of supported resources"
            );
        };
        let mut out: Vec<Selection<'_>> = Vec::new();
        if args.iter().any(|a| a.contains('/')) {
            for arg in args {
                let Some((typed, name)) = arg.split_once('/') else {
                    bail!(
                        "there is no need to specify a resource type as a separate argument when passing arguments in \
                         resource/name form (e.g. 'tilt get resource/<resource_name>' instead of \
                         'tilt get resource resource/<resource_name>'"
                    );
                };
                if name.is_empty() {
                    bail!("arguments in resource/name form must have a single resource and name");
                }
                let kind = self.resolve(typed)?;
                match out.iter_mut().find(|s| std::ptr::eq(s.kind, kind)) {
                    Some(s) => s.names.push(name.to_string()),
                    None => out.push(Selection { kind, names: vec![name.to_string()] }),
                }
            }
            return Ok(out);
        }
        for typed in first.split(',').filter(|t| !t.is_empty()) {
            let kind = self.resolve(typed)?;
            if !out.iter().any(|s| std::ptr::eq(s.kind, kind)) {
                out.push(Selection { kind, names: args[1..].to_vec() });
            }
        }
        Ok(out)
    }

    /// The selected objects as JSON: each name fetched (a missing one is the server's NotFound), or the
    /// filtered list when no names were given.
    pub async fn fetch(&self, selection: &Selection<'_>, filter: &Filter) -> Result<Fetched> {
        let api = self.api(selection.kind);
        let (objects, resource_version) = if selection.names.is_empty() {
            let list = api.list(&filter.list_params()).await?;
            (list.items, list.metadata.resource_version.unwrap_or_default())
        } else {
            let mut objects = Vec::new();
            for name in &selection.names {
                objects.push(api.get(&tilt_apis::path_name(name)).await?);
            }
            let rv = objects
                .iter()
                .filter_map(|o| o.metadata.resource_version.clone())
                .max_by_key(|rv| rv.parse::<u64>().unwrap_or(0));
            (objects, rv.unwrap_or_default())
        };
        let objects = objects.into_iter().map(|o| to_value(selection.kind, o)).collect::<Result<_>>()?;
        Ok(Fetched { objects, resource_version })
    }
}

/// Objects read by [`Cluster::fetch`].
pub struct Fetched {
    /// The objects, as JSON.
    pub objects: Vec<Value>,
    /// The resource version they were read at, to watch from.
    pub resource_version: String,
}

/// An object as JSON, with `apiVersion` and `kind` filled in (list items may leave them out).
pub fn to_value(kind: &Kind, mut object: DynamicObject) -> Result<Value> {
    if object.types.as_ref().is_none_or(|t| t.kind.is_empty()) {
        object.types =
            Some(TypeMeta { api_version: kind.resource.api_version.clone(), kind: kind.resource.kind.clone() });
    }
    serde_json::to_value(object).context("encoding an object")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind() -> Kind {
        Kind {
            resource: ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("tilt.dev", "v1alpha1", "FileWatch"),
                "filewatches",
            ),
            singular: "filewatch".into(),
            short_names: vec!["fw".into()],
            namespaced: false,
            verbs: vec![],
            categories: vec![],
        }
    }

    #[test]
    fn names_that_resolve() {
        let k = kind();
        for typed in
            ["filewatches", "filewatch", "fw", "filewatches.tilt.dev", "fw.tilt.dev", "filewatch.v1alpha1.tilt.dev"]
        {
            assert!(k.matches(typed), "{typed}");
        }
        for typed in ["filewatchesx", "fw.other.dev", "f", "filewatches.v1.tilt.dev"] {
            assert!(!k.matches(typed), "{typed}");
        }
        assert_eq!((k.plural_group(), k.kind_group()), ("filewatches.tilt.dev".into(), "filewatch.tilt.dev".into()));
    }
}
