//! The scene stamp: what the instrument was doing when a frame was exposed, written into the
//! frame's first pixels, so a test can check that each stored image really came from the
//! settings it was meant to (the right filter, lasers, stage position and exposure), not just
//! that the file has the right shape.
//!
//! Each stamp pixel holds one byte (0..=255), so it survives any bit depth from 8 up. The layout
//! is [`STAMP_PIXELS`] pixels at the start of row 0:
//!
//! | pixels | content |
//! |--------|---------|
//! | 0, 1   | magic `0xA5`, `0x5A` |
//! | 2      | emission filter position + 1 (0: no filter) |
//! | 3      | lasers emitting, bit `i` for the `i`-th simulated laser built |
//! | 4      | 1 when every shutter is open |
//! | 5..9   | stage X in 0.01 µm, `i32` big-endian |
//! | 9..13  | stage Y, same |
//! | 13..17 | focus Z, same |
//! | 17..19 | exposure in 0.1 ms, `u16` big-endian |

use microscoped_driver_api::PixelType;

/// Pixels a stamp takes at the start of the frame.
pub const STAMP_PIXELS: usize = 19;
const MAGIC: [u8; 2] = [0xA5, 0x5A];

/// The scene a frame was exposed in, as read back from its stamp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stamp {
    /// Emission filter position, if there is a filter with passbands.
    pub filter: Option<u32>,
    /// Bit `i` set: the `i`-th simulated laser was emitting.
    pub lasers_on: u8,
    /// Every shutter was open.
    pub shutter_open: bool,
    /// Stage X, µm (0.01 µm resolution).
    pub x_um: f64,
    /// Stage Y, µm.
    pub y_um: f64,
    /// Focus Z, µm.
    pub z_um: f64,
    /// Exposure, ms (0.1 ms resolution).
    pub exposure_ms: f64,
}

impl Stamp {
    fn bytes(&self) -> [u8; STAMP_PIXELS] {
        let mut b = [0u8; STAMP_PIXELS];
        b[..2].copy_from_slice(&MAGIC);
        b[2] = self.filter.map_or(0, |f| (f + 1).min(255) as u8);
        b[3] = self.lasers_on;
        b[4] = u8::from(self.shutter_open);
        for (i, v) in [self.x_um, self.y_um, self.z_um].into_iter().enumerate() {
            let fixed = (v * 100.0).round() as i32;
            b[5 + 4 * i..9 + 4 * i].copy_from_slice(&fixed.to_be_bytes());
        }
        let exposure = (self.exposure_ms * 10.0).round().clamp(0.0, 65535.0) as u16;
        b[17..19].copy_from_slice(&exposure.to_be_bytes());
        b
    }

    /// Writes the stamp over the first pixels of `frame`.
    pub(crate) fn write(&self, frame: &mut [u8], pixel_type: PixelType) {
        for (i, byte) in self.bytes().into_iter().enumerate() {
            match pixel_type {
                PixelType::U8 => {
                    if let Some(p) = frame.get_mut(i) {
                        *p = byte;
                    }
                }
                PixelType::U16 => {
                    if let Some(p) = frame.get_mut(2 * i..2 * i + 2) {
                        p.copy_from_slice(&u16::from(byte).to_le_bytes());
                    }
                }
            }
        }
    }

    /// Reads a stamp from a frame's first pixels (as values, whatever the pixel type); `None`
    /// if they do not hold one.
    pub fn read(pixels: &[u16]) -> Option<Stamp> {
        if pixels.len() < STAMP_PIXELS || pixels[..STAMP_PIXELS].iter().any(|&p| p > 255) {
            return None;
        }
        let b: Vec<u8> = pixels[..STAMP_PIXELS].iter().map(|&p| p as u8).collect();
        if b[..2] != MAGIC {
            return None;
        }
        let fixed = |i: usize| {
            f64::from(i32::from_be_bytes([
                b[5 + 4 * i],
                b[6 + 4 * i],
                b[7 + 4 * i],
                b[8 + 4 * i],
            ])) / 100.0
        };
        Some(Stamp {
            filter: b[2].checked_sub(1).map(u32::from),
            lasers_on: b[3],
            shutter_open: b[4] == 1,
            x_um: fixed(0),
            y_um: fixed(1),
            z_um: fixed(2),
            exposure_ms: f64::from(u16::from_be_bytes([b[17], b[18]])) / 10.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_read_back_in_both_pixel_types() {
        let s = Stamp {
            filter: Some(2),
            lasers_on: 0b101,
            shutter_open: true,
            x_um: -1234.56,
            y_um: 24999.99,
            z_um: 100.5,
            exposure_ms: 50.3,
        };
        let mut f16 = vec![0u8; 64];
        s.write(&mut f16, PixelType::U16);
        let px: Vec<u16> = f16
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(Stamp::read(&px), Some(s));
        let mut f8 = vec![0u8; 32];
        s.write(&mut f8, PixelType::U8);
        let px: Vec<u16> = f8.iter().map(|&b| u16::from(b)).collect();
        assert_eq!(Stamp::read(&px), Some(s));
        assert_eq!(Stamp::read(&[7u16; 32]), None);
    }
}
