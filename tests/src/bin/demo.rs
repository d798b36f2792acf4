//! `cargo xtask demo`: the whole user journey on this machine, in private:
//! a PipeWire daemon with WirePlumber and the bridge, a Wine prefix with
//! the driver registered, and an ASIO host playing and recording through
//! the bridge. Prints what a user wants to know.

use asio_bridge_tests::{fragment, output_text, props, report, run_with_timeout, wine::Prefix, Daemon, Report};
use std::{process::exit, time::Duration};

const SECONDS: &str = "5";
/// The buffer size the "DAW" chooses; the graph follows while it runs.
const BUFFER: &str = "256";

fn step(what: &str) {
    println!("==> {what}");
}

fn main() {
    // Return before exiting, so the daemon, WirePlumber and the prefix are
    // dropped (stopped and removed); exit() would skip that.
    let code = demo();
    exit(code)
}

fn demo() -> i32 {
    step("starting a private PipeWire with WirePlumber and the bridge (your own session is untouched)");
    let daemon = Daemon::start("demo", &[("50-asio-bridge.conf", &fragment("50-asio-bridge.conf"))]);
    let node = daemon.node("asio-bridge");
    let p = props(&node);
    let ports: Vec<String> = daemon.ports("asio-bridge").iter().map(|p| props(p)["port.name"].as_str().unwrap_or("?").to_owned()).collect();
    println!("    node {} \"{}\", ports {}", p["node.name"], p["node.description"].as_str().unwrap_or(""), ports.join(" "));
    step("routing a loopback: asio-bridge:out_1 -> asio-bridge:in_1");
    daemon.link("asio-bridge:out_1", "asio-bridge:in_1");

    step("making a Wine prefix and registering the driver with regsvr32");
    let prefix = Prefix::create(&daemon.dir, &daemon);
    println!("    prefix {} (temporary)", prefix.path.display());

    let graph = || {
        let out = run_with_timeout(daemon.client().args(["--seconds", "0.3"]), Duration::from_secs(10));
        let r = report(&out.stdout);
        format!("quantum {} at {} Hz", r.get("frames").map_or("?", String::as_str), r.get("rate").map_or("?", String::as_str))
    };
    let before = graph();
    step(&format!("running the ASIO host for {SECONDS} s at buffer size {BUFFER}: counter on output 1, 440 Hz tone on the others"));
    let (info, info_out) = prefix.host(&["info"], Duration::from_secs(60));
    let (run, out) = prefix.host(&["run", "--loopback", "--buffer", BUFFER, "--seconds", SECONDS], Duration::from_secs(120));
    let after = graph();
    if !out.status.success() && run.get("callbacks").is_none() {
        eprintln!("the ASIO host failed:\n{}\n{}", output_text(&info_out), output_text(&out));
        return 1;
    }
    let rate = run.num("sample_rate");
    let ms = |frames: f64| frames * 1000.0 / rate;
    let (input, output) = (run.num("input_latency"), run.num("output_latency"));
    let measured = run.num("loopback_offset");
    let expected = input + output + run.num("buffer_size");

    println!();
    println!("PipeWire ASIO Bridge: what the DAW saw");
    println!("  driver found        {} ({} in, {} out)", info.str("driver_name"), info.str("inputs"), info.str("outputs"));
    println!(
        "  buffer sizes        {} to {}, {} (preferred {})",
        info.str("buffer_min"),
        info.str("buffer_max"),
        if info.str("buffer_granularity") == "-1" { "powers of two" } else { "any size" },
        info.str("buffer_preferred")
    );
    println!("  buffer size         {} samples, chosen by the host; the graph followed", run.str("buffer_size"));
    println!("  sample rate         {rate} Hz");
    println!("  graph before/after  {before} / {after} (restored when the host closed)");
    println!("  reported latency    input {input} + output {output} samples ({:.2} ms round trip)", ms(input + output));
    println!("  measured loopback   {measured} samples ({:.2} ms) = reported + {} (the loop inside the graph)", ms(measured), measured - input - output);
    println!("  audio               {} samples bit-exact, {} mismatches", run.str("loopback_locked_samples"), run.str("loopback_mismatches"));
    println!("  callbacks           {} in {SECONDS} s (~{} expected)", run.str("callbacks"), run.str("expected_callbacks"));
    println!("  late cycles         {} (cycles the host missed; each one is a cycle of silence)", run.str("xruns"));
    println!("  callback interval   p50 {} us, p99 {} us, max {} us", run.str("interval_p50_us"), run.str("interval_p99_us"), run.str("interval_max_us"));
    let ok = out.status.success() && measured == expected && before == after;
    println!();
    println!("{}", if ok { "everything as reported" } else { "SOMETHING IS OFF: see above" });
    if ok { 0 } else { 1 }
}
