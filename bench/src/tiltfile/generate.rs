//! Generated Tiltfiles: a big one for evaluation (local resources built through a library of helper
//! functions that loop, branch, build dicts and format strings, the way large real Tiltfiles do), and the
//! cold-start one (servers that only `sleep`).

use std::fmt::Write;

/// The helper library: functions of 40–50 lines each, in three styles that rotate, until it has at least
/// `lines` lines; returns how many functions it wrote.
fn helpers(out: &mut String, lines: usize) -> usize {
    let start = out.lines().count();
    let mut i = 0;
    while i == 0 || out.lines().count() - start < lines {
        let _ = match i % 3 {
            0 => write!(
                out,
                r#"def helper_{i}(name, n):
    """Builds env, labels and a build command for `name` (style A: loops, %-formatting, dicts)."""
    parts = []
    for j in range(n):
        if j % 3 == 0:
            parts.append("%s-%d" % (name, j))
        elif j % 3 == 1:
            parts.append("{{}}:{{}}".format(name, j * {k}))
        else:
            parts.append(f"{{name}}.{{j}}")
    env = {{}}
    for idx, p in enumerate(parts):
        key = "VAR_%d_%d" % ({i}, idx)
        env[key] = p.upper().replace("-", "_").replace(":", "_")
    labels = sorted([k.lower() for k in env.keys()])[:2]
    counts = {{}}
    for p in parts:
        head = p.split("-")[0] if "-" in p else p[:3]
        counts[head] = counts.get(head, 0) + 1
    total = 0
    for v in counts.values():
        total += v
    flags = []
    if total > {m}:
        flags.append("--big")
    else:
        flags.append("--small")
    if name.startswith("svc"):
        flags.append("--svc=%s" % name)
    for extra in ["--fast", "--quiet", "--color=never"]:
        if len(extra) % 2 == total % 2:
            flags.append(extra)
    args = " ".join(["./build.sh"] + flags + ["--n=%d" % n])
    summary = ", ".join(["%s=%s" % (k, env[k]) for k in sorted(env.keys())[:3]])
    info = {{
        "name": name,
        "index": {i},
        "parts": len(parts),
        "env": env,
        "labels": labels,
        "args": args,
        "total": total,
        "summary": summary,
    }}
    if len(summary) > 200:
        info["summary"] = summary[:200]
    return info

"#,
                k = i % 7 + 1,
                m = i % 9 + 2
            ),
            1 => write!(
                out,
                r#"def helper_{i}(name, n):
    """Builds env, labels and a build command for `name` (style B: comprehensions, str.format, nesting)."""
    words = [w for w in name.replace("-", " ").split(" ") if w]
    matrix = [[(a * {k} + b) % 10 for b in range(4)] for a in range(n)]
    flat = []
    for row in matrix:
        for cell in row:
            if cell % 2 == 0:
                flat.append(cell)
    checksum = 0
    for x in flat:
        checksum = (checksum * 31 + x) % 1000003
    env = {{"CHECKSUM_{i}": str(checksum), "WORDS_{i}": "-".join(words)}}
    for idx in range(min(n, 6)):
        env["LEVEL_{i}_{{}}".format(idx)] = "{{}}/{{}}".format(idx, len(flat))
    labels = []
    for w in words:
        label = w.lower()
        if label not in labels:
            labels.append(label)
    modes = {{"debug": checksum % 2 == 0, "trace": checksum % 3 == 0, "race": checksum % 5 == 0}}
    enabled = sorted([k for k, v in modes.items() if v])
    args = "./build.sh {{}} --sum={{}}".format(" ".join(["--" + m for m in enabled]), checksum)
    if len(args) > 80:
        args = args[:80]
    notes = []
    for i2, w in enumerate(words):
        if i2 % 2 == 0:
            notes.append("even:" + w)
        else:
            notes.append("odd:" + w)
    summary = "; ".join(notes)
    info = {{
        "name": name,
        "index": {i},
        "parts": len(flat),
        "env": env,
        "labels": labels[:2],
        "args": args.strip(),
        "total": checksum,
        "summary": summary,
    }}
    if not enabled:
        info["args"] = info["args"] + " --plain"
    return info

"#,
                k = i % 5 + 2
            ),
            _ => write!(
                out,
                r#"def helper_{i}(name, n):
    """Builds env, labels and a build command for `name` (style C: f-strings, dict merging, lookups)."""
    base = {{"REGION": "eu-{r}", "TIER": "t{t}", "OWNER": "team-{o}"}}
    overrides = {{}}
    for j in range(n):
        key = f"OPT_{i}_{{j}}"
        if j % 4 == 0:
            overrides[key] = f"{{name}}-{{j}}"
        elif j % 4 == 1:
            overrides[key] = str(j * j)
        elif j % 4 == 2:
            overrides[key] = "yes" if j > 2 else "no"
        else:
            overrides[key] = name[: j % len(name) + 1]
    env = dict(base)
    env.update(overrides)
    ports = [8000 + (j * {k}) % 997 for j in range(n)]
    ports = sorted(ports)
    lo = ports[0] if ports else 0
    hi = ports[-1] if ports else 0
    table = {{}}
    for p in ports:
        bucket = p // 100
        table[bucket] = table.get(bucket, []) + [p]
    buckets = sorted(table.keys())
    described = []
    for b in buckets:
        described.append(f"{{b}}xx:{{len(table[b])}}")
    labels = [f"tier-t{t}"]
    if len(buckets) > 2:
        labels.append("spread")
    args = f"./build.sh --ports={{lo}}-{{hi}} --name={{name}}"
    summary = ",".join(described)
    info = {{
        "name": name,
        "index": {i},
        "parts": len(ports),
        "env": env,
        "labels": labels,
        "args": args,
        "total": hi - lo,
        "summary": summary,
    }}
    return info

"#,
                r = i % 3 + 1,
                t = i % 4,
                o = i % 6,
                k = i % 11 + 3
            ),
        };
        i += 1;
    }
    i
}

/// The evaluation Tiltfile: at least `helper_lines` lines of helper functions and `resources`
/// `local_resource`s, each declared through one of the helpers, with env, labels, deps, a serve command and,
/// for every tenth, a `resource_deps` on the previous one. Returns the text and the number of helpers.
pub fn eval_tiltfile(resources: usize, helper_lines: usize) -> (String, usize) {
    let mut out = String::from(
        "# Generated by tilt-bench (tiltfile-bench): a helper library, then local resources built with it.\n\n",
    );
    let helper_count = helpers(&mut out, helper_lines);
    out.push_str("HELPERS = [\n");
    for i in 0..helper_count {
        let _ = writeln!(out, "    helper_{i},");
    }
    out.push_str(
        r#"]

def with_name(env, name, index):
    """A copy of env with the resource's name and index."""
    merged = dict(env)
    merged["RESOURCE_NAME"] = name
    merged["RESOURCE_INDEX"] = str(index)
    return merged

def group_of(index):
    return "group-%d" % (index % 10)

"#,
    );
    for r in 0..resources {
        let deps = if r % 10 == 9 { format!("\n    resource_deps=[\"svc-{}\"],", r - 1) } else { String::new() };
        let _ = write!(
            out,
            r#"info_{r} = HELPERS[{h}]("svc-{r}", {n})
local_resource(
    "svc-{r}",
    cmd=info_{r}["args"],
    serve_cmd="./serve.sh --port=%d" % {port},
    deps=["src/svc-{r}", "lib/common"],
    env=with_name(info_{r}["env"], "svc-{r}", {r}),
    labels=info_{r}["labels"][:1] + [group_of({r})],{deps}
)

"#,
            h = r % helper_count,
            n = 6 + r % 5,
            port = 10000 + r,
        );
    }
    (out, helper_count)
}

/// The cold-start Tiltfile: `n` resources `s0…` whose `serve_cmd` is `sleep 300`.
pub fn serve_tiltfile(n: usize) -> String {
    let mut out = String::from("# Generated by tilt-bench (tiltfile-bench): servers that only sleep.\n");
    for i in 0..n {
        let _ = writeln!(out, "local_resource('s{i}', serve_cmd='sleep 300')");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let (text, helpers) = eval_tiltfile(500, 5000);
        assert_eq!(text.matches("\nlocal_resource(").count(), 500);
        assert_eq!(text.matches("\ndef helper_").count(), helpers);
        let helper_lines = text.split("HELPERS = [").next().unwrap().lines().count();
        assert!((5000..=5100).contains(&helper_lines), "{helper_lines} helper lines");
        assert_eq!(serve_tiltfile(50).lines().count(), 51);
    }
}
