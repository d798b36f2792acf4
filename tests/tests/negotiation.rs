//! Buffer size, sample rate and latency negotiated between the ASIO host,
//! the driver and the graph: a real daemon, a real Wine prefix, the
//! project's ASIO host.

use asio_bridge_tests::{output_text, props, report, run_with_timeout, shipped_with, stage, wine::Prefix, with_bridge, Daemon, Report};
use std::{process::Stdio, thread::sleep, time::Duration};

const MODULE_FRAGMENT: &str = "50-asio-bridge.conf";
const RATES: &str = "asio.rates=[44100,48000,96000]";

/// A daemon that allows three rates, with a pipelined bridge and a
/// same-cycle bridge that may ask for them, each looped back out_1 -> in_1.
fn daemon(name: &str) -> Daemon {
    daemon_with(name, "", "")
}

/// `daemon` with more context properties and bridge settings.
fn daemon_with(name: &str, context: &str, bridge: &str) -> Daemon {
    let args = format!("{RATES} {bridge}");
    let text = with_bridge(&shipped_with(&args), &format!("node.name=asio-bridge-same-cycle asio.mode=same-cycle {args}"));
    let clock = format!("context.properties = {{ default.clock.allowed-rates = [ 44100 48000 96000 ] {context} }}\n");
    let daemon = Daemon::start(name, &[("10-clock.conf", &clock), (MODULE_FRAGMENT, &text)]);
    for node in ["asio-bridge", "asio-bridge-same-cycle"] {
        daemon.node(node);
        daemon.link(&format!("{node}:out_1"), &format!("{node}:in_1"));
    }
    daemon
}

/// The quantum and rate the graph runs, as the reference client sees them
/// on `node` (which must be free).
fn graph_clock(daemon: &Daemon, node: &str) -> (f64, f64) {
    let out = run_with_timeout(daemon.client().args(["--node", node, "--seconds", "0.5"]), Duration::from_secs(10));
    let r = report(&out.stdout);
    (r.num("frames"), r.num("rate"))
}

fn settings(daemon: &Daemon, key: &str, value: u32) {
    let out = daemon.cmd("pw-metadata").args(["-n", "settings", "0", key, &value.to_string()]).output().unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
}

/// One sweep cell as the host printed it: `rate:R buffer:N in:I out:O measured:M ...`.
fn cell(line: &str) -> std::collections::HashMap<&str, i64> {
    line.split_whitespace().filter_map(|kv| kv.split_once(':')).filter_map(|(k, v)| v.parse().ok().map(|v| (k, v))).collect()
}

const SWEEP_NOTE: &str = "Loopback out_1 -> in_1 through the Wine driver, the host choosing buffer size and rate; \
in/out: latency the driver reported; measured: round trip the host measured; loop = measured - in - out, \
the one quantum a loop inside the graph adds (must equal graph); xruns: overloads reported to the host.";
const FIFO_NOTE: &str = "As latency-sweep, with clock.power-of-two-quantum = false: first the graph following sizes 96 and 160, \
then held at 128 by clock.force-quantum while the host runs other sizes through the bridge's FIFOs.";
const TABLE_HEADER: &str = "mode          rate buffer graph      in     out  measured   loop  xruns";

/// Runs the host's sweep on both bridges and checks every cell: the
/// measured round trip is the reported input + output latency plus the
/// loop's one quantum (`graph(buffer)`: the quantum the graph runs), with
/// no wrong, missing or shifted sample. Returns the table rows and what
/// failed.
fn sweep(prefix: &Prefix, args: &[&str], graph: impl Fn(i64) -> i64) -> (Vec<String>, Vec<String>) {
    let (mut rows, mut failures) = (Vec::new(), Vec::new());
    for (mode, node) in [("pipelined", "asio-bridge"), ("same-cycle", "asio-bridge-same-cycle")] {
        let mut host = prefix.wine();
        host.env("ASIO_BRIDGE_NODE", node).arg(stage().join("bin/asio-host.exe")).arg("sweep").args(args);
        let out = run_with_timeout(&mut host, Duration::from_secs(300));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        for line in text.lines().filter(|l| l.starts_with("cell_")) {
            let c = cell(line.split_once('=').unwrap().1);
            let (Some(&rate), Some(&buffer), Some(&lin), Some(&lout), Some(&measured)) =
                (c.get("rate"), c.get("buffer"), c.get("in"), c.get("out"), c.get("measured"))
            else {
                failures.push(format!("{mode}: {line}"));
                continue;
            };
            let looped = measured - lin - lout;
            let quantum = graph(buffer);
            rows.push(format!(
                "{mode:<11} {rate:>6} {buffer:>6} {quantum:>5} {lin:>7} {lout:>7} {measured:>9} {looped:>6} {:>6}",
                c.get("xruns").copied().unwrap_or(-1)
            ));
            let clean = ["mismatches", "dropouts", "shifts"].iter().all(|k| c.get(k) == Some(&0));
            if looped != quantum || !clean {
                failures.push(format!("{mode}: {line}"));
            }
        }
        if !out.status.success() {
            failures.push(format!("{mode}: {}", output_text(&out)));
        }
    }
    (rows, failures)
}

#[test]
fn sweep_round_trip_equals_reported_latency_in_every_cell() {
    let daemon = daemon("sweep");
    let prefix = Prefix::create(&daemon.dir, &daemon);
    let before = graph_clock(&daemon, "asio-bridge");
    // The graph runs the host's buffer size in every cell.
    let (rows, failures) = sweep(&prefix, &["--seconds", "1"], |buffer| buffer);
    let table = format!("{TABLE_HEADER}\n{}\n", rows.join("\n"));
    asio_bridge_tests::publish("latency-sweep", &format!("{SWEEP_NOTE}\n{table}"));
    assert!(failures.is_empty(), "{TABLE_HEADER}\n{}\n{}\n{}", rows.join("\n"), failures.join("\n"), daemon.log());
    assert_eq!(rows.len(), 2 * 18, "{}", rows.join("\n"));
    assert_eq!(graph_clock(&daemon, "asio-bridge"), before, "the graph did not return to its quantum and rate");
}

/// With `clock.power-of-two-quantum = false` (and the bridge told so), a
/// host may choose sizes like 96; and where another program holds the
/// quantum, host buffers of any other size run through the FIFOs with the
/// same exactness. A rate the bridge does not offer is refused to the host
/// in words.
#[test]
fn other_buffer_sizes_are_exact_on_their_own_quantum_and_through_the_fifos() {
    let daemon = daemon_with("npot", "clock.power-of-two-quantum = false", "asio.power-of-two-quantum=false");
    let prefix = Prefix::create(&daemon.dir, &daemon);
    let args = ["--buffers", "96,160", "--rates", "48000", "--seconds", "1"];
    let (mut rows, mut failures) = sweep(&prefix, &args, |buffer| buffer);
    settings(&daemon, "clock.force-quantum", 128);
    let args = ["--buffers", "64,96,256,320", "--rates", "48000", "--seconds", "1"];
    let (more, more_failures) = sweep(&prefix, &args, |_| 128);
    rows.extend(more);
    failures.extend(more_failures);
    let table = format!("{TABLE_HEADER}\n{}\n", rows.join("\n"));
    asio_bridge_tests::publish("latency-sweep-fifo", &format!("{FIFO_NOTE}\n{table}"));
    assert!(failures.is_empty(), "{TABLE_HEADER}\n{}\n{}\n{}", rows.join("\n"), failures.join("\n"), daemon.log());
    assert_eq!(rows.len(), 2 * 6, "{}", rows.join("\n"));

    let (r, out) = prefix.host(&["run", "--rate", "22050", "--seconds", "1"], Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert_eq!(r.num("set_rate"), -995.0, "ASE_NoClock: {}", output_text(&out));
    assert!(r.str("error").contains("22050 Hz is not in the bridge's asio.rates"), "{}", output_text(&out));
}

#[test]
fn pipelined_out_ports_announce_one_quantum_and_same_cycle_none() {
    let daemon = daemon("ports");
    for (node, quanta) in [("asio-bridge", 1.0), ("asio-bridge-same-cycle", 0.0)] {
        let ports = daemon.ports(node);
        let out = ports.iter().find(|p| props(p)["port.name"] == "out_1").unwrap();
        let latency = out["info"]["params"]["Latency"].as_array().cloned().unwrap_or_default();
        let capture = latency.iter().find(|l| l["direction"] == "Output").unwrap_or_else(|| panic!("{node}: {out}"));
        assert_eq!((capture["minQuantum"].as_f64(), capture["maxQuantum"].as_f64()), (Some(quanta), Some(quanta)), "{node}: {out}");
    }
}

/// Runs the host's loopback on `node` at buffer size 256 and 48 kHz for
/// `seconds`, handling kAsioResetRequest `how` (reopen, fatal, ignore),
/// with `during` run meanwhile; returns its report and output.
fn host_run(prefix: &Prefix, node: &str, how: &str, buffer: &str, seconds: &str, during: impl FnOnce()) -> (std::collections::HashMap<String, String>, String, bool) {
    let mut cmd = prefix.wine();
    cmd.env("ASIO_BRIDGE_NODE", node)
        .arg(stage().join("bin/asio-host.exe"))
        .args(["run", "--loopback", "--buffer", buffer, "--rate", "48000", "--seconds", seconds, "--on-reset", how])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let host = cmd.spawn().unwrap();
    during();
    let out = host.wait_with_output().unwrap();
    let ctx = format!("{node}, --on-reset {how}: {}", output_text(&out));
    println!("{ctx}");
    (report(&out.stdout), ctx, out.status.success())
}

/// A quantum another program holds before the host starts: RtAudio-like
/// (a reset is fatal) and PortAudio-like (resets ignored) hosts keep their
/// own buffer size through the FIFOs, are never asked to reset or change
/// size, and the round trip they measure is the latency reported plus the
/// loop's quantum, without a sample lost.
#[test]
fn a_quantum_forced_from_outside_keeps_the_hosts_buffer_size() {
    let daemon = daemon("forced");
    settings(&daemon, "clock.force-quantum", 512);
    let prefix = Prefix::create(&daemon.dir, &daemon);
    let mut failures = Vec::new();
    for (node, how, buffer) in [("asio-bridge", "fatal", 256), ("asio-bridge", "ignore", 1024), ("asio-bridge-same-cycle", "fatal", 128)] {
        let (r, ctx, success) = host_run(&prefix, node, how, &buffer.to_string(), "3", || ());
        let phase = cell(r.get("phase_0").map_or("", String::as_str));
        let ok = success
            && (r.num("buffer_size"), r.num("sample_rate")) == (buffer as f64, 48000.0)
            && ["reset_requests", "buffer_size_changes", "rate_changes", "latency_changes", "reopens", "closed_on_reset"].iter().all(|k| r.num(k) == 0.0)
            && ["loopback_mismatches", "loopback_dropouts", "loopback_latency_shifts", "position_errors"].iter().all(|k| r.num(k) == 0.0)
            && r.num("loopback_offset") == r.num("input_latency") + r.num("output_latency") + 512.0
            && phase.get("measured") == Some(&(r.num("loopback_offset") as i64));
        if !ok {
            failures.push(ctx);
        }
    }
    assert!(failures.is_empty(), "{}\n{}", failures.join("\n"), daemon.log());
}

/// Another program forces the quantum, then the rate, while a host runs a
/// loopback at 256.
///
/// The quantum (256 -> 512) needs nothing from the host: it keeps its size
/// through the FIFOs, gets kAsioLatenciesChanged, and no reset or size
/// change. What silence that costs, once: the loop itself (out_1 -> in_1,
/// one quantum late) has only 256 frames for the first 512-frame cycle, so
/// in_1 gets 256 frames of silence and the loop's delay grows to the new
/// quantum. Pipelined, the bridge adds the same once more: it plays a
/// cycle's output one cycle later, and the host made only 256 frames for
/// the first 512-frame cycle; rather than drop audio, the bridge plays
/// silence and reports the grown latency. The stream only ever resumes
/// later after silence, and the round trip stays the reported latency plus
/// the loop's quantum.
///
/// The rate (48 -> 96 kHz) is one the host must follow: each host is asked
/// exactly once to reset, and told sampleRateDidChange. A host that
/// re-opens (a DAW) does so once, one that treats the reset as fatal
/// (RtAudio) ends its stream, one that ignores it (PortAudio) re-opens its
/// buffers for the new rate. PipeWire's reconfiguration costs silence
/// before the driver sees the new rate: one quantum (512) in 7 of 8 runs
/// here, two once on a loaded 2-CPU VM (12 overloads in that run).
#[test]
fn outside_quantum_and_rate_changes_reach_the_host_and_never_corrupt_audio() {
    let daemon = daemon("outside");
    let prefix = Prefix::create(&daemon.dir, &daemon);
    let mut failures = Vec::new();
    const LOOP_GROWTH: i64 = 512 - 256;
    // The growth's silence, and how often the latency changes: pipelined,
    // once (the output side grows by 256); same-cycle, never (only the
    // loop inside the graph grows, which the bridge does not report).
    let runs = [
        ("asio-bridge", "reopen", 256 + LOOP_GROWTH, 1.0),
        ("asio-bridge-same-cycle", "reopen", LOOP_GROWTH, 0.0),
        ("asio-bridge", "fatal", 256 + LOOP_GROWTH, 1.0),
        ("asio-bridge", "ignore", 256 + LOOP_GROWTH, 1.0),
    ];
    for (node, how, growth_silence, latency_changes) in runs {
        settings(&daemon, "clock.force-quantum", 0);
        settings(&daemon, "clock.force-rate", 0);
        let (r, ctx, success) = host_run(&prefix, node, how, "256", "9", || {
            sleep(Duration::from_secs(4));
            settings(&daemon, "clock.force-quantum", 512);
            sleep(Duration::from_secs(2));
            settings(&daemon, "clock.force-rate", 96000);
        });
        let phases: Vec<_> = (0..2).map(|i| cell(r.get(&format!("phase_{i}")).map_or("", String::as_str))).collect();
        let exact = |p: &std::collections::HashMap<&str, i64>| p.get("measured") == Some(&(p["in"] + p["out"] + 512));
        let (reopens, handled, closed, rate) = match how {
            "reopen" => (1.0, 1.0, 0.0, 96000.0),
            "fatal" => (0.0, 0.0, 1.0, 48000.0),
            _ => (1.0, 0.0, 0.0, 96000.0),
        };
        let ok = success
            && r.num("loopback_mismatches") == 0.0
            && (r.num("reset_requests"), r.num("buffer_size_changes"), r.num("rate_changes")) == (1.0, 0.0, 1.0)
            && (r.num("reopens"), r.num("resets_handled"), r.num("closed_on_reset")) == (reopens, handled, closed)
            && (r.num("buffer_size"), r.num("sample_rate")) == (256.0, rate)
            && r.num("latency_changes") == latency_changes
            && phases[0].get("buffer") == Some(&256)
            && phases[0].get("dropouts").is_some_and(|&d| d <= growth_silence + 2 * 512)
            && exact(&phases[0])
            && (closed == 1.0 || (phases[1].get("dropouts") == Some(&0) && exact(&phases[1])));
        if !ok {
            failures.push(ctx);
        }
    }
    assert!(failures.is_empty(), "{}\n{}", failures.join("\n"), daemon.log());
}
