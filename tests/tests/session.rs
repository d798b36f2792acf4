//! The bridge in a desktop session that changes under it: WirePlumber
//! killed and started again mid-run, the graph forced to a rate the bridge
//! does not offer, and every quantum and rate a host may ask for. The
//! daemon, WirePlumber and the observers must survive all of it, and the
//! daemon must exit 0.

use asio_bridge_tests::{output_text, report, run_with_timeout, shipped_with, Daemon, Report};
use std::{thread::sleep, time::Duration};

/// A daemon allowing 44.1 and 48 kHz, with the shipped bridge, which
/// offers 48 kHz only (the default `asio.rates`). These tests route the
/// bridge themselves, so it opts out of autoconnect (which would link it to
/// the null sink they make, the default sink).
fn daemon(name: &str) -> Daemon {
    let clock = "context.properties = { default.clock.allowed-rates = [ 44100 48000 ] }\n";
    let daemon = Daemon::start(name, &[("10-clock.conf", clock), ("50-asio-bridge.conf", &shipped_with("node.autoconnect = false"))]);
    daemon.node("asio-bridge");
    daemon
}

fn settings(daemon: &Daemon, key: &str, value: u32) {
    let out = daemon.cmd("pw-metadata").args(["-n", "settings", "0", key, &value.to_string()]).output().unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
}

/// A null sink, made as a desktop user would, linked to the bridge:
/// out_1/out_2 play into it and its monitor feeds in_1/in_2.
fn route_through_a_sink(daemon: &Daemon) {
    let sink = "{ factory.name = support.null-audio-sink node.name = test-sink media.class = Audio/Sink \
                object.linger = true audio.position = [ FL FR ] }";
    let out = run_with_timeout(daemon.cmd("pw-cli").args(["create-node", "adapter", sink]), Duration::from_secs(10));
    assert!(out.status.success(), "{}", output_text(&out));
    daemon.wait_until("the sink has ports", Duration::from_secs(10), || {
        let out = daemon.cmd("pw-link").args(["-io"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).contains("test-sink:monitor_FR")
    });
    daemon.link("asio-bridge:out_1", "test-sink:playback_FL");
    daemon.link("asio-bridge:out_2", "test-sink:playback_FR");
    daemon.link("test-sink:monitor_FL", "asio-bridge:in_1");
    daemon.link("test-sink:monitor_FR", "asio-bridge:in_2");
}

/// The bridge looped onto itself, out_N -> in_N. (With adapter nodes that
/// WirePlumber configures, such as a null sink, a forced rate and a
/// WirePlumber restart crash PipeWire 0.3.65 in its data loop, with no
/// bridge frame on the stack; two null sinks linked to each other and no
/// bridge loaded crash it too.)
fn route_onto_itself(daemon: &Daemon) {
    daemon.link("asio-bridge:out_1", "asio-bridge:in_1");
    daemon.link("asio-bridge:out_2", "asio-bridge:in_2");
}

/// A client runs 6 s asking for `quantum` at `rate`; WirePlumber is killed
/// with SIGKILL 2 s in and started again 1 s later.
fn wireplumber_dies_and_returns_mid_run(name: &str, forced_rate: Option<u32>, quantum: u32, rate: u32) {
    let mut daemon = daemon(name);
    match forced_rate {
        None => route_through_a_sink(&daemon),
        Some(_) => route_onto_itself(&daemon),
    }
    if let Some(r) = forced_rate {
        settings(&daemon, "clock.force-rate", r);
    }
    let client = daemon
        .client()
        .args(["--quantum", &quantum.to_string(), "--rate", &rate.to_string(), "--seconds", "6"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    sleep(Duration::from_secs(2));
    daemon.kill_wireplumber();
    sleep(Duration::from_secs(1));
    daemon.start_wireplumber();
    let out = client.wait_with_output().unwrap();
    let r = report(&out.stdout);
    assert_eq!(r.num("attached"), 1.0, "{}", output_text(&out));
    assert!(r.num("cycles") > 0.0, "{}", output_text(&out));
    // The daemon outlives the client's leaving, and the session its end.
    sleep(Duration::from_secs(2));
    assert!(daemon.alive(), "{}", daemon.log());
    daemon.finish();
}

#[test]
fn wireplumber_restart_mid_run_at_the_graphs_own_rate() {
    wireplumber_dies_and_returns_mid_run("wp-restart", None, 64, 48000);
}

#[test]
fn wireplumber_restart_mid_run_at_a_forced_foreign_rate() {
    // 44.1 kHz is not in the bridge's asio.rates: its request is refused,
    // the graph stays forced.
    wireplumber_dies_and_returns_mid_run("wp-restart-44k", Some(44100), 64, 44100);
    wireplumber_dies_and_returns_mid_run("wp-restart-44k-q", Some(44100), 64, 0);
}

#[test]
fn every_quantum_and_rate_a_host_may_ask_for_leaves_the_daemon_up() {
    let mut daemon = daemon("combos");
    route_through_a_sink(&daemon);
    let mut rows = Vec::new();
    for forced in [0, 44100] {
        settings(&daemon, "clock.force-rate", forced);
        // In and out of asio.rates and the allowed rates, and nonsense.
        for rate in [0, 48000, 44100, 96000, 22050, 1, u32::MAX] {
            for quantum in [0, 64, 96, 1024, 8192, 1, u32::MAX] {
                let out = run_with_timeout(
                    daemon.client().args(["--quantum", &quantum.to_string(), "--rate", &rate.to_string(), "--seconds", "0.25"]),
                    Duration::from_secs(20),
                );
                let r = report(&out.stdout);
                assert_eq!(r.num("attached"), 1.0, "graph rate {forced}, asked {quantum} at {rate}: {}", output_text(&out));
                rows.push(format!("{forced:>6} {rate:>10} {quantum:>10} {:>6} {:>6}", r.str("frames"), r.str("rate")));
            }
            assert!(daemon.alive(), "the daemon died at forced rate {forced}, asked rate {rate}\n{}", daemon.log());
        }
    }
    settings(&daemon, "clock.force-rate", 0);
    asio_bridge_tests::publish(
        "session-clock-combinations",
        &format!("graph forced rate (0: free), what a client asked for, what the graph ran\nforced       rate    quantum frames   rate\n{}\n", rows.join("\n")),
    );
    daemon.finish();
}
