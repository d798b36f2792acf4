//! process() cost per cycle, next to a plain copy of the same bytes.
//!
//! Runs the real `Rt::process` against the fixture that stands in for the
//! daemon's io areas and buffers, with a client attached that completes
//! every cycle. Each call is timed on its own with `Instant` (the timer
//! costs a few tens of ns, included in both columns alike).

use spa_asio_bridge::fixture::Graph;
use std::{hint::black_box, time::Instant};

const CYCLES: usize = 20_000;
const WARMUP: usize = 2_000;

fn percentiles(mut ns: Vec<u64>) -> (u64, u64) {
    ns.sort_unstable();
    (ns[ns.len() / 2], ns[ns.len() * 99 / 100])
}

fn bench_process(channels: u32, quantum: u32) -> (u64, u64) {
    let mut g = Graph::new(channels, quantum);
    let mut ns = Vec::with_capacity(CYCLES);
    for i in 0..WARMUP + CYCLES {
        g.prepare();
        let t = Instant::now();
        black_box(g.rt.process());
        let elapsed = t.elapsed().as_nanos() as u64;
        g.client_completes();
        g.advance();
        if i >= WARMUP {
            ns.push(elapsed);
        }
    }
    percentiles(ns)
}

/// The same bytes process() moves: every input channel into shared memory
/// and every output channel out of it, one quantum each.
fn bench_memcpy(channels: u32, quantum: u32) -> (u64, u64) {
    let n = quantum as usize;
    let src: Vec<Vec<f32>> = (0..2 * channels).map(|_| vec![0.5; n]).collect();
    let mut dst: Vec<Vec<f32>> = (0..2 * channels).map(|_| vec![0.0; n]).collect();
    let mut ns = Vec::with_capacity(CYCLES);
    for i in 0..WARMUP + CYCLES {
        let t = Instant::now();
        for (d, s) in dst.iter_mut().zip(&src) {
            d.copy_from_slice(black_box(s));
        }
        black_box(&mut dst);
        if i >= WARMUP {
            ns.push(t.elapsed().as_nanos() as u64);
        }
    }
    percentiles(ns)
}

fn main() {
    println!("process() per cycle vs memcpy of the same bytes ({CYCLES} cycles each)");
    println!("{:>8} {:>7} {:>10} {:>10} {:>10} {:>10} {:>7}", "channels", "quantum", "proc p50", "proc p99", "copy p50", "copy p99", "ratio");
    for channels in [2, 8, 32] {
        for quantum in [64, 256, 1024] {
            let (p50, p99) = bench_process(channels, quantum);
            let (m50, m99) = bench_memcpy(channels, quantum);
            println!(
                "{channels:>8} {quantum:>7} {:>8}ns {:>8}ns {:>8}ns {:>8}ns {:>7.2}",
                p50, p99, m50, m99, p50 as f64 / m50.max(1) as f64
            );
        }
    }
}
