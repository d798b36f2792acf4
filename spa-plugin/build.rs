// Compiles params.c against the system SPA headers (pkg-config libspa-0.2).
fn main() {
    println!("cargo:rerun-if-changed=src/params.c");
    let out = std::process::Command::new("pkg-config")
        .args(["--cflags-only-I", "libspa-0.2"])
        .output()
        .expect("pkg-config is needed to find the SPA headers");
    assert!(out.status.success(), "pkg-config cannot find libspa-0.2 (install libspa-0.2-dev)");
    let mut build = cc::Build::new();
    for flag in String::from_utf8(out.stdout).unwrap().split_whitespace() {
        build.flag("-isystem").flag(flag.trim_start_matches("-I"));
    }
    build.file("src/params.c").warnings(true).compile("asio_bridge_params");
}
