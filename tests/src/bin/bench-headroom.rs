//! Headroom near the floor: how much of each period a DAW can use before
//! the bridge loses cycles. The project's ASIO host, under Wine, burns a
//! share of each period in its callback (a busy spin from the callback's
//! entry) at small quanta, its outputs looped back to its inputs through
//! the graph so every sample is checked. Per cell: the overloads the driver
//! reported, the cycles the node played silence for, the wake-ups that came
//! late, and the wake-up latency; then where each cycle's time went, step
//! by step, from the host's own per-step figures (see asio-host's usage);
//! and the futex floor in the same placement.

use asio_bridge_tests::{
    floor::{daemon_threads, futex_floor, Figures, PRIO, ROUNDS},
    fragment, output_text,
    wine::Prefix,
    Daemon, Report,
};
use std::{collections::HashMap, process::Command, time::Duration};

const QUANTA: [u32; 3] = [32, 64, 128];
const BURNS: [u32; 6] = [50, 70, 80, 85, 90, 95];
/// A wake-up (the node's publish to the callback's entry) longer than
/// this share of the period is late.
const LATE_WAKE_PCT: u32 = 10;
const RATE: u32 = 48_000;
/// Seconds per cell; the default is what the README's figures come from.
const CELL_SECONDS: &str = "ASIO_BRIDGE_BENCH_CELL_SECONDS";
const DEFAULT_CELL_SECONDS: u32 = 60;
const DAEMON_CPU: usize = 0;
const HOST_CPU: usize = 1;

struct Cell {
    quantum: u32,
    burn: u32,
    r: HashMap<String, String>,
}

/// Pins the calling process, and so the Wine processes it starts after
/// this, to `cpu`.
fn pin(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; CPU_SET stays inside it; the call
    // only reads the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set), 0, "cannot pin to CPU {cpu}");
    }
}

fn cell(prefix: &Prefix, quantum: u32, burn: u32, seconds: u32) -> Cell {
    let args = ["run", "--loopback", "--buffer", &quantum.to_string(), "--seconds", &seconds.to_string(), "--burn", &burn.to_string(), "--late-wake", &LATE_WAKE_PCT.to_string()];
    let (r, out) = prefix.host(&args, Duration::from_secs(seconds as u64 + 90));
    // Exit 1 is a check that failed, which overload makes likely (callbacks
    // missed); no driver (2) or a hang (3) is no cell at all.
    assert!(matches!(out.status.code(), Some(0 | 1)), "asio-host {args:?}: {}", output_text(&out));
    assert_eq!(r.num("buffer_size"), quantum as f64, "{}", output_text(&out));
    assert_eq!(r.num("sample_rate"), RATE as f64, "{}", output_text(&out));
    assert!(r.contains_key("timed_callbacks"), "the driver gave no cycle times: {}", output_text(&out));
    Cell { quantum, burn, r }
}

fn main() {
    let seconds = std::env::var(CELL_SECONDS).map_or(DEFAULT_CELL_SECONDS, |s| s.parse().unwrap_or_else(|_| panic!("{CELL_SECONDS}={s} is not a number of seconds")));
    // The floor first: fork() wants a process without other threads.
    let (floor, floor_rt) = futex_floor(DAEMON_CPU, HOST_CPU);
    let daemon = Daemon::start_bare("bench-headroom", &[("50-asio-bridge.conf", &fragment("50-asio-bridge.conf"))]);
    daemon.node("asio-bridge");
    let cpu = DAEMON_CPU.to_string();
    let taskset = Command::new("taskset").args(["-a", "-p", "-c", &cpu, &daemon.pid().to_string()]).output().expect("taskset (util-linux)");
    assert!(taskset.status.success(), "taskset failed: {}", output_text(&taskset));
    daemon.link("asio-bridge:out_1", "asio-bridge:in_1");
    let prefix = Prefix::create(&daemon.dir, &daemon);
    pin(HOST_CPU);

    let mut cells = Vec::new();
    for quantum in QUANTA {
        daemon.force_quantum(quantum);
        for burn in BURNS {
            eprintln!("bench-headroom: quantum {quantum}, burn {burn} %, {seconds} s");
            cells.push(cell(&prefix, quantum, burn, seconds));
        }
    }

    let triple = |(a, b, c): Figures| format!("{a:.1} / {b:.1} / {c:.1}");
    let figures = |r: &HashMap<String, String>, name: &str| (r.num(&format!("{name}_p50_us")), r.num(&format!("{name}_p99_us")), r.num(&format!("{name}_max_us")));
    let policy = |r: &HashMap<String, String>| format!("{} {}", r.str("callback_policy"), r.str("callback_priority"));
    println!(
        "headroom: the ASIO host under Wine spins in each callback until BURN % of the period has passed since its entry; \
         output 1 looped to input 1 through the graph, {RATE} Hz, {seconds} s per cell; daemon on CPU {DAEMON_CPU}, host on CPU {HOST_CPU}, callback {}",
        policy(&cells[0].r)
    );
    println!(
        "overloads: kAsioOverload messages; lost: cycles the node played silence for (the host's late_cycles); \
         late wake-ups: the node's publish -> the callback's entry longer than {LATE_WAKE_PCT} % of the period; wake-up: publish -> entry, µs; \
         daemon late: cycles the daemon published more than a period after their clock time, the machine's loss, not the bridge's \
         (a device would have had an xrun; the Dummy-Driver here loses nothing)"
    );
    println!(
        "{:>7} | {:>9} | {:>6} | {:>9} | {:>9} | {:>6} | {:>13} | {:>30} | {:>11}",
        "quantum", "period µs", "burn %", "callbacks", "overloads", "lost", "late wake-ups", "wake-up p50 / p99 / max", "daemon late"
    );
    for c in &cells {
        println!(
            "{:>7} | {:>9.0} | {:>6} | {:>9} | {:>9} | {:>6} | {:>13} | {:>30} | {:>11}",
            c.quantum,
            c.quantum as f64 * 1e6 / RATE as f64,
            c.burn,
            c.r.str("callbacks"),
            c.r.str("overloads"),
            c.r.str("late_cycles"),
            c.r.str("late_wakes"),
            triple(figures(&c.r, "wake")),
            c.r.str("daemon_late_cycles")
        );
    }
    let rt = |f: &str| std::fs::read_to_string(format!("/proc/sys/kernel/{f}")).map_or_else(|_| "?".into(), |s| s.trim().to_owned());
    println!(
        "RT throttling: SCHED_FIFO threads may run {} of every {} µs (kernel.sched_rt_runtime_us, sched_rt_period_us): \
         a callback thread burning nearly that share of the CPU is stopped for the rest of the second",
        rt("sched_rt_runtime_us"),
        rt("sched_rt_period_us")
    );
    let fifo = if floor_rt { format!("both SCHED_FIFO {PRIO}") } else { "SCHED_FIFO not permitted: SCHED_OTHER".into() };
    println!("futex floor, CPU {DAEMON_CPU} -> CPU {HOST_CPU}, {ROUNDS}-round two-process ping-pong, one-way, {fifo}: p50 / p99 / max {} µs", triple(floor));
    // Every sample comes back through the loop: silence outside the
    // reported overloads, or a wrong sample, would be the bridge's own loss.
    let unexplained: Vec<String> = cells
        .iter()
        .filter(|c| c.r.num("loopback_dropouts") + c.r.num("loopback_mismatches") > 0.0)
        .map(|c| format!("quantum {} burn {} %: {} dropouts, {} mismatches", c.quantum, c.burn, c.r.str("loopback_dropouts"), c.r.str("loopback_mismatches")))
        .collect();
    if unexplained.is_empty() {
        println!("loopback: every sample checked; all silence came with reported overloads");
    } else {
        println!("loopback: loss outside the reported overloads: {}", unexplained.join("; "));
    }

    println!(
        "where the time goes, p50 / p99 / max µs: the graph cycle's clock time -> the node's publish (just before its futex wake; \
         the daemon's part) -> the driver's wait returns (unix half) -> the callback's entry (PE) -> output ready (after the burn, \
         where a DAW calls outputReady); all CLOCK_MONOTONIC, the PE side's read through the unix half ({} ns a read, inside each step); \
         host late: cycles published before the driver began waiting for them (the previous callback still ran)",
        cells[0].r.str("clock_read_ns")
    );
    println!(
        "{:>7} | {:>6} | {:>24} | {:>24} | {:>24} | {:>24} | {:>9}",
        "quantum", "burn %", "clock -> publish", "publish -> wait returns", "wait returns -> callback", "callback -> output ready", "host late"
    );
    for c in &cells {
        println!(
            "{:>7} | {:>6} | {:>24} | {:>24} | {:>24} | {:>24} | {:>9}",
            c.quantum,
            c.burn,
            triple(figures(&c.r, "step_daemon")),
            triple(figures(&c.r, "step_futex")),
            triple(figures(&c.r, "step_dispatch")),
            triple(figures(&c.r, "step_callback")),
            c.r.str("published_before_wait")
        );
    }
    println!("daemon threads: {}", daemon_threads(daemon.pid()));
}
