//! Starlark value types that Tilt's built-ins return: `blob`, trigger modes, probes and their actions, port
//! forwards and links. Each holds plain Rust data, so nothing needs tracing or freezing.

use std::fmt;

use allocative::Allocative;
use serde::{Serialize, Serializer};
use starlark::any::ProvidesStaticType;
use starlark::starlark_simple_value;
use starlark::values::{Heap, NoSerialize, StarlarkValue, Value, ValueLike, starlark_value};
use tilt_apis::{ExecAction, Forward, HttpGetAction, Probe, TcpSocketAction};

use crate::state::TriggerMode;

/// Text that is content rather than a path: what `local()`, `read_file()` and `encode_yaml()` return.
/// `k8s_yaml(blob)` parses it as YAML where `k8s_yaml(str)` reads a file. `str(blob)` gives the text, and
/// built-ins that take a string accept a blob too.
#[derive(Debug, Clone, PartialEq, Eq, ProvidesStaticType, Allocative)]
pub(crate) struct Blob {
    /// The text.
    pub text: String,
}
starlark_simple_value!(Blob);

impl fmt::Display for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

#[starlark_value(type = "blob")]
impl<'v> StarlarkValue<'v> for Blob {
    fn to_bool(&self) -> bool {
        !self.text.is_empty()
    }

    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(match other.downcast_ref::<Blob>() {
            Some(b) => b.text == self.text,
            None => other.unpack_str() == Some(self.text.as_str()),
        })
    }

    fn add(&self, rhs: Value<'v>, heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        let rhs = text_of(rhs)?;
        Some(Ok(heap.alloc(Blob { text: format!("{}{}", self.text, rhs) })))
    }

    fn radd(&self, lhs: Value<'v>, heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        let lhs = lhs.unpack_str()?;
        Some(Ok(heap.alloc(Blob { text: format!("{lhs}{}", self.text) })))
    }
}

/// The text of a `str` or a `blob`.
pub(crate) fn text_of(value: Value<'_>) -> Option<&str> {
    match value.unpack_str() {
        Some(s) => Some(s),
        None => value.downcast_ref::<Blob>().map(|b| b.text.as_str()),
    }
}

/// `TRIGGER_MODE_AUTO` / `TRIGGER_MODE_MANUAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ProvidesStaticType, NoSerialize, Allocative)]
pub(crate) struct TriggerModeValue(#[allocative(skip)] pub TriggerMode);
starlark_simple_value!(TriggerModeValue);

impl fmt::Display for TriggerModeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            TriggerMode::Auto => f.write_str("TRIGGER_MODE_AUTO"),
            TriggerMode::Manual => f.write_str("TRIGGER_MODE_MANUAL"),
        }
    }
}

#[starlark_value(type = "trigger_mode")]
impl<'v> StarlarkValue<'v> for TriggerModeValue {
    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other.downcast_ref::<TriggerModeValue>().is_some_and(|o| o.0 == self.0))
    }
}

/// Renders a list of strings the way Starlark shows it.
fn fmt_str_list(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(", "))
}

/// What `probe()` returns: a readiness probe for `local_resource(readiness_probe=…)`.
#[derive(Debug, Clone, PartialEq, ProvidesStaticType, NoSerialize, Allocative)]
pub(crate) struct ProbeValue(#[allocative(skip)] pub Probe);
starlark_simple_value!(ProbeValue);

impl fmt::Display for ProbeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.0;
        let action = if let Some(exec) = &p.exec {
            format!("exec={}", ExecActionValue(exec.clone()))
        } else if let Some(http) = &p.http_get {
            format!("http_get={}", HttpGetActionValue(http.clone()))
        } else if let Some(tcp) = &p.tcp_socket {
            format!("tcp_socket={}", TcpSocketActionValue(tcp.clone()))
        } else {
            String::new()
        };
        write!(
            f,
            "probe(initial_delay_secs={}, timeout_secs={}, period_secs={}, success_threshold={}, failure_threshold={}, {action})",
            p.initial_delay_seconds.unwrap_or_default(),
            p.timeout_seconds.unwrap_or_default(),
            p.period_seconds.unwrap_or_default(),
            p.success_threshold.unwrap_or_default(),
            p.failure_threshold.unwrap_or_default(),
        )
    }
}

#[starlark_value(type = "probe")]
impl<'v> StarlarkValue<'v> for ProbeValue {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        let p = &self.0;
        Some(match attribute {
            "initial_delay_secs" => heap.alloc(p.initial_delay_seconds.unwrap_or_default()),
            "timeout_secs" => heap.alloc(p.timeout_seconds.unwrap_or_default()),
            "period_secs" => heap.alloc(p.period_seconds.unwrap_or_default()),
            "success_threshold" => heap.alloc(p.success_threshold.unwrap_or_default()),
            "failure_threshold" => heap.alloc(p.failure_threshold.unwrap_or_default()),
            "exec" => p.exec.clone().map_or(Value::new_none(), |a| heap.alloc(ExecActionValue(a))),
            "http_get" => p.http_get.clone().map_or(Value::new_none(), |a| heap.alloc(HttpGetActionValue(a))),
            "tcp_socket" => p.tcp_socket.clone().map_or(Value::new_none(), |a| heap.alloc(TcpSocketActionValue(a))),
            _ => return None,
        })
    }

    fn dir_attr(&self) -> Vec<String> {
        [
            "exec",
            "failure_threshold",
            "http_get",
            "initial_delay_secs",
            "period_secs",
            "success_threshold",
            "tcp_socket",
            "timeout_secs",
        ]
        .map(String::from)
        .to_vec()
    }
}

/// What `exec_action()` returns.
#[derive(Debug, Clone, PartialEq, ProvidesStaticType, NoSerialize, Allocative)]
pub(crate) struct ExecActionValue(#[allocative(skip)] pub ExecAction);
starlark_simple_value!(ExecActionValue);

impl fmt::Display for ExecActionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exec_action(command={})", fmt_str_list(&self.0.command))
    }
}

#[starlark_value(type = "exec_action")]
impl<'v> StarlarkValue<'v> for ExecActionValue {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        (attribute == "command").then(|| heap.alloc(self.0.command.clone()))
    }

    fn dir_attr(&self) -> Vec<String> {
        vec!["command".to_owned()]
    }
}

/// What `http_get_action()` returns.
#[derive(Debug, Clone, PartialEq, ProvidesStaticType, NoSerialize, Allocative)]
pub(crate) struct HttpGetActionValue(#[allocative(skip)] pub HttpGetAction);
starlark_simple_value!(HttpGetActionValue);

impl fmt::Display for HttpGetActionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.0;
        write!(f, "http_get_action(port={}, host={:?}, scheme={:?}, path={:?})", a.port, a.host, a.scheme, a.path)
    }
}

#[starlark_value(type = "http_get_action")]
impl<'v> StarlarkValue<'v> for HttpGetActionValue {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        let a = &self.0;
        Some(match attribute {
            "port" => heap.alloc(a.port),
            "host" => heap.alloc(a.host.as_str()),
            "scheme" => heap.alloc(a.scheme.to_lowercase()),
            "path" => heap.alloc(a.path.as_str()),
            _ => return None,
        })
    }

    fn dir_attr(&self) -> Vec<String> {
        ["host", "path", "port", "scheme"].map(String::from).to_vec()
    }
}

/// What `tcp_socket_action()` returns.
#[derive(Debug, Clone, PartialEq, ProvidesStaticType, NoSerialize, Allocative)]
pub(crate) struct TcpSocketActionValue(#[allocative(skip)] pub TcpSocketAction);
starlark_simple_value!(TcpSocketActionValue);

impl fmt::Display for TcpSocketActionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tcp_socket_action(port={}, host={:?})", self.0.port, self.0.host)
    }
}

#[starlark_value(type = "tcp_socket_action")]
impl<'v> StarlarkValue<'v> for TcpSocketActionValue {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        match attribute {
            "port" => Some(heap.alloc(self.0.port)),
            "host" => Some(heap.alloc(self.0.host.as_str())),
            _ => None,
        }
    }

    fn dir_attr(&self) -> Vec<String> {
        ["host", "port"].map(String::from).to_vec()
    }
}

/// What `port_forward()` returns.
#[derive(Debug, Clone, PartialEq, ProvidesStaticType, NoSerialize, Allocative)]
pub(crate) struct PortForwardValue(#[allocative(skip)] pub Forward);
starlark_simple_value!(PortForwardValue);

impl fmt::Display for PortForwardValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.0;
        write!(f, "port_forward(local_port={}, container_port={}, name={:?})", p.local_port, p.container_port, p.name)
    }
}

#[starlark_value(type = "port_forward")]
impl<'v> StarlarkValue<'v> for PortForwardValue {}

/// What `link()` returns.
#[derive(Debug, Clone, PartialEq, Eq, ProvidesStaticType, NoSerialize, Allocative)]
pub(crate) struct LinkValue {
    /// The URL.
    pub url: String,
    /// The label shown for it.
    pub name: String,
}
starlark_simple_value!(LinkValue);

impl fmt::Display for LinkValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link(url={:?}, name={:?})", self.url, self.name)
    }
}

#[starlark_value(type = "link")]
impl<'v> StarlarkValue<'v> for LinkValue {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        match attribute {
            "url" => Some(heap.alloc(self.url.as_str())),
            "name" => Some(heap.alloc(self.name.as_str())),
            _ => None,
        }
    }

    fn dir_attr(&self) -> Vec<String> {
        ["name", "url"].map(String::from).to_vec()
    }
}

/// What `sync()`, `run()`, `fall_back_on()`, `restart_container()` and `initial_sync()` return: a live-update
/// step, described for messages.
#[derive(Debug, Clone, PartialEq, Eq, ProvidesStaticType, NoSerialize, Allocative)]
pub(crate) struct LiveUpdateStepValue(pub String);
starlark_simple_value!(LiveUpdateStepValue);

impl fmt::Display for LiveUpdateStepValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[starlark_value(type = "live_update_step")]
impl<'v> StarlarkValue<'v> for LiveUpdateStepValue {}

/// What `workload_to_resource_function()`'s function receives: a workload's `name`, `kind`, `namespace` and
/// API `group`.
#[derive(Debug, Clone, PartialEq, Eq, ProvidesStaticType, NoSerialize, Allocative)]
pub(crate) struct K8sObjectId {
    /// `metadata.name`.
    pub name: String,
    /// `kind`.
    pub kind: String,
    /// Namespace (`default` when unset).
    pub namespace: String,
    /// API group (`core` for the core group).
    pub group: String,
}
starlark_simple_value!(K8sObjectId);

impl fmt::Display for K8sObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", format!("{}:{}:{}:{}", self.name, self.kind, self.namespace, self.group).to_lowercase())
    }
}

#[starlark_value(type = "K8sObjectID")]
impl<'v> StarlarkValue<'v> for K8sObjectId {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        let value = match attribute {
            "name" => &self.name,
            "kind" => &self.kind,
            "namespace" => &self.namespace,
            "group" => &self.group,
            _ => return None,
        };
        Some(heap.alloc(value.as_str()))
    }

    fn dir_attr(&self) -> Vec<String> {
        ["name", "kind", "namespace", "group"].map(String::from).to_vec()
    }
}
