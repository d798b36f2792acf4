//! `cargo xtask compat`: the end-to-end suite, built on this Debian 12 host,
//! run against Debian 13's stack (PipeWire 1.4, WirePlumber 0.5, Wine 10)
//! inside a debootstrap chroot made from the mirror the host's apt uses.
//!
//! The chroot is cached under target/compat/trixie (a one-off download of a
//! few hundred MB); it is rebuilt when the package list below changes. Each
//! run enters it through a private mount namespace (`unshare -m`), binding
//! /proc, /sys, /dev and the repository at its own absolute path, so the
//! test binaries find target/stage exactly where they were built to look
//! and every mount disappears with the namespace, however the run ends.

use crate::{fail, run, Stage};
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

const SUITE: &str = "trixie";
const DEBIAN: &str = "Debian 13";

/// What the chroot holds besides minbase: the daemon, the session manager
/// and its bus (wireplumber needs a `dbus-session-bus`, a virtual package
/// debootstrap cannot resolve: dbus-x11 is the provider that pulls no
/// systemd), the observers (pipewire-bin: pw-mon, pw-dump, pw-cli, ...),
/// Wine, and the tools the tests run (prlimit and taskset from util-linux,
/// file; Xvfb, xwd and pnmtopng for the control panel's test).
const PACKAGES: &[&str] =
    &["pipewire", "pipewire-bin", "wireplumber", "dbus", "dbus-x11", "wine", "wine64", "util-linux", "file", "xvfb", "x11-apps", "netpbm"];

/// The end-to-end test binaries that are not run in the chroot: packaging
/// builds the Debian and Arch packages with the host's tools,
/// third_party cross-builds hosts with the host's mingw-w64 g++, and
/// rt_no_panic reads the staged binaries with the host's binutils (what it
/// checks does not depend on the stack they run on).
const HOST_ONLY: &[&str] = &["packaging", "third_party", "rt_no_panic"];

/// The 32-bit driver's tests need Wine for 32-bit programs: i386 packages,
/// added to the chroot after debootstrap (which installs one architecture).
const I386_PACKAGES: &[&str] = &["wine32:i386"];

pub fn compat(stage: &Stage, cargo: &str, args: &[String]) {
    let start = Instant::now();
    for tool in ["unshare", "chroot"] {
        if Command::new(tool).arg("--version").stdout(Stdio::null()).status().is_err() {
            fail(&format!("{tool} is missing (util-linux, coreutils)"));
        }
    }
    crate::stage(stage, cargo);
    let binaries = test_binaries(stage, cargo);
    let built = start.elapsed();

    let chroot_start = Instant::now();
    let chroot = stage.root.join("target/compat").join(SUITE);
    ensure_chroot(&chroot);
    ensure_i386(&chroot);
    let chroot_time = chroot_start.elapsed();

    let binds = binds(stage);
    let versions = versions(&chroot, &binds);
    let release = fs::read_to_string(chroot.join("etc/debian_version")).map_or_else(|_| DEBIAN.to_owned(), |v| format!("Debian {}", v.trim()));
    println!("compat: running {} test binaries in {} ({versions})", binaries.len(), chroot.display());
    let tests_start = Instant::now();
    let (mut passed, mut failed, mut broken) = (0, 0, Vec::new());
    for (name, exe) in &binaries {
        println!("\ncompat: {name} ({})", exe.display());
        let mut cmd = in_chroot(&chroot, &binds);
        cmd.arg(exe).arg("--test-threads=1").args(args);
        let counts = crate::count_tests(&mut cmd);
        passed += counts.passed;
        failed += counts.failed;
        if !counts.ok {
            broken.push(name.as_str());
        }
    }
    let summary = format!(
        "compat: {release} ({versions}): {passed} passed, {failed} failed in {:.0} s \
         (build {:.0} s, chroot {:.0} s, tests {:.0} s)",
        start.elapsed().as_secs_f64(),
        built.as_secs_f64(),
        chroot_time.as_secs_f64(),
        tests_start.elapsed().as_secs_f64()
    );
    println!("\n{summary}");
    if failed > 0 || !broken.is_empty() {
        fail(&format!("compat failed in: {}", broken.join(", ")));
    }
}

/// Builds the end-to-end test binaries (debug, as `cargo test` does) and
/// returns (name, executable) of each to run in the chroot, sorted by name.
fn test_binaries(stage: &Stage, cargo: &str) -> Vec<(String, PathBuf)> {
    let out = Command::new(cargo)
        .current_dir(&stage.root)
        .args(["test", "-p", "asio-bridge-tests", "--no-run", "--message-format=json"])
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| fail(&format!("{cargo} test --no-run: {e}")));
    if !out.status.success() {
        fail(&format!("cargo test --no-run failed: {}", out.status));
    }
    let mut binaries = Vec::new();
    for line in out.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(msg) = serde_json::from_slice::<serde_json::Value>(line) else { continue };
        if msg["reason"] != "compiler-artifact" || msg["target"]["kind"] != serde_json::json!(["test"]) {
            continue;
        }
        let (Some(name), Some(exe)) = (msg["target"]["name"].as_str(), msg["executable"].as_str()) else { continue };
        if !HOST_ONLY.contains(&name) {
            binaries.push((name.to_owned(), PathBuf::from(exe)));
        }
    }
    binaries.sort();
    if binaries.is_empty() {
        fail("cargo test --no-run listed no end-to-end test binaries");
    }
    binaries
}

/// A command that runs its arguments inside `chroot`, in a private mount
/// namespace with /proc, /sys, /dev and each of `binds` (at its own path)
/// mounted, with a clean environment.
fn in_chroot(chroot: &Path, binds: &[PathBuf]) -> Command {
    const SCRIPT: &str = r#"set -e
r=$1; shift
mount -t proc proc "$r/proc"
mount --rbind /sys "$r/sys"
mount --rbind /dev "$r/dev"
while [ "$1" != -- ]; do
    mkdir -p "$r$1"
    mount --bind "$1" "$r$1"
    shift
done
shift
exec chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@""#;
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c", SCRIPT, "sh"]).arg(chroot).args(binds).arg("--");
    cmd
}

/// What the chroot must see at the host's paths: the repository (the
/// harness finds target/stage from where the tests were built) and cargo's
/// target directory when it lies elsewhere (the test binaries).
fn binds(stage: &Stage) -> Vec<PathBuf> {
    let root = stage.root.canonicalize().unwrap_or_else(|e| fail(&format!("{}: {e}", stage.root.display())));
    let mut dirs = vec![root.clone()];
    if let Some(target) = stage.release.parent().and_then(|t| t.canonicalize().ok()) {
        if !target.starts_with(&root) {
            dirs.push(target);
        }
    }
    dirs
}

/// "PipeWire x, WirePlumber y, Wine z", as the chroot's programs say.
fn versions(chroot: &Path, binds: &[PathBuf]) -> String {
    let say = |program: &str, prefix: &str| {
        let out = in_chroot(chroot, binds).args([program, "--version"]).output().unwrap_or_else(|e| fail(&format!("{program} --version: {e}")));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| fail(&format!("`{program} --version` in the chroot said: {text}{}", String::from_utf8_lossy(&out.stderr))))
    };
    format!(
        "PipeWire {}, WirePlumber {}, Wine {}",
        say("pipewire", "Linked with libpipewire "),
        say("wireplumber", "Linked with libwireplumber "),
        // "wine-10.0 (Debian 10.0~repack-6)": the upstream version.
        say("wine", "wine-").split(' ').next().unwrap_or_default()
    )
}

/// Makes the chroot unless a complete one with the same packages is cached.
/// debootstrap runs in its own mount namespace too, so an interrupted run
/// leaves no mount behind and the half-made tree can simply be removed.
fn ensure_chroot(chroot: &Path) {
    let stamp = chroot.with_extension("packages");
    let wanted = format!("{SUITE} {}\n", PACKAGES.join(","));
    if chroot.is_dir() && fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        println!("compat: reusing {} (delete it to make it afresh)", chroot.display());
        return;
    }
    if Command::new("debootstrap").arg("--version").stdout(Stdio::null()).status().is_err() {
        fail("debootstrap is missing: install the debootstrap package (tools/install-deps does)");
    }
    let mirror = host_mirror();
    let partial = chroot.with_extension("partial");
    for dir in [chroot, partial.as_path()] {
        remove_tree(dir);
    }
    // A new chroot has no i386 packages (ensure_i386 adds them).
    let _ = fs::remove_file(chroot.with_extension("i386"));
    fs::create_dir_all(chroot.parent().unwrap()).unwrap();
    println!("compat: making a {SUITE} chroot from {mirror} into {} (a one-off download)", chroot.display());
    run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "debootstrap", "--variant=minbase"])
        .arg(format!("--include={}", PACKAGES.join(",")))
        .arg(SUITE)
        .arg(&partial)
        .arg(&mirror));
    fs::rename(&partial, chroot).unwrap_or_else(|e| fail(&format!("{} -> {}: {e}", partial.display(), chroot.display())));
    fs::write(&stamp, wanted).unwrap();
}

/// Adds the i386 architecture and I386_PACKAGES to the chroot, once (a
/// stamp beside it says which were added).
fn ensure_i386(chroot: &Path) {
    let stamp = chroot.with_extension("i386");
    let wanted = format!("{}\n", I386_PACKAGES.join(","));
    if fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return;
    }
    println!("compat: adding {} to {}", I386_PACKAGES.join(", "), chroot.display());
    let script = format!(
        "dpkg --add-architecture i386 && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends {}",
        I386_PACKAGES.join(" ")
    );
    run(in_chroot(chroot, &[]).args(["sh", "-c", &script]));
    fs::write(&stamp, wanted).unwrap();
}

/// Removes a chroot tree, refusing when anything is still mounted inside it
/// (removing would reach into the host's /proc, /sys, /dev or the repo).
fn remove_tree(dir: &Path) {
    if !dir.exists() {
        return;
    }
    let canonical = dir.canonicalize().unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())));
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let inside = canonical.to_string_lossy().into_owned() + "/";
    if let Some(line) = mounts.lines().find(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&inside))) {
        fail(&format!("{} still has a mount inside ({line}): unmount it first", dir.display()));
    }
    fs::remove_dir_all(dir).unwrap_or_else(|e| fail(&format!("remove {}: {e}", dir.display())));
}

/// The Debian mirror the host's apt fetches its own release from (deb822
/// `.sources` files or one-line `sources.list` entries).
fn host_mirror() -> String {
    let codename = fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME=").map(|v| v.trim_matches('"').to_owned()))
        .unwrap_or_else(|| "bookworm".into());
    let mut files: Vec<PathBuf> = fs::read_dir("/etc/apt/sources.list.d").map_or_else(|_| Vec::new(), |d| d.filter_map(|e| e.ok().map(|e| e.path())).collect());
    files.sort();
    files.insert(0, PathBuf::from("/etc/apt/sources.list"));
    for file in files {
        let text = fs::read_to_string(&file).unwrap_or_default();
        // One-line format: deb [options] URI SUITE COMPONENTS...
        for line in text.lines().map(str::trim).filter(|l| l.starts_with("deb ")) {
            let words: Vec<&str> = line.split_whitespace().filter(|w| !w.starts_with('[') && !w.ends_with(']')).collect();
            if let [_, uri, suite, ..] = words[..] {
                if suite == codename {
                    return uri.to_owned();
                }
            }
        }
        // deb822: stanzas separated by blank lines.
        for stanza in text.split("\n\n") {
            let field = |name: &str| stanza.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim));
            let is_deb = field("Types").is_some_and(|t| t.split_whitespace().any(|t| t == "deb"));
            let has_suite = field("Suites").is_some_and(|s| s.split_whitespace().any(|s| s == codename));
            if let (true, true, Some(uris)) = (is_deb, has_suite, field("URIs")) {
                return uris.split_whitespace().next().unwrap().to_owned();
            }
        }
    }
    fail(&format!("no apt source for {codename} found in /etc/apt: cannot tell which Debian mirror to use"))
}
