//! Wake-up latency from the node publishing a cycle to the client's
//! callback starting, next to the floor: a plain two-process futex
//! ping-pong over one shared page, in the same CPU placement. Then, for a
//! same-cycle bridge, how long the node's cycle waits for the client
//! (publish to completion, the node's own wake-up not included).
//!
//! The bridge figures are the reference client's own (`wake_*_us`: its
//! callback's start minus the cycle record's `publish_nsec`, stamped just
//! before the node's futex wake), against a real private daemon whose every
//! thread is pinned with taskset. The floor is stamped and measured the
//! same way: stamp, store, FUTEX_WAKE; the other process reads the clock
//! when its FUTEX_WAIT returns.

use asio_bridge_tests::{
    floor::{daemon_threads, futex_floor, Figures, PRIO, ROUNDS},
    fragment, output_text, report, run_with_timeout, with_bridge, Daemon, Report,
};
use std::{process::Command, time::Duration};

const SECONDS: &str = "5";
const QUANTUM: u32 = 256;
const DAEMON_CPU: usize = 0;
const SAME_CYCLE: &str = "asio-bridge-same-cycle";

/// The reference client's figures on `node` with its callback thread on
/// `cpu` at SCHED_FIFO `PRIO`: wake-up, publish to completion, and a note
/// on what it saw besides.
fn bridge_wake(daemon: &Daemon, node: &str, cpu: usize) -> (Figures, Figures, String) {
    let out = run_with_timeout(
        daemon.client().args(["--node", node, "--seconds", SECONDS, "--rt", &PRIO.to_string(), "--cpu", &cpu.to_string()]),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "the reference client failed: {}", output_text(&out));
    let r = report(&out.stdout);
    assert_eq!(r.str("pinned"), "1", "the client could not pin its callback thread to CPU {cpu}");
    assert_eq!(r.num("frames"), QUANTUM as f64, "the graph did not run at quantum {QUANTUM}");
    let note = format!(
        "{} cycles, {} late, callback {}",
        r.str("cycles"),
        r.str("late_cycles"),
        if r.str("realtime") == "1" { format!("SCHED_FIFO {PRIO}") } else { "SCHED_OTHER (FIFO not permitted)".into() }
    );
    let figures = |name: &str| (r.num(&format!("{name}_p50_us")), r.num(&format!("{name}_p99_us")), r.num(&format!("{name}_max_us")));
    (figures("wake"), figures("done"), note)
}

fn main() {
    // The floors first: fork() wants a process without other threads.
    let floors = [futex_floor(DAEMON_CPU, DAEMON_CPU), futex_floor(DAEMON_CPU, 1)];
    let text = with_bridge(&fragment("50-asio-bridge.conf"), &format!("node.name={SAME_CYCLE} asio.mode=same-cycle"));
    let daemon = Daemon::start_bare("bench-wake", &[("50-asio-bridge.conf", &text)]);
    daemon.node("asio-bridge");
    daemon.node(SAME_CYCLE);
    daemon.force_quantum(QUANTUM);
    let cpu = DAEMON_CPU.to_string();
    let taskset = Command::new("taskset").args(["-a", "-p", "-c", &cpu, &daemon.pid().to_string()]).output().expect("taskset (util-linux)");
    assert!(taskset.status.success(), "taskset failed: {}", output_text(&taskset));
    let placements = [(DAEMON_CPU, "same CPU (daemon 0, client 0)"), (1, "different CPUs (daemon 0, client 1)")];
    let runs = placements.map(|(client_cpu, label)| (label, bridge_wake(&daemon, "asio-bridge", client_cpu)));
    let same_cycle = placements.map(|(client_cpu, label)| (label, bridge_wake(&daemon, SAME_CYCLE, client_cpu)));

    println!(
        "wake-up latency, node publish -> client callback start, quantum {QUANTUM} at 48 kHz, {SECONDS} s per placement; \
         floor: {ROUNDS}-round two-process futex ping-pong, one-way; µs"
    );
    let triple = |(a, b, c): Figures| format!("{a:.1} / {b:.1} / {c:.1}");
    println!("{:<35} | {:>30} | {:>30}", "placement", "bridge wake p50 / p99 / max", "futex floor p50 / p99 / max");
    for ((label, (wake, _, _)), (floor, _)) in runs.iter().zip(&floors) {
        println!("{label:<35} | {:>30} | {:>30}", triple(*wake), triple(*floor));
    }
    for (label, (_, _, note)) in &runs {
        println!("bridge, {label}: {note}");
    }
    println!(
        "same-cycle mode: how long the node's cycle waits for the client, publish -> cycle marked complete \
         (the node's own wake-up after that not included), quantum {QUANTUM} at 48 kHz, budget {} µs; µs",
        QUANTUM as u64 * 500_000 / 48_000
    );
    println!("{:<35} | {:>30}", "placement", "node wait p50 / p99 / max");
    for (label, (_, done, _)) in &same_cycle {
        println!("{label:<35} | {:>30}", triple(*done));
    }
    for (label, (_, _, note)) in &same_cycle {
        println!("same-cycle, {label}: {note}");
    }
    let fifo = |rt: bool| if rt { format!("both SCHED_FIFO {PRIO}") } else { "SCHED_FIFO not permitted: SCHED_OTHER".into() };
    println!("floor: {} (same CPU), {} (different CPUs)", fifo(floors[0].1), fifo(floors[1].1));
    println!("daemon threads: {}", daemon_threads(daemon.pid()));
}
