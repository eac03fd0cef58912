//! End-to-end tests: the real `tilt` binary, driven by kubectl, kube-rs and the Python client.

mod browser;
mod cli;
mod common;
mod conformance;
mod crds;
mod custom_build;
mod js;
mod kopf;
mod kube;
mod kube_cluster;
mod kubectl;
mod kubernetes;
mod python;
mod resources;
mod shared;
mod terminal;
mod tiltfile;
mod up;
mod watch;
mod web;
