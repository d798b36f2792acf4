//! `libpipewire-module-asio-bridge`: a PipeWire module that loads one ASIO
//! bridge node from a `context.modules` entry and destroys it exactly once.
//!
//! ```text
//! context.modules = [
//!     {   name = libpipewire-module-asio-bridge
//!         args = { node.name = asio-bridge asio.inputs = 2 asio.outputs = 2 }
//!     }
//! ]
//! ```
//!
//! Why not `libpipewire-module-spa-node`: in PipeWire 0.3.65 that module
//! destroys its node when the module is destroyed, without noticing that the
//! context destroys every node before it destroys the modules, so the node
//! is destroyed twice when the daemon exits (a crash on every shutdown). This
//! module listens to its node's `destroy` event and forgets the node then;
//! on module destroy it destroys only a node that is still alive.
//!
//! The node itself is the SPA plugin `asio-bridge/libspa-asio-bridge`
//! (factory `api.asio.bridge`); it validates the settings and logs why it
//! refuses bad ones, and then this module's load fails.

use libspa_sys as spa;
use pipewire_sys as pw;
use std::{
    ffi::{c_char, c_int, c_void, CStr, CString},
    panic::{catch_unwind, AssertUnwindSafe},
    ptr::{self, NonNull},
};

mod sys {
    //! The daemon-side API (`impl-module.h`, `impl-node.h`), bound by build.rs.
    #![allow(non_camel_case_types, non_upper_case_globals, dead_code, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/impl.rs"));
}

/// The bridge's SPA factory and the library it lives in (under SPA_PLUGIN_DIR).
pub const FACTORY_NAME: &CStr = c"api.asio.bridge";
pub const LIBRARY_NAME: &CStr = c"asio-bridge/libspa-asio-bridge";
/// What the node is called when the arguments do not name it (the plugin's default).
const DEFAULT_NODE_NAME: &str = "asio-bridge";

const USAGE: &CStr = c"{ node.name = <name> node.description = <text> asio.inputs = <0-64> asio.outputs = <0-64> \
asio.mode = pipelined|same-cycle asio.min-quantum = <n> asio.max-quantum = <n> asio.rates = [ <rate> ... ] \
asio.power-of-two-quantum = <bool> }";
const DESCRIPTION: &CStr = c"Loads one PipeWire ASIO Bridge node";
const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
    Ok(v) => v,
    Err(_) => panic!("version with a NUL"),
};

fn log(level: spa::spa_log_level, line: u32, msg: &str) {
    let msg = CString::new(msg.replace('\0', "")).unwrap_or_default();
    // SAFETY: a "%s" format with exactly one argument, a valid C string that
    // outlives the call; the other pointers are static C strings.
    unsafe {
        pw::pw_log_log(level, c"module/src/lib.rs".as_ptr(), line as c_int, c"asio-bridge-module".as_ptr(), c"%s".as_ptr(), msg.as_ptr());
    }
}

macro_rules! error {
    ($($arg:tt)*) => { log(spa::SPA_LOG_LEVEL_ERROR, line!(), &format!($($arg)*)) };
}

/// "Invalid argument" for EINVAL or -EINVAL.
fn strerror(res: c_int) -> String {
    let text = std::io::Error::from_raw_os_error(res.abs()).to_string();
    match text.split_once(" (os error") {
        Some((words, _)) => words.to_owned(),
        None => text,
    }
}

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// Owned `pw_properties`.
pub struct Props(NonNull<pw::pw_properties>);

impl Props {
    /// Parses module arguments: a JSON object `{ key = value ... }` or
    /// `key=value ...`, as PipeWire parses properties everywhere.
    pub fn parse(args: Option<&CStr>) -> Result<Self, c_int> {
        let args = args.unwrap_or(c"");
        // SAFETY: args is a valid C string; the result is owned by us.
        let raw = unsafe { pw::pw_properties_new_string(args.as_ptr()) };
        NonNull::new(raw).map(Props).ok_or_else(errno)
    }

    pub fn set(&mut self, key: &CStr, value: &CStr) {
        // SAFETY: self owns a live pw_properties; key and value are copied.
        unsafe { pw::pw_properties_set(self.0.as_ptr(), key.as_ptr(), value.as_ptr()) };
    }

    pub fn get(&self, key: &CStr) -> Option<String> {
        // SAFETY: self owns a live pw_properties; the returned string lives
        // in it and is copied before self can change.
        unsafe { opt_str(pw::pw_properties_get(self.0.as_ptr(), key.as_ptr())) }
    }

    fn dict(&self) -> *const spa::spa_dict {
        // SAFETY: self owns a live pw_properties, whose first field is its dict.
        unsafe { ptr::addr_of!((*self.0.as_ptr()).dict) }
    }

    /// Hands ownership to a PipeWire call that takes it.
    fn into_raw(self) -> *mut pw::pw_properties {
        let raw = self.0.as_ptr();
        std::mem::forget(self);
        raw
    }
}

impl Drop for Props {
    fn drop(&mut self) {
        // SAFETY: self owns the properties and nothing else refers to them.
        unsafe { pw::pw_properties_free(self.0.as_ptr()) };
    }
}

/// # Safety
/// `s` is null or a valid C string.
unsafe fn opt_str(s: *const c_char) -> Option<String> {
    // SAFETY: per the contract above.
    (!s.is_null()).then(|| unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned())
}

/// The properties the bridge node is made with: the module's arguments plus
/// what the loader must know (factory, library) and what the plugin reads
/// from its init dict (`clock.quantum-limit`, the daemon's limit).
pub fn bridge_props(args: Option<&CStr>, quantum_limit: Option<&CStr>) -> Result<Props, c_int> {
    let mut props = Props::parse(args)?;
    props.set(c"factory.name", FACTORY_NAME);
    props.set(c"library.name", LIBRARY_NAME);
    if let Some(limit) = quantum_limit {
        props.set(c"clock.quantum-limit", limit);
    }
    Ok(props)
}

/// One bridge node and what the module holds for it. Lives in a Box from a
/// successful init until the module is destroyed; the hooks point into it.
struct Bridge {
    name: String,
    /// Null once the node's destroy event has been seen.
    node: *mut pw::pw_impl_node,
    /// Null once unloaded (after the node's free event).
    handle: *mut spa::spa_handle,
    node_hook: spa::spa_hook,
    node_listening: bool,
    module_hook: spa::spa_hook,
    module_listening: bool,
}

static NODE_EVENTS: sys::pw_impl_node_events = sys::pw_impl_node_events {
    version: sys::PW_VERSION_IMPL_NODE_EVENTS,
    destroy: Some(on_node_destroy),
    free: Some(on_node_free),
    // SAFETY: every other member is an Option of a function pointer, for
    // which all-zero bytes is None.
    ..unsafe { std::mem::zeroed() }
};

static MODULE_EVENTS: sys::pw_impl_module_events = sys::pw_impl_module_events {
    version: sys::PW_VERSION_IMPL_MODULE_EVENTS,
    destroy: Some(on_module_destroy),
    free: None,
    initialized: None,
    registered: None,
};

/// Runs an event handler body, never letting a panic cross into C.
fn guarded(what: &str, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        error!("asio-bridge module: panic in {what}");
    }
}

/// The node is going away, by whoever's hand (the context at exit, a client
/// destroying it, or this module): forget it, so nobody destroys it again.
unsafe extern "C" fn on_node_destroy(data: *mut c_void) {
    guarded("node destroy", || {
        // SAFETY: data is the Bridge registered with this hook; it stays
        // alive until the module is destroyed, which removes this hook first
        // (or has already seen the node's free event).
        let bridge = unsafe { &mut *data.cast::<Bridge>() };
        bridge.node = ptr::null_mut();
    });
}

/// The node no longer uses its SPA node: unload the plugin handle, and stop
/// listening (the node's memory goes right after this event).
unsafe extern "C" fn on_node_free(data: *mut c_void) {
    guarded("node free", || {
        // SAFETY: as in on_node_destroy.
        let bridge = unsafe { &mut *data.cast::<Bridge>() };
        // SAFETY: the hook is linked in the node's listener list, which is
        // still alive during its free event.
        unsafe { spa::spa_hook_remove(&mut bridge.node_hook) };
        bridge.node_listening = false;
        bridge.node = ptr::null_mut();
        unload(bridge);
    });
}

fn unload(bridge: &mut Bridge) {
    if !bridge.handle.is_null() {
        // SAFETY: the handle came from pw_context_load_spa_handle and no
        // node uses it any more; it is unloaded once (then set to null).
        unsafe { pw::pw_unload_spa_handle(bridge.handle) };
        bridge.handle = ptr::null_mut();
    }
}

/// The module is unloaded (daemon exit or `pw-cli destroy` of the module):
/// destroy the node if it still lives, then free everything, before the
/// daemon unmaps this library.
unsafe extern "C" fn on_module_destroy(data: *mut c_void) {
    guarded("module destroy", || {
        // SAFETY: data is the Box<Bridge> leaked by a successful init; this
        // event fires once, and the Box is reclaimed here only.
        let mut bridge = unsafe { Box::from_raw(data.cast::<Bridge>()) };
        // SAFETY: the hook is linked in the module's listener list.
        unsafe { spa::spa_hook_remove(&mut bridge.module_hook) };
        bridge.module_listening = false;
        teardown(&mut bridge);
    });
}

/// Destroys the node if it is alive (its destroy and free events then clear
/// `node`, remove the node hook and unload the handle), and makes sure no
/// hook into `bridge` is left behind.
fn teardown(bridge: &mut Bridge) {
    if !bridge.node.is_null() {
        // SAFETY: node is non-null only between its creation and its destroy
        // event, so it is alive and destroyed here exactly once.
        unsafe { sys::pw_impl_node_destroy(bridge.node) };
    }
    if bridge.node_listening {
        // Only reachable if the node was destroyed without a free event,
        // which PipeWire never does; never leave a hook into freed memory.
        // SAFETY: the hook is still linked into a live list.
        unsafe { spa::spa_hook_remove(&mut bridge.node_hook) };
        bridge.node_listening = false;
    }
    unload(bridge);
}

/// Creates and registers the bridge node.
///
/// # Safety
/// `module` is the module being initialized; `args` is null or a C string.
unsafe fn init(module: *mut pw::pw_impl_module, args: *const c_char) -> Result<(), c_int> {
    // SAFETY: module is live for the duration of init.
    let context = unsafe { sys::pw_impl_module_get_context(module) };
    // SAFETY: args is null or a C string, per the contract.
    let args = (!args.is_null()).then(|| unsafe { CStr::from_ptr(args) });
    // SAFETY: context is the module's live context; its properties live as
    // long as it, and the value is copied into ours at once.
    let limit = unsafe {
        let p = pw::pw_context_get_properties(context);
        let v = if p.is_null() { ptr::null() } else { pw::pw_properties_get(p, c"default.clock.quantum-limit".as_ptr()) };
        (!v.is_null()).then(|| CStr::from_ptr(v).to_owned())
    };
    let mut props = bridge_props(args, limit.as_deref()).inspect_err(|&e| {
        error!("asio-bridge module: cannot parse arguments {:?}: {}", args.map(|a| a.to_string_lossy()), strerror(e))
    })?;
    // Tools show which module made the node (the module's global exists
    // before init is called).
    // SAFETY: module is live; its info is owned by it and read at once.
    if let Some(info) = unsafe { sys::pw_impl_module_get_info(module).as_ref() } {
        props.set(c"module.id", &CString::new(info.id.to_string()).unwrap_or_default());
    }
    let name = props.get(c"node.name").unwrap_or_else(|| DEFAULT_NODE_NAME.into());

    // SAFETY: context is live; the dict is read during the call only.
    let handle = unsafe { pw::pw_context_load_spa_handle(context, FACTORY_NAME.as_ptr(), props.dict()) };
    if handle.is_null() {
        let e = errno();
        error!(
            "asio-bridge module: cannot create bridge '{name}': {}; the line before says why (if none does: \
             is {}.so in a directory of SPA_PLUGIN_DIR?)",
            strerror(e),
            LIBRARY_NAME.to_string_lossy()
        );
        return Err(-e);
    }
    let mut bridge = Box::new(Bridge {
        name,
        node: ptr::null_mut(),
        handle,
        // SAFETY: a spa_hook is plain pointers; all-zero is its unlinked state.
        node_hook: unsafe { std::mem::zeroed() },
        node_listening: false,
        // SAFETY: as above.
        module_hook: unsafe { std::mem::zeroed() },
        module_listening: false,
    });

    let mut iface: *mut c_void = ptr::null_mut();
    // SAFETY: handle is a live handle from the loader; get_interface is its
    // method (spa_handle_get_interface is an inline function in C).
    let res = unsafe {
        match (*handle).get_interface {
            Some(get) => get(handle, spa::SPA_TYPE_INTERFACE_Node.as_ptr().cast(), &mut iface),
            None => -libc::ENOTSUP,
        }
    };
    if res < 0 || iface.is_null() {
        error!("asio-bridge module: bridge '{}' has no node interface: {}", bridge.name, strerror(res));
        unload(&mut bridge);
        return Err(if res < 0 { res } else { -libc::EINVAL });
    }

    // SAFETY: context is live; ownership of the properties passes to the call.
    let node = unsafe { sys::pw_context_create_node(context, props.into_raw(), 0) };
    if node.is_null() {
        let e = errno();
        error!("asio-bridge module: cannot create node '{}': {}", bridge.name, strerror(e));
        unload(&mut bridge);
        return Err(-e);
    }
    bridge.node = node;
    let bridge = Box::into_raw(bridge);
    // From here the Box is reclaimed by `fail` or by on_module_destroy.
    let fail = move |res: c_int, what: &str| {
        // SAFETY: bridge came from Box::into_raw above and no module hook
        // points at it yet; teardown removes the node hook before the drop.
        let mut b = unsafe { Box::from_raw(bridge) };
        error!("asio-bridge module: cannot {what} node '{}': {}", b.name, strerror(res));
        teardown(&mut b);
        Err(res)
    };

    // SAFETY: node is live; the hook is in the Box, whose address is stable
    // and which outlives the hook (removed on free or in teardown).
    unsafe {
        sys::pw_impl_node_add_listener(node, ptr::addr_of_mut!((*bridge).node_hook), &NODE_EVENTS, bridge.cast());
        (*bridge).node_listening = true;
    }
    // SAFETY: node is live; iface is the SPA node of handle, which stays
    // loaded until the node's free event.
    let res = unsafe { sys::pw_impl_node_set_implementation(node, iface.cast()) };
    if res < 0 {
        return fail(res, "set the implementation of");
    }
    // SAFETY: node is live (no event can have destroyed it during init).
    let res = unsafe { sys::pw_impl_node_set_active(node, true) };
    if res < 0 {
        return fail(res, "activate");
    }
    // SAFETY: as above; null: no extra properties for the global.
    let res = unsafe { sys::pw_impl_node_register(node, ptr::null_mut()) };
    if res < 0 {
        return fail(res, "register");
    }

    // SAFETY: module is live; the hook lives in the Box, which is freed only
    // in on_module_destroy after removing the hook.
    unsafe {
        sys::pw_impl_module_add_listener(module, ptr::addr_of_mut!((*bridge).module_hook), &MODULE_EVENTS, bridge.cast());
        (*bridge).module_listening = true;
    }
    let items = [
        spa::spa_dict_item { key: pw::PW_KEY_MODULE_DESCRIPTION.as_ptr().cast(), value: DESCRIPTION.as_ptr() },
        spa::spa_dict_item { key: pw::PW_KEY_MODULE_USAGE.as_ptr().cast(), value: USAGE.as_ptr() },
        spa::spa_dict_item { key: pw::PW_KEY_MODULE_VERSION.as_ptr().cast(), value: VERSION.as_ptr() },
    ];
    let dict = spa::spa_dict { flags: 0, n_items: items.len() as u32, items: items.as_ptr() };
    // SAFETY: module is live; the dict and its strings are copied by the call.
    unsafe { sys::pw_impl_module_update_properties(module, &dict) };
    Ok(())
}

/// The entry point PipeWire calls after dlopen'ing the module.
///
/// # Safety
/// Called by PipeWire's module loader with a live module and null or a C string.
#[no_mangle]
pub unsafe extern "C" fn pipewire__module_init(module: *mut pw::pw_impl_module, args: *const c_char) -> c_int {
    // SAFETY: the loader's contract is init's contract.
    match catch_unwind(AssertUnwindSafe(|| unsafe { init(module, args) })) {
        Ok(Ok(())) => 0,
        Ok(Err(res)) => res,
        Err(_) => {
            error!("asio-bridge module: panic while loading");
            -libc::EIO
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(args: &CStr) -> Props {
        bridge_props(Some(args), Some(c"8192")).unwrap()
    }

    #[test]
    fn object_arguments_as_in_a_context_modules_entry() {
        let p = props(c"{ node.name = bridge-x node.description = \"ASIO Bridge\" asio.inputs = 4 asio.rates = [ 44100 48000 ] }");
        assert_eq!(p.get(c"node.name").as_deref(), Some("bridge-x"));
        assert_eq!(p.get(c"node.description").as_deref(), Some("ASIO Bridge"));
        assert_eq!(p.get(c"asio.inputs").as_deref(), Some("4"));
        assert_eq!(p.get(c"asio.rates").as_deref(), Some("[ 44100 48000 ]"));
        assert_eq!(p.get(c"clock.quantum-limit").as_deref(), Some("8192"));
    }

    #[test]
    fn key_value_arguments_too() {
        let p = props(c"node.name=bridge-y asio.outputs=8 asio.rates=[44100,48000]");
        assert_eq!(p.get(c"node.name").as_deref(), Some("bridge-y"));
        assert_eq!(p.get(c"asio.outputs").as_deref(), Some("8"));
        assert_eq!(p.get(c"asio.rates").as_deref(), Some("[44100,48000]"));
    }

    #[test]
    fn key_value_pairs_inside_an_object() {
        let p = props(c"{ node.name=bridge-z asio.rates=[44100,48000,96000] asio.power-of-two-quantum=false }");
        assert_eq!(p.get(c"node.name").as_deref(), Some("bridge-z"));
        assert_eq!(p.get(c"asio.rates").as_deref(), Some("[44100,48000,96000]"));
        assert_eq!(p.get(c"asio.power-of-two-quantum").as_deref(), Some("false"));
    }

    #[test]
    fn error_text_without_the_number() {
        assert_eq!(strerror(-libc::EINVAL), "Invalid argument");
        assert_eq!(strerror(libc::ENOENT), "No such file or directory");
    }

    #[test]
    fn the_loader_keys_are_always_the_bridges() {
        let p = props(c"{ factory.name = audiotestsrc library.name = audiotestsrc/libspa-audiotestsrc }");
        assert_eq!(p.get(c"factory.name").as_deref(), Some("api.asio.bridge"));
        assert_eq!(p.get(c"library.name").as_deref(), Some("asio-bridge/libspa-asio-bridge"));
        let none = bridge_props(None, None).unwrap();
        assert_eq!(none.get(c"factory.name").as_deref(), Some("api.asio.bridge"));
        assert_eq!(none.get(c"node.name"), None);
        assert_eq!(none.get(c"clock.quantum-limit"), None);
    }
}
