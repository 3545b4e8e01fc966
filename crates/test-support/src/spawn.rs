//! Spawning child processes that die with the test process.
//!
//! Linux can send a signal to a child when its parent dies:
//! `prctl(PR_SET_PDEATHSIG, SIGKILL)`, set between `fork` and `exec`. The catch is that
//! "parent" means the *thread* that forked, not the process: a child spawned from a test
//! thread would be killed as soon as that test finishes, even though the test binary is still
//! running. So every spawn goes through one dedicated thread, `test-kafka-spawner`, which is
//! started on first use and never exits; the signal then fires only when the whole process is
//! gone, including when it is killed or exits without running destructors (statics such as
//! [`crate::KafkaBroker::shared`] are never dropped).
//!
//! This is the only module allowed to use `unsafe`: `pre_exec` (code running in the forked
//! child) and `kill(2)` (SIGTERM for a graceful stop).
#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Sender};
use std::thread;

type Request = (Command, Sender<io::Result<Child>>);

/// Spawns `cmd` so that the child gets SIGKILL when the current process exits (normally,
/// by panic, or by being killed), not merely when the calling thread ends.
///
/// Use it for every long-running helper process a test starts (brokers, the product's service
/// binaries), so that an aborted `cargo test` leaves nothing behind:
///
/// ```no_run
/// use std::process::Command;
///
/// let mut cmd = Command::new("sleep");
/// cmd.arg("600");
/// let mut child = test_support::spawn_killed_on_parent_exit(cmd)?;
/// // ... the test talks to the child ...
/// child.kill()?; // still kill and reap it when the test is done
/// child.wait()?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Configure stdio, env and working directory on `cmd` before passing it in; the returned
/// [`Child`] is owned by the caller like one from [`Command::spawn`]. Linux only.
pub fn spawn_killed_on_parent_exit(mut cmd: Command) -> io::Result<Child> {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // functions may be called. It calls prctl(2) and getppid(2), both plain system calls, and
    // builds an io::Error from a raw errno, which does not allocate.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl; then no signal would come.
            if libc::getppid() as u32 != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner()
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("test-kafka spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("test-kafka spawner thread dropped the request"))?
}

/// The sender side of the spawner thread's queue, starting the thread on first use.
fn spawner() -> &'static Sender<Request> {
    static SPAWNER: OnceLock<Sender<Request>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        thread::Builder::new()
            .name("test-kafka-spawner".into())
            .spawn(move || {
                // `tx` lives in a static and is never dropped, so this loop never ends and the
                // thread (the parent of every child, as far as PDEATHSIG is concerned) lives as
                // long as the process.
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("cannot start the test-kafka-spawner thread");
        tx
    })
}

/// Sends SIGTERM to `child` (asks it to shut down cleanly). Errors if it already exited and
/// was reaped.
pub(crate) fn terminate(child: &Child) -> io::Result<()> {
    let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
    // SAFETY: kill(2) has no memory-safety preconditions. `child` is not yet reaped (we hold
    // the `Child` and only reap through it), so `pid` still names our child.
    if unsafe { libc::kill(pid, libc::SIGTERM) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
