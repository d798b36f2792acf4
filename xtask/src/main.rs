//! `cargo xtask stage`: builds every artifact in release mode and lays them
//! out as an install prefix under `target/stage/`, the tree the tests, the
//! demo and `meson/` install from.

mod wine;

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::{exit, Command},
};

const USAGE: &str = "usage: cargo xtask stage [--prefix DIR]

Builds the PipeWire ASIO Bridge in release mode and lays it out as an
install prefix (default: target/stage):
  lib/spa-0.2/asio-bridge/libspa-asio-bridge.so   the node PipeWire loads
  share/pipewire/pipewire.conf.d/                 config fragments
  lib/wine/x86_64-windows/, lib/wine/x86_64-unix/ the Wine ASIO driver
  bin/                                            reference client, tools";

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

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let prefix = match args.as_slice() {
        [cmd] if cmd == "stage" => root.join("target/stage"),
        [cmd, flag, dir] if cmd == "stage" && flag == "--prefix" => PathBuf::from(dir),
        _ => {
            eprintln!("{USAGE}");
            exit(if args.iter().any(|a| a == "--help" || a == "-h") { 0 } else { 2 })
        }
    };
    let stage = Stage { release: root.join("target/release"), root, prefix };
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(&cargo)
        .current_dir(&stage.root)
        .args(["build", "--release", "-p", "spa-asio-bridge", "-p", "asio-bridge-client"]));
    stage.install(&stage.release.join("libspa_asio_bridge.so"), "lib/spa-0.2/asio-bridge/libspa-asio-bridge.so");
    stage.install(&stage.release.join("asio-bridge-client"), "bin/asio-bridge-client");
    for entry in fs::read_dir(stage.root.join("conf/pipewire.conf.d")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap();
        stage.install(&path, &format!("share/pipewire/pipewire.conf.d/{name}"));
    }
    wine::stage(&stage, &cargo);
    println!("staged into {}", stage.prefix.display());
}
