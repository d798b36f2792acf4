//! The harness of the end-to-end tests: a private PipeWire daemon per test
//! (own XDG_RUNTIME_DIR, own config dir, the staged plugin through
//! SPA_PLUGIN_DIR), and helpers to inspect it and run the real clients.
//!
//! Everything it needs must be present: a missing daemon, tool or staged
//! artifact is a test failure with a message saying what to install or run,
//! never a skip.

pub mod wine;

use serde_json::Value;
use std::{
    collections::HashMap,
    fs,
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread::sleep,
    time::{Duration, Instant},
};

pub const SYSTEM_SPA_DIR: &str = "/usr/lib/x86_64-linux-gnu/spa-0.2";
const SYSTEM_CONF: &str = "/usr/share/pipewire/pipewire.conf";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The install tree `cargo xtask stage` made. Tests run against it, so they
/// test what users install.
pub fn stage() -> PathBuf {
    let stage = root().join("target/stage");
    let plugin = stage.join("lib/spa-0.2/asio-bridge/libspa-asio-bridge.so");
    assert!(plugin.exists(), "{} is missing: run `cargo xtask stage` first (or `cargo xtask test`)", plugin.display());
    stage
}

/// A shipped config fragment, as installed.
pub fn fragment(name: &str) -> String {
    let path = stage().join("share/pipewire/pipewire.conf.d").join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fresh work directory under target/e2e (not /tmp: Wine refuses prefixes there).
pub fn work_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = root().join("target/e2e").join(format!("{name}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Leaves a table for `cargo xtask test` to print after the run.
pub fn publish(name: &str, text: &str) {
    let dir = root().join("target/reports");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(format!("{name}.txt")), text).unwrap();
}

/// Parses `key=value` lines.
pub fn report(stdout: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())))
        .collect()
}

pub trait Report {
    fn num(&self, key: &str) -> f64;
    fn str(&self, key: &str) -> &str;
}

impl Report for HashMap<String, String> {
    fn num(&self, key: &str) -> f64 {
        let v = self.str(key);
        v.parse().unwrap_or_else(|_| panic!("{key}={v} is not a number in {self:?}"))
    }
    fn str(&self, key: &str) -> &str {
        self.get(key).unwrap_or_else(|| panic!("no {key} in report {self:?}"))
    }
}

pub fn output_text(out: &Output) -> String {
    format!("status {}\nstdout:\n{}\nstderr:\n{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

pub struct Daemon {
    pub dir: PathBuf,
    pub runtime: PathBuf,
    child: Child,
    extra: Vec<Child>,
}

impl Daemon {
    /// Starts `pipewire` with the system's stock config plus `fragments`
    /// (file name, content) in its pipewire.conf.d.
    pub fn start(name: &str, fragments: &[(&str, &str)]) -> Self {
        Self::launch(name, fragments, false)
    }

    /// `start`, plus a private D-Bus session bus and WirePlumber, as on a
    /// desktop.
    pub fn start_with_session(name: &str, fragments: &[(&str, &str)]) -> Self {
        Self::launch(name, fragments, true)
    }

    fn launch(name: &str, fragments: &[(&str, &str)], session: bool) -> Self {
        let dir = work_dir(name);
        let runtime = dir.join("run");
        let conf = dir.join("conf");
        fs::create_dir_all(conf.join("pipewire.conf.d")).unwrap();
        fs::create_dir_all(&runtime).unwrap();
        fs::create_dir_all(dir.join("config")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).unwrap();
        fs::copy(SYSTEM_CONF, conf.join("pipewire.conf"))
            .unwrap_or_else(|e| panic!("{SYSTEM_CONF}: {e} (install the pipewire package)"));
        for (file, text) in fragments {
            fs::write(conf.join("pipewire.conf.d").join(file), text).unwrap();
        }
        let log = fs::File::create(dir.join("pipewire.log")).unwrap();
        let plugins = format!("{}:{SYSTEM_SPA_DIR}", stage().join("lib/spa-0.2").display());
        let bus = format!("unix:path={}", runtime.join("bus").display());
        let spawn = |program: &str, args: &[&str], package: &str| {
            let mut c = Command::new(program);
            c.args(args)
                .env("XDG_RUNTIME_DIR", &runtime)
                .env("XDG_CONFIG_HOME", dir.join("config"))
                .env("XDG_STATE_HOME", dir.join("state"))
                .env("PIPEWIRE_CONFIG_DIR", &conf)
                .env("SPA_PLUGIN_DIR", &plugins)
                .env_remove("PIPEWIRE_REMOTE")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log.try_clone().unwrap());
            if session {
                c.env("DBUS_SESSION_BUS_ADDRESS", &bus);
            } else {
                c.env_remove("DBUS_SESSION_BUS_ADDRESS");
            }
            c.spawn().unwrap_or_else(|e| panic!("cannot run {program}: {e} (install the {package} package)"))
        };
        let mut extra = Vec::new();
        if session {
            extra.push(spawn("dbus-daemon", &["--session", "--nofork", "--nopidfile", &format!("--address={bus}")], "dbus-daemon"));
            let socket = runtime.join("bus");
            let start = Instant::now();
            while !socket.exists() && start.elapsed() < Duration::from_secs(5) {
                sleep(Duration::from_millis(20));
            }
        }
        let child = spawn("pipewire", &[], "pipewire");
        let mut daemon = Self { dir: dir.clone(), runtime: runtime.clone(), child, extra };
        daemon.wait_until("the daemon answers", Duration::from_secs(10), || daemon.cmd("pw-cli").args(["info", "0"]).output().is_ok_and(|o| o.status.success()));
        if session {
            let wp = spawn("wireplumber", &[], "wireplumber");
            daemon.extra.push(wp);
            daemon.wait_until("WirePlumber connects", Duration::from_secs(10), || {
                daemon.dump().iter().any(|o| is_type(o, "Client") && props(o)["application.name"] == "WirePlumber")
            });
        }
        daemon
    }

    /// A command that talks to this daemon.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("XDG_RUNTIME_DIR", &self.runtime).env_remove("PIPEWIRE_REMOTE").stdin(Stdio::null());
        c
    }

    /// The staged reference client, talking to this daemon's nodes.
    pub fn client(&self) -> Command {
        self.cmd(stage().join("bin/asio-bridge-client"))
    }

    pub fn wait_until(&self, what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
        let start = Instant::now();
        while !ok() {
            assert!(start.elapsed() < timeout, "timed out waiting until {what}\ndaemon log:\n{}", self.log());
            sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("pipewire.log")).unwrap_or_default()
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none() && self.cmd("pw-cli").args(["info", "0"]).output().is_ok_and(|o| o.status.success())
    }

    pub fn dump(&self) -> Vec<Value> {
        let out = self.cmd("pw-dump").output().expect("pw-dump (install pipewire-bin)");
        assert!(out.status.success(), "pw-dump failed: {}", output_text(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().cloned().unwrap_or_default()
    }

    /// The node called `name`, once the daemon lists it.
    pub fn node(&self, name: &str) -> Value {
        let mut found = None;
        self.wait_until(&format!("node {name} exists"), Duration::from_secs(10), || {
            found = self.dump().into_iter().find(|o| is_type(o, "Node") && props(o)["node.name"] == name);
            found.is_some()
        });
        found.unwrap()
    }

    /// The ports of node `name`, sorted by port.name.
    pub fn ports(&self, name: &str) -> Vec<Value> {
        let id = self.node(name)["id"].clone();
        let mut ports: Vec<Value> = self.dump().into_iter().filter(|o| is_type(o, "Port") && props(o)["node.id"] == id).collect();
        ports.sort_by_key(|p| props(p)["port.name"].as_str().unwrap_or("").to_owned());
        ports
    }

    pub fn link(&self, from: &str, to: &str) {
        let out = self.cmd("pw-link").args([from, to]).output().expect("pw-link");
        assert!(out.status.success(), "pw-link {from} {to}: {}\n{}", output_text(&out), self.log());
    }

    /// Forces the graph quantum and waits until the settings metadata has it.
    pub fn force_quantum(&self, quantum: u32) {
        let out = self.cmd("pw-metadata").args(["-n", "settings", "0", "clock.force-quantum", &quantum.to_string()]).output().unwrap();
        assert!(out.status.success(), "{}", output_text(&out));
    }

}

impl Drop for Daemon {
    fn drop(&mut self) {
        for c in std::iter::once(&mut self.child).chain(self.extra.iter_mut().rev()) {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn is_type(o: &Value, kind: &str) -> bool {
    o["type"].as_str().is_some_and(|t| t.ends_with(&format!(":{kind}")))
}

pub fn props(o: &Value) -> &Value {
    &o["info"]["props"]
}

/// Runs a command to completion with a deadline; a hang is a failure.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(timeout) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // SAFETY: signalling a child we spawned.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
    }
}

