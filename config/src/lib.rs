//! Tiltfile (Starlark) evaluation into tilt.dev API objects.
//!
//! This crate will hold the Starlark dialect, Tilt's built-ins (`local_resource`, `k8s_yaml`, `docker_build`,
//! …) and the translation of a Tiltfile into the set of objects `tilt up` declares. Starlark lives in this
//! crate alone so that the rest of the workspace builds without it. Until it lands, the Tiltfile controller
//! reports every Tiltfile as not loadable.
