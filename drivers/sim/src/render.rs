//! Image synthesis for the simulated camera. Everything here writes into buffers the camera owns,
//! so a frame costs no allocation.

use microscoped_driver_api::{PixelType, Roi};

use crate::beads::BeadField;
use crate::rng::Rng;
use crate::world::Scene;

/// Integrated counts per milliwatt of matched excitation per millisecond of exposure, for a bead
/// of brightness 1. An in-focus bead centred on a 0.65 um pixel gets about half of its light in
/// one pixel, so a 10 mW matched laser at 10 ms gives a peak near 2000 counts above offset.
pub(crate) const COUNTS_PER_MW_MS: f64 = 40.0;

/// Spot sigma at focus, um: about a diffraction-limited spot of a high-NA objective.
pub(crate) const SIGMA_FOCUS_UM: f64 = 0.3;

/// Growth of the spot sigma per micrometre of defocus.
pub(crate) const SIGMA_PER_DEFOCUS: f64 = 0.5;

/// Spots are drawn out to this many sigma, which holds all but 0.01 % of their light.
const MAX_SIGMAS: f64 = 4.0;

/// Spots wider than this sigma, in frame pixels, are drawn on a coarser grid and spread back
/// onto the frame: far out of focus a bead covers a large part of the frame, and drawing each
/// pixel of each bead would cost the frame rate.
const COARSE_ABOVE_PX: f64 = 4.0;

/// The coarse grid's cells are sized so a wide spot's sigma spans about this many of them.
const COARSE_SIGMA_CELLS: f64 = 2.0;

/// Period of the gradient test pattern along the diagonal, in sensor pixels.
const GRADIENT_PERIOD_PX: f64 = 256.0;

/// Seconds the gradient takes to move by one period.
const GRADIENT_PERIOD_S: f64 = 4.0;

/// Where the camera looks: sensor size, ROI, binning and pixel size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View {
    /// Sensor width and height, unbinned pixels.
    pub(crate) sensor: (u32, u32),
    /// Region of interest, unbinned pixels.
    pub(crate) roi: Roi,
    /// Binning factor, same in x and y.
    pub(crate) binning: u32,
    /// Sample-plane size of one unbinned pixel, um.
    pub(crate) pixel_size_um: f64,
}

impl View {
    /// Width and height of the binned frame.
    pub(crate) fn frame_size(&self) -> (usize, usize) {
        (
            (self.roi.width / self.binning) as usize,
            (self.roi.height / self.binning) as usize,
        )
    }
}

/// Scratch for drawing spots, kept by the camera between frames: one spot's separable
/// weights, and the coarse grid wide spots are drawn on.
#[derive(Debug, Default)]
pub(crate) struct SpotScratch {
    cols: Vec<f64>,
    rows: Vec<f64>,
    coarse: Vec<f32>,
}

impl SpotScratch {
    /// Makes room for spots as wide as a `width` x `height` frame and for the coarse grid
    /// (cells of at least 2 x 2 pixels), so drawing never allocates.
    pub(crate) fn reserve(&mut self, width: usize, height: usize) {
        self.cols.reserve(width.saturating_sub(self.cols.len()));
        self.rows.reserve(height.saturating_sub(self.rows.len()));
        let cells = width.div_ceil(2) * height.div_ceil(2);
        self.coarse.reserve(cells.saturating_sub(self.coarse.len()));
    }
}

/// Adds the bead image to `signal` (binned frame, row-major, counts above offset).
///
/// Defocus spreads a bead's light over a wider spot; it does not lose it: every bead whose
/// spot reaches the frame is drawn to [`MAX_SIGMAS`], so the light on the frame stays what it
/// was in focus (less what falls off its edges) while the peak drops. Spots wider than
/// [`COARSE_ABOVE_PX`] are drawn on a grid of `k` x `k` pixel cells and spread back onto the
/// pixels by bilinear interpolation, which keeps their light and their smooth shape.
pub(crate) fn add_beads(
    signal: &mut [f32],
    view: &View,
    scene: &Scene,
    field: &BeadField,
    exposure_ms: f64,
    scratch: &mut SpotScratch,
) {
    if scene.dye_gain.iter().all(|g| *g <= 0.0) {
        return;
    }
    let (w, h) = view.frame_size();
    if w == 0 || h == 0 {
        return;
    }
    let ps = view.pixel_size_um;
    let bin_um = ps * f64::from(view.binning);
    // Sample-plane edges of the binned frame: sensor pixel column j is centred on
    // stage x + (j - width/2) * pixel size, and likewise for rows and y.
    let left =
        scene.stage_xy[0] + (f64::from(view.roi.x) - f64::from(view.sensor.0) / 2.0 - 0.5) * ps;
    let top =
        scene.stage_xy[1] + (f64::from(view.roi.y) - f64::from(view.sensor.1) / 2.0 - 0.5) * ps;
    let right = left + w as f64 * bin_um;
    let bottom = top + h as f64 * bin_um;

    let sigma_um = SIGMA_FOCUS_UM + SIGMA_PER_DEFOCUS * scene.defocus_um.abs();
    let sigma = sigma_um / bin_um;
    let margin = MAX_SIGMAS * sigma_um;
    // Cells of k x k pixels: 1 for spots narrow enough to draw pixel by pixel.
    let k = if sigma > COARSE_ABOVE_PX {
        ((sigma / COARSE_SIGMA_CELLS).floor() as usize).clamp(2, w.max(h).max(2))
    } else {
        1
    };
    let (gw, gh) = (w.div_ceil(k), h.div_ceil(k));
    let cell_um = bin_um * k as f64;
    let grid: &mut [f32] = if k == 1 {
        &mut *signal
    } else {
        scratch.coarse.clear();
        scratch.coarse.resize(gw * gh, 0.0);
        &mut scratch.coarse
    };
    let sigma_cells = sigma_um / cell_um;
    let inv = 1.0 / (sigma_cells * std::f64::consts::SQRT_2);
    let reach = MAX_SIGMAS * sigma_cells + 1.0;
    let (cols, rows) = (&mut scratch.cols, &mut scratch.rows);

    field.for_each_in(
        left - margin,
        right + margin,
        top - margin,
        bottom + margin,
        |bead| {
            let total = COUNTS_PER_MW_MS * scene.dye_gain[bead.dye] * exposure_ms * bead.brightness;
            if total <= 0.0 {
                return;
            }
            let u0 = (bead.x - left) / cell_um;
            let v0 = (bead.y - top) / cell_um;
            let c0 = (u0 - reach).floor().max(0.0) as usize;
            let c1 = ((u0 + reach).ceil().max(0.0) as usize).min(gw);
            let r0 = (v0 - reach).floor().max(0.0) as usize;
            let r1 = ((v0 + reach).ceil().max(0.0) as usize).min(gh);
            if c0 >= c1 || r0 >= r1 {
                return;
            }
            // Each cell gets the Gaussian integrated over its area, so total light is conserved
            // for spots smaller than a pixel and binning sums light as a real sensor does.
            pixel_integrals(cols, c0, c1, u0, inv, 1.0);
            pixel_integrals(rows, r0, r1, v0, inv, total);
            for (r, wy) in (r0..r1).zip(rows.iter()) {
                let line = &mut grid[r * gw + c0..r * gw + c1];
                for (px, wx) in line.iter_mut().zip(cols.iter()) {
                    *px += (wy * wx) as f32;
                }
            }
        },
    );
    if k > 1 {
        spread(&scratch.coarse, (gw, gh), k, signal, (w, h));
    }
}

/// Adds the `gw` x `gh` grid of `k` x `k` pixel cells onto the `w` x `h` pixels: each pixel
/// gets the bilinear interpolation of the cells' light per pixel at its centre (held flat past
/// the outer cells' centres), so the light is kept and the spot stays smooth.
fn spread(
    grid: &[f32],
    (gw, gh): (usize, usize),
    k: usize,
    signal: &mut [f32],
    (w, h): (usize, usize),
) {
    let scale = 1.0 / (k * k) as f32;
    let kf = k as f32;
    // Where a pixel's centre falls between cell centres: (lower cell, upper cell, weight of
    // the upper one).
    let at = |i: usize, n: usize| -> (usize, usize, f32) {
        let g = ((i as f32 + 0.5) / kf - 0.5).clamp(0.0, (n - 1) as f32);
        let lo = g.floor() as usize;
        let hi = (lo + 1).min(n - 1);
        (lo, hi, g - lo as f32)
    };
    for (r, line) in signal.chunks_exact_mut(w).take(h).enumerate() {
        let (y0, y1, fy) = at(r, gh);
        let (row0, row1) = (&grid[y0 * gw..(y0 + 1) * gw], &grid[y1 * gw..(y1 + 1) * gw]);
        for (c, px) in line.iter_mut().enumerate() {
            let (x0, x1, fx) = at(c, gw);
            let top = row0[x0] + (row0[x1] - row0[x0]) * fx;
            let bottom = row1[x0] + (row1[x1] - row1[x0]) * fx;
            *px += (top + (bottom - top) * fy) * scale;
        }
    }
}

/// Fills `out` with `scale` times the integral of a unit Gaussian centred at `centre` over each
/// pixel `[i, i + 1)` for `i` in `from..to`.
fn pixel_integrals(out: &mut Vec<f64>, from: usize, to: usize, centre: f64, inv: f64, scale: f64) {
    out.clear();
    let mut prev = erf((from as f64 - centre) * inv);
    for i in from..to {
        let next = erf((i as f64 + 1.0 - centre) * inv);
        out.push(0.5 * scale * (next - prev));
        prev = next;
    }
}

/// Fills `signal` with the moving diagonal gradient test pattern, `amplitude` counts peak, at
/// `t_s` seconds on the camera's clock.
pub(crate) fn gradient(signal: &mut [f32], view: &View, t_s: f64, amplitude: f64) {
    let (w, _) = view.frame_size();
    if w == 0 {
        return;
    }
    let b = f64::from(view.binning);
    let shift = (t_s / GRADIENT_PERIOD_S).fract();
    for (r, line) in signal.chunks_exact_mut(w).enumerate() {
        let sy = f64::from(view.roi.y) + (r as f64 + 0.5) * b;
        for (c, px) in line.iter_mut().enumerate() {
            let sx = f64::from(view.roi.x) + (c as f64 + 0.5) * b;
            let phase = ((sx + sy) / GRADIENT_PERIOD_PX - shift).rem_euclid(1.0);
            *px = (amplitude * phase) as f32;
        }
    }
}

/// The `ramp` test pattern: pixel `i` of frame `frame` is `(i + 7919 * frame) mod
/// (max_value + 1)`. The camera draws it once as a base and copies windows of it; this is the
/// definition both rely on.
pub(crate) fn ramp(buf: &mut [u8], pixel_type: PixelType, frame: u64, max_value: u32) {
    let modulus = u64::from(max_value) + 1;
    let mut v = (frame.wrapping_mul(7919) % modulus) as u32;
    match pixel_type {
        PixelType::U8 => {
            for out in buf.iter_mut() {
                *out = v as u8;
                v = if v == max_value { 0 } else { v + 1 };
            }
        }
        PixelType::U16 => {
            for out in buf.chunks_exact_mut(2) {
                out.copy_from_slice(&(v as u16).to_le_bytes());
                v = if v == max_value { 0 } else { v + 1 };
            }
        }
    }
}

/// Camera electronics: baseline, shot noise on the signal (one count per photoelectron), read
/// noise, rounding and clipping to the bit depth, written to `buf` in the frame's pixel type.
pub(crate) fn digitize(
    signal: &[f32],
    buf: &mut [u8],
    pixel_type: PixelType,
    offset: f64,
    read_noise: f64,
    max_value: u32,
    rng: &mut Rng,
) {
    let offset = offset as f32;
    let read_var = (read_noise * read_noise) as f32;
    let read_sigma = read_noise as f32;
    let max = max_value as f32;
    let mut sample = |s: f32| -> f32 {
        let sigma = if s > 0.0 {
            (read_var + s).sqrt()
        } else {
            read_sigma
        };
        (offset + s + sigma * rng.gauss_fast())
            .round()
            .clamp(0.0, max)
    };
    match pixel_type {
        PixelType::U8 => {
            for (out, s) in buf.iter_mut().zip(signal) {
                *out = sample(*s) as u8;
            }
        }
        PixelType::U16 => {
            for (out, s) in buf.chunks_exact_mut(2).zip(signal) {
                out.copy_from_slice(&(sample(*s) as u16).to_le_bytes());
            }
        }
    }
}

/// The error function, Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7): std has none,
/// and this precision is far below one count.
fn erf(x: f64) -> f64 {
    const P: f64 = 0.327_591_1;
    const A: [f64; 5] = [
        0.254_829_592,
        -0.284_496_736,
        1.421_413_741,
        -1.453_152_027,
        1.061_405_429,
    ];
    let s = x.signum();
    let x = x.abs();
    let t = 1.0 / (1.0 + P * x);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    s * (1.0 - poly * (-x * x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_follows_its_formula() {
        let mut buf = vec![0u8; 2 * 10];
        ramp(&mut buf, PixelType::U16, 3, 4095);
        let px: Vec<u16> = buf
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        let first = (3 * 7919 % 4096) as u16;
        assert_eq!(px[0], first);
        assert!(px
            .iter()
            .enumerate()
            .all(|(i, &p)| p == (first + i as u16) % 4096));
        let mut small = vec![0u8; 300];
        ramp(&mut small, PixelType::U8, 0, 255);
        assert_eq!(
            (small[0], small[255], small[256], small[299]),
            (0, 255, 0, 43)
        );
    }

    #[test]
    fn erf_matches_known_values() {
        assert!(erf(0.0).abs() < 1e-7);
        assert!((erf(0.5) - 0.520_499_877_8).abs() < 2e-7);
        assert!((erf(-1.0) + 0.842_700_792_9).abs() < 2e-7);
        assert!((erf(3.0) - 0.999_977_909_5).abs() < 2e-7);
    }

    use crate::beads::{Bead, BeadField};

    /// A bead with no other within 2 mm, so a frame around it shows it alone, however blurred.
    fn lone_bead(field: &BeadField) -> Bead {
        let mut beads = Vec::new();
        field.for_each_in(0.0, 100_000.0, 0.0, 100_000.0, |b| beads.push(b));
        *beads
            .iter()
            .find(|b| {
                (2000.0..98_000.0).contains(&b.x)
                    && (2000.0..98_000.0).contains(&b.y)
                    && beads
                        .iter()
                        .filter(|o| (o.x - b.x).hypot(o.y - b.y) < 2000.0)
                        .count()
                        == 1
            })
            .expect("a lone bead")
    }

    /// The noise-free signal of a 256 x 256 frame of `pixel_size_um` pixels centred on a lone
    /// bead `defocus_um` out of focus, and the light the bead gives in total.
    fn render_lone_bead(pixel_size_um: f64, defocus_um: f64) -> (Vec<f32>, f64) {
        let field = BeadField::new(7, 1e-7);
        let bead = lone_bead(&field);
        let roi = Roi {
            x: 0,
            y: 0,
            width: 256,
            height: 256,
        };
        let view = View {
            sensor: (256, 256),
            roi,
            binning: 1,
            pixel_size_um,
        };
        let scene = Scene {
            stage_xy: [bead.x, bead.y],
            defocus_um,
            dye_gain: [1.0; 3],
            pixel_scale: 1.0,
        };
        let mut scratch = SpotScratch::default();
        scratch.reserve(256, 256);
        let mut signal = vec![0f32; 256 * 256];
        add_beads(&mut signal, &view, &scene, &field, 10.0, &mut scratch);
        (signal, COUNTS_PER_MW_MS * 10.0 * bead.brightness)
    }

    fn sum(signal: &[f32]) -> f64 {
        signal.iter().map(|v| f64::from(*v)).sum()
    }

    fn max(signal: &[f32]) -> f32 {
        signal.iter().cloned().fold(0.0, f32::max)
    }

    /// The spot's radius in pixels: the root of its second moment, less a pixel's own.
    fn spot_sigma_px(signal: &[f32]) -> f64 {
        let total = sum(signal);
        let (mut mx, mut my) = (0.0, 0.0);
        for (i, v) in signal.iter().enumerate() {
            mx += (i % 256) as f64 * f64::from(*v) / total;
            my += (i / 256) as f64 * f64::from(*v) / total;
        }
        let var: f64 = signal
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let (dx, dy) = ((i % 256) as f64 - mx, (i / 256) as f64 - my);
                (dx * dx + dy * dy) / 2.0 * f64::from(*v) / total
            })
            .sum();
        (var - 1.0 / 12.0).sqrt()
    }

    #[test]
    fn defocus_spreads_a_beads_light_without_losing_it() {
        let (sharp, light) = render_lone_bead(0.65, 0.0);
        assert!(
            (sum(&sharp) / light - 1.0).abs() < 0.01,
            "{} of {light}",
            sum(&sharp)
        );
        // 20 µm out: a spot 16 px wide, drawn on the coarse grid, all of it on the frame.
        let (blurred, _) = render_lone_bead(0.65, 20.0);
        assert!(
            (sum(&blurred) / light - 1.0).abs() < 0.02,
            "{} of {light}",
            sum(&blurred)
        );
        assert!(max(&blurred) < max(&sharp) / 100.0);
        let sigma = spot_sigma_px(&blurred);
        let want = (SIGMA_FOCUS_UM + SIGMA_PER_DEFOCUS * 20.0) / 0.65;
        assert!(
            (sigma / want - 1.0).abs() < 0.05,
            "sigma {sigma} px, want {want}"
        );
        // 60 µm out: 2.75 sigma to the frame's edges keep 98.8 % of the light on it, and the
        // spot still stands out of its edges: a blur, not a uniform grey.
        let (far, _) = render_lone_bead(0.65, 60.0);
        let kept = sum(&far) / light;
        assert!((kept - 0.988).abs() < 0.02, "kept {kept}");
        let (centre, corner) = (far[128 * 256 + 128], far[0]);
        assert!(centre > 10.0 * corner, "centre {centre} corner {corner}");
    }

    #[test]
    fn a_beads_apparent_size_follows_the_magnification() {
        // The same bead in focus through a 10x (0.65 µm pixels) and a 60x objective.
        let (low, light) = render_lone_bead(0.65, 0.0);
        let (high, _) = render_lone_bead(0.65 / 6.0, 0.0);
        let ratio = spot_sigma_px(&high) / spot_sigma_px(&low);
        assert!((ratio - 6.0).abs() < 0.3, "ratio {ratio}");
        // The light is the same, spread over more pixels.
        assert!((sum(&high) / light - 1.0).abs() < 0.01);
        assert!(max(&high) < max(&low) / 10.0);
    }

    #[test]
    fn spot_integrals_conserve_light() {
        let mut out = Vec::new();
        let sigma: f64 = 0.46;
        pixel_integrals(&mut out, 0, 20, 10.3, 1.0 / (sigma * 2f64.sqrt()), 1000.0);
        let sum: f64 = out.iter().sum();
        assert!((sum - 1000.0).abs() < 1e-3, "{sum}");
    }
}
