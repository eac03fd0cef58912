//! Scale-out: `tilt up --api-context NAME --session S` keeps its objects in the apiserver of kubeconfig context
//! NAME (a real Kubernetes cluster with `tilt crds --namespaced` installed) instead of the embedded one.
//!
//! Every session is a namespace, `tilt-<session>`: the apiserver filters by namespace on every list and watch,
//! and a cluster admin grants a user a session with a Role in its namespace (RBAC cannot restrict by label).
//! The controllers do not know any of this: they keep addressing the cluster-scoped paths they use against the
//! embedded apiserver (`/apis/tilt.dev/v1alpha1/cmds`), and the client puts every such request into the
//! session's namespace ([`client`]). A session has one holder at a time, recorded in a
//! `coordination.k8s.io` Lease in its namespace ([`hold_session`]).
//!
//! Tilt's object names (`(Tiltfile)`, `srv:serve`, `Tiltfile`) are not the RFC 1123 names kube-apiserver takes for
//! custom resources. The same client stores such an object under a valid name derived from it
//! ([`store_name`]: lower-cased, other characters as `-`, and a hash of the original) with the original in the
//! annotation `tilt.dev/name`, and gives every response the original name back: controllers, the web UI and
//! `tilt get` see Tilt's names; `kubectl -n tilt-<session>` sees the stored ones.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use sha2::Digest;

/// The annotation on a namespaced CRD that names the schema it was generated from.
pub const SCHEMA_ANNOTATION: &str = "tilt.dev/schema";

/// The annotation that holds an object's Tilt name when it is stored under another ([`store_name`]).
pub const NAME_ANNOTATION: &str = "tilt.dev/name";

/// How long a session's Lease lasts without renewal; a holder renews it every third of that.
const LEASE_SECONDS: i32 = 15;

/// Flags that put `tilt` on a shared apiserver.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SharedArgs {
    /// Keep the API objects in the apiserver of this kubeconfig context (with `tilt crds --namespaced`
    /// installed) instead of an embedded one.
    #[arg(long, global = true)]
    pub api_context: Option<String>,
    /// The session on that apiserver (its namespace is `tilt-<session>`); default: your user name and a hash of
    /// the Tiltfile's path.
    #[arg(long, global = true, requires = "api_context")]
    pub session: Option<String>,
}

/// The session name: the given one, or `<user>-<8 hex of the Tiltfile path's hash>`, as a DNS label.
pub fn session_name(explicit: Option<&str>, tiltfile: &std::path::Path) -> Result<String> {
    let name = match explicit {
        Some(s) => s.to_string(),
        None => {
            let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "user".into());
            let hash = sha2::Sha256::digest(tiltfile.to_string_lossy().as_bytes());
            let user: String =
                user.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).take(40).collect();
            format!("{}-{}", user.trim_matches('-'), hex(&hash[..4]))
        }
    };
    let valid = !name.is_empty()
        && name.len() <= 58
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !valid {
        bail!("--session {name:?}: a session name is lower-case letters, digits and '-', at most 58 characters");
    }
    Ok(name)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The namespace of a session.
pub fn namespace(session: &str) -> String {
    format!("tilt-{session}")
}

/// A client for kubeconfig context `context` whose tilt.dev requests go to `namespace`, with Tilt's object
/// names mapped to stored ones and back.
pub async fn client(context: &str, namespace: &str) -> Result<kube::Client> {
    let kubeconfig = Kubeconfig::read().context("reading the kubeconfig")?;
    let options = KubeConfigOptions { context: Some(context.to_string()), ..Default::default() };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .with_context(|| format!("loading kubeconfig context {context}"))?;
    let ns = namespace.to_string();
    let layer = tower::layer::layer_fn(move |inner| SessionService { inner, namespace: ns.clone() });
    let builder = kube::client::ClientBuilder::try_from(config)?;
    Ok(builder.with_layer(&layer).build())
}

/// Whether `name` is a valid custom resource name for kube-apiserver (an RFC 1123 subdomain).
fn valid_stored_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The name an object named `name` by Tilt is stored under: itself when kube-apiserver takes it, else a valid
/// name made from it and the hash of the original (`(Tiltfile)` → `tiltfile-3f2a…`).
pub fn store_name(name: &str) -> std::borrow::Cow<'_, str> {
    if valid_stored_name(name) {
        return name.into();
    }
    let mut base = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' };
        if !(c == '-' && (base.is_empty() || base.ends_with('-'))) {
            base.push(c);
        }
        if base.len() >= 200 {
            break;
        }
    }
    let base = base.trim_end_matches('-');
    let hash = hex(&sha2::Sha256::digest(name.as_bytes())[..4]);
    if base.is_empty() { format!("x-{hash}").into() } else { format!("{base}-{hash}").into() }
}

/// The request's path and query with tilt.dev paths put into the namespace and names mapped to stored ones;
/// `None` for requests that are not about tilt.dev objects.
fn map_request_uri(uri: &http::Uri, namespace: &str) -> Option<String> {
    let path = uri.path();
    let rest = path.strip_prefix("/apis/tilt.dev/v1alpha1/")?;
    let rest = match rest.strip_prefix("namespaces/") {
        Some(r) => r.split_once('/').map(|(_, r)| r).unwrap_or_default().to_string(),
        None => rest.to_string(),
    };
    if rest.is_empty() {
        return None;
    }
    let mut segments: Vec<String> = rest.split('/').map(String::from).collect();
    if let Some(name) = segments.get_mut(1) {
        let decoded = percent_encoding::percent_decode_str(name).decode_utf8_lossy().into_owned();
        *name = tilt_apis::path_name(store_name(&decoded));
    }
    let mut out = format!("/apis/tilt.dev/v1alpha1/namespaces/{namespace}/{}", segments.join("/"));
    if let Some(query) = uri.query() {
        let mapped = form_urlencoded::parse(query.as_bytes()).map(|(k, v)| {
            let v = if k == "fieldSelector" { map_field_selector(&v) } else { v.into_owned() };
            (k.into_owned(), v)
        });
        out.push('?');
        out.push_str(&form_urlencoded::Serializer::new(String::new()).extend_pairs(mapped).finish());
    }
    Some(out)
}

/// `metadata.name=X` (and `==`, `!=`) terms of a field selector with X mapped to its stored name.
fn map_field_selector(selector: &str) -> String {
    let term = |t: &str| {
        for op in ["!=", "==", "="] {
            if let Some((field, value)) = t.split_once(op)
                && field.trim() == "metadata.name"
            {
                return format!("{field}{op}{}", store_name(value.trim()));
            }
        }
        t.to_string()
    };
    selector.split(',').map(term).collect::<Vec<_>>().join(",")
}

/// A written object's body with a name kube-apiserver would refuse stored under [`store_name`], the original in
/// its annotation. Bodies that are not such an object (JSON patches, merge patches without a name) pass as they
/// are.
fn map_request_body(body: &[u8]) -> Option<Vec<u8>> {
    let mut v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let name = v.pointer("/metadata/name")?.as_str()?.to_string();
    let stored = store_name(&name);
    if stored == name {
        return None;
    }
    v["metadata"]["name"] = stored.as_ref().into();
    let meta = v["metadata"].as_object_mut()?;
    let annotations = meta.entry("annotations").or_insert_with(|| serde_json::json!({}));
    annotations.as_object_mut()?.insert(NAME_ANNOTATION.into(), name.into());
    serde_json::to_vec(&v).ok()
}

/// Gives an object (or each of a list's items, or a Table's rows) its Tilt name back, dropping the annotation,
/// and drops its namespace: to the controllers every object is the cluster-scoped one of the embedded apiserver
/// (`ObjectRef`s they make from names must match the ones of the objects they watch).
fn restore_names(v: &mut serde_json::Value) {
    fn restore(obj: &mut serde_json::Value) -> Option<String> {
        obj.get_mut("metadata")?.as_object_mut()?.remove("namespace");
        let annotations = obj.pointer_mut("/metadata/annotations")?.as_object_mut()?;
        let name = annotations.remove(NAME_ANNOTATION)?.as_str()?.to_string();
        if annotations.is_empty() {
            obj["metadata"].as_object_mut()?.remove("annotations");
        }
        obj["metadata"]["name"] = name.clone().into();
        Some(name)
    }
    if let Some(items) = v.get_mut("items").and_then(|i| i.as_array_mut()) {
        items.iter_mut().for_each(|item| drop(restore(item)));
    } else if v["kind"] == "Table" {
        for row in v.get_mut("rows").and_then(|r| r.as_array_mut()).into_iter().flatten() {
            if let Some(name) = row.get_mut("object").and_then(restore)
                && let Some(cell) = row.get_mut("cells").and_then(|c| c.get_mut(0))
            {
                *cell = name.into();
            }
        }
    } else if v.get("type").is_some() && v.get("object").is_some() {
        restore(&mut v["object"]);
    } else {
        restore(v);
    }
}

fn restore_json(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    restore_names(&mut v);
    serde_json::to_vec(&v).ok()
}

type BoxBody = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, tower::BoxError>;

/// The client's service for a session: [`map_request_uri`] and [`map_request_body`] on the way out,
/// [`restore_names`] on every JSON answer and every line of a watch on the way back.
#[derive(Clone)]
struct SessionService<S> {
    inner: S,
    namespace: String,
}

impl<S, B> tower::Service<http::Request<kube::client::Body>> for SessionService<S>
where
    S: tower::Service<http::Request<kube::client::Body>, Response = http::Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<tower::BoxError>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<tower::BoxError>,
{
    type Response = http::Response<BoxBody>;
    type Error = tower::BoxError;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<kube::client::Body>) -> Self::Future {
        use futures::FutureExt;
        use http_body_util::BodyExt;
        let Some(path_and_query) = map_request_uri(req.uri(), &self.namespace) else {
            let resp = self.inner.call(req);
            return Box::pin(async move {
                Ok(resp.await.map_err(Into::into)?.map(|b| b.map_err(Into::into).boxed_unsync()))
            });
        };
        let watch = req.uri().query().is_some_and(|q| {
            form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "watch" && (v == "true" || v == "1"))
        });
        let (mut parts, body) = req.into_parts();
        let mut uri = parts.uri.clone().into_parts();
        uri.path_and_query = path_and_query.parse().ok();
        if let Ok(mapped) = http::Uri::from_parts(uri) {
            parts.uri = mapped;
        }
        // The client's request bodies are whole (`Body::from(bytes)`), so they read without waiting.
        let written = body.try_clone().and_then(|b| b.collect_bytes().now_or_never()).and_then(Result::ok);
        let body = match written.as_deref().and_then(map_request_body) {
            Some(mapped) => kube::client::Body::from(mapped),
            None => body,
        };
        let resp = self.inner.call(http::Request::from_parts(parts, body));
        Box::pin(async move {
            let (parts, body) = resp.await.map_err(Into::into)?.into_parts();
            if watch && parts.status.is_success() {
                return Ok(http::Response::from_parts(parts, restore_watch_lines(body)));
            }
            let bytes = body.collect().await.map_err(Into::into)?.to_bytes();
            let bytes = restore_json(&bytes).map(bytes::Bytes::from).unwrap_or(bytes);
            let full = http_body_util::Full::new(bytes).map_err(|e| match e {}).boxed_unsync();
            Ok(http::Response::from_parts(parts, full))
        })
    }
}

/// A watch's body with [`restore_names`] applied to each line (one event per line).
fn restore_watch_lines<B>(body: B) -> BoxBody
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<tower::BoxError>,
{
    use futures::StreamExt;
    use http_body_util::BodyExt;
    let data = Box::pin(http_body_util::BodyDataStream::new(body.map_err(Into::into)));
    let lines = futures::stream::unfold((data, Vec::<u8>::new(), false), |(mut data, mut buf, done)| async move {
        if done {
            return None;
        }
        loop {
            if let Some(end) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                let mut out = restore_json(&line[..line.len() - 1]).unwrap_or_else(|| line[..line.len() - 1].to_vec());
                out.push(b'\n');
                return Some((Ok(http_body::Frame::data(bytes::Bytes::from(out))), (data, buf, false)));
            }
            match data.next().await {
                Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                Some(Err(e)) => return Some((Err(e), (data, buf, true))),
                None if buf.is_empty() => return None,
                None => {
                    let rest = std::mem::take(&mut buf);
                    let out = restore_json(&rest).unwrap_or(rest);
                    return Some((Ok(http_body::Frame::data(bytes::Bytes::from(out))), (data, buf, true)));
                }
            }
        }
    });
    BoxBody::new(http_body_util::StreamBody::new(lines))
}

/// The CRDs `tilt crds --namespaced` prints: every tilt.dev kind namespaced, annotated with its schema's hash.
pub fn namespaced_crds() -> Vec<CustomResourceDefinition> {
    tilt_apis::crds()
        .into_iter()
        .map(|mut crd| {
            crd.spec.scope = "Namespaced".into();
            let spec = serde_json::to_vec(&crd.spec).expect("CRDs serialize");
            let annotations = crd.metadata.annotations.get_or_insert_with(Default::default);
            annotations.insert(SCHEMA_ANNOTATION.into(), hex(&sha2::Sha256::digest(&spec)[..8]));
            crd
        })
        .collect()
}

/// Checks that `client`'s apiserver has this binary's namespaced CRDs; the error says how to install them.
pub async fn check_crds(client: &kube::Client, context: &str) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let install =
        format!("install them with `tilt crds --namespaced | kubectl --context {context} apply --server-side -f -`");
    for want in namespaced_crds() {
        let name = want.metadata.name.clone().unwrap_or_default();
        let have = api.get_opt(&name).await.with_context(|| format!("reading CRD {name} in context {context}"))?;
        let Some(have) = have else {
            bail!("the tilt.dev CRDs are not installed in context {context} ({name} is missing): {install}");
        };
        let schema = |c: &CustomResourceDefinition| {
            c.metadata.annotations.as_ref().and_then(|a| a.get(SCHEMA_ANNOTATION)).cloned().unwrap_or_default()
        };
        if have.spec.scope != "Namespaced" {
            bail!("CRD {name} in context {context} is cluster-scoped (plain `tilt crds`): {install}");
        }
        if schema(&have) != schema(&want) {
            bail!("CRD {name} in context {context} is not the one this tilt was built with: {install}");
        }
    }
    Ok(())
}

/// Creates the session's namespace unless it exists; a user who may not (RBAC) learns what to ask for.
pub async fn ensure_namespace(client: &kube::Client, namespace: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    if api.get_opt(namespace).await.with_context(|| format!("reading namespace {namespace}"))?.is_some() {
        return Ok(());
    }
    let ns =
        Namespace { metadata: ObjectMeta { name: Some(namespace.into()), ..Default::default() }, ..Default::default() };
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 403 => bail!(
            "namespace {namespace} does not exist and you may not create it ({}): ask a cluster admin for \
             `kubectl create namespace {namespace} && kubectl -n {namespace} create rolebinding tilt-session \
             --clusterrole {SESSION_ROLE} --user YOU` (the roles: `tilt crds --rbac`)",
            s.message
        ),
        Err(e) => Err(e).with_context(|| format!("creating namespace {namespace}")),
    }
}

/// The ClusterRole a RoleBinding in a session's namespace grants: everything `tilt` does in a session.
pub const SESSION_ROLE: &str = "tilt-session";
/// The ClusterRole every user needs to start a session: reading the tilt.dev CRDs and namespaces.
const USER_ROLE: &str = "tilt-user";

/// What `tilt crds --rbac` prints: the ClusterRole `tilt-session` (all of tilt.dev and the session's Lease, for
/// a RoleBinding in a session's namespace), the ClusterRole `tilt-user` (reading the tilt.dev CRDs and
/// namespaces, which `tilt up` checks) and its binding to every authenticated user.
pub fn rbac() -> Vec<serde_json::Value> {
    let crd_names: Vec<String> = tilt_apis::crds().into_iter().filter_map(|c| c.metadata.name).collect();
    let all = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];
    vec![
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": SESSION_ROLE},
            "rules": [
                {"apiGroups": ["tilt.dev"], "resources": ["*"], "verbs": all},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": all},
            ],
        }),
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": USER_ROLE},
            "rules": [
                {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
                 "resourceNames": crd_names, "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
            ],
        }),
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": USER_ROLE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": USER_ROLE},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}],
        }),
    ]
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

const LEASE_NAME: &str = "tilt-session";

/// A session's Lease, held: renewed until [`SessionHold::release`].
pub struct SessionHold {
    renew: tokio::task::JoinHandle<()>,
    api: Api<Lease>,
}

impl SessionHold {
    /// Stops renewing and deletes the Lease, so that the session is free at once.
    pub async fn release(self) {
        self.renew.abort();
        let _ = self.api.delete(LEASE_NAME, &Default::default()).await;
    }
}

/// Connects to session `session` (or the derived one) on context `context`: checks the CRDs, creates the
/// namespace, takes the session's Lease. Returns the client and the hold.
pub async fn connect_session(
    context: &str,
    session: Option<&str>,
    tiltfile: &std::path::Path,
) -> Result<(kube::Client, SessionHold, String)> {
    let session = session_name(session, tiltfile)?;
    let ns = namespace(&session);
    let client = client(context, &ns).await?;
    check_crds(&client, context).await?;
    ensure_namespace(&client, &ns).await?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let holder = format!("{}/{}", host.trim(), std::process::id());
    let hold = hold_session(&client, &ns, &holder).await?;
    Ok((client, hold, session))
}

/// Takes the session's Lease (`tilt-session` in its namespace) for `holder`, or says who holds it. A lease not
/// renewed within its duration is expired and taken over.
async fn hold_session(client: &kube::Client, namespace: &str, holder: &str) -> Result<SessionHold> {
    const NAME: &str = LEASE_NAME;
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let spec = |transitions: i32| LeaseSpec {
        holder_identity: Some(holder.to_string()),
        lease_duration_seconds: Some(LEASE_SECONDS),
        acquire_time: Some(now()),
        renew_time: Some(now()),
        lease_transitions: Some(transitions),
        ..Default::default()
    };
    let taken = match api.get_opt(NAME).await.context("reading the session's Lease")? {
        None => {
            let lease =
                Lease { metadata: ObjectMeta { name: Some(NAME.into()), ..Default::default() }, spec: Some(spec(0)) };
            api.create(&PostParams::default(), &lease).await.map(|_| ())
        }
        Some(mut lease) => {
            let current = lease.spec.clone().unwrap_or_default();
            let other = current.holder_identity.clone().unwrap_or_default();
            let renewed = current.renew_time.as_ref().map(|t| t.0);
            let age = renewed.map(|t| jiff::Timestamp::now().duration_since(t).as_secs_f64());
            let expired = age.is_none_or(|a| a > f64::from(current.lease_duration_seconds.unwrap_or(LEASE_SECONDS)));
            if !expired && other != holder {
                bail!(
                    "session {} is in use by {other} (its Lease was renewed {:.0}s ago): stop that tilt, or pick \
                     another --session",
                    namespace.trim_start_matches("tilt-"),
                    age.unwrap_or_default()
                );
            }
            lease.spec = Some(spec(current.lease_transitions.unwrap_or(0) + 1));
            // The replace carries the resourceVersion read: a racing taker gets 409.
            api.replace(NAME, &PostParams::default(), &lease).await.map(|_| ())
        }
    };
    match taken {
        Ok(()) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {
            return Err(anyhow!(
                "session {} was just taken by another tilt: stop it, or pick another --session",
                namespace.trim_start_matches("tilt-")
            ));
        }
        Err(e) => return Err(e).context("taking the session's Lease"),
    }
    let holder = holder.to_string();
    let renewer = api.clone();
    let renew = tokio::spawn(async move {
        let api = renewer;
        let mut tick = tokio::time::interval(Duration::from_secs(LEASE_SECONDS as u64 / 3));
        loop {
            tick.tick().await;
            let renew = serde_json::json!({"spec": {"holderIdentity": holder, "renewTime": now()}});
            let params = kube::api::PatchParams::default();
            if let Err(e) = api.patch(NAME, &params, &kube::api::Patch::Merge(&renew)).await {
                crate::view::say(&format!("tilt: renewing the session's Lease: {e}"));
            }
        }
    });
    Ok(SessionHold { renew, api })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(uri: &str) -> Option<String> {
        map_request_uri(&uri.parse().unwrap(), "tilt-s")
    }

    #[test]
    fn tilt_requests_go_into_the_session_namespace_with_stored_names() {
        assert_eq!(
            mapped("/apis/tilt.dev/v1alpha1/cmds/a").as_deref(),
            Some("/apis/tilt.dev/v1alpha1/namespaces/tilt-s/cmds/a")
        );
        assert_eq!(
            mapped("/apis/tilt.dev/v1alpha1/uiresources?watch=true").as_deref(),
            Some("/apis/tilt.dev/v1alpha1/namespaces/tilt-s/uiresources?watch=true")
        );
        let stored = store_name("srv:serve");
        assert_eq!(
            mapped("/apis/tilt.dev/v1alpha1/cmds/srv:serve/status").unwrap(),
            format!("/apis/tilt.dev/v1alpha1/namespaces/tilt-s/cmds/{stored}/status")
        );
        assert_eq!(
            mapped("/apis/tilt.dev/v1alpha1/cmds?fieldSelector=metadata.name%3D%28Tiltfile%29").unwrap(),
            format!(
                "/apis/tilt.dev/v1alpha1/namespaces/tilt-s/cmds?fieldSelector=metadata.name%3D{}",
                store_name("(Tiltfile)")
            )
        );
        assert_eq!(mapped("/apis/tilt.dev/v1alpha1/"), None);
        assert_eq!(mapped("/apis/tilt.dev/v1alpha1"), None);
        assert_eq!(mapped("/api/v1/namespaces/default/pods"), None);
    }

    #[test]
    fn names_kube_apiserver_refuses_are_stored_under_valid_ones_and_restored() {
        assert_eq!(store_name("web"), "web");
        assert_eq!(store_name("a.b-c"), "a.b-c");
        for name in ["(Tiltfile)", "Tiltfile", "srv:serve", "bootstrap (secrets)", "::", "a..b"] {
            let stored = store_name(name);
            assert!(valid_stored_name(&stored), "{name} -> {stored}");
            assert_ne!(stored, name);
        }
        assert_ne!(store_name("Tiltfile"), store_name("tiltfile-"), "the hash keeps names apart");
        let body = map_request_body(br#"{"metadata":{"name":"srv:serve"},"spec":{}}"#).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["metadata"]["name"], store_name("srv:serve").as_ref());
        assert_eq!(v["metadata"]["annotations"][NAME_ANNOTATION], "srv:serve");
        assert_eq!(map_request_body(br#"{"metadata":{"name":"web"}}"#), None);
        let mut list = serde_json::json!({"kind": "CmdList", "items": [v.clone()]});
        restore_names(&mut list);
        assert_eq!(list["items"][0]["metadata"], serde_json::json!({"name": "srv:serve"}));
        let mut namespaced = serde_json::json!({"metadata": {"name": "web", "namespace": "tilt-s"}});
        restore_names(&mut namespaced);
        assert_eq!(namespaced["metadata"], serde_json::json!({"name": "web"}));
        let mut event = serde_json::json!({"type": "ADDED", "object": v});
        restore_names(&mut event);
        assert_eq!(event["object"]["metadata"]["name"], "srv:serve");
    }

    #[test]
    fn session_names() {
        let path = std::path::Path::new("/home/a/proj/Tiltfile");
        let derived = session_name(None, path).unwrap();
        assert_eq!(derived, session_name(None, path).unwrap(), "stable");
        assert_ne!(derived, session_name(None, std::path::Path::new("/home/a/other/Tiltfile")).unwrap());
        assert_eq!(session_name(Some("team-a"), path).unwrap(), "team-a");
        assert!(session_name(Some("Team A"), path).is_err());
        assert_eq!(namespace("team-a"), "tilt-team-a");
    }

    #[test]
    fn namespaced_crds_carry_their_schema_hash() {
        let crds = namespaced_crds();
        assert_eq!(crds.len(), tilt_apis::crds().len());
        assert!(crds.iter().all(|c| c.spec.scope == "Namespaced"));
        let hashes: std::collections::BTreeSet<_> =
            crds.iter().map(|c| c.metadata.annotations.as_ref().unwrap()[SCHEMA_ANNOTATION].clone()).collect();
        assert_eq!(hashes.len(), crds.len(), "one schema hash per kind");
    }
}
