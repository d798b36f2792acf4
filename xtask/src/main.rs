//! `cargo xtask stage`: builds every artifact in release mode and lays them
//! out as an install prefix under `target/stage/`, the tree the tests, the
//! demo and `meson/` install from.

mod bench;
mod compat;
mod wine;

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::{exit, Command},
    time::Instant,
};

const USAGE: &str = "usage: cargo xtask <command>

Commands:
  stage [--prefix DIR] [--i386]
                        build everything in release mode and lay it out as an
                        install prefix (default: target/stage):
      lib/spa-0.2/asio-bridge/libspa-asio-bridge.so   the node PipeWire loads
      lib/pipewire-0.3/libpipewire-module-asio-bridge.so  the module that loads it
      share/pipewire/pipewire.conf.d/                 config fragments
      share/wireplumber/                              the autoconnect script and its loaders
      lib/wine/x86_64-windows/, lib/wine/x86_64-unix/ the Wine ASIO driver
      lib/wine/i386-windows/, lib/wine/i386-unix/     with --i386: the 32-bit driver,
                                                      for 32-bit hosts (wine32)
      bin/                                            reference client, tools
        [--flat DIR] [--flat-i386 DIR] [--strip PROGRAM]
                        also copy every staged file into DIR under its own
                        name (meson installs from there), the 32-bit
                        driver's (same names) into the --flat-i386 DIR,
                        stripping ELF files with PROGRAM
  stage --list [--i386] print what the stage holds, one `KIND<tab>PATH` a
                        line (KIND: the system directory meson installs it to)
  test [ARGS]           stage, then run every test (unit and end-to-end,
                        against a real PipeWire daemon and Wine) and the loom
                        model checks of the shared-memory protocol; ARGS go to
                        the test binaries, e.g. a test name filter
  demo                  stage, then run the whole user journey: a private
                        PipeWire with the bridge, a Wine prefix with the driver
                        registered, an ASIO host playing and recording through it
  bench                 stage, then print: the node's process() cost per
                        cycle (2/8/32 channels, quantum 64/256/1024) next to
                        a memcpy of the same bytes; the wake-up latency node
                        -> client callback in a real daemon (same CPU,
                        different CPUs) next to a futex ping-pong between two
                        processes; and the headroom table: the project's ASIO
                        host under Wine burning 50/70/80/85/90/95 % of each
                        period at quantum 32/64/128, looped back, with
                        overloads, lost cycles, late wake-ups and wake-up
                        p50/p99/max per cell next to the futex floor, then
                        where each cycle's time goes (publish -> driver's
                        wait returns -> callback entry -> output ready).
                        About 20 minutes: 60 s per headroom cell; set
                        ASIO_BRIDGE_BENCH_CELL_SECONDS to shorten the cells
                        (for development; figures come from the default)
  compat [ARGS]         stage, then run the end-to-end tests (all but
                        packaging, third_party and rt_no_panic) against
                        Debian 13's PipeWire 1.4, WirePlumber 0.5 and Wine
                        10 (with wine32:i386 for the 32-bit driver), in a
                        debootstrap chroot made from the mirror the host's
                        apt uses and cached in target/compat/trixie (needs
                        root and debootstrap);
                        ARGS go to the test binaries. Fails if any test fails;
                        closes with the versions, totals and time";

pub struct Stage {
    pub root: PathBuf,
    pub prefix: PathBuf,
    pub release: PathBuf,
    /// Also the 32-bit driver, for 32-bit hosts (wine32).
    pub i386: bool,
}

/// Every file the stage holds, each with the kind of system directory it is
/// installed into (meson/meson.build maps kinds to directories): the one
/// list of what gets installed. `stage` refuses a file not listed here and
/// fails when a listed file was not made; `stage --list` prints it for meson.
/// Kinds: spa-plugin, pipewire-module, pipewire-conf, wine-windows,
/// wine-unix, wine32-windows, wine32-unix, bin, data, data32 (the 32-bit
/// host), wireplumber-script, wireplumber-0.4-policy, wireplumber-0.5-conf.
pub fn manifest(root: &Path, i386: bool) -> Vec<(&'static str, String)> {
    let mut files: Vec<(&'static str, String)> = vec![
        ("spa-plugin", "lib/spa-0.2/asio-bridge/libspa-asio-bridge.so".into()),
        ("pipewire-module", "lib/pipewire-0.3/libpipewire-module-asio-bridge.so".into()),
        ("wine-windows", "lib/wine/x86_64-windows/asiobridge.dll".into()),
        ("wine-unix", "lib/wine/x86_64-unix/asiobridge.so".into()),
        ("bin", "bin/asio-bridge-client".into()),
        ("bin", "bin/asio-bridge-register".into()),
        // The test ASIO host is a Windows program: data, not a command.
        ("data", "bin/asio-host.exe".into()),
        ("data", "bin/panel-probe.exe".into()),
    ];
    if i386 {
        files.extend([
            ("wine32-windows", "lib/wine/i386-windows/asiobridge.dll".into()),
            ("wine32-unix", "lib/wine/i386-unix/asiobridge.so".into()),
            ("data32", "bin/asio-host32.exe".into()),
        ]);
    }
    // The WirePlumber autoconnect script, and its loader for each WirePlumber
    // generation (meson installs the one the system's WirePlumber reads).
    files.extend(WIREPLUMBER.iter().map(|(kind, path)| (*kind, format!("share/wireplumber/{path}"))));
    let mut fragments: Vec<String> = fs::read_dir(root.join("conf/pipewire.conf.d"))
        .unwrap_or_else(|e| fail(&format!("conf/pipewire.conf.d: {e}")))
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".conf"))
        .collect();
    fragments.sort();
    files.extend(fragments.into_iter().map(|name| ("pipewire-conf", format!("share/pipewire/pipewire.conf.d/{name}"))));
    files
}

/// The WirePlumber files, by kind and path under conf/wireplumber/ (and
/// share/wireplumber/ in the stage).
const WIREPLUMBER: [(&str, &str); 3] = [
    ("wireplumber-script", "scripts/asio-bridge-autoconnect.lua"),
    ("wireplumber-0.4-policy", "policy.lua.d/90-asio-bridge-autoconnect.lua"),
    ("wireplumber-0.5-conf", "wireplumber.conf.d/90-asio-bridge-autoconnect.conf"),
];

impl Stage {
    pub fn install(&self, from: &Path, to: &str) {
        if !manifest(&self.root, self.i386).iter().any(|(_, path)| path == to) {
            fail(&format!("{to} is staged but not listed in manifest() (xtask/src/main.rs): add it there with the kind of directory it installs into"));
        }
        let dest = self.prefix.join(to);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(from, &dest).unwrap_or_else(|e| fail(&format!("copy {} -> {}: {e}", from.display(), dest.display())));
    }
}

pub fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap_or_else(|e| fail(&format!("{cmd:?}: {e}")));
    if !status.success() {
        fail(&format!("{cmd:?} failed: {status}"));
    }
}

pub fn fail(msg: &str) -> ! {
    eprintln!("xtask: {msg}");
    exit(1)
}

fn stage(stage: &Stage, cargo: &str) {
    run(Command::new(cargo)
        .current_dir(&stage.root)
        .args(["build", "--release", "-p", "spa-asio-bridge", "-p", "pipewire-module-asio-bridge", "-p", "asio-bridge-client"]));
    stage.install(&stage.release.join("libspa_asio_bridge.so"), "lib/spa-0.2/asio-bridge/libspa-asio-bridge.so");
    stage.install(&stage.release.join("libpipewire_module_asio_bridge.so"), "lib/pipewire-0.3/libpipewire-module-asio-bridge.so");
    stage.install(&stage.release.join("asio-bridge-client"), "bin/asio-bridge-client");
    for (kind, path) in manifest(&stage.root, stage.i386) {
        if kind == "pipewire-conf" {
            let name = path.rsplit('/').next().unwrap();
            stage.install(&stage.root.join("conf/pipewire.conf.d").join(name), &path);
        }
    }
    for (_, path) in WIREPLUMBER {
        stage.install(&stage.root.join("conf/wireplumber").join(path), &format!("share/wireplumber/{path}"));
    }
    wine::stage(stage, cargo);
    for (_, path) in manifest(&stage.root, stage.i386) {
        if !stage.prefix.join(&path).is_file() {
            fail(&format!("{path} is listed in manifest() but was not staged"));
        }
    }
    println!("staged into {}", stage.prefix.display());
}

/// Whether a manifest kind is the 32-bit build's: the driver's files have
/// the 64-bit driver's names, so they flatten into a directory of their own
/// (meson/i386/), with the 32-bit host.
fn is_i386(kind: &str) -> bool {
    matches!(kind, "wine32-windows" | "wine32-unix" | "data32")
}

/// Copies every staged file whose kind `i386` selects (is_i386) into `dir`
/// under its own name, the flat layout of a meson custom_target's outputs:
/// bin files mode 0755, the rest 0644, ELF files stripped with `strip` when
/// given. The Windows files are linked stripped already (see wine.rs).
fn flatten(stage: &Stage, dir: &Path, i386: bool, strip: Option<&str>) {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir).unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())));
    for (kind, path) in manifest(&stage.root, stage.i386).into_iter().filter(|(kind, _)| is_i386(kind) == i386) {
        let from = stage.prefix.join(&path);
        let to = dir.join(from.file_name().unwrap());
        let _ = fs::remove_file(&to);
        fs::copy(&from, &to).unwrap_or_else(|e| fail(&format!("copy {} -> {}: {e}", from.display(), to.display())));
        fs::set_permissions(&to, fs::Permissions::from_mode(0o644)).unwrap();
        let mut magic = [0u8; 4];
        let elf = fs::File::open(&to).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic)).is_ok() && &magic == b"\x7fELF";
        if let (Some(strip), true) = (strip, elf) {
            run(Command::new(strip).arg(&to));
        }
        if kind == "bin" {
            fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

/// Where tests leave tables worth reading (e.g. the latency sweep).
const REPORTS: &str = "target/reports";

fn print_reports() {
    let Ok(dir) = fs::read_dir(REPORTS) else { return };
    let mut files: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for file in files {
        println!("\n{}:\n{}", file.display(), fs::read_to_string(&file).unwrap_or_default());
    }
}

pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    /// The command exited 0.
    pub ok: bool,
}

/// Runs a test command (cargo test, or a test binary), passing its output
/// through, and adds up the `test result:` lines it prints.
pub fn count_tests(cmd: &mut Command) -> Counts {
    use std::io::{BufRead, BufReader};
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap_or_else(|e| fail(&format!("{cmd:?}: {e}")));
    let (mut passed, mut failed) = (0u64, 0u64);
    for line in BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok) {
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |what: &str| {
                rest.split(';').find_map(|part| part.trim().strip_suffix(what)?.trim().rsplit(' ').next()?.parse::<u64>().ok()).unwrap_or(0)
            };
            passed += count("passed");
            failed += count("failed");
        }
    }
    let status = child.wait().unwrap();
    Counts { passed, failed, ok: status.success() }
}

/// Runs cargo test, passing its output through, and closes with the totals
/// of all its test binaries and of `earlier` on one line.
fn test(cmd: &mut Command, earlier: Counts) {
    let counts = count_tests(cmd);
    print_reports();
    let (passed, failed) = (counts.passed + earlier.passed, counts.failed + earlier.failed);
    println!("tests: {passed} passed, {failed} failed");
    if !counts.ok || !earlier.ok || failed > 0 {
        fail("cargo test failed");
    }
}

/// The loom model checks of the shared-memory protocol (abi/tests/loom.rs).
/// `--cfg loom` changes the abi crate and its dependencies, so they build in
/// a target dir of their own and leave the normal build alone.
fn loom(cargo: &str, root: &Path, target: &Path, args: &[String]) -> Counts {
    let start = Instant::now();
    let rustflags = format!("{} --cfg loom", env::var("RUSTFLAGS").unwrap_or_default());
    let counts = count_tests(
        Command::new(cargo)
            .current_dir(root)
            .env("RUSTFLAGS", rustflags.trim_start())
            .env("CARGO_TARGET_DIR", target.join("loom"))
            .args(["test", "-p", "asio-bridge-abi", "--release", "--test", "loom", "--"])
            .args(args),
    );
    println!("loom: {:.1} s to build and run", start.elapsed().as_secs_f64());
    // Without the cfg (flags overridden, e.g. by CARGO_ENCODED_RUSTFLAGS)
    // the file compiles to nothing and would pass silently.
    if args.is_empty() && counts.passed == 0 {
        fail("the loom step ran no model: was --cfg loom applied?");
    }
    counts
}

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    // cargo run says where this crate is; the path compiled in is the fallback.
    // (Cargo reuses a build of the same workspace from another directory
    // sharing its target dir, so the compiled-in path can be that one's.)
    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Cargo's own output directory, which a packager may move (relative to
    // where cargo was run; the builds below run in the root).
    let target = env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |dir| env::current_dir().unwrap().join(dir));
    // The tests, the demo and the benches stage the 32-bit driver too.
    let default = Stage { release: target.join("release"), prefix: root.join("target/stage"), root: root.clone(), i386: true };
    match args.first().map(String::as_str) {
        Some("stage") => match &args[1..] {
            [flag, i386 @ ..] if flag == "--list" && (i386.is_empty() || i386 == ["--i386"]) => {
                for (kind, path) in manifest(&root, !i386.is_empty()) {
                    println!("{kind}\t{path}");
                }
            }
            rest => {
                let (mut prefix, mut flat, mut flat_i386, mut strip, mut i386) = (None, None, None, None, false);
                let mut rest = rest.iter();
                while let Some(flag) = rest.next() {
                    if flag == "--i386" {
                        i386 = true;
                        continue;
                    }
                    let value = rest.next().unwrap_or_else(|| fail(USAGE));
                    match flag.as_str() {
                        "--prefix" => prefix = Some(PathBuf::from(value)),
                        "--flat" => flat = Some(PathBuf::from(value)),
                        "--flat-i386" => flat_i386 = Some(PathBuf::from(value)),
                        "--strip" => strip = Some(value.as_str()),
                        _ => fail(USAGE),
                    }
                }
                if (flat.is_none() && flat_i386.is_none() && strip.is_some()) || (flat_i386.is_some() && !i386) {
                    fail(USAGE);
                }
                let stage_to = Stage { prefix: prefix.unwrap_or(default.prefix.clone()), i386, ..default };
                stage(&stage_to, &cargo);
                if let Some(dir) = flat {
                    flatten(&stage_to, &dir, false, strip);
                }
                if let Some(dir) = flat_i386 {
                    flatten(&stage_to, &dir, true, strip);
                }
            }
        },
        Some("test") => {
            // End-to-end tests run one at a time: each starts its own
            // daemon, and timing checks need the machine to themselves.
            stage(&default, &cargo);
            let _ = fs::remove_dir_all(root.join(REPORTS));
            let loom = loom(&cargo, &root, &target, &args[1..]);
            test(Command::new(&cargo).current_dir(&root).args(["test", "--workspace", "--no-fail-fast", "--"]).arg("--test-threads=1").args(&args[1..]), loom);
        }
        Some("demo") => {
            stage(&default, &cargo);
            run(Command::new(&cargo).current_dir(&root).args(["run", "--quiet", "--release", "-p", "asio-bridge-tests", "--bin", "demo"]));
        }
        Some("bench") => bench::bench(&default, &cargo, &args[1..]),
        Some("compat") => compat::compat(&default, &cargo, &args[1..]),
        Some("-h" | "--help") => println!("{USAGE}"),
        _ => {
            eprintln!("{USAGE}");
            exit(2)
        }
    }
}
