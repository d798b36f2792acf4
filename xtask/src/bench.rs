//! `cargo xtask bench`: stages, says what machine the numbers come from,
//! then runs the two benchmarks, each printing its own table:
//! - spa-plugin/benches/process.rs: process() per cycle against the fixture,
//!   next to a memcpy of the same bytes;
//! - tests/src/bin/bench-wake.rs: wake-up latency node -> client callback in
//!   a real private daemon, next to a two-process futex ping-pong;
//! - tests/src/bin/bench-headroom.rs: the project's ASIO host under Wine
//!   using 50 to 95 % of each period at quanta 32, 64 and 128: what it
//!   loses, how late it wakes, and where each cycle's time goes.

use crate::{fail, run, Stage};
use std::{fs, process::Command};

pub fn bench(stage: &Stage, cargo: &str, args: &[String]) {
    if !args.is_empty() {
        fail(&format!("bench takes no arguments (got {args:?})\n\n{}", crate::USAGE));
    }
    crate::stage(stage, cargo);
    println!("{}", machine());
    run(Command::new(cargo).current_dir(&stage.root).args(["bench", "-q", "-p", "spa-asio-bridge", "--bench", "process"]));
    run(Command::new(cargo).current_dir(&stage.root).args(["run", "-q", "--release", "-p", "asio-bridge-tests", "--bin", "bench-wake"]));
    run(Command::new(cargo).current_dir(&stage.root).args(["run", "-q", "--release", "-p", "asio-bridge-tests", "--bin", "bench-headroom"]));
}

/// One line saying what the numbers were measured on, and how busy it was.
fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, v)| v.trim().to_owned()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let pipewire = Command::new("pipewire")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            // "Linked with libpipewire X" is the library the daemon runs with.
            text.lines().find_map(|l| l.strip_prefix("Linked with libpipewire ").map(|v| v.trim().to_owned()))
        })
        .unwrap_or_else(|| fail("`pipewire --version` did not say its version (install the pipewire package)"));
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().next().unwrap_or("?").to_owned();
    format!("machine: nproc {cpus}, {model}, PipeWire {pipewire}; load average {load} at start")
}
