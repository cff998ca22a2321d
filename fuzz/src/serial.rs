//! The serial drivers against a controller whose replies are the fuzzer's bytes.
//!
//! Each driver runs unchanged over a real [`Port`] on a pseudo-terminal, through the serial
//! crate's emulator skeleton: the device on the far end is a [`Scripted`] responder that
//! answers each command with the next reply from the input, so everything between the bytes on
//! the wire and the driver's trait methods (framing, the port's line reading, the vendor's reply
//! parsing, the driver's use of the values) is what is fuzzed. An input is a device selector
//! byte, then the replies, each ended by the protocol's reply terminator; once they run out
//! every command gets an empty line.
//!
//! The same [`exercise`] runs in [`record`] against the vendor's own emulator, whose replies
//! become the seed corpus, so the seeds walk the paths a real controller takes.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::{Mutex, OnceLock};

use microscoped_asi::{AsiStage, AsiStageSettings, AsiXYStage, AsiXYStageSettings};
use microscoped_cobolt::{CoboltLaser, CoboltSettings, RunMode};
use microscoped_driver_api::{Device, Laser, Shutter, Stage, StateDevice, Value, XYStage};
use microscoped_obis::{ObisLaser, ObisSettings, OperatingMode};
use microscoped_prior::{
    PriorFilterWheel, PriorFilterWheelSettings, PriorShutter, PriorShutterSettings, PriorXYStage,
    PriorXYStageSettings, PriorZ, PriorZSettings,
};
use microscoped_serial::emulate::{Emulated, Emulator, Reply, Responder};
use microscoped_serial::{Port, PortSettings};

use microscoped_asi::emulator::Asi;
use microscoped_cobolt::emulator::Cobolt;
use microscoped_obis::emulator::Obis;
use microscoped_prior::emulator::ProScan;

/// The devices an input can select, by its first byte (modulo their number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// ASI XY stage, default settings (MS-2000).
    AsiXy,
    /// ASI XY stage on a Tiger card, with a speed to set at connect.
    AsiXyTiger,
    /// ASI single axis (Z).
    AsiZ,
    /// Prior ProScan XY stage.
    PriorXy,
    /// Prior ProScan focus (Z).
    PriorZ,
    /// Prior filter wheel.
    PriorWheel,
    /// Prior shutter.
    PriorShutter,
    /// Coherent OBIS laser, default settings.
    Obis,
    /// OBIS head 2 behind a remote, with a mode, a power and a wavelength to check at connect.
    ObisConfigured,
    /// Cobolt laser, default settings.
    Cobolt,
    /// Cobolt laser with a mode, a power and autostart at connect.
    CoboltConfigured,
}

impl Target {
    /// Every target, in selector order.
    pub const ALL: [Target; 11] = [
        Self::AsiXy,
        Self::AsiXyTiger,
        Self::AsiZ,
        Self::PriorXy,
        Self::PriorZ,
        Self::PriorWheel,
        Self::PriorShutter,
        Self::Obis,
        Self::ObisConfigured,
        Self::Cobolt,
        Self::CoboltConfigured,
    ];

    /// The target a selector byte picks.
    pub fn from_byte(b: u8) -> Self {
        Self::ALL[usize::from(b) % Self::ALL.len()]
    }

    /// Its selector byte.
    pub fn byte(self) -> u8 {
        Self::ALL.iter().position(|&t| t == self).unwrap_or(0) as u8
    }

    /// A short name, for seed file names.
    pub fn name(self) -> &'static str {
        match self {
            Self::AsiXy => "asi-xy",
            Self::AsiXyTiger => "asi-xy-tiger",
            Self::AsiZ => "asi-z",
            Self::PriorXy => "prior-xy",
            Self::PriorZ => "prior-z",
            Self::PriorWheel => "prior-wheel",
            Self::PriorShutter => "prior-shutter",
            Self::Obis => "obis",
            Self::ObisConfigured => "obis-configured",
            Self::Cobolt => "cobolt",
            Self::CoboltConfigured => "cobolt-configured",
        }
    }

    fn family(self) -> Family {
        match self {
            Self::AsiXy | Self::AsiXyTiger | Self::AsiZ => Family::Asi,
            Self::PriorXy | Self::PriorZ | Self::PriorWheel | Self::PriorShutter => Family::Prior,
            Self::Obis | Self::ObisConfigured => Family::Obis,
            Self::Cobolt | Self::CoboltConfigured => Family::Cobolt,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Asi,
    Prior,
    Obis,
    Cobolt,
}

/// A device that answers each command with the next scripted reply line, framed as the vendor
/// `R`'s emulator frames its replies.
pub struct Scripted<R> {
    /// Replies to come, without terminators.
    replies: VecDeque<Vec<u8>>,
    /// Only `R`'s framing is used.
    vendor: PhantomData<fn() -> R>,
}

impl<R> Default for Scripted<R> {
    fn default() -> Self {
        Self {
            replies: VecDeque::new(),
            vendor: PhantomData,
        }
    }
}

impl<R: Responder> Responder for Scripted<R> {
    const FRAMING: microscoped_serial::emulate::Framing = R::FRAMING;

    fn answer(&mut self, _command: &str) -> Reply {
        let mut line = self.replies.pop_front().unwrap_or_default();
        line.extend_from_slice(R::FRAMING.reply.as_bytes());
        Reply::Raw(line)
    }
}

/// One scripted controller per vendor, started once per process: the pseudo-terminal, its
/// emulator thread and the port's thread serve every input.
struct Line<R: Responder> {
    emulator: Emulator<Scripted<R>>,
    port: Port,
    /// Keeps the pseudo-terminal open.
    _running: Emulated,
}

impl<R: Responder> Line<R> {
    fn start() -> Self {
        let emulator = Emulator::new(Scripted::<R>::default());
        let running = emulator
            .start()
            .expect("a pseudo-terminal for the emulator");
        let port = open_port(&running);
        Self {
            emulator,
            port,
            _running: running,
        }
    }

    /// Loads the replies for the next input and hands out the port.
    fn load(&self, replies: VecDeque<Vec<u8>>) -> Port {
        // The skeleton logs every command; over millions of inputs that log would be the
        // process's memory.
        self.emulator.clear_commands();
        self.emulator.device().replies = replies;
        self.port.clone()
    }
}

/// A port on an emulator's pseudo-terminal, framed as it frames. The timeout only bounds a
/// wait: every command is answered at once.
fn open_port(running: &Emulated) -> Port {
    let framing = running.framing();
    Port::open(PortSettings {
        path: running.path().to_owned(),
        baud: 115_200,
        write_terminator: framing.command.into(),
        read_terminator: framing.reply.into(),
        timeout_ms: 5_000,
        ..PortSettings::default()
    })
    .expect("the emulator's pseudo-terminal opens")
}

/// Splits `bytes` into reply lines at `terminator` (a last piece without one is a line too).
fn split_replies(bytes: &[u8], terminator: &[u8]) -> VecDeque<Vec<u8>> {
    let mut out = VecDeque::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        match rest.windows(terminator.len()).position(|w| w == terminator) {
            Some(end) => {
                out.push_back(rest[..end].to_vec());
                rest = &rest[end + terminator.len()..];
            }
            None => {
                out.push_back(rest.to_vec());
                rest = &[];
            }
        }
    }
    out
}

fn line<R: Responder>(cell: &'static OnceLock<Mutex<Line<R>>>) -> &'static Mutex<Line<R>> {
    cell.get_or_init(|| Mutex::new(Line::start()))
}

static ASI: OnceLock<Mutex<Line<Asi>>> = OnceLock::new();
static PRIOR: OnceLock<Mutex<Line<ProScan>>> = OnceLock::new();
static OBIS: OnceLock<Mutex<Line<Obis>>> = OnceLock::new();
static COBOLT: OnceLock<Mutex<Line<Cobolt>>> = OnceLock::new();

/// Runs one input: the selected driver connects to a controller that answers with the
/// input's replies, then [`exercise`] calls every method of its traits.
pub fn run(data: &[u8]) {
    let Some((&selector, replies)) = data.split_first() else {
        return;
    };
    let target = Target::from_byte(selector);
    fn go<R: Responder>(cell: &'static OnceLock<Mutex<Line<R>>>, target: Target, bytes: &[u8]) {
        let line = line(cell).lock().unwrap_or_else(|e| e.into_inner());
        let port = line.load(split_replies(bytes, R::FRAMING.reply.as_bytes()));
        exercise(target, port);
    }
    match target.family() {
        Family::Asi => go(&ASI, target, replies),
        Family::Prior => go(&PRIOR, target, replies),
        Family::Obis => go(&OBIS, target, replies),
        Family::Cobolt => go(&COBOLT, target, replies),
    }
}

/// Connects `target`'s driver on `port` and calls every method of its traits, checking what
/// the driver hands the daemon: errors are fine, panics and non-finite numbers are not.
pub fn exercise(target: Target, port: Port) {
    match target {
        Target::AsiXy => {
            if let Ok(d) = AsiXYStage::new(port, AsiXYStageSettings::default()) {
                xy_stage(d);
            }
        }
        Target::AsiXyTiger => {
            let settings = AsiXYStageSettings {
                card: Some('1'),
                speed_mm_s: Some(2.5),
                ..AsiXYStageSettings::default()
            };
            if let Ok(d) = AsiXYStage::new(port, settings) {
                xy_stage(d);
            }
        }
        Target::AsiZ => {
            if let Ok(d) = AsiStage::new(port, AsiStageSettings::default()) {
                stage(d);
            }
        }
        Target::PriorXy => {
            if let Ok(d) = PriorXYStage::new(port, PriorXYStageSettings::default()) {
                xy_stage(d);
            }
        }
        Target::PriorZ => {
            if let Ok(d) = PriorZ::new(port, PriorZSettings::default()) {
                stage(d);
            }
        }
        Target::PriorWheel => {
            if let Ok(d) = PriorFilterWheel::new(port, PriorFilterWheelSettings::default()) {
                state_device(d);
            }
        }
        Target::PriorShutter => {
            if let Ok(d) = PriorShutter::new(port, PriorShutterSettings::default()) {
                shutter(d);
            }
        }
        Target::Obis => {
            if let Ok(d) = ObisLaser::new(port, ObisSettings::default()) {
                laser(d);
            }
        }
        Target::ObisConfigured => {
            let settings = ObisSettings {
                power_mw: Some(5.0),
                operating_mode: Some(OperatingMode::Cwp),
                device_index: Some(2),
                wavelength_nm: Some(488.0),
                ..ObisSettings::default()
            };
            if let Ok(d) = ObisLaser::new(port, settings) {
                laser(d);
            }
        }
        Target::Cobolt => {
            if let Ok(d) = CoboltLaser::new(port, CoboltSettings::default()) {
                laser(d);
            }
        }
        Target::CoboltConfigured => {
            let settings = CoboltSettings {
                power_mw: Some(5.0),
                mode: Some(RunMode::ConstantPower),
                autostart: Some(false),
                ..CoboltSettings::default()
            };
            if let Ok(d) = CoboltLaser::new(port, settings) {
                laser(d);
            }
        }
    }
}

/// A number a driver reports must be one: NaN or an infinity would reach the daemon's
/// metadata and checks as a value.
fn finite(what: &str, v: f64) {
    assert!(v.is_finite(), "{what} reported as {v}");
}

/// Every property read, and written back with what was read; then the device made safe.
fn device(d: &mut dyn Device) {
    let _ = d.ping();
    for spec in d.properties() {
        if let Ok(v) = d.get_property(&spec.name) {
            if let Value::Float(f) = v {
                finite(&spec.name, f);
            }
            if !spec.read_only {
                let _ = d.set_property(&spec.name, &v);
            }
        }
    }
}

fn xy_stage(mut d: impl XYStage) {
    device(&mut d);
    if let Ok((x, y)) = d.position_um() {
        finite("x position", x);
        finite("y position", y);
    }
    let _ = d.is_busy();
    let _ = d.move_absolute_um(100.0, -50.0);
    let _ = d.move_relative_um(-10.0, 10.0);
    let _ = d.stop();
    let _ = d.home();
    let _ = d.travel_um();
    let _ = d.make_safe();
}

fn stage(mut d: impl Stage) {
    device(&mut d);
    if let Ok(z) = d.position_um() {
        finite("position", z);
    }
    let _ = d.is_busy();
    let _ = d.move_absolute_um(25.0);
    let _ = d.move_relative_um(-5.0);
    let _ = d.stop();
    let _ = d.home();
    let _ = d.travel_um();
    let _ = d.make_safe();
}

fn state_device(mut d: impl StateDevice) {
    device(&mut d);
    let _ = d.labels();
    let _ = d.position();
    let _ = d.set_position(2);
    let _ = d.is_busy();
    let _ = d.make_safe();
}

fn shutter(mut d: impl Shutter) {
    device(&mut d);
    let _ = d.is_open();
    let _ = d.set_open(true);
    let _ = d.set_open(false);
    let _ = d.make_safe();
}

fn laser(mut d: impl Laser) {
    device(&mut d);
    for (what, v) in [
        ("wavelength", d.wavelength_nm()),
        ("power setpoint", d.power_setpoint_mw()),
        ("power", d.power_mw()),
        ("maximum power", d.max_power_mw()),
    ] {
        if let Ok(v) = v {
            finite(what, v);
        }
    }
    let _ = d.is_on();
    let _ = d.set_power_mw(1.0);
    let _ = d.set_on(true);
    let _ = d.set_on(false);
    let _ = d.make_safe();
}

/// A vendor's emulator that keeps the first line of each reply it sends.
struct Recorder<R> {
    inner: R,
    replies: Vec<Vec<u8>>,
}

impl<R: Responder> Responder for Recorder<R> {
    const FRAMING: microscoped_serial::emulate::Framing = R::FRAMING;

    fn answer(&mut self, command: &str) -> Reply {
        let reply = self.inner.answer(command);
        let first = match &reply {
            Reply::Line(l) => l.as_bytes().to_vec(),
            Reply::Lines(ls) => ls
                .first()
                .map(|l| l.as_bytes().to_vec())
                .unwrap_or_default(),
            Reply::Raw(b) => b.clone(),
            Reply::Silent => Vec::new(),
        };
        self.replies.push(first);
        reply
    }
}

/// The input that replays what the vendor's emulator answers when [`exercise`] drives
/// `target` against it: a seed for the corpus.
pub fn record(target: Target) -> Vec<u8> {
    fn go<R: Responder>(vendor: R, target: Target) -> Vec<u8> {
        let emulator = Emulator::new(Recorder {
            inner: vendor,
            replies: Vec::new(),
        });
        let running = emulator
            .start()
            .expect("a pseudo-terminal for the emulator");
        exercise(target, open_port(&running));
        drop(running);
        let term = R::FRAMING.reply.as_bytes();
        let mut out = vec![target.byte()];
        for r in &emulator.device().replies {
            out.extend_from_slice(r);
            out.extend_from_slice(term);
        }
        out
    }
    match target.family() {
        Family::Asi => {
            let config = microscoped_asi::emulator::EmulatorConfig {
                controller: if target == Target::AsiXyTiger {
                    microscoped_asi::emulator::Controller::Tiger
                } else {
                    microscoped_asi::emulator::Controller::Ms2000
                },
                ..Default::default()
            };
            go(Asi::new(config), target)
        }
        Family::Prior => go(ProScan::new(Default::default()), target),
        Family::Obis => go(
            Obis::new(microscoped_obis::emulator::ObisEmulatorConfig {
                index: if target == Target::ObisConfigured {
                    2
                } else {
                    1
                },
                ..Default::default()
            }),
            target,
        ),
        Family::Cobolt => go(Cobolt::new(Default::default()), target),
    }
}
