//! An emulated ProScan III for tests and for running example instruments without hardware.
//!
//! [`ProScan`] answers the standard-mode commands the drivers use, with state: XY and Z
//! positions in controller units, moves that take real time (at a speed set by `SMS`/`SMZ` as a
//! percentage of [`EmulatorConfig`]'s top speeds) and show in the `$` status until they end,
//! `K`/`I` stopping a move where it is, hardware travel limits, filter wheels that take time to
//! rotate, and shutters. Commands it does not know get `E,5` (command not found), unreadable
//! arguments `E,4`, as the ProScan does.
//!
//! Modelling choices not confirmed against hardware: a move whose target lies past the
//! hardware travel is refused with `E,8` (value out of range) and does not start; a move sent
//! while another runs replaces it from where the stage is (the controller queues it); a wheel
//! command while that wheel turns is refused with `E,2` (not idle); `7,w,F` reports the filter
//! the wheel left until it arrives; `K` and `I` both stop at once.
//!
//! [`ProScan`] is only the controller; the fault injection, command log and pseudo-terminal are
//! [`Emulator`]'s, as for every family.

use std::time::{Duration, Instant};

use microscoped_serial::emulate::{Emulated, Emulator, Framing, Reply, Responder};

use crate::protocol::{code, wheel_status_bit, STATUS_X, STATUS_Y, STATUS_Z};

/// The terminator that ends each command the ProScan receives.
pub const COMMAND_TERMINATOR: &str = "\r";
/// The terminator that ends each ProScan reply.
pub const REPLY_TERMINATOR: &str = "\r";

/// What the emulated controller has fitted and how fast it is.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatorConfig {
    /// XY speed at `SMS,100`, controller units per second (along the path).
    pub xy_units_per_s: f64,
    /// Z speed at `SMZ,100`, units per second.
    pub z_units_per_s: f64,
    /// Hardware X travel [min, max], units.
    pub x_limits: [i64; 2],
    /// Hardware Y travel [min, max], units.
    pub y_limits: [i64; 2],
    /// Hardware Z travel [min, max], units.
    pub z_limits: [i64; 2],
    /// Positions of wheels 1..=3; 0 means not fitted.
    pub wheel_positions: [u32; 3],
    /// Time a wheel takes per position it passes at `SMF,w,100`, ms.
    pub wheel_ms_per_position: f64,
    /// Which of shutters 1..=3 are fitted.
    pub shutters_fitted: [bool; 3],
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            xy_units_per_s: 20_000.0,
            z_units_per_s: 2_000.0,
            x_limits: [-60_000, 60_000],
            y_limits: [-40_000, 40_000],
            z_limits: [-12_500, 12_500],
            wheel_positions: [10, 6, 0],
            wheel_ms_per_position: 40.0,
            shutters_fitted: [true, true, false],
        }
    }
}

/// Straight-line motion of `N` axes.
#[derive(Debug, Clone, Copy)]
struct Track<const N: usize> {
    from: [f64; N],
    to: [f64; N],
    start: Instant,
    duration: Duration,
}

impl<const N: usize> Track<N> {
    fn at(now: Instant, pos: [f64; N]) -> Self {
        Self {
            from: pos,
            to: pos,
            start: now,
            duration: Duration::ZERO,
        }
    }

    fn position(&self, now: Instant) -> [f64; N] {
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed >= self.duration {
            return self.to;
        }
        let f = elapsed.as_secs_f64() / self.duration.as_secs_f64();
        let mut p = self.from;
        for (i, v) in p.iter_mut().enumerate() {
            *v += (self.to[i] - self.from[i]) * f;
        }
        p
    }

    fn rounded(&self, now: Instant) -> [i64; N] {
        self.position(now).map(|v| v.round() as i64)
    }

    fn busy(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.start) < self.duration
    }

    fn go(&mut self, now: Instant, to: [f64; N], units_per_s: f64) {
        let from = self.position(now);
        let dist = from
            .iter()
            .zip(to.iter())
            .map(|(a, b)| (b - a) * (b - a))
            .sum::<f64>()
            .sqrt();
        *self = Self {
            from,
            to,
            start: now,
            duration: Duration::from_secs_f64(dist / units_per_s.max(1e-9)),
        };
    }

    fn stop(&mut self, now: Instant) {
        *self = Self::at(now, self.position(now));
    }
}

#[derive(Debug, Clone, Copy)]
struct Wheel {
    positions: u32,
    from: u32,
    to: u32,
    start: Instant,
    duration: Duration,
    speed: u32,
}

impl Wheel {
    fn busy(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.start) < self.duration
    }

    fn current(&self, now: Instant) -> u32 {
        if self.busy(now) {
            self.from
        } else {
            self.to
        }
    }
}

/// An emulated ProScan III: the controller's state and replies. Run it with
/// [`Emulator::new`]`(ProScan::new(config))` and [`Emulator::start`], or with [`start`].
#[derive(Debug)]
pub struct ProScan {
    config: EmulatorConfig,
    standard_mode: bool,
    xy: Track<2>,
    z: Track<1>,
    xy_speed: u32,
    z_speed: u32,
    wheels: [Wheel; 3],
    shutter_open: [bool; 3],
}

impl Responder for ProScan {
    const FRAMING: Framing = Framing {
        command: COMMAND_TERMINATOR,
        reply: REPLY_TERMINATOR,
    };

    fn answer(&mut self, command: &str) -> Reply {
        Reply::Line(self.execute(command))
    }
}

impl ProScan {
    /// A controller with `config`'s hardware, at rest at zero, wheels at position 1, shutters
    /// closed, speeds at 50 %.
    pub fn new(config: EmulatorConfig) -> Self {
        let now = Instant::now();
        let wheels = config.wheel_positions.map(|positions| Wheel {
            positions,
            from: 1,
            to: 1,
            start: now,
            duration: Duration::ZERO,
            speed: 100,
        });
        Self {
            standard_mode: false,
            xy: Track::at(now, [0.0, 0.0]),
            z: Track::at(now, [0.0]),
            xy_speed: 50,
            z_speed: 50,
            wheels,
            shutter_open: [false; 3],
            config,
        }
    }

    fn status(&self, now: Instant) -> u32 {
        let mut s = 0;
        if self.xy.busy(now) {
            s |= STATUS_X | STATUS_Y;
        }
        if self.z.busy(now) {
            s |= STATUS_Z;
        }
        for (i, w) in self.wheels.iter().enumerate() {
            if w.busy(now) {
                s |= wheel_status_bit(i as u8 + 1);
            }
        }
        s
    }

    fn move_xy(&mut self, now: Instant, x: i64, y: i64) -> String {
        let [x0, x1] = self.config.x_limits;
        let [y0, y1] = self.config.y_limits;
        if !(x0..=x1).contains(&x) || !(y0..=y1).contains(&y) {
            return err(code::OUT_OF_RANGE);
        }
        let speed = self.config.xy_units_per_s * f64::from(self.xy_speed) / 100.0;
        self.xy.go(now, [x as f64, y as f64], speed);
        "R".into()
    }

    fn move_z(&mut self, now: Instant, z: i64) -> String {
        let [z0, z1] = self.config.z_limits;
        if !(z0..=z1).contains(&z) {
            return err(code::OUT_OF_RANGE);
        }
        let speed = self.config.z_units_per_s * f64::from(self.z_speed) / 100.0;
        self.z.go(now, [z as f64], speed);
        "R".into()
    }

    /// The wheel index for a 1-based wheel argument, or the error reply.
    fn wheel_index(&self, arg: i64) -> Result<usize, String> {
        if !(1..=3).contains(&arg) {
            return Err(err(code::INVALID_WHEEL));
        }
        let i = (arg - 1) as usize;
        if self.wheels[i].positions == 0 {
            return Err(err(code::WHEEL_NOT_FITTED));
        }
        Ok(i)
    }

    fn shutter_index(&self, arg: i64) -> Result<usize, String> {
        if !(1..=3).contains(&arg) {
            return Err(err(code::INVALID_SHUTTER));
        }
        let i = (arg - 1) as usize;
        if !self.config.shutters_fitted[i] {
            return Err(err(code::SHUTTER_NOT_FITTED));
        }
        Ok(i)
    }

    fn wheel_command(&mut self, now: Instant, args: &[&str]) -> String {
        let Some(Ok(w)) = args.first().map(|a| a.parse::<i64>()) else {
            return err(code::STRING_PARSE);
        };
        let i = match self.wheel_index(w) {
            Ok(i) => i,
            Err(e) => return e,
        };
        let Some(arg) = args.get(1) else {
            return err(code::STRING_PARSE);
        };
        let ms_per = self.config.wheel_ms_per_position;
        let wheel = &mut self.wheels[i];
        let here = wheel.current(now);
        let n = wheel.positions;
        let target = match arg.to_ascii_uppercase().as_str() {
            "F" => return here.to_string(),
            "N" => here % n + 1,
            "P" => (here + n - 2) % n + 1,
            other => match other.parse::<u32>() {
                Ok(p) if (1..=n).contains(&p) => p,
                Ok(_) => return err(code::OUT_OF_RANGE),
                Err(_) => return err(code::STRING_PARSE),
            },
        };
        if wheel.busy(now) {
            return err(code::NOT_IDLE);
        }
        // Wheels turn the short way round.
        let d = here.abs_diff(target);
        let steps = d.min(n - d);
        let ms = f64::from(steps) * ms_per * 100.0 / f64::from(wheel.speed.max(1));
        *wheel = Wheel {
            from: here,
            to: target,
            start: now,
            duration: Duration::from_secs_f64(ms / 1000.0),
            ..*wheel
        };
        "R".into()
    }

    /// Executes one command and returns its reply line.
    fn execute(&mut self, command: &str) -> String {
        let now = Instant::now();
        let tokens: Vec<&str> = command
            .split([',', ' ', '\t', ';', ':'])
            .filter(|t| !t.is_empty())
            .collect();
        let Some((keyword, args)) = tokens.split_first() else {
            return err(code::COMMAND_NOT_FOUND);
        };
        let keyword = keyword.to_ascii_uppercase();
        let nums: Option<Vec<i64>> = args.iter().map(|a| a.parse::<i64>().ok()).collect();
        match (keyword.as_str(), nums.as_deref()) {
            ("COMP", Some([])) => u32::from(!self.standard_mode).to_string(),
            ("COMP", Some([m @ (0 | 1)])) => {
                self.standard_mode = *m == 0;
                "0".into()
            }
            ("VERSION", Some([])) => "100".into(),
            ("$", Some([])) => self.status(now).to_string(),
            ("PS", Some([])) => {
                let [x, y] = self.xy.rounded(now);
                format!("{x},{y}")
            }
            ("PS", Some([x, y])) => {
                self.xy = Track::at(now, [*x as f64, *y as f64]);
                "0".into()
            }
            ("PZ", Some([])) => self.z.rounded(now)[0].to_string(),
            ("PZ", Some([z])) => {
                self.z = Track::at(now, [*z as f64]);
                "0".into()
            }
            ("P", Some([])) => {
                let [x, y] = self.xy.rounded(now);
                format!("{x},{y},{}", self.z.rounded(now)[0])
            }
            ("G", Some([x, y])) => self.move_xy(now, *x, *y),
            ("G", Some([x, y, z])) => {
                let r = self.move_xy(now, *x, *y);
                if r != "R" {
                    return r;
                }
                self.move_z(now, *z)
            }
            ("GR", Some([dx, dy])) => {
                let [x, y] = self.xy.rounded(now);
                self.move_xy(now, x + dx, y + dy)
            }
            ("V", Some([z])) => self.move_z(now, *z),
            ("U", Some([d])) if *d >= 0 => {
                let z = self.z.rounded(now)[0];
                self.move_z(now, z + d)
            }
            ("D", Some([d])) if *d >= 0 => {
                let z = self.z.rounded(now)[0];
                self.move_z(now, z - d)
            }
            ("K" | "I", Some([])) => {
                self.xy.stop(now);
                self.z.stop(now);
                for w in &mut self.wheels {
                    let here = w.current(now);
                    w.from = here;
                    w.to = here;
                    w.duration = Duration::ZERO;
                }
                "R".into()
            }
            ("Z", Some([])) => {
                self.xy = Track::at(now, [0.0, 0.0]);
                self.z = Track::at(now, [0.0]);
                "0".into()
            }
            ("SMS", Some([])) => self.xy_speed.to_string(),
            ("SMZ", Some([])) => self.z_speed.to_string(),
            ("SMS" | "SMZ", Some([v])) => {
                let Ok(v @ 1..=100) = u32::try_from(*v) else {
                    return err(code::OUT_OF_RANGE);
                };
                if keyword == "SMS" {
                    self.xy_speed = v;
                } else {
                    self.z_speed = v;
                }
                "0".into()
            }
            ("FPW", Some([w])) => match self.wheel_index(*w) {
                Ok(i) => self.wheels[i].positions.to_string(),
                Err(e) => e,
            },
            ("SMF", Some([w])) => match self.wheel_index(*w) {
                Ok(i) => self.wheels[i].speed.to_string(),
                Err(e) => e,
            },
            ("SMF", Some([w, v])) => match self.wheel_index(*w) {
                Ok(i) => match u32::try_from(*v) {
                    Ok(v @ 1..=100) => {
                        self.wheels[i].speed = v;
                        "0".into()
                    }
                    _ => err(code::OUT_OF_RANGE),
                },
                Err(e) => e,
            },
            ("7", _) => self.wheel_command(now, args),
            ("8", Some([s])) => match self.shutter_index(*s) {
                Ok(i) => if self.shutter_open[i] { "0" } else { "1" }.into(),
                Err(e) => e,
            },
            ("8", Some([s, v])) => match self.shutter_index(*s) {
                Ok(i) => match v {
                    0 => {
                        self.shutter_open[i] = true;
                        "R".into()
                    }
                    1 => {
                        self.shutter_open[i] = false;
                        "R".into()
                    }
                    _ => err(code::OUT_OF_RANGE),
                },
                Err(e) => e,
            },
            (
                "COMP" | "VERSION" | "$" | "PS" | "PZ" | "P" | "G" | "GR" | "V" | "U" | "D" | "K"
                | "I" | "Z" | "SMS" | "SMZ" | "FPW" | "SMF" | "8",
                _,
            ) => err(code::STRING_PARSE),
            _ => err(code::COMMAND_NOT_FOUND),
        }
    }
}

fn err(code: u32) -> String {
    format!("E,{code}")
}

impl ProScan {
    /// The XY position now, controller units.
    pub fn xy(&self) -> (i64, i64) {
        let [x, y] = self.xy.rounded(Instant::now());
        (x, y)
    }

    /// The Z position now, controller units.
    pub fn z(&self) -> i64 {
        self.z.rounded(Instant::now())[0]
    }

    /// The filter wheel `wheel` (1..=3) shows now, 1-based.
    pub fn wheel(&self, wheel: usize) -> u32 {
        self.wheels
            .get(wheel.wrapping_sub(1))
            .map_or(0, |w| w.current(Instant::now()))
    }

    /// Whether shutter `shutter` (1..=3) is open.
    pub fn shutter_open(&self, shutter: usize) -> bool {
        self.shutter_open
            .get(shutter.wrapping_sub(1))
            .copied()
            .unwrap_or(false)
    }
}

/// Starts a [`ProScan`] with `config` behind a new pseudo-terminal, with the ProScan's
/// terminators (`\r` both ways). Open its path with a port whose `read_terminator` is `"\r"`.
pub fn start(config: EmulatorConfig) -> std::io::Result<Emulated> {
    Emulator::new(ProScan::new(config)).start()
}
