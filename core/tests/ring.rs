//! Property tests of the frame ring's accounting through its public API.
//!
//! `model`: any sequence of produce (camera frames, some failing to come, some while another
//! party consumes, reads the newest frame, closes or abandons the ring), consume by the lossless
//! writer (some writes failing), live-view reads, frames lost in the camera, close and abandon is
//! run against the ring and against a reference model of what its counters and its writer must
//! see; they are compared after every step. Both overflow policies and the viewing-only ring.
//!
//! `threads`: a camera, a writer and a live viewer on threads of their own, bounded in frames,
//! with the invariants checked once they are done: `received == written + dropped`, the writer
//! sees frames in order with no duplicates and no gap that was not counted, a viewer sees only
//! whole frames, newer each time, and the `Stop` policy ends rather than drops.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use microscoped_core::ring::{FrameMeta, FrameRing, OverflowPolicy, Produced, RingCounters, Slot};
use microscoped_driver_api::{FrameShape, PixelType};
use proptest::prelude::*;

const SHAPE: FrameShape = FrameShape {
    width: 8,
    height: 2,
    pixel_type: PixelType::U16,
};

/// Writes camera frame `n` into a slot: its number, then a byte derived from it, so a reader
/// can tell from the pixels alone which frame it holds and that it is whole.
fn fill(n: u64, buf: &mut [u8]) -> FrameMeta {
    buf[..8].copy_from_slice(&n.to_le_bytes());
    buf[8..].fill((n % 251) as u8);
    FrameMeta {
        camera_seq: n,
        ..Default::default()
    }
}

/// The camera frame a buffer holds, checked to be whole and to match its metadata.
fn frame_in(bytes: &[u8], meta: &FrameMeta) -> u64 {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    assert_eq!(
        n, meta.camera_seq,
        "pixels of frame {n} under the metadata of another"
    );
    assert!(
        bytes[8..].iter().all(|&b| b == (n % 251) as u8),
        "frame {n} is torn"
    );
    n
}

fn seen(slot: &Slot) -> u64 {
    frame_in(slot.bytes(), &slot.meta)
}

/// What the ring is made for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// An acquisition's ring: a lossless writer and this overflow policy.
    Writer(OverflowPolicy),
    /// Live mode's ring: viewers only.
    Viewing,
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        Just(Mode::Writer(OverflowPolicy::Drop)),
        Just(Mode::Writer(OverflowPolicy::Stop)),
        Just(Mode::Viewing),
    ]
}

/// What another party does while the camera fills a buffer.
#[derive(Debug, Clone, Copy)]
enum During {
    Consume { write_ok: bool },
    Latest,
    Close,
    Abandon,
}

#[derive(Debug, Clone)]
enum Op {
    /// The camera offers its next frame; `fill_ok: false` is a camera that gave none.
    Produce {
        fill_ok: bool,
        during: Option<During>,
    },
    /// The writer takes the next frame (if there is one: it would wait otherwise).
    Consume {
        write_ok: bool,
    },
    /// A live viewer asks for a frame newer than the last it saw, or (`fresh`) any.
    Latest {
        fresh: bool,
    },
    /// The camera's own buffer lost frames.
    CountLost(u64),
    Close,
    Abandon,
}

fn during() -> impl Strategy<Value = During> {
    prop_oneof![
        any::<bool>().prop_map(|write_ok| During::Consume { write_ok }),
        Just(During::Latest),
        Just(During::Close),
        Just(During::Abandon),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        // Mostly frames and writes, so rings fill, drain and wrap around.
        8 => (prop::bool::weighted(0.9), prop::option::weighted(0.2, during()))
            .prop_map(|(fill_ok, during)| Op::Produce { fill_ok, during }),
        6 => prop::bool::weighted(0.9).prop_map(|write_ok| Op::Consume { write_ok }),
        2 => any::<bool>().prop_map(|fresh| Op::Latest { fresh }),
        1 => (1u64..4).prop_map(Op::CountLost),
        1 => Just(Op::Close),
        1 => Just(Op::Abandon),
    ]
}

/// What the ring must have done: the reference the ring is compared with after each step.
#[derive(Debug)]
struct Model {
    slots: u64,
    mode: Mode,
    head: u64,
    tail: u64,
    closed: bool,
    received: u64,
    written: u64,
    dropped: u64,
    lost_in_camera: u64,
    /// Camera frames waiting for the writer, oldest first.
    waiting: VecDeque<u64>,
    /// The camera frame of each stored frame, by the ring's sequence number.
    stored: Vec<u64>,
    /// The camera frames the writer was handed, in order (written or failed).
    handed: Vec<u64>,
    /// The newest ring sequence number a viewer saw, plus one.
    viewer_after: u64,
}

impl Model {
    fn new(mode: Mode, slots: u64) -> Self {
        Model {
            slots,
            mode,
            head: 0,
            tail: 0,
            closed: false,
            received: 0,
            written: 0,
            dropped: 0,
            lost_in_camera: 0,
            waiting: VecDeque::new(),
            stored: Vec::new(),
            handed: Vec::new(),
            viewer_after: 0,
        }
    }

    fn pending(&self) -> u64 {
        self.head - self.tail
    }

    fn counters(&self) -> RingCounters {
        RingCounters {
            received: self.received,
            written: self.written,
            dropped: self.dropped,
            lost_in_camera: self.lost_in_camera,
            pending: self.pending(),
        }
    }

    /// Whether the writer's `consume` would return now rather than wait for a frame.
    fn consume_returns(&self) -> bool {
        self.pending() > 0 || self.closed
    }

    fn store(&mut self, n: u64) -> Produced {
        self.stored.push(n);
        self.head += 1;
        self.received += 1;
        if matches!(self.mode, Mode::Writer(_)) {
            self.waiting.push_back(n);
        } else {
            self.tail = self.head;
        }
        Produced::Stored
    }

    fn abandon(&mut self) {
        self.closed = true;
        self.dropped += self.pending();
        self.waiting.clear();
        self.tail = self.head;
    }
}

/// Runs one consume on the ring and the model and checks they agree.
fn consume(ring: &FrameRing, m: &mut Model, write_ok: bool) {
    let mut got = None;
    let r = ring.consume(|slot| {
        got = Some(seen(slot));
        if write_ok {
            Ok(())
        } else {
            Err(())
        }
    });
    match m.waiting.pop_front() {
        None => {
            assert!(
                r.is_none(),
                "consume on a closed, drained ring returned a frame"
            );
            assert!(got.is_none());
        }
        Some(n) => {
            assert_eq!(got, Some(n), "the writer was not handed the oldest frame");
            assert_eq!(r.unwrap().is_ok(), write_ok);
            m.handed.push(n);
            m.tail += 1;
            if write_ok {
                m.written += 1;
            } else {
                m.dropped += 1;
            }
        }
    }
}

/// Runs one live-view read on the ring and the model and checks they agree.
fn latest(ring: &FrameRing, m: &mut Model, fresh: bool) {
    let after = if fresh { 0 } else { m.viewer_after };
    let mut out = Vec::new();
    let got = ring.latest(after, &mut out);
    if m.head == 0 || m.head <= after {
        assert!(got.is_none(), "a viewer got a frame it had seen: {got:?}");
        return;
    }
    let meta = got.expect("a viewer got no frame though a newer one was stored");
    assert_eq!(meta.seq, m.head - 1, "not the newest frame");
    assert_eq!(frame_in(&out, &meta), m.stored[meta.seq as usize]);
    m.viewer_after = meta.seq + 1;
}

/// Runs what another party does while the camera fills a buffer.
fn run_during(ring: &FrameRing, m: &mut Model, d: During) {
    match d {
        // The writer would wait for a frame while the camera holds the next one: not a step
        // that can happen in between.
        During::Consume { write_ok } if m.consume_returns() => consume(ring, m, write_ok),
        During::Consume { .. } => {}
        During::Latest => latest(ring, m, true),
        During::Close => {
            ring.close();
            m.closed = true;
        }
        During::Abandon => {
            ring.abandon();
            m.abandon();
        }
    }
}

/// One frame offered by the camera: the ring against the model's expectation. Returns what
/// became of it (`None`: the camera gave no frame).
fn produce(
    ring: &FrameRing,
    m: &mut Model,
    n: u64,
    fill_ok: bool,
    d: Option<During>,
) -> Option<Produced> {
    let (closed, full) = (m.closed, m.pending() >= m.slots);
    let mut filled = false;
    let r = ring.produce(|buf| {
        filled = true;
        if let Some(d) = d {
            run_during(ring, m, d);
        }
        if fill_ok {
            Ok(fill(n, buf))
        } else {
            Err(())
        }
    });
    if closed {
        // A closed ring does not take the frame from the camera: nothing is lost silently,
        // since nothing was taken.
        assert!(!filled, "a closed ring read the camera");
        assert_eq!(r, Ok(Produced::Closed));
        return Some(Produced::Closed);
    }
    assert!(filled, "an open ring did not read the camera");
    if !fill_ok {
        assert_eq!(r, Err(()), "a frame that never came was counted");
        return None;
    }
    let expected = if !full && !m.closed {
        m.store(n)
    } else if !full {
        // Closed while the camera filled the slot: taken, so counted dropped (by a ring that
        // has a writer: a ring for viewing counts frames received only).
        m.received += 1;
        m.dropped += u64::from(matches!(m.mode, Mode::Writer(_)));
        Produced::Closed
    } else {
        m.received += 1;
        if m.pending() < m.slots && !m.closed {
            // The writer made room while the camera exposed.
            m.received -= 1;
            m.store(n)
        } else {
            m.dropped += 1;
            match (m.closed, m.mode) {
                (true, _) => Produced::Closed,
                (false, Mode::Writer(OverflowPolicy::Stop)) => Produced::Full,
                (false, _) => Produced::Dropped,
            }
        }
    };
    assert_eq!(r, Ok(expected));
    Some(expected)
}

proptest! {
    // A failing case is kept as a plain test below, not in a regressions file.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(512)
    })]

    #[test]
    fn model(
        mode in mode(),
        slots in 2usize..6,
        ops in prop::collection::vec(op(), 0..80),
    ) {
        let ring = match mode {
            Mode::Writer(policy) => FrameRing::new(SHAPE, 0, slots, policy).expect("a small ring maps"),
            Mode::Viewing => FrameRing::for_viewing(SHAPE, slots).expect("a small ring maps"),
        };
        prop_assert_eq!(ring.capacity(), slots);
        let mut m = Model::new(mode, slots as u64);
        let mut next_frame = 0u64;
        let mut outcomes = Vec::new();
        for op in ops {
            match op {
                Op::Produce { fill_ok, during } => {
                    let n = next_frame;
                    next_frame += 1;
                    let produced = produce(&ring, &mut m, n, fill_ok, during);
                    outcomes.extend(produced);
                    if produced == Some(Produced::Full) {
                        // The engine ends the run at the first frame with no room: the ring
                        // is closed and the writer drains what it holds.
                        ring.close();
                        m.closed = true;
                    }
                }
                Op::Consume { write_ok } if matches!(mode, Mode::Writer(_)) && m.consume_returns() => {
                    consume(&ring, &mut m, write_ok);
                }
                Op::Consume { .. } => {}
                Op::Latest { fresh } => latest(&ring, &mut m, fresh),
                Op::CountLost(k) => {
                    ring.count_lost(k);
                    m.received += k;
                    m.dropped += k;
                    m.lost_in_camera += k;
                }
                Op::Close => {
                    ring.close();
                    m.closed = true;
                }
                Op::Abandon => {
                    ring.abandon();
                    m.abandon();
                }
            }
            prop_assert_eq!(ring.counters(), m.counters());
            if matches!(mode, Mode::Writer(_)) {
                prop_assert_eq!(m.received, m.written + m.dropped + m.pending());
            }
        }

        // Drained: every frame that came is written or counted dropped.
        ring.close();
        m.closed = true;
        if matches!(mode, Mode::Writer(_)) {
            while m.pending() > 0 {
                consume(&ring, &mut m, true);
            }
            consume(&ring, &mut m, true);
        }
        let c = ring.counters();
        prop_assert_eq!(c, m.counters());
        prop_assert_eq!(c.pending, 0);
        match mode {
            Mode::Writer(policy) => {
                prop_assert_eq!(c.received, c.written + c.dropped);
                // In order, no frame twice, and every stored frame the writer was not handed
                // was counted when the ring was abandoned.
                prop_assert!(m.handed.windows(2).all(|w| w[0] < w[1]), "{:?}", m.handed);
                prop_assert_eq!(&m.stored[..m.handed.len()], &m.handed[..]);
                let count = |o: Produced| outcomes.iter().filter(|&&x| x == o).count();
                match policy {
                    // Stop ends rather than drops: the one frame that found no room, then
                    // nothing more is taken from the camera.
                    OverflowPolicy::Stop => {
                        prop_assert_eq!(count(Produced::Dropped), 0);
                        prop_assert!(count(Produced::Full) <= 1);
                        if let Some(i) = outcomes.iter().position(|&o| o == Produced::Full) {
                            prop_assert!(outcomes[i + 1..].iter().all(|&o| o == Produced::Closed));
                        }
                    }
                    OverflowPolicy::Drop => prop_assert_eq!(count(Produced::Full), 0),
                }
            }
            Mode::Viewing => {
                // Nobody writes and the camera never finds the ring full.
                prop_assert_eq!((c.written, c.dropped - c.lost_in_camera), (0, 0));
            }
        }
    }
}

/// What the camera thread saw of its frames.
#[derive(Debug, Default)]
struct Camera {
    /// Frames stored, in order.
    stored: Vec<u64>,
    /// Frames taken from the camera but dropped (ring full under `Drop`, or closed meanwhile).
    dropped: u64,
    /// Outcomes `Full`: the `Stop` policy's end.
    full: u64,
    /// Outcomes `Dropped`.
    dropped_by_policy: u64,
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(48)
    })]

    /// A camera, a writer and a viewer on threads of their own; the writer fails the writes
    /// `failures` lists and gives up (abandons the ring) after `give_up_after` frames if set.
    #[test]
    fn threads(
        policy in prop_oneof![Just(OverflowPolicy::Drop), Just(OverflowPolicy::Stop)],
        slots in 2usize..6,
        frames in 1u64..300,
        failures in prop::collection::btree_set(0u64..300, 0..10),
        give_up_after in prop::option::weighted(0.25, 0u64..300),
        paced in any::<bool>(),
    ) {
        let ring = Arc::new(FrameRing::new(SHAPE, 0, slots, policy).expect("a small ring maps"));
        let done = Arc::new(AtomicBool::new(false));
        let writer = {
            let ring = ring.clone();
            std::thread::spawn(move || {
                let (mut handed, mut written) = (Vec::new(), 0u64);
                let mut i = 0u64;
                while let Some(r) = ring.consume(|slot| {
                    handed.push(seen(slot));
                    if failures.contains(&i) { Err(()) } else { Ok(()) }
                }) {
                    written += u64::from(r.is_ok());
                    i += 1;
                    if give_up_after == Some(i) {
                        ring.abandon();
                    }
                }
                (handed, written)
            })
        };
        let viewer = {
            let (ring, done) = (ring.clone(), done.clone());
            std::thread::spawn(move || {
                let (mut after, mut out, mut views) = (0u64, Vec::new(), 0u64);
                // Bounded by the camera: it ends when the camera has stopped.
                while !done.load(Ordering::Acquire) {
                    if let Some(meta) = ring.latest(after, &mut out) {
                        assert!(meta.seq + 1 > after, "a viewer went back in time");
                        frame_in(&out, &meta);
                        after = meta.seq + 1;
                        views += 1;
                    }
                    std::thread::yield_now();
                }
                views
            })
        };
        let camera = {
            let ring = ring.clone();
            std::thread::spawn(move || {
                let mut cam = Camera::default();
                for n in 0..frames {
                    while paced && !ring.has_space() {
                        std::thread::yield_now();
                    }
                    let mut filled = false;
                    let r = ring.produce(|buf| {
                        filled = true;
                        Ok::<_, ()>(fill(n, buf))
                    });
                    match r.unwrap() {
                        Produced::Stored => cam.stored.push(n),
                        Produced::Dropped => {
                            cam.dropped += 1;
                            cam.dropped_by_policy += 1;
                        }
                        Produced::Full => {
                            cam.dropped += 1;
                            cam.full += 1;
                            break;
                        }
                        Produced::Closed => {
                            // Taken and then refused (closed meanwhile) counts; refused
                            // before it was taken does not.
                            cam.dropped += u64::from(filled);
                            break;
                        }
                    }
                }
                ring.close();
                cam
            })
        };
        let cam = camera.join().unwrap();
        let (handed, written) = writer.join().unwrap();
        done.store(true, Ordering::Release);
        viewer.join().unwrap();

        let c = ring.counters();
        prop_assert_eq!(c.pending, 0);
        prop_assert_eq!(c.received, c.written + c.dropped);
        prop_assert_eq!(c.written, written);
        prop_assert_eq!(c.received, cam.stored.len() as u64 + cam.dropped);
        // In order, no duplicates, no gap: the writer was handed a prefix of what was stored,
        // and every stored frame it was not handed (it gave up) was counted dropped, as was
        // every failed write.
        prop_assert_eq!(&cam.stored[..handed.len()], &handed[..]);
        let failed = handed.len() as u64 - written;
        let abandoned = (cam.stored.len() - handed.len()) as u64;
        prop_assert_eq!(c.dropped, cam.dropped + failed + abandoned);
        if abandoned > 0 {
            prop_assert!(give_up_after.is_some());
        }
        match policy {
            OverflowPolicy::Stop => {
                prop_assert_eq!(cam.dropped_by_policy, 0, "Stop dropped a frame and went on");
                prop_assert!(cam.full <= 1);
            }
            OverflowPolicy::Drop => prop_assert_eq!(cam.full, 0),
        }
    }
}

#[test]
fn a_frame_stored_while_the_ring_is_abandoned_is_counted_once() {
    // The writer gives up while the camera fills the next slot: the frames waiting and the
    // one being filled are all counted dropped, each once.
    let ring = FrameRing::new(SHAPE, 0, 3, OverflowPolicy::Drop).expect("a small ring maps");
    let mut m = Model::new(Mode::Writer(OverflowPolicy::Drop), 3);
    produce(&ring, &mut m, 0, true, None);
    produce(&ring, &mut m, 1, true, Some(During::Abandon));
    assert_eq!(ring.counters(), m.counters());
    let c = ring.counters();
    assert_eq!((c.received, c.written, c.dropped, c.pending), (2, 0, 2, 0));
}
