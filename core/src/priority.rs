//! The frame path's threads yield to the control path's.
//!
//! On a busy machine (two cores copying frames, writing them and serving viewers) a control
//! call waits for a core at each of its hops: the client's thread, a server worker, the
//! device's thread and back. The frame path has a ring to absorb such waits; a person at a
//! console or a script's unary call has none. So the daemon sorts its threads in two classes:
//!
//! - **Control** (the async runtime's threads, the device threads of everything but cameras;
//!   set on the main thread at start and inherited): a short scheduler slice
//!   ([`CONTROL_SLICE_NS`], EEVDF's per-thread slice since Linux 6.12), so a control thread
//!   that wakes takes a core from a thread on a longer slice at once instead of when that
//!   thread's slice ends. Older kernels ignore the request.
//! - **Frame path** (a camera's device thread, which runs its acquisitions' camera loop; the
//!   writer threads; the frame path's one-off blocking work, such as mapping in a ring or
//!   finishing files with their fsync, through [`on_frame_path`]): [`FRAME_PATH_NICE`] nice
//!   levels below the control threads, on a slice longer than the kernel's default on any
//!   machine ([`FRAME_PATH_SLICE_NS`]). When both want a core, the control call, or any other
//!   program's thread, gets it first; when nothing else runs the frame path has every core to
//!   itself (nice only weighs threads that compete).
//!
//! A thread can lower its priority but not raise it back (without `CAP_SYS_NICE` or an
//! `RLIMIT_NICE` that allows it), so only threads that serve the frame path for good enter it,
//! never the tokio blocking pool. A thread on a policy other than `SCHED_OTHER` (the daemon
//! started under `chrt`, or a unit's `CPUSchedulingPolicy=`) keeps its policy and gets the
//! nice value alone. The systemd unit starts the daemon at `Nice=-10`, which puts the frame
//! path at nice 0, level with the rest of the system, and the control path ahead of it.
//! Started by hand (nice 0), the frame path runs at 10 and yields to other processes too.

use std::sync::Once;

/// Nice levels between the daemon's control threads and its frame path.
pub const FRAME_PATH_NICE: i32 = 10;

/// The scheduler slice a control thread asks for, in nanoseconds (the kernel's least).
pub const CONTROL_SLICE_NS: u64 = 100_000;

/// The scheduler slice a frame path thread asks for, in nanoseconds: longer than the kernel's
/// default on any machine (0.75 ms times 1 + log2 of the cores, counted up to 8: at most
/// 3 ms), so that a thread on the default slice that wakes (another program, a client on this
/// machine) takes the core from it at once (EEVDF lets a waking thread with a shorter slice cut
/// a longer one short), while a camera thread waits at most this long for a writer: two
/// frames at 1 GB/s, well inside a camera's buffer.
pub const FRAME_PATH_SLICE_NS: u64 = 4_000_000;

/// The calling thread's nice value.
pub fn thread_nice() -> i32 {
    #[cfg(target_os = "linux")]
    // SAFETY: `gettid` and `getpriority` take plain integers; errno is thread-local.
    unsafe {
        // getpriority may rightly return -1: only errno tells an error from nice -1.
        *libc::__errno_location() = 0;
        let now = libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t);
        if now == -1 && *libc::__errno_location() != 0 {
            return 0;
        }
        now
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// The calling thread's scheduler slice in nanoseconds, as the kernel reports it: 0 where it
/// has no per-thread slice (before Linux 6.12), `None` if it will not say.
pub fn thread_slice_ns() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: an all-zero `sched_attr` is a valid value of the plain C struct.
        let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
        // SAFETY: `attr` is writable for the size passed; pid 0 is the calling thread.
        let r = unsafe {
            libc::syscall(
                libc::SYS_sched_getattr,
                0 as libc::c_long,
                &mut attr as *mut libc::sched_attr,
                std::mem::size_of::<libc::sched_attr>() as libc::c_long,
                0 as libc::c_long,
            )
        };
        (r == 0).then_some(attr.sched_runtime)
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// Says once, in the log, that the scheduler refused (a sandbox that filters the call): the
/// daemon works the same, control calls just wait longer under load.
fn refused(what: &str, e: std::io::Error) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing::warn!(error = %e, "cannot set the {what} scheduling of a thread: control calls may wait behind the frame path under load");
    });
}

/// Sets the calling thread's nice value and, if it is on `SCHED_OTHER`, its scheduler slice
/// (0: the kernel's default), keeping its policy and reset-on-fork flag.
fn set_thread(what: &str, nice: i32, slice_ns: u64) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `sched_getscheduler` takes a plain integer (0: the calling thread).
        let policy = unsafe { libc::sched_getscheduler(0) };
        let reset_on_fork = policy >= 0 && policy & libc::SCHED_RESET_ON_FORK != 0;
        let policy = policy & !libc::SCHED_RESET_ON_FORK;
        if policy == libc::SCHED_OTHER {
            // SAFETY: an all-zero `sched_attr` is a valid value of the plain C struct.
            let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
            attr.size = std::mem::size_of::<libc::sched_attr>() as u32;
            attr.sched_policy = libc::SCHED_OTHER as u32;
            attr.sched_flags = if reset_on_fork {
                libc::SCHED_FLAG_RESET_ON_FORK as u64
            } else {
                0
            };
            attr.sched_nice = nice;
            attr.sched_runtime = slice_ns;
            // SAFETY: `attr` is a valid `sched_attr` of the size it states, alive for the
            // call; pid 0 is the calling thread.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_sched_setattr,
                    0 as libc::c_long,
                    &attr as *const libc::sched_attr,
                    0 as libc::c_long,
                )
            };
            if r == 0 {
                return;
            }
            refused(what, std::io::Error::last_os_error());
        }
        // Another policy, or a kernel or sandbox without sched_setattr: the nice value alone.
        // SAFETY: plain integers; `gettid` names the calling thread.
        let r =
            unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice) };
        if r != 0 {
            refused(what, std::io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (what, nice, slice_ns);
}

/// Puts the calling thread in the control class: a short slice, its nice value kept. Threads
/// it starts inherit both.
pub fn enter_control_path() {
    set_thread("control", thread_nice(), CONTROL_SLICE_NS);
}

/// Puts the calling thread back on the kernel's default slice, its nice value kept: for
/// threads that stand for other programs (a benchmark's clients).
pub fn leave_control_path() {
    set_thread("default", thread_nice(), 0);
}

/// Moves the calling thread [`FRAME_PATH_NICE`] levels below the nice value it has now (at
/// most to 19), on [`FRAME_PATH_SLICE_NS`]. Call it only from threads that serve the frame path
/// for good: the thread cannot come back. Returns the thread's nice value after the call.
pub fn enter_frame_path() -> i32 {
    set_thread(
        "frame path",
        (thread_nice() + FRAME_PATH_NICE).min(19),
        FRAME_PATH_SLICE_NS,
    );
    thread_nice()
}

/// Runs `f` on a thread of its own (named `name`) in the frame path and waits for it without
/// holding a runtime worker: for the frame path's one-off blocking work (mapping in a ring,
/// finishing files with their fsync), which on the blocking pool would run in the control
/// class and take cores from control calls. The control call that waits for it (starting or
/// ending an acquisition) waits longer under load: the price of not letting hundreds of MiB of
/// zeroing or an fsync's writeback hold up every other call. Fails if the thread cannot start
/// or `f` panics.
pub async fn on_frame_path<T: Send + 'static>(
    name: String,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            enter_frame_path();
            let _ = tx.send(f());
        })?;
    rx.await
        .map_err(|_| std::io::Error::other(format!("the {name} thread panicked")))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Whether this kernel has per-thread slices: it then reports a default thread's slice.
    fn has_slices() -> bool {
        std::thread::spawn(|| {
            leave_control_path();
            thread_slice_ns()
        })
        .join()
        .unwrap()
        .is_some_and(|s| s > 0)
    }

    #[test]
    fn a_frame_path_thread_runs_below_the_thread_that_started_it_on_a_long_slice() {
        let here = thread_nice();
        let (nice, slice) = std::thread::spawn(|| (enter_frame_path(), thread_slice_ns()))
            .join()
            .unwrap();
        assert_eq!(nice, (here + FRAME_PATH_NICE).min(19));
        assert_eq!(thread_nice(), here, "only the calling thread moves");
        if has_slices() {
            assert_eq!(slice, Some(FRAME_PATH_SLICE_NS));
        }
    }

    #[test]
    fn a_control_thread_keeps_its_nice_value_on_a_short_slice() {
        let here = thread_nice();
        let (nice, slice) = std::thread::spawn(|| {
            enter_control_path();
            (thread_nice(), thread_slice_ns())
        })
        .join()
        .unwrap();
        assert_eq!(nice, here);
        if has_slices() {
            assert_eq!(slice, Some(CONTROL_SLICE_NS));
        } else {
            eprintln!("this kernel has no per-thread slices (before Linux 6.12): not checked");
        }
    }
}
