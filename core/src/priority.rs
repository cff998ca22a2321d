//! The frame path's threads yield to the control path's.
//!
//! On a busy machine (two cores copying frames, writing them and serving viewers) a control
//! call waits for a core at each of its hops: the client's thread, a server worker, the
//! device's thread and back. The frame path has a ring to absorb such waits; a person at a
//! console or a script's unary call has none. So the daemon sorts its threads in two classes:
//!
//! - **Control** (the async runtime's threads, the device threads of everything but cameras):
//!   a short scheduler slice ([`CONTROL_SLICE_NS`], EEVDF's per-thread slice since Linux
//!   6.12): a control thread that wakes takes a core from a thread on a longer slice at once
//!   instead of when that thread's slice ends. Older kernels ignore the request.
//! - **Frame path** (a camera's device thread, which runs its acquisitions' camera loop, and
//!   the writer threads): [`FRAME_PATH_NICE`] nice levels below the control threads, on a
//!   slice longer than the default ([`FRAME_PATH_SLICE_NS`]). When both want a core, the
//!   control call (or any other program's thread) gets it first; when nothing else runs the
//!   frame path has every core to itself (nice only weighs threads that compete).
//!
//! A thread can lower its priority but never raise it back without `CAP_SYS_NICE`, so only
//! threads that serve the frame path for good enter it (not the tokio blocking pool). The
//! systemd unit starts the daemon at `Nice=-10`, which puts the frame path at nice 0, level
//! with the rest of the system, and the control path ahead of it. Started by hand (nice 0),
//! the frame path runs at 10 and yields to other processes too.

/// Nice levels between the daemon's control threads and its frame path.
pub const FRAME_PATH_NICE: i32 = 10;

/// The scheduler slice a control thread asks for, in nanoseconds (the kernel's least).
pub const CONTROL_SLICE_NS: u64 = 100_000;

/// The scheduler slice a frame path thread asks for, in nanoseconds: twice the kernel's default
/// on a small machine (0.75 ms times 1 + log2 of the cores), so that any thread on the default
/// slice (another program, a client on this machine) that wakes takes the core from it at once
/// (EEVDF lets a waking thread with a shorter slice cut a longer one short), while a camera
/// thread waits at most this long for a writer: about two frames at 1 GB/s, well inside a
/// camera's buffer.
pub const FRAME_PATH_SLICE_NS: u64 = 3_000_000;

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

/// Sets the calling thread's nice value and scheduler slice (0: the kernel's default) in one
/// `sched_setattr`; false if the system refused.
fn set_thread(nice: i32, slice_ns: u64) -> bool {
    #[cfg(target_os = "linux")]
    {
        /// `struct sched_attr` (sched_setattr(2)), its first version.
        #[repr(C)]
        struct SchedAttr {
            size: u32,
            policy: u32,
            flags: u64,
            nice: i32,
            priority: u32,
            runtime: u64,
            deadline: u64,
            period: u64,
        }
        let attr = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy: libc::SCHED_OTHER as u32,
            flags: 0,
            nice,
            priority: 0,
            runtime: slice_ns,
            deadline: 0,
            period: 0,
        };
        // SAFETY: `attr` is a valid `sched_attr` of the size it states, alive for the call;
        // pid 0 is the calling thread.
        unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (nice, slice_ns);
        false
    }
}

/// Puts the calling thread in the control class: a short slice, its nice value kept. Threads
/// it starts inherit both. Returns whether the system took it.
pub fn enter_control_path() -> bool {
    set_thread(thread_nice(), CONTROL_SLICE_NS)
}

/// Puts the calling thread back on the kernel's default slice, its nice value kept: for
/// threads that stand for other programs (a benchmark's clients).
pub fn leave_control_path() -> bool {
    set_thread(thread_nice(), 0)
}

/// Moves the calling thread [`FRAME_PATH_NICE`] levels below the nice value it has now (at
/// most to 19), on [`FRAME_PATH_SLICE_NS`]. Call it only from threads that serve the frame path
/// for good: the thread cannot come back. Returns the thread's nice value after the call.
pub fn enter_frame_path() -> i32 {
    let target = (thread_nice() + FRAME_PATH_NICE).min(19);
    if !set_thread(target, FRAME_PATH_SLICE_NS) {
        // A kernel that refuses the slice still takes the nice value.
        set_thread(target, 0);
    }
    thread_nice()
}

/// Runs `f` on a thread of its own (named `name`) in the frame path and waits for it without
/// holding a runtime worker: for the frame path's one-off blocking work (mapping in a ring,
/// finishing files with their fsync), which on the blocking pool would run in the control
/// class and take cores from control calls. Fails if the thread cannot start or `f` panics.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_path_thread_runs_below_the_thread_that_started_it() {
        let here = thread_nice();
        let there = std::thread::spawn(enter_frame_path).join().unwrap();
        assert_eq!(there, (here + FRAME_PATH_NICE).min(19));
        assert_eq!(thread_nice(), here, "only the calling thread moves");
    }

    #[test]
    fn a_control_thread_keeps_its_nice_value() {
        let here = thread_nice();
        let (took, nice) = std::thread::spawn(|| (enter_control_path(), thread_nice()))
            .join()
            .unwrap();
        assert!(took, "sched_setattr refused a SCHED_OTHER slice");
        assert_eq!(nice, here);
    }
}
