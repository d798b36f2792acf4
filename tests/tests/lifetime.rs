//! The driver's lifetime against a real daemon and Wine: a host that calls
//! it from many threads and from inside its own callback, and a daemon that
//! goes away and comes back under a running host.
//!
//! The bridge is loaded as a context object: the module form makes PipeWire
//! 0.3.65 itself crash on SIGTERM, which would hide what these tests check.

use asio_bridge_tests::{output_text, report, run_with_timeout, shipped_with, stage, wine::Prefix, Daemon, Report};
use std::{
    io::{BufRead, BufReader},
    process::Stdio,
    sync::mpsc,
    thread::sleep,
    time::{Duration, Instant},
};

/// The bridge as users install it: the shipped fragment.
fn bridge(name: &str) -> Daemon {
    let daemon = Daemon::start(name, &[("50-asio-bridge.conf", &shipped_with(""))]);
    daemon.node("asio-bridge");
    daemon
}

/// What Wine prints when a program faults, or its heap checks (enabled with
/// warn+heap: freed blocks are filled and checked) find a block written
/// after it was freed.
fn faults(stderr: &str) -> Vec<&str> {
    const SIGNS: [&str; 5] = ["err:heap", "err:seh", "Unhandled exception", "page fault", "err:virtual"];
    stderr.lines().filter(|l| SIGNS.iter().any(|s| l.contains(s))).collect()
}

#[test]
fn start_stop_dispose_and_release_from_many_threads_and_from_the_callback_are_safe() {
    let mut daemon = bridge("lifetime");
    // Many callbacks per round, while threads fight over the instance.
    daemon.force_quantum(128);
    let prefix = Prefix::create(&daemon.dir, &daemon);
    let mut cmd = prefix.wine();
    cmd.env("WINEDEBUG", "err+all,warn+heap").arg(stage().join("bin/asio-host.exe")).args(["hammer", "--seconds", "6", "--threads", "4"]);
    let socket = daemon.runtime.join("asio-bridge/asio-bridge");
    let before = socket.exists();
    assert!(before, "the daemon lost its bridge before the host ran: daemon {:?}\n{}", daemon.exited(), daemon.log());
    assert!(before, "the daemon lost its bridge before the host ran: daemon {:?}\n{}", daemon.exited(), daemon.log());
    let out = run_with_timeout(&mut cmd, Duration::from_secs(120));
    let (r, ctx) = (report(&out.stdout), output_text(&out));
    let ctx = format!("{ctx}\nsocket before {before}, after {}; daemon alive {}", socket.exists(), daemon.alive());
    println!("{ctx}");
    assert!(faults(&String::from_utf8_lossy(&out.stderr)).is_empty(), "{ctx}");
    assert!(out.status.success(), "{ctx}");
    assert_eq!(r.num("hammer_unexpected"), 0.0, "{ctx}");
    assert_eq!(r.num("hammer_callbacks_after_release"), 0.0, "{ctx}");
    assert_eq!(r.num("hammer_instances_left"), 0.0, "every instance freed, the last ones by their callback threads: {ctx}");
    // Every way of ending a round happened, and the callback really did
    // stop and dispose from inside.
    for key in ["hammer_release_while_running", "hammer_release_in_callback", "hammer_release_after_stop_in_callback", "hammer_stops_in_callback", "hammer_disposes_in_callback"] {
        assert!(r.num(key) >= 1.0, "{key}: {ctx}");
    }
    assert!(r.num("hammer_ops") > 1000.0 && r.num("hammer_callbacks") > 100.0, "{ctx}");
    let info = run_with_timeout(daemon.cmd("pw-cli").args(["info", "0"]), Duration::from_secs(20));
    assert!(info.status.success() && daemon.alive(), "pw-cli info 0: {}\n{}", output_text(&info), daemon.log());
    assert!(daemon.dead_companions().is_empty(), "{:?}", daemon.dead_companions());
    daemon.finish();
}

/// A host's output lines as they arrive, each with the moment it did.
fn lines(child: &mut std::process::Child) -> mpsc::Receiver<(Instant, String)> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send((Instant::now(), line));
        }
    });
    rx
}

/// Waits for a line starting with `prefix`; every line seen goes to `seen`.
fn wait_line(rx: &mpsc::Receiver<(Instant, String)>, prefix: &str, timeout: Duration, seen: &mut Vec<String>) -> Option<Instant> {
    let deadline = Instant::now() + timeout;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok((at, line)) => {
                let hit = line.starts_with(prefix);
                seen.push(line);
                if hit {
                    return Some(at);
                }
            }
            Err(_) => return None,
        }
    }
    None
}

/// The daemon dies under a running host (SIGKILL, as a crash) and then is
/// restarted (SIGTERM, as the session does), each time with the same
/// config. The driver asks the host once per loss to reset; the host does
/// what DAWs do (releases the driver, creates a new instance and inits it
/// until the bridge is back, creates buffers, starts) and gets callbacks
/// again within 2 s of the daemon answering.
#[test]
fn a_host_that_reopens_on_reset_gets_audio_back_within_2_s_of_the_daemon_returning() {
    let mut daemon = bridge("restart");
    let prefix = Prefix::create(&daemon.dir, &daemon);
    let mut host = prefix
        .wine()
        .arg(stage().join("bin/asio-host.exe"))
        .args(["run", "--seconds", "16"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines(&mut host);
    let mut seen = Vec::new();
    assert!(wait_line(&rx, "init=1", Duration::from_secs(60), &mut seen).is_some(), "{seen:?}");
    sleep(Duration::from_secs(2));
    let mut resumed = Vec::new();
    for (loss, signal) in [(1, libc::SIGKILL), (2, libc::SIGTERM)] {
        if signal == libc::SIGKILL {
            // A crash, and a second until the session brings the daemon
            // back: the host retries init meanwhile.
            // SAFETY: signalling our own child, reaped by restart().
            unsafe { libc::kill(daemon.pid() as i32, libc::SIGKILL) };
            sleep(Duration::from_secs(1));
        }
        let (status, back) = daemon.restart(signal);
        let at = wait_line(&rx, &format!("reset_{loss}_resumed_ms="), Duration::from_secs(10), &mut seen);
        let at = at.unwrap_or_else(|| panic!("loss {loss} (old daemon {status}): no callbacks again\n{seen:#?}\n{}", daemon.log()));
        resumed.push(at.saturating_duration_since(back));
        sleep(Duration::from_secs(2));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while host.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the host did not finish\n{seen:#?}");
        sleep(Duration::from_millis(100));
    }
    while let Ok((_, line)) = rx.recv_timeout(Duration::from_secs(5)) {
        seen.push(line);
    }
    let status = host.wait().unwrap();
    let stderr = std::io::read_to_string(host.stderr.take().unwrap()).unwrap_or_default();
    let r = report(seen.join("\n").as_bytes());
    let ctx = format!("status {status}\nstdout:\n{}\nstderr:\n{stderr}\nresumed after the daemon answered: {resumed:?}", seen.join("\n"));
    println!("{ctx}");
    assert!(status.success(), "{ctx}");
    assert!(faults(&stderr).is_empty(), "{ctx}");
    // Once per loss, not in a loop; each answered with a new instance.
    assert_eq!((r.num("reset_requests"), r.num("resets_handled"), r.num("reopens")), (2.0, 2.0, 2.0), "{ctx}");
    assert!(r.num("reopen_init_failures") >= 1.0, "the host never found the bridge gone: {ctx}");
    for (i, d) in resumed.iter().enumerate() {
        assert!(*d < Duration::from_secs(2), "loss {}: callbacks came back {d:?} after the daemon answered\n{ctx}", i + 1);
    }
    // The last stretch ran: at least a second of callbacks at the graph's quantum.
    assert!(r.num("callbacks") >= r.num("sample_rate") / r.num("buffer_size"), "{ctx}");
    assert_eq!(r.num("position_errors"), 0.0, "{ctx}");
    daemon.finish();
}

/// The daemon dies and does not come back within the run: the host is
/// asked to reset, cannot init a new instance (getErrorMessage says what to
/// do), gets no callbacks after the loss, and the run fails.
#[test]
fn a_run_that_loses_the_bridge_for_good_fails_and_says_why() {
    let mut daemon = bridge("gone");
    let prefix = Prefix::create(&daemon.dir, &daemon);
    let mut host = prefix
        .wine()
        .arg(stage().join("bin/asio-host.exe"))
        .args(["run", "--seconds", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines(&mut host);
    let mut seen = Vec::new();
    assert!(wait_line(&rx, "init=1", Duration::from_secs(60), &mut seen).is_some(), "{seen:?}");
    sleep(Duration::from_secs(1));
    // SAFETY: signalling our own child, reaped by restart() below.
    unsafe { libc::kill(daemon.pid() as i32, libc::SIGKILL) };
    let status = host.wait().unwrap();
    while let Ok((_, line)) = rx.recv_timeout(Duration::from_secs(5)) {
        seen.push(line);
    }
    let r = report(seen.join("\n").as_bytes());
    let ctx = format!("status {status}\n{}", seen.join("\n"));
    println!("{ctx}");
    assert_eq!(status.code(), Some(1), "{ctx}");
    assert_eq!((r.num("reset_requests"), r.str("reopen")), (1.0, "init failed"), "{ctx}");
    assert!(r.num("reopen_init_failures") >= 10.0, "{ctx}");
    let error = r.str("error");
    assert!(error.contains("asio-bridge") && error.contains("start PipeWire"), "{ctx}");
    daemon.restart(libc::SIGKILL);
    daemon.finish();
}

/// Hosts that do not re-open: one that ignores the reset (as PortAudio
/// does) is asked once and never again, and one that treats it as fatal
/// (as RtAudio does) closes its stream and releases the driver cleanly.
#[test]
fn hosts_that_ignore_or_close_on_reset_are_asked_once() {
    let mut daemon = bridge("noreopen");
    let prefix = Prefix::create(&daemon.dir, &daemon);
    for how in ["ignore", "fatal"] {
        let mut host = prefix
            .wine()
            .arg(stage().join("bin/asio-host.exe"))
            .args(["run", "--seconds", "6", "--on-reset", how])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let rx = lines(&mut host);
        let mut seen = Vec::new();
        assert!(wait_line(&rx, "init=1", Duration::from_secs(60), &mut seen).is_some(), "{how}: {seen:?}");
        sleep(Duration::from_secs(1));
        daemon.restart(libc::SIGKILL);
        let status = host.wait().unwrap();
        while let Ok((_, line)) = rx.recv_timeout(Duration::from_secs(5)) {
            seen.push(line);
        }
        let r = report(seen.join("\n").as_bytes());
        let ctx = format!("{how}: status {status}\n{}", seen.join("\n"));
        println!("{ctx}");
        // The driver asked once, though the bridge came back long before
        // the run ended.
        assert_eq!((r.num("reset_requests"), r.num("resets_handled")), (1.0, 0.0), "{ctx}");
        if how == "fatal" {
            assert_eq!(r.num("closed_on_reset"), 1.0, "{ctx}");
            assert!(status.success(), "{ctx}");
        }
        assert!(daemon.alive());
    }
    daemon.finish();
}
