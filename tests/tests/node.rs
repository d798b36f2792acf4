//! The bridge node inside a real PipeWire daemon, driven by the real
//! reference client.

use asio_bridge_tests::{fragment, output_text, props, report, run_with_timeout, shipped_with, with_bridge, Daemon, Report};
use asio_bridge_abi::ASIO_BRIDGE_VERSION;
use std::{
    io::Write,
    process::Stdio,
    thread::sleep,
    time::{Duration, Instant},
};

const MODULE_FRAGMENT: &str = "50-asio-bridge.conf";

fn shipped() -> Daemon {
    Daemon::start("node", &[(MODULE_FRAGMENT, &fragment(MODULE_FRAGMENT))])
}

/// Two bridges: a module entry each, so one can feed the other.
fn two_bridges() -> Daemon {
    let text = with_bridge(&fragment(MODULE_FRAGMENT).replace("node.name = asio-bridge ", "node.name = bridge-a "), "node.name=bridge-b asio.inputs=2 asio.outputs=2");
    assert!(text.contains("bridge-a") && text.contains("bridge-b"));
    Daemon::start("two", &[(MODULE_FRAGMENT, &text)])
}

fn check_bridge(daemon: &Daemon, name: &str, inputs: usize, outputs: usize) {
    let node = daemon.node(name);
    let p = props(&node);
    assert_eq!(p["node.name"], name);
    assert!(p.get("media.class").is_none(), "a bridge must not look like a device: {p}");
    let ports = daemon.ports(name);
    let names: Vec<&str> = ports.iter().map(|p| props(p)["port.name"].as_str().unwrap()).collect();
    let mut want: Vec<String> = (1..=inputs).map(|i| format!("in_{i}")).chain((1..=outputs).map(|i| format!("out_{i}"))).collect();
    want.sort();
    assert_eq!(names, want);
    for port in &ports {
        let p = props(port);
        assert_eq!(p["format.dsp"], "32 bit float mono audio");
        assert!(p["audio.channel"].is_string() && p["port.alias"].is_string(), "{p}");
        let dir = if p["port.name"].as_str().unwrap().starts_with("in_") { "in" } else { "out" };
        assert_eq!(p["port.direction"], dir);
    }
}

#[test]
fn loads_through_the_shipped_context_modules_fragment() {
    let daemon = shipped();
    check_bridge(&daemon, "asio-bridge", 2, 2);
    assert_eq!(props(&daemon.node("asio-bridge"))["node.description"], "ASIO Bridge");
}

#[test]
fn loads_through_context_objects() {
    let text = std::fs::read_to_string(asio_bridge_tests::root().join("conf/examples/60-asio-bridge-objects.conf")).unwrap();
    let daemon = Daemon::start("objects", &[("60-asio-bridge-objects.conf", &text), (MODULE_FRAGMENT, &fragment(MODULE_FRAGMENT))]);
    check_bridge(&daemon, "asio-bridge-8x8", 8, 8);
    check_bridge(&daemon, "asio-bridge", 2, 2);
}

fn create_node(daemon: &Daemon, props: &str) -> std::process::Output {
    let args = format!("{{ factory.name=api.asio.bridge library.name=asio-bridge/libspa-asio-bridge object.linger=true {props} }}");
    run_with_timeout(daemon.cmd("pw-cli").args(["create-node", "spa-node-factory", &args]), Duration::from_secs(10))
}

#[test]
fn loads_through_pw_cli_create_node() {
    let daemon = shipped();
    let out = create_node(&daemon, "node.name=cli-bridge asio.inputs=1 asio.outputs=3");
    assert!(out.status.success(), "{}", output_text(&out));
    check_bridge(&daemon, "cli-bridge", 1, 3);
    let client = run_with_timeout(daemon.client().args(["--node", "cli-bridge", "--seconds", "1"]), Duration::from_secs(10));
    let r = report(&client.stdout);
    assert_eq!((r.num("attached"), r.num("inputs"), r.num("outputs")), (1.0, 1.0, 3.0), "{}", output_text(&client));
}

#[test]
fn invalid_settings_fail_with_a_clear_message_and_harm_nothing() {
    let mut daemon = shipped();
    let cases = [
        ("asio.inputs=65", "invalid asio.inputs = \"65\": at most 64 channels per direction"),
        ("asio.outputs=two", "invalid asio.outputs = \"two\": expected a whole number from 0 to 64"),
        ("asio.inputs=-1", "invalid asio.inputs = \"-1\": expected a whole number from 0 to 64"),
        ("asio.inputs=0 asio.outputs=0", "the bridge needs at least one channel"),
        ("node.name=../escape", "invalid node.name = \"../escape\""),
        ("node.name=asio-bridge", "another bridge node already listens"),
    ];
    let nodes = || daemon.dump().iter().filter(|o| asio_bridge_tests::is_type(o, "Node")).count();
    let before = nodes();
    for (props, message) in cases {
        create_node(&daemon, props);
        daemon.wait_until(&format!("the log explains {props}"), Duration::from_secs(5), || daemon.log().contains(message));
    }
    assert_eq!(nodes(), before, "a node with invalid settings was created");
    assert!(daemon.alive());
    let client = run_with_timeout(daemon.client().args(["--seconds", "1"]), Duration::from_secs(10));
    assert_eq!(report(&client.stdout).num("cycles") > 0.0, true, "{}", output_text(&client));
}

/// Bridge A sends the counter signal from out_1 into bridge B's in_1:
/// every sample must arrive unchanged exactly one quantum later, and every
/// cycle must reach both clients or be accounted for: seen by the client
/// as missed, counted by the node as late (silence, reported). Cycles the
/// machine loses (this 2-vCPU VM's hypervisor now and then stalls even a
/// SCHED_FIFO thread for milliseconds) are published apart, not allowed
/// for: no sample is ever wrong, and no silence goes unaccounted.
fn bit_exact_and_every_cycle(quantum: u32, seconds: u32) {
    let daemon = two_bridges();
    daemon.node("bridge-a");
    daemon.node("bridge-b");
    daemon.force_quantum(quantum);
    daemon.link("bridge-a:out_1", "bridge-b:in_1");
    let secs = seconds.to_string();
    // The sender outlives the receiver: once it detaches, bridge A plays
    // silence, which the receiver would count as dropouts.
    let sender_secs = (seconds + 2).to_string();
    let sender = daemon.client().args(["--node", "bridge-a", "--output", "counter", "--rt", "70", "--seconds", &sender_secs]).stdout(Stdio::piped()).spawn().unwrap();
    let receiver = run_with_timeout(
        daemon.client().args(["--node", "bridge-b", "--check-counter", "--rt", "70", "--seconds", &secs]),
        Duration::from_secs(seconds as u64 + 20),
    );
    let sender = sender.wait_with_output().unwrap();
    let (s, r) = (report(&sender.stdout), report(&receiver.stdout));
    let context = format!("sender:\n{}\nreceiver:\n{}", output_text(&sender), output_text(&receiver));
    assert_eq!(r.num("frames"), quantum as f64, "{context}");
    assert_eq!(r.num("counter_delay"), quantum as f64, "{context}");
    assert_eq!(r.num("counter_mismatches"), 0.0, "{context}");
    assert!(r.num("counter_dropouts") <= s.num("late_cycles") * quantum as f64, "silence the sender does not account for: {context}");
    let expected = seconds as f64 * 48000.0 / quantum as f64;
    for rep in [&s, &r] {
        assert_eq!(rep.num("position_errors"), 0.0, "repeats or wrong positions: {context}");
        // Skipped graph cycles are the machine's loss only where the daemon
        // skips them (PipeWire 1.x, seen on 1.4); 0.3.x runs a late cycle
        // late, so a jump there would be the bridge's.
        if asio_bridge_tests::pipewire_version() < (1, 0, 0) {
            assert_eq!(rep.num("position_jumps"), 0.0, "the graph position jumped on a daemon that does not skip cycles: {context}");
        }
        assert!(rep.num("cycles") + rep.num("missed") > expected * 0.97, "too few cycles (want ~{expected}): {context}");
    }
    asio_bridge_tests::publish(
        &format!("node-two-bridges-{quantum}"),
        &format!(
            "quantum {quantum}, {seconds} s, clients SCHED_FIFO 70: sender {} cycles + {} missed ({} late at the node), receiver {} + {} missed ({} late); 0 wrong samples; the machine's: {} graph position jumps (skipped cycles), {} samples of the cycle before a jump\n",
            s.num("cycles"), s.num("missed"), s.num("late_cycles"), r.num("cycles"), r.num("missed"), r.num("late_cycles"), r.num("position_jumps"), r.num("counter_jump_mismatches")
        ),
    );
    assert!(r.num("counter_matched") > expected * 0.95 * quantum as f64, "{context}");
}

#[test]
fn audio_is_bit_exact_and_every_cycle_is_accounted_for_at_quantum_256() {
    bit_exact_and_every_cycle(256, 10);
}

#[test]
fn audio_is_bit_exact_and_every_cycle_is_accounted_for_at_quantum_64() {
    bit_exact_and_every_cycle(64, 10);
}

#[test]
fn a_killed_client_leaves_silence_and_the_port_free() {
    let mut daemon = two_bridges();
    daemon.node("bridge-b");
    daemon.force_quantum(256);
    daemon.link("bridge-a:out_1", "bridge-b:in_1");
    let receiver = daemon.client().args(["--node", "bridge-b", "--check-counter", "--seconds", "6"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut sender = daemon.client().args(["--node", "bridge-a", "--output", "counter", "--seconds", "60"]).stdout(Stdio::piped()).spawn().unwrap();
    sleep(Duration::from_secs(2));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(sender.id() as i32, libc::SIGKILL) };
    sender.wait().unwrap();
    let killed = Instant::now();
    let mut next;
    loop {
        next = run_with_timeout(daemon.client().args(["--node", "bridge-a", "--seconds", "0.5"]), Duration::from_secs(10));
        if report(&next.stdout).get("attached").map(String::as_str) == Some("1") || killed.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    let r = report(&next.stdout);
    assert_eq!(r.num("attached"), 1.0, "the port stayed busy after the client died: {}", output_text(&next));
    assert!(r.num("cycles") > 0.0);
    let rec = receiver.wait_with_output().unwrap();
    let rr = report(&rec.stdout);
    assert!(rr.num("counter_matched") > 48000.0, "no audio flowed before the kill: {}", output_text(&rec));
    // After the kill bridge A plays silence: B's input has been silent for
    // (almost) the rest of its run, about 4 s of 6.
    assert!(rr.num("silent_tail_frames") > 3.0 * 48000.0, "bridge A did not go silent: {}", output_text(&rec));
    assert!(daemon.alive());
    daemon.node("Dummy-Driver");
}

#[test]
fn a_second_client_is_refused_with_the_holder_named() {
    let daemon = shipped();
    daemon.node("asio-bridge");
    let mut holder = daemon.client().args(["--name", "Reaper.exe", "--seconds", "30"]).stdout(Stdio::piped()).spawn().unwrap();
    let pid = holder.id();
    let mut first_line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()), &mut first_line).unwrap();
    assert_eq!(first_line.trim(), "attached=1");
    let out = run_with_timeout(daemon.client().args(["--seconds", "0.2"]), Duration::from_secs(10));
    holder.kill().unwrap();
    holder.wait().unwrap();
    let r = report(&out.stdout);
    assert_eq!(r.num("attached"), 0.0);
    assert_eq!(out.status.code(), Some(2));
    let err = r.str("error");
    assert!(err.contains("in use by Reaper.exe") && err.contains(&format!("pid {pid}")) && err.contains("asio-bridge-client"), "{err}");
}

#[test]
fn a_client_of_another_protocol_version_is_refused() {
    let daemon = shipped();
    daemon.node("asio-bridge");
    let out = run_with_timeout(daemon.client().args(["--protocol-version", "1", "--seconds", "0.2"]), Duration::from_secs(10));
    let r = report(&out.stdout);
    assert_eq!((r.num("attached"), r.num("version_mismatch")), (0.0, 1.0), "{}", output_text(&out));
    let want = format!("protocol version 1 is not supported (this side speaks version {ASIO_BRIDGE_VERSION})");
    assert!(r.str("error").contains(&want), "{}", r.str("error"));
}

/// A connection to the bridge socket at `path` (SOCK_SEQPACKET, which std
/// cannot open), as a stream of whole messages.
fn seqpacket(path: &std::path::Path) -> std::os::unix::net::UnixStream {
    // SAFETY: plain socket/connect syscalls; the fd is owned by the stream.
    unsafe {
        use std::os::fd::FromRawFd;
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0);
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as u16;
        for (d, s) in addr.sun_path.iter_mut().zip(path.as_os_str().as_encoded_bytes()) {
            *d = *s as libc::c_char;
        }
        assert_eq!(libc::connect(fd, (&addr as *const libc::sockaddr_un).cast(), std::mem::size_of_val(&addr) as u32), 0);
        std::os::unix::net::UnixStream::from_raw_fd(fd)
    }
}

#[test]
fn a_hello_with_flags_this_node_does_not_know_is_refused_in_words() {
    use std::io::{Read, Write};
    let daemon = shipped();
    daemon.node("asio-bridge");
    let mut hello = asio_bridge_abi::asio_bridge_hello::with_name("x");
    hello.flags = 0x80;
    let mut conn = seqpacket(&daemon.runtime.join("asio-bridge/asio-bridge"));
    conn.write_all(asio_bridge_abi::as_bytes(&hello)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 512];
    let n = conn.read(&mut buf).unwrap();
    let Ok(asio_bridge_abi::NodeMessage::Refuse(r)) = asio_bridge_abi::decode_node(&buf[..n]) else { panic!("no refusal: {:?}", &buf[..n]) };
    let text = asio_bridge_abi::c_str(&r.message).to_string();
    assert_eq!(r.reason, asio_bridge_abi::ASIO_BRIDGE_REFUSE_PROTOCOL, "{text}");
    assert!(text.contains("unknown hello flags 0x80"), "{text}");
}

#[test]
fn hostile_connections_do_not_harm_the_daemon() {
    use std::os::unix::net::UnixStream;
    let mut daemon = shipped();
    daemon.node("asio-bridge");
    let path = daemon.runtime.join("asio-bridge/asio-bridge");
    let seqpacket = || seqpacket(&path);
    let hello = asio_bridge_abi::asio_bridge_hello::with_name("x");
    let good = asio_bridge_abi::as_bytes(&hello).to_vec();
    let mut bad_magic = good.clone();
    bad_magic[0] ^= 0xff;
    let mut bad_size = good.clone();
    bad_size[12] = 200;
    let garbage: Vec<Vec<u8>> = vec![vec![], vec![1, 2, 3], vec![0xff; 100_000], bad_magic, bad_size, good[..40].to_vec()];
    for bytes in &garbage {
        let mut s = seqpacket();
        let _ = s.write_all(bytes);
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0u8; 512];
        let _ = std::io::Read::read(&mut s, &mut buf);
    }
    // Connections that never say hello, beyond the pending limit.
    let idle: Vec<UnixStream> = (0..20).map(|_| seqpacket()).collect();
    drop(idle);
    assert!(daemon.alive());
    let out = run_with_timeout(daemon.client().args(["--seconds", "1"]), Duration::from_secs(10));
    let r = report(&out.stdout);
    assert_eq!(r.num("attached"), 1.0, "{}", output_text(&out));
    assert!(r.num("cycles") > 0.0);
    assert!(daemon.log().contains("bad message from ASIO client"), "{}", daemon.log());
}

#[test]
fn runs_beside_wireplumber_without_becoming_a_default_device() {
    let daemon = Daemon::start("wp", &[(MODULE_FRAGMENT, &fragment(MODULE_FRAGMENT))]);
    check_bridge(&daemon, "asio-bridge", 2, 2);
    let out = run_with_timeout(daemon.client().args(["--seconds", "1"]), Duration::from_secs(10));
    assert!(report(&out.stdout).num("cycles") > 0.0, "{}", output_text(&out));
    let defaults = run_with_timeout(daemon.cmd("pw-metadata").args(["0", "default.audio.sink"]), Duration::from_secs(5));
    assert!(!String::from_utf8_lossy(&defaults.stdout).contains("asio-bridge"), "{}", output_text(&defaults));
}

/// A daemon that allows three rates, with a bridge that may ask for them.
fn clock_daemon(name: &str, bridge_args: &str) -> Daemon {
    let text = shipped_with(bridge_args);
    assert!(text.contains(bridge_args));
    let clock = "context.properties = { default.clock.allowed-rates = [ 44100 48000 96000 ] }\n";
    Daemon::start(name, &[("10-clock.conf", clock), (MODULE_FRAGMENT, &text)])
}

/// The quantum and rate the graph runs, as a plain client sees them.
fn graph_clock(daemon: &Daemon) -> (f64, f64) {
    let out = run_with_timeout(daemon.client().args(["--seconds", "0.5"]), Duration::from_secs(10));
    let r = report(&out.stdout);
    (r.num("frames"), r.num("rate"))
}

#[test]
fn a_client_forces_quantum_and_rate_and_the_graph_returns_when_it_leaves() {
    let daemon = clock_daemon("force", "asio.rates=[44100,48000,96000]");
    let before = graph_clock(&daemon);
    let out = run_with_timeout(daemon.client().args(["--quantum", "128", "--rate", "96000", "--seconds", "2"]), Duration::from_secs(15));
    let r = report(&out.stdout);
    assert_eq!((r.num("frames"), r.num("rate")), (128.0, 96000.0), "{}\n{}", output_text(&out), daemon.log());
    assert_eq!(graph_clock(&daemon), before, "the graph kept the client's clock after it detached");

    // A client that dies releases its clock too.
    let mut held = daemon.client().args(["--quantum", "64", "--rate", "44100", "--seconds", "30"]).stdout(Stdio::null()).spawn().unwrap();
    daemon.wait_until("the graph runs quantum 64", Duration::from_secs(10), || {
        daemon.dump().iter().any(|o| asio_bridge_tests::is_type(o, "Node") && props(o)["node.force-quantum"].to_string().trim_matches('"') == "64")
    });
    held.kill().unwrap();
    held.wait().unwrap();
    assert_eq!(graph_clock(&daemon), before, "the graph kept a dead client's clock");

    // Outside the node's limits: ignored, with the limits in the log.
    let out = run_with_timeout(daemon.client().args(["--quantum", "100", "--rate", "22050", "--seconds", "1"]), Duration::from_secs(15));
    assert_eq!((report(&out.stdout).num("frames"), report(&out.stdout).num("rate")), before);
    assert!(daemon.log().contains("outside what 'asio-bridge' allows"), "{}", daemon.log());
}
