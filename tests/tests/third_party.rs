//! Third-party ASIO hosts through the bridge: the ASIO backends of RtAudio
//! 5.2.0 and PortAudio 19.6.0 with their own test programs, built from
//! Debian's source tarballs against the project's SDK-compatible glue, run
//! in a real Wine prefix against a real daemon. Hosts the project did not
//! write find what its own host hides.

use asio_bridge_tests::{
    output_text, props, report, run_with_timeout, shipped_with,
    third_party::{self, Bits},
    wine::{Prefix, WINE32_NTDLL},
    with_bridge, Daemon, Report,
};
use std::{
    io::Write,
    path::PathBuf,
    process::{Output, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

/// What RtAudio's test programs ask for: 512 frames (their fixed size), 2
/// channels, 48 kHz.
const RTAUDIO_BUFFER: &str = "512";

/// The bridge node's `key` as text (pw-dump prints numeric text as numbers).
fn node_prop(daemon: &Daemon, key: &str) -> String {
    let node = daemon.node("asio-bridge");
    let value = &props(&node)[key];
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

/// The quantum the graph runs, as the reference client sees it on the
/// second bridge (nobody else uses it).
fn graph_quantum(daemon: &Daemon) -> String {
    let out = run_with_timeout(daemon.client().args(["--node", "asio-bridge-probe", "--seconds", "0.5"]), Duration::from_secs(10));
    report(&out.stdout).str("frames").to_owned()
}

/// A third-party host's programs, run in the prefix.
struct Host<'a> {
    daemon: &'a Daemon,
    prefix: &'a Prefix,
    bin: PathBuf,
    /// The ASIO buffer size its programs choose.
    buffer: &'a str,
}

impl Host<'_> {
    /// Runs `program` with `args`. Each entry of `enters` is the bridge
    /// state (`running` or `attached`) to wait for before pressing Enter,
    /// which the program waits for between its steps. The first time the
    /// host runs, checks that the bridge streams at the host's buffer size
    /// and the graph runs `quantum`. Returns the program's output once it
    /// exited.
    fn run(&self, program: &str, args: &[&str], enters: &[&str], quantum: &str) -> Output {
        let started = Instant::now();
        let mut child = self
            .prefix
            .wine()
            .arg(self.bin.join(format!("{program}.exe")))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut checked = false;
        let steps = if enters.is_empty() { &["running"][..] } else { enters };
        let mut missed = None;
        for (i, &state) in steps.iter().enumerate() {
            if !self.wait_for_state(program, state, &mut child) {
                missed = Some(format!("{program} exited before step {i}: the bridge {state}"));
                break;
            }
            if state == "running" && !checked {
                checked = true;
                assert_eq!(node_prop(self.daemon, "asio.buffer-size"), self.buffer, "{program}: the bridge runs another size than the host asked for");
                assert_eq!(graph_quantum(self.daemon), quantum, "{program}: the graph does not run {quantum}");
            }
            if !enters.is_empty() {
                // Running: some hundred graph cycles at 64.
                sleep(Duration::from_millis(if state == "running" { 500 } else { 100 }));
                writeln!(stdin).unwrap_or_else(|e| panic!("{program}: Enter #{i}: {e}"));
            }
        }
        drop(stdin);
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(child.wait_with_output()));
        let out = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("{program} did not finish within 30 s of its last step\n{}", self.daemon.log())
        });
        let out = out.unwrap();
        println!("{program} {args:?}: {:.1} s", started.elapsed().as_secs_f64());
        if let Some(missed) = missed {
            panic!("{missed}: {}", output_text(&out));
        }
        out
    }

    /// Waits until the bridge is in `state`; false if the program exited
    /// first.
    fn wait_for_state(&self, program: &str, state: &str, child: &mut std::process::Child) -> bool {
        let start = Instant::now();
        while node_prop(self.daemon, "asio.state") != state {
            if child.try_wait().unwrap().is_some() {
                return false;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{program}: the bridge was never {state}\n{}", self.daemon.log());
            sleep(Duration::from_millis(50));
        }
        true
    }
}

/// A clean run: exit 0, nothing on stderr (where RtAudio reports every
/// warning and error, among them "driver reset requested!!!",
/// "driver latency may have changed!!!" and a sample rate change stopping
/// the stream, and PortAudio's programs their errors), and no over/underflow
/// the program saw.
fn assert_clean(program: &str, quantum: &str, out: &Output) {
    let text = format!("{program}, graph at {quantum}: {}", output_text(out));
    println!("{text}");
    assert!(out.status.success(), "{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim().is_empty(), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("flow detected"), "{text}");
}

#[test]
fn rtaudio_and_portaudio_stream_at_their_own_buffer_size_whatever_quantum_the_graph_is_held_at() {
    // Built (where not cached) while the session and the prefix start.
    let builds = std::thread::spawn(|| {
        (third_party::rtaudio(Bits::X64, &["audioprobe", "playsaw", "duplex", "testall"]), third_party::portaudio(&["examples/pa_devs", "examples/paex_saw"]))
    });
    // PortAudio's programs play at 44.1 kHz, RtAudio's at 48.
    let clock = "context.properties = { default.clock.allowed-rates = [ 44100 48000 ] }\n";
    let text = with_bridge(&shipped_with("asio.rates = [ 44100 48000 ]"), "node.name = asio-bridge-probe");
    let daemon = Daemon::start("third-party", &[("10-clock.conf", clock), ("50-asio-bridge.conf", &text)]);
    daemon.node("asio-bridge-probe");
    let prefix = Prefix::create(&daemon.dir, &daemon);
    let (rtaudio_bin, portaudio_bin) = builds.join().expect("building the third-party hosts failed (see above)");
    let rtaudio = Host { daemon: &daemon, prefix: &prefix, bin: rtaudio_bin, buffer: RTAUDIO_BUFFER };

    let out = run_with_timeout(prefix.wine().arg(rtaudio.bin.join("audioprobe.exe")), Duration::from_secs(60));
    assert_clean("audioprobe", "free", &out);
    let probe = String::from_utf8_lossy(&out.stdout);
    for line in ["Found 1 device(s)", "Device Name = PipeWire ASIO Bridge", "Probe Status = Successful", "Output Channels = 2", "Input Channels = 2", "Duplex Channels = 2", "32-bit float", "Supported sample rates = 44100 48000"] {
        assert!(probe.contains(line), "audioprobe does not say {line:?}:\n{probe}");
    }

    // Free, the graph follows the host; held at 64 or 256 by another
    // program, it stays there and the host keeps its 512 through the FIFOs.
    for (forced, quantum, duplex) in [(0, RTAUDIO_BUFFER, true), (64, "64", true), (256, "256", false)] {
        daemon.force_quantum(forced);
        // playsaw: 2 channels at 48 kHz on device 0, offset 0, for 2 s;
        // it stops itself from its callback (a drain, then a stop from
        // another thread).
        let out = rtaudio.run("playsaw", &["2", "48000", "0", "0", "2"], &[], quantum);
        assert_clean("playsaw", quantum, &out);
        if duplex {
            let out = rtaudio.run("duplex", &["2", "48000"], &["running"], quantum);
            assert_clean("duplex", quantum, &out);
            assert!(String::from_utf8_lossy(&out.stdout).contains("buffer frames = 512"), "{}", output_text(&out));
        }
    }

    // testall with the graph held at 64: play, stop, restart, abort,
    // restart, close; non-interleaved play; duplex, stop, restart.
    daemon.force_quantum(64);
    let enters = ["running", "attached", "running", "attached", "running", "attached", "running", "attached", "running", "attached", "running"];
    let out = rtaudio.run("testall", &["2", "48000"], &enters, "64");
    assert_clean("testall", "64", &out);

    // PortAudio: its device list, then a sawtooth for 4 s with the graph
    // still held at 64.
    let out = run_with_timeout(prefix.wine().arg(portaudio_bin.join("pa_devs.exe")), Duration::from_secs(60));
    assert_clean("pa_devs", "64", &out);
    // (pa_devs prints the name through wprintf, which mingw's C runtime
    // cuts to its first letter.)
    let devs = String::from_utf8_lossy(&out.stdout);
    for line in ["Number of devices = 1", "Host API                    = ASIO", "Max inputs = 2, Max outputs = 2", "44100.00, 48000.00"] {
        assert!(devs.contains(line), "pa_devs does not say {line:?}:\n{devs}");
    }
    // Asked for 256-frame callbacks at its default latency, PortAudio
    // chooses ASIO buffers of 2048 from the sizes the driver offers: 32
    // graph cycles a buffer, through the FIFOs.
    let portaudio = Host { daemon: &daemon, prefix: &prefix, bin: portaudio_bin, buffer: "2048" };
    let out = portaudio.run("paex_saw", &[], &[], "64");
    assert_clean("paex_saw", "64", &out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Test finished."), "{}", output_text(&out));
}

/// RtAudio built for i386 calls IASIO as C++ virtual methods in g++'s own
/// convention, not through the driver's C declarations: a 32-bit host the
/// project did not write, through the 32-bit driver.
#[test]
fn rtaudio_32_bit_streams_through_the_32_bit_driver_at_its_own_buffer_size() {
    assert!(std::path::Path::new(WINE32_NTDLL).exists(), "{WINE32_NTDLL} is missing: install wine32:i386 (tools/install-deps does)");
    let builds = std::thread::spawn(|| third_party::rtaudio(Bits::I386, &["audioprobe", "playsaw", "duplex"]));
    let text = with_bridge(&shipped_with(""), "node.name = asio-bridge-probe");
    let daemon = Daemon::start("third-party-32", &[("50-asio-bridge.conf", &text)]);
    daemon.node("asio-bridge-probe");
    let prefix = Prefix::create(&daemon.dir, &daemon);
    let bin = builds.join().expect("building 32-bit RtAudio failed (see above)");
    let out = run_with_timeout(prefix.wine().arg(bin.join("audioprobe.exe")), Duration::from_secs(60));
    assert_clean("audioprobe (32-bit)", "free", &out);
    let probe = String::from_utf8_lossy(&out.stdout);
    for line in ["Device Name = PipeWire ASIO Bridge", "Probe Status = Successful", "Duplex Channels = 2", "32-bit float"] {
        assert!(probe.contains(line), "audioprobe does not say {line:?}:\n{probe}");
    }
    let rtaudio = Host { daemon: &daemon, prefix: &prefix, bin, buffer: RTAUDIO_BUFFER };
    // Free, the graph follows the host; held at 64, the host keeps its 512
    // through the FIFOs, playing and in duplex.
    for (forced, quantum) in [(0, RTAUDIO_BUFFER), (64, "64")] {
        daemon.force_quantum(forced);
        let out = rtaudio.run("playsaw", &["2", "48000", "0", "0", "2"], &[], quantum);
        assert_clean("playsaw (32-bit)", quantum, &out);
    }
    let out = rtaudio.run("duplex", &["2", "48000"], &["running"], "64");
    assert_clean("duplex (32-bit)", "64", &out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("buffer frames = 512"), "{}", output_text(&out));
}
