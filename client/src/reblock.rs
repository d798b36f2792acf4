//! Host buffers of a size of the host's choosing on a graph that runs
//! another quantum: a FIFO per channel in each direction.
//!
//! The input FIFO gathers each cycle's input until a whole host buffer is
//! there; the output FIFO holds what the host made until the node takes it.
//! Both sit in one chain (graph -> input FIFO -> host -> output FIFO ->
//! graph) that holds a fixed number of frames, so every sample is delayed by
//! the same amount: `delay` frames from the node's input ports to its
//! output ports, the node's own pipelining included. At the start the chain is primed with silence, just enough that the
//! node never finds the output FIFO short (host buffer minus the gcd of
//! buffer and quantum; 0 when they are equal). When the quantum changes and
//! that is no longer enough, the chain grows by silence once and the latency
//! with it: no sample is ever dropped or repeated to keep the old latency.
//!
//! Allocates only in `new`; everything else is real-time safe, and has no
//! panic path (the Wine driver's callback runs it; tests/tests/rt_no_panic.rs
//! checks the built driver).

#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// One channel's FIFO.
struct Ring {
    data: Vec<f32>,
    head: usize,
    len: usize,
}

impl Ring {
    fn new(capacity: usize) -> Self {
        // Written, not calloc'ed: every page is touched here, so the
        // real-time path never faults one in.
        let mut data = Vec::with_capacity(capacity);
        data.resize(capacity, 0.0);
        Self { data, head: 0, len: 0 }
    }

    /// Appends `n` frames: `src` first (None: none), then silence. Frames
    /// that do not fit are dropped (the capacity covers every reachable fill).
    fn push(&mut self, src: Option<&[f32]>, n: usize) {
        let cap = self.data.len();
        if cap == 0 {
            return;
        }
        let n = n.min(cap.saturating_sub(self.len));
        let src = src.unwrap_or(&[]);
        let src = src.get(..n).unwrap_or(src);
        let tail = (self.head + self.len) % cap;
        // The free space in ring order: `back` from the tail to the end,
        // then `front` from the start.
        let Some((front, back)) = self.data.split_at_mut_checked(tail) else { return };
        let a = copy_prefix(back, src);
        let b = copy_prefix(front, src.get(a..).unwrap_or_default());
        let silence = n.saturating_sub(a + b);
        let back_rest = back.get_mut(a..).unwrap_or_default();
        let in_back = silence.min(back_rest.len());
        fill_prefix(back_rest, in_back);
        fill_prefix(front.get_mut(b..).unwrap_or_default(), silence - in_back);
        self.len += n;
    }

    /// Copies the first `dst.len()` frames (at most `len`) into `dst`;
    /// returns how many.
    fn peek(&self, dst: &mut [f32]) -> usize {
        let n = dst.len().min(self.len);
        let Some((front, back)) = self.data.split_at_checked(self.head) else { return 0 };
        let dst = dst.get_mut(..n).unwrap_or_default();
        let a = copy_prefix(dst, back);
        a + copy_prefix(dst.get_mut(a..).unwrap_or_default(), front)
    }

    fn discard(&mut self, n: usize) {
        let cap = self.data.len();
        if cap == 0 {
            return;
        }
        let n = n.min(self.len);
        self.head = (self.head + n) % cap;
        self.len -= n;
    }
}

/// Copies as many samples as both hold; returns how many. No panic path:
/// both sub-slices are exactly `n` long.
fn copy_prefix(dst: &mut [f32], src: &[f32]) -> usize {
    let n = dst.len().min(src.len());
    if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
        d.copy_from_slice(s);
    }
    n
}

/// Silences the first `n` samples (at most all of them).
fn fill_prefix(dst: &mut [f32], n: usize) {
    let n = n.min(dst.len());
    if let Some(d) = dst.get_mut(..n) {
        d.fill(0.0);
    }
}

/// A set of channel buffers the reblocker reads or fills, one at a time.
pub trait Channels {
    fn channel(&mut self, ch: u32) -> &mut [f32];
}

impl Channels for Vec<Vec<f32>> {
    fn channel(&mut self, ch: u32) -> &mut [f32] {
        self.get_mut(ch as usize).map_or(&mut [], Vec::as_mut_slice)
    }
}

/// What the reblocker needs to know of a graph cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CycleInfo {
    pub frames: u32,
    /// Cycles published since the previous one this client saw.
    pub missed: u32,
    /// The node's running count of cycles it played silence for.
    pub late_cycles: u32,
}

pub struct Reblocker {
    block: usize,
    same_cycle: bool,
    input: Vec<Ring>,
    output: Vec<Ring>,
    /// Input frames gathered towards the next host buffer (kept apart from
    /// the FIFOs so a bridge without inputs still paces the host).
    gathered: usize,
    started: bool,
    late_seen: u32,
    /// Quantum of the cycle whose output half was written last, and how
    /// many frames went into it.
    last_frames: u32,
    last_out_frames: u32,
    delay: u32,
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The frames the chain needs primed for host buffer `block` on quantum
/// `quantum`: the most the input FIFO can hold short of a whole buffer.
fn priming(block: u32, quantum: u32) -> u32 {
    if quantum == 0 {
        return 0;
    }
    block.saturating_sub(gcd(block, quantum))
}

/// The delay a fresh chain starts with: the priming, plus one quantum when
/// the node plays a cycle's output one cycle later (pipelined).
pub fn start_delay(block: u32, quantum: u32, same_cycle: bool) -> u32 {
    priming(block, quantum).saturating_add(if same_cycle { 0 } else { quantum })
}

impl Reblocker {
    /// Host buffers of `block` frames; `max_frames` is the largest quantum.
    pub fn new(block: u32, inputs: u32, outputs: u32, max_frames: u32, same_cycle: bool) -> Self {
        let capacity = 2 * (block + max_frames) as usize;
        Self {
            block: block as usize,
            same_cycle,
            input: (0..inputs).map(|_| Ring::new(capacity)).collect(),
            output: (0..outputs).map(|_| Ring::new(capacity)).collect(),
            gathered: 0,
            started: false,
            late_seen: 0,
            last_frames: 0,
            last_out_frames: 0,
            delay: 0,
        }
    }

    /// Frames every sample takes from the node's input ports through the
    /// host to its output ports.
    pub fn delay(&self) -> u32 {
        self.delay
    }

    fn output_len(&self) -> usize {
        self.output.first().map_or(usize::MAX, |r| r.len)
    }

    /// A cycle arrived: settles what the node took of the last output half,
    /// then takes this cycle's input (the cycle's frames of each channel).
    pub fn begin_cycle(&mut self, cycle: CycleInfo, input: &mut impl Channels) {
        let late = cycle.late_cycles.wrapping_sub(self.late_seen);
        self.late_seen = cycle.late_cycles;
        if !self.started {
            self.started = true;
            let primed = priming(self.block as u32, cycle.frames);
            for r in &mut self.output {
                r.push(None, primed as usize);
            }
            self.delay = start_delay(self.block as u32, cycle.frames, self.same_cycle);
        } else {
            // Pipelined, the node took the last half in this cycle; in
            // same-cycle mode, in the cycle it was written for.
            let quantum = if self.same_cycle { self.last_frames } else { cycle.frames } as usize;
            // Every cycle this client never saw also counts as late at the
            // node; a late count beyond those means the last half came too
            // late and the node played silence in its place.
            let took = if late > cycle.missed {
                quantum
            } else {
                // Short of a quantum, the node padded with silence: the
                // chain has grown by that much.
                let took = quantum.min(self.last_out_frames as usize);
                self.delay += (quantum - took) as u32;
                took
            };
            for r in &mut self.output {
                r.discard(took);
            }
        }
        for (ch, r) in self.input.iter_mut().enumerate() {
            r.push(Some(input.channel(ch as u32)), cycle.frames as usize);
        }
        self.gathered += cycle.frames as usize;
        self.last_frames = cycle.frames;
    }

    /// If a whole host buffer of input is there, moves it into the host's
    /// input buffers (`block` frames each) and returns true.
    pub fn next_block(&mut self, host_in: &mut impl Channels) -> bool {
        if self.gathered < self.block {
            return false;
        }
        self.gathered -= self.block;
        for (ch, r) in self.input.iter_mut().enumerate() {
            let dst = host_in.channel(ch as u32);
            let len = dst.len().min(self.block);
            r.peek(dst.get_mut(..len).unwrap_or_default());
            r.discard(self.block);
        }
        true
    }

    /// The host processed the buffer: queues its output.
    pub fn end_block(&mut self, host_out: &mut impl Channels) {
        for (ch, r) in self.output.iter_mut().enumerate() {
            r.push(Some(host_out.channel(ch as u32)), self.block);
        }
    }

    /// The cycle's host buffers are done: writes the output half
    /// (each channel's whole half) and returns how many frames it holds.
    pub fn end_cycle(&mut self, half: &mut impl Channels) -> u32 {
        // Short of this quantum, the FIFO grows by silence now, so the node
        // never pads in the middle of the host's audio.
        let quantum = self.last_frames as usize;
        let short = quantum.saturating_sub(self.output_len());
        if short > 0 && !self.output.is_empty() {
            self.delay += short as u32;
            for r in &mut self.output {
                r.push(None, short);
            }
        }
        let mut n = 0;
        for (ch, r) in self.output.iter().enumerate() {
            n = r.peek(half.channel(ch as u32));
        }
        self.last_out_frames = n as u32;
        n as u32
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::signal::{counter, decode};

    /// Runs a graph of `quanta` (one per cycle) through a reblocker with a
    /// host that echoes input 1 to output 1, and returns every sample the
    /// node would play, pipelined or same-cycle, plus the final latency.
    fn run(block: u32, quanta: &[u32], same_cycle: bool, late_at: Option<usize>) -> (Vec<f32>, u32) {
        let mut r = Reblocker::new(block, 1, 1, 8192, same_cycle);
        let (mut played, mut graph_pos, mut late) = (Vec::new(), 0u64, 0u32);
        let mut half = vec![vec![0.0f32; 8192]];
        let mut pending: Option<(Vec<f32>, bool)> = None; // pipelined: last half
        let mut host = vec![vec![0.0f32; block as usize]];
        for (k, &q) in quanta.iter().enumerate() {
            if !same_cycle {
                // The node plays the previous half (or silence if late).
                let out = pending.take().map_or(vec![0.0; q as usize], |(h, on_time)| {
                    let mut v = vec![0.0; q as usize];
                    if on_time {
                        let n = (q as usize).min(h.len());
                        v[..n].copy_from_slice(&h[..n]);
                    } else {
                        late += 1;
                    }
                    v
                });
                played.extend(out);
            }
            let mut input = vec![(0..q as u64).map(|i| counter(graph_pos + i)).collect::<Vec<f32>>()];
            graph_pos += q as u64;
            r.begin_cycle(CycleInfo { frames: q, missed: 0, late_cycles: late }, &mut input);
            while r.next_block(&mut host) {
                r.end_block(&mut host); // the host echoes its input
            }
            let n = r.end_cycle(&mut half) as usize;
            let half = &half[0];
            let on_time = late_at != Some(k);
            if same_cycle {
                let mut v = vec![0.0; q as usize];
                if on_time {
                    let m = (q as usize).min(n);
                    v[..m].copy_from_slice(&half[..m]);
                } else {
                    late += 1;
                }
                played.extend(v);
            } else {
                pending = Some((half[..n].to_vec(), on_time));
            }
        }
        (played, r.delay())
    }

    /// The delay of every counter sample played, in frames.
    fn delays(played: &[f32]) -> Vec<u64> {
        played.iter().enumerate().filter_map(|(i, &v)| decode(v).map(|k| i as u64 - k)).collect()
    }

    #[test]
    fn equal_sizes_add_nothing() {
        let (played, delay) = run(256, &[256; 8], false, None);
        assert_eq!(delay, 256);
        assert!(delays(&played).iter().all(|&d| d == 256));
        let (played, _) = run(256, &[256; 8], true, None);
        assert!(delays(&played).iter().all(|&d| d == 0));
    }

    #[test]
    fn other_sizes_delay_every_sample_alike_by_the_reported_amount() {
        for (block, quantum) in [(256, 128), (128, 256), (96, 64), (64, 96), (1024, 32), (32, 1024)] {
            for same_cycle in [false, true] {
                let (played, delay) = run(block, &vec![quantum; 4096 / quantum as usize + 64], same_cycle, None);
                let pipeline = if same_cycle { 0 } else { quantum };
                assert_eq!(delay, pipeline + priming(block, quantum));
                let d = delays(&played);
                assert!(d.len() > 2048, "{block}/{quantum}");
                assert!(d.iter().all(|&x| x == delay as u64), "{block}/{quantum} same_cycle={same_cycle}: {d:?}");
                // Nothing lost: the samples come out in order without gaps.
                let first = played.iter().position(|&v| decode(v).is_some()).unwrap();
                let last = played.iter().rposition(|&v| decode(v).is_some()).unwrap();
                assert_eq!(d.len(), last - first + 1, "a gap in {block}/{quantum}");
            }
        }
    }

    #[test]
    fn a_quantum_change_grows_the_latency_once_and_loses_nothing() {
        let mut quanta = vec![64u32; 40];
        quanta.extend(vec![256u32; 40]);
        quanta.extend(vec![128u32; 40]);
        for same_cycle in [false, true] {
            let (played, delay) = run(64, &quanta, same_cycle, None);
            let d = delays(&played);
            let first = played.iter().position(|&v| decode(v).is_some()).unwrap();
            let last = played.iter().rposition(|&v| decode(v).is_some()).unwrap();
            // Every sample once, in order: silence is only ever inserted
            // before the chain, never between two samples of the host.
            let indices: Vec<u64> = played[first..=last].iter().filter_map(|&v| decode(v)).collect();
            assert!(indices.windows(2).all(|w| w[1] == w[0] + 1), "same_cycle={same_cycle}");
            assert!(d.windows(2).all(|w| w[1] >= w[0]), "latency shrank");
            assert_eq!(*d.last().unwrap(), delay as u64, "same_cycle={same_cycle}");
        }
    }

    #[test]
    fn a_late_cycle_costs_one_quantum_of_audio_and_keeps_the_latency() {
        for same_cycle in [false, true] {
            let (played, delay) = run(128, &[64; 64], same_cycle, Some(30));
            let d = delays(&played);
            assert!(d.iter().all(|&x| x == delay as u64), "same_cycle={same_cycle}");
            let first = played.iter().position(|&v| decode(v).is_some()).unwrap();
            let silent = played[first..].iter().filter(|&&v| v == 0.0).count();
            assert_eq!(silent, 64, "same_cycle={same_cycle}");
        }
    }
}
