//! The harness of the end-to-end tests: a private PipeWire daemon per test
//! (own XDG_RUNTIME_DIR, own config dir, the staged plugin through
//! SPA_PLUGIN_DIR), and helpers to inspect it and run the real clients.
//!
//! Everything it needs must be present: a missing daemon, tool or staged
//! artifact is a test failure with a message saying what to install or run,
//! never a skip.

pub mod floor;
pub mod third_party;
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
const SYSTEM_CONF_DIR: &str = "/usr/share/pipewire";

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

/// The shipped module fragment with `extra` (`key = value ...`) added to
/// its bridge's args.
pub fn shipped_with(extra: &str) -> String {
    const ARGS: &str = "asio.inputs = 2 asio.outputs = 2 }";
    let text = fragment("50-asio-bridge.conf");
    assert!(text.contains(ARGS), "the shipped fragment changed shape:\n{text}");
    text.replacen(ARGS, &format!("asio.inputs = 2 asio.outputs = 2 {extra} }}"), 1)
}

/// `text`, a fragment with `context.modules`, with one more bridge loaded
/// by the project's module with `args` (`key = value ...`).
pub fn with_bridge(text: &str, args: &str) -> String {
    const MODULES: &str = "context.modules = [";
    assert!(text.contains(MODULES), "no context.modules in:\n{text}");
    text.replacen(MODULES, &format!("{MODULES}\n    {{ name = libpipewire-module-asio-bridge args = {{ {args} }} }}"), 1)
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

/// A program started beside the daemon that must outlive the test: the
/// session bus, WirePlumber and the observers.
struct Companion {
    name: &'static str,
    child: Child,
}

pub struct Daemon {
    pub dir: PathBuf,
    pub runtime: PathBuf,
    child: Child,
    companions: Vec<Companion>,
    spawn_env: SpawnEnv,
    finished: bool,
}

/// What every program of a test's session is started with.
#[derive(Clone)]
struct SpawnEnv {
    dir: PathBuf,
    runtime: PathBuf,
    conf: PathBuf,
    plugins: String,
    bus: Option<String>,
}

impl SpawnEnv {
    fn spawn(&self, program: &str, args: &[&str], log: &str, package: &str) -> Child {
        let log = fs::OpenOptions::new().create(true).append(true).open(self.dir.join(log)).unwrap();
        let mut c = Command::new(program);
        c.args(args)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env("XDG_DATA_HOME", self.dir.join("data"))
            .env("XDG_STATE_HOME", self.dir.join("state"))
            .env("PIPEWIRE_CONFIG_DIR", &self.conf)
            .env("SPA_PLUGIN_DIR", &self.plugins)
            .env("PIPEWIRE_MODULE_DIR", module_dirs())
            .env_remove("PIPEWIRE_REMOTE")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        match &self.bus {
            Some(bus) => c.env("DBUS_SESSION_BUS_ADDRESS", bus),
            None => c.env_remove("DBUS_SESSION_BUS_ADDRESS"),
        };
        c.spawn().unwrap_or_else(|e| panic!("cannot run {program}: {e} (install the {package} package)"))
    }
}

/// Whether the `wireplumber` the tests run is 0.5, which reads SPA-JSON
/// fragments (`wireplumber.conf.d/`) and finds scripts under
/// `$XDG_DATA_HOME`, where 0.4 reads Lua config (`policy.lua.d/`) and finds
/// scripts under `$XDG_CONFIG_HOME`.
fn wireplumber_is_0_5() -> bool {
    static IS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IS.get_or_init(|| {
        let out = Command::new("wireplumber").arg("--version").output().unwrap_or_else(|e| panic!("wireplumber --version: {e} (install the wireplumber package)"));
        String::from_utf8_lossy(&out.stdout).contains("libwireplumber 0.5")
    })
}

/// Puts the staged WirePlumber autoconnect script and the loader for the
/// WirePlumber that runs where it finds a user's own, under the session's
/// `$XDG_CONFIG_HOME` (`config/`) and `$XDG_DATA_HOME` (`data/`): looked up
/// before `/etc/wireplumber` and `/usr/share/wireplumber`, where a system
/// install puts them. The stock config stays in use; this adds to it the
/// way an installed copy does, with one loader, as meson installs it.
fn stage_wireplumber_files(session: &std::path::Path) {
    let staged = |path: &str| stage().join("share/wireplumber").join(path);
    let files = if wireplumber_is_0_5() {
        [
            ("scripts/asio-bridge-autoconnect.lua", session.join("data/wireplumber/scripts/asio-bridge-autoconnect.lua")),
            ("wireplumber.conf.d/90-asio-bridge-autoconnect.conf", session.join("config/wireplumber/wireplumber.conf.d/90-asio-bridge-autoconnect.conf")),
        ]
    } else {
        [
            ("scripts/asio-bridge-autoconnect.lua", session.join("config/wireplumber/scripts/asio-bridge-autoconnect.lua")),
            ("policy.lua.d/90-asio-bridge-autoconnect.lua", session.join("config/wireplumber/policy.lua.d/90-asio-bridge-autoconnect.lua")),
        ]
    };
    for (from, to) in files {
        let from = staged(from);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(&from, &to).unwrap_or_else(|e| panic!("{}: {e}: run `cargo xtask stage`", from.display()));
    }
}

/// The staged PipeWire modules first, then the system's.
fn module_dirs() -> String {
    format!("{}:{SYSTEM_MODULE_DIR}", stage().join("lib/pipewire-0.3").display())
}

pub const SYSTEM_MODULE_DIR: &str = "/usr/lib/x86_64-linux-gnu/pipewire-0.3";

impl Daemon {
    /// Starts a desktop session as users have it: a private D-Bus session
    /// bus, `pipewire` with the system's stock config plus `fragments`
    /// (file name, content) in its pipewire.conf.d, WirePlumber, and two
    /// observers (`pw-mon`, `pw-dump --monitor`) that merge every info
    /// event the daemon sends. Dropping it checks that all of them are
    /// still alive and that the daemon exits 0 on SIGTERM.
    pub fn start(name: &str, fragments: &[(&str, &str)]) -> Self {
        Self::launch(name, fragments, true)
    }

    /// The daemon alone, for benchmarks that need the machine to
    /// themselves. Not for end-to-end tests.
    pub fn start_bare(name: &str, fragments: &[(&str, &str)]) -> Self {
        Self::launch(name, fragments, false)
    }

    /// Runs the daemon alone with `fragments` for a config that must make it
    /// exit by itself (e.g. a mandatory module failing); returns its exit
    /// status and log. Never waits longer than `timeout`.
    pub fn run_until_exit(name: &str, fragments: &[(&str, &str)], timeout: Duration) -> (std::process::ExitStatus, String) {
        let env = Self::prepare(name, fragments, false);
        let mut child = env.spawn("pipewire", &[], "pipewire.log", "pipewire");
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the daemon did not exit within {timeout:?}\n{}", fs::read_to_string(env.dir.join("pipewire.log")).unwrap_or_default());
            }
            sleep(Duration::from_millis(20));
        };
        let log = fs::read_to_string(env.dir.join("pipewire.log")).unwrap_or_default();
        let _ = fs::remove_dir_all(&env.dir);
        (status, log)
    }

    /// A fresh session directory with the stock config plus `fragments`,
    /// and the environment its programs run with.
    fn prepare(name: &str, fragments: &[(&str, &str)], session: bool) -> SpawnEnv {
        let dir = work_dir(name);
        let runtime = dir.join("run");
        let conf = dir.join("conf");
        fs::create_dir_all(conf.join("pipewire.conf.d")).unwrap();
        fs::create_dir_all(&runtime).unwrap();
        fs::create_dir_all(dir.join("config")).unwrap();
        stage_wireplumber_files(&dir);
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).unwrap();
        // The daemon's config, and the one every client (pw-mon, pw-cli)
        // reads from the same directory.
        for file in ["pipewire.conf", "client.conf"] {
            let system = format!("{SYSTEM_CONF_DIR}/{file}");
            fs::copy(&system, conf.join(file)).unwrap_or_else(|e| panic!("{system}: {e} (install the pipewire package)"));
        }
        for (file, text) in fragments {
            fs::write(conf.join("pipewire.conf.d").join(file), text).unwrap();
        }
        SpawnEnv {
            dir,
            runtime: runtime.clone(),
            conf,
            plugins: format!("{}:{SYSTEM_SPA_DIR}", stage().join("lib/spa-0.2").display()),
            bus: session.then(|| format!("unix:path={}", runtime.join("bus").display())),
        }
    }

    fn launch(name: &str, fragments: &[(&str, &str)], session: bool) -> Self {
        let env = Self::prepare(name, fragments, session);
        let (dir, runtime) = (env.dir.clone(), env.runtime.clone());
        let mut companions = Vec::new();
        if let Some(bus) = &env.bus {
            let child = env.spawn("dbus-daemon", &["--session", "--nofork", "--nopidfile", &format!("--address={bus}")], "dbus.log", "dbus-daemon");
            companions.push(Companion { name: "dbus-daemon", child });
            let socket = runtime.join("bus");
            let start = Instant::now();
            while !socket.exists() && start.elapsed() < Duration::from_secs(5) {
                sleep(Duration::from_millis(20));
            }
        }
        let child = env.spawn("pipewire", &[], "pipewire.log", "pipewire");
        let mut daemon = Self { dir, runtime, child, companions, spawn_env: env, finished: false };
        daemon.wait_until("the daemon answers", Duration::from_secs(10), || daemon.cmd("pw-cli").args(["info", "0"]).output().is_ok_and(|o| o.status.success()));
        if session {
            daemon.start_wireplumber();
            for (name, args, log) in [("pw-mon", &[][..], "pw-mon.log"), ("pw-dump", &["--monitor"][..], "pw-dump.log")] {
                let child = daemon.spawn_env.spawn(name, args, log, "pipewire-bin");
                daemon.companions.push(Companion { name, child });
            }
        }
        daemon
    }

    /// Starts WirePlumber and waits until it has connected.
    pub fn start_wireplumber(&mut self) {
        let child = self.spawn_env.spawn("wireplumber", &[], "wireplumber.log", "wireplumber");
        self.companions.push(Companion { name: "wireplumber", child });
        self.wait_until("WirePlumber connects", Duration::from_secs(10), || {
            self.dump().iter().any(|o| is_type(o, "Client") && props(o)["application.name"] == "WirePlumber")
        });
    }

    /// Kills WirePlumber with SIGKILL, as a crash would, and forgets it.
    pub fn kill_wireplumber(&mut self) {
        let i = self.companions.iter().position(|c| c.name == "wireplumber").expect("WirePlumber is not running");
        let mut wp = self.companions.remove(i);
        wp.child.kill().unwrap();
        wp.child.wait().unwrap();
    }

    /// Every companion that has exited, with its status.
    pub fn dead_companions(&mut self) -> Vec<String> {
        self.companions
            .iter_mut()
            .filter_map(|c| c.child.try_wait().unwrap().map(|status| format!("{} exited: {status}", c.name)))
            .collect()
    }

    /// Lines of the session's logs that show a companion or the daemon
    /// hurt: glibc's heap checks, crashes, assertion failures.
    pub fn wounds(&self) -> Vec<String> {
        const SIGNS: [&str; 5] = ["double free", "free(): ", "corrupted", "Segmentation fault", "Assertion"];
        ["pipewire.log", "wireplumber.log", "pw-mon.log", "dbus.log"]
            .iter()
            .flat_map(|f| {
                fs::read_to_string(self.dir.join(f)).unwrap_or_default().lines().filter(|l| SIGNS.iter().any(|s| l.contains(s))).map(|l| format!("{f}: {l}")).collect::<Vec<_>>()
            })
            .collect()
    }

    /// Ends the daemon with `signal` (SIGKILL: as a crash; SIGTERM: as a
    /// restart by the session) and starts a new one on the same runtime
    /// dir with the same config. WirePlumber and the observers lose the
    /// daemon with it and are started again (any that linger are stopped
    /// first); the session bus stays. Returns how the old daemon ended and
    /// the moment the new one answered.
    pub fn restart(&mut self, signal: i32) -> (std::process::ExitStatus, Instant) {
        // SAFETY: signalling a child we spawned and have not reaped.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "the daemon did not exit within 10 s of signal {signal}\n{}", self.log());
            sleep(Duration::from_millis(20));
        };
        for mut c in std::mem::take(&mut self.companions) {
            if c.name == "dbus-daemon" {
                self.companions.push(c);
                continue;
            }
            let start = Instant::now();
            while c.child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(3) {
                sleep(Duration::from_millis(20));
            }
            let _ = c.child.kill();
            let _ = c.child.wait();
        }
        self.child = self.spawn_env.spawn("pipewire", &[], "pipewire.log", "pipewire");
        self.wait_until("the new daemon answers", Duration::from_secs(10), || self.cmd("pw-cli").args(["info", "0"]).output().is_ok_and(|o| o.status.success()));
        let back = Instant::now();
        if self.spawn_env.bus.is_some() {
            self.start_wireplumber();
            for (name, args, log) in [("pw-mon", &[][..], "pw-mon.log"), ("pw-dump", &["--monitor"][..], "pw-dump.log")] {
                let child = self.spawn_env.spawn(name, args, log, "pipewire-bin");
                self.companions.push(Companion { name, child });
            }
        }
        (status, back)
    }

    /// Sends SIGTERM and waits up to 10 s for the daemon to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: signalling a child we spawned and have not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                panic!("the daemon did not exit within 10 s of SIGTERM\n{}", self.log());
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Ends the session and checks it: every companion still alive, no
    /// wound in any log, and the daemon exiting 0 on SIGTERM. Dropping a
    /// daemon does this when the test has not already failed.
    pub fn finish(&mut self) {
        self.finished = true;
        let dead = self.dead_companions();
        let wounds = self.wounds();
        let alive = self.child.try_wait().unwrap().is_none();
        let status = alive.then(|| self.terminate());
        let exited_0 = status.is_some_and(|s| s.code() == Some(0));
        let log = self.log();
        self.kill_all();
        assert!(alive, "the daemon died during the test\n{log}");
        assert!(dead.is_empty(), "companions died during the test: {dead:?}\n{log}");
        assert!(wounds.is_empty(), "the session's logs show harm: {wounds:#?}");
        assert!(exited_0, "the daemon did not exit 0 on SIGTERM: {status:?}\n{log}");
    }

    fn kill_all(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for c in self.companions.iter_mut().rev() {
            let _ = c.child.kill();
            let _ = c.child.wait();
        }
        self.companions.clear();
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

    /// How the daemon ended, if it has.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none() && self.cmd("pw-cli").args(["info", "0"]).output().is_ok_and(|o| o.status.success())
    }

    /// What `pw-dump` prints. pw-dump 0.3.65 sometimes prints an object
    /// twice when the graph changes under it (invalid JSON): take another.
    pub fn dump(&self) -> Vec<Value> {
        let mut last = String::new();
        for _ in 0..5 {
            let out = self.cmd("pw-dump").output().expect("pw-dump (install pipewire-bin)");
            assert!(out.status.success(), "pw-dump failed: {}", output_text(&out));
            match serde_json::from_slice::<Value>(&out.stdout) {
                Ok(v) => return v.as_array().cloned().unwrap_or_default(),
                Err(e) => last = format!("{e}: {}", String::from_utf8_lossy(&out.stdout)),
            }
        }
        panic!("pw-dump printed no valid JSON five times: {last}")
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

    /// Property `key` of node `name` as the text it was set to (pw-dump
    /// prints numbers and booleans bare); "null" when it has none.
    pub fn node_prop(&self, name: &str, key: &str) -> String {
        let node = self.node(name);
        let v = &props(&node)[key];
        v.as_str().map_or_else(|| v.to_string(), str::to_owned)
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
        if std::thread::panicking() {
            self.kill_all();
            return;
        }
        if !self.finished {
            self.finish();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

pub fn is_type(o: &Value, kind: &str) -> bool {
    o["type"].as_str().is_some_and(|t| t.ends_with(&format!(":{kind}")))
}

pub fn props(o: &Value) -> &Value {
    &o["info"]["props"]
}

/// The version of libpipewire the `pipewire` on PATH runs with, e.g.
/// (0, 3, 65): what the private daemons of the tests are.
pub fn pipewire_version() -> (u32, u32, u32) {
    let out = Command::new("pipewire").arg("--version").output().expect("pipewire --version (install the pipewire package)");
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.lines().find_map(|l| l.strip_prefix("Linked with libpipewire ")).unwrap_or_else(|| panic!("`pipewire --version` said: {text}"));
    let mut parts = version.trim().split('.').map(|p| p.parse::<u32>().unwrap_or_else(|_| panic!("version {version}")));
    let mut next = || parts.next().unwrap_or_else(|| panic!("version {version}"));
    (next(), next(), next())
}

/// Whether the daemon rounds a forced quantum down to a power of two with
/// its stock settings: PipeWire before 0.3.82 does, so the bridge offers
/// DAWs only powers of two there (ASIO buffer granularity -1), any size
/// (granularity 1) on newer daemons.
pub fn daemon_rounds_forced_quanta() -> bool {
    pipewire_version() < (0, 3, 82)
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

