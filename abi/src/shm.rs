//! One typed view of the shared memory, for both sides. Every word two
//! processes touch is reached here, and only through an atomic with the
//! ordering the header documents:
//!
//! | field | writer | reader | orderings |
//! |---|---|---|---|
//! | `info`, channel names | node, before the memfd is sent | client, after it is received | plain (the socket hand-over orders them) |
//! | `cycle.*` except `lock` | node, each cycle | client | seqlock: relaxed atomics between `lock` odd (relaxed store + release fence) and `lock` even (release store); reader: acquire load, relaxed loads, acquire fence, relaxed load |
//! | `cycle.seq` | node (inside the seqlock) | client | also the futex word the client waits on |
//! | `client.out_frames` | client | node | relaxed, ordered by `done_seq` |
//! | `client.done_seq` | client, after its output half | node | release store / acquire load; futex word in same-cycle mode |
//! | audio halves | by protocol: node writes input half h before publishing it, client writes output half h before `done_seq` | the other side after the acquire | plain copies |
//!
//! The seqlock and the `done_seq` handshake are model-checked with loom,
//! running the code below: `RUSTFLAGS="--cfg loom" cargo test -p
//! asio-bridge-abi --release --test loom` (a step of `cargo xtask test`).
//! Under `cfg(loom)` the shared words live in loom's atomics (`Words`),
//! since loom cannot see accesses to memory it did not allocate; nothing
//! else changes.
//!
//! Sequence numbers wrap: `seq_after` compares them by the sign of their
//! difference, which is right across the wrap as long as two compared seqs
//! are less than 2^31 cycles apart (about 1.4 years at 48 kHz and 1 frame).
//!
//! A hostile client can write any bytes into the mapping at any time. The
//! node never reads the cycle record back, never trusts the seqlock word it
//! writes (it keeps its own copy), and clamps every value it reads
//! (`out_frames`), so the worst a client can do is garble its own audio.

use crate::{
    asio_bridge_client, asio_bridge_cycle, asio_bridge_info, asio_bridge_shm, Direction, Layout, LayoutError, Mapping,
    ASIO_BRIDGE_CHANNEL_NAME_LEN,
};
use core::{
    ffi::c_char,
    mem::{offset_of, size_of},
    sync::atomic::Ordering,
};
#[cfg(not(loom))]
use core::sync::atomic::{fence, AtomicU32, AtomicU64};
#[cfg(loom)]
use loom::sync::atomic::{fence, AtomicU32, AtomicU64};

/// Whether sequence number `a` is later than `b`, correct across the wrap.
pub const fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// The mapping and its validated geometry.
pub struct Shm {
    map: Mapping,
    layout: Layout,
    #[cfg(loom)]
    words: Words,
}

const CYCLE: usize = offset_of!(asio_bridge_shm, cycle);
const CLIENT: usize = offset_of!(asio_bridge_shm, client);

/// Tries of one seqlock read before a reader gives up on a node that died
/// mid-write (the lock stays odd). A live writer holds it for a dozen stores.
pub const READ_TRIES: u32 = 1000;

impl Shm {
    /// Node side: wraps a fresh zero-filled mapping of `layout.size` bytes
    /// and writes its header. Nothing else may see the memory yet.
    pub fn create(map: Mapping, layout: Layout, info: asio_bridge_info) -> Result<Self, LayoutError> {
        let shm = Self::adopt(map, layout)?;
        // SAFETY: the header lies inside the mapping (checked above), which
        // is page aligned; no other process has the memfd yet.
        unsafe { std::ptr::addr_of_mut!((*shm.raw()).info).write(info) };
        Ok(shm)
    }

    /// Node side: wraps a mapping whose header the node already wrote for
    /// `layout`; only checks that the mapping covers it.
    pub fn adopt(map: Mapping, layout: Layout) -> Result<Self, LayoutError> {
        if map.len() < layout.size || layout.size < size_of::<asio_bridge_shm>() {
            return Err(LayoutError::Truncated { mapped: map.len(), needed: layout.size });
        }
        Ok(Self { map, layout, #[cfg(loom)] words: Words::new() })
    }

    /// Client side: validates the header the node wrote against the bytes
    /// mapped; every offset computed from the result lies inside them.
    pub fn open(map: Mapping) -> Result<Self, LayoutError> {
        if map.len() < size_of::<asio_bridge_shm>() {
            return Err(LayoutError::Truncated { mapped: map.len(), needed: size_of::<asio_bridge_shm>() });
        }
        let shm = Self {
            layout: Layout { n_inputs: 0, n_outputs: 0, max_frames: 0, channel_stride: 0, audio_offset: 0, size: 0 },
            map,
            #[cfg(loom)]
            words: Words::new(),
        };
        let layout = Layout::from_info(&shm.info(), shm.map.len())?;
        Ok(Self { layout, ..shm })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn as_ptr(&self) -> *mut asio_bridge_shm {
        self.raw()
    }

    pub fn into_mapping(self) -> Mapping {
        self.map
    }

    fn raw(&self) -> *mut asio_bridge_shm {
        self.map.as_ptr().cast()
    }

    /// A copy of the header (written once, before the memfd was sent).
    pub fn info(&self) -> asio_bridge_info {
        // SAFETY: inside the mapping (checked at construction); a volatile
        // copy of plain integers, so a peer scribbling on it gives garbage
        // values, which `Layout::from_info` and callers validate, never UB
        // through a reference.
        unsafe { std::ptr::read_volatile(std::ptr::addr_of!((*self.raw()).info)) }
    }

    /// The node's channel name table for one direction, for filling in
    /// before the memfd is sent. `&mut self`: nothing else touches it then.
    pub fn names_mut(&mut self, direction: Direction) -> &mut [[c_char; ASIO_BRIDGE_CHANNEL_NAME_LEN as usize]] {
        // SAFETY: inside the mapping; `&mut self` on the node before the
        // hand-over means no other reference exists.
        unsafe {
            match direction {
                Direction::Input => &mut (*self.raw()).input_names,
                Direction::Output => &mut (*self.raw()).output_names,
            }
        }
    }

    /// A copy of one channel name, NUL-terminated within its slot or cut there.
    pub fn channel_name(&self, direction: Direction, channel: u32) -> [c_char; ASIO_BRIDGE_CHANNEL_NAME_LEN as usize] {
        let mut name = [0; ASIO_BRIDGE_CHANNEL_NAME_LEN as usize];
        if channel >= crate::ASIO_BRIDGE_MAX_CHANNELS {
            return name;
        }
        // SAFETY: inside the mapping, index bounded above; a volatile copy.
        unsafe {
            let table = match direction {
                Direction::Input => std::ptr::addr_of!((*self.raw()).input_names),
                Direction::Output => std::ptr::addr_of!((*self.raw()).output_names),
            };
            name = std::ptr::read_volatile(table.cast::<[c_char; ASIO_BRIDGE_CHANNEL_NAME_LEN as usize]>().add(channel as usize));
        }
        if let Some(last) = name.last_mut() {
            *last = 0;
        }
        name
    }

    fn u32_at(&self, offset: usize) -> &AtomicU32 {
        debug_assert!(offset % 4 == 0 && offset + 4 <= size_of::<asio_bridge_shm>());
        #[cfg(loom)]
        let word = &self.words.u32s[(offset - SHARED.start) / 4];
        // SAFETY: every caller passes the offset of a u32 field of the
        // header, which lies inside the mapping and is 4-byte aligned (the
        // mapping is page aligned); all shared accesses to it are atomic.
        #[cfg(not(loom))]
        let word = unsafe { &*self.map.as_ptr().add(offset).cast::<AtomicU32>() };
        word
    }

    fn u64_at(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset % 8 == 0 && offset + 8 <= size_of::<asio_bridge_shm>());
        #[cfg(loom)]
        let word = &self.words.u64s[(offset - SHARED.start) / 8];
        // SAFETY: as in `u32_at`, for the 8-byte-aligned u64 fields.
        #[cfg(not(loom))]
        let word = unsafe { &*self.map.as_ptr().add(offset).cast::<AtomicU64>() };
        word
    }

    /// `cycle.seq`: the futex word the client waits on.
    pub fn seq(&self) -> &AtomicU32 {
        self.u32_at(CYCLE + offset_of!(asio_bridge_cycle, seq))
    }

    fn lock(&self) -> &AtomicU32 {
        self.u32_at(CYCLE + offset_of!(asio_bridge_cycle, lock))
    }

    /// `client.done_seq`: the client's release store after its output half.
    pub fn done_seq(&self) -> &AtomicU32 {
        self.u32_at(CLIENT + offset_of!(asio_bridge_client, done_seq))
    }

    /// `client.out_frames`: relaxed, ordered by `done_seq`.
    pub fn out_frames(&self) -> &AtomicU32 {
        self.u32_at(CLIENT + offset_of!(asio_bridge_client, out_frames))
    }

    /// Node side, the only writer: stores `record` as one value (seqlock).
    /// `writer` carries the node's own copy of the lock word, so a client
    /// scribbling on the shared one cannot leave it odd for other readers
    /// beyond one cycle. Never blocks, never panics.
    pub fn write_cycle(&self, writer: &mut CycleWriter, record: &asio_bridge_cycle) {
        let odd = writer.lock | 1;
        let even = odd.wrapping_add(1);
        let f = |field: usize| CYCLE + field;
        self.lock().store(odd, Ordering::Relaxed);
        // Orders the odd store before every field store below: a reader that
        // sees any of them then sees the lock changed.
        fence(Ordering::Release);
        let r = Ordering::Relaxed;
        self.u32_at(f(offset_of!(asio_bridge_cycle, half))).store(record.half, r);
        self.u32_at(f(offset_of!(asio_bridge_cycle, frames))).store(record.frames, r);
        self.u32_at(f(offset_of!(asio_bridge_cycle, rate))).store(record.rate, r);
        self.u64_at(f(offset_of!(asio_bridge_cycle, position))).store(record.position, r);
        self.u64_at(f(offset_of!(asio_bridge_cycle, nsec))).store(record.nsec, r);
        self.u64_at(f(offset_of!(asio_bridge_cycle, publish_nsec))).store(record.publish_nsec, r);
        self.u32_at(f(offset_of!(asio_bridge_cycle, late_cycles))).store(record.late_cycles, r);
        self.u32_at(f(offset_of!(asio_bridge_cycle, output_delay))).store(record.output_delay, r);
        self.u32_at(f(offset_of!(asio_bridge_cycle, upstream_latency))).store(record.upstream_latency, r);
        self.u32_at(f(offset_of!(asio_bridge_cycle, downstream_latency))).store(record.downstream_latency, r);
        self.seq().store(record.seq, r);
        // Publishes every store above to a reader that acquires `even`.
        self.lock().store(even, Ordering::Release);
        writer.lock = even;
    }

    /// Client side: one attempt at a whole copy of the cycle record. None
    /// if the node was writing it (retry; see `READ_TRIES`).
    pub fn try_read_cycle(&self) -> Option<asio_bridge_cycle> {
        let before = self.lock().load(Ordering::Acquire);
        if before & 1 != 0 {
            return None;
        }
        let f = |field: usize| CYCLE + field;
        let r = Ordering::Relaxed;
        let c = asio_bridge_cycle {
            seq: self.seq().load(r),
            half: self.u32_at(f(offset_of!(asio_bridge_cycle, half))).load(r),
            frames: self.u32_at(f(offset_of!(asio_bridge_cycle, frames))).load(r),
            rate: self.u32_at(f(offset_of!(asio_bridge_cycle, rate))).load(r),
            position: self.u64_at(f(offset_of!(asio_bridge_cycle, position))).load(r),
            nsec: self.u64_at(f(offset_of!(asio_bridge_cycle, nsec))).load(r),
            publish_nsec: self.u64_at(f(offset_of!(asio_bridge_cycle, publish_nsec))).load(r),
            late_cycles: self.u32_at(f(offset_of!(asio_bridge_cycle, late_cycles))).load(r),
            output_delay: self.u32_at(f(offset_of!(asio_bridge_cycle, output_delay))).load(r),
            upstream_latency: self.u32_at(f(offset_of!(asio_bridge_cycle, upstream_latency))).load(r),
            downstream_latency: self.u32_at(f(offset_of!(asio_bridge_cycle, downstream_latency))).load(r),
            lock: before,
        };
        // Orders the field loads before the re-check: if any of them saw a
        // store of a later write, the re-check sees that write's odd lock.
        fence(Ordering::Acquire);
        (self.lock().load(Ordering::Relaxed) == before).then_some(c)
    }

    /// `try_read_cycle` up to `READ_TRIES` times.
    pub fn read_cycle(&self) -> Option<asio_bridge_cycle> {
        for _ in 0..READ_TRIES {
            if let Some(c) = self.try_read_cycle() {
                return Some(c);
            }
            core::hint::spin_loop();
        }
        None
    }

    /// One channel buffer of `max_frames` floats, or None for an index out
    /// of range. Never panics.
    pub fn buffer(&self, half: u32, direction: Direction, channel: u32) -> Option<*mut f32> {
        let offset = self.layout.buffer_offset(half, direction, channel)?;
        // SAFETY: `buffer_offset` returns offsets whose whole buffer lies
        // inside `layout.size`, which the mapping covers (checked at
        // construction).
        Some(unsafe { self.map.as_ptr().add(offset).cast() })
    }
}

/// Under loom, the words `u32_at`/`u64_at` hand out: one loom atomic per
/// aligned u32 and per aligned u64 of the cycle and client records (the
/// only words two sides share while running). The two arrays overlap in
/// bytes but not in use: each field is only ever reached at its own width.
/// Each `Shm` has its own, so a model shares one `Shm` between its threads.
#[cfg(loom)]
struct Words {
    u32s: Box<[AtomicU32]>,
    u64s: Box<[AtomicU64]>,
}

/// The cycle record and the client record, adjacent (lib.rs pins them).
#[cfg(loom)]
const SHARED: core::ops::Range<usize> = CYCLE..CLIENT + size_of::<asio_bridge_client>();

#[cfg(loom)]
impl Words {
    /// Zero, like a fresh memfd.
    fn new() -> Self {
        Self {
            u32s: (0..SHARED.len() / 4).map(|_| AtomicU32::new(0)).collect(),
            u64s: (0..SHARED.len() / 8).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// The node's private half of the seqlock: the lock value it last wrote.
#[derive(Debug, Default)]
pub struct CycleWriter {
    lock: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealed_memfd;

    fn pair() -> (Shm, Shm) {
        let layout = Layout::new(2, 2, 256).unwrap();
        let fd = sealed_memfd(c"shm-test", layout.size).unwrap();
        let node = Shm::create(Mapping::new(&fd, layout.size).unwrap(), layout, layout.info("t")).unwrap();
        let client = Shm::open(Mapping::new(&fd, layout.size).unwrap()).unwrap();
        (node, client)
    }

    #[test]
    fn seq_after_is_right_across_the_wrap() {
        assert!(seq_after(1, 0));
        assert!(seq_after(0, u32::MAX));
        assert!(seq_after(2, u32::MAX - 1));
        assert!(!seq_after(u32::MAX, 0));
        assert!(!seq_after(5, 5));
    }

    /// A run of cycles from just before the wrap: each is after all earlier
    /// ones up to 2^31 - 1 back, never after one 2^31 back.
    #[test]
    fn seqs_from_near_the_wrap_stay_ordered() {
        let start = u32::MAX - 3;
        for k in 1..8u32 {
            let (earlier, later) = (start.wrapping_add(k - 1), start.wrapping_add(k));
            assert!(seq_after(later, earlier) && !seq_after(earlier, later), "{earlier} -> {later}");
            assert!(seq_after(later, later.wrapping_sub(i32::MAX as u32)));
            assert!(!seq_after(later, later.wrapping_sub(1 << 31)));
        }
    }

    #[test]
    fn a_record_reads_back_whole() {
        let (node, client) = pair();
        let mut w = CycleWriter::default();
        let rec = asio_bridge_cycle { seq: 7, half: 1, frames: 128, rate: 48000, position: 1 << 40, ..Default::default() };
        node.write_cycle(&mut w, &rec);
        let got = client.read_cycle().unwrap();
        assert_eq!((got.seq, got.half, got.frames, got.rate, got.position), (7, 1, 128, 48000, 1 << 40));
        assert_eq!(got.lock & 1, 0);
    }

    #[test]
    fn a_writer_that_died_mid_write_is_not_read() {
        let (node, client) = pair();
        node.lock().store(3, Ordering::Relaxed);
        assert!(client.read_cycle().is_none());
    }

    /// Two processes' view in two threads: every copy the reader accepts is
    /// one the writer wrote (all fields derived from one counter), while
    /// the writer rewrites the record as fast as it can.
    #[test]
    fn the_reader_never_accepts_a_torn_record() {
        let (node, client) = pair();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut w = CycleWriter::default();
                let mut n: u32 = u32::MAX - 50_000;
                while !stop.load(Ordering::Relaxed) {
                    n = n.wrapping_add(1);
                    let v = u64::from(n);
                    let rec = asio_bridge_cycle {
                        seq: n,
                        half: n & 1,
                        frames: n ^ 0x5555,
                        rate: n.rotate_left(7),
                        position: v << 20,
                        nsec: v * 3,
                        publish_nsec: !v,
                        late_cycles: n.wrapping_mul(3),
                        output_delay: n >> 3,
                        upstream_latency: n.wrapping_add(11),
                        downstream_latency: n.wrapping_sub(11),
                        lock: 0,
                    };
                    node.write_cycle(&mut w, &rec);
                }
            });
            let mut accepted = 0u32;
            let t = std::time::Instant::now();
            while t.elapsed() < std::time::Duration::from_millis(300) {
                if let Some(c) = client.try_read_cycle() {
                    let n = c.seq;
                    let v = u64::from(n);
                    if n != 0 {
                        assert_eq!(c.half, n & 1);
                        assert_eq!(c.frames, n ^ 0x5555);
                        assert_eq!(c.rate, n.rotate_left(7));
                        assert_eq!((c.position, c.nsec, c.publish_nsec), (v << 20, v * 3, !v));
                        assert_eq!(c.late_cycles, n.wrapping_mul(3));
                        assert_eq!(c.output_delay, n >> 3);
                        assert_eq!(c.upstream_latency, n.wrapping_add(11));
                        assert_eq!(c.downstream_latency, n.wrapping_sub(11));
                        accepted += 1;
                    }
                }
            }
            stop.store(true, Ordering::Relaxed);
            assert!(accepted > 100, "the reader never got a whole record");
        });
    }
}
