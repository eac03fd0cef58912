//! Kubernetes and image built-ins: `k8s_yaml()`, `k8s_resource()`, `port_forward()`, `docker_build()` and
//! `custom_build()` (with the live-update step constructors they accept), `k8s_context()`, `k8s_namespace()`,
//! `default_registry()`.
//! They record declarations; [`crate::assemble`] groups the YAML into resources afterwards.

use std::path::{Path, PathBuf};

use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::none::NoneType;
use starlark::values::{Value, ValueLike};
use tilt_apis::Forward;

use super::local_resource::{links_arg, trigger_mode_arg};
use super::{
    command_argv, env_list, is_blob, labels_arg, path_arg, sequence_items, string_arg, string_list, string_map,
    validate_resource_name,
};
use crate::state::{TiltfileState, TriggerMode};
use crate::values::{LiveUpdateStepValue, PortForwardValue, text_of};
use crate::yaml;

/// Kubernetes and image declarations of one evaluation.
#[derive(Default)]
pub(crate) struct K8sState {
    /// Objects from `k8s_yaml()`, in order.
    pub entities: Vec<Entity>,
    /// `k8s_resource()` calls, in order.
    pub resource_options: Vec<K8sResourceOptions>,
    /// `docker_build()` and `custom_build()` calls, in order.
    pub images: Vec<ImageDecl>,
    /// `k8s_kind()` calls, in order.
    pub kinds: Vec<KindDecl>,
    /// The file whose module holds the `workload_to_resource_function()` function, and where it was called.
    pub workload_function: Option<(PathBuf, String)>,
    /// Resource names the `workload_to_resource_function()` function gave, by index in `entities`.
    pub workload_names: std::collections::HashMap<usize, String>,
}

/// Module variable holding the `workload_to_resource_function()` function until the Tiltfile has run.
pub(crate) const WORKLOAD_FUNCTION_VAR: &str = "__tilt_workload_to_resource_function";

/// One `k8s_kind()` call: objects of this kind are workloads, with images at these JSON paths.
#[derive(Clone, Debug)]
pub(crate) struct KindDecl {
    /// Which objects.
    pub selector: ObjectSelector,
    /// JSON paths (`{.spec.image}`) of their images, as field paths; empty: the kind is a workload without
    /// image paths of its own.
    pub image_json_paths: Vec<(String, Vec<PathStep>)>,
}

/// A step of a JSON path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PathStep {
    /// `.field`
    Field(String),
    /// `[N]`
    Index(usize),
    /// `[*]`
    All,
}

/// Parses a kubectl-style JSON path (`{.spec.template.spec.containers[*].image}`, braces optional) made of
/// fields, indexes and `[*]`.
pub(crate) fn parse_json_path(path: &str) -> anyhow::Result<Vec<PathStep>> {
    let inner = path.trim();
    let inner = inner.strip_prefix('{').and_then(|p| p.strip_suffix('}')).unwrap_or(inner);
    let mut steps = Vec::new();
    let mut rest = inner;
    let bad = || anyhow::anyhow!("error parsing json paths {path:?}: supported are .field, [N] and [*]");
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            if end == 0 {
                return Err(bad());
            }
            steps.push(PathStep::Field(after[..end].to_owned()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').ok_or_else(bad)?;
            let index = &after[..end];
            steps.push(if index == "*" { PathStep::All } else { PathStep::Index(index.parse().map_err(|_| bad())?) });
            rest = &after[end + 1..];
        } else {
            return Err(bad());
        }
    }
    if steps.is_empty() {
        return Err(bad());
    }
    Ok(steps)
}

/// The values at `steps` in `value`.
pub(crate) fn values_at<'a>(value: &'a serde_json::Value, steps: &[PathStep]) -> Vec<&'a serde_json::Value> {
    let Some((first, rest)) = steps.split_first() else {
        return vec![value];
    };
    let next: Vec<&serde_json::Value> = match first {
        PathStep::Field(f) => value.get(f).into_iter().collect(),
        PathStep::Index(i) => value.get(*i).into_iter().collect(),
        PathStep::All => value.as_array().map(|a| a.iter().collect()).unwrap_or_default(),
    };
    next.into_iter().flat_map(|v| values_at(v, rest)).collect()
}

/// Go Tilt's object selector for `k8s_kind()` and `filter_yaml()`: case-insensitive regular expressions on
/// `apiVersion`, `kind`, name and namespace that match anywhere in the field; an empty one matches anything.
#[derive(Clone, Debug)]
pub(crate) struct ObjectSelector {
    regexes: [regex::Regex; 4],
    /// The expressions as given (for the API's `ObjectSelector`).
    pub spec: tilt_apis::ObjectSelector,
}

impl ObjectSelector {
    /// Compiles the four expressions.
    pub fn new(api_version: &str, kind: &str, name: &str, namespace: &str) -> anyhow::Result<ObjectSelector> {
        let compile = |what: &str, re: &str| {
            let re = if re.is_empty() { String::new() } else { format!("(?i){re}") };
            regex::Regex::new(&re).map_err(|e| anyhow::anyhow!("error parsing {what} regexp: {e}"))
        };
        let regexes = [
            compile("apiVersion", api_version)?,
            compile("kind", kind)?,
            compile("name", name)?,
            compile("namespace", namespace)?,
        ];
        let insensitive = |re: &str| if re.is_empty() { String::new() } else { format!("(?i){re}") };
        let spec = tilt_apis::ObjectSelector {
            api_version_regexp: insensitive(api_version),
            kind_regexp: insensitive(kind),
            name_regexp: insensitive(name),
            namespace_regexp: insensitive(namespace),
        };
        Ok(ObjectSelector { regexes, spec })
    }

    /// Whether `e` matches every expression.
    pub fn matches(&self, e: &Entity) -> bool {
        let fields = [e.str_at("/apiVersion"), e.kind(), e.name(), e.namespace()];
        self.regexes.iter().zip(fields).all(|(re, field)| re.is_match(field))
    }
}

/// One Kubernetes object from `k8s_yaml()`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entity {
    /// The object.
    pub obj: serde_json::Value,
}

impl Entity {
    pub(crate) fn str_at(&self, pointer: &str) -> &str {
        self.obj.pointer(pointer).and_then(|v| v.as_str()).unwrap_or("")
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.str_at("/metadata/name")
    }

    /// `kind`.
    pub fn kind(&self) -> &str {
        self.str_at("/kind")
    }

    /// `metadata.namespace`, `default` when unset.
    pub fn namespace(&self) -> &str {
        match self.str_at("/metadata/namespace") {
            "" => "default",
            ns => ns,
        }
    }

    /// The API group (`core` for the core group).
    pub fn group(&self) -> &str {
        match self.str_at("/apiVersion").split_once('/') {
            Some((group, _)) => group,
            None => "core",
        }
    }

    /// Candidate resource names, shortest first: `name`, `name:kind`, `name:kind:namespace`,
    /// `name:kind:namespace:group`, lowercased (Go Tilt's `potentialNames`).
    pub fn potential_names(&self) -> Vec<String> {
        let parts = [self.name(), self.kind(), self.namespace(), self.group()];
        (1..=parts.len()).map(|n| parts[..n].join(":").to_lowercase()).collect()
    }

    /// `name:kind:namespace`, as shown in messages.
    pub fn full_name(&self) -> String {
        format!("{}:{}:{}", self.name(), self.kind(), self.namespace())
    }
}

/// One `k8s_resource()` call.
#[derive(Clone, Debug, Default)]
pub(crate) struct K8sResourceOptions {
    /// The workload (resource) it configures; for a new resource, `new_name`.
    pub workload: String,
    /// The name to give the resource.
    pub new_name: String,
    /// Whether it creates a resource from `objects` rather than configuring a workload.
    pub manually_grouped: bool,
    /// Port forwards to the resource's pod.
    pub port_forwards: Vec<Forward>,
    /// Extra label selectors for the resource's pods.
    pub extra_pod_selectors: Vec<Vec<(String, String)>>,
    /// Trigger mode, if given.
    pub trigger_mode: Option<TriggerMode>,
    /// `auto_init`, if given.
    pub auto_init: Option<bool>,
    /// Resources that must be ready first.
    pub resource_deps: Vec<String>,
    /// Object selectors (`name[:kind[:namespace]]`) of objects moved into this resource.
    pub objects: Vec<String>,
    /// Links shown with the resource.
    pub links: Vec<(String, String)>,
    /// User labels.
    pub labels: Vec<String>,
    /// `discovery_strategy`, if given.
    pub discovery_strategy: String,
    /// Where it was called, for messages.
    pub position: String,
}

/// One `docker_build()` or `custom_build()` call; a custom build leaves the Docker fields empty.
#[derive(Clone, Debug, Default)]
pub(crate) struct ImageDecl {
    /// The image reference as written.
    pub ref_: String,
    /// Absolute build context.
    pub context: PathBuf,
    /// Absolute Dockerfile path (empty with `dockerfile_contents`).
    pub dockerfile_path: Option<PathBuf>,
    /// Dockerfile text.
    pub dockerfile_contents: String,
    /// `KEY=VALUE` build args, sorted.
    pub build_args: Vec<String>,
    /// Dockerfile stage.
    pub target: String,
    /// `--ssh` specs.
    pub ssh: Vec<String>,
    /// `--secret` specs.
    pub secrets: Vec<String>,
    /// `--network`.
    pub network: String,
    /// Extra tags.
    pub extra_tags: Vec<String>,
    /// `--cache-from`.
    pub cache_from: Vec<String>,
    /// `--pull`.
    pub pull: bool,
    /// `--platform`.
    pub platform: String,
    /// `--add-host`.
    pub extra_hosts: Vec<String>,
    /// Context ignore patterns from `ignore=`.
    pub ignores: Vec<String>,
    /// Context paths from `only=`.
    pub only: Vec<String>,
    /// Patterns of the context's `.dockerignore`.
    pub dockerignore: Vec<String>,
    /// Replacement container command.
    pub entrypoint: Vec<String>,
    /// Replacement container args.
    pub container_args: Option<Vec<String>>,
    /// Also replace the image in container env vars.
    pub match_in_env_vars: bool,
    /// The Tiltfile that declared it (never part of the context).
    pub tiltfile_path: PathBuf,
    /// Set for a `custom_build()`: the command that builds the image instead of `docker build`.
    pub custom: Option<CustomBuildDecl>,
}

/// What a `custom_build()` runs and watches.
#[derive(Clone, Debug, Default)]
pub(crate) struct CustomBuildDecl {
    /// The command's argv (`sh -c SCRIPT` for a string).
    pub command: Vec<String>,
    /// Absolute working directory.
    pub dir: PathBuf,
    /// `KEY=VALUE` over tilt's environment, sorted.
    pub env: Vec<String>,
    /// Absolute paths whose changes rerun the command.
    pub deps: Vec<PathBuf>,
    /// Fixed tag the command produces (`tag=`); empty: tilt picks one.
    pub tag: String,
    /// Never push the image (`disable_push=`).
    pub disable_push: bool,
    /// The command puts the image somewhere other than the local Docker (`skips_local_docker=`).
    pub skips_local_docker: bool,
    /// Absolute path of the file the command writes the image reference to; empty when unset.
    pub outputs_image_ref_to: String,
    /// References of images this build needs first (`image_deps=`).
    pub image_deps: Vec<String>,
}

/// Registers this module's built-ins.
pub(crate) fn register(builder: &mut GlobalsBuilder) {
    k8s_builtins(builder);
}

#[starlark_module]
fn k8s_builtins(builder: &mut GlobalsBuilder) {
    /// Declares Kubernetes objects: a YAML file path, a blob of YAML, or a list of those.
    fn k8s_yaml<'v>(
        yaml: Value<'v>,
        #[starlark(default = false)] allow_duplicates: bool,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let state = TiltfileState::from_eval(eval)?;
        let items = if yaml.is_none() { Vec::new() } else { sequence_items(yaml).unwrap_or_else(|| vec![yaml]) };
        if items.is_empty() {
            anyhow::bail!("Empty or Invalid YAML Resource Detected");
        }
        let mut entities = Vec::new();
        for item in items {
            let (text, source) = if is_blob(item) {
                (string_arg(item, "yaml")?, "blob".to_owned())
            } else {
                let path = PathBuf::from(path_arg(state, item, "yaml")?);
                let text = state
                    .read_file(&path)
                    .map_err(|e| anyhow::anyhow!("error reading yaml file {}: {e}", path.display()))?;
                (text, path.display().to_string())
            };
            entities.extend(parse_entities(&text).map_err(|e| anyhow::anyhow!("{source} is not valid YAML: {e}"))?);
        }
        let mut rec = state.rec();
        let existing = &mut rec.k8s.entities;
        if !allow_duplicates {
            for e in &entities {
                let key = e.potential_names().pop();
                if existing.iter().any(|x| x.potential_names().pop() == key) {
                    anyhow::bail!(
                        "Duplicate YAML: {}. Please ensure each object is only declared once, or pass \
                         allow_duplicates=True to k8s_yaml()",
                        e.full_name()
                    );
                }
            }
        }
        existing.extend(entities);
        Ok(NoneType)
    }

    /// Configures the resource of a workload (or, with `new_name` and `objects`, creates one).
    fn k8s_resource<'v>(
        #[starlark(default = "")] workload: &str,
        #[starlark(default = "")] new_name: &str,
        port_forwards: Option<Value<'v>>,
        extra_pod_selectors: Option<Value<'v>>,
        trigger_mode: Option<Value<'v>>,
        resource_deps: Option<Value<'v>>,
        objects: Option<Value<'v>>,
        auto_init: Option<bool>,
        pod_readiness: Option<&str>,
        links: Option<Value<'v>>,
        labels: Option<Value<'v>>,
        discovery_strategy: Option<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let state = TiltfileState::from_eval(eval)?;
        if let Some(mode) = pod_readiness
            && !matches!(mode, "" | "wait" | "ignore")
        {
            anyhow::bail!("pod_readiness must be 'wait' or 'ignore', got {mode:?}");
        }
        let discovery_strategy = discovery_strategy.unwrap_or_default().to_owned();
        if !matches!(discovery_strategy.as_str(), "" | "default" | "selectors-only") {
            anyhow::bail!("discovery_strategy must be 'default' or 'selectors-only', got {discovery_strategy:?}");
        }
        let manually_grouped = workload.is_empty();
        let name = if manually_grouped { new_name } else { workload };
        if name.is_empty() {
            anyhow::bail!(
                "Resource name missing. Must give a name for an existing resource or a new_name to create a new resource."
            );
        }
        if !new_name.is_empty() {
            validate_resource_name(new_name)?;
        }
        let objects = string_list(objects, "objects")?;
        if manually_grouped && objects.is_empty() {
            anyhow::bail!(
                "k8s_resource doesn't specify a workload or any objects. All non-workload resources must specify 1 \
                 or more objects"
            );
        }
        let options = K8sResourceOptions {
            workload: name.to_owned(),
            new_name: new_name.to_owned(),
            manually_grouped,
            port_forwards: port_forwards_arg(port_forwards)
                .map_err(|e| anyhow::anyhow!("k8s_resource {name:?}: {e}"))?,
            extra_pod_selectors: pod_selectors_arg(extra_pod_selectors)?,
            trigger_mode: trigger_mode_arg(trigger_mode)?,
            auto_init,
            resource_deps: string_list(resource_deps, "resource_deps")?,
            objects,
            links: links_arg(links)?,
            labels: labels_arg(labels)?,
            discovery_strategy,
            position: eval.call_stack_top_location().map(|l| l.to_string()).unwrap_or_default(),
        };
        state.rec().k8s.resource_options.push(options);
        Ok(NoneType)
    }

    /// Tells Tilt that objects of `kind` are workloads (each gets its own resource), with images at
    /// `image_json_path` (kubectl JSON paths such as `{.spec.image}`).
    fn k8s_kind<'v>(
        #[starlark(require = pos)] kind: &str,
        #[starlark(require = named)] image_json_path: Option<Value<'v>>,
        #[starlark(require = named, default = "")] api_version: &str,
        #[starlark(require = named)] pod_readiness: Option<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let state = TiltfileState::from_eval(eval)?;
        if kind.is_empty() {
            anyhow::bail!("k8s_kind: kind must not be empty");
        }
        if let Some(mode) = pod_readiness
            && !matches!(mode, "" | "wait" | "ignore")
        {
            anyhow::bail!("pod_readiness must be 'wait' or 'ignore', got {mode:?}");
        }
        let selector = ObjectSelector::new(api_version, kind, "", "")?;
        let image_json_paths = string_list(image_json_path, "image_json_path")?
            .into_iter()
            .map(|p| parse_json_path(&p).map(|steps| (p, steps)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let decl = KindDecl { selector, image_json_paths };
        state.rec().k8s.kinds.push(decl);
        Ok(NoneType)
    }

    /// Names workload resources with `func(id)`, where `id` has `.name`, `.kind`, `.namespace` and `.group`,
    /// instead of the shortest unique `name[:kind[:namespace[:group]]]`.
    fn workload_to_resource_function<'v>(
        #[starlark(require = pos)] func: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let state = TiltfileState::from_eval(eval)?;
        if func.get_type() != "function" {
            anyhow::bail!("workload_to_resource_function: func must be a function, got {}", func.get_type());
        }
        let position = eval.call_stack_top_location().map(|l| l.to_string()).unwrap_or_default();
        eval.module().set(WORKLOAD_FUNCTION_VAR, func);
        state.rec().k8s.workload_function = Some((state.current_file(), position));
        Ok(NoneType)
    }

    /// A port forward for `k8s_resource(port_forwards=…)`.
    fn port_forward(
        local_port: i32,
        container_port: Option<i32>,
        #[starlark(default = "")] name: &str,
        #[starlark(default = "")] link_path: &str,
        #[starlark(default = "")] host: &str,
    ) -> anyhow::Result<PortForwardValue> {
        check_port(local_port)?;
        let container_port = container_port.unwrap_or(0);
        check_port(container_port)?;
        Ok(PortForwardValue(Forward {
            local_port,
            container_port,
            host: host.to_owned(),
            name: name.to_owned(),
            path: link_path.to_owned(),
        }))
    }

    /// Builds an image with `docker build`; Kubernetes objects that use `ref` get the built image.
    fn docker_build<'v>(
        r#ref: &str,
        context: Value<'v>,
        build_args: Option<Value<'v>>,
        dockerfile: Option<Value<'v>>,
        dockerfile_contents: Option<Value<'v>>,
        cache: Option<Value<'v>>,
        live_update: Option<Value<'v>>,
        #[starlark(default = false)] match_in_env_vars: bool,
        ignore: Option<Value<'v>>,
        only: Option<Value<'v>>,
        entrypoint: Option<Value<'v>>,
        #[starlark(default = "")] target: &str,
        ssh: Option<Value<'v>>,
        #[starlark(default = "")] network: &str,
        secret: Option<Value<'v>>,
        extra_tag: Option<Value<'v>>,
        container_args: Option<Value<'v>>,
        cache_from: Option<Value<'v>>,
        #[starlark(default = false)] pull: bool,
        #[starlark(default = "")] platform: &str,
        extra_hosts: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let state = TiltfileState::from_eval(eval)?;
        ImageRef::parse(r#ref).map_err(|e| anyhow::anyhow!("Argument 1 (ref): can't parse {:?}: {e}", r#ref))?;
        let context = PathBuf::from(path_arg(state, context, "context")?);
        let dockerfile = dockerfile.filter(|v| !v.is_none());
        let contents = dockerfile_contents.filter(|v| !v.is_none() && text_of(*v) != Some(""));
        if contents.is_some() && dockerfile.is_some() {
            anyhow::bail!("Cannot specify both dockerfile and dockerfile_contents keyword arguments");
        }
        let (dockerfile_path, dockerfile_contents) = match contents {
            Some(c) => (None, string_arg(c, "dockerfile_contents")?),
            None => {
                let path = match dockerfile {
                    Some(d) => PathBuf::from(path_arg(state, d, "dockerfile")?),
                    None => context.join("Dockerfile"),
                };
                let text = state
                    .read_file(&path)
                    .map_err(|e| anyhow::anyhow!("error reading dockerfile {}: {e}", path.display()))?;
                (Some(path), text)
            }
        };
        if cache.is_some_and(|v| !v.is_none()) {
            state.warn("docker_build(cache=…) is obsolete and ignored");
        }
        let steps = live_update_arg(live_update)?;
        if !steps.is_empty() {
            state.warn(&format!(
                "docker_build({:?}): live_update is not supported yet; changes rebuild the image",
                r#ref
            ));
        }
        let only = string_list(only, "only")?;
        if let Some(glob) = only.iter().find(|p| p.contains('*')) {
            anyhow::bail!("'only' does not support '*' file globs. Must be a real path: {glob}");
        }
        let mut build_args: Vec<String> = string_map(build_args, "build_args")?
            .into_iter()
            .map(|(k, v)| if v.is_empty() { k } else { format!("{k}={v}") })
            .collect();
        build_args.sort();
        let extra_tags = string_list(extra_tag, "extra_tag")?.into_iter().filter(|t| !t.is_empty()).collect::<Vec<_>>();
        for tag in &extra_tags {
            ImageRef::parse(tag)
                .map_err(|e| anyhow::anyhow!("Argument extra_tag={tag:?} not a valid image reference: {e}"))?;
        }
        let container_args = match container_args.filter(|v| !v.is_none()) {
            Some(v) => Some(string_list(Some(v), "container_args")?),
            None => None,
        };
        let platform = if platform.is_empty() {
            std::env::var("DOCKER_DEFAULT_PLATFORM").unwrap_or_default()
        } else {
            platform.to_owned()
        };
        let dockerignore_path = context.join(".dockerignore");
        let dockerignore = match state.read_file(&dockerignore_path) {
            Ok(text) => parse_ignore_file(&text),
            Err(_) => Vec::new(),
        };
        let image = ImageDecl {
            ref_: r#ref.to_owned(),
            context,
            dockerfile_path,
            dockerfile_contents,
            build_args,
            target: target.to_owned(),
            ssh: string_list(ssh, "ssh")?.into_iter().filter(|s| !s.is_empty()).collect(),
            secrets: string_list(secret, "secret")?.into_iter().filter(|s| !s.is_empty()).collect(),
            network: network.to_owned(),
            extra_tags,
            cache_from: string_list(cache_from, "cache_from")?,
            pull,
            platform,
            extra_hosts: string_list(extra_hosts, "extra_hosts")?,
            ignores: string_list(ignore, "ignore")?,
            only,
            dockerignore,
            entrypoint: command_argv(
                entrypoint.filter(|v| sequence_items(*v).is_none_or(|i| !i.is_empty())),
                "entrypoint",
            )?,
            container_args,
            match_in_env_vars,
            tiltfile_path: state.current_file(),
            custom: None,
        };
        push_image(state, image)?;
        Ok(NoneType)
    }

    /// Builds an image by running `command` (a shell string or an argv list) with `$EXPECTED_REF` set;
    /// Kubernetes objects that use `ref` get the built image. Reruns when a file in `deps` changes.
    fn custom_build<'v>(
        r#ref: Value<'v>,
        command: Option<Value<'v>>,
        deps: Option<Value<'v>>,
        #[starlark(default = "")] tag: &str,
        #[starlark(default = false)] disable_push: bool,
        #[starlark(default = false)] skips_local_docker: bool,
        live_update: Option<Value<'v>>,
        #[starlark(default = false)] match_in_env_vars: bool,
        ignore: Option<Value<'v>>,
        entrypoint: Option<Value<'v>>,
        command_bat: Option<Value<'v>>,
        #[starlark(default = "")] outputs_image_ref_to: &str,
        container_args: Option<Value<'v>>,
        env: Option<Value<'v>>,
        dir: Option<Value<'v>>,
        image_deps: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let state = TiltfileState::from_eval(eval)?;
        let ref_ = string_arg(r#ref, "Argument 1 (ref)")?;
        if ref_.is_empty() {
            anyhow::bail!("Argument 1 (ref) must not be empty");
        }
        ImageRef::parse(&ref_).map_err(|e| anyhow::anyhow!("Argument 1 (ref): can't parse {ref_:?}: {e}"))?;
        let _ = command_bat.map(|v| string_arg(v, "command_bat")).transpose()?;
        let command = command_argv(command, "Argument 2 (command)")?;
        if command.is_empty() {
            anyhow::bail!("Argument 2 (command) can't be empty");
        }
        let deps = match deps {
            Some(v) if !v.is_none() => string_list(Some(v), "Argument 3 (deps)")?,
            _ => anyhow::bail!("Argument 3 (deps) is missing: a list of paths whose changes rebuild the image"),
        };
        if !tag.is_empty() && !outputs_image_ref_to.is_empty() {
            anyhow::bail!("Cannot specify both tag= and outputs_image_ref_to=");
        }
        if !tag.is_empty() {
            ImageRef::parse(&format!("{ref_}:{tag}"))
                .map_err(|e| anyhow::anyhow!("Argument tag={tag:?} is not a valid image tag: {e}"))?;
        }
        let dir = match dir.filter(|v| !v.is_none()) {
            Some(d) => PathBuf::from(path_arg(state, d, "dir")?),
            None => state.abs_path("."),
        };
        let image_deps = string_list(image_deps, "image_deps")?;
        for dep in &image_deps {
            ImageRef::parse(dep).map_err(|e| anyhow::anyhow!("image_deps: can't parse {dep:?}: {e}"))?;
        }
        let container_args = match container_args.filter(|v| !v.is_none()) {
            Some(v) => Some(string_list(Some(v), "container_args")?),
            None => None,
        };
        // Checked and warned about as with docker_build(); not run.
        if !live_update_arg(live_update)?.is_empty() {
            state.warn(&format!("custom_build({ref_:?}): live_update is not supported yet; changes rebuild the image"));
        }
        let custom = CustomBuildDecl {
            command,
            dir,
            env: env_list(string_map(env, "env")?, "env")?,
            deps: deps.iter().map(|d| state.abs_path(d)).collect(),
            tag: tag.to_owned(),
            disable_push,
            skips_local_docker,
            outputs_image_ref_to: if outputs_image_ref_to.is_empty() {
                String::new()
            } else {
                state.abs_path(outputs_image_ref_to).to_string_lossy().into_owned()
            },
            image_deps,
        };
        let image = ImageDecl {
            ref_: ref_.clone(),
            ignores: string_list(ignore, "ignore")?,
            entrypoint: command_argv(
                entrypoint.filter(|v| sequence_items(*v).is_none_or(|i| !i.is_empty())),
                "entrypoint",
            )?,
            container_args,
            match_in_env_vars,
            tiltfile_path: state.current_file(),
            custom: Some(custom),
            ..ImageDecl::default()
        };
        push_image(state, image)?;
        Ok(NoneType)
    }

    /// Live update: sync `local_path` (relative to the Tiltfile) into the container at `remote_path`.
    fn sync(local_path: &str, remote_path: &str) -> anyhow::Result<LiveUpdateStepValue> {
        Ok(LiveUpdateStepValue(format!("sync({local_path:?}, {remote_path:?})")))
    }

    /// Live update: run `cmd` in the container.
    fn run<'v>(
        cmd: Value<'v>,
        trigger: Option<Value<'v>>,
        #[starlark(default = false)] echo_off: bool,
    ) -> anyhow::Result<LiveUpdateStepValue> {
        let _ = (string_list(trigger, "trigger")?, echo_off);
        Ok(LiveUpdateStepValue(format!("run({:?})", super::display_argv(&command_argv(Some(cmd), "cmd")?))))
    }

    /// Live update: fall back to a full build when these files change.
    fn fall_back_on<'v>(files: Value<'v>) -> anyhow::Result<LiveUpdateStepValue> {
        Ok(LiveUpdateStepValue(format!("fall_back_on({:?})", string_list(Some(files), "files")?)))
    }

    /// Live update: restart the container after updating it.
    fn restart_container() -> anyhow::Result<LiveUpdateStepValue> {
        Ok(LiveUpdateStepValue("restart_container()".to_owned()))
    }

    /// Live update: sync every file when the container starts.
    fn initial_sync() -> anyhow::Result<LiveUpdateStepValue> {
        Ok(LiveUpdateStepValue("initial_sync()".to_owned()))
    }

    /// The current Kubernetes context (from `$KUBECONFIG` or `~/.kube/config`), or `""`.
    fn k8s_context() -> anyhow::Result<String> {
        Ok(kubeconfig_current().0)
    }

    /// The namespace of the current Kubernetes context, `default` when it sets none.
    fn k8s_namespace() -> anyhow::Result<String> {
        Ok(kubeconfig_current().1)
    }

    /// Registry to push images to; not supported yet (images keep their names).
    fn default_registry<'v>(
        host: &str,
        #[starlark(default = "")] host_from_cluster: &str,
        #[starlark(default = "")] single_name: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let _ = (host_from_cluster, single_name);
        TiltfileState::from_eval(eval)?
            .warn(&format!("default_registry({host:?}) is not supported yet and is ignored"));
        Ok(NoneType)
    }
}

/// Ports are 0–65535 (0: pick one / unset).
fn check_port(port: i32) -> anyhow::Result<()> {
    if !(0..=65535).contains(&port) {
        anyhow::bail!("portForward port value {port} is not in the valid range [0-65535]");
    }
    Ok(())
}

/// `port_forwards=`: an int, a `"[host:]local[:container]"` string, a `port_forward()`, or a list of those.
fn port_forwards_arg(value: Option<Value<'_>>) -> anyhow::Result<Vec<Forward>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    let items = sequence_items(value).unwrap_or_else(|| vec![value]);
    items
        .into_iter()
        .map(|item| {
            if let Some(port) = item.unpack_i32() {
                check_port(port)?;
                Ok(Forward { local_port: port, ..Forward::default() })
            } else if let Some(s) = item.unpack_str() {
                parse_port_forward(s)
            } else if let Some(pf) = item.downcast_ref::<PortForwardValue>() {
                Ok(pf.0.clone())
            } else {
                anyhow::bail!("port_forwards must be an int, a string, or a port_forward; got {}", item.get_type())
            }
        })
        .collect()
}

/// `"local"`, `"local:container"` or `"host:local:container"`.
fn parse_port_forward(s: &str) -> anyhow::Result<Forward> {
    let parts: Vec<&str> = s.splitn(3, ':').collect();
    let port = |p: &str| -> anyhow::Result<i32> {
        p.parse::<i32>()
            .ok()
            .filter(|n| (0..=65535).contains(n))
            .ok_or_else(|| anyhow::anyhow!("portForward port value {p:?} is not in the valid range [0-65535]"))
    };
    let (host, local, container) = match parts.as_slice() {
        [local] => ("", port(local)?, 0),
        [local, container] => ("", port(local)?, port(container)?),
        [host, local, container] => {
            let valid = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
            if !valid {
                anyhow::bail!("portForward host value {host:?} is not a valid hostname or IP address");
            }
            (*host, port(local)?, port(container)?)
        }
        _ => anyhow::bail!("invalid port forward {s:?}"),
    };
    Ok(Forward { local_port: local, container_port: container, host: host.to_owned(), ..Forward::default() })
}

/// `extra_pod_selectors=`: a dict of labels or a list of them.
fn pod_selectors_arg(value: Option<Value<'_>>) -> anyhow::Result<Vec<Vec<(String, String)>>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    let items = sequence_items(value).unwrap_or_else(|| vec![value]);
    items.into_iter().map(|item| string_map(Some(item), "extra_pod_selectors")).collect()
}

/// Records an image, refusing a second build of the same name.
fn push_image(state: &TiltfileState, image: ImageDecl) -> anyhow::Result<()> {
    let mut rec = state.rec();
    let name = ImageRef::parse(&image.ref_)?.familiar();
    if rec.k8s.images.iter().any(|i| ImageRef::parse(&i.ref_).is_ok_and(|r| r.familiar() == name)) {
        anyhow::bail!("Image for ref {name:?} has already been defined");
    }
    rec.k8s.images.push(image);
    Ok(())
}

/// `live_update=`: a list of steps.
fn live_update_arg(value: Option<Value<'_>>) -> anyhow::Result<Vec<String>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    let items = sequence_items(value)
        .ok_or_else(|| anyhow::anyhow!("live_update must be a list of steps, got {}", value.get_type()))?;
    items
        .into_iter()
        .map(|item| {
            item.downcast_ref::<LiveUpdateStepValue>()
                .map(|s| s.0.clone())
                .ok_or_else(|| anyhow::anyhow!("live_update steps must be sync(), run(), …; got {}", item.get_type()))
        })
        .collect()
}

/// Patterns of a `.dockerignore`/`.tiltignore` file: non-empty lines that are not comments.
pub(crate) fn parse_ignore_file(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect()
}

/// Parses a YAML stream into Kubernetes objects, flattening `kind: List`.
pub(crate) fn parse_entities(text: &str) -> anyhow::Result<Vec<Entity>> {
    let mut out = Vec::new();
    for doc in yaml::parse_stream(text)? {
        push_entity(doc, &mut out)?;
    }
    Ok(out)
}

fn push_entity(doc: serde_json::Value, out: &mut Vec<Entity>) -> anyhow::Result<()> {
    if !doc.is_object() {
        anyhow::bail!("expected a Kubernetes object (a mapping), got {doc}");
    }
    if doc.get("kind").and_then(|k| k.as_str()) == Some("List")
        && let Some(items) = doc.get("items").and_then(|i| i.as_array())
    {
        for item in items.clone() {
            push_entity(item, out)?;
        }
        return Ok(());
    }
    let entity = Entity { obj: doc };
    if entity.kind().is_empty() || entity.str_at("/apiVersion").is_empty() {
        anyhow::bail!("object is missing 'kind' or 'apiVersion': {}", entity.obj);
    }
    if entity.name().is_empty() && entity.str_at("/metadata/generateName").is_empty() {
        anyhow::bail!("{} object is missing metadata.name", entity.kind());
    }
    out.push(entity);
    Ok(())
}

/// A parsed image reference (`[domain/]path[:tag][@digest]`), normalized like Docker's `ParseNormalizedNamed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ImageRef {
    /// Registry domain (`docker.io` by default).
    pub domain: String,
    /// Repository path (`library/nginx` for `nginx`).
    pub path: String,
    /// Tag, if any.
    pub tag: Option<String>,
}

impl ImageRef {
    /// Parses and normalizes a reference.
    pub fn parse(reference: &str) -> anyhow::Result<ImageRef> {
        let without_digest = reference.split('@').next().unwrap_or_default();
        if without_digest.is_empty() {
            anyhow::bail!("invalid reference format: empty name");
        }
        let (name, tag) = match without_digest.rfind(':') {
            Some(i) if !without_digest[i..].contains('/') => {
                (&without_digest[..i], Some(without_digest[i + 1..].to_owned()))
            }
            _ => (without_digest, None),
        };
        let (domain, path) = match name.split_once('/') {
            Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                (first.to_owned(), rest.to_owned())
            }
            _ => ("docker.io".to_owned(), name.to_owned()),
        };
        let path = if domain == "docker.io" && !path.contains('/') { format!("library/{path}") } else { path };
        let path_ok = path.split('/').all(|c| {
            !c.is_empty()
                && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-'))
        });
        if !path_ok {
            anyhow::bail!("invalid reference format: repository name must be lowercase");
        }
        if tag.as_deref().is_some_and(|t| t.is_empty() || t.len() > 128) {
            anyhow::bail!("invalid reference format: bad tag");
        }
        Ok(ImageRef { domain, path, tag })
    }

    /// The fully qualified name without tag (`docker.io/library/nginx`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The short form people write (`nginx`, `gcr.io/foo/bar`), with the tag if any.
    pub fn familiar(&self) -> String {
        let name = if self.domain == "docker.io" {
            self.path.strip_prefix("library/").unwrap_or(&self.path).to_owned()
        } else {
            self.name()
        };
        match &self.tag {
            Some(tag) => format!("{name}:{tag}"),
            None => name,
        }
    }
}

/// The current context and its namespace from the kubeconfig (`$KUBECONFIG`'s first file or
/// `~/.kube/config`); empty context and `default` namespace when there is none.
fn kubeconfig_current() -> (String, String) {
    let path = match std::env::var("KUBECONFIG") {
        Ok(v) if !v.is_empty() => v.split(':').next().map(PathBuf::from),
        _ => std::env::var("HOME").ok().map(|h| Path::new(&h).join(".kube/config")),
    };
    let config = path
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| yaml::parse_one(&text).ok())
        .unwrap_or(serde_json::Value::Null);
    let context = config.get("current-context").and_then(|c| c.as_str()).unwrap_or_default().to_owned();
    let namespace = config
        .get("contexts")
        .and_then(|c| c.as_array())
        .and_then(|contexts| contexts.iter().find(|c| c.get("name").and_then(|n| n.as_str()) == Some(context.as_str())))
        .and_then(|c| c.pointer("/context/namespace"))
        .and_then(|n| n.as_str())
        .filter(|n| !n.is_empty())
        .unwrap_or("default")
        .to_owned();
    (context, namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_refs() {
        let r = ImageRef::parse("nginx").unwrap();
        assert_eq!(r.name(), "docker.io/library/nginx");
        assert_eq!(r.familiar(), "nginx");
        assert_eq!(ImageRef::parse("gcr.io/foo/bar:v1").unwrap().familiar(), "gcr.io/foo/bar:v1");
        assert_eq!(ImageRef::parse("localhost:5000/app").unwrap().name(), "localhost:5000/app");
        assert_eq!(ImageRef::parse("docker.io/me/app").unwrap().familiar(), "me/app");
        assert!(ImageRef::parse("Bad/Name").is_err());
    }

    #[test]
    fn port_forward_strings() {
        assert_eq!(parse_port_forward("8000").unwrap().local_port, 8000);
        let f = parse_port_forward("8000:80").unwrap();
        assert_eq!((f.local_port, f.container_port), (8000, 80));
        let f = parse_port_forward("0.0.0.0:8000:80").unwrap();
        assert_eq!(f.host, "0.0.0.0");
        assert!(parse_port_forward("99999").is_err());
    }

    #[test]
    fn entities_flatten_lists_and_need_names() {
        let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n";
        let e = parse_entities(list).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].potential_names(), vec!["a", "a:configmap", "a:configmap:default", "a:configmap:default:core"]);
        assert!(parse_entities("apiVersion: v1\nkind: ConfigMap\n").is_err());
    }
}
