//! The frame ring buffer: slots preallocated when an acquisition starts, one producer (the camera
//! thread, writing straight into a slot), one lossless consumer (the storage writer) and any
//! number of lossy consumers (live view: they copy the newest frame and may skip). Live mode
//! uses a ring of a few slots with no writer ([`FrameRing::for_viewing`]).
//!
//! The slots live in one anonymous memory mapping of the ring's own, unmapped when the ring is
//! dropped, so an acquisition's memory goes back to the system when it ends whatever the
//! allocator does with freed blocks (glibc raises its mmap threshold to the size of the first
//! large block freed, after which slots come from the heap and freed rings stay in the
//! process).
//!
//! The producer never waits for the writer: when every slot holds a frame the writer has not
//! taken yet, the overflow policy decides. `Drop` takes the camera's frame into a scratch slot and
//! counts it dropped (the camera can't wait); `Stop` ends the acquisition. Nothing is ever
//! cleared wholesale: every frame that enters is written, or counted dropped, so
//! `received == written + dropped` once the ring is drained.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, RwLock};
use std::time::Instant;

use memmap2::{MmapMut, MmapOptions};
use microscoped_driver_api::FrameShape;

/// What to do when the writer falls behind and every slot is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverflowPolicy {
    /// Drop the newest frame and count it.
    Drop,
    /// End the acquisition with an error.
    Stop,
}

/// Where a frame sits in an acquisition: time point, stage position, channel, z slice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AcqIndex {
    /// Time point.
    pub t: u32,
    /// Stage position.
    pub p: u32,
    /// Channel.
    pub c: u32,
    /// Z slice.
    pub z: u32,
}

/// Stage coordinates at the time of a frame, as far as they are known.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageCoords {
    /// X in micrometres.
    pub x_um: Option<f64>,
    /// Y in micrometres.
    pub y_um: Option<f64>,
    /// Z in micrometres.
    pub z_um: Option<f64>,
}

/// Metadata that travels with a frame through the ring.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FrameMeta {
    /// The ring's own sequence number: 0 for the first frame stored in this ring.
    pub seq: u64,
    /// The camera's frame counter.
    pub camera_seq: u64,
    /// The camera's timestamp, microseconds on its own clock.
    pub camera_timestamp_us: u64,
    /// Host monotonic time of arrival, seconds since the ring was made.
    pub host_time_s: f64,
    /// Exposure in milliseconds.
    pub exposure_ms: f64,
    /// Stage positions.
    pub stage: StageCoords,
    /// The power each light source emitted, read back from it, in mW (see
    /// [`crate::storage::PlaneMeta::light_mw`]).
    pub light_mw: [Option<f32>; crate::storage::MAX_LIGHTS],
    /// The acquisition index.
    pub index: AcqIndex,
}

/// One preallocated frame buffer and the metadata of the frame in it.
pub struct Slot {
    /// Where the frame's bytes start, in the ring's mapping: `len` bytes that belong to this
    /// slot alone.
    pixels: NonNull<u8>,
    /// Bytes of one frame, row-major.
    len: usize,
    /// The frame's metadata.
    pub meta: FrameMeta,
}

// SAFETY: a slot is a pointer to `len` bytes no other slot shares, in a mapping that outlives
// it (the ring owns both and hands out slots only by reference); who reads and writes them is
// decided by the `RwLock` or `Mutex` around the slot, as for any owned buffer.
unsafe impl Send for Slot {}
// SAFETY: as above; `&Slot` only reads.
unsafe impl Sync for Slot {}

impl Slot {
    /// The frame's bytes, row-major.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `pixels` points to `len` initialised (zero-filled at least) bytes of the
        // ring's mapping, alive as long as the ring that lends out `&self`.
        unsafe { std::slice::from_raw_parts(self.pixels.as_ptr(), self.len) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` (the slot's write lock) makes them ours alone.
        unsafe { std::slice::from_raw_parts_mut(self.pixels.as_ptr(), self.len) }
    }
}

/// The frame counters of a ring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingCounters {
    /// Frames that came from the camera (including those lost before reaching the ring).
    pub received: u64,
    /// Frames the lossless consumer finished with.
    pub written: u64,
    /// Frames dropped: ring full, lost by the camera, or left unwritten when the writer failed.
    pub dropped: u64,
    /// Of `dropped`, the frames the camera took but never delivered (its own buffer overflowed
    /// because the host read too late): a sign of a busy host rather than a slow disk.
    pub lost_in_camera: u64,
    /// Frames in the ring waiting for the writer.
    pub pending: u64,
}

/// What became of a frame the producer offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Produced {
    /// Stored in a slot for the writer.
    Stored,
    /// The ring was full and the policy is `Drop`: taken from the camera and counted dropped.
    Dropped,
    /// The ring was full and the policy is `Stop`: the frame was read, counted dropped, and
    /// the acquisition must end.
    Full,
    /// The ring no longer accepts frames (closed or abandoned).
    Closed,
}

#[derive(Debug, Default)]
struct Cursor {
    /// Sequence number of the next frame to store.
    head: u64,
    /// Sequence number of the next frame the writer takes.
    tail: u64,
    /// No more frames will be stored.
    closed: bool,
}

/// The ring buffer.
pub struct FrameRing {
    /// The shape every slot is sized for.
    shape: FrameShape,
    /// The memory of every slot and of the scratch slot, mapped for this ring alone and
    /// unmapped when it is dropped. Only the slots' pointers reach into it.
    _memory: MmapMut,
    /// The slots. A slot's lock is write-held only by the producer filling it, read-held by the
    /// writer and live consumers; the cursor guarantees the producer never wants a slot the
    /// writer still has to take.
    slots: Box<[RwLock<Slot>]>,
    /// Where a frame goes when the ring is full under the `Drop` policy: the camera still has
    /// to be read, and reading it must not allocate.
    scratch: Mutex<Slot>,
    /// Head, tail and closed. A std mutex: held only for a few instructions, never across I/O.
    cursor: Mutex<Cursor>,
    /// Wakes the writer when a frame is stored or the ring closes.
    available: Condvar,
    /// The overflow policy.
    policy: OverflowPolicy,
    /// Whether a lossless consumer (the writer) takes every frame. A ring for viewing only
    /// (live mode) has none: each frame is free as soon as a newer one is stored.
    writer: bool,
    /// Frames that came from the camera.
    received: AtomicU64,
    /// Frames written by the lossless consumer.
    written: AtomicU64,
    /// Frames dropped.
    dropped: AtomicU64,
    /// Of those, frames lost before they reached the ring.
    lost_in_camera: AtomicU64,
    /// When the ring was made: frame arrival times are measured from here.
    epoch: Instant,
}

/// Anonymous memory of `len` bytes (not 0), every page mapped in.
///
/// Pages a camera meets for the first time fault in while it writes: thousands of faults on
/// the first pass through the ring, late enough to lose frames. Mapped in now, they are
/// already there. Asked for in transparent huge pages where the kernel has them (THP is
/// commonly `madvise`-only): 2 MiB pages make mapping in and giving back a ring hundreds of
/// times fewer page operations, which also shortens how long they hold the process's memory
/// map lock against other threads' faults, and the frame copies miss the TLB less. Where the
/// kernel cannot populate on request (before Linux 5.14), `MAP_POPULATE` does it with small
/// pages.
fn map_populated(len: usize) -> io::Result<MmapMut> {
    #[cfg(target_os = "linux")]
    {
        let memory = MmapOptions::new().len(len).map_anon()?;
        // Advice only: a kernel without THP keeps small pages and the ring works the same.
        let _ = memory.advise(memmap2::Advice::HugePage);
        if memory.advise(memmap2::Advice::PopulateWrite).is_ok() {
            return Ok(memory);
        }
    }
    MmapOptions::new().len(len).populate().map_anon()
}

impl FrameRing {
    /// A ring for frames of `shape`, with as many slots as fit in `budget_bytes` beside the
    /// scratch slot, but at least `min_slots` (and at least 2, so live consumers and the
    /// producer never want one slot). Every page is mapped in here (`MAP_POPULATE`), so this
    /// takes time in proportion to the budget: call it off the async runtime. Fails when the
    /// system will not map that much memory.
    pub fn new(
        shape: FrameShape,
        budget_bytes: u64,
        min_slots: usize,
        policy: OverflowPolicy,
    ) -> io::Result<Self> {
        let count = Self::slot_count(shape, budget_bytes, min_slots);
        let len = shape.bytes();
        let total = len
            .checked_mul(count + 1)
            .ok_or_else(|| io::Error::other("the frame ring would not fit in the address space"))?;
        let mut memory = map_populated(total.max(1))?;
        let base = NonNull::new(memory.as_mut_ptr()).expect("a mapping is never at address 0");
        let slot = |i: usize| Slot {
            // SAFETY: `i <= count`, so `[i * len, (i + 1) * len)` lies within the mapping.
            pixels: unsafe { base.add(i * len) },
            len,
            meta: FrameMeta::default(),
        };
        let slots = (0..count).map(|i| RwLock::new(slot(i))).collect();
        Ok(Self {
            shape,
            slots,
            scratch: Mutex::new(slot(count)),
            _memory: memory,
            cursor: Mutex::new(Cursor::default()),
            available: Condvar::new(),
            policy,
            writer: true,
            received: AtomicU64::new(0),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            lost_in_camera: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// A ring for viewing only (live mode: the camera runs, nothing is written): `slots`
    /// slots (at least 2) and no lossless consumer, so the camera never finds it full and
    /// viewers take the newest frame. Its counters count frames received; none is written or
    /// dropped.
    pub fn for_viewing(shape: FrameShape, slots: usize) -> io::Result<Self> {
        Ok(Self {
            writer: false,
            ..Self::new(shape, 0, slots, OverflowPolicy::Drop)?
        })
    }

    /// How many slots a ring for `shape` gets from a budget: what fits beside the scratch
    /// slot (so the budget is all the ring takes), but at least `min_slots` and 2.
    pub fn slot_count(shape: FrameShape, budget_bytes: u64, min_slots: usize) -> usize {
        let by_budget = (budget_bytes / (shape.bytes().max(1) as u64)).saturating_sub(1);
        (by_budget as usize).max(min_slots).max(2)
    }

    /// Bytes a ring of `slots` slots for `shape` takes, its scratch slot included.
    pub fn bytes_for(shape: FrameShape, slots: usize) -> u64 {
        (slots as u64 + 1) * shape.bytes() as u64
    }

    /// The frame shape.
    pub fn shape(&self) -> FrameShape {
        self.shape
    }

    /// The number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Seconds since the ring was made, for frame arrival times.
    pub fn now_s(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    fn cursor(&self) -> std::sync::MutexGuard<'_, Cursor> {
        self.cursor.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offers the next camera frame. `fill` writes the pixels into the buffer it is given and
    /// returns the frame's metadata (its `seq` is set by the ring). An error from `fill` means no
    /// frame came: nothing is counted.
    pub fn produce<E>(
        &self,
        fill: impl FnOnce(&mut [u8]) -> Result<FrameMeta, E>,
    ) -> Result<Produced, E> {
        let (head, full) = {
            let c = self.cursor();
            if c.closed {
                return Ok(Produced::Closed);
            }
            (c.head, c.head - c.tail >= self.slots.len() as u64)
        };
        if full {
            return self.produce_when_full(fill);
        }
        {
            let mut slot = self.slot(head).write().unwrap_or_else(|e| e.into_inner());
            let mut meta = fill(slot.bytes_mut())?;
            meta.seq = head;
            slot.meta = meta;
        }
        self.received.fetch_add(1, Ordering::Relaxed);
        self.publish(head)
    }

    /// The ring looked full: the camera is read anyway (it can't wait), into the scratch slot,
    /// and only then, with the frame in hand, is the policy applied. The writer may have freed
    /// a slot while the frame was exposed; then the frame is stored after all.
    fn produce_when_full<E>(
        &self,
        fill: impl FnOnce(&mut [u8]) -> Result<FrameMeta, E>,
    ) -> Result<Produced, E> {
        let mut scratch = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let meta = fill(scratch.bytes_mut())?;
        self.received.fetch_add(1, Ordering::Relaxed);
        let (head, full, closed) = {
            let c = self.cursor();
            (c.head, c.head - c.tail >= self.slots.len() as u64, c.closed)
        };
        if !full && !closed {
            let mut slot = self.slot(head).write().unwrap_or_else(|e| e.into_inner());
            slot.bytes_mut().copy_from_slice(scratch.bytes());
            slot.meta = FrameMeta { seq: head, ..meta };
            drop(slot);
            return self.publish(head);
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
        Ok(match (closed, self.policy) {
            (true, _) => Produced::Closed,
            (false, OverflowPolicy::Drop) => Produced::Dropped,
            (false, OverflowPolicy::Stop) => Produced::Full,
        })
    }

    fn slot(&self, seq: u64) -> &RwLock<Slot> {
        &self.slots[(seq % self.slots.len() as u64) as usize]
    }

    /// Makes the frame in slot `head` visible to the consumers.
    fn publish<E>(&self, head: u64) -> Result<Produced, E> {
        let mut c = self.cursor();
        if c.closed {
            // The ring was closed or abandoned while the camera filled the slot: nobody will
            // write this frame. A ring for viewing writes none, so it drops none either.
            if self.writer {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(Produced::Closed);
        }
        c.head = head + 1;
        if !self.writer {
            // Nobody writes: the frame is the viewers' to take or skip, never in the way.
            c.tail = c.head;
        }
        drop(c);
        self.available.notify_all();
        Ok(Produced::Stored)
    }

    /// Whether a frame offered now would get a slot without applying the overflow policy.
    pub fn has_space(&self) -> bool {
        let c = self.cursor();
        c.closed || c.head - c.tail < self.slots.len() as u64
    }

    /// Counts frames the camera took but never delivered (a gap in its frame counter).
    pub fn count_lost(&self, frames: u64) {
        self.received.fetch_add(frames, Ordering::Relaxed);
        self.dropped.fetch_add(frames, Ordering::Relaxed);
        self.lost_in_camera.fetch_add(frames, Ordering::Relaxed);
    }

    /// Waits for the next frame in order and hands it to `write`; the slot is released once
    /// `write` returns. A frame `write` fails on is counted dropped: it never reached the file.
    /// Returns `None` once the ring is closed and drained.
    pub fn consume<E>(&self, write: impl FnOnce(&Slot) -> Result<(), E>) -> Option<Result<(), E>> {
        let tail = {
            let mut c = self.cursor();
            while c.tail == c.head && !c.closed {
                c = self.available.wait(c).unwrap_or_else(|e| e.into_inner());
            }
            if c.tail == c.head {
                return None;
            }
            c.tail
        };
        let result = {
            let slot = self.slot(tail).read().unwrap_or_else(|e| e.into_inner());
            write(&slot)
        };
        let mut c = self.cursor();
        // An abandon() while we wrote has already counted this frame dropped.
        if c.tail == tail {
            c.tail = tail + 1;
            let counter = if result.is_ok() {
                &self.written
            } else {
                &self.dropped
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Some(result)
    }

    /// Copies the newest frame into `out` if it is newer than `after` (a `seq + 1`, or 0 for
    /// none yet) and returns its metadata. Never waits for the writer or the camera beyond one
    /// copy. `out` is resized only when the shape differs from what it held.
    pub fn latest(&self, after: u64, out: &mut Vec<u8>) -> Option<FrameMeta> {
        let head = self.cursor().head;
        if head == 0 || head <= after {
            return None;
        }
        let slot = self
            .slot(head - 1)
            .read()
            .unwrap_or_else(|e| e.into_inner());
        out.clear();
        out.extend_from_slice(slot.bytes());
        Some(slot.meta)
    }

    /// No more frames will be stored; the writer drains what is there.
    pub fn close(&self) {
        self.cursor().closed = true;
        self.available.notify_all();
    }

    /// The writer has failed: no more frames are stored, and those still waiting are counted
    /// dropped, since they will never be written.
    pub fn abandon(&self) {
        let mut c = self.cursor();
        c.closed = true;
        let waiting = c.head - c.tail;
        c.tail = c.head;
        self.dropped.fetch_add(waiting, Ordering::Relaxed);
        drop(c);
        self.available.notify_all();
    }

    /// The counters now.
    pub fn counters(&self) -> RingCounters {
        let c = self.cursor();
        RingCounters {
            received: self.received.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            lost_in_camera: self.lost_in_camera.load(Ordering::Relaxed),
            pending: c.head - c.tail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use microscoped_driver_api::PixelType;
    use std::sync::Arc;
    use std::time::Duration;

    const SHAPE: FrameShape = FrameShape {
        width: 8,
        height: 4,
        pixel_type: PixelType::U16,
    };

    fn frame(n: u64) -> impl FnOnce(&mut [u8]) -> Result<FrameMeta, ()> {
        move |buf| {
            buf.fill((n % 251) as u8);
            Ok(FrameMeta {
                camera_seq: n,
                ..Default::default()
            })
        }
    }

    /// Runs `frames` frames through a ring of `slots` slots with a writer that sleeps `delay`
    /// per frame; returns the camera sequence numbers written and the final counters. A
    /// `paced` producer waits for a free slot before each frame: a camera slower than the
    /// writer, by construction rather than by timing.
    fn run(
        policy: OverflowPolicy,
        slots: usize,
        frames: u64,
        delay: Duration,
        paced: bool,
    ) -> (Vec<u64>, RingCounters, Vec<Produced>) {
        let ring = Arc::new(FrameRing::new(SHAPE, 0, slots, policy).unwrap());
        let writer = {
            let ring = ring.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while let Some(r) = ring.consume(|slot| {
                    std::thread::sleep(delay);
                    // The pixels are the ones the producer wrote for this frame.
                    assert!(slot
                        .bytes()
                        .iter()
                        .all(|&b| b == (slot.meta.camera_seq % 251) as u8));
                    seen.push(slot.meta.camera_seq);
                    Ok::<_, ()>(())
                }) {
                    r.unwrap();
                }
                seen
            })
        };
        let mut outcomes = Vec::new();
        for n in 0..frames {
            while paced && ring.counters().pending >= slots as u64 {
                std::thread::yield_now();
            }
            let o = ring.produce(frame(n)).unwrap();
            outcomes.push(o);
            if o == Produced::Full {
                break;
            }
        }
        ring.close();
        let seen = writer.join().unwrap();
        (seen, ring.counters(), outcomes)
    }

    #[test]
    fn slot_count_follows_budget_and_minimum() {
        // Nine slots and the scratch slot make the budget of ten frames.
        assert_eq!(FrameRing::slot_count(SHAPE, 64 * 10, 2), 9);
        assert_eq!(FrameRing::slot_count(SHAPE, 64 * 10, 16), 16);
        assert_eq!(FrameRing::slot_count(SHAPE, 0, 0), 2);
    }

    #[test]
    fn fast_writer_loses_nothing() {
        let (seen, c, _) = run(OverflowPolicy::Drop, 4, 200, Duration::ZERO, true);
        assert_eq!(seen, (0..200).collect::<Vec<_>>());
        assert_eq!(
            (c.received, c.written, c.dropped, c.pending),
            (200, 200, 0, 0)
        );
    }

    #[test]
    fn slow_writer_with_drop_policy_drops_and_counts() {
        let (seen, c, outcomes) = run(OverflowPolicy::Drop, 3, 40, Duration::from_millis(5), false);
        let dropped = outcomes.iter().filter(|o| **o == Produced::Dropped).count() as u64;
        assert!(
            dropped > 0,
            "a writer 5 ms per frame behind a free-running producer must drop"
        );
        assert_eq!(c.received, 40);
        assert_eq!(c.dropped, dropped);
        assert_eq!(c.written, seen.len() as u64);
        assert_eq!(c.received, c.written + c.dropped);
        // What was written is in camera order, with the dropped frames missing.
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn slow_writer_with_stop_policy_stops_at_the_first_frame_with_no_room() {
        let (seen, c, outcomes) = run(OverflowPolicy::Stop, 3, 40, Duration::from_millis(5), false);
        assert_eq!(outcomes.last(), Some(&Produced::Full));
        // The frame that found no room was taken from the camera and is counted.
        assert_eq!(c.dropped, 1);
        assert_eq!(c.received, c.written + 1);
        assert_eq!(seen, (0..c.written).collect::<Vec<_>>());
        assert!(c.written >= 3 && c.written < 40);
    }

    #[test]
    fn abandon_counts_waiting_frames_dropped() {
        let ring = FrameRing::new(SHAPE, 0, 8, OverflowPolicy::Drop).unwrap();
        for n in 0..5 {
            ring.produce(frame(n)).unwrap();
        }
        ring.consume(|_| Ok::<_, ()>(())).unwrap().unwrap();
        // A failed write is a frame that never reached the file.
        ring.consume(|_| Err(())).unwrap().unwrap_err();
        ring.abandon();
        assert_eq!(ring.produce(frame(9)).unwrap(), Produced::Closed);
        assert!(ring.consume(|_| Ok::<_, ()>(())).is_none());
        let c = ring.counters();
        assert_eq!((c.received, c.written, c.dropped, c.pending), (5, 1, 4, 0));
    }

    #[test]
    fn a_frame_that_finds_room_once_it_exists_is_stored() {
        let ring = FrameRing::new(SHAPE, 0, 2, OverflowPolicy::Stop).unwrap();
        ring.produce(frame(0)).unwrap();
        ring.produce(frame(1)).unwrap();
        // Full when the camera is asked; the writer takes a frame while it exposes.
        let o = ring
            .produce(|buf| {
                ring.consume(|_| Ok::<_, ()>(())).unwrap().unwrap();
                frame(2)(buf)
            })
            .unwrap();
        assert_eq!(o, Produced::Stored);
        let mut seen = Vec::new();
        ring.close();
        while let Some(r) = ring.consume(|s| {
            assert!(s
                .bytes()
                .iter()
                .all(|&b| b == (s.meta.camera_seq % 251) as u8));
            seen.push(s.meta.camera_seq);
            Ok::<_, ()>(())
        }) {
            r.unwrap();
        }
        assert_eq!(seen, [1, 2]);
        let c = ring.counters();
        assert_eq!((c.received, c.written, c.dropped), (3, 3, 0));
    }

    #[test]
    fn lost_frames_count_as_received_and_dropped() {
        let ring = FrameRing::new(SHAPE, 0, 2, OverflowPolicy::Drop).unwrap();
        ring.count_lost(3);
        let c = ring.counters();
        assert_eq!((c.received, c.dropped, c.lost_in_camera), (3, 3, 3));
    }

    #[test]
    fn latest_gives_the_newest_frame_once() {
        let ring = FrameRing::new(SHAPE, 0, 4, OverflowPolicy::Drop).unwrap();
        let mut out = Vec::new();
        assert!(ring.latest(0, &mut out).is_none());
        ring.produce(frame(1)).unwrap();
        ring.produce(frame(2)).unwrap();
        let m = ring.latest(0, &mut out).unwrap();
        assert_eq!((m.seq, m.camera_seq), (1, 2));
        assert_eq!(out.len(), SHAPE.bytes());
        assert!(out.iter().all(|&b| b == 2));
        assert!(ring.latest(m.seq + 1, &mut out).is_none());
    }

    /// Found by the property test (`core/tests/ring.rs`): a ring for viewing closed while the
    /// camera filled a slot counted that frame dropped, though such a ring writes nothing.
    #[test]
    fn a_ring_for_viewing_closed_while_a_frame_comes_drops_nothing() {
        let ring = FrameRing::for_viewing(SHAPE, 2).unwrap();
        let o = ring
            .produce(|buf| {
                ring.close();
                frame(0)(buf)
            })
            .unwrap();
        assert_eq!(o, Produced::Closed);
        let c = ring.counters();
        assert_eq!((c.received, c.written, c.dropped, c.pending), (1, 0, 0, 0));
    }

    #[test]
    fn a_ring_for_viewing_never_fills_and_shows_the_newest_frame() {
        let ring = FrameRing::for_viewing(SHAPE, 2).unwrap();
        let mut out = Vec::new();
        for n in 0..10 {
            assert_eq!(ring.produce(frame(n)).unwrap(), Produced::Stored);
        }
        let m = ring.latest(0, &mut out).unwrap();
        assert_eq!(m.camera_seq, 9);
        assert!(out.iter().all(|&b| b == 9));
        let c = ring.counters();
        assert_eq!((c.received, c.written, c.dropped, c.pending), (10, 0, 0, 0));
    }
}
