//! FileWatch: a set of paths on the host watched for changes, with the recent change batches in status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{DisableSource, DisableStatus};

/// Which files to watch, and which changes under them to ignore.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "FileWatch",
    doc = "Paths on the host watched for file changes.",
    plural = "filewatches",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "filewatch",
    shortname = "fw",
    status = "FileWatchStatus",
    printcolumn(name = "Paths", type_ = "string", json_path = ".spec.watchedPaths"),
    printcolumn(name = "Last Event", type_ = "date", json_path = ".status.lastEventTime")
)]
#[serde(rename_all = "camelCase")]
pub struct FileWatchSpec {
    /// Files or directories to watch; must not be empty.
    #[serde(deserialize_with = "crate::gojson::null_as_default")]
    pub watched_paths: Vec<String>,
    /// Rules that filter out some of the changes under `watchedPaths`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignores: Vec<IgnoreDef>,
    /// Specifies how to disable this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_source: Option<DisableSource>,
}

/// A set of paths a FileWatch (or a Docker build context) ignores.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IgnoreDef {
    /// Directory the patterns are relative to; with no patterns, everything under it is ignored.
    pub base_path: String,
    /// Dockerignore-style patterns; absolute-looking ones are rooted at `basePath`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<String>,
}

/// What the watcher has seen so far.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileWatchStatus {
    /// When the filesystem monitor started; unset until it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_start_time: Option<MicroTime>,
    /// Time of the newest file event; a watermark for consumers that don't need the file list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_time: Option<MicroTime>,
    /// The most recent batches of changes (at most 20), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_events: Vec<FileEvent>,
    /// Set when the watch has failed; no further events should be expected.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Details about whether/why this is disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_status: Option<DisableStatus>,
}

/// One batch of file changes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileEvent {
    /// Approximate time of the batch; an opaque watermark, unrelated to file mtimes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<MicroTime>,
    /// Paths that were created, modified or deleted.
    #[serde(deserialize_with = "crate::gojson::null_as_default")]
    pub seen_files: Vec<String>,
}
