//! The Wine ASIO driver end to end: a real daemon with the bridge, a fresh
//! Wine prefix with the driver registered by regsvr32, and the project's
//! ASIO host loading it exactly as a DAW does.

use asio_bridge_tests::{
    daemon_rounds_forced_quanta, fragment, output_text, report, run_with_timeout, shipped_with,
    wine::{Prefix, ASIO_HOST, ASIO_HOST_32, WINE32_NTDLL},
    with_bridge, Daemon, Report,
};
use std::{
    process::Stdio,
    time::{Duration, Instant},
};

const MODULE_FRAGMENT: &str = "50-asio-bridge.conf";

/// The bridge as users install it: the shipped fragment.
fn bridge() -> Daemon {
    Daemon::start("driver", &[(MODULE_FRAGMENT, &shipped_with(""))])
}

/// The shipped bridge and a second bridge, `asio-bridge-b`, with 4
/// channels each way.
fn two_bridges() -> Daemon {
    let text = with_bridge(&shipped_with(""), "node.name = asio-bridge-b asio.inputs = 4 asio.outputs = 4");
    Daemon::start("two", &[(MODULE_FRAGMENT, &text)])
}

/// Runs the staged register script in the prefix with `args`.
fn register(prefix: &Prefix, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(asio_bridge_tests::stage().join("bin/asio-bridge-register"));
    cmd.args(args).env("WINEPREFIX", &prefix.path).env_remove("WINEDLLPATH").env_remove("DISPLAY");
    run_with_timeout(&mut cmd, Duration::from_secs(120))
}

fn reg_add(prefix: &Prefix, key: &str, name: &str, value: u32) {
    let out = run_with_timeout(
        prefix.wine().args(["reg", "add", key, "/v", name, "/t", "REG_DWORD", "/d", &value.to_string(), "/f", "/reg:64"]),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", output_text(&out));
}

/// What `HKLM\Software\ASIO` holds in the registry `view` (/reg:64, or
/// /reg:32 where 32-bit hosts look).
fn asio_entries(prefix: &Prefix, view: &str) -> (String, String) {
    let asio = prefix.reg_query_view(r"HKLM\Software\ASIO", view);
    (String::from_utf8_lossy(&asio.stdout).into_owned(), output_text(&asio))
}

/// Registered for 64-bit and (wine32 installed) 32-bit hosts, each entry in
/// its registry view; unregistering removes both.
#[test]
fn the_register_script_registers_and_unregisters_the_driver_with_regsvr32() {
    require_wine32();
    let daemon = bridge();
    let mut prefix = Prefix::create(&daemon.dir, &daemon);
    for view in ["/reg:64", "/reg:32"] {
        let (text, ctx) = asio_entries(&prefix, view);
        assert!(text.contains("PipeWire ASIO Bridge") && text.contains("CLSID") && text.contains("Description"), "{view}: {ctx}");
    }
    let mut unregister = std::process::Command::new(asio_bridge_tests::stage().join("bin/asio-bridge-register"));
    unregister.arg("--unregister").env("WINEPREFIX", &prefix.path).env_remove("WINEDLLPATH");
    let out = run_with_timeout(&mut unregister, Duration::from_secs(60));
    assert!(out.status.success(), "{}", output_text(&out));
    for view in ["/reg:64", "/reg:32"] {
        let (text, ctx) = asio_entries(&prefix, view);
        assert!(!text.contains("PipeWire ASIO Bridge"), "{view}: {ctx}");
    }
    for host in [ASIO_HOST, ASIO_HOST_32] {
        prefix.host_exe = host;
        let (r, out) = prefix.host(&["info"], Duration::from_secs(60));
        assert_eq!(r.num("driver_found"), 0.0, "{host}: {}", output_text(&out));
    }
}

#[test]
fn init_fails_in_words_a_musician_understands_without_a_bridge() {
    let daemon = Daemon::start("nobridge", &[]);
    let prefix = Prefix::create(&daemon.dir, &daemon);
    let (r, out) = prefix.host(&["info"], Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert_eq!((r.num("driver_found"), r.num("init")), (1.0, 0.0), "{}", output_text(&out));
    assert!(r.str("error").contains("asio-bridge"), "{}", output_text(&out));
}

#[test]
fn every_iasio_method_in_and_out_of_order() {
    let daemon = bridge();
    let prefix = Prefix::create(&daemon.dir, &daemon);
    let (r, out) = prefix.host(&["conformance"], Duration::from_secs(90));
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(r.num("conformance_failures"), 0.0, "{}", output_text(&out));
}

#[test]
fn info_reports_the_node_as_the_driver_sees_it() {
    let daemon = bridge();
    daemon.force_quantum(256);
    let prefix = Prefix::create(&daemon.dir, &daemon);
    let (r, out) = prefix.host(&["info"], Duration::from_secs(60));
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(r.str("driver_name"), "PipeWire ASIO Bridge");
    assert_eq!((r.num("inputs"), r.num("outputs")), (2.0, 2.0));
    assert_eq!(r.num("buffer_preferred"), 256.0, "{}", output_text(&out));
    // The shipped bridge's limits: PipeWire's default clock settings, and
    // the sizes this daemon runs (powers of two before 0.3.82, any after).
    let limits = ["buffer_min", "buffer_max", "buffer_granularity"].map(|k| r.num(k));
    let granularity = if daemon_rounds_forced_quanta() { -1.0 } else { 1.0 };
    assert_eq!(limits, [32.0, 2048.0, granularity], "{}", output_text(&out));
    assert_eq!((r.num("can_rate_48000"), r.num("can_rate_44100")), (1.0, 0.0), "{}", output_text(&out));
    assert_eq!(r.num("sample_rate"), 48000.0);
    assert_eq!((r.num("input_latency"), r.num("output_latency")), (0.0, 256.0), "{}", output_text(&out));
    assert!(r.str("channel_in_0").starts_with("in_1"), "{}", output_text(&out));
}

/// A counter written to output 1 comes back on input 1 through a graph
/// loopback (out_1 -> in_1) bit-exactly, at the reported input + output
/// latency plus the one quantum a loop inside the graph adds.
fn loopback(host: &'static str, quantum: u32, seconds: u32) {
    let daemon = bridge();
    daemon.node("asio-bridge");
    daemon.force_quantum(quantum);
    daemon.link("asio-bridge:out_1", "asio-bridge:in_1");
    let mut prefix = Prefix::create(&daemon.dir, &daemon);
    prefix.host_exe = host;
    let bits = if host == ASIO_HOST_32 { "-32" } else { "" };
    let secs = seconds.to_string();
    let size = quantum.to_string();
    let (r, out) = prefix.host(&["run", "--loopback", "--buffer", &size, "--seconds", &secs], Duration::from_secs(seconds as u64 + 90));
    let ctx = output_text(&out);
    assert!(out.status.success(), "{ctx}");
    assert_eq!(r.num("buffer_size"), quantum as f64, "{ctx}");
    assert_eq!(r.num("loopback_mismatches"), 0.0, "{ctx}");
    // Every sample is checked. None is lost but while cycles the driver
    // reported late (kAsioOverload) come back through the loop: the
    // bridge itself loses nothing.
    assert_eq!((r.num("loopback_dropouts"), r.num("loopback_latency_shifts")), (0.0, 0.0), "{ctx}");
    // A late cycle costs at most its quantum of output (the node plays
    // silence for it) and, where the driver missed the cycle entirely, its
    // quantum of input.
    assert!(r.num("xrun_lost_samples") <= 2.0 * quantum as f64 * r.num("late_cycles"), "{ctx}");
    println!("quantum {quantum}: {} late cycles cost {} samples", r.num("late_cycles"), r.num("xrun_lost_samples"));
    // The driver's default: the callback thread runs SCHED_FIFO 70 (tests
    // run where that is permitted).
    assert_eq!((r.str("callback_policy"), r.num("callback_priority")), ("SCHED_FIFO", 70.0), "{ctx}");
    assert!(r.num("loopback_locked_samples") > 0.5 * seconds as f64 * 48000.0, "{ctx}");
    let reported = r.num("input_latency") + r.num("output_latency");
    assert_eq!(r.num("loopback_offset"), reported + quantum as f64, "measured round trip vs reported latency + one loop quantum: {ctx}");
    for key in ["position_errors", "flag_errors"] {
        assert_eq!(r.num(key), 0.0, "{key}: {ctx}");
    }
    // Every graph cycle reached the host in order; a cycle it missed (the
    // machine stalled Wine's thread or the daemon) was reported to it as an
    // overload, so every cycle is either a callback or a reported late one.
    // Those late cycles are the machine's, counted apart and published.
    assert!(r.num("index_errors") <= r.num("xruns"), "{ctx}");
    assert!(r.num("callbacks") + r.num("late_cycles") >= r.num("expected_callbacks") - 2.0, "{ctx}");
    asio_bridge_tests::publish(
        &format!("driver-loopback{bits}-{quantum}"),
        &format!(
            "{host}: quantum {quantum}, {seconds} s, SCHED_FIFO 70: {} callbacks of {} cycles, {} late cycles reported to the host, {} samples they cost, 0 lost by the bridge\n",
            r.num("callbacks"),
            r.num("expected_callbacks"),
            r.num("late_cycles"),
            r.num("xrun_lost_samples")
        ),
    );
}

#[test]
fn loopback_is_bit_exact_at_quantum_64() {
    loopback(ASIO_HOST, 64, 3);
}

#[test]
fn loopback_is_bit_exact_and_every_cycle_calls_back_for_10_s_at_quantum_256() {
    loopback(ASIO_HOST, 256, 10);
}

#[test]
fn loopback_is_bit_exact_at_quantum_1024() {
    loopback(ASIO_HOST, 1024, 3);
}

/// The 32-bit driver's tests need Wine to run 32-bit programs.
fn require_wine32() {
    assert!(std::path::Path::new(WINE32_NTDLL).exists(), "{WINE32_NTDLL} is missing: install wine32:i386 (tools/install-deps does)");
}

#[test]
fn a_32_bit_host_loops_back_bit_exact_at_quantum_64() {
    require_wine32();
    loopback(ASIO_HOST_32, 64, 5);
}

#[test]
fn a_32_bit_host_calls_every_iasio_method_in_and_out_of_order() {
    require_wine32();
    let daemon = bridge();
    let mut prefix = Prefix::create(&daemon.dir, &daemon);
    prefix.host_exe = ASIO_HOST_32;
    let (r, out) = prefix.host(&["conformance"], Duration::from_secs(90));
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(r.num("conformance_failures"), 0.0, "{}", output_text(&out));
}

/// The quantum the graph runs, as the reference client sees it.
fn graph_quantum(daemon: &Daemon) -> f64 {
    let out = run_with_timeout(daemon.client().args(["--seconds", "0.5"]), Duration::from_secs(10));
    report(&out.stdout).num("frames")
}

#[test]
fn a_killed_host_leaves_the_daemon_running_the_node_free_and_the_quantum_restored() {
    let mut daemon = bridge();
    daemon.node("asio-bridge");
    let before = graph_quantum(&daemon);
    assert_ne!(before, 64.0);
    let prefix = Prefix::create(&daemon.dir, &daemon);
    let host = prefix.wine().arg(asio_bridge_tests::stage().join("bin/asio-host.exe")).args(["run", "--buffer", "64", "--seconds", "60"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // Wait until the host holds the bridge (a probe is refused as busy)
    // and has made the graph run its buffer size.
    daemon.wait_until("the host attaches", Duration::from_secs(60), || {
        let out = run_with_timeout(daemon.client().args(["--seconds", "0"]), Duration::from_secs(10));
        report(&out.stdout).get("busy").map(String::as_str) == Some("1")
    });
    daemon.wait_until("the graph runs the host's 64", Duration::from_secs(10), || {
        daemon.dump().iter().any(|o| {
            asio_bridge_tests::is_type(o, "Node") && asio_bridge_tests::props(o)["node.force-quantum"].to_string().trim_matches('"') == "64"
        })
    });
    // The Windows process is the host's own pid (wine execs the loader).
    // SAFETY: signalling our own child.
    unsafe { libc::kill(host.id() as i32, libc::SIGKILL) };
    let killed = Instant::now();
    let mut host = host;
    host.wait().unwrap();
    let mut attached = None;
    daemon.wait_until("the node is free again", Duration::from_secs(10), || {
        let out = run_with_timeout(daemon.client().args(["--seconds", "0.5"]), Duration::from_secs(10));
        let ok = report(&out.stdout).get("attached").map(String::as_str) == Some("1");
        attached = Some(out);
        ok
    });
    assert!(killed.elapsed() < Duration::from_secs(5));
    let attached = report(&attached.unwrap().stdout);
    assert!(attached.num("cycles") > 0.0);
    assert_eq!(attached.num("frames"), before, "the dead host's buffer size stayed forced on the graph");
    assert!(daemon.alive());
}

#[test]
fn the_bridge_node_is_chosen_by_environment_or_registry() {
    let objects = std::fs::read_to_string(asio_bridge_tests::root().join("conf/examples/60-asio-bridge-objects.conf")).unwrap();
    let daemon = Daemon::start("choose", &[(MODULE_FRAGMENT, &fragment(MODULE_FRAGMENT)), ("60-asio-bridge-objects.conf", &objects)]);
    daemon.node("asio-bridge-8x8");
    let prefix = Prefix::create(&daemon.dir, &daemon);
    let inputs = |env: Option<&str>| {
        let mut cmd = prefix.wine();
        cmd.arg(asio_bridge_tests::stage().join("bin/asio-host.exe")).arg("info");
        if let Some(node) = env {
            cmd.env("ASIO_BRIDGE_NODE", node);
        }
        let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
        report(&out.stdout).get("inputs").cloned().unwrap_or_else(|| output_text(&out))
    };
    assert_eq!(inputs(None), "2");
    assert_eq!(inputs(Some("asio-bridge-8x8")), "8");
    let key = r"HKCU\Software\ASIO\PipeWire ASIO Bridge";
    let out = run_with_timeout(prefix.wine().args(["reg", "add", key, "/v", "Node", "/t", "REG_SZ", "/d", "asio-bridge-8x8", "/f", "/reg:64"]), Duration::from_secs(60));
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(inputs(None), "8");
    assert_eq!(inputs(Some("asio-bridge")), "2", "the environment overrides the registry");
}

#[test]
fn a_host_without_time_info_gets_buffer_switch_with_exact_positions() {
    let daemon = bridge();
    daemon.node("asio-bridge");
    daemon.force_quantum(256);
    let prefix = Prefix::create(&daemon.dir, &daemon);
    // Also: priority 0 leaves the callback thread as Wine made it.
    let out = run_with_timeout(
        prefix.wine().env("ASIO_BRIDGE_RT_PRIORITY", "0").arg(asio_bridge_tests::stage().join("bin/asio-host.exe")).args(["run", "--no-timeinfo", "--seconds", "2"]),
        Duration::from_secs(90),
    );
    let (r, ctx) = (report(&out.stdout), output_text(&out));
    assert!(out.status.success(), "{ctx}");
    assert_eq!(r.str("callback_policy"), "SCHED_OTHER", "{ctx}");
    assert_eq!(r.num("used_time_info"), 0.0, "{ctx}");
    assert_eq!((r.num("position_errors"), r.num("index_errors")), (0.0, 0.0), "{ctx}");
    // Without real-time priority a busy machine makes the thread miss
    // cycles; each is reported to the host as an overload, none is lost
    // unreported.
    assert!(r.num("callbacks") + r.num("late_cycles") >= r.num("expected_callbacks") - 2.0, "{ctx}");
}

/// getBufferSize's preferred size is a setting, 256 unless the user says
/// otherwise, whatever quantum the graph runs; brought into the bridge's
/// limits (powers of two here, 32 to 2048); 0 means the graph's quantum.
#[test]
fn the_preferred_buffer_size_is_a_setting() {
    let daemon = bridge();
    daemon.node("asio-bridge");
    daemon.force_quantum(1024);
    let prefix = Prefix::create(&daemon.dir, &daemon);
    let preferred = |env: Option<&str>| {
        let mut cmd = prefix.wine();
        cmd.arg(asio_bridge_tests::stage().join("bin/asio-host.exe")).arg("info");
        if let Some(size) = env {
            cmd.env("ASIO_BRIDGE_BUFFER_SIZE", size);
        }
        let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
        report(&out.stdout).get("buffer_preferred").cloned().unwrap_or_else(|| output_text(&out))
    };
    assert_eq!(preferred(None), "256");
    let key = r"HKCU\Software\ASIO\PipeWire ASIO Bridge";
    // 100 is brought down to a power of two only where the daemon runs
    // nothing else (PipeWire before 0.3.82).
    let odd = if daemon_rounds_forced_quanta() { "64" } else { "100" };
    for (value, want) in [(128, "128"), (100, odd), (5000, "2048"), (1, "32"), (0, "1024")] {
        reg_add(&prefix, key, "PreferredBufferSize", value);
        assert_eq!(preferred(None), want, "PreferredBufferSize = {value}");
    }
    assert_eq!(preferred(Some("512")), "512", "the environment overrides the registry");
    // What the host takes when it takes the preferred size.
    reg_add(&prefix, key, "PreferredBufferSize", 64);
    let (r, out) = prefix.host(&["run", "--seconds", "1"], Duration::from_secs(60));
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(r.num("buffer_size"), 64.0, "{}", output_text(&out));
}

/// The control panel's autoconnect box (the entry's Autoconnect value):
/// off, the node shows node.autoconnect = false while the host holds it,
/// which is what the autoconnect script acts on (tests/autoconnect.rs).
#[test]
fn the_autoconnect_setting_reaches_the_node() {
    let daemon = bridge();
    assert_eq!(daemon.node_prop("asio-bridge", "node.autoconnect"), "true");
    let prefix = Prefix::create(&daemon.dir, &daemon);
    reg_add(&prefix, r"HKCU\Software\ASIO\PipeWire ASIO Bridge", "Autoconnect", 0);
    let host = prefix
        .wine()
        .arg(asio_bridge_tests::stage().join("bin/asio-host.exe"))
        .args(["run", "--seconds", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut shown = daemon.node_prop("asio-bridge", "node.autoconnect");
    while shown != "false" && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
        shown = daemon.node_prop("asio-bridge", "node.autoconnect");
    }
    let out = host.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(shown, "false", "while the host ran: {}", output_text(&out));
    let left = Instant::now();
    while daemon.node_prop("asio-bridge", "node.autoconnect") != "true" {
        assert!(left.elapsed() < Duration::from_secs(2), "node.autoconnect stayed false after the host left");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Two bridges in one daemon, each its own driver in one prefix: the plain
/// entry attaches to `asio-bridge`, `asio-bridge-register --node
/// asio-bridge-b` adds an entry with a CLSID of its own that attaches to
/// `asio-bridge-b`, with settings of its own. Two hosts run at once, each
/// on its own bridge, both bit-exact; unregistering the second entry
/// leaves the first.
#[test]
fn two_bridges_are_two_drivers_and_two_hosts_run_at_once() {
    let daemon = two_bridges();
    for node in ["asio-bridge", "asio-bridge-b"] {
        daemon.node(node);
        daemon.link(&format!("{node}:out_1"), &format!("{node}:in_1"));
    }
    daemon.force_quantum(256);
    let prefix = Prefix::create(&daemon.dir, &daemon);
    let entry = "PipeWire ASIO Bridge (asio-bridge-b)";
    let out = register(&prefix, &["--node", "asio-bridge-b"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains(&format!("{entry} registered")), "{}", output_text(&out));
    // For 32-bit hosts too, in their registry view.
    require_wine32();
    assert!(String::from_utf8_lossy(&out.stdout).contains("for 64-bit and 32-bit hosts"), "{}", output_text(&out));
    let (text, ctx) = asio_entries(&prefix, "/reg:32");
    assert!(text.contains(entry), "{ctx}");
    let asio = prefix.reg_query(r"HKLM\Software\ASIO");
    let text = String::from_utf8_lossy(&asio.stdout);
    // The documented scheme: FNV-1a of the node name into the base CLSID.
    let clsid = "{30BDA4F2-FA0B-4E4E-A8B0-3623C09DC868}";
    assert!(text.contains(entry) && text.contains(clsid) && text.contains("{30BDA4F2-FA0B-4E4E-9E6E-A34A232013F2}"), "{}", output_text(&asio));

    let info = |driver: &str| {
        let (r, out) = prefix.host(&["--driver", driver, "info"], Duration::from_secs(60));
        assert!(out.status.success(), "{driver}: {}", output_text(&out));
        r
    };
    let plain = info("PipeWire ASIO Bridge");
    let b = info(entry);
    assert_eq!((plain.str("driver_name"), plain.num("inputs")), ("PipeWire ASIO Bridge", 2.0), "{plain:?}");
    assert_eq!((b.str("driver_name"), b.num("inputs")), ("PipeWire ASIO asio-bridge-b", 4.0), "{b:?}");
    // A 32-bit host finds the named entry on its bridge too.
    let (r, out) = {
        let mut cmd = prefix.wine();
        cmd.arg(asio_bridge_tests::stage().join(ASIO_HOST_32)).args(["--driver", entry, "info"]);
        let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
        (report(&out.stdout), out)
    };
    assert_eq!(r.num("inputs"), 4.0, "32-bit host: {}", output_text(&out));
    // The plain entry's Node setting and ASIO_BRIDGE_NODE do not move the named entry.
    let (r, out) = {
        let mut cmd = prefix.wine();
        cmd.env("ASIO_BRIDGE_NODE", "asio-bridge").arg(asio_bridge_tests::stage().join("bin/asio-host.exe")).args(["--driver", entry, "info"]);
        let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
        (report(&out.stdout), out)
    };
    assert_eq!(r.num("inputs"), 4.0, "{}", output_text(&out));
    // Settings per entry.
    reg_add(&prefix, &format!(r"HKCU\Software\ASIO\{entry}"), "PreferredBufferSize", 128);
    assert_eq!(info(entry).num("buffer_preferred"), 128.0);
    assert_eq!(info("PipeWire ASIO Bridge").num("buffer_preferred"), 256.0);

    // Both at once, each on its own bridge.
    let spawn = |driver: &str, buffer: &str| {
        prefix
            .wine()
            .arg(asio_bridge_tests::stage().join("bin/asio-host.exe"))
            .args(["--driver", driver, "run", "--loopback", "--buffer", buffer, "--seconds", "4"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let hosts = [spawn("PipeWire ASIO Bridge", "256"), spawn(entry, "128")];
    for (host, buffer) in hosts.into_iter().zip([256.0, 128.0]) {
        let out = host.wait_with_output().unwrap();
        let (r, ctx) = (report(&out.stdout), output_text(&out));
        println!("{ctx}");
        assert!(out.status.success(), "{ctx}");
        assert_eq!(r.num("buffer_size"), buffer, "{ctx}");
        assert_eq!((r.num("loopback_mismatches"), r.num("loopback_dropouts"), r.num("loopback_latency_shifts")), (0.0, 0.0, 0.0), "{ctx}");
        assert!(r.num("loopback_locked_samples") > 2.0 * 48000.0, "{ctx}");
        assert_eq!(r.num("loopback_offset"), r.num("input_latency") + r.num("output_latency") + 256.0, "{ctx}");
    }

    let out = register(&prefix, &["--unregister", "--node", "asio-bridge-b"]);
    assert!(out.status.success(), "{}", output_text(&out));
    for view in ["/reg:64", "/reg:32"] {
        let (text, ctx) = asio_entries(&prefix, view);
        assert!(!text.contains(entry) && text.contains("PipeWire ASIO Bridge"), "{view}: {ctx}");
    }
    let clsid_key = prefix.reg_query(&format!(r"HKCR\CLSID\{clsid}"));
    assert!(!clsid_key.status.success(), "{}", output_text(&clsid_key));
    let (r, out) = prefix.host(&["--driver", entry, "info"], Duration::from_secs(60));
    assert_eq!(r.num("driver_found"), 0.0, "{}", output_text(&out));
    assert_eq!(info("PipeWire ASIO Bridge").num("inputs"), 2.0);
}
