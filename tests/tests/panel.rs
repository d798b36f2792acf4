//! The driver's control panel (ASIOControlPanel) on a real X display
//! (Xvfb): a native Win32 dialog showing what the driver sees of the bridge,
//! and the settings it saves for the next start. panel-probe.exe drives the
//! dialog like a user and prints what it shows; screenshots of it land in
//! target/reports/panel.png (attached, audio running) and
//! target/reports/panel-unreachable.png (the configured node missing).

use asio_bridge_tests::{output_text, report, root, run_with_timeout, stage, wine::Prefix, Daemon, Report};
use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread::sleep,
    time::{Duration, Instant},
};

const BRIDGE_OBJECT: &str = "context.objects = [ { factory = spa-node-factory args = { factory.name = api.asio.bridge \
                             library.name = asio-bridge/libspa-asio-bridge node.name = asio-bridge } } ]\n";

/// An Xvfb server on a display number nobody else uses, killed on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Self {
        for n in 97..160 {
            // A lock of a live process is someone else's display; Xvfb
            // takes over the lock of a dead one.
            if let Ok(lock) = std::fs::read_to_string(format!("/tmp/.X{n}-lock")) {
                let pid: i32 = lock.trim().parse().unwrap_or(0);
                // SAFETY: signal 0 only asks whether the process exists.
                if pid <= 0 || unsafe { libc::kill(pid, 0) } == 0 {
                    continue;
                }
            }
            let mut child = Command::new("Xvfb")
                .args([format!(":{n}").as_str(), "-screen", "0", "1024x768x24", "-nolisten", "tcp"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("Xvfb: {e} (install the xvfb package; tools/install-deps does)"));
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break; // lost the number to someone else: try the next
                }
                let display = format!(":{n}");
                let ours = std::fs::read_to_string(format!("/tmp/.X{n}-lock")).is_ok_and(|l| l.trim() == child.id().to_string());
                if ours && Self::answers(&display) {
                    return Self { child, display };
                }
                sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("no free X display between :97 and :159");
    }

    /// Whether an X server answers on `display`: xwd can read its screen.
    fn answers(display: &str) -> bool {
        Command::new("xwd")
            .args(["-root", "-silent", "-display", display])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("xwd: {e} (install the x11-apps package; tools/install-deps does)"))
            .success()
    }

    /// A PNG of the whole screen at `path`.
    fn screenshot(&self, path: &Path) {
        let out = Command::new("sh")
            .args(["-c", "xwd -root -silent -display \"$1\" | xwdtopnm 2>/dev/null | pnmtopng > \"$2\"", "sh"])
            .arg(&self.display)
            .arg(path)
            .output()
            .unwrap();
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        assert!(out.status.success() && size > 1000, "screenshot failed (xwd from x11-apps, xwdtopnm and pnmtopng from netpbm): {}", output_text(&out));
    }
}

impl Drop for Xvfb {
    /// SIGTERM, so Xvfb removes its lock file and socket; SIGKILL if it
    /// does not go within five seconds.
    fn drop(&mut self) {
        // SAFETY: signalling the Xvfb this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether this machine lets a thread of ours run SCHED_FIFO at `priority`:
/// what the driver's callback thread should have been granted.
fn realtime_permitted(priority: i32) -> bool {
    std::thread::spawn(move || {
        let param = libc::sched_param { sched_priority: priority };
        // SAFETY: changes only this short-lived thread's scheduling.
        unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) == 0 }
    })
    .join()
    .unwrap()
}

/// The leading number of a control's text, e.g. 256 of "256 samples (5.3 ms)".
fn leading(r: &HashMap<String, String>, key: &str) -> u32 {
    let text = r.str(key);
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("{key}={text} does not start with a number"))
}

#[test]
fn the_control_panel_shows_the_bridge_and_saves_the_settings_for_the_next_start() {
    let xvfb = Xvfb::start();
    let daemon = Daemon::start("panel", &[("60-asio-bridge.conf", BRIDGE_OBJECT)]);
    let prefix = Prefix::create(&daemon.dir, &daemon);
    let reports: PathBuf = root().join("target/reports");
    std::fs::create_dir_all(&reports).unwrap();
    for name in ["panel.png", "panel-unreachable.png"] {
        let _ = std::fs::remove_file(reports.join(name));
    }
    // No window manager runs on the Xvfb display: Wine draws the windows'
    // title bars itself, so the screenshots show them.
    let out = run_with_timeout(
        prefix.wine().args(["reg", "add", r"HKCU\Software\Wine\X11 Driver", "/v", "Managed", "/t", "REG_SZ", "/d", "N", "/f"]),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", output_text(&out));

    let mut child = prefix
        .wine()
        .env("DISPLAY", &xvfb.display)
        .arg(stage().join("bin/panel-probe.exe"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let errors = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());

    // The probe asks for each screenshot and waits until it is taken.
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = Vec::new();
    let mut shots = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if let Some(name) = line.strip_prefix("screenshot=") {
            let path = reports.join(format!("{name}.png"));
            xvfb.screenshot(&path);
            shots.push(path);
            let _ = stdin.write_all(b"go\n");
        }
        lines.push(line);
    }
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        sleep(Duration::from_millis(50));
    };
    let text = format!("status {status}\nstdout:\n{}\nstderr:\n{}", lines.join("\n"), errors.join().unwrap());
    println!("{text}");
    assert!(status.success(), "{text}");
    assert_eq!(shots, [reports.join("panel.png"), reports.join("panel-unreachable.png")], "{text}");
    let r = report(lines.join("\n").as_bytes());

    // What the driver sees, while a program runs audio at 256 samples.
    assert_eq!((r.str("init"), r.str("panel.result"), r.str("panel.found")), ("1", "0", "1"), "{text}");
    assert_eq!(r.str("panel.node"), "asio-bridge", "{text}");
    assert_eq!(r.str("panel.reachable"), "yes", "{text}");
    assert_eq!(r.str("panel.buffer"), "256 samples (PipeWire graph: 256)", "{text}");
    assert_eq!(r.str("panel.rate"), "48000 Hz", "{text}");
    // Pipelined: the output leaves a quantum after the program computed it.
    let (input, output) = (leading(&r, "panel.input_latency"), leading(&r, "panel.output_latency"));
    assert!(output >= 256, "{text}");
    assert_eq!(r.str("panel.output_latency"), format!("{output} samples ({:.1} ms)", output as f64 * 1000.0 / 48000.0), "{text}");
    assert_eq!(r.str("panel.input_latency"), format!("{input} samples ({:.1} ms)", input as f64 * 1000.0 / 48000.0), "{text}");
    let _late = leading(&r, "panel.late_cycles");
    let realtime = r.str("panel.realtime");
    if realtime_permitted(70) {
        assert_eq!(realtime, "granted: SCHED_FIFO priority 70", "{text}");
    } else {
        assert!(realtime.starts_with("not granted: no rtprio permission"), "{text}");
    }
    assert_eq!(r.str("panel.settings_key"), r"HKCU\Software\ASIO\PipeWire ASIO Bridge", "{text}");
    // The settings, nothing saved yet: the defaults.
    assert_eq!(r.str("before.preferred"), "none", "{text}");
    assert_eq!(r.str("panel.preferred"), "256", "{text}");
    assert_eq!(r.str("panel.node_setting"), "asio-bridge", "{text}");
    assert_eq!((r.str("before.autoconnect"), r.str("panel.autoconnect")), ("none", "1"), "{text}");
    assert_eq!(r.str("panel.sizes"), "32,64,128,256,512,1024,2048", "{text}");

    // OK saved the choices; the panel shows them again; Cancel kept them.
    assert_eq!((r.str("choose"), r.str("ok.closed")), ("1", "1"), "{text}");
    assert_eq!((r.str("saved.preferred"), r.str("saved.node"), r.str("saved.autoconnect")), ("512", "studio-bridge", "0"), "{text}");
    assert_eq!((r.str("reopened.preferred"), r.str("reopened.node_setting"), r.str("reopened.autoconnect")), ("512", "studio-bridge", "0"), "{text}");
    assert_eq!(r.str("cancel.closed"), "1", "{text}");
    assert_eq!((r.str("cancel.preferred"), r.str("cancel.node"), r.str("cancel.autoconnect")), ("512", "studio-bridge", "0"), "{text}");
    // Wine's own reg reads the same from the prefix.
    let out = prefix.reg_query(r"HKCU\Software\ASIO\PipeWire ASIO Bridge");
    let reg = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(reg.contains("PreferredBufferSize") && reg.contains("REG_DWORD") && reg.contains("0x200"), "{}", output_text(&out));
    assert!(reg.contains("Node") && reg.contains("studio-bridge"), "{}", output_text(&out));
    assert!(reg.lines().any(|l| l.contains("Autoconnect") && l.contains("REG_DWORD") && l.trim_end().ends_with("0x0")), "{}", output_text(&out));

    // The next start attaches to the saved node, which does not exist; the
    // panel says so.
    assert_eq!(r.str("next.init"), "0", "{text}");
    assert!(r.str("next.error").contains("studio-bridge"), "{text}");
    assert_eq!((r.str("unreachable.result"), r.str("unreachable.found")), ("0", "1"), "{text}");
    assert_eq!(r.str("unreachable.node"), "studio-bridge", "{text}");
    let why = r.str("unreachable.reachable");
    assert!(why.starts_with("no: ") && why.contains("studio-bridge"), "{text}");
    for key in ["buffer", "rate", "input_latency", "output_latency", "late_cycles"] {
        assert_eq!(r.str(&format!("unreachable.{key}")), "-", "{text}");
    }
    assert_eq!((r.str("unreachable.closed"), r.str("done")), ("1", "1"), "{text}");
}
