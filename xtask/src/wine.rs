//! The Wine half of the stage: the ASIO driver (a builtin PE DLL and its
//! unix library, paired by name), the register script, and the project's
//! ASIO host programs.

use crate::{fail, run, Stage};
use std::process::Command;

const MINGW: &str = "x86_64-w64-mingw32-gcc";

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
    let pe = stage.root.join("asio-bridge/pe");
    let dll = out.join("asiobridge.dll");
    run(Command::new(MINGW)
        // -s: linked stripped. Built without -g, the symbols are no help to
        // a debugger, and no distribution tool strips a PE file.
        .args(["-shared", "-O2", "-s", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&dll)
        .arg(pe.join("driver.c"))
        .arg(pe.join("panel.c"))
        .arg(pe.join("asiobridge.def"))
        .args(["-lole32", "-luuid", "-ladvapi32", "-luser32", "-lntdll"]));
    // Marks the DLL builtin, so Wine pairs it with x86_64-unix/asiobridge.so.
    run(Command::new("winebuild").arg("--builtin").arg(&dll));
    stage.install(&dll, "lib/wine/x86_64-windows/asiobridge.dll");

    let host = out.join("asio-host.exe");
    run(Command::new(MINGW)
        .args(["-O2", "-s", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&host)
        .arg(stage.root.join("asio-bridge/host/asio-host.c"))
        .args(["-lole32", "-luuid", "-ladvapi32"]));
    stage.install(&host, "bin/asio-host.exe");

    // Opens the driver's control panel and drives its dialog, for the tests.
    let probe = out.join("panel-probe.exe");
    run(Command::new(MINGW)
        .args(["-O2", "-s", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&probe)
        .arg(stage.root.join("asio-bridge/host/panel-probe.c"))
        .args(["-lole32", "-luuid", "-ladvapi32", "-luser32"]));
    stage.install(&probe, "bin/panel-probe.exe");
    stage.install(&stage.root.join("asio-bridge/asio-bridge-register"), "bin/asio-bridge-register");
}
