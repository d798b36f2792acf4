//! What a packager runs: meson installs the staged tree into the system's
//! directories (here under a DESTDIR).

use asio_bridge_tests::{output_text, root, run_with_timeout, work_dir};
use std::{process::Command, time::Duration};

#[test]
fn meson_installs_every_file_where_the_system_looks() {
    let dir = work_dir("meson");
    let (build, dest) = (dir.join("build"), dir.join("dest"));
    let wine = "/usr/lib/x86_64-linux-gnu/wine";
    let steps: [Vec<String>; 3] = [
        vec!["setup".into(), build.display().to_string(), root().join("meson").display().to_string(), "--prefix=/usr".into(), format!("-Dwine_dlldir={wine}")],
        vec!["compile".into(), "-C".into(), build.display().to_string()],
        vec!["install".into(), "-C".into(), build.display().to_string(), "--destdir".into(), dest.display().to_string()],
    ];
    for args in &steps {
        let out = run_with_timeout(Command::new("meson").args(args), Duration::from_secs(600));
        assert!(out.status.success(), "meson {}: {}", args[0], output_text(&out));
    }
    let spa = String::from_utf8(Command::new("pkg-config").args(["--variable=plugindir", "libspa-0.2"]).output().unwrap().stdout).unwrap();
    let modules = String::from_utf8(Command::new("pkg-config").args(["--variable=moduledir", "libpipewire-0.3"]).output().unwrap().stdout).unwrap();
    for file in [
        format!("{}/asio-bridge/libspa-asio-bridge.so", spa.trim()),
        format!("{}/libpipewire-module-asio-bridge.so", modules.trim()),
        "/usr/share/pipewire/pipewire.conf.d/50-asio-bridge.conf".into(),
        format!("{wine}/x86_64-windows/asiobridge.dll"),
        format!("{wine}/x86_64-unix/asiobridge.so"),
        "/usr/bin/asio-bridge-register".into(),
        "/usr/bin/asio-bridge-client".into(),
    ] {
        assert!(dest.join(file.trim_start_matches('/')).is_file(), "{file} was not installed");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
