//! Kubernetes resources: grouping `k8s_yaml()` objects into resources the way Go Tilt does, and their objects.
//!
//! Grouping: every object with a container image is a workload and gets its own resource, named by the
//! shortest unique of `name`, `name:kind`, `name:kind:namespace`, `name:kind:namespace:group` (lowercase).
//! Services whose selector matches a workload's pod template labels (same namespace) join that workload.
//! Objects with a pod template but no image are grouped by their name. `k8s_resource()` calls then configure,
//! rename or create (`new_name` + `objects`) resources. What is left goes to the `uncategorized` resource.
//!
//! Objects per resource: UIResource and trigger UIButton as for every resource, a KubernetesApply `NAME`
//! (the YAML, the ImageMaps it uses, port forwards), and for each `docker_build` image it uses an ImageMap
//! (named after the image, e.g. `gcr.io_foo`), a FileWatch `image:IMAGEMAP` on the build context or, for a
//! `custom_build`, its `deps` (both created once, with the first resource that uses the image) and a
//! DockerImage (a CmdImage for a `custom_build`) `NAME:IMAGEMAP`.

use std::collections::{HashMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;
use tilt_apis::{
    CmdImageOutputMode, CmdImageSpec, DockerImageSpec, FileWatchSpec, Forward, IgnoreDef, ImageMapOverrideArgs,
    ImageMapOverrideCommand, ImageMapSpec, KubernetesApplySpec, KubernetesDiscoveryStrategy,
    KubernetesDiscoveryTemplateSpec, KubernetesImageLocator, PodLogStreamTemplateSpec, PortForwardTemplateSpec,
    RestartOnSpec, StartOnSpec,
};

use super::{
    AUTO_INIT_ANNOTATION, Assembly, Meta, PORT_FORWARDS_ANNOTATION, RESOURCE_DEPS_ANNOTATION, TRIGGER_MODE_ANNOTATION,
    UNCATEGORIZED, merge_ignores, object, path_string, resource_head_objects, sanitize_name, trigger_button_name,
    trigger_mode_number,
};
use crate::builtins::k8s::{CustomBuildDecl, Entity, ImageDecl, ImageRef, K8sState, KindDecl, values_at};
use crate::state::TriggerMode;
use crate::yaml;

/// Sidecar containers whose logs Go Tilt leaves out.
const IGNORED_LOG_CONTAINERS: [&str; 4] = ["istio-init", "istio-proxy", "linkerd-proxy", "linkerd-init"];

/// The Kubernetes resources and images of a Tiltfile.
pub(crate) struct K8sPlan {
    /// Resources in order (workloads, then `k8s_resource(new_name=…)` groups).
    pub resources: Vec<K8sResource>,
    /// Objects of no workload.
    pub uncategorized: Option<K8sResource>,
    /// `docker_build()` and `custom_build()` images.
    pub images: Vec<PlannedImage>,
    /// Messages for the output.
    pub warnings: Vec<String>,
    /// `k8s_kind()` declarations.
    kinds: Vec<KindDecl>,
}

/// A `docker_build()` or `custom_build()` image with its API names.
pub(crate) struct PlannedImage {
    decl: ImageDecl,
    reference: ImageRef,
    /// ImageMap name.
    image_map: String,
    /// The first resource that uses it; its ImageMap and FileWatch carry that resource's labels.
    owner: Option<String>,
}

/// One Kubernetes resource.
#[derive(Default)]
pub(crate) struct K8sResource {
    /// Resource name.
    pub name: String,
    entities: Vec<Entity>,
    port_forwards: Vec<Forward>,
    extra_selectors: Vec<Vec<(String, String)>>,
    trigger_mode: Option<TriggerMode>,
    auto_init: bool,
    /// Declared `resource_deps`.
    pub resource_deps: Vec<String>,
    links: Vec<(String, String)>,
    labels: Vec<String>,
    discovery_strategy: String,
    /// Indexes into [`K8sPlan::images`] of the images its objects use.
    images: Vec<usize>,
}

impl K8sResource {
    fn new(name: &str) -> K8sResource {
        K8sResource { name: name.to_owned(), auto_init: true, ..K8sResource::default() }
    }
}

/// Groups the recorded objects into resources and applies `k8s_resource()` options.
pub(crate) fn plan(state: &K8sState, local_names: &HashSet<String>) -> anyhow::Result<K8sPlan> {
    let mut unresourced: Vec<Entity> = state.entities.clone();
    let mut resources: Vec<K8sResource> = Vec::new();
    let taken = |resources: &[K8sResource], name: &str| -> anyhow::Result<()> {
        if local_names.contains(name) || resources.iter().any(|r| r.name == name) {
            anyhow::bail!("k8s_resource named {name:?} already exists");
        }
        Ok(())
    };

    // Workloads: objects that run containers with images, objects with images at `k8s_kind()` paths and
    // objects of `k8s_kind()` kinds.
    type Indexed = Vec<(usize, Entity)>;
    let (workloads, rest): (Indexed, Indexed) =
        unresourced.into_iter().enumerate().partition(|(_, e)| is_workload(e, &state.kinds));
    unresourced = rest.into_iter().map(|(_, e)| e).collect();
    let names = if state.workload_function.is_some() {
        workloads
            .iter()
            .map(|(i, e)| state.workload_names.get(i).cloned().unwrap_or_else(|| e.name().to_owned()))
            .collect()
    } else {
        unique_names(&workloads.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>())
    };
    let workloads: Vec<Entity> = workloads.into_iter().map(|(_, e)| e).collect();
    for (workload, name) in workloads.iter().zip(names) {
        taken(&resources, &name)?;
        let mut r = K8sResource::new(&name);
        r.entities.push(workload.clone());
        r.entities.extend(take_matching_services(workload, &mut unresourced));
        resources.push(r);
    }
    // Pod templates without images, grouped by name.
    let templated: Vec<Entity> = unresourced.iter().filter(|e| !pod_templates(e).is_empty()).cloned().collect();
    for e in templated {
        let Some(pos) = unresourced.iter().position(|u| *u == e) else {
            continue;
        };
        let e = unresourced.remove(pos);
        let matches = take_matching_services(&e, &mut unresourced);
        let index = match resources.iter().position(|r| r.name == e.name()) {
            Some(i) => i,
            None => {
                taken(&resources, e.name())?;
                resources.push(K8sResource::new(e.name()));
                resources.len() - 1
            }
        };
        resources[index].entities.push(e);
        resources[index].entities.extend(matches);
    }

    for opts in &state.resource_options {
        if opts.manually_grouped {
            taken(&resources, &opts.new_name)?;
            resources.push(K8sResource::new(&opts.new_name));
        }
        let Some(index) = resources.iter().position(|r| r.name == opts.workload) else {
            let known: Vec<&str> = resources.iter().map(|r| r.name.as_str()).collect();
            anyhow::bail!(
                "{}: k8s_resource specified unknown resource {:?}. known k8s resources: {}",
                opts.position,
                opts.workload,
                known.join(", ")
            );
        };
        if !opts.new_name.is_empty() && opts.new_name != resources[index].name {
            taken(&resources, &opts.new_name).map_err(|e| {
                anyhow::anyhow!(
                    "{}: k8s_resource specified to rename {:?} to {:?}: {e}",
                    opts.position,
                    resources[index].name,
                    opts.new_name
                )
            })?;
            resources[index].name = opts.new_name.clone();
        }
        for fragment in &opts.objects {
            let entity = find_fragment(fragment, &resources, &unresourced)?;
            let Some(pos) = unresourced.iter().position(|u| *u == entity) else {
                let remaining: Vec<String> = unresourced.iter().map(|e| format!("{:?}", e.full_name())).collect();
                anyhow::bail!(
                    "No object identified by the fragment {fragment:?} could be found in remaining YAML. Valid \
                     remaining fragments are: {}",
                    remaining.join(", ")
                );
            };
            resources[index].entities.push(unresourced.remove(pos));
        }
        let r = &mut resources[index];
        r.port_forwards.extend(opts.port_forwards.iter().cloned());
        r.extra_selectors.extend(opts.extra_pod_selectors.iter().cloned());
        if opts.trigger_mode.is_some() {
            r.trigger_mode = opts.trigger_mode;
        }
        if let Some(auto_init) = opts.auto_init {
            r.auto_init = auto_init;
        }
        r.resource_deps.extend(opts.resource_deps.iter().cloned());
        r.links.extend(opts.links.iter().cloned());
        for label in &opts.labels {
            if !r.labels.contains(label) {
                r.labels.push(label.clone());
            }
        }
        if !opts.discovery_strategy.is_empty() {
            r.discovery_strategy = opts.discovery_strategy.clone();
        }
    }

    let mut images: Vec<PlannedImage> = state
        .images
        .iter()
        .map(|decl| {
            let reference = ImageRef::parse(&decl.ref_)?;
            let image_map = sanitize_name(&reference.familiar());
            Ok(PlannedImage { decl: decl.clone(), reference, image_map, owner: None })
        })
        .collect::<anyhow::Result<_>>()?;
    let mut uncategorized = (!unresourced.is_empty()).then(|| {
        let mut r = K8sResource::new(UNCATEGORIZED);
        r.entities = unresourced;
        r
    });
    link_images(resources.iter_mut().chain(uncategorized.iter_mut()), &mut images, &state.kinds);
    let warnings = images
        .iter()
        .filter(|image| image.owner.is_none())
        .map(|image| {
            format!(
                "Image not used in any deploy config: {:?}. Did you mean to use it in a k8s_yaml() object?",
                image.reference.familiar()
            )
        })
        .collect();
    Ok(K8sPlan { resources, uncategorized, images, warnings, kinds: state.kinds.clone() })
}

/// Records which images each resource uses (and each image's first user).
fn link_images<'a>(
    resources: impl Iterator<Item = &'a mut K8sResource>,
    images: &mut [PlannedImage],
    kinds: &[KindDecl],
) {
    for r in resources {
        let uses: Vec<(String, bool)> = r
            .entities
            .iter()
            .flat_map(|e| {
                let located = kinds.iter().filter(|k| k.selector.matches(e)).flat_map(|k| located_images(e, k));
                let images = container_images(e).into_iter().chain(located).map(|i| (i, false));
                images.chain(env_var_values(e).into_iter().map(|v| (v, true)))
            })
            .collect();
        for (reference, in_env) in uses {
            push_image_use(r, images, &reference, in_env);
        }
    }
}

/// Adds the image matching `reference` (if any) to `r`.
fn push_image_use(r: &mut K8sResource, images: &mut [PlannedImage], reference: &str, in_env: bool) {
    let Ok(used) = ImageRef::parse(reference) else {
        return;
    };
    for (index, image) in images.iter_mut().enumerate() {
        if in_env && !image.decl.match_in_env_vars {
            continue;
        }
        let same_name = image.reference.name() == used.name();
        let tag_ok = image.reference.tag.is_none() || image.reference.tag == used.tag;
        if same_name && tag_ok && !r.images.contains(&index) {
            r.images.push(index);
            image.owner.get_or_insert_with(|| r.name.clone());
        }
    }
}

/// Whether `e` is a workload: it has images in its pod templates or at a `k8s_kind()` JSON path, or its kind
/// was declared with `k8s_kind()` without paths.
pub(crate) fn is_workload(e: &Entity, kinds: &[KindDecl]) -> bool {
    !container_images(e).is_empty()
        || kinds
            .iter()
            .any(|k| k.selector.matches(e) && (k.image_json_paths.is_empty() || !located_images(e, k).is_empty()))
}

/// The image references at `kind`'s JSON paths in `e`.
fn located_images(e: &Entity, kind: &KindDecl) -> Vec<String> {
    kind.image_json_paths
        .iter()
        .flat_map(|(_, steps)| values_at(&e.obj, steps))
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// Go Tilt's `UniqueNames(workloads, 1)`: the shortest candidate name no other workload wants.
fn unique_names(entities: &[Entity]) -> Vec<String> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for e in entities {
        for name in e.potential_names() {
            *counts.entry(name).or_default() += 1;
        }
    }
    entities
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let names = e.potential_names();
            names
                .iter()
                .find(|n| counts[*n] == 1)
                .cloned()
                .unwrap_or_else(|| format!("{}:{i}", names.last().cloned().unwrap_or_default()))
        })
        .collect()
}

/// The single object a `k8s_resource(objects=…)` fragment (`name[:kind[:namespace[:group]]]`) names.
fn find_fragment(fragment: &str, resources: &[K8sResource], unresourced: &[Entity]) -> anyhow::Result<Entity> {
    let wanted = fragment.to_lowercase();
    let all: Vec<&Entity> = resources.iter().flat_map(|r| r.entities.iter()).chain(unresourced.iter()).collect();
    let matches: Vec<&Entity> = all.iter().copied().filter(|e| e.potential_names().contains(&wanted)).collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let possible: Vec<String> = all.iter().map(|e| format!("{:?}", e.full_name())).collect();
            anyhow::bail!(
                "No object identified by the fragment {fragment:?} could be found. Possible objects are: {}",
                possible.join(", ")
            )
        }
        many => {
            let names: Vec<String> = many.iter().map(|e| format!("{:?}", e.full_name())).collect();
            anyhow::bail!(
                "{fragment:?} is not a unique fragment. Objects that match {fragment:?} are {}",
                names.join(", ")
            )
        }
    }
}

/// Pod templates of an object: `(labels, pod spec)` pairs.
fn pod_templates(e: &Entity) -> Vec<(&serde_json::Map<String, Value>, &Value)> {
    static EMPTY: std::sync::OnceLock<serde_json::Map<String, Value>> = std::sync::OnceLock::new();
    fn labels_of(template: &Value) -> &serde_json::Map<String, Value> {
        let empty = EMPTY.get_or_init(serde_json::Map::new);
        template.pointer("/metadata/labels").and_then(Value::as_object).unwrap_or(empty)
    }
    let mut out = Vec::new();
    if e.kind() == "Pod" {
        if let Some(spec) = e.obj.get("spec") {
            out.push((labels_of(&e.obj), spec));
        }
        return out;
    }
    for pointer in ["/spec/template", "/spec/jobTemplate/spec/template"] {
        if let Some(template) = e.obj.pointer(pointer)
            && let Some(spec) = template.get("spec").filter(|s| s.get("containers").is_some())
        {
            out.push((labels_of(template), spec));
        }
    }
    out
}

/// Every container and init container of an object's pod templates.
fn containers(e: &Entity) -> impl Iterator<Item = &Value> {
    pod_templates(e).into_iter().flat_map(|(_, spec)| {
        ["initContainers", "containers"]
            .into_iter()
            .flat_map(move |list| spec.get(list).and_then(Value::as_array).into_iter().flatten())
    })
}

/// Images of every container and init container of an object's pod templates.
fn container_images(e: &Entity) -> Vec<String> {
    containers(e).filter_map(|c| c.get("image").and_then(Value::as_str)).map(str::to_owned).collect()
}

/// Values of the containers' environment variables (for `match_in_env_vars`).
fn env_var_values(e: &Entity) -> Vec<String> {
    containers(e)
        .flat_map(|c| c.get("env").and_then(Value::as_array).into_iter().flatten())
        .filter_map(|env| env.get("value").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// Removes from `candidates` the Services in `workload`'s namespace whose selector matches one of its pod
/// templates, and returns them.
fn take_matching_services(workload: &Entity, candidates: &mut Vec<Entity>) -> Vec<Entity> {
    let templates: Vec<serde_json::Map<String, Value>> =
        pod_templates(workload).into_iter().map(|(labels, _)| labels.clone()).collect();
    let mut taken = Vec::new();
    let mut i = 0;
    while i < candidates.len() {
        let c = &candidates[i];
        let selector = c.obj.pointer("/spec/selector").and_then(Value::as_object);
        let matches = c.kind() == "Service"
            && c.namespace() == workload.namespace()
            && selector.is_some_and(|sel| {
                !sel.is_empty() && templates.iter().any(|labels| sel.iter().all(|(k, v)| labels.get(k) == Some(v)))
            });
        if matches {
            taken.push(candidates.remove(i));
        } else {
            i += 1;
        }
    }
    taken
}

/// Apply order of kinds (Go Tilt's, from kustomize): namespaces and CRDs first; unknown kinds last.
fn kind_order(kind: &str) -> i32 {
    const ORDER_FIRST: [&str; 22] = [
        "Namespace",
        "ResourceQuota",
        "StorageClass",
        "CustomResourceDefinition",
        "MutatingWebhookConfiguration",
        "ServiceAccount",
        "PodSecurityPolicy",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "ConfigMap",
        "Secret",
        "Service",
        "LimitRange",
        "PriorityClass",
        "Deployment",
        "StatefulSet",
        "CronJob",
        "PodDisruptionBudget",
    ];
    ORDER_FIRST.iter().position(|k| *k == kind).map_or(0, |i| i as i32 - ORDER_FIRST.len() as i32)
}

/// Appends the objects of Kubernetes resource `r` to `out`.
pub(crate) fn objects(ctx: &Assembly<'_>, plan: &K8sPlan, r: &K8sResource, out: &mut Vec<Value>) -> anyhow::Result<()> {
    let name = r.name.as_str();
    let meta = Meta::for_resource(name, &r.labels);
    let mut ui_meta = meta.clone();
    let notes = &mut ui_meta.annotations;
    if !r.port_forwards.is_empty() {
        notes.insert(PORT_FORWARDS_ANNOTATION.to_owned(), serde_json::to_string(&r.port_forwards)?);
    }
    let deps = ctx.deps_of(name);
    if !deps.is_empty() {
        notes.insert(RESOURCE_DEPS_ANNOTATION.to_owned(), serde_json::to_string(&deps)?);
    }
    let auto = r.trigger_mode.unwrap_or(ctx.default_trigger) == TriggerMode::Auto;
    notes.insert(TRIGGER_MODE_ANNOTATION.to_owned(), trigger_mode_number(auto, r.auto_init).to_string());
    if !r.auto_init {
        notes.insert(AUTO_INIT_ANNOTATION.to_owned(), "false".to_owned());
    }
    if !resource_head_objects(ctx, name, &r.links, &meta, ui_meta, out)? {
        return Ok(());
    }

    let mut image_maps = Vec::new();
    for &index in &r.images {
        let image = &plan.images[index];
        image_maps.push(image.image_map.clone());
        if image.owner.as_deref() == Some(name) {
            image_objects(ctx, image, &meta, out)?;
        }
        let image_meta = meta.with_auto_file_watches(&[image_file_watch_name(&image.image_map)]);
        let build_name = sanitize_name(&format!("{name}:{}", image.image_map));
        match &image.decl.custom {
            Some(custom) => {
                let spec = cmd_image_spec(ctx, r, image, custom);
                out.push(object("CmdImage", &build_name, &image_meta, spec)?);
            }
            None => out.push(object("DockerImage", &build_name, &image_meta, docker_image_spec(ctx, r, image))?),
        }
    }

    let mut entities: Vec<(usize, &Entity)> = r.entities.iter().enumerate().collect();
    entities.sort_by_key(|(i, e)| (kind_order(e.kind()), *i));
    let docs: Vec<Value> = entities.iter().map(|(_, e)| e.obj.clone()).collect();
    let extra_selectors: Vec<LabelSelector> = r
        .extra_selectors
        .iter()
        .map(|labels| LabelSelector { match_labels: Some(labels.iter().cloned().collect()), match_expressions: None })
        .collect();
    let spec = KubernetesApplySpec {
        yaml: yaml::to_yaml_stream(&docs)?,
        image_maps,
        image_locators: plan
            .kinds
            .iter()
            .filter(|k| r.entities.iter().any(|e| k.selector.matches(e)))
            .flat_map(|k| {
                k.image_json_paths.iter().map(|(path, _)| KubernetesImageLocator {
                    object_selector: k.selector.spec.clone(),
                    path: path.clone(),
                    object: None,
                })
            })
            .collect(),
        kubernetes_discovery_template_spec: (!extra_selectors.is_empty())
            .then_some(KubernetesDiscoveryTemplateSpec { extra_selectors }),
        port_forward_template_spec: (!r.port_forwards.is_empty())
            .then(|| PortForwardTemplateSpec { forwards: r.port_forwards.clone() }),
        pod_log_stream_template_spec: Some(PodLogStreamTemplateSpec {
            ignore_containers: IGNORED_LOG_CONTAINERS.map(String::from).to_vec(),
            ..PodLogStreamTemplateSpec::default()
        }),
        discovery_strategy: match r.discovery_strategy.as_str() {
            "default" => Some(KubernetesDiscoveryStrategy::Default),
            "selectors-only" => Some(KubernetesDiscoveryStrategy::SelectorsOnly),
            _ => None,
        },
        restart_on: Some(RestartOnSpec { ui_buttons: vec![trigger_button_name(name)], ..RestartOnSpec::default() }),
        start_on: start_on(ctx, r),
        cluster: "default".to_owned(),
        ..KubernetesApplySpec::default()
    };
    out.push(object("KubernetesApply", name, &meta, spec)?);
    Ok(())
}

/// The ImageMap and the context FileWatch of an image, created once.
fn image_objects(ctx: &Assembly<'_>, image: &PlannedImage, meta: &Meta, out: &mut Vec<Value>) -> anyhow::Result<()> {
    let d = &image.decl;
    let spec = ImageMapSpec {
        selector: image.reference.familiar(),
        match_exact: image.reference.tag.is_some(),
        match_in_env_vars: d.match_in_env_vars,
        override_command: (!d.entrypoint.is_empty()).then(|| ImageMapOverrideCommand { command: d.entrypoint.clone() }),
        override_args: d.container_args.clone().map(|args| ImageMapOverrideArgs { args }),
    };
    out.push(object("ImageMap", &image.image_map, meta, spec)?);

    let (watched_paths, mut ignores) = match &d.custom {
        // `ignore=` patterns apply under each `deps` entry, as in Go Tilt.
        Some(custom) => (
            custom.deps.iter().map(|p| path_string(p)).collect(),
            merge_ignores(custom.deps.iter().map(|dep| (dep.clone(), d.ignores.clone()))),
        ),
        None => (vec![path_string(&d.context)], context_ignores(d)),
    };
    if let Some(dockerfile) = &d.dockerfile_path {
        // The Tiltfile reads the Dockerfile; the image build must not race it on changes.
        ignores.push(IgnoreDef { base_path: path_string(dockerfile), patterns: Vec::new() });
    }
    ignores.extend(ctx.global_ignores.iter().cloned());
    let spec = FileWatchSpec { watched_paths, ignores, disable_source: None };
    out.push(object("FileWatch", &image_file_watch_name(&image.image_map), meta, spec)?);
    Ok(())
}

/// Name of the FileWatch over the build context of the image with ImageMap `image_map`.
fn image_file_watch_name(image_map: &str) -> String {
    format!("image:{image_map}")
}

/// What the build leaves out of the context: the Tiltfile, `.git`, `.dockerignore`, `ignore=` and `only=`.
fn context_ignores(d: &ImageDecl) -> Vec<IgnoreDef> {
    let mut out = vec![IgnoreDef { base_path: path_string(&d.tiltfile_path), patterns: Vec::new() }];
    let git = d.context.join(".git");
    if git.exists() {
        out.push(IgnoreDef { base_path: path_string(&git), patterns: Vec::new() });
    }
    // `!path/**` too: under gitignore semantics (the FileWatch's) `**` would otherwise keep ignoring the
    // files inside a re-included directory; under .dockerignore semantics (the build's) it is redundant.
    let only: Vec<String> = if d.only.is_empty() {
        Vec::new()
    } else {
        std::iter::once("**".to_owned())
            .chain(d.only.iter().flat_map(|o| {
                let o = o.trim_end_matches('/');
                [format!("!{o}"), format!("!{o}/**")]
            }))
            .collect()
    };
    out.extend(merge_ignores([(d.context.clone(), d.dockerignore.clone()), (d.context.clone(), d.ignores.clone())]));
    if !only.is_empty() {
        out.push(IgnoreDef { base_path: path_string(&d.context), patterns: only });
    }
    out
}

/// What a resource's first build or apply waits for: its `resource_deps` Ready and, with `auto_init=False`,
/// a click on its trigger button.
fn start_on(ctx: &Assembly<'_>, r: &K8sResource) -> Option<StartOnSpec> {
    let resource_deps = ctx.deps_of(&r.name);
    (!resource_deps.is_empty() || !r.auto_init).then(|| StartOnSpec {
        ui_resources: resource_deps,
        ui_buttons: if r.auto_init { Vec::new() } else { vec![trigger_button_name(&r.name)] },
        ..StartOnSpec::default()
    })
}

/// The build of an image for resource `r`: rebuilt on context changes (auto trigger mode) and on the
/// resource's trigger button; the first build waits for `resource_deps` and, with `auto_init=False`, a click.
fn docker_image_spec(ctx: &Assembly<'_>, r: &K8sResource, image: &PlannedImage) -> DockerImageSpec {
    let d = &image.decl;
    let button = trigger_button_name(&r.name);
    let auto = r.trigger_mode.unwrap_or(ctx.default_trigger) == TriggerMode::Auto;
    let start_on = start_on(ctx, r);
    DockerImageSpec {
        ref_: image.reference.familiar(),
        dockerfile_contents: d.dockerfile_contents.clone(),
        context: path_string(&d.context),
        context_ignores: context_ignores(d),
        args: d.build_args.clone(),
        target: d.target.clone(),
        ssh_agent_configs: d.ssh.clone(),
        secrets: d.secrets.clone(),
        network: d.network.clone(),
        pull: d.pull,
        cache_from: d.cache_from.clone(),
        platform: d.platform.clone(),
        extra_tags: d.extra_tags.clone(),
        extra_hosts: d.extra_hosts.clone(),
        image_map: image.image_map.clone(),
        restart_on: Some(RestartOnSpec {
            file_watches: if auto { vec![image_file_watch_name(&image.image_map)] } else { Vec::new() },
            ui_buttons: vec![button],
            cmds: Vec::new(),
        }),
        start_on,
        disable_source: Some(super::local::disable_source(&r.name)),
        ..DockerImageSpec::default()
    }
}

/// The command build of an image for resource `r`, triggered like [`docker_image_spec`]'s: reruns on `deps`
/// changes (auto trigger mode) and on the resource's trigger button.
fn cmd_image_spec(ctx: &Assembly<'_>, r: &K8sResource, image: &PlannedImage, custom: &CustomBuildDecl) -> CmdImageSpec {
    let auto = r.trigger_mode.unwrap_or(ctx.default_trigger) == TriggerMode::Auto;
    let output_mode = if custom.skips_local_docker {
        CmdImageOutputMode::Remote
    } else if custom.disable_push {
        CmdImageOutputMode::LocalDocker
    } else {
        CmdImageOutputMode::LocalDockerAndRemote
    };
    CmdImageSpec {
        ref_: image.reference.familiar(),
        args: custom.command.clone(),
        dir: path_string(&custom.dir),
        env: custom.env.clone(),
        image_maps: custom
            .image_deps
            .iter()
            .filter_map(|dep| ImageRef::parse(dep).ok())
            .map(|dep| sanitize_name(&dep.familiar()))
            .collect(),
        output_mode: Some(output_mode),
        output_tag: custom.tag.clone(),
        outputs_image_ref_to: custom.outputs_image_ref_to.clone(),
        image_map: image.image_map.clone(),
        restart_on: Some(RestartOnSpec {
            file_watches: if auto && !custom.deps.is_empty() {
                vec![image_file_watch_name(&image.image_map)]
            } else {
                Vec::new()
            },
            ui_buttons: vec![trigger_button_name(&r.name)],
            cmds: Vec::new(),
        }),
        start_on: start_on(ctx, r),
        disable_source: Some(super::local::disable_source(&r.name)),
        ..CmdImageSpec::default()
    }
}
