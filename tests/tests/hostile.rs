//! A hostile or broken local client of the daemon's own user: idle and
//! churning connections, request floods, fd exhaustion, control characters
//! in its name, NaN in its output. Each gets a bounded, clear answer; the
//! daemon stays responsive and a real host still attaches on its first try.

use asio_bridge_abi::{c_str, decode_node, NodeMessage, ASIO_BRIDGE_REFUSE_BUSY};
use asio_bridge_tests::{output_text, report, run_with_timeout, shipped_with, Daemon, Report};
use std::{
    io::Read,
    os::{fd::FromRawFd, unix::net::UnixStream},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::sleep,
    time::{Duration, Instant},
};

/// A daemon with the shipped fragment, the bridge given `settings`.
fn bridge(name: &str, settings: &str) -> Daemon {
    let daemon = Daemon::start(name, &[("50-asio-bridge.conf", &shipped_with(settings))]);
    daemon.node("asio-bridge");
    daemon
}

fn socket_path(daemon: &Daemon) -> PathBuf {
    daemon.runtime.join(asio_bridge_abi::socket_dir()).join("asio-bridge")
}

/// A raw connection to the node's socket that says nothing.
fn connect(path: &Path) -> std::io::Result<UnixStream> {
    // SAFETY: plain socket calls; the fd is owned by the stream or closed.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = UnixStream::from_raw_fd(fd);
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as u16;
        for (d, s) in addr.sun_path.iter_mut().zip(path.as_os_str().as_encoded_bytes()) {
            *d = *s as libc::c_char;
        }
        if libc::connect(fd, (&addr as *const libc::sockaddr_un).cast(), std::mem::size_of_val(&addr) as u32) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}

/// What the node said on a connection, waiting up to `timeout`.
fn answer(s: &mut UnixStream, timeout: Duration) -> Option<NodeMessage> {
    s.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).ok()?;
    decode_node(&buf[..n]).ok()
}

/// Runs `pw-cli info 0` every 50 ms until stopped; returns the slowest.
fn watch_responsiveness(daemon: &Daemon, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(Duration, u32)> {
    let mut cmd = daemon.cmd("pw-cli");
    cmd.args(["info", "0"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    std::thread::spawn(move || {
        let (mut worst, mut runs) = (Duration::ZERO, 0);
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            assert!(cmd.status().unwrap().success(), "pw-cli info 0 failed");
            worst = worst.max(t.elapsed());
            runs += 1;
            sleep(Duration::from_millis(50));
        }
        (worst, runs)
    })
}

/// The slowest `pw-cli info 0` over two seconds with nothing hostile
/// running: what process start-up and this machine's other load cost, so
/// that a figure under attack minus this one is the attack's own cost.
fn pw_cli_floor(daemon: &Daemon) -> Duration {
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_responsiveness(daemon, stop.clone());
    sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap().0
}

#[test]
fn idle_and_churning_connections_never_lock_out_a_host() {
    let daemon = bridge("idle", "");
    let path = socket_path(&daemon);
    let floor = pw_cli_floor(&daemon);
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_responsiveness(&daemon, stop.clone());

    // 64 connections held open without a word.
    let mut idle: Vec<UnixStream> = (0..64).map(|_| connect(&path).unwrap()).collect();
    // 2000 connect/close cycles as fast as one thread can.
    let churn_path = path.clone();
    let churn = std::thread::spawn(move || {
        let t = Instant::now();
        for _ in 0..2000 {
            drop(connect(&churn_path).unwrap());
        }
        t.elapsed()
    });
    // A real client, while all of that goes on: attached on its first try.
    let out = run_with_timeout(daemon.client().args(["--seconds", "1"]), Duration::from_secs(20));
    let r = report(&out.stdout);
    assert_eq!(r.num("attached"), 1.0, "{}\n{}", output_text(&out), daemon.log());
    assert!(r.num("cycles") > 0.0, "{}", output_text(&out));
    let churn_time = churn.join().unwrap();

    // Every idle connection got an answer it can show: busy for those pushed
    // out by newer ones, or a timeout refusal after about a second.
    let t = Instant::now();
    let (mut busy, mut timed_out) = (0, 0);
    for s in &mut idle {
        match answer(s, Duration::from_secs(3)) {
            Some(NodeMessage::Refuse(r)) if r.reason == ASIO_BRIDGE_REFUSE_BUSY => {
                assert!(c_str(&r.message).to_string().starts_with("busy: 16 connections waiting"), "{}", c_str(&r.message));
                busy += 1
            }
            Some(NodeMessage::Refuse(r)) => {
                assert!(c_str(&r.message).to_string().contains("no hello within 1000 ms"), "{}", c_str(&r.message));
                timed_out += 1
            }
            other => panic!("an idle connection got {other:?} instead of a refusal"),
        }
    }
    assert!(t.elapsed() < Duration::from_secs(3), "idle connections were held {:?}", t.elapsed());
    stop.store(true, Ordering::Relaxed);
    let (worst, runs) = watcher.join().unwrap();
    let table = format!(
        "64 idle connections + 2000 connect/close cycles ({churn_time:.2?}) + one real client:\n\
         idle answered busy: {busy}, answered after the hello timeout: {timed_out}\n\
         pw-cli info 0 during it: {runs} runs, slowest {worst:.2?} (slowest without the attack: {floor:.2?})\n"
    );
    asio_bridge_tests::publish("hostile-connections", &table);
    assert_eq!(busy + timed_out, 64, "{table}");
    assert!(worst < floor + Duration::from_millis(100), "{table}");
}

#[test]
fn a_request_flood_changes_the_graph_a_few_times_a_second() {
    let daemon = bridge("flood", "asio.rates = [ 48000 ]");
    let floor = pw_cli_floor(&daemon);
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_responsiveness(&daemon, stop.clone());
    let seconds = 5.0;
    let out = run_with_timeout(daemon.client().args(["--flood", "64,128", "--seconds", &seconds.to_string()]), Duration::from_secs(30));
    let r = report(&out.stdout);
    assert_eq!(r.num("attached"), 1.0, "{}", output_text(&out));
    // Requests outside the limits (32..2048, on every PipeWire version):
    // warned about, but not once each.
    let invalid = run_with_timeout(daemon.client().args(["--flood", "16,4096", "--seconds", &seconds.to_string()]), Duration::from_secs(30));
    let ri = report(&invalid.stdout);
    stop.store(true, Ordering::Relaxed);
    let (worst, runs) = watcher.join().unwrap();
    let warnings = daemon.log().lines().filter(|l| l.contains("outside what 'asio-bridge' allows")).count();
    let table = format!(
        "valid flood: {} requests in {seconds} s, graph quantum changes seen by the client: {}\n\
         invalid flood: {} requests in {seconds} s, warnings logged: {warnings}\n\
         pw-cli info 0 during both: {runs} runs, slowest {worst:.2?} (slowest without the attack: {floor:.2?})\n",
        r.str("requests"),
        r.str("quantum_changes"),
        ri.str("requests"),
    );
    asio_bridge_tests::publish("hostile-flood", &table);
    // The node reads a flooding client's socket five times a second, so its
    // sends block: it gets far fewer requests through than it tries.
    assert!(r.num("requests") > 1_000.0, "{table}");
    // One change per 250 ms at most, plus the first.
    assert!(r.num("quantum_changes") <= seconds * 4.0 + 1.0, "{table}");
    assert!(r.num("quantum_changes") >= 2.0, "the flood never reached the graph: {table}");
    assert!(ri.num("requests") > 1_000.0 && (1..=2).contains(&warnings), "{table}\n{}", daemon.log());
    assert!(worst < floor + Duration::from_millis(100), "{table}");
}

/// The daemon's CPU time (user + system) in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

fn set_fd_limit(pid: u32, soft: &str) {
    let out = std::process::Command::new("prlimit").args(["--pid", &pid.to_string(), &format!("--nofile={soft}:")]).output().unwrap();
    assert!(out.status.success(), "prlimit: {}", output_text(&out));
}

#[test]
fn running_out_of_file_descriptors_backs_off() {
    let daemon = bridge("fds", "");
    let path = socket_path(&daemon);
    let pid = daemon.pid();
    let limit = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let soft = limit.lines().find(|l| l.starts_with("Max open files")).unwrap().split_whitespace().nth(3).unwrap().to_owned();
    set_fd_limit(pid, &(open_fds(pid) + 2).to_string());
    // More connections than fds: the rest wait in the listen backlog and
    // keep the listener readable.
    let held: Vec<UnixStream> = (0..40).map(|_| connect(&path).unwrap()).collect();
    sleep(Duration::from_millis(300));
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    sleep(Duration::from_secs(3));
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (cpu_ticks(pid) - c0) as f64 / hz / t0.elapsed().as_secs_f64();
    set_fd_limit(pid, &soft);
    let lines = daemon.log().lines().filter(|l| l.contains("out of file descriptors")).count();
    drop(held);
    let table = format!("fd limit = open fds + 2, 40 connections waiting: daemon CPU {:.1} % over 3 s, {lines} log lines\n", cpu * 100.0);
    asio_bridge_tests::publish("hostile-fds", &table);
    assert!(lines >= 1, "the exhaustion was never reported (the test did not exhaust fds)\n{}", daemon.log());
    assert!(lines <= 2, "{table}\n{}", daemon.log());
    assert!(cpu < 0.10, "{table}");
    // Once fds are back, a real client attaches.
    let mut attached = false;
    daemon.wait_until("a client attaches after the fds came back", Duration::from_secs(10), || {
        let out = run_with_timeout(daemon.client().args(["--seconds", "0.2"]), Duration::from_secs(10));
        attached = report(&out.stdout).get("attached").is_some_and(|v| v == "1");
        attached
    });
}

#[test]
fn client_text_reaches_logs_and_refusals_escaped() {
    let daemon = bridge("text", "");
    let evil = format!("evil\x1b[2J\nasio-bridge: FAKE LINE{}", "x".repeat(300));
    let mut holder = daemon.client().args(["--name", &evil, "--seconds", "4"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    sleep(Duration::from_secs(1));
    let out = run_with_timeout(daemon.client().args(["--seconds", "0.2"]), Duration::from_secs(10));
    let r = report(&out.stdout);
    assert_eq!(r.num("busy"), 1.0, "{}", output_text(&out));
    let error = r.str("error");
    assert!(error.contains("in use by evil\\u{1b}[2J\\u{a}asio-bridge: FAKE LINE"), "{error}");
    assert!(error.chars().count() < 300, "{error}");
    holder.wait().unwrap();
    let log = daemon.log();
    assert!(!log.contains('\x1b') && !log.contains("\nasio-bridge: FAKE"), "{log}");
    // Its raw name never reached the log, and what did is capped.
    assert!(!log.contains(&"x".repeat(100)), "{log}");
}

#[test]
fn nan_and_infinity_never_reach_the_graph() {
    let daemon = bridge("nan", "");
    daemon.link("asio-bridge:out_1", "asio-bridge:in_1");
    let out = run_with_timeout(daemon.client().args(["--output", "poison", "--seconds", "2"]), Duration::from_secs(20));
    let r = report(&out.stdout);
    assert_eq!(r.num("attached"), 1.0, "{}", output_text(&out));
    assert!(r.num("cycles") > 50.0, "{}", output_text(&out));
    assert_eq!(r.num("input_nonfinite"), 0.0, "non-finite samples came back through the graph: {}", output_text(&out));
    assert!(r.num("input_quarter") > 1000.0, "the finite samples did not come through: {}", output_text(&out));
    daemon.wait_until("the node reports what it replaced", Duration::from_secs(5), || {
        daemon.log().contains("NaN or infinite samples; 'asio-bridge' replaced them with silence")
    });
}
