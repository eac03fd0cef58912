//! Image injection: replaces container image references that an ImageMap selects with the image it built,
//! the way Go Tilt does before it applies YAML (containers, init containers, and env values if asked).

use serde_json::Value;
use tilt_apis::ImageMapSpec;

/// An image reference split into its familiar repository name (`docker.io/library/` dropped) and tag.
#[derive(Debug, PartialEq, Eq)]
pub struct ImageName {
    /// `gcr.io/foo/bar`, `nginx`, `myorg/app`.
    pub repository: String,
    /// The tag, if any (a digest is dropped).
    pub tag: Option<String>,
}

impl ImageName {
    /// Parses `[host/]path[:tag][@digest]`.
    pub fn parse(reference: &str) -> ImageName {
        let without_digest = reference.split('@').next().unwrap_or(reference);
        let slash = without_digest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match without_digest[slash..].find(':') {
            Some(i) => (&without_digest[..slash + i], Some(without_digest[slash + i + 1..].to_string())),
            None => (without_digest, None),
        };
        let name = name.strip_prefix("docker.io/").or_else(|| name.strip_prefix("index.docker.io/")).unwrap_or(name);
        let name = name.strip_prefix("library/").unwrap_or(name);
        ImageName { repository: name.to_string(), tag }
    }
}

/// One image to inject: which references it replaces, and with what.
pub struct Injection<'a> {
    /// The ImageMap's spec.
    pub spec: &'a ImageMapSpec,
    /// The built image reference (`status.imageFromCluster`, else `status.image`).
    pub image: &'a str,
}

impl Injection<'_> {
    fn selects(&self, reference: &str) -> bool {
        let selector = ImageName::parse(&self.spec.selector);
        let candidate = ImageName::parse(reference);
        if self.spec.match_exact { selector == candidate } else { selector.repository == candidate.repository }
    }
}

/// Injects every image into `object` (any kind: pod specs are found wherever `containers` lists are);
/// returns how many references were replaced.
pub fn inject(object: &mut Value, injections: &[Injection<'_>]) -> usize {
    let mut count = 0;
    walk(object, injections, &mut count);
    count
}

fn walk(value: &mut Value, injections: &[Injection<'_>], count: &mut usize) {
    match value {
        Value::Object(map) => {
            for key in ["containers", "initContainers"] {
                if let Some(Value::Array(containers)) = map.get_mut(key) {
                    for container in containers.iter_mut() {
                        inject_container(container, injections, count);
                    }
                }
            }
            for (key, child) in map.iter_mut() {
                if key != "containers" && key != "initContainers" {
                    walk(child, injections, count);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| walk(v, injections, count)),
        _ => {}
    }
}

fn inject_container(container: &mut Value, injections: &[Injection<'_>], count: &mut usize) {
    let Some(map) = container.as_object_mut() else { return };
    if let Some(reference) = map.get("image").and_then(Value::as_str).map(str::to_string)
        && let Some(inj) = injections.iter().find(|i| i.selects(&reference))
    {
        map.insert("image".into(), Value::String(inj.image.to_string()));
        // The image exists only where tilt built it; never ask a registry for it.
        map.insert("imagePullPolicy".into(), Value::String("IfNotPresent".into()));
        if let Some(cmd) = &inj.spec.override_command {
            map.insert("command".into(), serde_json::json!(cmd.command));
        }
        if let Some(args) = &inj.spec.override_args {
            map.insert("args".into(), serde_json::json!(args.args));
        }
        *count += 1;
    }
    if let Some(Value::Array(env)) = map.get_mut("env") {
        for var in env.iter_mut() {
            let Some(value) = var.get("value").and_then(Value::as_str).map(str::to_string) else { continue };
            if let Some(inj) = injections.iter().find(|i| i.spec.match_in_env_vars && i.selects(&value)) {
                var["value"] = Value::String(inj.image.to_string());
                *count += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_references() {
        assert_eq!(ImageName::parse("nginx"), ImageName { repository: "nginx".into(), tag: None });
        assert_eq!(
            ImageName::parse("docker.io/library/nginx:1.2"),
            ImageName { repository: "nginx".into(), tag: Some("1.2".into()) }
        );
        assert_eq!(
            ImageName::parse("localhost:5000/app:tilt-abc@sha256:00"),
            ImageName { repository: "localhost:5000/app".into(), tag: Some("tilt-abc".into()) }
        );
        assert_eq!(
            ImageName::parse("localhost:5000/app"),
            ImageName { repository: "localhost:5000/app".into(), tag: None }
        );
    }

    fn spec(selector: &str) -> ImageMapSpec {
        ImageMapSpec { selector: selector.into(), ..ImageMapSpec::default() }
    }

    #[test]
    fn injects_containers_and_init_containers_of_any_kind() {
        let mut deploy = json!({"kind": "Deployment", "spec": {"template": {"spec": {
            "initContainers": [{"name": "init", "image": "app:latest"}],
            "containers": [{"name": "app", "image": "docker.io/app"}, {"name": "side", "image": "redis"}]
        }}}});
        let s = spec("app");
        let n = inject(&mut deploy, &[Injection { spec: &s, image: "app:tilt-0123" }]);
        assert_eq!(n, 2);
        let pod = &deploy["spec"]["template"]["spec"];
        assert_eq!(pod["containers"][0]["image"], "app:tilt-0123");
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(pod["initContainers"][0]["image"], "app:tilt-0123");
        assert_eq!(pod["containers"][1]["image"], "redis");
        assert!(pod["containers"][1].get("imagePullPolicy").is_none());
    }

    #[test]
    fn exact_match_needs_the_tag_and_env_values_need_opt_in() {
        let mut cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "app:v1", "env": [{"name": "IMG", "value": "app:v2"}]},
            {"name": "b", "image": "app:v2"}
        ]}}}}}});
        let mut s = spec("app:v2");
        s.match_exact = true;
        assert_eq!(inject(&mut cron.clone(), &[Injection { spec: &s, image: "app:tilt-1" }]), 1);
        s.match_in_env_vars = true;
        assert_eq!(inject(&mut cron, &[Injection { spec: &s, image: "app:tilt-1" }]), 2);
        let c = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"];
        assert_eq!(c[0]["image"], "app:v1");
        assert_eq!(c[0]["env"][0]["value"], "app:tilt-1");
        assert_eq!(c[1]["image"], "app:tilt-1");
    }
}
