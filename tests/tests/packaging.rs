//! What packagers run: meson installs the staged tree into the system's
//! directories (here under a DESTDIR) and uninstalls it again, and the
//! Debian package built from debian/ installs into a clean root. Every binary
//! installed is stripped.

use asio_bridge_tests::{output_text, root, run_with_timeout, work_dir};
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

const WINE: &str = "/usr/lib/x86_64-linux-gnu/wine";
const WINE32: &str = "/usr/lib/i386-linux-gnu/wine";
const MODULE: &str = "libpipewire-module-asio-bridge.so";

fn run(cmd: &mut Command, timeout: Duration) -> Output {
    let out = run_with_timeout(cmd, timeout);
    assert!(out.status.success(), "{cmd:?}: {}", output_text(&out));
    out
}

fn pkg_config(variable: &str, package: &str) -> String {
    let out = run(Command::new("pkg-config").arg(format!("--variable={variable}")).arg(package), Duration::from_secs(10));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Where a system install with prefix /usr and Debian's Wine puts each file.
fn expected_files() -> Vec<String> {
    let mut files = vec![
        format!("{}/asio-bridge/libspa-asio-bridge.so", pkg_config("plugindir", "libspa-0.2")),
        "/usr/share/pipewire/pipewire.conf.d/50-asio-bridge.conf".into(),
        format!("{WINE}/x86_64-windows/asiobridge.dll"),
        format!("{WINE}/x86_64-unix/asiobridge.so"),
        "/usr/bin/asio-bridge-register".into(),
        "/usr/bin/asio-bridge-client".into(),
        "/usr/share/asio-bridge/asio-host.exe".into(),
        "/usr/share/asio-bridge/panel-probe.exe".into(),
    ];
    files.push(format!("{}/{MODULE}", pkg_config("moduledir", "libpipewire-0.3")));
    files
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else { return found };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.is_symlink() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// Every ELF and PE file installed under `root` is stripped: no symbol table
/// and no debug info.
fn assert_stripped(root: &Path) {
    let mut binaries = 0;
    for path in files_under(root) {
        let mut magic = [0u8; 4];
        let _ = fs::File::open(&path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic));
        let out = run(Command::new("file").arg("-b").arg(&path), Duration::from_secs(10));
        let what = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if &magic == b"\x7fELF" {
            assert!(what.contains(", stripped"), "{} is not stripped: {what}", path.display());
            let out = run(Command::new("readelf").args(["-S", "-W"]).arg(&path), Duration::from_secs(10));
            let sections = String::from_utf8_lossy(&out.stdout);
            // (.debug_gdb_scripts is loaded data rustc adds, not debug info)
            let kept = sections.split_whitespace().any(|name| name == ".debug_info" || name == ".symtab");
            assert!(!kept, "{} keeps debug info or symbols:\n{sections}", path.display());
            binaries += 1;
        } else if magic.starts_with(b"MZ") {
            assert!(what.contains("stripped"), "{} is not stripped: {what}", path.display());
            binaries += 1;
        }
    }
    // the plugin, the driver's two halves, the client and the ASIO host
    assert!(binaries >= 5, "only {binaries} binaries under {}", root.display());
}

#[test]
fn meson_packaging_installs_stripped_files_where_the_system_looks_and_uninstalls_them() {
    let dir = work_dir("meson");
    let (build, dest) = (dir.join("build"), dir.join("dest"));
    let meson = |args: &[&str]| {
        run(Command::new("meson").args(args), Duration::from_secs(600));
    };
    let (b, d) = (build.to_str().unwrap(), dest.to_str().unwrap());
    // With the 32-bit driver, into Debian's 32-bit Wine.
    let wine32 = format!("-Dwine32_dlldir={WINE32}");
    meson(&["setup", b, root().join("meson").to_str().unwrap(), "--prefix=/usr", &format!("-Dwine_dlldir={WINE}"), "-Di386=true", &wine32]);
    meson(&["compile", "-C", b]);
    meson(&["install", "-C", b, "--destdir", d]);
    let mut expected = expected_files();
    expected.extend([
        format!("{WINE32}/i386-windows/asiobridge.dll"),
        format!("{WINE32}/i386-unix/asiobridge.so"),
        "/usr/share/asio-bridge/asio-host32.exe".into(),
    ]);
    for file in expected {
        assert!(dest.join(file.trim_start_matches('/')).is_file(), "{file} was not installed");
    }
    assert_stripped(&dest);

    // meson installed every file itself, so its uninstall removes them all.
    run(Command::new("ninja").args(["-C", b, "uninstall"]).env("DESTDIR", d), Duration::from_secs(60));
    let left = files_under(&dest);
    assert!(left.is_empty(), "uninstall left {left:?}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn debian_packaging_builds_a_package_that_installs_stripped_and_removes_cleanly() {
    // dpkg-buildpackage writes next to the source tree, so build a copy of
    // the tree (what git tracks, and new files it does not ignore).
    let dir = work_dir("debian");
    let src = dir.join("src");
    let out = run(
        Command::new("git").current_dir(root()).args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"]),
        Duration::from_secs(30),
    );
    for name in out.stdout.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).unwrap();
        let from = root().join(name);
        if !from.exists() {
            continue; // deleted in the work tree, not yet in git
        }
        let to = src.join(name);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(&from, &to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
    // A cargo target dir kept between runs, so only the workspace's own
    // crates build again. Not the repository's own: cargo would take the
    // copy's build of a crate for the repository's (same relative paths).
    run(
        Command::new("dpkg-buildpackage").current_dir(&src).args(["-b", "-us", "-uc"]).env("CARGO_TARGET_DIR", root().join("target/debian-cargo")),
        Duration::from_secs(900),
    );

    let debs: Vec<PathBuf> = files_under(&dir).into_iter().filter(|p| p.parent() == Some(&*dir) && p.extension().is_some_and(|e| e == "deb")).collect();
    let named = |prefix: &str| {
        debs.iter()
            .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix}*.deb in {debs:?}"))
            .clone()
    };
    let deb = named("pipewire-asio-bridge_");
    // dh_strip kept the debug info, in a package of its own.
    named("pipewire-asio-bridge-dbgsym_");

    let field = |name: &str| {
        let out = run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg(name), Duration::from_secs(10));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let depends = field("Depends");
    for dep in ["libc6", "pipewire (>= 0.3.65)", "wine64 | wine"] {
        assert!(depends.contains(dep), "Depends lacks {dep}: {depends}");
    }
    assert_eq!(field("Architecture"), "amd64");

    let out = run(Command::new("dpkg-deb").arg("-c").arg(&deb), Duration::from_secs(10));
    let listing = String::from_utf8(out.stdout).unwrap();
    let mut expected = expected_files();
    expected.push("/usr/share/doc/pipewire-asio-bridge/copyright".into());
    for file in &expected {
        assert!(listing.lines().any(|l| l.ends_with(&format!(" .{file}"))), "{file} is not in the package:\n{listing}");
    }

    // Install into an empty root with its own dpkg database; nothing else is
    // installed there, so the dependencies cannot be met.
    let target = dir.join("root");
    fs::create_dir_all(target.join("var/lib/dpkg/info")).unwrap();
    fs::create_dir_all(target.join("var/lib/dpkg/updates")).unwrap();
    fs::write(target.join("var/lib/dpkg/status"), "").unwrap();
    let dpkg = || {
        let mut cmd = Command::new("dpkg");
        cmd.arg(format!("--root={}", target.display()));
        cmd
    };
    run(dpkg().args(["--force-depends", "-i"]).arg(&deb), Duration::from_secs(60));
    for file in &expected {
        assert!(target.join(file.trim_start_matches('/')).is_file(), "{file} was not installed");
    }
    assert_stripped(&target.join("usr"));

    run(dpkg().args(["--purge", "pipewire-asio-bridge"]), Duration::from_secs(60));
    let left = files_under(&target.join("usr"));
    assert!(left.is_empty(), "removing the package left {left:?}");
    fs::remove_dir_all(&dir).unwrap();
}
