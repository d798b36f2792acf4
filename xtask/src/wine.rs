//! The Wine half of the stage: the ASIO driver (a builtin PE DLL and its
//! unix library, paired by name), the register script, and the project's
//! ASIO host programs; with `i386`, the 32-bit driver and host as well.

use crate::{fail, run, Stage};
use std::{
    path::{Path, PathBuf},
    process::Command,
};

const MINGW: &str = "x86_64-w64-mingw32-gcc";
const MINGW32: &str = "i686-w64-mingw32-gcc";
const I686: &str = "i686-unknown-linux-gnu";
const DLL_LIBS: [&str; 5] = ["-lole32", "-luuid", "-ladvapi32", "-luser32", "-lntdll"];

fn need(tool: &str, package: &str) {
    if Command::new(tool).arg("--version").output().is_err() {
        fail(&format!("{tool} is missing: install the {package} package (tools/install-deps does)"));
    }
}

pub fn stage(stage: &Stage, cargo: &str) {
    need(MINGW, "gcc-mingw-w64-x86-64");
    need("winebuild", "wine64-tools");
    run(Command::new(cargo).current_dir(&stage.root).args(["build", "--release", "-p", "asio-bridge-unix"]));
    stage.install(&stage.release.join("libasiobridge.so"), "lib/wine/x86_64-unix/asiobridge.so");

    let out = stage.release.parent().unwrap().join("wine");
    std::fs::create_dir_all(&out).unwrap();
    let dll = pe_driver(stage, MINGW, &out.join("asiobridge.dll"));
    stage.install(&dll, "lib/wine/x86_64-windows/asiobridge.dll");

    let host = pe_program(stage, MINGW, "asio-host", &out, &["-lole32", "-luuid", "-ladvapi32"]);
    stage.install(&host, "bin/asio-host.exe");
    // Opens the driver's control panel and drives its dialog, for the tests.
    let probe = pe_program(stage, MINGW, "panel-probe", &out, &["-lole32", "-luuid", "-ladvapi32", "-luser32"]);
    stage.install(&probe, "bin/panel-probe.exe");
    stage.install(&stage.root.join("asio-bridge/asio-bridge-register"), "bin/asio-bridge-register");
    if stage.i386 {
        stage_i386(stage, cargo, &out.join("i386"));
    }
}

/// The Windows program asio-bridge/host/`name`.c, built by `mingw` into
/// `out`/`name`.exe, linked stripped.
fn pe_program(stage: &Stage, mingw: &str, name: &str, out: &Path, libs: &[&str]) -> PathBuf {
    std::fs::create_dir_all(out).unwrap();
    let exe = out.join(format!("{name}.exe"));
    run(Command::new(mingw)
        .args(["-O2", "-s", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(stage.root.join(format!("asio-bridge/host/{name}.c")))
        .args(libs));
    exe
}

/// The PE half of the driver, built by `mingw` into `dll`.
fn pe_driver(stage: &Stage, mingw: &str, dll: &Path) -> PathBuf {
    std::fs::create_dir_all(dll.parent().unwrap()).unwrap();
    let pe = stage.root.join("asio-bridge/pe");
    run(Command::new(mingw)
        // -s: linked stripped. Built without -g, the symbols are no help to
        // a debugger, and no distribution tool strips a PE file.
        .args(["-shared", "-O2", "-s", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(dll)
        .arg(pe.join("driver.c"))
        .arg(pe.join("panel.c"))
        .arg(pe.join("asiobridge.def"))
        // i386: the .def names the exports undecorated, as regsvr32 and COM
        // look them up; the linker matches them to the stdcall symbols.
        .arg("-Wl,--enable-stdcall-fixup")
        .args(DLL_LIBS));
    // Marks the DLL builtin, so Wine pairs it with <arch>-unix/asiobridge.so.
    run(Command::new("winebuild").arg("--builtin").arg(dll));
    dll.to_path_buf()
}

/// The 32-bit driver (old WoW64: a 32-bit PE half with a 32-bit unix half)
/// and the 32-bit test host. The unix half needs Rust's standard library
/// for i686: the toolchain's own where it has one (rustup), else Debian's
/// rustc-web with libstd-rust-web-dev:i386.
fn stage_i386(stage: &Stage, cargo: &str, out: &Path) {
    need(MINGW32, "gcc-mingw-w64-i686");
    let rustc = i686_rustc();
    let target_dir = stage.release.parent().unwrap().join("i686");
    run(Command::new(cargo)
        .current_dir(&stage.root)
        .env("RUSTC", &rustc)
        .env("CARGO_TARGET_DIR", &target_dir)
        .args(["build", "--release", "-p", "asio-bridge-unix", "--target", I686]));
    stage.install(&target_dir.join(I686).join("release/libasiobridge.so"), "lib/wine/i386-unix/asiobridge.so");
    let dll = pe_driver(stage, MINGW32, &out.join("asiobridge.dll"));
    stage.install(&dll, "lib/wine/i386-windows/asiobridge.dll");
    let host = pe_program(stage, MINGW32, "asio-host", out, &["-lole32", "-luuid", "-ladvapi32"]);
    stage.install(&host, "bin/asio-host32.exe");
}

/// A rustc that has the standard library for i686-unknown-linux-gnu.
fn i686_rustc() -> String {
    let has_std = |rustc: &str| {
        Command::new(rustc)
            .args(["--print", "target-libdir", "--target", I686])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| std::fs::read_dir(String::from_utf8_lossy(&o.stdout).trim()).ok())
            .is_some_and(|dir| dir.flatten().any(|f| f.file_name().to_string_lossy().starts_with("libstd-")))
    };
    let toolchain = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    for rustc in [toolchain.as_str(), "/usr/bin/rustc"] {
        if has_std(rustc) {
            return rustc.into();
        }
    }
    fail("no Rust standard library for i686-unknown-linux-gnu: `rustup target add i686-unknown-linux-gnu`, or Debian's rustc-web and libstd-rust-web-dev:i386 (tools/install-deps installs those)")
}
