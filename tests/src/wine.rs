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
    runtime: PathBuf,
}

impl Prefix {
    /// Creates a fresh 64-bit prefix under `dir` (never /tmp: newer Wine
    /// refuses prefixes there) and registers the staged driver in it with
    /// the shipped `asio-bridge-register`, as a user would.
    pub fn create(dir: &Path, daemon: &Daemon) -> Self {
        let prefix = Self { path: dir.join("prefix"), runtime: daemon.runtime.clone() };
        let out = run_with_timeout(
            Command::new("cp").args(["-a", "--reflink=auto"]).arg(template()).arg(&prefix.path),
            Duration::from_secs(120),
        );
        assert!(out.status.success(), "copying the Wine prefix template failed: {}", output_text(&out));
        let mut register = Command::new(stage().join("bin/asio-bridge-register"));
        // Wine's own errors in the output, should registering fail.
        register.env("WINEPREFIX", &prefix.path).env("WINEDEBUG", "-all,err+all").env_remove("WINEDLLPATH").env_remove("DISPLAY");
        let out = run_with_timeout(&mut register, Duration::from_secs(180));
        assert!(out.status.success(), "asio-bridge-register failed: {}", output_text(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("PipeWire ASIO Bridge registered"), "{}", output_text(&out));
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
        let out = run_with_timeout(self.wine().arg(stage().join("bin/asio-host.exe")).args(args), timeout);
        (report(&out.stdout), out)
    }

    pub fn reg_query(&self, key: &str) -> Output {
        // The 64-bit view, where 64-bit DAWs look, even where wine32 is
        // installed and plain `reg` is the 32-bit one.
        run_with_timeout(self.wine().args(["reg", "query", key, "/s", "/reg:64"]), Duration::from_secs(60))
    }
}

/// A prefix `wineboot -i` has made and nothing else has touched, made once
/// per Wine version and copied for each test: initialising is most of a
/// prefix's cost (about 7 s of every test), and what it makes does not
/// depend on the test. No WINEDLLPATH, so it holds no copy of the driver.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let out = run_with_timeout(Command::new("wine").arg("--version"), Duration::from_secs(30));
        assert!(out.status.success(), "wine --version failed (is wine installed?): {}", output_text(&out));
        let version: String = String::from_utf8_lossy(&out.stdout)
            .trim()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
            .collect();
        let e2e = root().join("target/e2e");
        let template = e2e.join(format!("wine-template-{version}"));
        if template.join("system.reg").exists() {
            return template;
        }
        // Made aside and renamed into place, so a template is never half made.
        let making = e2e.join(format!("wine-template-{version}.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&making);
        std::fs::create_dir_all(&e2e).unwrap();
        let wine = |args: &[&str]| {
            let mut c = Command::new(args[0]);
            c.args(&args[1..])
                .env("WINEPREFIX", &making)
                .env("WINEDEBUG", "-all")
                .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
                .env_remove("WINEDLLPATH")
                .env_remove("DISPLAY")
                .env_remove("WAYLAND_DISPLAY");
            run_with_timeout(&mut c, Duration::from_secs(180))
        };
        let out = wine(&["wine", "wineboot", "-i"]);
        assert!(out.status.success(), "wineboot -i failed (is wine installed?): {}", output_text(&out));
        // Every process of the prefix gone, so the copy is of a quiet prefix.
        let out = wine(&["wineserver", "-w"]);
        assert!(out.status.success(), "wineserver -w failed: {}", output_text(&out));
        match std::fs::rename(&making, &template) {
            Ok(()) => {}
            // another test process made it first
            Err(_) if template.join("system.reg").exists() => {
                let _ = std::fs::remove_dir_all(&making);
            }
            Err(e) => panic!("{}: {e}", template.display()),
        }
        template
    })
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let _ = Command::new("wineserver").env("WINEPREFIX", &self.path).arg("-k").status();
    }
}
