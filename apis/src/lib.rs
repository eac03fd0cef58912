//! The `tilt.dev/v1alpha1` API types.
//!
//! Every piece of tilt-rs engine state is one of these objects, stored in the embedded API server and
//! reconciled by a controller. Field names follow Go Tilt's JSON (camelCase) so that scripts and extensions
//! written against Go Tilt keep working. All kinds are cluster-scoped.
//!
//! One module per kind holds its spec and status; types shared by several kinds (probes, triggers,
//! disabling, registries, durations) have small modules of their own. Serialization follows Go's
//! `encoding/json`: fields Go tags `omitempty` are left out when empty, the rest are always written, and
//! Go's `metav1.Time`/`MicroTime` values are `Option`s left out when unset.
//!
//! This crate holds types only: no I/O, no behaviour beyond small constructors.

#![warn(missing_docs)]
// kube-derive takes one `printcolumn(...)` attribute per column, which clippy reads as duplicates.
#![allow(clippy::duplicated_attributes)]

mod gojson;

pub mod cluster;
pub mod cmd;
pub mod cmdimage;
pub mod configmap;
pub mod disable;
pub mod dockercompose;
pub mod dockercomposelogstream;
pub mod dockercomposeservice;
pub mod dockerimage;
pub mod duration;
pub mod extension;
pub mod extensionrepo;
pub mod filewatch;
pub mod imagemap;
pub mod kubernetesapply;
pub mod kubernetesdiscovery;
pub mod liveupdate;
pub mod objectselector;
pub mod pathname;
pub mod podlogstream;
pub mod portforward;
pub mod probe;
pub mod registry;
pub mod restarton;
pub mod runtimestatus;
pub mod session;
pub mod tiltfile;
pub mod togglebutton;
pub mod uibutton;
pub mod uicomponentlocation;
pub mod uiresource;
pub mod uisession;
pub mod updatestatus;
pub mod yaml;

pub use cluster::*;
pub use cmd::*;
pub use cmdimage::*;
pub use configmap::*;
pub use disable::*;
pub use dockercompose::*;
pub use dockercomposelogstream::*;
pub use dockercomposeservice::*;
pub use dockerimage::*;
pub use duration::*;
pub use extension::*;
pub use extensionrepo::*;
pub use filewatch::*;
pub use imagemap::*;
pub use kubernetesapply::*;
pub use kubernetesdiscovery::*;
pub use liveupdate::*;
pub use objectselector::*;
pub use pathname::path_name;
pub use podlogstream::*;
pub use portforward::*;
pub use probe::*;
pub use registry::*;
pub use restarton::*;
pub use runtimestatus::*;
pub use session::*;
pub use tiltfile::*;
pub use togglebutton::*;
pub use uibutton::*;
pub use uicomponentlocation::*;
pub use uiresource::*;
pub use uisession::*;
pub use updatestatus::*;

/// The API group of every tilt kind.
pub const GROUP: &str = "tilt.dev";
/// The API version of every tilt kind.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in objects.
pub const API_VERSION: &str = "tilt.dev/v1alpha1";

/// The label naming the resource (manifest) an object belongs to, as in Go Tilt.
pub const RESOURCE_LABEL: &str = "tilt.dev/resource";
/// The annotation naming the resource (manifest) an object belongs to, as in Go Tilt.
pub const RESOURCE_ANNOTATION: &str = "tilt.dev/resource";

/// The resource an object belongs to: its [`RESOURCE_ANNOTATION`] (the exact name), else its [`RESOURCE_LABEL`]
/// (the name made label-safe, which differs for names such as `bootstrap (secrets)`).
pub fn resource_name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<&str> {
    let annotation = meta.annotations.as_ref().and_then(|a| a.get(RESOURCE_ANNOTATION));
    annotation.or_else(|| meta.labels.as_ref().and_then(|l| l.get(RESOURCE_LABEL))).map(String::as_str)
}
/// UIResource annotation: the resource's links, as a JSON list of `{url, name}`.
pub const LINKS_ANNOTATION: &str = "tilt.dev/links";
/// UIResource annotation: a Kubernetes resource's port forwards, as a JSON list of `Forward`s.
pub const PORT_FORWARDS_ANNOTATION: &str = "tilt.dev/port-forwards";
/// Annotation on a UIResource: its trigger mode as Go Tilt numbers them (0 auto, 1 manual with auto init,
/// 2 manual, 3 auto with manual init); copied into `status.triggerMode`.
pub const TRIGGER_MODE_ANNOTATION: &str = "tilt.dev/trigger-mode";
/// Annotation on an object that restarts on file changes in auto trigger mode only: the JSON list of the
/// FileWatches it restarts on when auto, so switching modes at run time can restore them.
pub const AUTO_FILE_WATCHES_ANNOTATION: &str = "tilt.dev/auto-file-watches";
/// Annotation on a UIButton saying what the web UI does with it: `DisableToggle` (a resource's
/// enable/disable switch), `StopBuild`, or `Trigger` (the resource's trigger button, shown as the trigger
/// column rather than as a custom button). Absent on custom buttons.
pub const UIBUTTON_TYPE_ANNOTATION: &str = "tilt.dev/uibutton-type";

/// The CustomResourceDefinition of every kind in this crate, in [`for_each_kind!`] order: what a
/// Kubernetes apiserver needs installed to serve them (`tilt crds`), and what the embedded one reports.
pub fn crds() -> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> {
    let mut crds = Vec::new();
    macro_rules! push {
        ($t:ty) => {
            crds.push(<$t as kube::CustomResourceExt>::crd());
        };
    }
    for_each_kind!(push);
    crds
}

/// Calls `$m!(Type)` once for every kind in this crate, so registries (apiserver, CLI) stay in sync.
///
/// Every kind implements `kube::Resource` (cluster scope) and `kube::CustomResourceExt`.
#[macro_export]
macro_rules! for_each_kind {
    ($m:ident) => {
        $m!($crate::Cluster);
        $m!($crate::Cmd);
        $m!($crate::CmdImage);
        $m!($crate::ConfigMap);
        $m!($crate::DockerComposeLogStream);
        $m!($crate::DockerComposeService);
        $m!($crate::DockerImage);
        $m!($crate::Extension);
        $m!($crate::ExtensionRepo);
        $m!($crate::FileWatch);
        $m!($crate::ImageMap);
        $m!($crate::KubernetesApply);
        $m!($crate::KubernetesDiscovery);
        $m!($crate::LiveUpdate);
        $m!($crate::PodLogStream);
        $m!($crate::PortForward);
        $m!($crate::Session);
        $m!($crate::Tiltfile);
        $m!($crate::ToggleButton);
        $m!($crate::UIButton);
        $m!($crate::UIResource);
        $m!($crate::UISession);
    };
}
