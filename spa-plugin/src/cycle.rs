//! The real-time half of an attachment: what process() does with the shared
//! memory each graph cycle. Runs on the data loop only; allocates nothing,
//! locks nothing, logs nothing, and waits only in same-cycle mode, for at
//! most the budget it is given.

// The RT path must not be able to panic: no indexing, slicing, unwrap,
// expect or panic! here (clippy denies them; `cargo xtask test` checks the
// built process() for panic calls in tests/rt_no_panic.rs).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use asio_bridge_abi::{
    asio_bridge_cycle, futex, monotonic_nsec, CycleWriter, Direction, Layout, LayoutError, Mapping, Shm,
};
use std::sync::atomic::Ordering;

/// The graph clock as read from the driver's position each cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    pub frames: u32,
    pub rate: u32,
    pub position: u64,
    pub nsec: u64,
}

/// What the main loop shows of an attached client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStatus {
    pub frames: u32,
    pub rate: u32,
    pub late_cycles: u32,
    pub done_seq: u32,
}

/// An attached client's shared memory, as the data loop sees it.
pub struct Attachment {
    shm: Shm,
    writer: CycleWriter,
    /// seq of the last published cycle; meaningful once `published`.
    seq: u32,
    /// Whether a cycle was published since attach. Not `seq != 0`: seq
    /// wraps through 0 like any other value.
    published: bool,
    late_cycles: u32,
    /// NaN and ±Inf samples the client wrote, replaced by silence.
    nonfinite_samples: u64,
}

impl Attachment {
    /// Takes a mapping whose header the main loop already wrote for `layout`.
    pub fn new(map: Mapping, layout: Layout) -> Result<Self, LayoutError> {
        Self::starting_at(map, layout, 0)
    }

    /// `new`, with the cycle counter at `seq` as if that many cycles had
    /// been published before attach: for exercising the wrap.
    pub fn starting_at(map: Mapping, layout: Layout, seq: u32) -> Result<Self, LayoutError> {
        let shm = Shm::adopt(map, layout)?;
        shm.seq().store(seq, Ordering::Relaxed);
        // A stale done_seq must never equal a seq not yet published.
        shm.done_seq().store(seq, Ordering::Relaxed);
        Ok(Self { shm, writer: CycleWriter::default(), seq, published: false, late_cycles: 0, nonfinite_samples: 0 })
    }

    /// Gives the mapping back for unmapping off the data loop, with the
    /// count of non-finite samples replaced while attached.
    pub fn into_parts(self) -> (Mapping, u64) {
        (self.shm.into_mapping(), self.nonfinite_samples)
    }

    fn max_frames(&self) -> u32 {
        self.shm.layout().max_frames
    }

    /// The half the coming cycle fills with input.
    pub fn next_half(&self) -> u32 {
        self.seq.wrapping_add(1) & 1
    }

    /// Copies one input port's samples into the coming cycle's input half;
    /// `None` (an unlinked port) and a short buffer are padded with silence.
    pub fn write_input(&self, channel: u32, frames: u32, src: Option<&[f32]>) {
        let Some(buf) = self.shm.buffer(self.next_half(), Direction::Input, channel) else { return };
        let frames = frames.min(self.max_frames()) as usize;
        // SAFETY: the buffer holds `max_frames` >= `frames` floats; the
        // client reads this half only after `publish`, and the previous use
        // of this half was two cycles ago.
        let dst = unsafe { std::slice::from_raw_parts_mut(buf, frames) };
        let src = src.unwrap_or(&[]);
        let n = src.len().min(dst.len());
        // memcpy, then memset: both sub-slices are exactly `n` long, so
        // neither call has a reachable panic (rt_no_panic checks).
        if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
            d.copy_from_slice(s);
        }
        if let Some(rest) = dst.get_mut(n..) {
            rest.fill(0.0);
        }
    }

    /// Whether the client completed the last published cycle: then its
    /// output half may be played; otherwise this cycle plays silence.
    pub fn previous_complete(&self) -> bool {
        self.published && self.shm.done_seq().load(Ordering::Acquire) == self.seq
    }

    /// Same-cycle mode: waits until the client completes the cycle just
    /// published, for at most `budget_ns`. A futex wait with a deadline.
    pub fn await_current(&self, budget_ns: u64) -> bool {
        let deadline = monotonic_nsec().saturating_add(budget_ns);
        loop {
            let done = self.shm.done_seq().load(Ordering::Acquire);
            if self.published && done == self.seq {
                return true;
            }
            let now = monotonic_nsec();
            if now >= deadline {
                return false;
            }
            futex::wait(self.shm.done_seq(), done, std::time::Duration::from_nanos(deadline - now));
        }
    }

    /// Counts a cycle the client did not complete in time.
    pub fn count_late(&mut self, late: bool) {
        if late && self.published {
            self.late_cycles = self.late_cycles.wrapping_add(1);
        }
    }

    /// Copies the output the client completed for the last published cycle
    /// into one output port, or silence. Pipelined, that cycle was the
    /// previous one (one quantum of delay); same-cycle, it is this one.
    /// NaN and ±Inf (a buggy plugin) become silence here: one NaN reaching
    /// a PipeWire filter's state would never decay.
    pub fn read_output(&mut self, channel: u32, complete: bool, dst: &mut [f32]) {
        // The client says how much it wrote (a hostile value is clamped to
        // the buffer); done_seq, acquired by the caller, was stored after it.
        let written = self.shm.out_frames().load(Ordering::Relaxed).min(self.max_frames());
        let n = if complete { dst.len().min(written as usize) } else { 0 };
        let src = match self.shm.buffer(self.seq & 1, Direction::Output, channel) {
            // SAFETY: the half holds `max_frames` >= n samples the client
            // finished (done_seq acquired); it will not touch that half
            // again until it is woken for a later cycle.
            Some(buf) => unsafe { std::slice::from_raw_parts(buf.cast_const(), n) },
            None => &[],
        };
        let (played, silent) = dst.split_at_mut(src.len());
        self.nonfinite_samples = self.nonfinite_samples.saturating_add(u64::from(copy_finite(played, src)));
        silent.fill(0.0);
    }

    /// What the main loop shows of the client (through `DataLoop::run`):
    /// the last published quantum and rate, the late cycles, and the last
    /// cycle the client completed.
    pub fn status(&self) -> ClientStatus {
        let (frames, rate) = self.shm.read_cycle().map_or((0, 0), |c| (c.frames, c.rate));
        ClientStatus {
            frames,
            rate,
            late_cycles: self.late_cycles,
            done_seq: self.shm.done_seq().load(Ordering::Acquire),
        }
    }

    /// Publishes the cycle whose input was just written and wakes the client.
    /// `output_delay`: frames between the client's output and the out_*
    /// ports; `upstream`/`downstream`: frames PipeWire reports beyond them.
    pub fn publish(&mut self, clock: Clock, output_delay: u32, upstream: u32, downstream: u32) {
        let seq = self.seq.wrapping_add(1);
        let record = asio_bridge_cycle {
            seq,
            half: seq & 1,
            frames: clock.frames.min(self.max_frames()),
            rate: clock.rate,
            position: clock.position,
            nsec: clock.nsec,
            publish_nsec: monotonic_nsec(),
            late_cycles: self.late_cycles,
            output_delay,
            upstream_latency: upstream,
            downstream_latency: downstream,
            lock: 0,
        };
        self.shm.write_cycle(&mut self.writer, &record);
        futex::wake(self.shm.seq());
        self.seq = seq;
        self.published = true;
    }

    /// Sets the quantum, rate and output delay (in quanta: 1 pipelined, 0
    /// same-cycle) a client sees before the first cycle. Main loop, before
    /// the mapping is handed over.
    pub fn announce(&mut self, clock: Clock, delay_quanta: u32) {
        let frames = clock.frames.min(self.max_frames());
        let record = asio_bridge_cycle {
            seq: self.seq,
            half: self.seq & 1,
            frames,
            rate: clock.rate,
            output_delay: frames.saturating_mul(delay_quanta),
            ..Default::default()
        };
        self.shm.write_cycle(&mut self.writer, &record);
    }
}

/// Copies `src` into `dst` with every NaN and ±Inf replaced by 0.0; returns
/// how many were replaced. Branch-free, so it vectorises.
pub fn copy_finite(dst: &mut [f32], src: &[f32]) -> u32 {
    let mut replaced = 0;
    for (d, &s) in dst.iter_mut().zip(src) {
        let finite = s.is_finite();
        replaced += u32::from(!finite);
        *d = if finite { s } else { 0.0 };
    }
    replaced
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use asio_bridge_abi::sealed_memfd;
    use asio_bridge_client::Session;
    use std::time::Duration;

    /// The node's real cycle code (write_input, previous_complete,
    /// read_output, count_late, publish: what Rt::process does pipelined)
    /// against the client's real wait and complete, starting four cycles
    /// before seq wraps: every cycle is seen once, in the right half, with
    /// the right input, and the client's output comes back a cycle later
    /// with no cycle counted late, across u32::MAX -> 0.
    #[test]
    fn the_cycle_protocol_survives_the_seq_wrap() {
        let layout = Layout::new(1, 1, 256).unwrap();
        let fd = sealed_memfd(c"wrap-test", layout.size).unwrap();
        let map = Mapping::new(&fd, layout.size).unwrap();
        // SAFETY: a fresh mapping of `layout.size` bytes, nothing else sees it.
        unsafe { (*map.as_ptr().cast::<asio_bridge_abi::asio_bridge_shm>()).info = layout.info("wrap") };
        let start = u32::MAX - 3;
        let mut node = Attachment::starting_at(map, layout, start).unwrap();
        let (sock, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut client = Session::from_parts(sock, Mapping::new(&fd, layout.size).unwrap()).unwrap();
        let frames = 64;
        let mut played = [0.0f32; 64];
        for k in 1..=10u32 {
            let clock = Clock { frames, rate: 48000, position: u64::from(k) * 64, nsec: 0 };
            node.write_input(0, frames, Some(&[k as f32; 64]));
            let complete = node.previous_complete();
            assert_eq!(complete, k > 1, "cycle {k}: the client completed the previous cycle");
            node.read_output(0, complete, &mut played);
            if k > 1 {
                assert!(played.iter().all(|&v| v == -((k - 1) as f32)), "cycle {k} played {:?}", &played[..2]);
            }
            node.count_late(!complete);
            node.publish(clock, frames, 0, 0);

            let cycle = client.wait(Duration::from_secs(1)).unwrap();
            let seq = start.wrapping_add(k);
            assert_eq!(cycle.seq, seq);
            assert_eq!(cycle.half, seq & 1);
            assert_eq!(cycle.missed, 0);
            assert_eq!(cycle.late_cycles, 0);
            assert_eq!(cycle.position, u64::from(k) * 64);
            assert!(client.input(&cycle, 0).iter().all(|&v| v == k as f32));
            client.output(&cycle, 0).fill(-(k as f32));
            client.complete(&cycle);
        }
        // A missed cycle across the wrap is counted as one.
        let mut node = node;
        node.publish(Clock { frames, rate: 48000, position: 0, nsec: 0 }, frames, 0, 0);
        node.publish(Clock { frames, rate: 48000, position: 0, nsec: 0 }, frames, 0, 0);
        assert_eq!(client.wait(Duration::from_secs(1)).unwrap().missed, 1);
    }

    #[test]
    fn non_finite_samples_become_silence_and_are_counted() {
        let src = [0.5, f32::NAN, -1.0, f32::INFINITY, f32::NEG_INFINITY, f32::MIN_POSITIVE, -0.0, f32::MAX];
        let mut dst = [9.0; 8];
        assert_eq!(copy_finite(&mut dst, &src), 3);
        assert_eq!(dst, [0.5, 0.0, -1.0, 0.0, 0.0, f32::MIN_POSITIVE, -0.0, f32::MAX]);
        // A NaN of any payload is caught, not only the canonical one.
        let odd = [f32::from_bits(0x7fc0_1234), f32::from_bits(0xffff_ffff)];
        let mut out = [1.0; 2];
        assert_eq!(copy_finite(&mut out, &odd), 2);
        assert_eq!(out, [0.0, 0.0]);
    }
}
