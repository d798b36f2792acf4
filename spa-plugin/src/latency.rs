//! What PipeWire reports of the latency beyond the bridge's ports, reduced
//! to the frames the driver reports to the DAW.
//!
//! PipeWire sets on each input port the capture latency of what feeds it
//! (direction OUTPUT) and on each output port the playback latency of what
//! it feeds (direction INPUT). The bridge's ports are terminal: the DAW in
//! between is not a path PipeWire can follow, so the bridge reports only its
//! own delay: the out_* ports' capture latency is one quantum when pipelined.

use libspa_sys as spa;

pub type Latency = spa::spa_latency_info;

pub fn zero(direction: u32) -> Latency {
    Latency { direction, min_quantum: 0.0, max_quantum: 0.0, min_rate: 0, max_rate: 0, min_ns: 0, max_ns: 0 }
}

/// A fixed latency of `quanta` graph quanta.
pub fn quanta(direction: u32, quanta: f32) -> Latency {
    Latency { min_quantum: quanta, max_quantum: quanta, ..zero(direction) }
}

/// The widest of several ranges (what a DAW must compensate for).
pub fn widest(direction: u32, all: impl Iterator<Item = Latency>) -> Latency {
    all.fold(zero(direction), |a, b| Latency {
        direction,
        min_quantum: a.min_quantum.max(b.min_quantum),
        max_quantum: a.max_quantum.max(b.max_quantum),
        min_rate: a.min_rate.max(b.min_rate),
        max_rate: a.max_rate.max(b.max_rate),
        min_ns: a.min_ns.max(b.min_ns),
        max_ns: a.max_ns.max(b.max_ns),
    })
}

/// The worst case of a range in frames at this quantum and rate. Plain
/// arithmetic: safe on the RT path.
pub fn frames(l: &Latency, quantum: u32, rate: u32) -> u32 {
    let quanta = (l.max_quantum.max(0.0) * quantum as f32).round() as u64;
    let ns = l.max_ns.saturating_mul(rate as u64) / 1_000_000_000;
    (quanta + l.max_rate as u64 + ns).min(u32::MAX as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_add_quanta_samples_and_time() {
        let l = Latency { max_quantum: 1.0, max_rate: 32, max_ns: 1_000_000, ..zero(spa::SPA_DIRECTION_OUTPUT) };
        assert_eq!(frames(&l, 256, 48000), 256 + 32 + 48);
        let w = widest(spa::SPA_DIRECTION_OUTPUT, [l, Latency { max_rate: 100, ..zero(1) }].into_iter());
        assert_eq!((w.max_quantum, w.max_rate, w.max_ns), (1.0, 100, 1_000_000));
        assert_eq!(frames(&zero(0), 1024, 48000), 0);
    }
}
