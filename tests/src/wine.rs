//! A real Wine prefix with the staged driver registered by regsvr32, and
//! the project's ASIO host run in it.

use crate::{output_text, report, root, run_with_timeout, stage, Daemon};
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
    time::Duration,
};

pub struct Prefix {
    pub path: PathBuf,
    /// The ASIO host `host` runs: ASIO_HOST, or ASIO_HOST_32 for a 32-bit host.
    pub host_exe: &'static str,
    runtime: PathBuf,
}

/// The project's ASIO host, 64-bit and 32-bit, in the stage.
pub const ASIO_HOST: &str = "bin/asio-host.exe";
pub const ASIO_HOST_32: &str = "bin/asio-host32.exe";

impl Prefix {
    /// Creates a fresh 64-bit prefix under `dir` (never /tmp: newer Wine
    /// refuses prefixes there) with the staged driver registered in it by
    /// the shipped `asio-bridge-register`, as a user would.
    pub fn create(dir: &Path, daemon: &Daemon) -> Self {
        let prefix = Self { path: dir.join("prefix"), host_exe: ASIO_HOST, runtime: daemon.runtime.clone() };
        copy_prefix(registered(), &prefix.path);
        prefix
    }

    /// `wine` in this prefix, with the staged Wine files on WINEDLLPATH and
    /// the daemon's runtime dir (where the bridge socket lives).
    pub fn wine(&self) -> Command {
        let mut c = Command::new("wine");
        c.env("WINEPREFIX", &self.path)
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .env("WINEDLLPATH", stage().join("lib/wine"))
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
        c
    }

    /// Runs the staged ASIO host with `args`; returns its report and output.
    pub fn host(&self, args: &[&str], timeout: Duration) -> (HashMap<String, String>, Output) {
        let out = run_with_timeout(self.wine().arg(stage().join(self.host_exe)).args(args), timeout);
        (report(&out.stdout), out)
    }

    /// The 64-bit view, where 64-bit DAWs look, even where wine32 is
    /// installed and plain `reg` is the 32-bit one.
    pub fn reg_query(&self, key: &str) -> Output {
        self.reg_query_view(key, "/reg:64")
    }

    /// `view`: /reg:64, or /reg:32 where 32-bit hosts look.
    pub fn reg_query_view(&self, key: &str, view: &str) -> Output {
        run_with_timeout(self.wine().args(["reg", "query", key, "/s", view]), Duration::from_secs(60))
    }
}

fn copy_prefix(from: &Path, to: &Path) {
    let out = run_with_timeout(Command::new("cp").args(["-a", "--reflink=auto"]).arg(from).arg(to), Duration::from_secs(120));
    assert!(out.status.success(), "copying the Wine prefix {} failed: {}", from.display(), output_text(&out));
}

/// Runs `args` with `prefix` as WINEPREFIX: no display, no staged files on
/// WINEDLLPATH (the register script finds them itself).
fn in_prefix(prefix: &Path, args: &[&Path]) -> Output {
    let mut c = Command::new(args[0]);
    // Wine's own errors in the output, should a step fail.
    c.args(&args[1..])
        .env("WINEPREFIX", prefix)
        .env("WINEDEBUG", "-all,err+all")
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
        .env_remove("WINEDLLPATH")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
    run_with_timeout(&mut c, Duration::from_secs(180))
}

/// The prefix target/e2e/`name`, made by `make` the first time it is asked
/// for: aside, then renamed into place, so it is never seen half made.
/// Others starting with `family` are stale versions of it and are removed.
fn made_once(family: &str, name: &str, make: impl FnOnce(&Path)) -> PathBuf {
    let e2e = root().join("target/e2e");
    let made = e2e.join(name);
    if made.is_dir() {
        return made;
    }
    std::fs::create_dir_all(&e2e).unwrap();
    for entry in std::fs::read_dir(&e2e).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with(family) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let making = e2e.join(format!("{name}.{}", std::process::id()));
    make(&making);
    // Every process of the prefix gone, so copies are of a quiet prefix.
    let out = in_prefix(&making, &[Path::new("wineserver"), Path::new("-w")]);
    assert!(out.status.success(), "wineserver -w failed: {}", output_text(&out));
    std::fs::rename(&making, &made).unwrap_or_else(|e| panic!("{}: {e}", made.display()));
    made
}

/// Makes `to` a copy of a prefix `wineboot -i` made and nothing else
/// touched, as a user's prefix before the bridge.
pub fn copy_initialised(to: &Path) {
    copy_prefix(&initialised(), to);
}

/// Debian's 32-bit Wine (wine32:i386), which the 32-bit driver's tests need.
pub const WINE32_NTDLL: &str = "/usr/lib/i386-linux-gnu/wine/i386-windows/ntdll.dll";

/// A prefix `wineboot -i` made, once per Wine version: initialising is
/// most of a prefix's cost, and what it makes does not depend on the test.
fn initialised() -> PathBuf {
    let out = run_with_timeout(Command::new("wine").arg("--version"), Duration::from_secs(30));
    assert!(out.status.success(), "wine --version failed (is wine installed?): {}", output_text(&out));
    let mut version: String = String::from_utf8_lossy(&out.stdout)
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
        .collect();
    // A prefix made where Wine runs 32-bit programs holds them (syswow64);
    // one made before wine32 was installed does not.
    if Path::new(WINE32_NTDLL).exists() {
        version.push_str("-wow64");
    }
    made_once("wine-initialised-", &format!("wine-initialised-{version}"), |making| {
        let out = in_prefix(making, &[Path::new("wine"), Path::new("wineboot"), Path::new("-i")]);
        assert!(out.status.success(), "wineboot -i failed (is wine installed?): {}", output_text(&out));
    })
}

/// A prefix the shipped `asio-bridge-register` registered the staged driver
/// in, once per Wine version and build of the driver and the script, and
/// copied for each test (registering runs `wineboot -u` and regsvr32, about
/// 10 s). The register script's own test runs it in a prefix of its own.
fn registered() -> &'static Path {
    static REGISTERED: OnceLock<PathBuf> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        let initialised = initialised();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for file in ["lib/wine/x86_64-windows/asiobridge.dll", "lib/wine/i386-windows/asiobridge.dll", "bin/asio-bridge-register"] {
            let path = stage().join(file);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            for b in bytes.into_iter().chain(file.bytes()) {
                hash = (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
        }
        let name = format!("wine-registered-{}-{hash:016x}", initialised.file_name().unwrap().to_string_lossy());
        made_once("wine-registered-", &name, |making| {
            copy_prefix(&initialised, making);
            let out = in_prefix(making, &[&stage().join("bin/asio-bridge-register")]);
            assert!(out.status.success(), "asio-bridge-register failed: {}", output_text(&out));
            let said = String::from_utf8_lossy(&out.stdout);
            assert!(said.contains("PipeWire ASIO Bridge registered"), "{}", output_text(&out));
        })
    })
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let _ = Command::new("wineserver").env("WINEPREFIX", &self.path).arg("-k").status();
    }
}
