//! `microscoped live`: a camera's live view in the terminal. On a terminal, a small
//! auto-contrast preview in Unicode half blocks (two pixels a cell), redrawn in place under a
//! line with the frame rate; otherwise (a pipe, a log) one line a second with the frame rate,
//! so scripts and tests read it. Ends after `--frames N`, on Ctrl-C, or when the daemon ends
//! the stream.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use microscoped::acquire::LiveMode;
use microscoped::client::{auto_contrast, pixels_u16, Error, Image, LiveStatus, Session};

/// How often the terminal preview is redrawn at most: faster is lost on a terminal.
const REDRAW_EVERY: Duration = Duration::from_millis(66);

/// What to show and for how long.
pub struct Options {
    /// The camera; empty when the instrument has one.
    pub camera: String,
    /// Stop after this many frames.
    pub frames: Option<u64>,
    /// At most this many frames a second from the daemon (0: as fast as they come).
    pub max_fps: f64,
    /// Preview width in terminal columns.
    pub width: u32,
}

/// Follows a camera's live view until `--frames`, Ctrl-C or the end of the stream.
pub async fn live(s: &mut Session, opts: Options) -> Result<(), Error> {
    let tty = std::io::stdout().is_terminal();
    let mut stream = s.live_view(&opts.camera, opts.max_fps).await?;
    let mut status = s.clone();
    let started = Instant::now();
    let (mut total, mut window) = (0u64, 0u64);
    let mut window_start = Instant::now();
    let mut last: Option<Image> = None;
    let mut last_draw: Option<Instant> = None;
    let mut every_second = tokio::time::interval(Duration::from_secs(1));
    every_second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every_second.tick().await;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut out = std::io::stdout().lock();
    if tty {
        // Hide the cursor and start from a clear screen; the preview redraws from the top.
        let _ = write!(out, "\x1b[?25l\x1b[2J");
    }
    let mut header = String::from("waiting for the first frame");
    let result = loop {
        if opts.frames.is_some_and(|n| total >= n) {
            break Ok(());
        }
        tokio::select! {
            img = stream.next() => match img {
                Ok(Some(img)) => {
                    total += 1;
                    window += 1;
                    if total == 1 {
                        // Say what runs from the first frame; the rate follows in a second.
                        let state = status.live_status(&opts.camera).await.ok();
                        header = describe(state.as_ref(), Some(&img), None, total);
                    }
                    last = Some(img);
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            },
            _ = every_second.tick() => {
                let secs = window_start.elapsed().as_secs_f64();
                let fps = window as f64 / secs.max(1e-9);
                (window, window_start) = (0, Instant::now());
                let state = status.live_status(&opts.camera).await.ok();
                header = describe(state.as_ref(), last.as_ref(), Some(fps), total);
                if !tty {
                    let _ = writeln!(out, "{header}");
                    let _ = out.flush();
                }
            }
            _ = &mut ctrl_c => break Ok(()),
        }
        if tty && last_draw.is_none_or(|t| t.elapsed() >= REDRAW_EVERY) {
            if let Some(img) = &last {
                let preview = render(img, opts.width).map_err(Error::Other)?;
                let _ = write!(out, "\x1b[H{header}\x1b[K\n{preview}");
                let _ = out.flush();
                last_draw = Some(Instant::now());
            }
        }
    };
    if tty {
        let _ = write!(out, "\x1b[0m\x1b[?25h");
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = writeln!(
        out,
        "{total} frames in {secs:.1} s ({:.1} fps)",
        total as f64 / secs.max(1e-9)
    );
    result
}

/// The line above the preview (or the line a second): what runs, the frame rate, the frame.
fn describe(
    state: Option<&LiveStatus>,
    img: Option<&Image>,
    fps: Option<f64>,
    total: u64,
) -> String {
    let source = match state {
        Some(s) => match (s.mode, s.acquisition, &s.error) {
            (Some(LiveMode::Live), ..) => format!("{}: live mode", s.camera),
            (Some(LiveMode::Acquisition), Some(id), _) => {
                format!("{}: acquisition {id}", s.camera)
            }
            (Some(LiveMode::Starting), ..) => format!("{}: live mode starting", s.camera),
            (_, _, Some(e)) => format!("{}: live mode failed: {e}", s.camera),
            _ => format!(
                "{}: nothing runs; live mode starts for a viewer who may control the \
                 instrument (take the lease), others wait for it or an acquisition",
                s.camera
            ),
        },
        None => "live view".to_owned(),
    };
    let frame = img.map_or(String::new(), |i| {
        format!(
            ", {} x {}, exposure {} ms",
            i.width, i.height, i.exposure_ms
        )
    });
    let rate = fps.map_or("measuring the frame rate".to_owned(), |f| {
        format!("{f:.1} fps")
    });
    format!("{source}, {rate}, {total} frames{frame}")
}

/// An auto-contrast preview `cols` columns wide in half blocks: each cell shows two pixels
/// (the upper as the glyph's colour, the lower as its background), each the mean of the
/// image's pixels it covers. The contrast is stretched on the small image, so a few bright
/// beads in a block still stand out from the blocks without.
fn render(img: &Image, cols: u32) -> anyhow::Result<String> {
    let px = pixels_u16(img)?;
    let (w, h) = (img.width as usize, img.height as usize);
    if w == 0 || h == 0 {
        return Ok(String::new());
    }
    let cols = (cols as usize).clamp(1, w);
    // Terminal cells are about twice as tall as wide: two pixel rows per cell keeps the aspect.
    let rows = (h * cols / w).max(2).div_ceil(2) * 2;
    let mut small = Vec::with_capacity(cols * rows);
    for r in 0..rows {
        let (y0, y1) = (
            r * h / rows,
            ((r + 1) * h / rows).max(r * h / rows + 1).min(h),
        );
        for c in 0..cols {
            let (x0, x1) = (
                c * w / cols,
                ((c + 1) * w / cols).max(c * w / cols + 1).min(w),
            );
            let (mut sum, mut n) = (0u64, 0u64);
            for y in y0..y1 {
                for &v in &px[y * w + x0..y * w + x1] {
                    sum += u64::from(v);
                    n += 1;
                }
            }
            small.push((sum / n.max(1)) as u16);
        }
    }
    let gray = auto_contrast(&small);
    let mut s = String::new();
    for r in (0..rows).step_by(2) {
        for c in 0..cols {
            let (top, bottom) = (gray[r * cols + c], gray[(r + 1) * cols + c]);
            let _ = write!(
                s,
                "\x1b[38;2;{top};{top};{top}m\x1b[48;2;{bottom};{bottom};{bottom}m\u{2580}"
            );
        }
        s.push_str("\x1b[0m\x1b[K\n");
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use microscoped_driver_api::PixelType;

    #[test]
    fn a_preview_is_half_blocks_of_the_mean_of_what_each_covers() {
        // 4 x 4, 8-bit: top half dark, bottom half bright, so each cell is dark over bright.
        let data = [[0u8; 4], [0; 4], [200; 4], [200; 4]].concat();
        let img = Image {
            camera: "Camera".into(),
            width: 4,
            height: 4,
            pixel_type: Some(PixelType::U8),
            bit_depth: 8,
            data,
            exposure_ms: 1.0,
        };
        let out = render(&img, 2).unwrap();
        let lines: Vec<_> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{out:?}");
        assert_eq!(lines[0].matches('\u{2580}').count(), 2);
        assert!(lines[0].starts_with("\x1b[38;2;0;0;0m\x1b[48;2;255;255;255m"));
    }
}
