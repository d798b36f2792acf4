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
//! Every graph frame keeps its place in the chain when the host falls
//! behind. A late cycle (the node played silence for the last half) gives
//! up that half's frames; a missed cycle (the client never saw it: the node
//! played silence for its output, its input is gone) gives up a quantum of
//! output and puts a quantum of silence in the input FIFO, which the host
//! works through in extra host buffers. So the host's audio comes back
//! either at exactly `delay` frames or not at all (silence), both at the
//! node's ports and through a loop the host closes in the graph. A stall
//! longer than the FIFOs hold starts the chain over at the same delay.
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
    /// Frames each FIFO holds at most.
    capacity: usize,
    /// Frames in each output FIFO.
    fill: usize,
    /// Frames the node has already played silence for past the end of the
    /// output FIFOs (cycles the client missed): the host's next output
    /// frames stand for them and are dropped.
    debt: usize,
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
            capacity,
            fill: 0,
            debt: 0,
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

    /// Empties the chain and primes it for cycles of `frames`: with just
    /// enough silence at the start, later with as much as keeps the delay.
    fn restart(&mut self, frames: u32) {
        for r in self.input.iter_mut().chain(self.output.iter_mut()) {
            r.discard(r.len);
        }
        (self.gathered, self.fill, self.debt) = (0, 0, 0);
        self.delay = self.delay.max(start_delay(self.block as u32, frames, self.same_cycle));
        let pipeline = if self.same_cycle { 0 } else { frames };
        self.push_output(None, (self.delay - pipeline) as usize);
    }

    /// The node played `n` frames of output, or silence in their place.
    fn take_output(&mut self, n: usize) {
        let have = n.min(self.fill);
        for r in &mut self.output {
            r.discard(have);
        }
        self.fill -= have;
        self.debt += n - have;
    }

    fn push_output(&mut self, src: Option<&[f32]>, n: usize) {
        for r in &mut self.output {
            r.push(src, n);
        }
        self.fill += n;
    }

    /// A cycle arrived: settles what the node took of the last output half,
    /// then takes this cycle's input (the cycle's frames of each channel).
    pub fn begin_cycle(&mut self, cycle: CycleInfo, input: &mut impl Channels) {
        let late = cycle.late_cycles.wrapping_sub(self.late_seen);
        self.late_seen = cycle.late_cycles;
        if !self.started {
            self.started = true;
            self.restart(cycle.frames);
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
            // A missed cycle cost the node a quantum of output as well
            // (the client wrote no half for it: silence in its place), and
            // its input never reached the client. Both sides keep their
            // place: the output FIFO gives up a quantum per missed cycle
            // (what it lacks, the host's next output pays), the input FIFO
            // gets a quantum of silence, so every later sample keeps the
            // delay. Skipping the input without the output, as before,
            // moved the samples between the two gaps by a quantum, early
            // in the host's round trip or late at the node's ports. (Both
            // sides skipping keeps the node's delay but not the host's
            // round trip: the two gaps are at different graph times.) The
            // host catches up through the silence in extra host buffers.
            let lost = cycle.missed as usize * cycle.frames as usize;
            if self.gathered + lost + cycle.frames as usize > self.capacity {
                // A stall longer than the FIFOs hold: start over, at the
                // same delay.
                self.restart(cycle.frames);
            } else {
                self.take_output(took + lost);
                for r in &mut self.input {
                    r.push(None, lost);
                }
                self.gathered += lost;
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
        // Frames the node already played silence for are dropped.
        let dropped = self.debt.min(self.block);
        self.debt -= dropped;
        for (ch, r) in self.output.iter_mut().enumerate() {
            let kept = host_out.channel(ch as u32).get(dropped..self.block).unwrap_or_default();
            r.push(Some(kept), self.block - dropped);
        }
        self.fill += self.block - dropped;
    }

    /// The cycle's host buffers are done: writes the output half
    /// (each channel's whole half) and returns how many frames it holds.
    pub fn end_cycle(&mut self, half: &mut impl Channels) -> u32 {
        // Short of this quantum, the FIFO grows by silence now, so the node
        // never pads in the middle of the host's audio.
        // Frames still owed to the node (none while the chain keeps its
        // delay) make it short too: forgiven, they move the host's output
        // later by as much.
        let quantum = self.last_frames as usize;
        let short = (quantum + self.debt).saturating_sub(self.fill);
        if short > 0 {
            self.delay += short as u32;
            let owed = std::mem::take(&mut self.debt);
            self.push_output(None, short.saturating_sub(owed));
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

    /// What the client does with one graph cycle.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Client {
        /// Completes it before the node needs its output.
        OnTime,
        /// Sees it but completes it too late: the node plays silence for
        /// its output and counts a late cycle.
        Late,
        /// Never sees it (woken after the node published the next one):
        /// its input is lost to the client, the node plays silence for its
        /// output and counts a late cycle, the client's next cycle has
        /// `missed` > 0.
        Missed,
    }

    /// One simulated run: what the node played, what the host received
    /// (with its input sample index), the reblocker's final delay and the
    /// graph cycles whose output the node played as silence.
    struct Sim {
        played: Vec<f32>,
        received: Vec<f32>,
        delay: u32,
        silent_cycles: Vec<(u64, u32)>,
        missed_cycles: Vec<(u64, u32)>,
        /// Looped: from which host input index to which a host excuses
        /// silence, for each block that reported late cycles.
        excused: Vec<(u64, u64)>,
    }

    /// Runs a graph of `quanta` (one per cycle) through a reblocker, the
    /// node as spa-plugin/src/cycle.rs runs it (pipelined: in cycle k it
    /// plays the half the client completed for k-1, or silence and a late
    /// count; same-cycle: the half of cycle k or silence) and the client as
    /// `client(k)` says. `looped`: the host writes a counter of its own
    /// output index and the graph links the node's output back to its
    /// input (one quantum later); otherwise the graph's input is a counter
    /// of the graph position and the host echoes input 1 to output 1.
    fn simulate(block: u32, quanta: &[u32], same_cycle: bool, looped: bool, client: impl Fn(usize) -> Client) -> Sim {
        let mut r = Reblocker::new(block, 1, 1, 8192, same_cycle);
        let mut sim = Sim { played: Vec::new(), received: Vec::new(), delay: 0, silent_cycles: Vec::new(), missed_cycles: Vec::new(), excused: Vec::new() };
        let mut host_late = 0u32;
        let (mut graph_pos, mut late, mut missed, mut host_out_pos) = (0u64, 0u32, 0u32, 0u64);
        let mut halves: Vec<Vec<f32>> = Vec::new(); // the client's output half of each cycle
        let (mut done, mut done_later): (Option<usize>, Option<usize>) = (None, None);
        let mut half = vec![vec![0.0f32; 8192]];
        let mut host = vec![vec![0.0f32; block as usize]];
        let mut last_played: Vec<f32> = Vec::new();
        for (k, &q) in quanta.iter().enumerate() {
            let q_us = q as usize;
            let input: Vec<f32> = if looped {
                let mut v = last_played.clone();
                v.resize(q_us, 0.0);
                v
            } else {
                (0..q as u64).map(|i| counter(graph_pos + i)).collect()
            };
            let mut out = vec![0.0; q_us];
            if !same_cycle && k > 0 {
                // The node checks the previous cycle, then plays it or silence.
                if done == Some(k - 1) {
                    let h = &halves[k - 1];
                    let n = q_us.min(h.len());
                    out[..n].copy_from_slice(&h[..n]);
                } else {
                    late += 1;
                    sim.silent_cycles.push((graph_pos, q));
                }
                if let Some(d) = done_later.take() {
                    done = Some(d);
                }
            }
            // The node publishes cycle k; the client runs it or not.
            let behaviour = client(k);
            if behaviour == Client::Missed {
                missed += 1;
                sim.missed_cycles.push((graph_pos, q));
                halves.push(Vec::new());
            } else {
                let mut input = vec![input];
                r.begin_cycle(CycleInfo { frames: q, missed, late_cycles: late }, &mut input);
                missed = 0;
                while r.next_block(&mut host) {
                    if looped {
                        // A host excuses silence for the late cycles
                        // reported with a block until they are through the
                        // loop: the round trip and a cycle each, plus two,
                        // as asio-host does, but with the graph's quantum
                        // as the least a cycle can cost. (asio-host takes
                        // the larger of output latency and buffer: short by
                        // 64 frames for 3 missed cycles in a row, buffer 64
                        // same-cycle on quantum 128.)
                        let reported = late - host_late;
                        if reported > 0 {
                            host_late = late;
                            let cycle = u64::from(r.delay().max(block).max(q));
                            let round_trip = u64::from(r.delay() + q);
                            let at = sim.received.len() as u64;
                            sim.excused.push((at, at + round_trip + u64::from(reported + 2) * cycle));
                        }
                        sim.received.extend_from_slice(&host[0]);
                        for (i, v) in host[0].iter_mut().enumerate() {
                            *v = counter(host_out_pos + i as u64);
                        }
                        host_out_pos += block as u64;
                    }
                    r.end_block(&mut host); // echoes unless looped
                }
                let n = r.end_cycle(&mut half) as usize;
                halves.push(half[0][..n].to_vec());
                match behaviour {
                    Client::OnTime => done = Some(k),
                    _ => done_later = Some(k),
                }
            }
            if same_cycle {
                if behaviour == Client::OnTime {
                    let h = &halves[k];
                    let n = q_us.min(h.len());
                    out[..n].copy_from_slice(&h[..n]);
                } else {
                    late += 1;
                    sim.silent_cycles.push((graph_pos, q));
                }
                if let Some(d) = done_later.take() {
                    done = Some(d);
                }
            }
            graph_pos += q as u64;
            sim.played.extend_from_slice(&out);
            last_played = out;
        }
        sim.delay = r.delay();
        sim
    }

    /// Every counter sample comes back exactly `expected` frames after it
    /// was sent; everything else after the first one is silence, and only
    /// where `allowed` says (None: any, at most `max_silent` frames).
    fn check_exact(label: &str, samples: &[f32], expected: u64, allowed: Option<&dyn Fn(u64) -> bool>, max_silent: usize) {
        let first = samples.iter().position(|&v| decode(v).is_some()).unwrap_or_else(|| panic!("{label}: nothing came back"));
        let mut silent = 0;
        for (i, &v) in samples.iter().enumerate().skip(first) {
            match decode(v) {
                Some(k) => assert_eq!(i as u64 - k, expected, "{label}: sample {k} came back at {i}"),
                None => {
                    assert_eq!(v, 0.0, "{label}: wrong value at {i}");
                    if let Some(allowed) = allowed {
                        assert!(allowed(i as u64), "{label}: silence at {i}, outside the late and missed cycles");
                    }
                    silent += 1;
                }
            }
        }
        assert!(silent <= max_silent, "{label}: {silent} frames of silence, at most {max_silent} expected");
        assert!(samples.len() - first > 4 * 1024, "{label}: too short a run");
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

    /// Clients that miss or are late for cycles at the start and at every
    /// phase of the FIFOs mid-stream.
    fn client_patterns(block: u32, quantum: u32) -> Vec<(String, Vec<(usize, Client)>)> {
        use Client::*;
        let mut patterns: Vec<(String, Vec<(usize, Client)>)> = Vec::new();
        for k in 0..4 {
            patterns.push((format!("missed {k}"), vec![(k, Missed)]));
            patterns.push((format!("late {k}"), vec![(k, Late)]));
        }
        patterns.push(("missed 0..3".into(), (0..3).map(|k| (k, Missed)).collect()));
        patterns.push(("missed 1, late 2".into(), vec![(1, Missed), (2, Late)]));
        // Every phase of host buffers against cycles.
        let phases = (block / gcd(block, quantum)) as usize + 1;
        for p in 0..phases {
            let k = 20 + p;
            patterns.push((format!("missed {k}"), vec![(k, Missed)]));
            patterns.push((format!("late {k}"), vec![(k, Late)]));
            patterns.push((format!("late {k}, missed {}", k + 1), vec![(k, Late), (k + 1, Missed)]));
            patterns.push((format!("missed {k}, late {}", k + 1), vec![(k, Missed), (k + 1, Late)]));
            patterns.push((format!("missed {k}, {}", k + 1), vec![(k, Missed), (k + 1, Missed)]));
            patterns.push((format!("missed {k}, on time, missed {}", k + 2), vec![(k, Missed), (k + 2, Missed)]));
        }
        for m in [3, 4, 5, 40] {
            patterns.push((format!("missed 20..{}", 20 + m), (20..20 + m).map(|k| (k, Missed)).collect()));
        }
        patterns
    }

    #[test]
    fn missed_and_late_cycles_keep_every_sample_at_the_reported_delay() {
        let mut failed = Vec::new();
        for (block, quantum) in [(256, 128), (64, 128), (96, 128), (320, 128), (128, 128), (96, 64), (128, 256), (1024, 128)] {
            let cycles = (8192 / quantum + 64) as usize;
            for same_cycle in [false, true] {
                for (name, pattern) in client_patterns(block, quantum) {
                    let client = |k: usize| pattern.iter().find(|p| p.0 == k).map_or(Client::OnTime, |p| p.1);
                    let label = format!("{block} on {quantum}, same_cycle={same_cycle}, {name}");
                    let case = std::panic::catch_unwind(|| {
                    let expected = start_delay(block, quantum, same_cycle);
                    // The host echoes: delays measured at the node's ports.
                    let sim = simulate(block, &vec![quantum; cycles], same_cycle, false, client);
                    assert_eq!(sim.delay, expected, "{label}: reported delay");
                    let (silent, missed) = (&sim.silent_cycles, &sim.missed_cycles);
                    let d = expected as u64;
                    let allowed = |i: u64| {
                        silent.iter().any(|&(p, q)| (p..p + q as u64).contains(&i))
                            || missed.iter().any(|&(p, q)| (p + d..p + d + q as u64).contains(&i))
                    };
                    let max = (silent.len() + missed.len()) * quantum as usize;
                    check_exact(&format!("{label}, echo"), &sim.played, d, Some(&allowed), max);
                    // The host sends a counter of its own through a loop in
                    // the graph (one quantum more), as the Wine test does.
                    let sim = simulate(block, &vec![quantum; cycles], same_cycle, true, client);
                    assert_eq!(sim.delay, expected, "{label}: reported delay, looped");
                    let max = (sim.silent_cycles.len() + sim.missed_cycles.len()) * quantum as usize;
                    check_exact(&format!("{label}, loop"), &sim.received, d + quantum as u64, None, max);
                    // And only while the host is told of late cycles.
                    let first = sim.received.iter().position(|&v| decode(v).is_some()).unwrap();
                    let dropouts: Vec<usize> = (first..sim.received.len())
                        .filter(|&m| sim.received[m] == 0.0)
                        .filter(|&m| !sim.excused.iter().any(|&(at, until)| at <= m as u64 && (m as u64) < until))
                        .collect();
                    assert!(dropouts.is_empty(), "{label}, loop: {} frames of silence the host is not told of, at {:?}", dropouts.len(), &dropouts[..dropouts.len().min(4)]);
                    });
                    if let Err(e) = case {
                        failed.push(e.downcast_ref::<String>().cloned().unwrap_or(label));
                    }
                }
            }
        }
        assert!(failed.is_empty(), "{} cases failed:\n{}", failed.len(), failed.join("\n"));
    }

    #[test]
    fn a_stall_longer_than_the_fifos_starts_over_at_the_same_delay() {
        for (block, quantum) in [(256, 128), (96, 128), (128, 128)] {
            for same_cycle in [false, true] {
                // 200 cycles of 128 frames: more than the FIFOs hold.
                let client = |k: usize| if (20..220).contains(&k) { Client::Missed } else { Client::OnTime };
                let label = format!("{block} on {quantum}, same_cycle={same_cycle}");
                let sim = simulate(block, &vec![quantum; 400], same_cycle, false, client);
                let expected = start_delay(block, quantum, same_cycle);
                assert_eq!(sim.delay, expected, "{label}");
                let (silent, missed, d) = (&sim.silent_cycles, &sim.missed_cycles, expected as u64);
                let allowed = |i: u64| {
                    silent.iter().any(|&(p, q)| (p..p + q as u64).contains(&i))
                        || missed.iter().any(|&(p, q)| (p + d..p + d + q as u64).contains(&i))
                };
                let max = (silent.len() + missed.len()) * quantum as usize;
                check_exact(&label, &sim.played, d, Some(&allowed), max);
                // Through a loop the host's own count starts over too, but
                // never comes back early.
                let sim = simulate(block, &vec![quantum; 400], same_cycle, true, client);
                let first = sim.received.iter().position(|&v| decode(v).is_some()).unwrap();
                for (i, &v) in sim.received.iter().enumerate().skip(first) {
                    if let Some(k) = decode(v) {
                        assert!(i as u64 - k >= d + quantum as u64, "{label}: {k} came back at {i}");
                    }
                }
            }
        }
    }
}
