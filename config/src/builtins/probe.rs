//! Readiness probes: `probe()`, `exec_action()`, `http_get_action()`, `tcp_socket_action()`.

use starlark::environment::GlobalsBuilder;
use starlark::starlark_module;
use starlark::values::{Value, ValueLike};
use tilt_apis::{ExecAction, HttpGetAction, Probe, TcpSocketAction};

use super::string_list;
use crate::values::{ExecActionValue, HttpGetActionValue, ProbeValue, TcpSocketActionValue};

/// Registers this module's built-ins.
pub(crate) fn register(builder: &mut GlobalsBuilder) {
    probe_builtins(builder);
}

#[starlark_module]
fn probe_builtins(builder: &mut GlobalsBuilder) {
    /// A readiness probe; exactly one of `exec`, `http_get`, `tcp_socket` must be given.
    fn probe<'v>(
        #[starlark(default = 0)] initial_delay_secs: i32,
        #[starlark(default = 1)] timeout_secs: i32,
        #[starlark(default = 10)] period_secs: i32,
        #[starlark(default = 1)] success_threshold: i32,
        #[starlark(default = 3)] failure_threshold: i32,
        exec: Option<Value<'v>>,
        http_get: Option<Value<'v>>,
        tcp_socket: Option<Value<'v>>,
    ) -> anyhow::Result<ProbeValue> {
        let exec = action::<ExecActionValue>(exec, "exec", "exec_action()")?.map(|a| a.0.clone());
        let http_get = action::<HttpGetActionValue>(http_get, "http_get", "http_get_action()")?.map(|a| a.0.clone());
        let tcp_socket =
            action::<TcpSocketActionValue>(tcp_socket, "tcp_socket", "tcp_socket_action()")?.map(|a| a.0.clone());
        let count = usize::from(exec.is_some()) + usize::from(http_get.is_some()) + usize::from(tcp_socket.is_some());
        if count != 1 {
            anyhow::bail!("exactly one of exec, http_get, or tcp_socket must be specified");
        }
        for (what, value) in [
            ("initial_delay_secs", initial_delay_secs),
            ("timeout_secs", timeout_secs),
            ("period_secs", period_secs),
            ("success_threshold", success_threshold),
            ("failure_threshold", failure_threshold),
        ] {
            if value < 0 {
                anyhow::bail!("{what} must be >= 0, got {value}");
            }
        }
        Ok(ProbeValue(Probe {
            exec,
            http_get,
            tcp_socket,
            initial_delay_seconds: Some(initial_delay_secs),
            timeout_seconds: Some(timeout_secs),
            period_seconds: Some(period_secs),
            success_threshold: Some(success_threshold),
            failure_threshold: Some(failure_threshold),
        }))
    }

    /// A probe action that runs `command` (an argv list, not run in a shell); exit code 0 is healthy.
    fn exec_action<'v>(command: Value<'v>) -> anyhow::Result<ExecActionValue> {
        let command = string_list(Some(command), "command")?;
        if command.is_empty() {
            anyhow::bail!("command must not be empty");
        }
        Ok(ExecActionValue(ExecAction { command }))
    }

    /// A probe action that sends an HTTP GET; a 2xx or 3xx status is healthy.
    fn http_get_action(
        port: i32,
        #[starlark(default = "")] host: &str,
        #[starlark(default = "http")] scheme: &str,
        #[starlark(default = "")] path: &str,
    ) -> anyhow::Result<HttpGetActionValue> {
        validate_port(port)?;
        let scheme = scheme.to_uppercase();
        if scheme != "HTTP" && scheme != "HTTPS" {
            anyhow::bail!("scheme must be 'http' or 'https', got {scheme:?}");
        }
        Ok(HttpGetActionValue(HttpGetAction {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
            scheme,
            http_headers: Vec::new(),
        }))
    }

    /// A probe action that opens a TCP connection; success is healthy.
    fn tcp_socket_action(port: i32, #[starlark(default = "")] host: &str) -> anyhow::Result<TcpSocketActionValue> {
        validate_port(port)?;
        Ok(TcpSocketActionValue(TcpSocketAction { host: host.to_owned(), port }))
    }
}

/// An optional action argument of type `T`.
fn action<'v, T: starlark::values::StarlarkValue<'v>>(
    value: Option<Value<'v>>,
    what: &str,
    constructor: &str,
) -> anyhow::Result<Option<&'v T>> {
    match value.filter(|v| !v.is_none()) {
        None => Ok(None),
        Some(v) => v
            .downcast_ref::<T>()
            .map(Some)
            .ok_or_else(|| anyhow::anyhow!("{what} must be an {constructor}, got {}", v.get_type())),
    }
}

/// Ports are 1–65535.
fn validate_port(port: i32) -> anyhow::Result<()> {
    if !(1..=65535).contains(&port) {
        anyhow::bail!("port must be in the range 1-65535, got {port}");
    }
    Ok(())
}
