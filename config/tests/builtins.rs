//! The general built-ins: files, commands, encodings, os, config, load(), probes, the Starlark dialect.

mod common;

use common::{Project, eval_output, find, s};
use serde_json::json;

#[test]
fn dialect_top_level_control_flow_fstrings_lambda_def_struct_json() {
    let out = eval_output(
        r#"
names = []
for i in range(3):
    if i % 2 == 0:
        names.append('n%d' % i)
name = 'world'
print(f"hello {name}")
square = lambda x: x * x
def add(a, b=1, *, c=0):
    return a + b + c
print(names, square(4), add(1, c=2))
s = struct(a=1, b='x')
print(s.a, s.b)
print(json.encode({'k': [1, 2]}))
x = 1
x = 2
print(x, type(blob('y')), str(blob('y')), blob('a') + 'b', 'c' + blob('d'))
print(__name__, __file__.endswith('Tiltfile'))
"#,
    );
    assert_eq!(
        out,
        vec!["hello world", r#"["n0", "n2"] 16 4"#, "1 x", r#"{"k":[1,2]}"#, "2 blob y ab cd", "__main__ True",]
    );
}

#[test]
fn local_runs_in_tiltfile_dir_with_env_dir_and_stdin() {
    let p = Project::with_tiltfile(
        r#"
out = local('pwd; echo $GREETING', env={'GREETING': 'hi'})
print('got', str(out).strip().split('\n'))
print(str(local(['cat'], stdin='from stdin', quiet=True, echo_off=True)))
print(str(local('pwd', dir='sub', quiet=True)).strip())
b = local('printf x', quiet=True)
print(type(b), len(str(b)))
"#,
    );
    std::fs::create_dir(p.path("sub")).unwrap();
    let out = p.load().output;
    let dir = s(&p.dir());
    assert_eq!(
        out,
        vec![
            "local: pwd; echo $GREETING".to_owned(),
            format!(" → {dir}"),
            " → hi".to_owned(),
            format!("got [\"{dir}\", \"hi\"]"),
            "from stdin".to_owned(),
            "local: pwd".to_owned(),
            format!("{dir}/sub"),
            "local: printf x".to_owned(),
            "blob 1".to_owned(),
        ]
    );
}

#[test]
fn read_file_json_yaml_with_defaults_and_files_list() {
    let p = Project::with_tiltfile(
        r#"
print(str(read_file('a.txt')))
print(str(read_file('missing.txt', default='dflt')))
print(read_json('c.json')['list'][1], read_json('nope.json', default={'d': 1}))
print(read_yaml('d.yaml')['x']['y'], read_yaml(path='nope.yaml', default=None))
print(len(read_yaml_stream('e.yaml')), read_yaml_stream('nope.yaml', []))
watch_file('watched-dir')
load('./lib/l.star', 'value')
print(value)
"#,
    );
    p.write("a.txt", "contents of a");
    p.write("c.json", r#"{"list": [1, 2.5, "three"]}"#);
    p.write("d.yaml", "x:\n  y: [1, 2]\n");
    p.write("e.yaml", "a: 1\n---\nb: 2\n---\n");
    p.write("lib/l.star", "value = str(read_file('../a.txt'))\n");
    let loaded = p.load();
    assert_eq!(loaded.output, vec!["contents of a", "dflt", "2.5 {\"d\": 1}", "[1, 2] None", "2 []", "contents of a"]);
    let rel: Vec<String> =
        loaded.files.iter().map(|f| f.strip_prefix(p.dir()).unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(
        rel,
        vec![
            "Tiltfile",
            "a.txt",
            "missing.txt",
            "c.json",
            "nope.json",
            "d.yaml",
            "nope.yaml",
            "e.yaml",
            "watched-dir",
            "lib/l.star"
        ]
    );
    assert!(loaded.files.iter().all(|f| f.is_absolute()));
}

#[test]
fn reading_a_missing_file_without_default_fails() {
    let err = Project::with_tiltfile("read_file('nope.txt')\n").load_err();
    assert!(err.message.contains("nope.txt"), "{}", err.message);
}

#[test]
fn encode_and_decode() {
    let out = eval_output(
        r#"
obj = {'b': [1, 2.5, True, None], 'a': 'yes', 's': 'plain'}
y = encode_yaml(obj)
print(type(y))
print(str(y).strip())
print(decode_yaml(y) == obj)
print(decode_yaml_stream('a: 1\n---\nb: 2\n'))
print(str(encode_yaml_stream([{'a': 1}, {'b': 2}])).strip().split('\n'))
j = encode_json(obj)
print(decode_json(j) == obj, type(j))
print(decode_json('[1, {"x": null}]'))
"#,
    );
    assert_eq!(out[0], "blob");
    assert!(out[1].contains("a: 'yes'") || out[1].contains("a: \"yes\""), "{}", out[1]);
    assert!(out[1].contains("- 2.5"), "{}", out[1]);
    assert_eq!(out[2], "True");
    assert_eq!(out[3], r#"[{"a": 1}, {"b": 2}]"#);
    assert_eq!(out[4], r#"["a: 1", "---", "b: 2"]"#);
    assert_eq!(out[5], "True string");
    assert_eq!(out[6], r#"[1, {"x": None}]"#);
}

#[test]
fn decode_errors() {
    for (t, wanted) in [
        ("decode_json('{')", "error parsing JSON"),
        ("decode_yaml('a: [')", "error parsing YAML"),
        ("decode_yaml('a: 1\\n---\\nb: 2\\n')", "expected one YAML document"),
        ("encode_json(lambda x: x)", "cannot convert"),
    ] {
        let err = Project::with_tiltfile(t).load_err();
        assert!(err.message.contains(wanted), "{t}: {}", err.message);
    }
}

#[test]
fn os_module() {
    let p = Project::with_tiltfile(
        r#"
print(os.getcwd() == config.main_dir, os.name)
print(os.getenv('TILT_CONFIG_TEST_UNSET_VAR'), os.getenv('TILT_CONFIG_TEST_UNSET_VAR', 'dflt'))
print(os.getenv('HOME') == os.environ['HOME'])
print(os.path.join('a', 'b/../c', 'd'), os.path.basename('/x/y.txt'), os.path.dirname('/x/y.txt'))
print(os.path.exists('Tiltfile'), os.path.exists('nope'))
print(os.path.abspath('sub') == config.main_dir + '/sub')
print(os.path.relpath(config.main_dir + '/a/b'), os.path.relpath('/x/y', '/x/z'))
print(os.path.realpath('link') == config.main_dir + '/Tiltfile')
print(config.main_path == __file__, config.tilt_subcommand, type(sys.argv))
"#,
    );
    std::os::unix::fs::symlink(p.path("Tiltfile"), p.path("link")).unwrap();
    assert_eq!(
        p.load().output,
        vec![
            "True posix",
            "None dflt",
            "True",
            "a/c/d y.txt /x",
            "True False",
            "True",
            "a/b ../y",
            "True",
            "True up list",
        ]
    );
}

#[test]
fn config_parse_flags_positional_and_config_file() {
    let p = Project::with_tiltfile(
        r#"
config.define_string_list('to-run', args=True, usage='resources to run')
config.define_string('env')
config.define_bool('debug')
config.define_object('extra')
config.define_string('from-file')
cfg = config.parse()
print(sorted(cfg.keys()))
print(cfg.get('to-run'), cfg.get('env'), cfg.get('debug'), cfg.get('extra'), cfg.get('from-file'))
"#,
    );
    p.write("tilt_config.json", r#"{"from-file": "file-value", "env": "overridden"}"#);
    let loaded = p
        .load_args(&["frontend", "--env", "prod", "backend", "--debug", r#"--extra={"n": 1}"#])
        .unwrap_or_else(|e| panic!("{}", e.message));
    assert_eq!(
        loaded.output,
        vec![
            r#"["debug", "env", "extra", "from-file", "to-run"]"#,
            r#"["frontend", "backend"] prod True {"n": 1} file-value"#,
        ]
    );
    assert!(loaded.files.contains(&p.path("tilt_config.json")));
}

#[test]
fn config_parse_with_no_args_returns_only_given_settings() {
    let p = Project::with_tiltfile(
        "config.define_string('env')\ncfg = config.parse()\nprint(cfg, cfg.get('env', 'dev'))\n",
    );
    assert_eq!(p.load().output, vec!["{} dev"]);
    assert!(p.load().files.contains(&p.path("tilt_config.json")), "watched so that creating it reloads");
}

#[test]
fn config_errors() {
    let p = Project::with_tiltfile("config.define_string('env')\nconfig.parse()\n");
    let err = p.load_args(&["--nope"]).unwrap_err();
    assert!(err.message.contains("invalid Tiltfile config args: unknown flag: --nope"), "{}", err.message);
    let err = p.load_args(&["positional"]).unwrap_err();
    assert!(err.message.contains("none were expected"), "{}", err.message);
    for (t, wanted) in [
        ("config.define_string('a')\nconfig.define_string('a')", "defined multiple times"),
        ("config.define_string('a', args=True)\nconfig.define_bool('b', args=True)", "positional args"),
        ("config.parse()\nconfig.define_string('a')", "cannot be called after config.parse"),
        ("config.define_string('a', usage='x', bogus=1)", "bogus"),
    ] {
        let err = Project::with_tiltfile(t).load_err();
        assert!(err.message.contains(wanted), "{t}: {}", err.message);
    }
}

#[test]
fn load_relative_files_with_aliases_once() {
    let p = Project::with_tiltfile(
        r#"
load('./lib/a.star', 'greet', g2='greet', CONST='CONST')
load('lib/a.star', 'greet')
print(greet('x'), g2('y'), CONST)
include('./sub/Tiltfile')
"#,
    );
    p.write(
        "lib/a.star",
        "load('./b.star', 'suffix')\nprint('loading a')\nCONST = 42\ndef greet(n):\n    return 'hi ' + n + suffix\n",
    );
    p.write("lib/b.star", "suffix = '!'\n");
    p.write("sub/Tiltfile", "local_resource('sub', 'ls', deps=['.'])\nprint(os.getcwd().endswith('/sub'))\n");
    let loaded = p.load();
    assert_eq!(loaded.output, vec!["loading a", "hi x! hi y! 42", "True"]);
    assert_eq!(loaded.resources, vec!["sub"]);
    assert_eq!(find(&loaded, "Cmd", "sub:update")["spec"]["dir"], json!(s(&p.path("sub"))));
    assert_eq!(find(&loaded, "FileWatch", "local:sub")["spec"]["watchedPaths"], json!([s(&p.path("sub"))]));
    for f in ["Tiltfile", "lib/a.star", "lib/b.star", "sub/Tiltfile"] {
        assert!(loaded.files.contains(&p.path(f)), "{f} in {:?}", loaded.files);
    }
}

#[test]
fn load_errors() {
    let p = Project::with_tiltfile("load('./missing.star', 'x')\n");
    let err = p.load_err();
    assert!(err.message.contains("does not exist"), "{}", err.message);
    assert!(err.files.contains(&p.path("missing.star")));

    let p = Project::with_tiltfile("load('ext://restart_process', 'docker_build_with_restart')\n");
    assert!(p.load_err().message.contains("ext://"));

    let p = Project::with_tiltfile("load('./a.star', 'x')\n");
    p.write("a.star", "load('./Tiltfile', 'y')\nx = 1\n");
    assert!(p.load_err().message.contains("cycle in load()"));

    let p = Project::with_tiltfile("load('./a.star', 'nope')\n");
    p.write("a.star", "x = 1\n");
    assert!(p.load_err().message.contains("nope"));
}

#[test]
fn missing_files_are_watched_even_in_missing_directories() {
    // The FileWatch watches a missing path through its nearest existing ancestor, so every file the
    // Tiltfile looked for is recorded, wherever it is missing.
    let p = Project::with_tiltfile(
        r#"
config.define_string('env')
cfg = config.parse()
print(str(read_file('gen/out/version.txt', default='v0')))
print(read_json('settings/local.json', default={'a': 1}))
print(read_yaml('values/dev/values.yaml', default=None))
watch_file('later/trigger.txt')
"#,
    );
    let loaded = p.load();
    assert_eq!(loaded.output, vec!["v0", r#"{"a": 1}"#, "None"]);
    for f in [
        "tilt_config.json",
        "gen/out/version.txt",
        "settings/local.json",
        "values/dev/values.yaml",
        "later/trigger.txt",
    ] {
        assert!(loaded.files.contains(&p.path(f)), "{f} in {:?}", loaded.files);
    }

    // A load() of a file in a missing directory fails the Tiltfile, and creating it re-runs it.
    let p = Project::with_tiltfile("load('./lib/missing/defs.star', 'x')\n");
    let err = p.load_err();
    assert!(err.message.contains("does not exist"), "{}", err.message);
    assert!(err.files.contains(&p.path("lib/missing/defs.star")), "{:?}", err.files);
}

#[test]
fn probes_and_actions() {
    let out = eval_output(
        r#"
p = probe(initial_delay_secs=2, exec=exec_action(['pg_isready']))
print(p.initial_delay_secs, p.timeout_secs, p.period_secs, p.success_threshold, p.failure_threshold)
print(p.exec.command, p.http_get, type(p))
h = http_get_action(8080, host='127.0.0.1', scheme='https', path='/ready')
print(h.port, h.host, h.scheme, h.path)
t = tcp_socket_action(port=5432)
print(t.port, t.host == '')
"#,
    );
    assert_eq!(out, vec!["2 1 10 1 3", r#"["pg_isready"] None probe"#, "8080 127.0.0.1 https /ready", "5432 True"]);
    for (t, wanted) in [
        ("probe()", "exactly one of exec"),
        ("probe(exec=exec_action(['a']), tcp_socket=tcp_socket_action(1))", "exactly one of exec"),
        ("probe(exec='ls')", "must be an exec_action()"),
        ("http_get_action(0)", "port must be"),
        ("http_get_action(80, scheme='ftp')", "scheme"),
        ("probe(period_secs=-1, exec=exec_action(['a']))", "period_secs"),
    ] {
        let err = Project::with_tiltfile(t).load_err();
        assert!(err.message.contains(wanted), "{t}: {}", err.message);
    }
}

#[test]
fn serve_cmd_probe_exec_and_tcp() {
    let p = Project::with_tiltfile(
        r#"
local_resource('a', serve_cmd='x', readiness_probe=probe(exec=exec_action(['true']), timeout_secs=3))
local_resource('b', serve_cmd='y', readiness_probe=probe(tcp_socket=tcp_socket_action(5432, host='db')))
"#,
    );
    let loaded = p.load();
    let probe_a = &find(&loaded, "Cmd", "a:serve")["spec"]["readinessProbe"];
    assert_eq!(probe_a["exec"], json!({"command": ["true"]}));
    assert_eq!(probe_a["timeoutSeconds"], json!(3));
    let probe_b = &find(&loaded, "Cmd", "b:serve")["spec"]["readinessProbe"];
    assert_eq!(probe_b["tcpSocket"], json!({"host": "db", "port": 5432}));
}

#[test]
fn listdir_blob_watch_settings_and_tiltignore() {
    let p = Project::with_tiltfile(
        r#"
print([f.split('/')[-1] for f in listdir('d')])
print([f.split('/')[-1] for f in listdir('d', recursive=True)])
watch_settings(ignore='*.log')
local_resource('r', 'true', deps=['d'])
"#,
    );
    p.write("d/b.txt", "");
    p.write("d/a.txt", "");
    p.write("d/sub/c.txt", "");
    p.write(".tiltignore", "# comment\n\ntmp/\n");
    let loaded = p.load();
    assert_eq!(loaded.output, vec![r#"["a.txt", "b.txt"]"#, r#"["a.txt", "b.txt", "c.txt"]"#]);
    assert_eq!(
        find(&loaded, "FileWatch", "local:r")["spec"]["ignores"],
        json!([{"basePath": s(&p.dir()), "patterns": ["tmp/", "*.log"]}])
    );
    assert!(loaded.files.contains(&p.path(".tiltignore")));
    assert!(loaded.files.contains(&p.path("d")), "recursive listdir watches the directory");
}

#[test]
fn accepted_settings_builtins() {
    let p = Project::with_tiltfile(
        r#"
allow_k8s_contexts(['kind-kind'])
update_settings(max_parallel_updates=2, k8s_upsert_timeout_secs=60)
analytics_settings(False)
version_settings(constraint='>=0.30.0')
ci_settings(timeout='10m')
secret_settings(disable_scrub=True)
set_team('abc')
disable_snapshots()
print(type(k8s_context()), type(k8s_namespace()))
"#,
    );
    assert_eq!(p.load().output, vec!["string string"]);
}

#[test]
fn print_goes_to_output_in_order() {
    let out = eval_output("print('a', 1, [2])\nprint()\nprint('b')\n");
    assert_eq!(out, vec!["a 1 [2]", "", "b"]);
}

#[test]
fn recursion_is_allowed() {
    let out = eval_output("def fact(n):\n    return 1 if n <= 1 else n * fact(n - 1)\nprint(fact(10))\n");
    assert_eq!(out, vec!["3628800"]);
}
