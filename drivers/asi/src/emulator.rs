//! An emulated ASI MS-2000 or Tiger TG-1000 controller, for tests and for running example
//! instruments with no hardware.
//!
//! It keeps a position per axis; moves take real time at each axis's speed, and STATUS and
//! RDSTAT report busy meanwhile; HALT stops mid-move. It answers the commands the driver uses,
//! with ASI's reply syntax (`:A`, `:A 1234.5`, `:N-x`):
//!
//! | command | reply |
//! |---|---|
//! | `MOVE`/`M X=t ...` (tenths of um) | `:A`; `:N-4` if a target is outside the axis's limits (nothing moves) |
//! | `MOVREL`/`R X=d ...` | as MOVE |
//! | `WHERE`/`W X ...` | `:A p ...` in the controller's axis order |
//! | `HALT`/`\` | `:A`, or `:N-21` when it interrupted a move |
//! | `HOME`/`! X ...` | `:A`; the axes run to their upper limit |
//! | `STATUS`/`/` | `N` or `B` |
//! | `RDSTAT`/`RS X ...` | `:A 10` (status byte, bit 0 = moving); `X?` gives `N`/`B` |
//! | `SPEED`/`S X=v` or `S X?` | `:A`, or `:A X=1.500000`; speeds clamp to the maximum |
//! | `BUILD`/`BU` (Tiger, card-addressed) | the card's build name |
//! | anything else | `:N-1` (MS-2000) or `:N-6` (Tiger) |
//!
//! An unknown axis letter gets `:N-2`. On a Tiger a card-address prefix (`2HALT`) is accepted:
//! an unknown card gets `:N-7`, HALT addressed to a card stops only that card's axes.
//! [`Asi`] is only the controller; the fault injection, command log and pseudo-terminal are
//! [`Emulator`]'s, as for every family.

use std::time::Instant;

use microscoped_serial::emulate::{Emulated, Emulator, Framing, Reply, Responder};

/// ASI commands end with a carriage return.
pub const COMMAND_TERMINATOR: &str = "\r";
/// ASI replies end with carriage return and line feed.
pub const REPLY_TERMINATOR: &str = "\r\n";

/// Which controller to emulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    /// An MS-2000: no card addresses, `:N-1` for unknown commands.
    Ms2000,
    /// A Tiger TG-1000: card-addressed commands, `:N-6` for unknown commands.
    Tiger,
}

/// One emulated axis.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatedAxis {
    /// Its letter.
    pub letter: char,
    /// The Tiger card it sits on ('1' to '9'); ignored on an MS-2000.
    pub card: char,
    /// Hardware travel [min, max], um: targets outside are refused with `:N-4`.
    pub limits_um: [f64; 2],
    /// Start position, um.
    pub position_um: f64,
    /// Speed, mm/s (= um/ms).
    pub speed_mm_s: f64,
}

/// What to emulate.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatorConfig {
    /// MS-2000 or Tiger.
    pub controller: Controller,
    /// The axes, in the controller's hardware order.
    pub axes: Vec<EmulatedAxis>,
    /// The highest speed the controller accepts; SPEED clamps to it, mm/s.
    pub max_speed_mm_s: f64,
}

impl Default for EmulatorConfig {
    /// An MS-2000 with X and Y (card 1) and Z (card 2), at 0, at 5 mm/s.
    fn default() -> Self {
        let axis = |letter, card, limit: f64| EmulatedAxis {
            letter,
            card,
            limits_um: [-limit, limit],
            position_um: 0.0,
            speed_mm_s: 5.0,
        };
        Self {
            controller: Controller::Ms2000,
            axes: vec![
                axis('X', '1', 60_000.0),
                axis('Y', '1', 60_000.0),
                axis('Z', '2', 12_000.0),
            ],
            max_speed_mm_s: 7.5,
        }
    }
}

#[derive(Debug)]
struct Axis {
    config: EmulatedAxis,
    /// Where the current (or last) move started.
    from: f64,
    /// Where it goes.
    to: f64,
    /// When it started.
    start: Instant,
    /// Its speed, um/ms.
    speed: f64,
}

impl Axis {
    fn position(&self, now: Instant) -> f64 {
        let travelled = self.speed * now.saturating_duration_since(self.start).as_secs_f64() * 1e3;
        let distance = self.to - self.from;
        if travelled >= distance.abs() {
            self.to
        } else {
            self.from + travelled.copysign(distance)
        }
    }

    fn moving(&self, now: Instant) -> bool {
        self.position(now) != self.to
    }

    fn go(&mut self, now: Instant, target: f64) {
        self.from = self.position(now);
        self.to = target;
        self.start = now;
        self.speed = self.config.speed_mm_s;
    }

    fn halt(&mut self, now: Instant) {
        let here = self.position(now);
        self.from = here;
        self.to = here;
    }
}

/// An emulated ASI controller: the state and replies. Run it with
/// [`Emulator::new`]`(Asi::new(config))` and [`Emulator::start`], or with [`start`].
#[derive(Debug)]
pub struct Asi {
    /// MS-2000 or Tiger: decides card addresses and the unknown-command code.
    controller: Controller,
    /// What SPEED clamps to, mm/s.
    max_speed_mm_s: f64,
    /// The axes, in hardware order.
    axes: Vec<Axis>,
}

impl Responder for Asi {
    const FRAMING: Framing = Framing {
        command: COMMAND_TERMINATOR,
        reply: REPLY_TERMINATOR,
    };

    fn answer(&mut self, command: &str) -> Reply {
        Reply::Line(self.execute(command, Instant::now()))
    }
}

impl Asi {
    /// A controller in the configured state.
    pub fn new(config: EmulatorConfig) -> Self {
        let now = Instant::now();
        let axes = config
            .axes
            .into_iter()
            .map(|c| Axis {
                from: c.position_um,
                to: c.position_um,
                start: now,
                speed: c.speed_mm_s,
                config: c,
            })
            .collect();
        Self {
            controller: config.controller,
            max_speed_mm_s: config.max_speed_mm_s,
            axes,
        }
    }

    /// The axis's position now, um; `None` for an unknown axis.
    pub fn position_um(&self, axis: char) -> Option<f64> {
        let now = Instant::now();
        self.axes
            .iter()
            .find(|a| a.config.letter == axis)
            .map(|a| a.position(now))
    }

    /// Whether any axis is moving.
    pub fn is_moving(&self) -> bool {
        let now = Instant::now();
        self.axes.iter().any(|a| a.moving(now))
    }
}

/// Runs an emulated controller configured by `config` behind a new pseudo-terminal.
pub fn start(config: EmulatorConfig) -> std::io::Result<Emulated> {
    Emulator::new(Asi::new(config)).start()
}

/// One `LETTER[=value]` or `LETTER?` argument.
struct Arg {
    axis: usize,
    value: Option<f64>,
    query: bool,
}

impl Asi {
    fn unknown_command(&self) -> String {
        match self.controller {
            Controller::Ms2000 => ":N-1".into(),
            // The TG-1000 manual says it never issues :N-1; :N-6 is its catch-all.
            Controller::Tiger => ":N-6".into(),
        }
    }

    fn execute(&mut self, raw: &str, now: Instant) -> String {
        let line = raw.trim().to_ascii_uppercase();
        // A Tiger card address is a digit before the command.
        let (card, line) = match line.chars().next() {
            Some(c @ '1'..='9') if self.controller == Controller::Tiger => (Some(c), &line[1..]),
            _ => (None, line.as_str()),
        };
        if let Some(card) = card {
            if !self.axes.iter().any(|a| a.config.card == card) {
                return ":N-7".into();
            }
        }
        let line = line.trim_start();
        let (verb, rest) = match line.chars().next() {
            Some(c @ ('/' | '\\' | '!')) => (c.to_string(), &line[1..]),
            _ => {
                let end = line
                    .find(|c: char| !c.is_ascii_alphabetic())
                    .unwrap_or(line.len());
                (line[..end].to_owned(), &line[end..])
            }
        };
        const KNOWN: [&str; 18] = [
            "/", "STATUS", "\\", "HALT", "W", "WHERE", "M", "MOVE", "R", "MOVREL", "!", "HOME",
            "S", "SPEED", "RS", "RDSTAT", "BU", "BUILD",
        ];
        // BUILD is modelled for the Tiger only, where the driver uses it.
        let known = KNOWN.contains(&verb.as_str())
            && (self.controller == Controller::Tiger || !matches!(verb.as_str(), "BU" | "BUILD"));
        if !known {
            return self.unknown_command();
        }
        let args = match self.parse_args(rest) {
            Ok(args) => args,
            Err(reply) => return reply,
        };
        match verb.as_str() {
            "/" | "STATUS" => {
                if self.axes.iter().any(|a| a.moving(now)) {
                    "B".into()
                } else {
                    "N".into()
                }
            }
            "\\" | "HALT" => {
                let mut interrupted = false;
                for a in self.axes.iter_mut() {
                    if card.is_none_or(|c| a.config.card == c) {
                        interrupted |= a.moving(now);
                        a.halt(now);
                    }
                }
                if interrupted {
                    ":N-21".into()
                } else {
                    ":A".into()
                }
            }
            "W" | "WHERE" => {
                if args.is_empty() {
                    return ":N-3".into();
                }
                // The controller answers in its own axis order, whatever order was asked.
                let mut asked: Vec<usize> = args.iter().map(|a| a.axis).collect();
                asked.sort_unstable();
                asked.dedup();
                let values: Vec<String> = asked
                    .iter()
                    .map(|&i| format!("{:.1}", self.axes[i].position(now) * 10.0))
                    .collect();
                format!(":A {}", values.join(" "))
            }
            "M" | "MOVE" | "R" | "MOVREL" => {
                if args.is_empty() {
                    return ":N-3".into();
                }
                let relative = verb.starts_with('R');
                let mut targets = Vec::with_capacity(args.len());
                for arg in &args {
                    if arg.query {
                        return ":N-6".into();
                    }
                    // ASI takes a missing number as 0.
                    let value = arg.value.unwrap_or(0.0) / 10.0;
                    let axis = &self.axes[arg.axis];
                    let target = if relative {
                        axis.to_if_stopped(now) + value
                    } else {
                        value
                    };
                    let [min, max] = axis.config.limits_um;
                    if target < min || target > max {
                        return ":N-4".into();
                    }
                    targets.push((arg.axis, target));
                }
                for (i, target) in targets {
                    self.axes[i].go(now, target);
                }
                ":A".into()
            }
            "!" | "HOME" => {
                if args.is_empty() {
                    return ":N-3".into();
                }
                // The default home position lies beyond the travel: the axis runs to its
                // upper limit.
                for arg in &args {
                    let upper = self.axes[arg.axis].config.limits_um[1];
                    self.axes[arg.axis].go(now, upper);
                }
                ":A".into()
            }
            "S" | "SPEED" => {
                if args.is_empty() {
                    return ":N-3".into();
                }
                let mut answers = Vec::new();
                for arg in &args {
                    let axis = &mut self.axes[arg.axis];
                    if arg.query {
                        answers.push(format!(
                            "{}={:.6}",
                            axis.config.letter, axis.config.speed_mm_s
                        ));
                    } else {
                        let v = arg.value.unwrap_or(0.0);
                        if v < 0.0 {
                            return ":N-4".into();
                        }
                        axis.config.speed_mm_s = v.min(self.max_speed_mm_s);
                    }
                }
                if answers.is_empty() {
                    ":A".into()
                } else {
                    format!(":A {}", answers.join(" "))
                }
            }
            "RS" | "RDSTAT" => {
                if args.is_empty() {
                    return ":N-3".into();
                }
                let answers: Vec<String> = args
                    .iter()
                    .map(|arg| {
                        let a = &self.axes[arg.axis];
                        let moving = a.moving(now);
                        if arg.query {
                            (if moving { "B" } else { "N" }).to_owned()
                        } else {
                            // Bit 0 commanded move, 1 axis enabled, 2 motor on, 3 joystick on,
                            // 6 upper limit switch closed, 7 lower.
                            let here = a.position(now);
                            let mut byte = 0b1010u8;
                            if moving {
                                byte |= 0b101;
                            }
                            if here >= a.config.limits_um[1] {
                                byte |= 0x40;
                            }
                            if here <= a.config.limits_um[0] {
                                byte |= 0x80;
                            }
                            byte.to_string()
                        }
                    })
                    .collect();
                format!(":A {}", answers.join(" "))
            }
            "BU" | "BUILD" if self.controller == Controller::Tiger => match card {
                None => "TIGER_COMM".into(),
                Some(c) => {
                    let n = self.axes.iter().filter(|a| a.config.card == c).count();
                    if n >= 2 { "STD_XY" } else { "STD_Z" }.into()
                }
            },
            _ => self.unknown_command(),
        }
    }

    fn parse_args(&self, rest: &str) -> Result<Vec<Arg>, String> {
        rest.split_whitespace()
            .map(|token| {
                let mut chars = token.chars();
                let letter = chars.next().unwrap_or(' ');
                let axis = self
                    .axes
                    .iter()
                    .position(|a| a.config.letter == letter)
                    .ok_or_else(|| ":N-2".to_owned())?;
                let tail = chars.as_str();
                if tail == "?" {
                    return Ok(Arg {
                        axis,
                        value: None,
                        query: true,
                    });
                }
                let value = match tail.strip_prefix('=') {
                    Some(v) => Some(
                        v.parse::<f64>()
                            .ok()
                            .filter(|v| v.is_finite())
                            .ok_or_else(|| ":N-6".to_owned())?,
                    ),
                    None if tail.is_empty() => None,
                    None => return Err(":N-6".to_owned()),
                };
                Ok(Arg {
                    axis,
                    value,
                    query: false,
                })
            })
            .collect()
    }
}

impl Axis {
    /// The base of a relative move: where the axis is, or is going if it moves.
    fn to_if_stopped(&self, now: Instant) -> f64 {
        if self.moving(now) {
            self.to
        } else {
            self.position(now)
        }
    }
}
