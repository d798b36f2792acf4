//! The counter signal the tests and benchmarks send through the graph: each
//! sample carries its own index, exactly representable in float32, so a
//! receiver can check every sample bit-exactly and measure the delay.

/// Period of the counter, in samples (2^23 - 1).
pub const PERIOD: u64 = 8_388_607;
const SCALE: f32 = 8_388_608.0;

/// The counter's value for sample index `n`: never 0, exact in float32.
pub fn counter(n: u64) -> f32 {
    ((n % PERIOD) + 1) as f32 / SCALE
}

/// The sample index (mod PERIOD) a counter value encodes; None for silence
/// or a value the counter never produces.
pub fn decode(v: f32) -> Option<u64> {
    let k = v * SCALE;
    (v > 0.0 && k.fract() == 0.0 && (k as u64) <= PERIOD).then(|| k as u64 - 1)
}

/// Checks a stream of received samples against the counter: the first
/// counter sample fixes the delay, every later sample must match it.
#[derive(Debug, Default, Clone, Copy)]
pub struct CounterCheck {
    /// Delay in samples (receive index - send index), once locked.
    pub delay: Option<u64>,
    pub matched: u64,
    /// Silent samples after lock: a cycle the sender missed (the node plays
    /// silence for it), never wrong audio.
    pub dropouts: u64,
    /// Samples with any other value: corruption.
    pub mismatches: u64,
    /// Samples off the counter in a cycle whose position jumped: the graph
    /// skipped cycles (PipeWire 1.x does when its driver wakes late), so
    /// this cycle carries the one before the jump. The machine's loss,
    /// counted apart; the delay holds again from the next cycle.
    pub jump_mismatches: u64,
}

impl CounterCheck {
    /// `index` is the receiver's sample index of `samples[0]`; `jumped`:
    /// the graph's position jumped to it (see `jump_mismatches`).
    pub fn feed(&mut self, index: u64, samples: &[f32], jumped: bool) {
        for (i, &v) in samples.iter().enumerate() {
            let at = index + i as u64;
            match (self.delay, decode(v)) {
                (None, None) => {}
                (None, Some(k)) => {
                    self.delay = Some((at % PERIOD + PERIOD - k) % PERIOD);
                    self.matched += 1;
                }
                (Some(_), _) if v == 0.0 => self.dropouts += 1,
                (Some(d), _) => {
                    if v.to_bits() == counter((at % PERIOD + PERIOD - d % PERIOD) % PERIOD).to_bits() {
                        self.matched += 1;
                    } else if jumped {
                        self.jump_mismatches += 1;
                    } else {
                        self.mismatches += 1;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_round_trips_and_check_finds_delay_and_errors() {
        for n in [0, 1, 4095, PERIOD - 1, PERIOD, 3 * PERIOD + 17] {
            assert_eq!(decode(counter(n)), Some(n % PERIOD));
        }
        assert_eq!(decode(0.0), None);
        let sent: Vec<f32> = (0..1000).map(counter).collect();
        let mut check = CounterCheck::default();
        check.feed(0, &[0.0; 256], false);
        check.feed(256, &sent[..500], false);
        assert_eq!((check.delay, check.mismatches, check.matched), (Some(256), 0, 500));
        let mut bad = sent[500..].to_vec();
        bad[7] = 0.5;
        bad[8] = 0.0;
        check.feed(756, &bad, false);
        assert_eq!((check.mismatches, check.dropouts), (1, 1));
        // A jump of the graph's position by a quantum: that cycle carries
        // the one before it, counted apart.
        check.feed(756 + 500 + 64, &sent[1000 - 256 - 64..1000 - 256], true);
        assert_eq!((check.mismatches, check.jump_mismatches), (1, 64));
    }
}
