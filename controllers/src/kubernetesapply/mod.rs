//! The KubernetesApply controller: deploys a resource's YAML to the cluster and follows what it deployed.
//!
//! Once every ImageMap in `spec.imageMaps` has an image, the controller injects those images into the
//! objects ([`inject`]), applies each object with server-side apply (field manager `tilt`, forced, so
//! tilt owns what the Tiltfile declares), deletes objects an earlier apply created that are no longer
//! declared, and records the cluster's answer (with UIDs) in `status.resultYAML`. A hash of the inputs
//! (`status.appliedInputHash`) makes reconcile idempotent: it applies again only for new inputs (YAML,
//! images), a trigger (`spec.restartOn`) newer than the last apply, or after an error.
//!
//! For the pods of what it deployed it declares a KubernetesDiscovery of the same name (watched objects'
//! UIDs, port-forward and log templates). A finalizer makes deletion (`tilt down`, re-evaluation) delete
//! the applied objects from the cluster first.

pub mod inject;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{ApiCapabilities, Scope};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalized, finalizer};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tilt_apis::{
    ConfigMap, DisableStatus, ImageMap, KubernetesApply, KubernetesApplySpec, KubernetesApplyStateWaiting,
    KubernetesApplyStatus, KubernetesDiscovery, KubernetesDiscoverySpec, KubernetesWatchRef, RESOURCE_ANNOTATION,
    RESOURCE_LABEL, UIButton, UIResource,
};
use tokio_util::sync::CancellationToken;

use crate::cluster::ClusterConnection;
use crate::logs::{LogLevel, LogStore};
use crate::references::{disabled_by, references, resource_of, triggers};
use crate::runtime::controller::backoff;
use crate::runtime::{Informers, Reconciler, Setup};
use crate::status::{apply_status, is_not_found, message};

/// The field manager of this controller's writes to tilt's API.
pub const MANAGER: &str = "tilt-kubernetesapply-controller";
/// The field manager of server-side applies to the cluster, as in Go Tilt.
pub const CLUSTER_MANAGER: &str = "tilt";
/// The finalizer that deletes applied objects before the KubernetesApply goes away.
pub const FINALIZER: &str = "tilt.dev/kubernetesapply";
/// The label tilt puts on everything it deploys.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "tilt");

/// Errors of one reconcile; retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// tilt's API refused a read or write.
    #[error("KubernetesApply API call failed: {0}")]
    Api(#[from] kube::Error),
    /// Deleting applied objects failed; the finalizer stays until it works.
    #[error("deleting applied objects: {0}")]
    Cleanup(String),
    /// The finalizer machinery failed.
    #[error("{0}")]
    Finalizer(String),
}

/// The KubernetesApply controller.
pub struct Ctx {
    client: Client,
    informers: Arc<Informers>,
    cluster: Arc<ClusterConnection>,
    logs: Arc<LogStore>,
}

/// What the controller keeps for one KubernetesApply.
#[derive(Default)]
pub struct Applies {
    /// Failed applies in a row with the same inputs, for the retry backoff.
    failures: u32,
    /// The KubernetesDiscovery spec last declared, to skip identical writes.
    discovery: Option<KubernetesDiscoverySpec>,
}

/// One object as the cluster knows it: enough to find, delete and watch it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AppliedRef {
    /// `group/version` or `v1`.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Namespace; empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
}

impl AppliedRef {
    fn of(object: &Value) -> Option<AppliedRef> {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        Some(AppliedRef {
            api_version: s(&object["apiVersion"]),
            kind: s(&object["kind"]),
            namespace: s(&object["metadata"]["namespace"]),
            name: object["metadata"]["name"].as_str().filter(|n| !n.is_empty())?.to_string(),
            uid: s(&object["metadata"]["uid"]),
        })
    }

    /// Identity across applies (UIDs change when an object is recreated; the group does not matter for
    /// the version).
    fn key(&self) -> (String, String, String, String) {
        let group = self.api_version.rsplit_once('/').map(|(g, _)| g.to_string()).unwrap_or_default();
        (group, self.kind.clone(), self.namespace.clone(), self.name.clone())
    }

    fn gvk(&self) -> GroupVersionKind {
        let (group, version) = self.api_version.rsplit_once('/').unwrap_or(("", &self.api_version));
        GroupVersionKind::gvk(group, version, &self.kind)
    }

    /// `deployment/app` (as kubectl prints it).
    fn display(&self) -> String {
        format!("{}/{}", self.kind.to_lowercase(), self.name)
    }
}

/// The objects recorded in a `resultYAML`.
pub fn applied_refs(result_yaml: &str) -> Vec<AppliedRef> {
    parse_stream(result_yaml).unwrap_or_default().iter().filter_map(AppliedRef::of).collect()
}

fn parse_stream(yaml: &str) -> Result<Vec<Value>, String> {
    if yaml.trim().is_empty() {
        return Ok(Vec::new());
    }
    let docs = serde_saphyr::from_multiple::<Value>(yaml).map_err(|e| format!("parsing the YAML: {e}"))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// Discovery answers for one apply, so each group/version is asked once.
#[derive(Default)]
struct Kinds(HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)>);

/// Why no API for a kind could be found.
enum KindError {
    /// The cluster answered: it does not serve this group, version or kind (e.g. its CRD was deleted).
    NotServed(String),
    /// Discovery itself failed (network, auth).
    Failed(String),
}

impl Kinds {
    async fn api(&mut self, client: &Client, r: &AppliedRef) -> Result<(Api<DynamicObject>, bool), KindError> {
        let gvk = r.gvk();
        if !self.0.contains_key(&gvk) {
            let found = kube::discovery::pinned_kind(client, &gvk).await.map_err(|e| {
                let text = format!("{} {}: {}", r.api_version, r.kind, message(&e));
                match e {
                    kube::Error::Discovery(_) => KindError::NotServed(text),
                    e if is_not_found(&e) => KindError::NotServed(text),
                    _ => KindError::Failed(text),
                }
            })?;
            self.0.insert(gvk.clone(), found);
        }
        let (resource, caps) = &self.0[&gvk];
        Ok(if caps.scope == Scope::Namespaced {
            let ns = if r.namespace.is_empty() { client.default_namespace() } else { &r.namespace };
            (Api::namespaced_with(client.clone(), ns, resource), true)
        } else {
            (Api::all_with(client.clone(), resource), false)
        })
    }
}

/// The hash of everything an apply depends on.
fn input_hash(spec: &KubernetesApplySpec, images: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    h.update(spec.yaml.as_bytes());
    for (name, image) in images {
        h.update([0]);
        h.update(name.as_bytes());
        h.update([0]);
        h.update(image.as_bytes());
    }
    h.update([0]);
    h.update(spec.cluster.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&h.finalize()[..16])
}

impl Reconciler for Ctx {
    type K = KubernetesApply;
    type State = Applies;
    type Error = Error;
    const NAME: &'static str = "kubernetesapply";
    // Its finalizer deletes what was deployed before the object goes.
    const SEES_DELETING: bool = true;

    /// Brings the cluster in line with one KubernetesApply.
    async fn reconcile(&self, ka: Arc<KubernetesApply>, state: &mut Option<Applies>) -> Result<Action, Error> {
        let api: Api<KubernetesApply> = Api::all(self.client.clone());
        let applies = state.get_or_insert_with(Applies::default);
        finalizer(&api, FINALIZER, ka, |event| async {
            match event {
                Finalized::Apply(ka) => apply(&ka, self, applies).await,
                Finalized::Cleanup(ka) => cleanup(&ka, self, applies).await,
            }
        })
        .await
        .map_err(|e| match e {
            kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
            other => Error::Finalizer(other.to_string()),
        })
    }
}

async fn write_status(ctx: &Ctx, name: &str, status: &KubernetesApplyStatus) -> Result<(), Error> {
    Ok(apply_status(&Api::<KubernetesApply>::all(ctx.client.clone()), name, MANAGER, status).await?)
}

/// Records why the apply waits, once per reason.
async fn wait(ctx: &Ctx, ka: &KubernetesApply, reason: String) -> Result<Action, Error> {
    let old = ka.status.clone().unwrap_or_default();
    if old.waiting.as_ref().is_none_or(|w| w.reason != reason) {
        let status = KubernetesApplyStatus { waiting: Some(KubernetesApplyStateWaiting { reason }), ..old };
        write_status(ctx, &ka.name_any(), &status).await?;
    }
    Ok(Action::await_change())
}

async fn apply(ka: &KubernetesApply, ctx: &Ctx, state: &mut Applies) -> Result<Action, Error> {
    let name = ka.name_any();
    let resource = resource_of(ka);
    let old = ka.status.clone().unwrap_or_default();
    let lookup = &*ctx.informers;

    if let Some(reason) = disabled_by(lookup, ka.spec.disable_source.as_ref()).await {
        if old.disable_status.as_ref().is_some_and(|d| d.disabled) {
            return Ok(Action::await_change());
        }
        delete_objects(ctx, &resource, &applied_refs(&old.result_yaml)).await?;
        delete_discovery(ctx, &name, state).await?;
        let status = KubernetesApplyStatus {
            disable_status: Some(DisableStatus {
                disabled: true,
                last_update_time: Some(crate::now_micro()),
                reason,
                state: "Disabled".into(),
            }),
            ..KubernetesApplyStatus::default()
        };
        write_status(ctx, &name, &status).await?;
        return Ok(Action::await_change());
    }

    // Every image must be built before anything is deployed.
    let mut image_maps = Vec::new();
    let mut unbuilt = Vec::new();
    for map_name in &ka.spec.image_maps {
        let map = lookup.get::<ImageMap>(map_name).await;
        let status = map.as_ref().and_then(|m| m.status.clone()).unwrap_or_default();
        let image = if status.image_from_cluster.is_empty() { status.image } else { status.image_from_cluster };
        match map {
            Some(map) if !image.is_empty() => image_maps.push((map, image)),
            _ => unbuilt.push(map_name.as_str()),
        }
    }
    if !unbuilt.is_empty() {
        return wait(ctx, ka, format!("waiting for the image build of {}", unbuilt.join(", "))).await;
    }
    let images: Vec<(String, String)> = image_maps.iter().map(|(m, i)| (m.name_any(), i.clone())).collect();
    let hash = input_hash(&ka.spec, &images);
    let (trigger, waiting) = triggers(lookup, ka.spec.restart_on.as_ref(), ka.spec.start_on.as_ref()).await;
    let last_start = old.last_apply_start_time.as_ref().map(|t| t.0);
    if let Some(reason) = waiting.filter(|_| last_start.is_none()) {
        // Not yet: `resource_deps` are not Ready or `auto_init=False` waits for a click.
        return wait(ctx, ka, reason).await;
    }
    let triggered = trigger.is_some_and(|t| last_start.is_none_or(|s| t > s));
    let same_inputs = old.applied_input_hash == hash && !triggered;
    if same_inputs && old.error.is_empty() {
        state.failures = 0;
        declare_discovery(ctx, ka, &applied_refs(&old.result_yaml), state).await?;
        return Ok(Action::await_change());
    }
    if same_inputs && state.failures > 0 {
        // The last attempt with these inputs failed: its own status write brought us here. Retry once the
        // backoff has passed, not at once.
        let last = old.last_apply_time.as_ref().map(|t| t.0).unwrap_or_else(Timestamp::now);
        let due = last + backoff(state.failures);
        let now = Timestamp::now();
        if now < due {
            return Ok(Action::requeue(Duration::try_from(due.duration_since(now)).unwrap_or(backoff(1))));
        }
    }
    if !same_inputs {
        state.failures = 0;
    }

    let started = Timestamp::now();
    let client = match ctx.cluster.client().await {
        Ok(c) => c,
        Err(message) => return failed(ctx, ka, state, &resource, &hash, started, &[], message).await,
    };
    let mut objects = match parse_stream(&ka.spec.yaml) {
        Ok(o) => o,
        Err(message) => return failed(ctx, ka, state, &resource, &hash, started, &[], message).await,
    };
    let injections: Vec<inject::Injection<'_>> =
        image_maps.iter().map(|(m, image)| inject::Injection { spec: &m.spec, image }).collect();
    for object in &mut objects {
        inject::inject(object, &injections);
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
            }
        }
    }

    ctx.logs.append(&resource, "kubernetesapply", &format!("Applying {} objects to the cluster", objects.len()));
    let mut kinds = Kinds::default();
    let mut results = Vec::new();
    for object in &objects {
        match apply_one(&client, &mut kinds, object).await {
            Ok(result) => results.push(result),
            Err(message) => return failed(ctx, ka, state, &resource, &hash, started, &results, message).await,
        }
    }
    let applied: Vec<AppliedRef> = results.iter().filter_map(AppliedRef::of).collect();
    for r in &applied {
        ctx.logs.append(&resource, "kubernetesapply", &format!("  → {} ({})", r.display(), ns_label(r)));
    }
    let kept: BTreeSet<_> = applied.iter().map(AppliedRef::key).collect();
    let removed: Vec<AppliedRef> =
        applied_refs(&old.result_yaml).into_iter().filter(|r| !kept.contains(&r.key())).collect();
    if let Err(err) = delete_objects(ctx, &resource, &removed).await {
        return failed(ctx, ka, state, &resource, &hash, started, &results, err.to_string()).await;
    }

    let status = KubernetesApplyStatus {
        result_yaml: to_yaml_stream(&results),
        error: String::new(),
        last_apply_time: Some(crate::now_micro()),
        last_apply_start_time: Some(crate::micro(started)),
        applied_input_hash: hash,
        disable_status: None,
        conditions: Vec::new(),
        waiting: None,
    };
    write_status(ctx, &ka.name_any(), &status).await?;
    state.failures = 0;
    declare_discovery(ctx, ka, &applied, state).await?;
    Ok(Action::await_change())
}

fn ns_label(r: &AppliedRef) -> String {
    if r.namespace.is_empty() { "cluster-scoped".into() } else { format!("namespace {}", r.namespace) }
}

fn to_yaml_stream(objects: &[Value]) -> String {
    objects.iter().map(|r| tilt_apis::yaml::to_string(r).unwrap_or_default()).collect::<Vec<_>>().join("---\n")
}

/// What an apply that stopped part way leaves deployed: the objects it applied (`applied`), and those of
/// the previous apply it did not replace (they were not deleted).
fn partial_result(old_result_yaml: &str, applied: &[Value]) -> String {
    let replaced: BTreeSet<_> = applied.iter().filter_map(AppliedRef::of).map(|r| r.key()).collect();
    let mut objects = applied.to_vec();
    let old = parse_stream(old_result_yaml).unwrap_or_default();
    objects.extend(old.into_iter().filter(|o| AppliedRef::of(o).is_some_and(|r| !replaced.contains(&r.key()))));
    to_yaml_stream(&objects)
}

/// Records a failed apply; it is retried with backoff (the cluster may come up), or at once on new input.
/// `applied` are the objects this attempt applied before it failed.
#[allow(clippy::too_many_arguments)]
async fn failed(
    ctx: &Ctx,
    ka: &KubernetesApply,
    state: &mut Applies,
    resource: &str,
    hash: &str,
    started: Timestamp,
    applied: &[Value],
    message: String,
) -> Result<Action, Error> {
    let old = ka.status.clone().unwrap_or_default();
    if old.error != message || old.applied_input_hash != hash {
        ctx.logs.append_level(resource, "kubernetesapply", LogLevel::Error, &format!("Error applying: {message}"));
    }
    let status = KubernetesApplyStatus {
        error: message,
        last_apply_time: Some(crate::now_micro()),
        last_apply_start_time: Some(crate::micro(started)),
        applied_input_hash: hash.to_string(),
        // Everything on the cluster stays recorded for deletion: what this attempt created, and what was
        // deployed before.
        result_yaml: partial_result(&old.result_yaml, applied),
        ..KubernetesApplyStatus::default()
    };
    write_status(ctx, &ka.name_any(), &status).await?;
    state.failures = state.failures.saturating_add(1);
    Ok(Action::requeue(backoff(state.failures)))
}

/// Server-side applies one object; returns the cluster's version of it, without managedFields.
async fn apply_one(client: &Client, kinds: &mut Kinds, object: &Value) -> Result<Value, String> {
    let r = AppliedRef::of(object)
        .filter(|r| !r.api_version.is_empty() && !r.kind.is_empty())
        .ok_or_else(|| "an object without apiVersion, kind or metadata.name cannot be applied".to_string())?;
    let (api, namespaced) = kinds.api(client, &r).await.map_err(|e| match e {
        KindError::NotServed(m) => format!("the cluster does not serve this kind: {m}"),
        KindError::Failed(m) => m,
    })?;
    let mut object = object.clone();
    if namespaced && r.namespace.is_empty() {
        object["metadata"]["namespace"] = Value::String(client.default_namespace().to_string());
    }
    let params = PatchParams::apply(CLUSTER_MANAGER).force();
    let result = api
        .patch(&r.name, &params, &Patch::Apply(&object))
        .await
        .map_err(|e| format!("applying {}: {}", r.display(), message(&e)))?;
    let mut value = serde_json::to_value(&result).map_err(|e| e.to_string())?;
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    Ok(value)
}

/// Deletes objects from the cluster (already gone is fine).
async fn delete_objects(ctx: &Ctx, resource: &str, refs: &[AppliedRef]) -> Result<(), Error> {
    if refs.is_empty() {
        return Ok(());
    }
    let client = ctx.cluster.client().await.map_err(Error::Cleanup)?;
    let mut kinds = Kinds::default();
    // Dependents go with their owners (as `kubectl delete` does).
    let params = DeleteParams::background();
    for r in refs {
        let api = match kinds.api(&client, r).await {
            Ok((api, _)) => api,
            // No such kind any more (its CRD is gone): no such object either.
            Err(KindError::NotServed(_)) => continue,
            Err(KindError::Failed(m)) => return Err(Error::Cleanup(m)),
        };
        match api.delete(&r.name, &params).await {
            Ok(_) => {
                ctx.logs.append(resource, "kubernetesapply", &format!("Deleted {} ({})", r.display(), ns_label(r)))
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(Error::Cleanup(format!("{}: {}", r.display(), message(&e)))),
        }
    }
    Ok(())
}

/// Before the KubernetesApply goes away: delete what it deployed (its discovery is garbage collected after it).
async fn cleanup(ka: &KubernetesApply, ctx: &Ctx, state: &mut Applies) -> Result<Action, Error> {
    let refs = applied_refs(&ka.status.as_ref().map(|s| s.result_yaml.clone()).unwrap_or_default());
    if !refs.is_empty() && ctx.cluster.client().await.is_err() {
        // Without a cluster nothing can be deleted, and waiting would block `tilt down` forever.
        tracing::warn!(ka = %ka.name_any(), "no cluster to delete applied objects from");
    } else {
        delete_objects(ctx, &resource_of(ka), &refs).await?;
    }
    // The KubernetesDiscovery (and what it declared) carries an ownerReference to this KubernetesApply: the
    // API server's garbage collector deletes it once the KubernetesApply is gone.
    state.discovery = None;
    Ok(Action::await_change())
}

async fn delete_discovery(ctx: &Ctx, name: &str, state: &mut Applies) -> Result<(), Error> {
    state.discovery = None;
    let api: Api<KubernetesDiscovery> = Api::all(ctx.client.clone());
    match api.delete(&tilt_apis::path_name(name), &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Declares the KubernetesDiscovery that follows the pods of what was applied.
async fn declare_discovery(
    ctx: &Ctx,
    ka: &KubernetesApply,
    applied: &[AppliedRef],
    state: &mut Applies,
) -> Result<(), Error> {
    let name = ka.name_any();
    let spec = KubernetesDiscoverySpec {
        watches: applied
            .iter()
            .filter(|r| !r.namespace.is_empty())
            .map(|r| KubernetesWatchRef { uid: r.uid.clone(), namespace: r.namespace.clone(), name: r.name.clone() })
            .collect(),
        extra_selectors: ka
            .spec
            .kubernetes_discovery_template_spec
            .as_ref()
            .map(|t| t.extra_selectors.clone())
            .unwrap_or_default(),
        port_forward_template_spec: ka.spec.port_forward_template_spec.clone(),
        pod_log_stream_template_spec: ka.spec.pod_log_stream_template_spec.clone(),
        cluster: ka.spec.cluster.clone(),
    };
    if state.discovery.as_ref() == Some(&spec) {
        return Ok(());
    }
    let owner = OwnerReference {
        api_version: tilt_apis::API_VERSION.into(),
        kind: "KubernetesApply".into(),
        name: name.clone(),
        uid: ka.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    };
    let mut kd = KubernetesDiscovery::new(&name, spec.clone());
    kd.meta_mut().owner_references = Some(vec![owner]);
    kd.meta_mut().annotations = Some([(RESOURCE_ANNOTATION.to_string(), resource_of(ka))].into());
    kd.meta_mut().labels = Some([(RESOURCE_LABEL.to_string(), resource_of(ka))].into());
    let api: Api<KubernetesDiscovery> = Api::all(ctx.client.clone());
    api.patch(&tilt_apis::path_name(&name), &PatchParams::apply(MANAGER).force(), &Patch::Apply(&kd)).await?;
    state.discovery = Some(spec);
    Ok(())
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(
    informers: Arc<Informers>,
    shutdown: CancellationToken,
    cluster: Arc<ClusterConnection>,
    logs: Arc<LogStore>,
) {
    let ctx = Arc::new(Ctx { client: informers.client().clone(), informers: informers.clone(), cluster, logs });
    Setup::new(ctx, &informers)
        .index(|ka: &KubernetesApply| {
            let mut refs =
                references(ka.spec.restart_on.as_ref(), ka.spec.start_on.as_ref(), ka.spec.disable_source.as_ref());
            refs.extend(ka.spec.image_maps.iter().map(|m| crate::runtime::Reference::new("ImageMap", m)));
            refs
        })
        .referenced::<ImageMap>()
        .referenced::<UIButton>()
        .referenced::<ConfigMap>()
        .referenced::<UIResource>()
        .run(shutdown)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_come_from_result_yaml_and_keys_ignore_version_and_uid() {
        let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  namespace: default\n  uid: u1\n---\n\
                    apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n";
        let refs = applied_refs(yaml);
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[0].uid, "u1");
        assert_eq!(refs[0].display(), "deployment/app");
        assert_eq!(refs[1].namespace, "");
        let mut other = refs[0].clone();
        other.api_version = "apps/v1beta2".into();
        other.uid = "u2".into();
        assert_eq!(other.key(), refs[0].key());
        assert!(applied_refs("").is_empty());
    }

    #[test]
    fn a_partial_result_keeps_what_was_applied_and_what_it_did_not_replace() {
        let old = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: default\n  uid: old-a\n---\n\
                   apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: default\n  uid: old-s\n";
        let applied = vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default", "uid": "new-a"}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b", "namespace": "default", "uid": "new-b"}}),
        ];
        let uids: Vec<String> = applied_refs(&partial_result(old, &applied)).into_iter().map(|r| r.uid).collect();
        assert_eq!(uids, ["new-a", "new-b", "old-s"]);
        assert_eq!(applied_refs(&partial_result(old, &[])).len(), 2);
    }

    #[test]
    fn the_input_hash_changes_with_yaml_and_images() {
        let spec = KubernetesApplySpec { yaml: "a".into(), ..Default::default() };
        let base = input_hash(&spec, &[("im".into(), "app:tilt-1".into())]);
        assert_eq!(base, input_hash(&spec, &[("im".into(), "app:tilt-1".into())]));
        assert_ne!(base, input_hash(&spec, &[("im".into(), "app:tilt-2".into())]));
        let other = KubernetesApplySpec { yaml: "b".into(), ..Default::default() };
        assert_ne!(base, input_hash(&other, &[("im".into(), "app:tilt-1".into())]));
    }
}
