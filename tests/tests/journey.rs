//! The README's "A first session", run as written: every command in its
//! shell blocks, in order, in a sandbox (a private PipeWire with WirePlumber
//! and the shipped fragment, a home of its own with a Wine prefix at
//! ~/.wine, the staged files on PATH). The few commands that need root or
//! the user's login session are run by their counterparts, listed in
//! ELSEWHERE; a command the README gains that is neither run here nor
//! listed there fails the test.

use asio_bridge_tests::{fragment, output_text, root, run_with_timeout, stage, wine, Daemon};
use std::{
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

/// Commands the sandbox cannot run as written, and what runs in their place.
const ELSEWHERE: &[(&str, &str)] = &[
    ("dpkg-buildpackage -b -us -uc", "tests/packaging.rs debian_packaging_builds_a_package_that_installs_stripped_and_removes_cleanly runs it"),
    ("sudo apt install ../pipewire-asio-bridge_0.1.0_amd64.deb", "the packaging test installs the same package into a clean root; here the staged files are on PATH"),
    ("systemctl --user restart pipewire wireplumber", "a private pipewire and WirePlumber, started with the shipped fragment and stopped at the end"),
    ("WINEPREFIX=~/.wine wine ~/.wine/drive_c/Program\\ Files/REAPER\\ \\(x64\\)/reaper.exe", "the project's ASIO host plays a tone through the driver in that prefix, as the DAW"),
    ("sudo apt remove pipewire-asio-bridge", "the packaging test removes the package from its clean root and checks nothing is left"),
];

/// The shell commands of the README section `heading`, in order.
fn commands(heading: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme.find(&format!("\n{heading}\n")).unwrap_or_else(|| panic!("README has no section {heading}"));
    let section = &readme[start + 1..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |n| n + 1)];
    let mut commands = Vec::new();
    let mut in_block = false;
    for line in section.lines() {
        match line.trim() {
            "```sh" => in_block = true,
            "```" => in_block = false,
            l if in_block && !l.is_empty() && !l.starts_with('#') => commands.push(l.to_owned()),
            _ => {}
        }
    }
    commands
}

struct Sandbox {
    daemon: Daemon,
    home: std::path::PathBuf,
}

impl Sandbox {
    /// `line` run by bash as written, in the sandbox.
    fn run(&self, line: &str) -> Output {
        let path = format!("{}:{}", stage().join("bin").display(), std::env::var("PATH").unwrap_or_default());
        let out = run_with_timeout(
            self.daemon
                .cmd("bash")
                .args(["-c", line])
                .env("HOME", &self.home)
                .env("PATH", path)
                .env("WINEDEBUG", "-all")
                .env("WINEDLLPATH", stage().join("lib/wine"))
                .env_remove("DISPLAY")
                .env_remove("WAYLAND_DISPLAY"),
            Duration::from_secs(120),
        );
        println!("$ {line}\n{}", output_text(&out));
        out
    }
}

#[test]
fn the_readme_first_session_runs_as_written() {
    let commands = commands("## A first session");
    assert!(commands.len() >= 10, "{commands:#?}");
    for (elsewhere, _) in ELSEWHERE {
        assert!(commands.iter().any(|c| c == elsewhere), "ELSEWHERE lists '{elsewhere}', which the README no longer has");
    }

    let daemon = Daemon::start("journey", &[("50-asio-bridge.conf", &fragment("50-asio-bridge.conf"))]);
    // The desktop's devices: one sink and one source, the defaults.
    // The microphone ranks as ALSA's do, or WirePlumber 0.5 would take the
    // speakers' monitor as the default source.
    for (name, class, extra) in [("speakers", "Audio/Sink", ""), ("microphone", "Audio/Source/Virtual", "priority.session = 2000")] {
        let args = format!("{{ factory.name = support.null-audio-sink node.name = {name} media.class = {class} object.linger = true audio.position = [ FL FR ] {extra} }}");
        let out = run_with_timeout(daemon.cmd("pw-cli").args(["create-node", "adapter", &args]), Duration::from_secs(10));
        assert!(out.status.success(), "{}", output_text(&out));
    }
    let home = daemon.dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    // The user's prefix, with their DAW in it: made before the bridge.
    wine::copy_initialised(&home.join(".wine"));
    let sandbox = Sandbox { daemon, home };
    let mut daw = None;

    for line in &commands {
        if let Some((_, instead)) = ELSEWHERE.iter().find(|(c, _)| c == line) {
            println!("$ {line}\n(not run here: {instead})");
            if line.contains("reaper.exe") {
                let host = Command::new("wine")
                    .env("WINEPREFIX", sandbox.home.join(".wine"))
                    .env("WINEDEBUG", "-all")
                    .env("WINEDLLPATH", stage().join("lib/wine"))
                    .env("XDG_RUNTIME_DIR", &sandbox.daemon.runtime)
                    .env_remove("DISPLAY")
                    .arg(stage().join("bin/asio-host.exe"))
                    .args(["run", "--seconds", "10", "--tone", "440"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let start = Instant::now();
                while sandbox.daemon.node_prop("asio-bridge", "asio.state") != "running" {
                    assert!(start.elapsed() < Duration::from_secs(30), "the DAW never ran through the bridge");
                    std::thread::sleep(Duration::from_millis(100));
                }
                daw = Some(host);
            }
            continue;
        }
        let out = sandbox.run(line);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let all = output_text(&out);
        match line.as_str() {
            l if l.starts_with("pw-cli info asio-bridge") => {
                assert!(out.status.success(), "{all}");
                assert!(text.contains("node.name = \"asio-bridge\"") && text.contains("asio.state = \"idle\""), "{all}");
            }
            "WINEPREFIX=~/.wine asio-bridge-register" => {
                assert!(out.status.success(), "{all}");
                assert!(text.contains("PipeWire ASIO Bridge registered in"), "{all}");
            }
            "pw-link -l" => {
                assert!(out.status.success(), "{all}");
                for (from, to) in [("asio-bridge:out_1", "speakers:playback_FL"), ("asio-bridge:out_2", "speakers:playback_FR"), ("microphone:capture_FL", "asio-bridge:in_1")] {
                    let linked = text.lines().collect::<Vec<_>>().windows(2).any(|w| w[0].trim() == from && w[1].trim_start().trim_start_matches("|->").trim() == to);
                    assert!(linked, "{from} -> {to} is not listed:\n{all}");
                }
            }
            l if l.starts_with("pw-dump asio-bridge") => {
                assert!(out.status.success(), "{all}");
                for want in ["\"asio.state\": \"running\"", "\"asio.buffer-size\": 256", "\"application.name\": \"asio-host.exe\""] {
                    assert!(text.contains(want), "no {want}:\n{all}");
                }
            }
            "asio-bridge-client --seconds 1" => {
                // While the DAW holds the bridge: busy, in words.
                assert_eq!(out.status.code(), Some(2), "{all}");
                assert!(text.contains("error=the ASIO bridge 'asio-bridge' is in use by asio-host.exe (pid "), "{all}");
            }
            "ulimit -r" => {
                assert!(out.status.success(), "{all}");
                assert!(text.trim().parse::<u32>().is_ok() || text.trim() == "unlimited", "{all}");
                // Before the uninstall: the DAW is done, and played.
                let host = daw.take().expect("the DAW was started before");
                let out = host.wait_with_output().unwrap();
                assert!(out.status.success(), "the DAW: {}", output_text(&out));
            }
            "WINEPREFIX=~/.wine asio-bridge-register --unregister" => {
                assert!(out.status.success(), "{all}");
                assert!(text.contains("PipeWire ASIO Bridge removed from"), "{all}");
            }
            other => panic!("the README's first session has '{other}', which this test neither runs nor lists in ELSEWHERE"),
        }
    }
    assert!(daw.is_none(), "the README never got to the troubleshooting step");

    // The troubleshooting command once PipeWire is gone: said in words.
    let Sandbox { mut daemon, home } = sandbox;
    daemon.finish();
    let out = run_with_timeout(
        Command::new(stage().join("bin/asio-bridge-client")).args(["--seconds", "1"]).env("XDG_RUNTIME_DIR", &daemon.runtime).env("HOME", &home),
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("error=no PipeWire ASIO bridge node named 'asio-bridge' is running"), "{}", output_text(&out));
}
