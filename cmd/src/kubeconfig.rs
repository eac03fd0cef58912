//! Kubeconfig files: tilt's own (`$TILT_CONFIG` or `~/.tilt-dev/config`) and the `tilt` context merged into
//! the user's kubeconfig the way kind and k3d do it: other entries and `current-context` are left alone,
//! writes are atomic (temp file + rename) and serialized with client-go's `<file>.lock` convention.

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

fn home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"))
}

/// Where tilt writes its own kubeconfig.
pub fn tilt_config_path() -> PathBuf {
    match std::env::var_os("TILT_CONFIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => home().join(".tilt-dev").join("config"),
    }
}

/// Where the instance using `context` writes its own kubeconfig: the default path for `tilt`, a
/// per-port file (`config-<port>`) for a second instance, so it never overwrites the first's.
pub fn own_config_path(context: &str) -> PathBuf {
    let default = tilt_config_path();
    match context.strip_prefix("tilt-") {
        Some(port) if std::env::var_os("TILT_CONFIG").is_none() => default.with_file_name(format!("config-{port}")),
        _ => default,
    }
}

/// Reads the user's kubeconfig (or an empty one).
pub fn read_user_kubeconfig() -> Result<Value> {
    read_kubeconfig(&user_kubeconfig_path())
}

/// The name of the context whose cluster server is `https://127.0.0.1:<port>`, if any.
pub fn context_for_port(config: &Value, port: u16) -> Option<String> {
    let suffix = format!(":{port}");
    let cluster = config["clusters"]
        .as_array()?
        .iter()
        .find(|c| c["cluster"]["server"].as_str().is_some_and(|s| s.trim_end_matches('/').ends_with(&suffix)))?["name"]
        .as_str()?
        .to_string();
    config["contexts"].as_array()?.iter().find(|c| c["context"]["cluster"] == cluster.as_str())?["name"]
        .as_str()
        .map(String::from)
}

/// The user's kubeconfig: the first file of `$KUBECONFIG`, else `~/.kube/config`.
pub fn user_kubeconfig_path() -> PathBuf {
    if let Some(list) = std::env::var_os("KUBECONFIG")
        && let Some(first) = std::env::split_paths(&list).find(|p| !p.as_os_str().is_empty())
    {
        return first;
    }
    home().join(".kube").join("config")
}

/// Holds `<file>.lock` (client-go's convention) until dropped.
struct FileLock(PathBuf);

impl FileLock {
    fn acquire(file: &Path) -> Result<FileLock> {
        let mut lock = file.as_os_str().to_owned();
        lock.push(".lock");
        let lock = PathBuf::from(lock);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match fs::OpenOptions::new().write(true).create_new(true).open(&lock) {
                Ok(_) => return Ok(FileLock(lock)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    bail!("{} is held by another writer; remove it if no kubectl or tilt is running", lock.display())
                }
                Err(e) => return Err(e).with_context(|| format!("creating {}", lock.display())),
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Writes `contents` to `path` atomically, with mode 0600, creating parent directories.
fn write_atomic(path: &Path, contents: &str) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("writing in {}", dir.display()))?;
    tmp.write_all(contents.as_bytes())?;
    tmp.as_file().sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o600))?;
    }
    tmp.persist(path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

fn to_yaml(v: &Value) -> Result<String> {
    tilt_apis::yaml::to_string(v).context("encoding kubeconfig YAML")
}

fn read_kubeconfig(path: &Path) -> Result<Value> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(
            json!({"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": [], "preferences": {}}),
        );
    }
    let v: Value = serde_saphyr::from_str(&text).with_context(|| format!("{} is not valid YAML", path.display()))?;
    if !v.is_object() {
        bail!("{} is not a kubeconfig (expected a mapping)", path.display());
    }
    Ok(v)
}

/// Replaces or appends the entry called `name` in the named list (`clusters`, `users`, `contexts`).
fn upsert(config: &mut Value, list: &str, entry: &Value) -> Result<()> {
    let name = entry["name"].clone();
    if config[list].is_null() {
        config[list] = json!([]);
    }
    let items = config[list].as_array_mut().with_context(|| format!("kubeconfig field {list} is not a list"))?;
    match items.iter_mut().find(|e| e["name"] == name) {
        Some(existing) => *existing = entry.clone(),
        None => items.push(entry.clone()),
    }
    Ok(())
}

/// The server URL of cluster `name` in the user's kubeconfig, if any.
fn cluster_server(config: &Value, name: &str) -> Option<String> {
    config["clusters"].as_array()?.iter().find(|c| c["name"] == name)?["cluster"]["server"].as_str().map(String::from)
}

fn is_live(server: &str) -> bool {
    let host_port = server.split("://").nth(1).unwrap_or(server).trim_end_matches('/');
    host_port
        .parse::<SocketAddr>()
        .ok()
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok())
}

/// The context name this instance should use: `tilt`, unless another live tilt already owns it, then
/// `tilt-<port>`.
pub fn context_name(our_server: &str, port: u16) -> Result<String> {
    let config = read_kubeconfig(&user_kubeconfig_path())?;
    match cluster_server(&config, "tilt") {
        Some(server) if server != our_server && is_live(&server) => Ok(format!("tilt-{port}")),
        _ => Ok("tilt".to_string()),
    }
}

/// Writes tilt's own kubeconfig and merges its cluster, user and context into the user's kubeconfig.
/// Returns the paths written.
pub fn install(tilt: &Value) -> Result<(PathBuf, PathBuf)> {
    let own = own_config_path(tilt["current-context"].as_str().unwrap_or("tilt"));
    for path in [&own, &user_kubeconfig_path()] {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    {
        let _lock = FileLock::acquire(&own)?;
        write_atomic(&own, &to_yaml(tilt)?)?;
    }
    let user = user_kubeconfig_path();
    let _lock = FileLock::acquire(&user)?;
    let mut config = read_kubeconfig(&user)?;
    for list in ["clusters", "users", "contexts"] {
        for entry in tilt[list].as_array().into_iter().flatten() {
            upsert(&mut config, list, entry)?;
        }
    }
    write_atomic(&user, &to_yaml(&config)?)?;
    Ok((own, user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_replaces_by_name_and_keeps_others() {
        let mut config = json!({"clusters": [{"name": "kind", "cluster": {"server": "a"}}, {"name": "tilt", "cluster": {"server": "old"}}], "current-context": "kind"});
        upsert(&mut config, "clusters", &json!({"name": "tilt", "cluster": {"server": "new"}})).unwrap();
        upsert(&mut config, "users", &json!({"name": "tilt", "user": {"token": "t"}})).unwrap();
        assert_eq!(config["clusters"].as_array().unwrap().len(), 2);
        assert_eq!(cluster_server(&config, "tilt").as_deref(), Some("new"));
        assert_eq!(config["current-context"], "kind");
        assert_eq!(config["users"][0]["user"]["token"], "t");
    }

    #[test]
    fn atomic_write_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config");
        let v = json!({"apiVersion": "v1", "kind": "Config", "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:1"}}]});
        write_atomic(&path, &to_yaml(&v).unwrap()).unwrap();
        assert_eq!(read_kubeconfig(&path).unwrap()["clusters"][0]["name"], "x");
        let _lock = FileLock::acquire(&path).unwrap();
        assert!(path.with_file_name("config.lock").exists());
    }
}
