//! What the benchmarks measure the bridge against: the floor, a plain
//! two-process futex ping-pong over one shared page, stamped and measured
//! the way the node and its clients stamp a cycle (stamp, store,
//! FUTEX_WAKE; the woken side reads the clock when its FUTEX_WAIT
//! returns). Shared by bench-wake and bench-headroom, so both print the
//! same floor.

use asio_bridge_abi::{futex, monotonic_nsec};
use std::{
    fs,
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
    time::Duration,
};

/// Ping-pong rounds per floor.
pub const ROUNDS: usize = 100_000;
/// The SCHED_FIFO priority of both floor processes, the same as the
/// clients' callback threads get in the benchmarks.
pub const PRIO: i32 = 70;

/// p50, p99, max, µs.
pub type Figures = (f64, f64, f64);

/// Pins the calling process to `cpu` and makes it SCHED_FIFO `PRIO`;
/// whether SCHED_FIFO was permitted.
fn pin_rt(cpu: usize) -> bool {
    // SAFETY: cpu_set_t is plain data; CPU_SET stays inside it. Both calls
    // only read what they are given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set), 0, "cannot pin to CPU {cpu}");
        let param = libc::sched_param { sched_priority: PRIO };
        libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0
    }
}

/// The calling process's scheduling, to put back after the floor: the
/// daemon and the client started later must not inherit it.
struct Saved(libc::cpu_set_t, libc::c_int, libc::sched_param);

impl Saved {
    fn take() -> Self {
        // SAFETY: plain data filled in by the kernel.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set);
            let mut param: libc::sched_param = std::mem::zeroed();
            libc::sched_getparam(0, &mut param);
            Self(set, libc::sched_getscheduler(0), param)
        }
    }
    fn restore(&self) {
        // SAFETY: values read back from the kernel in `take`.
        unsafe {
            libc::sched_setscheduler(0, self.1, &self.2);
            libc::sched_setaffinity(0, std::mem::size_of_val(&self.0), &self.0);
        }
    }
}

fn figures(mut ns: Vec<u64>) -> Figures {
    ns.sort_unstable();
    let us = |i: usize| ns[i] as f64 / 1000.0;
    (us(ns.len() / 2), us(ns.len() * 99 / 100), us(ns.len() - 1))
}

/// One-way futex wake latency between two processes, the waker on
/// `waker_cpu`, the woken on `woken_cpu`; and whether both got SCHED_FIFO.
pub fn futex_floor(waker_cpu: usize, woken_cpu: usize) -> (Figures, bool) {
    let len = 64 + ROUNDS * 8;
    // SAFETY: a fresh shared anonymous mapping, inherited by the child.
    let base = unsafe {
        libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, 0)
    };
    assert!(base != libc::MAP_FAILED, "mmap failed");
    let base = base.cast::<u8>();
    // SAFETY: aligned words inside the mapping, which outlives both users
    // (unmapped below, after the child exited); both processes access them
    // atomically only. Word 0: round sequence; 8: stamp; 16: child's FIFO;
    // 64..: one latency per round.
    let (seq, stamp, child_rt, lat) = unsafe {
        (
            &*base.cast::<AtomicU32>(),
            &*base.add(8).cast::<AtomicU64>(),
            &*base.add(16).cast::<AtomicU32>(),
            std::slice::from_raw_parts(base.add(64).cast::<AtomicU64>(), ROUNDS),
        )
    };
    let saved = Saved::take();
    // SAFETY: the process is single-threaded here (no daemon, no client
    // yet); the child only touches the mapping and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        child_rt.store(pin_rt(woken_cpu) as u32, Ordering::Relaxed);
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
    let parent_rt = pin_rt(waker_cpu);
    for i in 0..ROUNDS {
        let next = 2 * i as u32 + 1;
        stamp.store(monotonic_nsec(), Ordering::Relaxed);
        seq.store(next, Ordering::Release);
        futex::wake(seq);
        while seq.load(Ordering::Acquire) != next + 1 {
            futex::wait(seq, next, Duration::from_secs(1));
        }
    }
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "ping-pong child failed: {status:#x}");
    saved.restore();
    let ns = lat.iter().map(|l| l.load(Ordering::Relaxed)).collect();
    let both_rt = parent_rt && child_rt.load(Ordering::Relaxed) == 1;
    // SAFETY: the mapping made above; the child is gone and nothing refers to it after this.
    unsafe { libc::munmap(base.cast(), len) };
    (figures(ns), both_rt)
}

/// How the daemon's threads are scheduled, from /proc: e.g.
/// "pipewire OTHER cpus 0, data-loop.0 FIFO 88 cpus 0".
pub fn daemon_threads(pid: u32) -> String {
    let mut threads: Vec<(u32, String)> = fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.filter_map(|e| {
                let path = e.ok()?.path();
                let tid: u32 = path.file_name()?.to_str()?.parse().ok()?;
                let stat = fs::read_to_string(path.join("stat")).ok()?;
                let (head, rest) = stat.rsplit_once(')')?;
                let comm = head.split_once('(')?.1;
                // Fields from 3 on: rt_priority is field 40, policy 41.
                let f: Vec<&str> = rest.split_whitespace().collect();
                let (prio, policy) = (f.get(37)?, f.get(38)?);
                let policy = match *policy {
                    "0" => "OTHER".to_owned(),
                    "1" => format!("FIFO {prio}"),
                    "2" => format!("RR {prio}"),
                    p => format!("policy {p}"),
                };
                let status = fs::read_to_string(path.join("status")).ok()?;
                let cpus = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?.trim().to_owned();
                Some((tid, format!("{comm} {policy} cpus {cpus}")))
            })
            .collect()
        })
        .unwrap_or_default();
    threads.sort();
    threads.into_iter().map(|(_, t)| t).collect::<Vec<_>>().join(", ")
}
