// pipewire-sys binds <pipewire/pipewire.h>, the client API. A module also
// needs the daemon-side API of <pipewire/impl-module.h> and
// <pipewire/impl-node.h>; bind just those items here, against the installed
// headers, and take every type they mention from pipewire-sys/libspa-sys.
use std::{env, path::PathBuf};

fn main() {
    let pw = pkg_config::Config::new()
        .cargo_metadata(false)
        .probe("libpipewire-0.3")
        .expect("libpipewire-0.3 headers (install libpipewire-0.3-dev)");
    let header = "#include <pipewire/impl-module.h>\n#include <pipewire/impl-node.h>\n";
    let mut builder = bindgen::Builder::default()
        .header_contents("impl.h", header)
        .allowlist_recursively(false)
        .allowlist_function("pw_impl_module_(add_listener|get_context|get_info|update_properties)")
        .allowlist_function("pw_context_create_node")
        .allowlist_function("pw_impl_node_(add_listener|set_implementation|set_active|register|destroy|get_info|is_active)")
        .allowlist_type("pw_impl_module_events")
        .allowlist_type("pw_impl_node_events")
        .allowlist_var("PW_VERSION_IMPL_(MODULE|NODE)_EVENTS")
        .raw_line("#[allow(unused_imports)] use pipewire_sys::*; #[allow(unused_imports)] use libspa_sys::*;")
        .size_t_is_usize(true)
        .layout_tests(true);
    for dir in &pw.include_paths {
        builder = builder.clang_arg(format!("-I{}", dir.display()));
    }
    let bindings = builder.generate().expect("bindgen failed on pipewire/impl-module.h, impl-node.h");
    bindings
        .write_to_file(PathBuf::from(env::var("OUT_DIR").unwrap()).join("impl.rs"))
        .expect("writing bindings");
}
