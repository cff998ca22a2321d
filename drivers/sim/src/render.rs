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

/// Beads whose peak would be below this many counts are skipped, and spots are cut where they
/// fall below it: far out of focus a bead covers thousands of pixels with nothing visible.
const MIN_COUNTS: f64 = 0.05;

/// Spots are drawn out to at most this many sigma.
const MAX_SIGMAS: f64 = 4.0;

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

/// Scratch vectors for one spot's separable weights, kept by the camera between frames.
#[derive(Debug, Default)]
pub(crate) struct SpotScratch {
    cols: Vec<f64>,
    rows: Vec<f64>,
}

impl SpotScratch {
    /// Makes room for spots as wide as a `width` x `height` frame, so drawing never allocates.
    pub(crate) fn reserve(&mut self, width: usize, height: usize) {
        self.cols.reserve(width.saturating_sub(self.cols.len()));
        self.rows.reserve(height.saturating_sub(self.rows.len()));
    }
}

/// Adds the bead image to `signal` (binned frame, row-major, counts above offset).
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
    // Fraction of a spot's light in its brightest pixel, at most: bounds which beads can show.
    let peak_fraction = (1.0 / (std::f64::consts::TAU * sigma * sigma)).min(1.0);
    let inv = 1.0 / (sigma * std::f64::consts::SQRT_2);

    field.for_each_in(
        left - margin,
        right + margin,
        top - margin,
        bottom + margin,
        |bead| {
            let total = COUNTS_PER_MW_MS * scene.dye_gain[bead.dye] * exposure_ms * bead.brightness;
            let peak = total * peak_fraction;
            if peak < MIN_COUNTS {
                return;
            }
            let reach = sigma * (2.0 * (peak / MIN_COUNTS).ln()).sqrt().min(MAX_SIGMAS) + 1.0;
            let u0 = (bead.x - left) / bin_um;
            let v0 = (bead.y - top) / bin_um;
            let c0 = (u0 - reach).floor().max(0.0) as usize;
            let c1 = ((u0 + reach).ceil().max(0.0) as usize).min(w);
            let r0 = (v0 - reach).floor().max(0.0) as usize;
            let r1 = ((v0 + reach).ceil().max(0.0) as usize).min(h);
            if c0 >= c1 || r0 >= r1 {
                return;
            }
            // Each pixel gets the Gaussian integrated over its area, so total light is conserved
            // for spots smaller than a pixel and binning sums light as a real sensor does.
            pixel_integrals(&mut scratch.cols, c0, c1, u0, inv, 1.0);
            pixel_integrals(&mut scratch.rows, r0, r1, v0, inv, total);
            for (r, wy) in (r0..r1).zip(scratch.rows.iter()) {
                let line = &mut signal[r * w + c0..r * w + c1];
                for (px, wx) in line.iter_mut().zip(scratch.cols.iter()) {
                    *px += (wy * wx) as f32;
                }
            }
        },
    );
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

    #[test]
    fn spot_integrals_conserve_light() {
        let mut out = Vec::new();
        let sigma: f64 = 0.46;
        pixel_integrals(&mut out, 0, 20, 10.3, 1.0 / (sigma * 2f64.sqrt()), 1000.0);
        let sum: f64 = out.iter().sum();
        assert!((sum - 1000.0).abs() < 1e-3, "{sum}");
    }
}
