//! What packagers run: meson installs the staged tree into the system's
//! directories (here under a DESTDIR) and uninstalls it again, and the
//! Debian package built from debian/ and the Arch package built from
//! packaging/arch/ install into a clean root. Every binary installed is
//! stripped.

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

/// Where a system install with prefix /usr and Wine's dlls in `wine` puts
/// each file.
fn expected_files(wine: &str) -> Vec<String> {
    let mut files = vec![
        format!("{}/asio-bridge/libspa-asio-bridge.so", pkg_config("plugindir", "libspa-0.2")),
        "/usr/share/pipewire/pipewire.conf.d/50-asio-bridge.conf".into(),
        format!("{wine}/x86_64-windows/asiobridge.dll"),
        format!("{wine}/x86_64-unix/asiobridge.so"),
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
    let mut expected = expected_files(WINE);
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
    let mut expected = expected_files(WINE);
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

/// Fails, saying what to install, unless `tool` is on PATH.
fn need(tool: &str, package: &str) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|dir| dir.join(tool).is_file());
    assert!(found, "{tool} is missing: install {package} (tools/install-deps does)");
}

/// Arch's `arch-meson`, which Debian lacks: `meson setup` with the defaults
/// Arch builds its packages with, then the caller's arguments.
const ARCH_MESON: &str = "#!/bin/sh
exec meson setup --prefix /usr --libexecdir lib --sbindir bin --buildtype plain \\
    --auto-features enabled --wrap-mode nodownload -D b_pie=true \"$@\"
";

/// makepkg's settings as Arch's makepkg.conf has them, not Debian's (which
/// has no compiler flags, turns the debug packages off and writes
/// .pkg.tar.gz): Arch's hardening flags reach the C file the plugin
/// compiles, makepkg strips and keeps the debug info in a -debug package,
/// lto is on unless the PKGBUILD turns it off (it does).
const MAKEPKG_CONF: &str = r#"CARCH="x86_64"
CHOST="x86_64-pc-linux-gnu"
CFLAGS="-march=x86-64 -mtune=generic -O2 -pipe -fno-plt -fexceptions -Wp,-D_FORTIFY_SOURCE=2 -Wformat -Werror=format-security -fstack-clash-protection -fcf-protection"
CXXFLAGS="$CFLAGS -Wp,-D_GLIBCXX_ASSERTIONS"
LDFLAGS="-Wl,-O1,--sort-common,--as-needed,-z,relro,-z,now"
LTOFLAGS="-flto=auto"
DEBUG_CFLAGS="-g"
DEBUG_CXXFLAGS="-g"
DEBUG_RUSTFLAGS="-C debuginfo=2"
BUILDENV=(!distcc color !ccache check !sign)
OPTIONS=(strip docs !libtool !staticlibs emptydirs zipman purge debug lto)
INTEGRITY_CHECK=(sha256)
STRIP_BINARIES="--strip-all"
STRIP_SHARED="--strip-unneeded"
STRIP_STATIC="--strip-debug"
MAN_DIRS=({usr{,/local}{,/share},opt/*}/{man,info})
DOC_DIRS=(usr/{,local/}{,share/}{doc,gtk-doc} opt/*/{doc,gtk-doc})
PURGE_TARGETS=(usr/{,share}/info/dir .packlist *.pod)
DBGSRCDIR="/usr/src/debug"
COMPRESSZST=(zstd -c -T0 -)
PKGEXT='.pkg.tar.zst'
SRCEXT='.src.tar.gz'
"#;

/// pacman for a root of its own: no signatures to check (the package is
/// unsigned), and nothing else installed there.
const PACMAN_CONF: &str = "[options]
Architecture = x86_64
SigLevel = Never
LocalFileSigLevel = Never
";

/// Names of what is in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn the_arch_package_builds_with_makepkg_and_installs_into_a_clean_root() {
    for (tool, package) in [
        ("makepkg", "pacman-package-manager"),
        ("pacman", "pacman-package-manager"),
        ("bsdtar", "libarchive-tools"),
        ("fakeroot", "fakeroot"),
        ("zstd", "zstd"),
        ("debugedit", "debugedit"),
        ("unshare", "util-linux"),
        ("meson", "meson"),
    ] {
        need(tool, package);
    }
    const ARCH_WINE: &str = "/usr/lib/wine";
    let dir = work_dir("arch");
    let shims = dir.join("bin");
    fs::create_dir_all(&shims).unwrap();
    let arch_meson = shims.join("arch-meson");
    fs::write(&arch_meson, ARCH_MESON).unwrap();
    fs::set_permissions(&arch_meson, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let conf = dir.join("makepkg.conf");
    fs::write(&conf, MAKEPKG_CONF).unwrap();
    let out_dir = |name: &str| {
        let d = dir.join(name);
        fs::create_dir_all(&d).unwrap();
        d
    };
    let (pkgdest, builddir, srcdest, logdest) = (out_dir("pkg"), out_dir("build"), out_dir("src"), out_dir("log"));

    // The cargo and rustc of the toolchain running these tests come first
    // (Debian 12's own are too old), after the arch-meson shim.
    let cargo = PathBuf::from(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    let mut path = vec![shims.clone()];
    path.extend(cargo.parent().filter(|p| p.is_absolute()).map(Path::to_path_buf));
    path.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));

    // makepkg refuses to run as root: as root, run it as uid 1000 in a user
    // namespace of its own, where the files root owns (the checkout, the
    // toolchain, the crates) are that user's.
    let recipe = root().join("packaging/arch");
    let recipe_before = names_in(&recipe);
    // SAFETY: geteuid has no preconditions and cannot fail.
    let mut makepkg = if unsafe { libc::geteuid() } == 0 {
        let mut cmd = Command::new("unshare");
        cmd.args(["--user", "--map-user=1000", "--map-group=1000", "makepkg"]);
        cmd
    } else {
        Command::new("makepkg")
    };
    // The PKGBUILD finds the checkout from $startdir, the directory makepkg
    // runs in; everything makepkg writes goes to the work directory.
    makepkg
        .current_dir(&recipe)
        .args(["--nodeps", "--noconfirm", "--nocolor", "--config"])
        .arg(&conf)
        .env_clear()
        .env("PATH", std::env::join_paths(path).unwrap())
        .env("PKGDEST", &pkgdest)
        .env("BUILDDIR", &builddir)
        .env("SRCDEST", &srcdest)
        .env("LOGDEST", &logdest)
        .env("PACKAGER", "asio-bridge tests <tests@localhost>");
    // (the crates are fetched unless cargo has them already)
    for var in ["HOME", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "http_proxy", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"] {
        if let Some(value) = std::env::var_os(var) {
            makepkg.env(var, value);
        }
    }
    run(&mut makepkg, Duration::from_secs(1500));
    assert_eq!(names_in(&recipe), recipe_before, "makepkg left files in {}", recipe.display());

    let pkg = pkgdest.join("pipewire-asio-bridge-0.1.0-1-x86_64.pkg.tar.zst");
    let debug_pkg = pkgdest.join("pipewire-asio-bridge-debug-0.1.0-1-x86_64.pkg.tar.zst");
    assert_eq!(names_in(&pkgdest), [pkg.file_name(), debug_pkg.file_name()].map(|n| n.unwrap().to_string_lossy().into_owned()));
    let bsdtar = |args: &[&str], archive: &Path| {
        let out = run(Command::new("bsdtar").args(args).arg(archive), Duration::from_secs(30));
        String::from_utf8(out.stdout).unwrap()
    };

    let out = run(Command::new("bsdtar").arg("-xOf").arg(&pkg).arg(".PKGINFO"), Duration::from_secs(30));
    let info = String::from_utf8(out.stdout).unwrap();
    for line in ["pkgname = pipewire-asio-bridge", "pkgver = 0.1.0-1", "arch = x86_64", "license = MIT", "depend = pipewire>=0.3.65", "depend = wine"] {
        assert!(info.lines().any(|l| l == line), ".PKGINFO lacks `{line}`:\n{info}");
    }

    // The plugin and the module go where the build machine's libspa and
    // libpipewire say (on Arch /usr/lib/spa-0.2 and /usr/lib/pipewire-0.3,
    // here Debian's multiarch directories); Wine's dlls where the PKGBUILD
    // says, Arch's /usr/lib/wine.
    let mut expected = expected_files(ARCH_WINE);
    expected.push("/usr/share/licenses/pipewire-asio-bridge/LICENSE".into());
    let listing = bsdtar(&["-tf"], &pkg);
    for file in &expected {
        assert!(listing.lines().any(|l| l == file.trim_start_matches('/')), "{file} is not in the package:\n{listing}");
    }
    // makepkg kept the debug info of each ELF file it stripped.
    let debug_listing = bsdtar(&["-tf"], &debug_pkg);
    let elf = expected.iter().filter(|f| f.ends_with(".so") || f.ends_with("/asio-bridge-client"));
    for file in elf {
        let debug = format!("usr/lib/debug{file}.debug");
        assert!(debug_listing.lines().any(|l| l == debug), "{debug} is not in the debug package:\n{debug_listing}");
    }

    // Install into an empty root with its own pacman database; nothing else
    // is installed there, so the dependencies cannot be met.
    let target = dir.join("root");
    let db = target.join("var/lib/pacman");
    fs::create_dir_all(&db).unwrap();
    let pacman_conf = dir.join("pacman.conf");
    fs::write(&pacman_conf, PACMAN_CONF).unwrap();
    let pacman_cmd = |args: &[&str]| {
        let mut cmd = Command::new("pacman");
        cmd.arg("--config").arg(&pacman_conf).arg("--root").arg(&target).arg("--dbpath").arg(&db);
        cmd.arg("--logfile").arg(dir.join("pacman.log")).arg("--cachedir").arg(dir.join("cache"));
        cmd.args(["--noconfirm", "--color", "never"]).args(args);
        cmd
    };
    let pacman = |args: &[&str]| String::from_utf8(run(&mut pacman_cmd(args), Duration::from_secs(60)).stdout).unwrap();
    pacman(&["-U", "--nodeps", "--nodeps", pkg.to_str().unwrap()]);
    assert_eq!(pacman(&["-Q"]).trim(), "pipewire-asio-bridge 0.1.0-1");
    // (pacman -Ql prints each path under the root)
    let owned = pacman(&["-Ql", "pipewire-asio-bridge"]);
    for file in &expected {
        let line = format!("pipewire-asio-bridge {}{file}", target.display());
        assert!(owned.lines().any(|l| l == line), "pacman -Ql does not list {file}:\n{owned}");
        assert!(target.join(file.trim_start_matches('/')).is_file(), "{file} was not installed");
    }
    assert_stripped(&target.join("usr"));

    pacman(&["-R", "pipewire-asio-bridge"]);
    let left = files_under(&target.join("usr"));
    assert!(left.is_empty(), "removing the package left {left:?}");
    let out = run_with_timeout(&mut pacman_cmd(&["-Q", "pipewire-asio-bridge"]), Duration::from_secs(60));
    assert!(!out.status.success(), "still installed after pacman -R: {}", output_text(&out));
    fs::remove_dir_all(&dir).unwrap();
}
