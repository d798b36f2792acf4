//! process() cost per cycle, next to a plain copy of the same bytes.
//!
//! Runs the real `Rt::process` against the fixture that stands in for the
//! daemon's io areas, port buffers and driver position, with a client
//! attached that completes every cycle (so every output is read from shared
//! memory, never the silence shortcut). `prepare`, `client_completes` and
//! `advance` run outside the timed section.
//!
//! Timing: each call is timed on its own with a pair of `Instant::now()`
//! (no batching). The pair's own cost is measured and printed; it is
//! included in every figure of both columns alike.

use asio_bridge_abi::futex;
#[path = "../tests/fixture/mod.rs"]
mod fixture;

use fixture::Graph;
use spa_asio_bridge::Mode;
use std::{hint::black_box, sync::atomic::AtomicU32, time::Instant};

const CYCLES: usize = 20_000;
const WARMUP: usize = 2_000;

/// p50 and p99 of the samples.
fn percentiles(mut ns: Vec<u64>) -> (u64, u64) {
    ns.sort_unstable();
    (ns[ns.len() / 2], ns[ns.len() * 99 / 100])
}

/// Times `body` once per cycle, `setup` and `teardown` untimed around it.
fn timed<S>(state: &mut S, setup: fn(&mut S), body: fn(&mut S), teardown: fn(&mut S)) -> (u64, u64) {
    let mut ns = Vec::with_capacity(CYCLES);
    for i in 0..WARMUP + CYCLES {
        setup(state);
        let t = Instant::now();
        body(state);
        let elapsed = t.elapsed().as_nanos() as u64;
        teardown(state);
        if i >= WARMUP {
            ns.push(elapsed);
        }
    }
    percentiles(ns)
}

fn nothing<S>(_: &mut S) {}

fn bench_process(channels: u32, quantum: u32) -> (u64, u64) {
    timed(
        &mut Graph::new(channels, quantum, Mode::Pipelined),
        Graph::prepare,
        |g| {
            black_box(g.rt.process());
        },
        |g| {
            g.client_completes();
            g.advance();
        },
    )
}

/// The bytes process() moves, as the same per-channel copies: every input
/// channel (port buffer -> shared memory) and every output channel (shared
/// memory -> port buffer), one quantum each.
fn bench_memcpy(channels: u32, quantum: u32) -> (u64, u64) {
    let n = quantum as usize;
    let src: Vec<Vec<f32>> = (0..2 * channels).map(|_| vec![0.5; n]).collect();
    let dst: Vec<Vec<f32>> = (0..2 * channels).map(|_| vec![0.0; n]).collect();
    timed(
        &mut (src, dst),
        nothing,
        |(src, dst)| {
            for (d, s) in dst.iter_mut().zip(src.iter()) {
                d.copy_from_slice(black_box(s));
            }
            black_box(dst);
        },
        nothing,
    )
}

/// The output copy with its NaN/Inf guard (`copy_finite`, what process()
/// runs for every output channel) over `channels` channels of `quantum`
/// finite samples, or with `guard` false the plain copy of the same bytes.
fn bench_output_copy(channels: u32, quantum: u32, guard: bool) -> (u64, u64) {
    let n = quantum as usize;
    let src: Vec<Vec<f32>> = (0..channels).map(|_| vec![0.5; n]).collect();
    let dst: Vec<Vec<f32>> = (0..channels).map(|_| vec![0.0; n]).collect();
    let body: fn(&mut (Vec<Vec<f32>>, Vec<Vec<f32>>, bool)) = |(src, dst, guard)| {
        for (d, s) in dst.iter_mut().zip(src.iter()) {
            if *guard {
                black_box(spa_asio_bridge::cycle::copy_finite(d, black_box(s)));
            } else {
                d.copy_from_slice(black_box(s));
            }
        }
        black_box(dst);
    };
    timed(&mut (src, dst, guard), nothing, body, nothing)
}

fn main() {
    let (timer, _) = timed(&mut (), nothing, nothing, nothing);
    // The wake-up every cycle ends with, with nobody waiting: a syscall
    // whose cost does not depend on the channels or the quantum.
    let (wake, _) = timed(&mut AtomicU32::new(0), nothing, |w| futex::wake(w), nothing);
    println!(
        "process() per cycle vs memcpy of the same bytes: {CYCLES} cycles each after {WARMUP} warm-up, each timed alone with Instant \
         (an empty Instant pair: p50 {timer} ns, included in every figure)"
    );
    println!(
        "{:>8} | {:>7} | {:>14} | {:>14} | {:>13} | {:>13} | {:>5}",
        "channels", "quantum", "process p50 ns", "process p99 ns", "memcpy p50 ns", "memcpy p99 ns", "ratio"
    );
    for channels in [2, 8, 32] {
        for quantum in [64, 256, 1024] {
            let (p50, p99) = bench_process(channels, quantum);
            let (m50, m99) = bench_memcpy(channels, quantum);
            println!(
                "{channels:>8} | {quantum:>7} | {p50:>14} | {p99:>14} | {m50:>13} | {m99:>13} | {:>5.2}",
                p50 as f64 / m50.max(1) as f64
            );
        }
    }
    println!("channels: per direction; ratio: process p50 / memcpy p50; process includes one futex wake with nobody waiting (alone: p50 {wake} ns)");

    println!("\nthe NaN/Inf guard: output channels copied with copy_finite (what process() runs) vs a plain copy, {CYCLES} cycles each");
    println!("{:>8} | {:>7} | {:>12} | {:>12} | {:>11} | {:>11} | {:>12}", "channels", "quantum", "guard p50 ns", "guard p99 ns", "copy p50 ns", "copy p99 ns", "cost p50 ns");
    for channels in [2, 32] {
        for quantum in [64, 256, 1024] {
            let (g50, g99) = bench_output_copy(channels, quantum, true);
            let (c50, c99) = bench_output_copy(channels, quantum, false);
            println!("{channels:>8} | {quantum:>7} | {g50:>12} | {g99:>12} | {c50:>11} | {c99:>11} | {:>12}", g50 as i64 - c50 as i64);
        }
    }
}
