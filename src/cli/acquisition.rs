//! `acquire`: a sequence, or a useq plan (checked with `--dry-run`, or run), followed with a
//! progress bar until it ends; Ctrl-C stops it and keeps what was taken. And the acquisitions
//! anyone started (a script, say): `acquisitions`, `watch`, `pause`, `resume`, `stop`, and
//! `read` to save one plane of a dataset.

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use microscoped::acquire::RunState;
use microscoped::client::{
    self, AcquisitionStatus, Error, Plan, PlanProgress, PlaneAddress, Sequence, Session,
};

/// `acquire --frames N` / `--until-stopped`.
pub async fn sequence(s: &mut Session, sequence: Sequence) -> Result<(), Error> {
    let started = s.start_sequence(sequence).await?;
    let bar = progress_bar(&started, "Ctrl-C stops");
    eprintln!("acquisition {} started: {}", started.id, started.path);
    let last = follow(s, started.id, &bar, true)
        .await
        .map_err(|e| went_away(e, &started))?;
    println!("{}", last.path);
    report_end(&last)
}

/// The progress bar for an acquisition: frames for a sequence (a spinner when it runs until
/// stopped), images for a plan; `hint` says what Ctrl-C does.
fn progress_bar(st: &AcquisitionStatus, hint: &str) -> ProgressBar {
    let (bar, template) = match (&st.plan, st.frames_planned) {
        (Some(p), _) => (
            ProgressBar::new(p.events_total),
            format!(
                "{{bar:40}} {{pos}}/{{len}} images {{msg}} ({{elapsed}}, {{eta}} left) - {hint}"
            ),
        ),
        (None, 0) => (
            ProgressBar::new_spinner(),
            format!("{{spinner}} {{pos}} frames written {{msg}} ({{elapsed}}) - {hint}"),
        ),
        (None, n) => (
            ProgressBar::new(n),
            format!(
                "{{bar:40}} {{pos}}/{{len}} frames {{msg}} ({{elapsed}}, {{eta}} left) - {hint}"
            ),
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

/// Where a plan stands on the axes it uses, each as the event's place of the axis' size
/// (from 1): `t 2/3 c 1/2 z 5/5`. Axes the plan does not iterate are left out, and so is all
/// of it when the daemon does not know where the plan stands.
pub(super) fn where_in_plan(p: &PlanProgress) -> String {
    let (Some(summary), Some(i)) = (&p.summary, p.current) else {
        return String::new();
    };
    let n = summary.sizes;
    summary
        .used_axes
        .chars()
        .filter_map(|axis| {
            let (at, size) = (i.along(axis)?, n.along(axis)?);
            (size > 0).then(|| format!("{axis} {}/{size}", at + 1))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the bar says beside its count: for a plan where it stands, its channel, whether it is
/// paused and how many time points started late; for a sequence the frames dropped.
fn progress_message(st: &AcquisitionStatus) -> String {
    let mut msg = Vec::new();
    if let Some(p) = &st.plan {
        msg.push(where_in_plan(p));
        if !p.channel.is_empty() {
            msg.push(p.channel.clone());
        }
    }
    if st.state == Some(RunState::Paused) {
        msg.push("(paused)".into());
    }
    if let Some(p) = st.plan.as_ref().filter(|p| p.late_events > 0) {
        msg.push(format!("({} late)", p.late_events));
    }
    if st.dropped > 0 {
        msg.push(format!("({} dropped)", st.dropped));
    }
    msg.retain(|m| !m.is_empty());
    msg.join(" ")
}

/// Shows a status on the bar.
fn show(bar: &ProgressBar, st: &AcquisitionStatus) {
    bar.set_position(st.plan.as_ref().map_or(st.written, |p| p.events_done));
    bar.set_message(progress_message(st));
}

/// Follows an acquisition to its end, showing it on the bar; Ctrl-C stops (cancels) it.
/// Returns its final status.
/// With `ctrl_c_stops` false, Ctrl-C is left to end the process (watching, not running).
async fn follow(
    s: &mut Session,
    id: u64,
    bar: &ProgressBar,
    ctrl_c_stops: bool,
) -> Result<AcquisitionStatus, Error> {
    let mut updates = s.watch_acquisition(id).await?;
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    let mut stop_sent = !ctrl_c_stops;
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
                if bar.is_hidden() {
                    // No terminal to draw on (a log, a pipe): one line per update.
                    eprintln!("{}", status_line(&st));
                }
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
        "{}: received {} written {} dropped {} ({} in {:.2} s)",
        state_name(last.state),
        last.received,
        last.written,
        last.dropped,
        microscoped::acquire::mib(last.bytes),
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
        let n = p.sizes;
        // Only the axes the plan iterates: a size of 0 on an unused axis says nothing.
        let sizes: Vec<String> = p
            .used_axes
            .chars()
            .filter_map(|axis| {
                let size = n.along(axis)?;
                (size > 0).then(|| format!("{axis} {size}"))
            })
            .collect();
        println!("{}: valid", path.display());
        println!(
            "{} images in {} file(s), at most {} open at once; axes {} ({})",
            p.events,
            p.files,
            p.open_files,
            p.used_axes,
            sizes.join(" ")
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
    let bar = progress_bar(&started, "Ctrl-C cancels");
    eprintln!("plan {} started: {}", started.id, started.path);
    let last = follow(s, started.id, &bar, true)
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

/// One line for an acquisition: id, state, owner/name, progress, and where it stands.
fn status_line(st: &AcquisitionStatus) -> String {
    let count = match (&st.plan, st.frames_planned) {
        (Some(p), _) => format!("{}/{} images", p.events_done, p.events_total),
        (None, 0) => format!("{} frames", st.written),
        (None, n) => format!("{}/{n} frames", st.written),
    };
    let mut line = format!(
        "{:>4}  {:8}  {}/{}  {count}",
        st.id,
        state_name(st.state),
        st.owner,
        st.name
    );
    let msg = progress_message(st);
    if !msg.is_empty() {
        line.push_str("  ");
        line.push_str(&msg);
    }
    line
}

/// The id of the acquisition `which` names: an id as it is, else the most recent one you may
/// read whose dataset is called `which` (NAME, or OWNER/NAME).
pub async fn resolve(s: &mut Session, which: &str) -> Result<u64, Error> {
    if let Ok(id) = which.parse() {
        return Ok(id);
    }
    let (owner, name) = match which.split_once('/') {
        Some((owner, name)) => (Some(owner), name),
        None => (None, which),
    };
    let all = s.acquisitions().await?;
    let found: Vec<_> = all
        .iter()
        .filter(|st| st.name == name && owner.is_none_or(|o| st.owner == o))
        .collect();
    match found.as_slice() {
        [] => Err(Error::Other(anyhow::anyhow!(
            "no acquisition you may read has a dataset called {which:?}; `microscoped acquisitions` lists them"
        ))),
        [one] => Ok(one.id),
        [.., last] if owner.is_some() => Ok(last.id),
        many => Err(Error::Other(anyhow::anyhow!(
            "{} datasets are called {name:?} ({}): name one as OWNER/NAME",
            many.len(),
            many.iter()
                .map(|st| format!("{}/{}", st.owner, st.name))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// `acquisitions`: every acquisition you may read, oldest first, with the datasets the
/// daemon found in its data root when it started.
pub async fn list(s: &mut Session) -> Result<(), Error> {
    let all = s.acquisitions().await?;
    if all.is_empty() {
        println!("no acquisitions you may read");
    }
    for st in &all {
        println!("{}  {}", status_line(st), st.path);
        if !st.error.is_empty() {
            println!("        {}", st.error);
        }
    }
    Ok(())
}

/// `watch ID`: follows an acquisition (started by anyone, a script say) to its end with a
/// progress bar; Ctrl-C stops watching, not the acquisition.
pub async fn watch(s: &mut Session, id: u64) -> Result<(), Error> {
    let now = s.acquisition(id).await?;
    let bar = progress_bar(&now, "Ctrl-C stops watching");
    eprintln!(
        "watching acquisition {} ({}/{})",
        now.id, now.owner, now.name
    );
    let last = follow(s, now.id, &bar, false)
        .await
        .map_err(|e| went_away(e, &now))?;
    println!("{}", last.path);
    report_end(&last)
}

/// `pause ID` / `resume ID`: a plan between two events.
pub async fn set_paused(s: &mut Session, id: u64, paused: bool) -> Result<(), Error> {
    let st = s.set_paused(id, paused).await?;
    println!("{}", status_line(&st));
    Ok(())
}

/// `stop ID`: stops an acquisition and waits until its files are finished.
pub async fn stop(s: &mut Session, id: u64) -> Result<(), Error> {
    s.stop_acquisition(id).await?;
    let st = s.acquisition(id).await?;
    println!("{}", status_line(&st));
    println!("{}", st.path);
    Ok(())
}

/// `read ID -o FILE`: one plane of a dataset, saved as `snap` saves an image.
pub async fn read(
    s: &mut Session,
    id: u64,
    position: u32,
    address: PlaneAddress,
    output: &Path,
) -> Result<(), Error> {
    let img = s.read_plane(id, position, address).await?;
    client::save_image(&img, output)?;
    println!(
        "{}: {}x{} {}-bit, {address} of position {position} of acquisition {id}",
        output.display(),
        img.width,
        img.height,
        img.bit_depth
    );
    Ok(())
}
