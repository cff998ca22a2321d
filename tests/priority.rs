//! The frame path yields to the control path: a camera's thread and the writer threads run
//! below the daemon's other threads (`core/src/priority.rs`). A test binary of its own: the
//! threads are told apart by name, and no other test's daemon may run in the process.
#![cfg(target_os = "linux")]

mod common;

use common::{acq, ended, poll_until, ramp_instrument, Daemon};
use microscoped::pb;

/// Name and nice value of each thread of this process (the daemon runs in the test's).
fn thread_nices() -> Vec<(String, i32)> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| {
            let t = t.ok()?.path();
            let comm = std::fs::read_to_string(t.join("comm")).ok()?;
            let stat = std::fs::read_to_string(t.join("stat")).ok()?;
            // The fields after the parenthesised name start at field 3; nice is field 19.
            let rest = stat.get(stat.rfind(')')? + 2..)?;
            let nice = rest.split(' ').nth(16)?.parse().ok()?;
            Some((comm.trim().to_owned(), nice))
        })
        .collect()
}

#[tokio::test]
async fn the_frame_path_runs_below_the_control_path() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&ramp_instrument(root.path(), "")).await;
    let mut a = acq(&d);
    let s = a
        .start_sequence(pb::StartSequenceRequest {
            until_stopped: true,
            camera: String::new(),
            frames: 0,
            name: "nice".into(),
        })
        .await
        .unwrap()
        .into_inner();
    poll_until(&mut a, s.id, "writing", |s| s.written >= 2).await;
    let threads = thread_nices();
    let nice_of = |name: &str| -> Vec<i32> {
        threads
            .iter()
            .filter(|(comm, _)| comm == name)
            .map(|(_, n)| *n)
            .collect()
    };
    // A stage's thread serves control calls only: the daemon's own priority.
    let control = nice_of("dev-Z");
    assert_eq!(control.len(), 1, "{threads:?}");
    // Nice values end at 19: a test run at 10 or more could not tell the two apart.
    assert!(
        control[0] < 10,
        "run the tests at a nice value under 10 (this thread is at {})",
        control[0]
    );
    let frame_path = control[0] + 10;
    assert_eq!(nice_of("dev-XY"), control, "{threads:?}");
    assert_eq!(nice_of("dev-Camera"), [frame_path], "{threads:?}");
    assert_eq!(
        nice_of(&format!("writer-{}", s.id)),
        [frame_path],
        "{threads:?}"
    );
    a.stop_acquisition(pb::AcquisitionRef { id: s.id })
        .await
        .unwrap();
    poll_until(&mut a, s.id, "ended", ended).await;
    d.shutdown().await.unwrap();
}
