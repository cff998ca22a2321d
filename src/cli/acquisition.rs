//! `acquire`: a sequence, or a useq plan (checked with `--dry-run`, or run), followed with a
//! progress bar until it ends; Ctrl-C stops it and keeps what was taken.

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use microscoped::acquire::RunState;
use microscoped::client::{AcquisitionStatus, Error, Plan, Sequence, Session};

/// `acquire --frames N` / `--until-stopped`.
pub async fn sequence(s: &mut Session, sequence: Sequence) -> Result<(), Error> {
    let (frames, until_stopped) = (sequence.frames, sequence.until_stopped);
    let started = s.start_sequence(sequence).await?;
    let bar = if until_stopped {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::new(frames)
    };
    let template = if until_stopped {
        "{spinner} {pos} frames written {msg} ({elapsed}) - Ctrl-C stops"
    } else {
        "{bar:40} {pos}/{len} frames {msg} ({elapsed}, {eta} left) - Ctrl-C stops"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    eprintln!("acquisition {} started: {}", started.id, started.path);
    let last = follow(s, started.id, &bar, |bar, st| {
        bar.set_position(st.written);
        if st.dropped > 0 {
            bar.set_message(format!("({} dropped)", st.dropped));
        }
    })
    .await
    .map_err(|e| went_away(e, &started))?;
    println!("{}", last.path);
    report_end(&last)
}

/// Follows an acquisition to its end with `show` updating the bar; Ctrl-C stops (cancels) it.
/// Returns its final status.
async fn follow(
    s: &mut Session,
    id: u64,
    bar: &ProgressBar,
    show: impl Fn(&ProgressBar, &AcquisitionStatus),
) -> Result<AcquisitionStatus, Error> {
    let mut updates = s.watch_acquisition(id).await?;
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    let mut stop_sent = false;
    let last = loop {
        tokio::select! {
            _ = &mut ctrl_c, if !stop_sent => {
                stop_sent = true;
                bar.set_message("stopping...");
                let mut s = s.clone();
                tokio::spawn(async move { let _ = s.stop_acquisition(id).await; });
            }
            st = updates.next() => {
                let Some(st) = st? else {
                    // The daemon went away; ask for the final word if it is still there.
                    break s.acquisition(id).await?;
                };
                show(bar, &st);
                if st.ended() {
                    break st;
                }
            }
        }
    };
    bar.finish_and_clear();
    Ok(last)
}

/// The error for a daemon that went away while we followed `started`: what it wrote stays on
/// disk, and `recover` (which takes the file, or a plan's folder) makes it a complete OME-TIFF.
fn went_away(e: Error, started: &AcquisitionStatus) -> Error {
    let Error::Connect(why) = e else { return e };
    let path = shell_word(&started.path);
    Error::Connect(format!(
        "{why}\nacquisition {} was running: what it wrote is in {path}. If the daemon was \
         killed, `microscoped recover {path}` makes a complete OME-TIFF of it; a daemon that is \
         still running (the network failed) or stopped in order finishes it itself.",
        started.id
    ))
}

/// `text` as one word for a shell: as it is when it is plain, else in single quotes.
fn shell_word(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,@%".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// A state as the API names it, as `acquire` has always printed it.
pub(super) fn state_name(state: Option<RunState>) -> &'static str {
    match state {
        Some(RunState::Running) => "running",
        Some(RunState::Finished) => "finished",
        Some(RunState::Stopped) => "stopped",
        Some(RunState::Failed) => "failed",
        Some(RunState::Paused) => "paused",
        None => "unspecified",
    }
}

/// Prints how an acquisition ended; an error if it failed.
fn report_end(last: &AcquisitionStatus) -> Result<(), Error> {
    println!(
        "{}: received {} written {} dropped {} ({:.1} MB in {:.2} s)",
        state_name(last.state),
        last.received,
        last.written,
        last.dropped,
        last.bytes as f64 / 1e6,
        last.elapsed_s
    );
    if last.state == Some(RunState::Failed) {
        return Err(Error::Other(anyhow::anyhow!(
            "acquisition failed: {}",
            last.error
        )));
    }
    Ok(())
}

/// `acquire PLAN`: checks (`--dry-run`) or runs a useq plan with a progress bar.
pub async fn plan(
    s: &mut Session,
    path: &Path,
    dry_run: bool,
    name: String,
    camera: String,
) -> Result<(), Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the plan {}: {e}", path.display()))?;
    let plan = Plan {
        text,
        json: path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json")),
        name,
        camera,
    };
    if dry_run {
        let p = s.validate_plan(&plan).await?;
        let sizes = p.sizes;
        println!("{}: valid", path.display());
        println!(
            "{} images in {} file(s); axes {} (t {} p {} g {} c {} z {})",
            p.events, p.files, p.used_axes, sizes.t, sizes.p, sizes.g, sizes.c, sizes.z
        );
        println!("at least {:.1} s", p.duration_s);
        println!(
            "{} to write, {} free",
            microscoped::acquire::mib(p.bytes),
            microscoped::acquire::mib(p.free_bytes)
        );
        if p.interval_exceeded {
            println!("warning: a time point's exposures take longer than the interval");
        }
        for w in &p.warnings {
            println!("warning: {w}");
        }
        return Ok(());
    }
    let started = s.start_plan(&plan).await?;
    let total = started.plan.as_ref().map_or(0, |p| p.events_total);
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {pos}/{len} images {msg} ({elapsed}, {eta} left) - Ctrl-C cancels",
    ) {
        bar.set_style(style);
    }
    eprintln!("plan {} started: {}", started.id, started.path);
    let last = follow(s, started.id, &bar, |bar, st| {
        let Some(p) = &st.plan else { return };
        bar.set_position(p.events_done);
        let i = p.current;
        let mut msg = format!("t{} p{} c{} z{}", i.t, i.p, i.c, i.z);
        if !p.channel.is_empty() {
            msg.push_str(&format!(" {}", p.channel));
        }
        if st.state == Some(RunState::Paused) {
            msg.push_str(" (paused)");
        }
        if p.late_events > 0 {
            msg.push_str(&format!(" ({} late)", p.late_events));
        }
        bar.set_message(msg);
    })
    .await
    .map_err(|e| went_away(e, &started))?;
    println!("{}", last.path);
    if let Some(p) = &last.plan {
        for f in &p.files {
            println!("  {f}");
        }
        if p.late_events > 0 {
            println!(
                "{} time point(s) started late, at most {:.2} s",
                p.late_events, p.max_late_s
            );
        }
    }
    report_end(&last)
}
