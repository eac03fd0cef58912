//! `tilt args`: change the running `tilt up`'s Tiltfile arguments (`spec.args` of the `(Tiltfile)`
//! object), which makes the Tiltfile controller evaluate it again. As in Go Tilt, without arguments it
//! opens the current ones in `$TILT_EDITOR` or `$EDITOR`, and `--clear` removes them.

use anyhow::{Result, bail};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tilt_apis::Tiltfile;

use crate::resources::edit::launch_editor;
use crate::up::MAIN_TILTFILE;
use crate::{client, view};

/// Flags of `tilt args`.
#[derive(clap::Args)]
pub struct ArgsArgs {
    /// The new Tiltfile arguments.
    args: Vec<String>,
    /// More arguments after `--`, where they may start with `-` (`tilt args a -- --env=dev`).
    #[arg(last = true)]
    after: Vec<String>,
    /// Remove all arguments, as if tilt had been started without any.
    #[arg(long)]
    clear: bool,
    #[command(flatten)]
    target: client::Target,
}

/// Runs `tilt args`.
pub async fn args(args: ArgsArgs) -> Result<()> {
    let client = client::connect(&args.target).await?;
    let tiltfiles: Api<Tiltfile> = Api::all(client);
    let current = tiltfiles.get(MAIN_TILTFILE).await?.spec.args;
    let given: Vec<String> = args.args.into_iter().chain(args.after).collect();
    let new = if args.clear {
        if !given.is_empty() {
            bail!("--clear cannot be specified with other values");
        }
        Vec::new()
    } else if given.is_empty() {
        let quoted = shlex::try_join(current.iter().map(String::as_str))?;
        parse_edited(&launch_editor(
            &["TILT_EDITOR", "EDITOR"],
            &format!("# edit args for the running Tilt here\n{quoted}\n"),
            "txt",
        )?)?
    } else {
        given
    };
    if new == current {
        view::say("Tilt is already running with those args -- no action taken");
        return Ok(());
    }
    tiltfiles.patch(MAIN_TILTFILE, &PatchParams::default(), &Patch::Merge(json!({"spec": {"args": new}}))).await?;
    view::say(&format!("Changed config args for Tilt to [{}]", new.join(" ")));
    Ok(())
}

/// The arguments on the one non-comment line of an edited file.
fn parse_edited(text: &str) -> Result<Vec<String>> {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    match lines.as_slice() {
        [line] => shlex::split(line).ok_or_else(|| anyhow::anyhow!("cannot parse {line:?}: unbalanced quotes")),
        [] => bail!(
            "must have exactly one non-comment line, found zero. If you want to clear the args, use `tilt args --clear`"
        ),
        _ => bail!("cannot have multiple non-comment lines"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edited_args() {
        assert_eq!(parse_edited("# c\n a 'b c' --d=e\n").unwrap(), ["a", "b c", "--d=e"]);
        assert!(parse_edited("# only comments\n").is_err());
        assert!(parse_edited("a\nb\n").is_err());
        assert!(parse_edited("'a\n").is_err());
    }
}
