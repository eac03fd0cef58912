//! The `config` module: settings a Tiltfile declares (`config.define_string`, `define_string_list`,
//! `define_bool`, `define_object`) and reads with `config.parse()` from `tilt up -- ARGS` and the optional
//! `tilt_config.json` beside the Tiltfile; plus `config.tilt_subcommand`, `config.main_path`,
//! `config.main_dir` and `config.set_enabled_resources()`.
//!
//! Arguments follow Go Tilt's (pflag) rules: `--name value`, `--name=value`, a bare `--flag` for bools,
//! repeated flags append to string lists, `--` ends the flags, and other arguments go to the setting defined
//! with `args=True`. Only settings that were given appear in the returned dict.

use std::path::{Path, PathBuf};

use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::dict::AllocDict;
use starlark::values::none::NoneType;

use super::string_list;
use crate::state::TiltfileState;

/// File with saved settings, read by `config.parse()` from the calling Tiltfile's directory.
pub(crate) const USER_CONFIG_FILE_NAME: &str = "tilt_config.json";

/// `config.*` declarations of one evaluation.
#[derive(Default)]
pub(crate) struct ConfigState {
    settings: Vec<SettingDef>,
    positional: Option<String>,
    /// Directory of the Tiltfile that called `config.parse()`; it may only be called from one.
    parse_dir: Option<PathBuf>,
    /// `config.set_enabled_resources()`: only these resources start; `None` when never called.
    pub enabled_resources: Option<Vec<String>>,
}

/// One `config.define_*` call.
struct SettingDef {
    name: String,
    kind: SettingKind,
    usage: String,
}

/// The type of a setting.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SettingKind {
    String,
    StringList,
    Bool,
    Object,
}

impl SettingKind {
    fn type_name(self) -> &'static str {
        match self {
            SettingKind::String => "string",
            SettingKind::StringList => "list[string]",
            SettingKind::Bool => "bool",
            SettingKind::Object => "object",
        }
    }
}

/// Registers the `config` namespace.
pub(crate) fn register(builder: &mut GlobalsBuilder, main_path: &Path) {
    let main_dir = main_path.parent().unwrap_or(Path::new("/")).to_string_lossy().into_owned();
    let main_path = main_path.to_string_lossy().into_owned();
    builder.namespace("config", |b| {
        config_members(b);
        b.set("tilt_subcommand", "up");
        b.set("main_path", main_path.as_str());
        b.set("main_dir", main_dir.as_str());
    });
}

#[starlark_module]
fn config_members(builder: &mut GlobalsBuilder) {
    /// Declares a string setting (`--name value`).
    fn define_string<'v>(
        name: &str,
        #[starlark(default = false)] args: bool,
        #[starlark(default = "")] usage: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        define(eval, name, args, usage, SettingKind::String, "config.define_string")
    }

    /// Declares a string-list setting (`--name a --name b`).
    fn define_string_list<'v>(
        name: &str,
        #[starlark(default = false)] args: bool,
        #[starlark(default = "")] usage: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        define(eval, name, args, usage, SettingKind::StringList, "config.define_string_list")
    }

    /// Declares a bool setting (`--name`, `--name=false`).
    fn define_bool<'v>(
        name: &str,
        #[starlark(default = false)] args: bool,
        #[starlark(default = "")] usage: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        define(eval, name, args, usage, SettingKind::Bool, "config.define_bool")
    }

    /// Declares a JSON object setting (`--name '{"a": 1}'`).
    fn define_object<'v>(
        name: &str,
        #[starlark(default = false)] args: bool,
        #[starlark(default = "")] usage: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        define(eval, name, args, usage, SettingKind::Object, "config.define_object")
    }

    /// Parses the Tiltfile arguments and `tilt_config.json` into a dict of the settings that were given.
    fn parse<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Value<'v>> {
        let state = TiltfileState::from_eval(eval)?;
        let dir = state.current_dir();
        {
            let mut rec = state.rec();
            if let Some(previous) = &rec.config.parse_dir
                && *previous != dir
            {
                anyhow::bail!(
                    "config.parse can only be called from one Tiltfile working directory per run. It was called \
                     from {} and {}",
                    previous.display(),
                    dir.display()
                );
            }
            rec.config.parse_dir = Some(dir.clone());
        }
        let config_path = dir.join(USER_CONFIG_FILE_NAME);
        let from_file = match state.read_file(&config_path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => anyhow::bail!("error opening {}: {e}", config_path.display()),
        };
        let values = {
            let rec = state.rec();
            let mut values = match from_file {
                Some(text) => rec.config.read_config_file(&config_path, &text)?,
                None => vec![None; rec.config.settings.len()],
            };
            let from_args =
                rec.config.parse_args(&state.args).map_err(|e| anyhow::anyhow!("invalid Tiltfile config args: {e}"))?;
            for (slot, arg) in values.iter_mut().zip(from_args) {
                if arg.is_some() {
                    *slot = arg;
                }
            }
            rec.config
                .settings
                .iter()
                .zip(values)
                .filter_map(|(def, v)| v.map(|v| (def.name.clone(), v)))
                .collect::<Vec<(String, serde_json::Value)>>()
        };
        Ok(eval.heap().alloc(AllocDict(values)))
    }

    /// Only these resources (and what they depend on) start.
    fn set_enabled_resources<'v>(resources: Value<'v>, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<NoneType> {
        let state = TiltfileState::from_eval(eval)?;
        let names = string_list(Some(resources), "resources")?;
        state.rec().config.enabled_resources = Some(names);
        Ok(NoneType)
    }

    /// No resource starts unless enabled later.
    fn clear_enabled_resources<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<NoneType> {
        let state = TiltfileState::from_eval(eval)?;
        state.rec().config.enabled_resources = Some(Vec::new());
        Ok(NoneType)
    }
}

/// Records a `config.define_*` call.
fn define(
    eval: &Evaluator<'_, '_, '_>,
    name: &str,
    positional: bool,
    usage: &str,
    kind: SettingKind,
    function: &str,
) -> anyhow::Result<NoneType> {
    let state = TiltfileState::from_eval(eval)?;
    if name.is_empty() {
        anyhow::bail!("'name' is required");
    }
    let mut rec = state.rec();
    let config = &mut rec.config;
    if config.parse_dir.is_some() {
        anyhow::bail!("{function} cannot be called after config.parse is called");
    }
    if config.settings.iter().any(|s| s.name == name) {
        anyhow::bail!("{name} defined multiple times");
    }
    if positional {
        if let Some(other) = &config.positional {
            anyhow::bail!("both {name} and {other} are defined as positional args");
        }
        config.positional = Some(name.to_owned());
    }
    config.settings.push(SettingDef { name: name.to_owned(), kind, usage: usage.to_owned() });
    Ok(NoneType)
}

impl ConfigState {
    /// Values from `tilt_config.json`, one slot per setting.
    fn read_config_file(&self, path: &Path, text: &str) -> anyhow::Result<Vec<Option<serde_json::Value>>> {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("error parsing json from {}: {e}", path.display()))?;
        let mut values = vec![None; self.settings.len()];
        for (key, value) in map {
            let index = self
                .index(&key)
                .ok_or_else(|| anyhow::anyhow!("{} specified unknown setting name '{key}'", path.display()))?;
            let kind = self.settings[index].kind;
            let ok = match (&value, kind) {
                (serde_json::Value::Null, _) => continue,
                (serde_json::Value::String(_), SettingKind::String) => true,
                (serde_json::Value::Bool(_), SettingKind::Bool) => true,
                (serde_json::Value::Array(items), SettingKind::StringList) => items.iter().all(|i| i.is_string()),
                (_, SettingKind::Object) => true,
                _ => false,
            };
            if !ok {
                anyhow::bail!(
                    "{} specified invalid value for setting {key}: expected {}, found {value}",
                    path.display(),
                    kind.type_name()
                );
            }
            values[index] = Some(value);
        }
        Ok(values)
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.settings.iter().position(|s| s.name == name)
    }

    /// Values from the command line, one slot per setting.
    fn parse_args(&self, args: &[String]) -> Result<Vec<Option<serde_json::Value>>, String> {
        let mut values: Vec<Option<serde_json::Value>> = vec![None; self.settings.len()];
        let mut positional = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            if arg == "--" {
                positional.extend(args[i..].iter().cloned());
                break;
            }
            let Some(body) = arg.strip_prefix("--").filter(|b| !b.is_empty()) else {
                if arg.len() > 1 && arg.starts_with('-') {
                    return Err(self.with_usage(format!("unknown shorthand flag: '{}' in {arg}", &arg[1..2])));
                }
                positional.push(arg.clone());
                continue;
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (body, None),
            };
            let index = self
                .index(name)
                .filter(|&ix| self.positional.as_deref() != Some(self.settings[ix].name.as_str()))
                .ok_or_else(|| self.with_usage(format!("unknown flag: --{name}")))?;
            let text = match inline {
                Some(v) => v,
                None if self.settings[index].kind == SettingKind::Bool => "true".to_owned(),
                None if i < args.len() => {
                    i += 1;
                    args[i - 1].clone()
                }
                None => return Err(self.with_usage(format!("flag needs an argument: --{name}"))),
            };
            self.set(&mut values[index], index, &text)
                .map_err(|e| format!("invalid argument {text:?} for \"--{name}\" flag: {e}"))?;
        }
        if !positional.is_empty() {
            let Some(index) = self.positional.as_deref().and_then(|p| self.index(p)) else {
                return Err(format!(
                    "positional CLI args ({:?}) were specified, but none were expected.\nSee \
                     https://docs.tilt.dev/tiltfile_config.html#positional-arguments for examples.",
                    positional.join(" ")
                ));
            };
            for arg in positional {
                self.set(&mut values[index], index, &arg)
                    .map_err(|e| format!("invalid positional args ({}): {e}", self.settings[index].name))?;
            }
        }
        Ok(values)
    }

    /// Applies one command-line value to a setting's slot.
    fn set(&self, slot: &mut Option<serde_json::Value>, index: usize, text: &str) -> Result<(), String> {
        let kind = self.settings[index].kind;
        match kind {
            SettingKind::StringList => {
                match slot {
                    Some(serde_json::Value::Array(items)) => items.push(text.into()),
                    _ => *slot = Some(serde_json::Value::Array(vec![text.into()])),
                }
                return Ok(());
            }
            _ if slot.is_some() => {
                return Err(format!(
                    "{} settings can only be specified once. multiple values found (last value: {text})",
                    kind.type_name()
                ));
            }
            SettingKind::String => *slot = Some(text.into()),
            SettingKind::Bool => *slot = Some(parse_bool(text)?.into()),
            SettingKind::Object => {
                let value: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| format!("decoding JSON, got {text:?}: {e}"))?;
                *slot = Some(value);
            }
        }
        Ok(())
    }

    /// An error message followed by the flags' usage.
    fn with_usage(&self, message: String) -> String {
        let flags: Vec<String> = self
            .settings
            .iter()
            .filter(|s| self.positional.as_deref() != Some(s.name.as_str()))
            .map(|s| format!("      --{} {}   {}", s.name, s.kind.type_name(), s.usage).trim_end().to_owned())
            .collect();
        if flags.is_empty() { message } else { format!("{message}\nUsage:\n{}", flags.join("\n")) }
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Result<bool, String> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {text:?}: invalid syntax")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defs(list: &[(&str, SettingKind)], positional: Option<&str>) -> ConfigState {
        ConfigState {
            settings: list
                .iter()
                .map(|(n, k)| SettingDef { name: (*n).to_owned(), kind: *k, usage: String::new() })
                .collect(),
            positional: positional.map(str::to_owned),
            ..ConfigState::default()
        }
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn flags_and_positional_args() {
        let c = defs(
            &[
                ("env", SettingKind::String),
                ("to-run", SettingKind::StringList),
                ("debug", SettingKind::Bool),
                ("obj", SettingKind::Object),
            ],
            Some("to-run"),
        );
        let v = c.parse_args(&args(&["--env", "dev", "a", "--debug", "b", "--obj={\"x\":1}", "--", "--c"])).unwrap();
        assert_eq!(
            v,
            vec![Some(json!("dev")), Some(json!(["a", "b", "--c"])), Some(json!(true)), Some(json!({"x": 1}))]
        );
    }

    #[test]
    fn errors() {
        let c = defs(&[("env", SettingKind::String), ("debug", SettingKind::Bool)], None);
        assert!(c.parse_args(&args(&["--nope"])).unwrap_err().contains("unknown flag: --nope"));
        assert!(c.parse_args(&args(&["--env"])).unwrap_err().contains("flag needs an argument"));
        assert!(c.parse_args(&args(&["--env=a", "--env=b"])).unwrap_err().contains("only be specified once"));
        assert!(c.parse_args(&args(&["--debug=maybe"])).unwrap_err().contains("ParseBool"));
        assert!(c.parse_args(&args(&["x"])).unwrap_err().contains("none were expected"));
        assert_eq!(c.parse_args(&args(&["--debug=false"])).unwrap(), vec![None, Some(json!(false))]);
    }
}
