//! What the XY stage and the single-axis stage share: one or more axes of one ASI controller
//! behind a [`Port`], and the commands that drive them.

use std::time::Duration;

use microscoped_driver_api::{DeviceError, PropertySpec, Result, Value};
use microscoped_serial::Port;

use crate::protocol::{self, Reply};

/// Slowest speed the `speed_mm_s` property accepts, mm/s.
pub(crate) const MIN_SPEED_MM_S: f64 = 0.0001;
/// Highest `max_speed_mm_s` a setting may give, mm/s: far above any ASI stage.
pub(crate) const SPEED_CEILING_MM_S: f64 = 100.0;

/// Bit 0 of the RDSTAT status byte: a commanded move (MOVE, MOVREL, HOME...) is in progress.
const STATUS_BUSY_BIT: u8 = 0x01;

/// Axes of one controller, driven together.
pub(crate) struct Axes {
    /// The shared port.
    pub(crate) port: Port,
    /// Who we are, for messages: "ASI XY stage (X, Y)".
    pub(crate) who: String,
    /// The axis letters, in the device's order (x then y).
    pub(crate) letters: Vec<char>,
    /// Soft travel per axis, [min, max] um.
    pub(crate) travel: Vec<[f64; 2]>,
    /// Tiger card address; `None` on an MS-2000.
    pub(crate) card: Option<char>,
    /// Highest speed the property offers, mm/s.
    pub(crate) max_speed_mm_s: f64,
    /// How long the controller may take to acknowledge HOME.
    pub(crate) home_timeout: Duration,
}

impl Axes {
    /// Checks that the controller answers for each axis (and, on a Tiger, that the card
    /// exists), then applies the configured speed.
    pub(crate) fn verify(&self, speed_mm_s: Option<f64>) -> Result<()> {
        let axes = self;
        let path = axes.port.path().to_owned();
        let context = |e: DeviceError| {
            DeviceError::new(
                e.kind,
                format!(
                    "{} could not be started on {path} (is an ASI controller there, with these axes?): {}",
                    axes.who, e.message
                ),
            )
        };
        if let Some(card) = axes.card {
            // BUILD is card-addressed on a Tiger: a wrong address is caught here, not at the
            // first stop.
            axes.card_build(card).map_err(context)?;
        }
        axes.positions().map_err(context)?;
        if let Some(speed) = speed_mm_s {
            axes.set_speed(speed).map_err(context)?;
        }
        Ok(())
    }

    /// One transaction; transport errors get our name, the reply comes back raw.
    fn raw(&self, command: &str, timeout: Option<Duration>) -> Result<String> {
        let outcome = match timeout {
            Some(t) => self.port.query_timeout(command, t),
            None => self.port.query(command),
        };
        outcome.map_err(|e| DeviceError::new(e.kind, format!("{}: {}", self.who, e.message)))
    }

    /// Sends `command` and returns what follows `:A`; `:N-x` becomes its error.
    fn command(&self, command: &str) -> Result<String> {
        self.command_timeout(command, None)
    }

    fn command_timeout(&self, command: &str, timeout: Option<Duration>) -> Result<String> {
        let raw = self.raw(command, timeout)?;
        match protocol::classify(&raw, command, &self.who)? {
            Reply::Ack(payload) => Ok(payload.to_owned()),
            Reply::Refused(code) => Err(protocol::device_error(code, command, &self.who)),
        }
    }

    /// Sends a command whose only good answer is a bare `:A`.
    fn acknowledged(&self, command: &str, timeout: Option<Duration>) -> Result<()> {
        let payload = self.command_timeout(command, timeout)?;
        if payload.is_empty() {
            Ok(())
        } else {
            Err(protocol::garbled(
                &format!(":A {payload}"),
                command,
                &self.who,
                "expected a bare \":A\"",
            ))
        }
    }

    fn card_build(&self, card: char) -> Result<String> {
        let command = format!("{card}BU");
        let raw = self.raw(&command, None)?;
        let line = raw.trim();
        // Tiger answers BUILD with the card's firmware name, without ":A".
        if line.starts_with(":N") {
            return match protocol::classify(line, &command, &self.who)? {
                Reply::Refused(code) => Err(protocol::device_error(code, &command, &self.who)),
                Reply::Ack(_) => Err(protocol::garbled(&raw, &command, &self.who, "")),
            };
        }
        if line.is_empty() || !line.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
            return Err(protocol::garbled(
                &raw,
                &command,
                &self.who,
                "expected the card's firmware build name",
            ));
        }
        Ok(line.to_owned())
    }

    /// Current positions, um, one WHERE per axis: a multi-axis WHERE answers in the
    /// controller's hardware order, not the order asked, so one axis at a time is unambiguous.
    pub(crate) fn positions(&self) -> Result<Vec<f64>> {
        self.letters
            .iter()
            .map(|&axis| {
                let command = format!("W {axis}");
                let payload = self.command(&command)?;
                protocol::parse_position(&payload).ok_or_else(|| {
                    protocol::garbled(
                        &format!(":A {payload}"),
                        &command,
                        &self.who,
                        "expected one position in tenths of a micron",
                    )
                })
            })
            .collect()
    }

    /// Refuses targets outside the soft travel before anything is sent.
    fn check_targets(&self, targets: &[f64]) -> Result<()> {
        for ((&axis, &[min, max]), &t) in self.letters.iter().zip(&self.travel).zip(targets) {
            if !t.is_finite() {
                return Err(DeviceError::invalid(format!(
                    "{}: {axis} target {t} is not a finite position",
                    self.who
                )));
            }
            if t < min || t > max {
                return Err(DeviceError::out_of_range(format!(
                    "{}: {axis} target {t} um is outside the travel [{min}, {max}] um; not moved",
                    self.who
                )));
            }
        }
        Ok(())
    }

    fn assignments(&self, values: &[f64]) -> String {
        self.letters
            .iter()
            .zip(values)
            .map(|(axis, v)| format!("{axis}={}", protocol::tenths(*v)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Starts a move to absolute positions (MOVE).
    pub(crate) fn move_absolute(&self, targets: &[f64]) -> Result<()> {
        self.check_targets(targets)?;
        self.acknowledged(&format!("M {}", self.assignments(targets)), None)
    }

    /// Starts a move by distances (MOVREL), after checking where it would end.
    pub(crate) fn move_relative(&self, distances: &[f64]) -> Result<()> {
        if let Some(d) = distances.iter().find(|d| !d.is_finite()) {
            return Err(DeviceError::invalid(format!(
                "{}: distance {d} is not a finite distance",
                self.who
            )));
        }
        let here = self.positions()?;
        let targets: Vec<f64> = here.iter().zip(distances).map(|(h, d)| h + d).collect();
        self.check_targets(&targets)?;
        self.acknowledged(&format!("R {}", self.assignments(distances)), None)
    }

    /// Whether any of our axes is in a commanded move, from each axis's RDSTAT status byte
    /// (STATUS would also report the controller's other axes).
    pub(crate) fn busy(&self) -> Result<bool> {
        for axis in &self.letters {
            let command = format!("RS {axis}");
            let payload = self.command(&command)?;
            let byte = protocol::parse_status_byte(&payload).ok_or_else(|| {
                protocol::garbled(
                    &format!(":A {payload}"),
                    &command,
                    &self.who,
                    "expected a status byte in decimal",
                )
            })?;
            if byte & STATUS_BUSY_BIT != 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Stops motion: HALT addressed to our card on a Tiger, else the broadcast `\` (which on an
    /// MS-2000 stops every axis of the controller: there is no per-axis halt).
    pub(crate) fn stop(&self) -> Result<()> {
        // The shortcut `\` cannot carry a card address: the full HALT must be used.
        let command = match self.card {
            Some(card) => format!("{card}HALT"),
            None => "\\".to_owned(),
        };
        let raw = self.raw(&command, None)?;
        match protocol::classify(&raw, &command, &self.who)? {
            Reply::Ack(_) => Ok(()),
            // HALT answers :N-21 when it interrupted a move: exactly what was asked.
            Reply::Refused(21) => Ok(()),
            Reply::Refused(code) => Err(protocol::device_error(code, &command, &self.who)),
        }
    }

    /// Starts HOME on our axes. ASI's home position defaults to far beyond the positive travel,
    /// so the stage runs to its upper limit switch; the soft travel is not applied to it.
    pub(crate) fn home(&self) -> Result<()> {
        let letters: Vec<String> = self.letters.iter().map(char::to_string).collect();
        self.acknowledged(&format!("! {}", letters.join(" ")), Some(self.home_timeout))
    }

    /// Speed of the first axis, mm/s.
    pub(crate) fn speed(&self) -> Result<f64> {
        let axis = self.letters[0];
        let command = format!("S {axis}?");
        let payload = self.command(&command)?;
        protocol::parse_speed(&payload, axis).ok_or_else(|| {
            protocol::garbled(
                &format!(":A {payload}"),
                &command,
                &self.who,
                "expected AXIS=speed",
            )
        })
    }

    /// Sets the speed of every axis, mm/s.
    pub(crate) fn set_speed(&self, speed: f64) -> Result<()> {
        if !speed.is_finite() || speed < MIN_SPEED_MM_S || speed > self.max_speed_mm_s {
            return Err(DeviceError::out_of_range(format!(
                "{}: speed {speed} mm/s is outside {MIN_SPEED_MM_S}..={} mm/s",
                self.who, self.max_speed_mm_s
            )));
        }
        let assignments: Vec<String> = self
            .letters
            .iter()
            .map(|axis| format!("{axis}={speed:.6}"))
            .collect();
        self.acknowledged(&format!("S {}", assignments.join(" ")), None)
    }

    /// The speed property's spec.
    pub(crate) fn speed_spec(&self) -> PropertySpec {
        PropertySpec::float("speed_mm_s", MIN_SPEED_MM_S, self.max_speed_mm_s)
            .unit("mm/s")
            .describe("Maximum speed of moves (the controller may clamp it to its own maximum)")
    }

    /// Checks a property write against `specs` and returns the value in the spec's type.
    pub(crate) fn check_write(
        &self,
        specs: &[PropertySpec],
        name: &str,
        value: &Value,
    ) -> Result<Value> {
        microscoped_driver_api::check_write(specs, name, value, &self.who)
    }

    /// The error for a property we do not have.
    pub(crate) fn unknown_property(&self, specs: &[PropertySpec], name: &str) -> DeviceError {
        microscoped_driver_api::unknown_property(specs, name, &self.who)
    }
}

/// Shared setting checks; each returns the offending key.
pub(crate) mod check {
    /// A setting error: the key and what is wrong.
    pub(crate) use microscoped_driver_api::SettingError;

    /// An ASI axis letter: one ASCII letter A-Z.
    pub(crate) fn axis(key: &'static str, value: &str) -> Result<char, SettingError> {
        let mut chars = value.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii_uppercase() => Ok(c),
            _ => Err(SettingError::new(
                key,
                format!("must be one upper-case axis letter A-Z, got {value:?}"),
            )),
        }
    }

    /// A Tiger card address.
    pub(crate) fn card(value: Option<char>) -> Result<(), SettingError> {
        match value {
            None | Some('1'..='9') => Ok(()),
            Some(c) => Err(SettingError::new(
                "card",
                format!("must be a Tiger card address \"1\" to \"9\", got {c:?}"),
            )),
        }
    }

    /// A travel [min, max] in um.
    pub(crate) fn travel(key: &'static str, value: [f64; 2]) -> Result<(), SettingError> {
        let [min, max] = value;
        if !min.is_finite() || !max.is_finite() || min >= max {
            return Err(SettingError::new(
                key,
                format!("must be [min, max] um with min < max, got [{min}, {max}]"),
            ));
        }
        Ok(())
    }

    /// The speed settings.
    pub(crate) fn speeds(speed: Option<f64>, max: f64) -> Result<(), SettingError> {
        if !(super::MIN_SPEED_MM_S..=super::SPEED_CEILING_MM_S).contains(&max) {
            return Err(SettingError::new(
                "max_speed_mm_s",
                format!(
                    "must be {}..={} mm/s, got {max}",
                    super::MIN_SPEED_MM_S,
                    super::SPEED_CEILING_MM_S
                ),
            ));
        }
        if let Some(s) = speed {
            if !s.is_finite() || s < super::MIN_SPEED_MM_S || s > max {
                return Err(SettingError::new(
                    "speed_mm_s",
                    format!(
                        "must be {}..={max} mm/s (max_speed_mm_s), got {s}",
                        super::MIN_SPEED_MM_S
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The HOME acknowledgement timeout.
    pub(crate) fn home_timeout(ms: u64) -> Result<(), SettingError> {
        if !(1..=600_000).contains(&ms) {
            return Err(SettingError::new(
                "home_timeout_ms",
                format!("must be 1 to 600000 ms, got {ms}"),
            ));
        }
        Ok(())
    }
}
