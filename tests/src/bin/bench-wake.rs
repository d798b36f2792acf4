//! Wake-up latency from the node publishing a cycle to the client's
//! callback starting, next to the floor: a plain two-process futex
//! ping-pong over one shared page, in the same CPU placement.

use asio_bridge_abi::{futex, monotonic_nsec};
use asio_bridge_tests::{fragment, report, run_with_timeout, Daemon, Report};
use std::{
    process::Command,
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
    time::Duration,
};

const ROUNDS: usize = 100_000;
const SECONDS: &str = "5";
const QUANTUM: u32 = 256;

fn pin(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; CPU_SET stays inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set);
        let param = libc::sched_param { sched_priority: 70 };
        libc::sched_setscheduler(0, libc::SCHED_FIFO, &param);
    }
}

/// One-way futex wake latency between two processes: p50, p99, max in µs.
fn futex_floor(parent_cpu: usize, child_cpu: usize) -> (f64, f64, f64) {
    let len = 16 + ROUNDS * 8;
    // SAFETY: a fresh shared anonymous mapping, inherited by the child; the
    // words are accessed atomically by both processes.
    let base = unsafe {
        libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, 0)
    } as *mut u8;
    assert!(base as isize != -1, "mmap failed");
    // SAFETY: aligned words inside the mapping, which outlives both users.
    let (seq, stamp, lat) = unsafe {
        (&*(base as *const AtomicU32), &*(base.add(8) as *const AtomicU64), std::slice::from_raw_parts(base.add(16) as *const AtomicU64, ROUNDS))
    };
    // SAFETY: the process is single-threaded here (the daemon is not started
    // yet); the child only touches the mapping and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        pin(child_cpu);
        for (i, slot) in lat.iter().enumerate() {
            let want = 2 * i as u32 + 1;
            while seq.load(Ordering::Acquire) != want {
                futex::wait(seq, want - 1, Duration::from_secs(1));
            }
            slot.store(monotonic_nsec() - stamp.load(Ordering::Relaxed), Ordering::Relaxed);
            seq.store(want + 1, Ordering::Release);
            futex::wake(seq);
        }
        // SAFETY: leave the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    pin(parent_cpu);
    for i in 0..ROUNDS {
        let next = 2 * i as u32 + 1;
        stamp.store(monotonic_nsec(), Ordering::Relaxed);
        seq.store(next, Ordering::Release);
        futex::wake(seq);
        while seq.load(Ordering::Acquire) != next + 1 {
            futex::wait(seq, next, Duration::from_secs(1));
        }
    }
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    let mut ns: Vec<u64> = lat.iter().map(|l| l.load(Ordering::Relaxed)).collect();
    ns.sort_unstable();
    let us = |i: usize| ns[i] as f64 / 1000.0;
    (us(ns.len() / 2), us(ns.len() * 99 / 100), us(ns.len() - 1))
}

fn bridge_wake(daemon: &Daemon, cpu: usize) -> (f64, f64, f64) {
    let out = run_with_timeout(
        daemon.client().args(["--seconds", SECONDS, "--rt", "70", "--cpu", &cpu.to_string()]),
        Duration::from_secs(30),
    );
    let r = report(&out.stdout);
    (r.num("wake_p50_us"), r.num("wake_p99_us"), r.num("wake_max_us"))
}

fn main() {
    // The floors first: fork() wants a process without other threads.
    let floors = [futex_floor(0, 0), futex_floor(0, 1)];
    let daemon = Daemon::start("bench-wake", &[("50-asio-bridge.conf", &fragment("50-asio-bridge.conf"))]);
    daemon.node("asio-bridge");
    daemon.force_quantum(QUANTUM);
    let status = Command::new("taskset").args(["-a", "-p", "-c", "0", &daemon.pid().to_string()]).output().expect("taskset (util-linux)");
    assert!(status.status.success(), "taskset failed");
    let fmt = |(a, b, c): (f64, f64, f64)| format!("{a:>7.1} {b:>7.1} {c:>8.1}");
    println!("wake-up latency, node publish -> client callback, quantum {QUANTUM} at 48 kHz ({SECONDS} s), vs a {ROUNDS}-round futex ping-pong; µs");
    println!("{:<34} {:>7} {:>7} {:>8}   {:>7} {:>7} {:>8}", "placement", "p50", "p99", "max", "floor50", "floor99", "floormax");
    for (label, cpu, floor) in [("same CPU (daemon 0, client 0)", 0, floors[0]), ("different CPUs (daemon 0, client 1)", 1, floors[1])] {
        println!("{label:<34} {}   {}", fmt(bridge_wake(&daemon, cpu)), fmt(floor));
    }
}
