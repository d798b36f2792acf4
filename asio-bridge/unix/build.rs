// Binds asio-bridge/unixlib.h, the one definition of the unix-call params.
use std::{env, path::PathBuf};

fn main() {
    let header = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../unixlib.h");
    println!("cargo:rerun-if-changed={}", header.display());
    println!("cargo:rerun-if-changed=../../include/asio-bridge.h");
    bindgen::Builder::default()
        .header(header.to_str().unwrap())
        .allowlist_type("asio_bridge_(attach|detach|request|latencies|prepare|process|realtime|clock)_params")
        .allowlist_var("ASIO_BRIDGE_(UNIX|PROCESS|ERROR)_.*")
        .allowlist_type("asio_bridge_(unix_call|process_result)")
        .blocklist_type("asio_bridge_shm")
        .raw_line("pub use asio_bridge_abi::asio_bridge_shm;")
        .allowlist_recursively(false)
        .prepend_enum_name(false)
        .derive_default(true)
        .use_core()
        .generate()
        .expect("bindgen failed on asio-bridge/unixlib.h")
        .write_to_file(PathBuf::from(env::var("OUT_DIR").unwrap()).join("unixlib.rs"))
        .expect("writing bindings");
}
