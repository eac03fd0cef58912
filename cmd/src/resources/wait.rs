//! `tilt wait`: like `kubectl wait` — `--for=condition=Ready[=true]`, `--for=jsonpath='{.path}'[=value]`,
//! `--for=delete` or `--for=create`, on named objects or all that a selector (or `--all`) matches, for at
//! most `--timeout` overall. Each object is watched (no polling); a timeout is an error naming the
//! objects still waited for.

use std::str::FromStr;
use std::time::Duration;

use anyhow::{Result, bail};
use kube::api::{Api, DynamicObject};
use kube::runtime::wait::await_condition;
use serde_json::Value;

use super::cluster::{Cluster, Filter, Kind, to_value};
use super::jsonpath::{Template, plain};
use super::output::{emit, qualified_name};
use crate::client;
use crate::up::parse_duration;

/// What to wait for (`--for`).
#[derive(Debug, Clone)]
pub enum WaitFor {
    /// `delete`: the object is gone.
    Delete,
    /// `create`: the object exists.
    Create,
    /// `condition=TYPE[=VALUE]`: `status.conditions[type=TYPE].status` is VALUE (default `True`).
    Condition { type_: String, value: String },
    /// `jsonpath={PATH}[=VALUE]`: the path has this value (or, without one, exists).
    JsonPath { path: Template, value: Option<String> },
}

impl FromStr for WaitFor {
    type Err = String;

    fn from_str(s: &str) -> Result<WaitFor, String> {
        if s.eq_ignore_ascii_case("delete") {
            return Ok(WaitFor::Delete);
        }
        if s.eq_ignore_ascii_case("create") {
            return Ok(WaitFor::Create);
        }
        if let Some(cond) = s.strip_prefix("condition=") {
            let (type_, value) = cond.split_once('=').unwrap_or((cond, "True"));
            if type_.is_empty() {
                return Err("condition: a condition type is required, e.g. --for=condition=Ready".into());
            }
            return Ok(WaitFor::Condition { type_: type_.into(), value: value.into() });
        }
        if let Some(expr) = s.strip_prefix("jsonpath=") {
            // `{.a.b}=v`: the value follows the closing brace; without braces, the first `=` splits.
            let (path, value) = match expr.starts_with('{').then(|| expr.find('}')).flatten() {
                Some(close) => (&expr[..=close], expr[close + 1..].strip_prefix('=')),
                None => expr.split_once('=').map_or((expr, None), |(p, v)| (p, Some(v))),
            };
            let path = Template::relaxed(path).map_err(|e| format!("{e:#}"))?;
            return Ok(WaitFor::JsonPath { path, value: value.map(String::from) });
        }
        Err(format!(
            "unrecognized condition: {s:?} (expected delete, create, condition=TYPE[=VALUE] or jsonpath={{PATH}}[=VALUE])"
        ))
    }
}

impl WaitFor {
    /// Whether `object` (None: it does not exist) meets the condition.
    pub fn met(&self, object: Option<&Value>) -> bool {
        match (self, object) {
            (WaitFor::Delete, o) => o.is_none(),
            (_, None) => false,
            (WaitFor::Create, Some(_)) => true,
            (WaitFor::Condition { type_, value }, Some(o)) => o["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter().any(|c| {
                    c["type"].as_str().is_some_and(|t| t.eq_ignore_ascii_case(type_))
                        && c["status"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(value))
                })
            }),
            (WaitFor::JsonPath { path, value }, Some(o)) => match (path.values(o), value) {
                (Ok(found), None) => !found.is_empty(),
                (Ok(found), Some(want)) => matches!(found.as_slice(), [one] if plain(one) == *want),
                (Err(_), _) => false,
            },
        }
    }
}

/// Flags of `tilt wait`.
#[derive(clap::Args)]
pub struct WaitArgs {
    /// `TYPE NAME…`, `TYPE/NAME…`, or `TYPE` with `-l` or `--all`.
    #[arg(value_name = "TYPE NAME | TYPE/NAME", required = true)]
    args: Vec<String>,
    /// delete, create, condition=TYPE[=VALUE] or jsonpath={PATH}[=VALUE].
    #[arg(long = "for", required = true, value_parser = WaitFor::from_str)]
    for_: WaitFor,
    /// Give up after this long (`30s`, `5m`; 0 checks once).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
    /// Wait for every object of the type.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    filter: Filter,
    #[command(flatten)]
    target: client::Target,
}

/// Runs `tilt wait`.
pub async fn wait(args: WaitArgs) -> Result<()> {
    let cluster = Cluster::connect(&args.target).await?;
    let deadline = tokio::time::Instant::now() + args.timeout;
    for selection in cluster.select(&args.args)? {
        let api = cluster.api(selection.kind);
        let names: Vec<String> = if selection.names.is_empty() {
            if !args.all && !args.filter.is_set() {
                bail!("resource(s) were provided, but no name was specified");
            }
            let objects = cluster.fetch(&selection, &args.filter).await?.objects;
            if objects.is_empty() {
                bail!("no matching resources found");
            }
            objects.iter().map(|o| o["metadata"]["name"].as_str().unwrap_or_default().to_string()).collect()
        } else {
            selection.names.clone()
        };
        for name in names {
            let object = match api.get_opt(&tilt_apis::path_name(&name)).await? {
                Some(o) => Some(to_value(selection.kind, o)?),
                None if matches!(args.for_, WaitFor::Condition { .. } | WaitFor::JsonPath { .. }) => {
                    // Like kubectl: waiting on a named object that does not exist is the server's NotFound.
                    api.get(&tilt_apis::path_name(&name)).await?;
                    None
                }
                None => None,
            };
            let display = object
                .as_ref()
                .map(qualified_name)
                .unwrap_or_else(|| format!("{}/{name}", selection.kind.kind_group()));
            if !args.for_.met(object.as_ref()) && !until_met(&api, selection.kind, &name, &args.for_, deadline).await? {
                bail!("timed out waiting for the condition on {}/{name}", selection.kind.resource.plural);
            }
            emit(&format!("{display} condition met\n"));
        }
    }
    Ok(())
}

/// Watches `name` until the condition holds (true) or the deadline passes (false).
async fn until_met(
    api: &Api<DynamicObject>,
    kind: &Kind,
    name: &str,
    for_: &WaitFor,
    deadline: tokio::time::Instant,
) -> Result<bool> {
    let cond = |o: Option<&DynamicObject>| {
        let value = o.cloned().and_then(|o| to_value(kind, o).ok());
        for_.met(value.as_ref())
    };
    match tokio::time::timeout_at(deadline, await_condition(api.clone(), name, cond)).await {
        Ok(result) => result.map(|_| true).map_err(anyhow::Error::from),
        Err(_) => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions() {
        let ready =
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}], "phase": "Running", "n": 3}});
        let met = |spec: &str, o: Option<&Value>| spec.parse::<WaitFor>().unwrap().met(o);
        assert!(met("condition=Ready", Some(&ready)));
        assert!(met("condition=ready=true", Some(&ready)));
        assert!(!met("condition=Ready=False", Some(&ready)));
        assert!(!met("condition=UpToDate", Some(&ready)));
        assert!(met("jsonpath={.status.phase}=Running", Some(&ready)));
        assert!(met("jsonpath=.status.n=3", Some(&ready)));
        assert!(met("jsonpath={.status.phase}", Some(&ready)));
        assert!(!met("jsonpath={.status.missing}", Some(&ready)));
        assert!(!met("jsonpath={.status.phase}=Done", Some(&ready)));
        assert!(met("delete", None) && !met("delete", Some(&ready)));
        assert!(met("create", Some(&ready)) && !met("create", None));
        assert!("condition=".parse::<WaitFor>().is_err());
        assert!("ready".parse::<WaitFor>().is_err());
    }
}
