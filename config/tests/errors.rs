//! Tiltfile errors: tracebacks with file:line, and the files/output collected before the error.

mod common;

use common::{Project, s};

#[test]
fn syntax_error_names_file_and_line() {
    let p = Project::with_tiltfile("print('ok')\nx = (1,\nlocal_resource('a' 'b'\n");
    let err = p.load_err();
    let tiltfile = s(&p.path("Tiltfile"));
    assert!(err.message.contains(&format!("{tiltfile}:")), "{}", err.message);
    assert!(err.message.to_lowercase().contains("parse error") || err.message.contains("error"), "{}", err.message);
    assert_eq!(err.files, vec![p.path("Tiltfile")], "the broken Tiltfile is still watched");
}

#[test]
fn unknown_keyword_argument_is_an_error() {
    let p = Project::with_tiltfile("\nlocal_resource('a', cmd='true', dpes=['x'])\n");
    let err = p.load_err();
    assert!(err.message.contains("dpes"), "{}", err.message);
    assert!(err.message.contains(&format!("{}:2:", s(&p.path("Tiltfile")))), "{}", err.message);
}

#[test]
fn failing_local_names_command_exit_code_and_stderr() {
    let p = Project::with_tiltfile("print('before')\nlocal('echo out; echo oops >&2; exit 3')\n");
    let err = p.load_err();
    assert!(err.message.contains("echo out; echo oops >&2; exit 3"), "{}", err.message);
    assert!(err.message.contains("exit status 3"), "{}", err.message);
    assert!(err.message.contains("oops"), "{}", err.message);
    assert!(err.message.contains("Tiltfile:2:"), "{}", err.message);
    assert_eq!(err.output[0], "before");
    assert_eq!(err.output[1], "local: echo out; echo oops >&2; exit 3");
}

#[test]
fn fail_stops_with_the_message() {
    let p = Project::with_tiltfile("def check():\n    fail('missing config: foo')\n\ncheck()\n");
    let err = p.load_err();
    assert!(err.message.contains("missing config: foo"), "{}", err.message);
    assert!(err.message.contains("Tiltfile:4, in <module>"), "{}", err.message);
    assert!(err.message.contains("Tiltfile:2:"), "traceback includes the inner frame: {}", err.message);
}

#[test]
fn error_in_loaded_file_names_that_file_and_files_read_before_are_reported() {
    let p = Project::with_tiltfile("read_file('data.txt')\nload('./lib/helpers.star', 'helper')\n");
    p.write("data.txt", "x");
    p.write("lib/helpers.star", "def helper():\n    pass\n\nundefined_name()\n");
    let err = p.load_err();
    assert!(err.message.contains("helpers.star:4:"), "{}", err.message);
    assert_eq!(err.files, vec![p.path("Tiltfile"), p.path("data.txt"), p.path("lib/helpers.star")]);
}

#[test]
fn missing_tiltfile() {
    let p = Project::new();
    let err = p.load_err();
    assert!(err.message.contains("Tiltfile"), "{}", err.message);
    assert_eq!(err.files, vec![p.path("Tiltfile")], "watched so that creating it retries");
}

#[test]
fn error_display() {
    let p = Project::with_tiltfile("fail('boom')\n");
    let err = p.load_err();
    assert_eq!(err.to_string(), err.message);
    assert!(!err.message.contains('\u{1b}'), "no terminal colors: {:?}", err.message);
}
