//! The real-time half of an attachment: what process() does with the shared
//! memory each graph cycle. Runs on the data loop only; allocates nothing,
//! locks nothing, logs nothing, and waits only in same-cycle mode, for at
//! most the budget it is given.

use asio_bridge_abi::{
    asio_bridge_client, asio_bridge_cycle, asio_bridge_shm, futex, monotonic_nsec, Direction, Layout,
    Mapping,
};
use std::{
    mem::offset_of,
    sync::atomic::{AtomicU32, Ordering},
};

/// The graph clock as read from the driver's position each cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    pub frames: u32,
    pub rate: u32,
    pub position: u64,
    pub nsec: u64,
}

/// An attached client's shared memory, as the data loop sees it.
pub struct Attachment {
    map: Mapping,
    layout: Layout,
    /// seq of the last published cycle (0: none yet).
    seq: u32,
    late_cycles: u32,
    /// NaN and ±Inf samples the client wrote, replaced by silence.
    nonfinite_samples: u64,
}

impl Attachment {
    /// Takes a mapping whose header the main loop already wrote for `layout`.
    pub fn new(map: Mapping, layout: Layout) -> Self {
        assert!(map.len() >= layout.size);
        Self { map, layout, seq: 0, late_cycles: 0, nonfinite_samples: 0 }
    }

    /// Gives the mapping back for unmapping off the data loop, with the
    /// count of non-finite samples replaced while attached.
    pub fn into_parts(self) -> (Mapping, u64) {
        (self.map, self.nonfinite_samples)
    }

    fn word(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: a u32 field inside the mapped header (the mapping is at
        // least `layout.size` >= header bytes, page aligned); words the
        // client writes are only accessed atomically.
        unsafe { &*self.map.as_ptr().add(offset).cast::<AtomicU32>() }
    }

    fn seq_word(&self) -> &AtomicU32 {
        self.word(offset_of!(asio_bridge_shm, cycle) + offset_of!(asio_bridge_cycle, seq))
    }

    fn done_word(&self) -> &AtomicU32 {
        self.word(offset_of!(asio_bridge_shm, client) + offset_of!(asio_bridge_client, done_seq))
    }

    fn out_frames_word(&self) -> &AtomicU32 {
        self.word(offset_of!(asio_bridge_shm, client) + offset_of!(asio_bridge_client, out_frames))
    }

    fn buffer(&self, half: u32, direction: Direction, channel: u32) -> *mut f32 {
        // SAFETY: `buffer_offset` asserts the indices; the layout fits the mapping.
        unsafe { self.map.as_ptr().add(self.layout.buffer_offset(half, direction, channel)).cast() }
    }

    /// The half the coming cycle fills with input.
    pub fn next_half(&self) -> u32 {
        self.seq.wrapping_add(1) & 1
    }

    /// Copies one input port's samples into the coming cycle's input half;
    /// `None` (an unlinked port) and a short buffer are padded with silence.
    pub fn write_input(&self, channel: u32, frames: u32, src: Option<&[f32]>) {
        let frames = frames.min(self.layout.max_frames) as usize;
        // SAFETY: the buffer holds `max_frames` floats; the client reads this
        // half only after `publish`, and the previous use of this half was
        // two cycles ago.
        let dst = unsafe { std::slice::from_raw_parts_mut(self.buffer(self.next_half(), Direction::Input, channel), frames) };
        let n = src.map_or(0, |s| s.len().min(frames));
        if let Some(src) = src {
            dst[..n].copy_from_slice(&src[..n]);
        }
        dst[n..].fill(0.0);
    }

    /// Whether the client completed the last published cycle: then its
    /// output half may be played; otherwise this cycle plays silence.
    pub fn previous_complete(&self) -> bool {
        self.seq != 0 && self.done_word().load(Ordering::Acquire) == self.seq
    }

    /// Same-cycle mode: waits until the client completes the cycle just
    /// published, for at most `budget_ns`. A futex wait with a deadline.
    pub fn await_current(&self, budget_ns: u64) -> bool {
        let deadline = monotonic_nsec() + budget_ns;
        loop {
            let done = self.done_word().load(Ordering::Acquire);
            if done == self.seq {
                return true;
            }
            let now = monotonic_nsec();
            if now >= deadline {
                return false;
            }
            futex::wait(self.done_word(), done, std::time::Duration::from_nanos(deadline - now));
        }
    }

    /// Counts a cycle the client did not complete in time.
    pub fn count_late(&mut self, late: bool) {
        if late && self.seq != 0 {
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
        let written = self.out_frames_word().load(Ordering::Relaxed).min(self.layout.max_frames);
        let n = if complete { dst.len().min(written as usize) } else { 0 };
        // SAFETY: the half holds `max_frames` >= n samples the client
        // finished (done_seq acquired); it will not touch that half again
        // until it is woken for a later cycle.
        let src = unsafe { std::slice::from_raw_parts(self.buffer(self.seq & 1, Direction::Output, channel), n) };
        self.nonfinite_samples += u64::from(copy_finite(&mut dst[..n], src));
        dst[n..].fill(0.0);
    }

    /// Publishes the cycle whose input was just written and wakes the client.
    /// `output_delay`: frames between the client's output and the out_*
    /// ports; `upstream`/`downstream`: frames PipeWire reports beyond them.
    pub fn publish(&mut self, clock: Clock, output_delay: u32, upstream: u32, downstream: u32) {
        let seq = self.seq.wrapping_add(1).max(1);
        let frames = clock.frames.min(self.layout.max_frames);
        let record = asio_bridge_cycle {
            seq: self.seq,
            half: seq & 1,
            frames,
            rate: clock.rate,
            position: clock.position,
            nsec: clock.nsec,
            publish_nsec: monotonic_nsec(),
            late_cycles: self.late_cycles,
            output_delay,
            upstream_latency: upstream,
            downstream_latency: downstream,
            padding: 0,
        };
        let cycle = self.cycle_ptr();
        // SAFETY: the record lies inside the mapped header. `seq` keeps the
        // previous value until the release store below, so a client reading
        // concurrently sees the change of `seq` and re-reads (seqlock).
        unsafe { std::ptr::write_volatile(cycle, record) };
        self.seq_word().store(seq, Ordering::Release);
        futex::wake(self.seq_word());
        self.seq = seq;
    }

    /// Sets the quantum, rate and output delay (in quanta: 1 pipelined, 0
    /// same-cycle) a client sees before the first cycle.
    pub fn announce(&self, clock: Clock, delay_quanta: u32) {
        let cycle = self.cycle_ptr();
        // SAFETY: main loop, before the mapping is handed to the client or
        // to the data loop: nothing else accesses it yet.
        unsafe {
            (*cycle).frames = clock.frames.min(self.layout.max_frames);
            (*cycle).rate = clock.rate;
            (*cycle).output_delay = (*cycle).frames * delay_quanta;
        }
    }

    fn cycle_ptr(&self) -> *mut asio_bridge_cycle {
        // SAFETY: offset of the cycle record inside the mapped header.
        unsafe { self.map.as_ptr().add(offset_of!(asio_bridge_shm, cycle)).cast() }
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
mod tests {
    use super::copy_finite;

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
