//! `cargo xtask stage`: builds every artifact in release mode and lays them
//! out as an install prefix under `target/stage/`, the tree the tests, the
//! demo and `meson/` install from.

mod bench;
mod wine;

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::{exit, Command},
};

const USAGE: &str = "usage: cargo xtask <command>

Commands:
  stage [--prefix DIR]  build everything in release mode and lay it out as an
                        install prefix (default: target/stage):
      lib/spa-0.2/asio-bridge/libspa-asio-bridge.so   the node PipeWire loads
      lib/pipewire-0.3/libpipewire-module-asio-bridge.so  the module that loads it
      share/pipewire/pipewire.conf.d/                 config fragments
      lib/wine/x86_64-windows/, lib/wine/x86_64-unix/ the Wine ASIO driver
      bin/                                            reference client, tools
  test [ARGS]           stage, then run every test (unit and end-to-end,
                        against a real PipeWire daemon and Wine); ARGS go to
                        the test binaries, e.g. a test name filter
  demo                  stage, then run the whole user journey: a private
                        PipeWire with the bridge, a Wine prefix with the driver
                        registered, an ASIO host playing and recording through it
  bench                 stage, then print two tables: the node's process()
                        cost per cycle (2/8/32 channels, quantum 64/256/1024)
                        next to a memcpy of the same bytes, and the wake-up
                        latency node -> client callback in a real daemon
                        (same CPU, different CPUs) next to a futex ping-pong
                        between two processes; about half a minute";

pub struct Stage {
    pub root: PathBuf,
    pub prefix: PathBuf,
    pub release: PathBuf,
}

impl Stage {
    pub fn install(&self, from: &Path, to: &str) {
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
    for entry in fs::read_dir(stage.root.join("conf/pipewire.conf.d")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap();
        stage.install(&path, &format!("share/pipewire/pipewire.conf.d/{name}"));
    }
    wine::stage(stage, cargo);
    println!("staged into {}", stage.prefix.display());
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

/// Runs cargo test, passing its output through, and closes with the totals
/// of all its test binaries on one line.
fn test(cmd: &mut Command) {
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
    print_reports();
    println!("tests: {passed} passed, {failed} failed");
    if !status.success() || failed > 0 {
        fail(&format!("cargo test failed: {status}"));
    }
}

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let default = Stage { release: root.join("target/release"), prefix: root.join("target/stage"), root: root.clone() };
    match args.first().map(String::as_str) {
        Some("stage") => match &args[1..] {
            [] => stage(&default, &cargo),
            [flag, dir] if flag == "--prefix" => stage(&Stage { prefix: PathBuf::from(dir), ..default }, &cargo),
            _ => fail(USAGE),
        },
        Some("test") => {
            // End-to-end tests run one at a time: each starts its own
            // daemon, and timing checks need the machine to themselves.
            stage(&default, &cargo);
            let _ = fs::remove_dir_all(root.join(REPORTS));
            test(Command::new(&cargo).current_dir(&root).args(["test", "--workspace", "--"]).arg("--test-threads=1").args(&args[1..]));
        }
        Some("demo") => {
            stage(&default, &cargo);
            run(Command::new(&cargo).current_dir(&root).args(["run", "--quiet", "--release", "-p", "asio-bridge-tests", "--bin", "demo"]));
        }
        Some("bench") => bench::bench(&default, &cargo, &args[1..]),
        Some("-h" | "--help") => println!("{USAGE}"),
        _ => {
            eprintln!("{USAGE}");
            exit(2)
        }
    }
}
