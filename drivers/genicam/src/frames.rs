//! Numbering frames from the camera's block ids, so gaps show what was lost.

/// Turns the camera's frame (block) ids into a sequence number counted from 0 at the first frame
/// a sequence delivers. The difference between successive ids is kept, so a frame the camera
/// or network dropped shows as a jump in the sequence.
///
/// GigE Vision 1.x block ids are 16 bits, run 1..=65535 and then wrap to 1 (0 is never used);
/// cameras with extended ids (GigE Vision 2, USB3 Vision) count in 64 bits and never wrap in
/// practice. Both are handled.
#[derive(Debug, Clone, Default)]
pub(crate) struct FrameCounter {
    last_id: Option<u64>,
    sequence: u64,
}

/// The largest 16-bit block id; after it a GigE Vision 1.x camera continues at 1.
const MAX_SHORT_ID: u64 = 0xFFFF;

impl FrameCounter {
    /// The sequence number of the frame with camera id `id`.
    pub(crate) fn sequence_of(&mut self, id: u64) -> u64 {
        if let Some(last) = self.last_id {
            self.sequence += id_step(last, id);
        }
        self.last_id = Some(id);
        self.sequence
    }
}

/// How many frames lie from id `last` to id `id`: 1 for the next frame.
fn id_step(last: u64, id: u64) -> u64 {
    if id > last {
        id - last
    } else if id < last && last <= MAX_SHORT_ID {
        // A 16-bit id wrapped: from `last` up to 65535, then 1..=id.
        MAX_SHORT_ID - last + id
    } else {
        // A repeated id, or a camera that reports no ids (always 0), or an id that went back
        // without a 16-bit wrap: the best guess is the next frame, which keeps the sequence
        // strictly increasing.
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_zero_and_shows_gaps() {
        let mut c = FrameCounter::default();
        assert_eq!(c.sequence_of(65401), 0);
        assert_eq!(c.sequence_of(65402), 1);
        // 65403 failed and was skipped.
        assert_eq!(c.sequence_of(65404), 3);
        assert_eq!(c.sequence_of(65407), 6);
    }

    #[test]
    fn sixteen_bit_ids_wrap_past_zero() {
        let mut c = FrameCounter::default();
        assert_eq!(c.sequence_of(65534), 0);
        assert_eq!(c.sequence_of(65535), 1);
        assert_eq!(c.sequence_of(1), 2);
        assert_eq!(c.sequence_of(2), 3);
        // A wrap with frames lost on both sides: 65534, [65535, 1 lost], 2.
        let mut c = FrameCounter::default();
        c.sequence_of(65534);
        assert_eq!(c.sequence_of(2), 3);
    }

    #[test]
    fn sixty_four_bit_ids_and_missing_ids_still_increase() {
        let mut c = FrameCounter::default();
        assert_eq!(c.sequence_of(1 << 40), 0);
        assert_eq!(c.sequence_of((1 << 40) + 1), 1);
        let mut c = FrameCounter::default();
        assert_eq!(c.sequence_of(0), 0);
        assert_eq!(c.sequence_of(0), 1);
        assert_eq!(c.sequence_of(0), 2);
    }
}
