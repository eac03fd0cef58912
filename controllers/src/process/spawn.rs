//! Starting a process without copying tilt: `clone(CLONE_VM | CLONE_VFORK)`, the way `posix_spawn` does,
//! with the few steps a Cmd's child needs before `execve` (own process group, `PR_SET_PDEATHSIG`).
//!
//! `std::process::Command` with a `pre_exec` hook falls back to `fork()`, which copies the page tables of
//! the whole (multi-threaded, tens of MB) tilt process and makes every page tilt writes next fault; for
//! 50 servers that was about a quarter of the CPU of a cold start. Here the child runs on its own small
//! stack in tilt's memory while the spawning thread waits, touches nothing but what was prepared for it,
//! and only makes system calls until `execve` replaces it. Its exit is awaited through a pidfd.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicI32, Ordering};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

/// What to start.
pub(crate) struct Spec<'a> {
    /// The program: a path, or a name looked up in the child's `PATH`.
    pub program: &'a str,
    /// Its arguments (without the program).
    pub args: &'a [String],
    /// `KEY=VALUE` (or `KEY`, meaning empty) over tilt's environment.
    pub env: &'a [String],
    /// The working directory.
    pub dir: &'a Path,
}

/// A started process: the leader of its own process group, with its stdout and stderr.
pub(crate) struct Spawned {
    /// Its pid (and process group id).
    pub pid: i32,
    /// Its stdout.
    pub stdout: pipe::Receiver,
    /// Its stderr.
    pub stderr: pipe::Receiver,
    /// Its exit.
    pub exit: Exit,
}

/// Which step in the child failed (reported with the errno).
#[derive(Clone, Copy)]
#[repr(i32)]
enum Stage {
    Signals = 1,
    Group = 2,
    DeathSignal = 3,
    Orphaned = 4,
    Stdio = 5,
    Dir = 6,
    Exec = 7,
}

/// Everything the child uses, prepared by the parent: the child must not allocate.
struct Prepared {
    path: CString,
    argv: Vec<*const libc::c_char>,
    /// `/bin/sh path args…`, for an executable without a `#!` line (as `execvp` does).
    script_argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    dir: CString,
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    parent: libc::pid_t,
    /// `stage << 16 | errno` of the first failure; 0 when `execve` succeeded.
    failure: AtomicI32,
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "an argument contains a NUL byte"))
}

/// tilt's environment with `overrides` applied, as `KEY=VALUE` strings, and its `PATH`.
fn environment(overrides: &[String]) -> (Vec<OsString>, Option<OsString>) {
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for kv in overrides {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        vars.retain(|(key, _)| key.as_bytes() != k.as_bytes());
        vars.push((k.into(), v.into()));
    }
    let path = vars.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.clone());
    let joined = vars
        .into_iter()
        .map(|(mut k, v)| {
            k.push("=");
            k.push(v);
            k
        })
        .collect();
    (joined, path)
}

/// The executable `program` names: itself when it contains a `/`, else the first executable file of
/// that name in `path` (relative entries are relative to `dir`, where the child will run).
fn resolve(program: &str, path: Option<&OsStr>, dir: &Path) -> io::Result<PathBuf> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    if program.is_empty() {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    }
    let path = path.unwrap_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    let mut denied = false;
    for entry in std::env::split_paths(path) {
        let candidate = dir.join(entry).join(program);
        let Ok(c) = cstring(candidate.as_os_str()) else { continue };
        // SAFETY: `c` is a valid NUL-terminated string.
        if unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0 {
            if candidate.is_file() {
                return Ok(candidate);
            }
        } else if io::Error::last_os_error().raw_os_error() == Some(libc::EACCES) {
            denied = true;
        }
    }
    Err(io::Error::from_raw_os_error(if denied { libc::EACCES } else { libc::ENOENT }))
}

fn pipe_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned these descriptors, owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Records why the child could not exec, for the parent, and exits.
///
/// # Safety
/// Only in the child.
unsafe fn fail(p: &Prepared, stage: Stage) -> ! {
    // SAFETY: errno is this thread's; _exit ends the child without running tilt's exit handlers.
    unsafe {
        let errno = *libc::__errno_location();
        p.failure.store(((stage as i32) << 16) | (errno & 0xffff), Ordering::SeqCst);
        libc::_exit(127)
    }
}

/// Runs in the child, in tilt's memory, on its own stack, until `execve`.
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` points to the `Prepared` of the parent, which waits (CLONE_VFORK) until we exec or
    // exit; only async-signal-safe system calls follow.
    unsafe {
        let p = &*(arg as *const Prepared);
        // Handlers live in tilt's memory: back to the defaults before anything can be delivered.
        for sig in 1..=libc::SIGRTMAX() {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && (old.sa_sigaction != libc::SIG_IGN || sig == libc::SIGPIPE)
                && old.sa_sigaction != libc::SIG_DFL
            {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        if libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) != 0 {
            fail(p, Stage::Signals);
        }
        if libc::setpgid(0, 0) != 0 {
            fail(p, Stage::Group);
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            fail(p, Stage::DeathSignal);
        }
        // tilt died before the death signal was armed: do not start an orphan.
        if libc::getppid() != p.parent {
            *libc::__errno_location() = libc::ESRCH;
            fail(p, Stage::Orphaned);
        }
        for (from, to) in [(p.stdin, 0), (p.stdout, 1), (p.stderr, 2)] {
            if libc::dup2(from, to) < 0 {
                fail(p, Stage::Stdio);
            }
        }
        if libc::chdir(p.dir.as_ptr()) != 0 {
            fail(p, Stage::Dir);
        }
        libc::execve(p.path.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr());
        if *libc::__errno_location() == libc::ENOEXEC {
            libc::execve(p.script_argv[0], p.script_argv.as_ptr(), p.envp.as_ptr());
            *libc::__errno_location() = libc::ENOEXEC;
        }
        fail(p, Stage::Exec)
    }
}

/// The child's stack: generous for a handful of system calls.
const STACK: usize = 64 * 1024;

/// A child as [`start`] leaves it: its pid and the read ends of its stdout and stderr.
struct Started {
    pid: i32,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

/// What the spawner thread is asked to start.
struct Job {
    program: String,
    args: Vec<String>,
    env: Vec<String>,
    dir: PathBuf,
    reply: std::sync::mpsc::SyncSender<io::Result<Started>>,
}

/// The thread that starts every child.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that created the child exits, not when tilt does. A child
/// started from a tokio worker or a `spawn_blocking` thread would be killed when the runtime retires that
/// thread (blocking threads go after 10 s idle). So no such thread ever starts one: [`spawn`] hands the
/// work to this thread, which lives as long as tilt, and waits for it.
fn spawner() -> &'static std::sync::mpsc::Sender<Job> {
    static SPAWNER: std::sync::OnceLock<std::sync::mpsc::Sender<Job>> = std::sync::OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("tilt-spawner".into())
            .spawn(move || {
                for job in rx {
                    let spec = Spec { program: &job.program, args: &job.args, env: &job.env, dir: &job.dir };
                    let _ = job.reply.send(start(&spec));
                }
            })
            .expect("starting the process spawner thread");
        tx
    })
}

/// Starts `spec` in a new process group, stdin from /dev/null, stdout and stderr into pipes; on the spawner
/// thread (see [`spawner`]).
pub(crate) fn spawn(spec: &Spec<'_>) -> io::Result<Spawned> {
    let (reply, result) = std::sync::mpsc::sync_channel(1);
    let job = Job {
        program: spec.program.to_string(),
        args: spec.args.to_vec(),
        env: spec.env.to_vec(),
        dir: spec.dir.to_path_buf(),
        reply,
    };
    spawner().send(job).map_err(|_| io::Error::other("the process spawner thread is gone"))?;
    let started = result.recv().map_err(|_| io::Error::other("the process spawner thread is gone"))??;
    let exit = Exit::new(started.pid);
    Ok(Spawned {
        pid: started.pid,
        stdout: pipe::Receiver::from_owned_fd(started.stdout)?,
        stderr: pipe::Receiver::from_owned_fd(started.stderr)?,
        exit,
    })
}

/// Starts `spec` on the calling thread, which must outlive the child (see [`spawner`]).
fn start(spec: &Spec<'_>) -> io::Result<Started> {
    let (env, path) = environment(spec.env);
    let program = resolve(spec.program, path.as_deref(), spec.dir)?;
    let mut args = vec![cstring(OsStr::new(spec.program))?];
    for a in spec.args {
        args.push(cstring(OsStr::new(a))?);
    }
    let env: Vec<CString> = env.into_iter().map(|e| cstring(&e)).collect::<io::Result<_>>()?;
    let null = std::fs::File::open("/dev/null")?;
    let (out_r, out_w) = pipe_pair()?;
    let (err_r, err_w) = pipe_pair()?;
    let path = cstring(program.as_os_str())?;
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut script_argv: Vec<*const libc::c_char> = vec![c"/bin/sh".as_ptr(), path.as_ptr()];
    script_argv.extend_from_slice(&argv[1..]);
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let prepared = Prepared {
        path,
        argv,
        script_argv,
        envp,
        dir: cstring(spec.dir.as_os_str())?,
        stdin: null.as_raw_fd(),
        stdout: out_w.as_raw_fd(),
        stderr: err_w.as_raw_fd(),
        // SAFETY: getpid has no preconditions.
        parent: unsafe { libc::getpid() },
        failure: AtomicI32::new(0),
    };
    let mut stack = vec![0u8; STACK];
    // SAFETY: the stack grows down from its (16-byte aligned) top; `prepared` and `stack` outlive the
    // child's use of them because CLONE_VFORK returns only after the child has exec'd or exited. All
    // signals are blocked around the clone so that none runs a tilt handler in the child.
    let pid = unsafe {
        let top = stack.as_mut_ptr().add(STACK) as usize & !15;
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(
            child,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &prepared as *const Prepared as *mut libc::c_void,
        );
        let clone_error = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            return Err(clone_error);
        }
        pid
    };
    drop((null, out_w, err_w, stack));
    let failure = prepared.failure.load(Ordering::SeqCst);
    if failure != 0 {
        let mut status = 0;
        // SAFETY: reaps the child that just exited.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let errno = io::Error::from_raw_os_error(failure & 0xffff);
        return Err(match failure >> 16 {
            s if s == Stage::Exec as i32 => errno,
            s if s == Stage::Dir as i32 => {
                io::Error::new(errno.kind(), format!("working directory {}: {errno}", spec.dir.display()))
            }
            s if s == Stage::Orphaned as i32 => io::Error::other("tilt exited while starting the process"),
            _ => io::Error::new(errno.kind(), format!("preparing the process: {errno}")),
        });
    }
    Ok(Started { pid, stdout: out_r, stderr: err_r })
}

/// The exit of a spawned child, awaited through a pidfd (polled when the kernel has none).
pub(crate) struct Exit {
    pid: i32,
    pidfd: Option<AsyncFd<OwnedFd>>,
    status: Option<ExitStatus>,
    /// Already reaped in the background (dropping it must not start another reaper).
    background: bool,
}

impl Exit {
    fn new(pid: i32) -> Exit {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as RawFd;
        // SAFETY: a non-negative result is a descriptor we own; the OwnedFd keeps it open and the same
        // for the AsyncFd's lifetime.
        let pidfd = (fd >= 0)
            .then(|| unsafe { OwnedFd::from_raw_fd(fd) })
            .and_then(|fd| unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.ok());
        Exit { pid, pidfd, status: None, background: false }
    }

    /// Reaps the child if it has exited.
    fn try_reap(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            let mut status = 0;
            // SAFETY: waits only for our own child, without blocking.
            match unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) } {
                0 => {}
                p if p == self.pid => self.status = Some(ExitStatus::from_raw(status)),
                _ => return Err(io::Error::last_os_error()),
            }
        }
        Ok(self.status)
    }

    /// Waits until the child has exited and returns its status (again on later calls).
    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.try_reap()? {
                return Ok(status);
            }
            match &self.pidfd {
                Some(fd) => fd.readable().await?.clear_ready(),
                None => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
    }
}

impl Drop for Exit {
    fn drop(&mut self) {
        // Never leave a zombie: reap it in the background once it exits (it is not killed here).
        if self.background || !matches!(self.try_reap(), Ok(None)) {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let mut rest = Exit { pid: self.pid, pidfd: self.pidfd.take(), status: None, background: true };
            handle.spawn(async move {
                let _ = rest.wait().await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn runs_in_its_own_group_with_env_dir_and_output() {
        let dir = tempfile::tempdir().unwrap();
        let a = args(&["-c", "echo $GREETING $EMPTY. $(pwd); echo $$ $(ps -o pgid= -p $$) >&2; exit 3"]);
        let env = args(&["GREETING=hi", "EMPTY"]);
        let mut s = spawn(&Spec { program: "sh", args: &a, env: &env, dir: dir.path() }).unwrap();
        let (mut out, mut err) = (String::new(), String::new());
        s.stdout.read_to_string(&mut out).await.unwrap();
        s.stderr.read_to_string(&mut err).await.unwrap();
        let status = s.exit.wait().await.unwrap();
        assert_eq!(status.code(), Some(3));
        assert_eq!(out.trim(), format!("hi . {}", dir.path().canonicalize().unwrap().display()));
        let ids: Vec<&str> = err.split_whitespace().collect();
        assert_eq!(ids, [s.pid.to_string(), s.pid.to_string()], "the leader of its own group");
        assert_eq!(s.exit.wait().await.unwrap().code(), Some(3), "the status is kept");
    }

    #[tokio::test]
    async fn path_comes_from_the_childs_environment() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("only-here");
        std::fs::write(&bin, "#!/bin/sh\necho found\n").unwrap();
        std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let env = args(&[&format!("PATH={}", dir.path().display())]);
        let mut s = spawn(&Spec { program: "only-here", args: &[], env: &env, dir: Path::new("/") }).unwrap();
        let mut out = String::new();
        s.stdout.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "found\n");
        assert!(s.exit.wait().await.unwrap().success());
        let err = spawn(&Spec { program: "only-here", args: &[], env: &[], dir: Path::new("/") }).err().unwrap();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
    }

    #[tokio::test]
    async fn an_executable_without_a_shebang_runs_in_sh() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("script");
        std::fs::write(&script, "echo from sh $1\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let a = args(&["arg"]);
        let mut s =
            spawn(&Spec { program: script.to_str().unwrap(), args: &a, env: &[], dir: Path::new("/") }).unwrap();
        let mut out = String::new();
        s.stdout.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "from sh arg\n");
        assert!(s.exit.wait().await.unwrap().success());
    }

    #[tokio::test]
    async fn failures_before_exec_are_errors() {
        let missing =
            spawn(&Spec { program: "/no/such/binary", args: &[], env: &[], dir: Path::new("/") }).err().unwrap();
        assert_eq!(missing.raw_os_error(), Some(libc::ENOENT));
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "echo hi\n").unwrap();
        let plain = plain.to_str().unwrap();
        let not_exec = spawn(&Spec { program: plain, args: &[], env: &[], dir: Path::new("/") }).err().unwrap();
        assert_eq!(not_exec.raw_os_error(), Some(libc::EACCES), "{not_exec}");
        let bad_dir =
            spawn(&Spec { program: "true", args: &[], env: &[], dir: Path::new("/no/such/dir") }).err().unwrap();
        assert!(bad_dir.to_string().contains("/no/such/dir"), "{bad_dir}");
        let nul =
            spawn(&Spec { program: "echo", args: &args(&["a\0b"]), env: &[], dir: Path::new("/") }).err().unwrap();
        assert_eq!(nul.kind(), io::ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn signals_are_at_their_defaults_in_the_child() {
        let a = args(&["-c", "grep -E '^(SigIgn|SigBlk)' /proc/self/status"]);
        let mut s = spawn(&Spec { program: "sh", args: &a, env: &[], dir: Path::new("/") }).unwrap();
        let mut out = String::new();
        s.stdout.read_to_string(&mut out).await.unwrap();
        s.exit.wait().await.unwrap();
        assert!(out.contains("SigBlk:\t0000000000000000"), "nothing blocked: {out}");
        // SIGPIPE, which Rust ignores, is back to its default.
        let ignored = out.lines().find(|l| l.starts_with("SigIgn:")).unwrap();
        let mask = u64::from_str_radix(ignored.trim_start_matches("SigIgn:").trim(), 16).unwrap();
        assert_eq!(mask & (1 << (libc::SIGPIPE - 1)), 0, "{out}");
    }

    #[test]
    fn a_child_started_on_a_thread_that_ends_is_killed_with_that_thread() {
        // Why `spawn` hands the work to the spawner thread: PR_SET_PDEATHSIG follows the starting thread.
        let started = std::thread::spawn(|| {
            let a = args(&["10"]);
            start(&Spec { program: "sleep", args: &a, env: &[], dir: Path::new("/") }).unwrap()
        })
        .join()
        .unwrap();
        let pid = started.pid;
        let begin = std::time::Instant::now();
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL, "status {status:#x}");
        assert!(begin.elapsed() < std::time::Duration::from_secs(5), "killed at once, not after sleeping");
    }

    #[test]
    fn a_child_outlives_the_thread_that_asked_for_it() {
        // A tokio blocking thread (or any other) that asks for a process and then ends does not take it along.
        let pid = std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let a = args(&["10"]);
                let mut spawned = spawn(&Spec { program: "sleep", args: &a, env: &[], dir: Path::new("/") }).unwrap();
                spawned.exit.background = true;
                spawned.pid
            })
        })
        .join()
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut status = 0;
        // SAFETY: polls our own child without blocking.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) }, 0, "the child must still run");
        // SAFETY: kills and reaps our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, &mut status, 0);
        }
    }
}
