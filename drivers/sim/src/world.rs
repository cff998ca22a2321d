//! The shared state of one simulated instrument.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::beads::{DYES, EXCITATION_WIDTH_NM};
use crate::motion::Motion;

/// Transmission of an emission filter for light outside its passband: real filters leak a little.
pub(crate) const BLOCKED_TRANSMISSION: f64 = 0.02;

/// The world all simulated devices of one instrument share, so that the camera image follows the
/// stages, lasers, filter and shutter.
///
/// Cloning is cheap and gives another handle to the same world. Devices register themselves when
/// they are built; the first XY stage built is the one the camera looks through, the first
/// [`SimStage`](crate::SimStage) is the focus axis, the first state device with passbands is the
/// emission filter, the first with magnifications is the objective turret, and every shutter
/// must be open for light to reach the sample.
#[derive(Debug, Clone)]
pub struct SimWorld {
    inner: Arc<Mutex<World>>,
}

impl SimWorld {
    /// A new, empty world whose bead field and camera noise derive from `seed`.
    pub fn new(seed: u64) -> SimWorld {
        SimWorld {
            inner: Arc::new(Mutex::new(World {
                seed,
                xy: Vec::new(),
                z: Vec::new(),
                lasers: Vec::new(),
                filters: Vec::new(),
                shutters: Vec::new(),
                cameras: 0,
            })),
        }
    }

    /// The seed the world was built with.
    pub fn seed(&self) -> u64 {
        self.lock().seed
    }

    /// Locks the world. A panic in another device while it held the lock cannot leave the world
    /// half-updated in a harmful way (every update is a single assignment), so poisoning is
    /// ignored rather than spreading the panic to every device.
    pub(crate) fn lock(&self) -> MutexGuard<'_, World> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A focus (or other single-axis) stage's state.
#[derive(Debug, Clone)]
pub(crate) struct ZAxis {
    pub(crate) motion: Motion<1>,
    pub(crate) focus_z_um: f64,
}

/// A laser's state.
#[derive(Debug, Clone)]
pub(crate) struct LaserState {
    pub(crate) wavelength_nm: f64,
    pub(crate) on: bool,
    pub(crate) power_mw: f64,
}

/// A state device's position, which changes over `duration` after a command.
#[derive(Debug, Clone)]
pub(crate) struct FilterState {
    pub(crate) passbands: Option<Vec<[f64; 2]>>,
    pub(crate) magnifications: Option<Vec<f64>>,
    pub(crate) target: u32,
    pub(crate) since: Instant,
    pub(crate) duration: Duration,
}

impl FilterState {
    /// True while the device is between positions.
    pub(crate) fn is_busy(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.since) < self.duration
    }
}

/// What the world holds. Devices index into these lists with the id they got when registering.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) seed: u64,
    pub(crate) xy: Vec<Motion<2>>,
    pub(crate) z: Vec<ZAxis>,
    pub(crate) lasers: Vec<LaserState>,
    pub(crate) filters: Vec<FilterState>,
    pub(crate) shutters: Vec<bool>,
    pub(crate) cameras: u64,
}

/// What the camera needs from the world for one frame, taken under the lock so that rendering
/// runs without it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scene {
    /// Stage position the field of view is centred on, um.
    pub(crate) stage_xy: [f64; 2],
    /// Distance from focus, um.
    pub(crate) defocus_um: f64,
    /// For each dye in [`DYES`]: effective excitation power (mW) times filter transmission.
    pub(crate) dye_gain: [f64; 3],
    /// What the objective in place does to the camera's pixel size: the turret's first
    /// magnification over the current one (1 without a turret).
    pub(crate) pixel_scale: f64,
}

impl World {
    /// The scene at `now`.
    pub(crate) fn scene(&self, now: Instant) -> Scene {
        let stage_xy = self.xy.first().map_or([0.0, 0.0], |m| m.position(now));
        let defocus_um = self
            .z
            .first()
            .map_or(0.0, |z| z.motion.position(now)[0] - z.focus_z_um);
        let light = self.shutters.iter().all(|open| *open);
        let mut dye_gain = [0.0; 3];
        if light {
            for (gain, dye) in dye_gain.iter_mut().zip(DYES.iter()) {
                let excitation: f64 = self
                    .lasers
                    .iter()
                    .filter(|l| l.on)
                    .map(|l| {
                        let d = (l.wavelength_nm - dye.excitation_nm) / EXCITATION_WIDTH_NM;
                        l.power_mw * (-d * d).exp()
                    })
                    .sum();
                *gain = excitation * self.transmission(dye.emission_nm, now);
            }
        }
        Scene {
            stage_xy,
            defocus_um,
            dye_gain,
            pixel_scale: self.pixel_scale(),
        }
    }

    /// The first magnification of the objective turret over the magnification in place: the
    /// factor on the camera's sample-plane pixel size. A turret between positions counts as at
    /// its target, as `position` reports.
    pub(crate) fn pixel_scale(&self) -> f64 {
        self.filters
            .iter()
            .find_map(|f| f.magnifications.as_ref().map(|m| (f, m)))
            .and_then(|(f, m)| Some(m.first()? / m.get(f.target as usize)?))
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(1.0)
    }

    /// The scene stamp at `now` (see [`Stamp`](crate::Stamp)).
    pub(crate) fn stamp(&self, now: Instant, exposure_ms: f64) -> crate::Stamp {
        let [x_um, y_um] = self.xy.first().map_or([0.0, 0.0], |m| m.position(now));
        let z_um = self.z.first().map_or(0.0, |z| z.motion.position(now)[0]);
        let filter = self
            .filters
            .iter()
            .find(|f| f.passbands.is_some())
            .map(|f| f.target);
        let lasers_on = self
            .lasers
            .iter()
            .take(8)
            .enumerate()
            .filter(|(_, l)| l.on && l.power_mw > 0.0)
            .fold(0u8, |m, (i, _)| m | (1 << i));
        crate::Stamp {
            filter,
            lasers_on,
            shutter_open: self.shutters.iter().all(|open| *open),
            x_um,
            y_um,
            z_um,
            exposure_ms,
        }
    }

    /// The emission filter's transmission at `emission_nm`. A wheel between positions shows the
    /// camera the opaque frame between two filters.
    fn transmission(&self, emission_nm: f64, now: Instant) -> f64 {
        let Some((filter, bands)) = self
            .filters
            .iter()
            .find_map(|f| f.passbands.as_ref().map(|b| (f, b)))
        else {
            return 1.0;
        };
        if filter.is_busy(now) {
            return BLOCKED_TRANSMISSION;
        }
        match bands.get(filter.target as usize) {
            Some([lo, hi]) if emission_nm >= *lo && emission_nm <= *hi => 1.0,
            _ => BLOCKED_TRANSMISSION,
        }
    }
}
