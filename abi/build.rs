// Binds include/asio-bridge.h, the one definition of the ABI.
use std::{env, path::PathBuf};

fn main() {
    let header = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("../include/asio-bridge.h");
    println!("cargo:rerun-if-changed={}", header.display());
    let bindings = bindgen::Builder::default()
        .header(header.to_str().unwrap())
        .allowlist_type("asio_bridge_.*")
        .allowlist_var("ASIO_BRIDGE_.*")
        .prepend_enum_name(false)
        .derive_default(true)
        .use_core()
        .generate()
        .expect("bindgen failed on include/asio-bridge.h");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("asio_bridge.rs");
    bindings.write_to_file(out).expect("writing bindings");
}
