//! Host files and commands: `local()`, `read_file()`, `watch_file()`, `listdir()`, `blob()`,
//! `watch_settings()` and `include()`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::none::NoneType;

use super::{command_argv, display_argv, path_arg, string_arg, string_list, string_map};
use crate::state::TiltfileState;
use crate::values::Blob;

/// Prefix of the output lines `local()` echoes.
const LOCAL_OUTPUT_PREFIX: &str = " → ";

/// Registers this module's built-ins.
pub(crate) fn register(builder: &mut GlobalsBuilder) {
    files_builtins(builder);
}

#[starlark_module]
fn files_builtins(builder: &mut GlobalsBuilder) {
    /// Runs `command` on the host (a string through `sh -c`, or an argv list) in the Tiltfile's directory and
    /// returns its standard output as a blob. A non-zero exit fails the Tiltfile.
    fn local<'v>(
        command: Value<'v>,
        #[starlark(default = false)] quiet: bool,
        command_bat: Option<Value<'v>>,
        #[starlark(default = false)] echo_off: bool,
        env: Option<Value<'v>>,
        dir: Option<Value<'v>>,
        stdin: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Blob> {
        let _ = command_bat;
        let state = TiltfileState::from_eval(eval)?;
        let argv = command_argv(Some(command), "command")?;
        if argv.is_empty() {
            anyhow::bail!("local: empty command");
        }
        let dir: PathBuf = match dir.filter(|v| !v.is_none()) {
            Some(d) => path_arg(state, d, "dir")?.into(),
            None => state.current_dir(),
        };
        let env = string_map(env, "env")?;
        let stdin = match stdin.filter(|v| !v.is_none()) {
            Some(v) => Some(string_arg(v, "stdin")?),
            None => None,
        };
        let text =
            exec_local(state, &argv, &dir, &env, stdin.as_deref(), LocalEcho { command: !echo_off, output: !quiet })?;
        Ok(Blob { text })
    }

    /// Reads a file (relative to the Tiltfile) as a blob; returns `default` when it does not exist and a
    /// default is given.
    fn read_file<'v>(
        paths: Option<Value<'v>>,
        default: Option<Value<'v>>,
        #[starlark(require = named)] path: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Blob> {
        let state = TiltfileState::from_eval(eval)?;
        let file = one_path(state, paths, path)?;
        match read_or_default(state, &file, default)? {
            FileText::Read(text) => Ok(Blob { text }),
            FileText::Default(v) => Ok(Blob { text: string_arg(v, "default")? }),
        }
    }

    /// Re-runs the Tiltfile when the file or directory changes.
    fn watch_file<'v>(
        paths: Option<Value<'v>>,
        #[starlark(require = named)] path: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let state = TiltfileState::from_eval(eval)?;
        let file = one_path(state, paths, path)?;
        state.record_file(&file);
        Ok(NoneType)
    }

    /// The absolute paths of the files in `dir` (and its subdirectories when `recursive`), sorted.
    fn listdir<'v>(
        dir: Value<'v>,
        #[starlark(default = false)] recursive: bool,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Vec<String>> {
        let state = TiltfileState::from_eval(eval)?;
        let root = PathBuf::from(path_arg(state, dir, "dir")?);
        if recursive {
            state.record_file(&root);
        }
        let mut files = Vec::new();
        list_files(&root, recursive, &mut files).map_err(|e| anyhow::anyhow!("listdir {}: {e}", root.display()))?;
        files.sort();
        Ok(files)
    }

    /// Wraps a string as a blob (content, not a path).
    fn blob(input: Value<'_>) -> anyhow::Result<Blob> {
        Ok(Blob { text: string_arg(input, "input")? })
    }

    /// Global file-watching settings: `ignore` patterns (relative to this file) apply to every watch.
    fn watch_settings<'v>(ignore: Option<Value<'v>>, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<NoneType> {
        let state = TiltfileState::from_eval(eval)?;
        let patterns = string_list(ignore, "ignore")?;
        if !patterns.is_empty() {
            let base = state.current_dir();
            state.rec().watch_ignores.push((base, patterns));
        }
        Ok(NoneType)
    }

    /// Runs another Tiltfile (relative to this one) for its declarations, once per evaluation.
    fn include<'v>(path: &str, eval: &mut Evaluator<'v, '_, '_>) -> starlark::Result<NoneType> {
        let state = TiltfileState::from_eval(eval)?;
        crate::eval::include(state, path)?;
        Ok(NoneType)
    }
}

/// The path of a `paths=`/`path=` pair (Go Tilt names the parameter `paths`; `path` is accepted too).
pub(crate) fn one_path<'v>(
    state: &TiltfileState,
    paths: Option<Value<'v>>,
    path: Option<Value<'v>>,
) -> anyhow::Result<PathBuf> {
    match (paths, path) {
        (Some(p), None) | (None, Some(p)) => Ok(path_arg(state, p, "path")?.into()),
        (Some(_), Some(_)) => anyhow::bail!("give either paths or path, not both"),
        (None, None) => anyhow::bail!("missing argument: paths"),
    }
}

/// A file's text, or the caller's default when it does not exist.
pub(crate) enum FileText<'v> {
    /// The file was read.
    Read(String),
    /// The file does not exist and this default was given.
    Default(Value<'v>),
}

/// Reads `file` (recording it), falling back to `default` only when the file does not exist.
pub(crate) fn read_or_default<'v>(
    state: &TiltfileState,
    file: &Path,
    default: Option<Value<'v>>,
) -> anyhow::Result<FileText<'v>> {
    match state.read_file(file) {
        Ok(text) => Ok(FileText::Read(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && default.is_some() => {
            Ok(FileText::Default(default.unwrap_or_else(Value::new_none)))
        }
        Err(e) => anyhow::bail!("error reading {}: {e}", file.display()),
    }
}

/// What of a host command to echo to the Tiltfile output.
#[derive(Clone, Copy)]
pub(crate) struct LocalEcho {
    /// Print `local: COMMAND` first.
    pub command: bool,
    /// Print its output lines (prefixed ` → `).
    pub output: bool,
}

/// Runs a host command for the Tiltfile and returns its standard output; a non-zero exit is an error naming
/// the command and its exit status, with its output.
pub(crate) fn exec_local(
    state: &TiltfileState,
    argv: &[String],
    dir: &Path,
    env: &[(String, String)],
    stdin: Option<&str>,
    echo: LocalEcho,
) -> anyhow::Result<String> {
    let shown = display_argv(argv);
    if echo.command {
        state.print(format!("local: {shown}"));
    }
    let changes = state.env().changes.clone();
    let out = run_command(argv, dir, &changes, env, stdin)
        .map_err(|e| anyhow::anyhow!("command {shown:?} failed.\nerror: {e}"))?;
    if echo.output {
        for line in out.stdout.lines().chain(out.stderr.lines()) {
            state.print(format!("{LOCAL_OUTPUT_PREFIX}{line}"));
        }
    }
    if let Some(failure) = out.failure {
        anyhow::bail!(
            "command {shown:?} failed.\nerror: {failure}\nstdout:\n{}\nstderr:\n{}",
            out.stdout.trim_end(),
            out.stderr.trim_end()
        );
    }
    Ok(out.stdout)
}

/// What a finished host command produced.
struct CommandOutput {
    stdout: String,
    stderr: String,
    /// Why it counts as failed (`exit status N`, `signal: N`), if it does.
    failure: Option<String>,
}

/// Runs `argv` in `dir` with `env` over the current environment as `os.putenv()`/`os.unsetenv()` changed it
/// (`changes`), feeding `stdin`, and collects its output.
fn run_command(
    argv: &[String],
    dir: &Path,
    changes: &BTreeMap<String, Option<String>>,
    env: &[(String, String)],
    stdin: Option<&str>,
) -> std::io::Result<CommandOutput> {
    let mut command = Command::new(&argv[0]);
    for (key, value) in changes {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command
        .args(&argv[1..])
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn()?;
    // Feed stdin from another thread so a command that writes before reading cannot deadlock us.
    let feeder = match (stdin, child.stdin.take()) {
        (Some(text), Some(mut pipe)) => {
            let text = text.to_owned();
            Some(std::thread::spawn(move || {
                let _ = pipe.write_all(text.as_bytes());
            }))
        }
        _ => None,
    };
    let output = child.wait_with_output()?;
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    let failure = if output.status.success() {
        None
    } else if let Some(code) = output.status.code() {
        Some(format!("exit status {code}"))
    } else {
        use std::os::unix::process::ExitStatusExt;
        Some(format!("signal: {}", output.status.signal().unwrap_or_default()))
    };
    Ok(CommandOutput {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        failure,
    })
}

/// Appends the files under `dir` (recursively if asked) to `out`.
fn list_files(dir: &Path, recursive: bool, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            if recursive {
                list_files(&path, true, out)?;
            }
        } else {
            out.push(path.to_string_lossy().into_owned());
        }
    }
    Ok(())
}
