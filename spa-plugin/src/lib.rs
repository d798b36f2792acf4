//! PipeWire ASIO Bridge: the SPA plugin the daemon loads.
//!
//! This file is the FFI edge: the factory the daemon finds through
//! `spa_handle_factory_enum`, the handle, and the node method table, each
//! entry a thin trampoline into `node::Node`. Every entry catches panics, so
//! a bug here fails one call instead of taking the daemon down.

mod config;
pub mod cycle;
mod latency;
mod node;
mod params;
pub mod ports;
mod socket;
mod support;
mod text;
mod throttle;

pub use config::{Config, ConfigError, Mode};
pub use node::Rt;

use libspa_sys as spa;
use node::Node;
use std::{
    ffi::{c_char, c_int, c_void, CStr},
    panic::{catch_unwind, AssertUnwindSafe},
    ptr,
};
use support::{DataLoop, Log, MainLoop};

/// The factory name a config refers to (`factory.name`).
pub const FACTORY_NAME: &CStr = c"api.asio.bridge";

/// Runs `f`, turning a panic into `fallback`.
fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

const EIO: c_int = -libc::EIO;

/// The memory the daemon allocates for a handle (8-byte aligned only, so
/// the node itself lives in a Box).
#[repr(C)]
struct Handle {
    handle: spa::spa_handle,
    node: *mut Node,
}

/// Main thread only: the node methods the daemon calls there.
///
/// # Safety
/// `object` is the `cb.data` of a node interface this plugin created.
unsafe fn node<'a>(object: *mut c_void) -> &'a mut Node {
    // SAFETY: per the function contract; the daemon serialises main-thread
    // calls. The data loop never forms a reference to the Node (see
    // `data_loop_rt`), only to its Rt, which sits in an UnsafeCell.
    unsafe { &mut *object.cast::<Node>() }
}

/// Data loop only: the Rt of the node, without forming `&Node` or
/// `&mut Node` (the main thread may hold one at the same time).
///
/// # Safety
/// `object` is the `cb.data` of a node interface this plugin created, and
/// the caller runs on the node's data loop.
unsafe fn data_loop_rt<'a>(object: *mut c_void) -> &'a mut Rt {
    // SAFETY: per the function contract.
    unsafe { Node::rt_of(object.cast_const().cast::<Node>()) }
}

macro_rules! method {
    ($name:ident($($arg:ident: $t:ty),*) $body:expr) => {
        unsafe extern "C" fn $name(object: *mut c_void $(, $arg: $t)*) -> c_int {
            // SAFETY: the daemon calls node methods with the object it got
            // from get_interface.
            guard(EIO, || { let n = unsafe { node(object) }; $body(n) })
        }
    };
}

method!(add_listener(listener: *mut spa::spa_hook, events: *const spa::spa_node_events, data: *mut c_void)
    |n: &mut Node| n.add_listener(listener, events, data));
method!(set_callbacks(_cb: *const spa::spa_node_callbacks, _data: *mut c_void) |_n: &mut Node| 0);
method!(sync(seq: c_int) |n: &mut Node| n.sync(seq));
method!(enum_params(_seq: c_int, _id: u32, _start: u32, _max: u32, _filter: *const spa::spa_pod) |_n: &mut Node| 0);
method!(set_param(_id: u32, _flags: u32, _param: *const spa::spa_pod) |_n: &mut Node| -libc::ENOENT);
method!(set_io(id: u32, data: *mut c_void, _size: usize) |n: &mut Node| n.set_io(id, data));
method!(send_command(_command: *const spa::spa_command) |_n: &mut Node| 0);
method!(add_port(_d: spa::spa_direction, _id: u32, _props: *const spa::spa_dict) |_n: &mut Node| -libc::ENOTSUP);
method!(remove_port(_d: spa::spa_direction, _id: u32) |_n: &mut Node| -libc::ENOTSUP);
method!(port_enum_params(seq: c_int, d: spa::spa_direction, port: u32, id: u32, start: u32, max: u32, filter: *const spa::spa_pod)
    |n: &mut Node| n.port_enum_params(seq, d, port, id, start, max, filter));
method!(port_set_param(d: spa::spa_direction, port: u32, id: u32, _flags: u32, param: *const spa::spa_pod)
    |n: &mut Node| n.port_set_param(d, port, id, param));
method!(port_use_buffers(d: spa::spa_direction, port: u32, _flags: u32, buffers: *mut *mut spa::spa_buffer, count: u32)
    |n: &mut Node| n.port_use_buffers(d, port, buffers, count));
method!(port_set_io(d: spa::spa_direction, port: u32, id: u32, data: *mut c_void, size: usize)
    |n: &mut Node| n.port_set_io(d, port, id, data, size));

/// Data loop: called by the peer when it is done with an output buffer.
unsafe extern "C" fn port_reuse_buffer(object: *mut c_void, port: u32, buffer: u32) -> c_int {
    // SAFETY: data-loop call on our node; only the Rt part is touched.
    guard(EIO, || match unsafe { data_loop_rt(object) }.port(spa::SPA_DIRECTION_OUTPUT, port) {
        Some(p) => {
            p.recycle(buffer);
            0
        }
        None => -libc::EINVAL,
    })
}

/// Data loop: one graph cycle.
unsafe extern "C" fn process(object: *mut c_void) -> c_int {
    // SAFETY: data-loop call on our node; only the Rt part is touched.
    guard(EIO, || unsafe { data_loop_rt(object) }.process())
}

pub(crate) static NODE_METHODS: spa::spa_node_methods = spa::spa_node_methods {
    version: spa::SPA_VERSION_NODE_METHODS,
    add_listener: Some(add_listener),
    set_callbacks: Some(set_callbacks),
    sync: Some(sync),
    enum_params: Some(enum_params),
    set_param: Some(set_param),
    set_io: Some(set_io),
    send_command: Some(send_command),
    add_port: Some(add_port),
    remove_port: Some(remove_port),
    port_enum_params: Some(port_enum_params),
    port_set_param: Some(port_set_param),
    port_use_buffers: Some(port_use_buffers),
    port_set_io: Some(port_set_io),
    port_reuse_buffer: Some(port_reuse_buffer),
    process: Some(process),
};

unsafe extern "C" fn get_interface(handle: *mut spa::spa_handle, type_: *const c_char, iface: *mut *mut c_void) -> c_int {
    guard(EIO, || {
        // SAFETY: the daemon passes our handle, a C string and an out-pointer.
        unsafe {
            if handle.is_null() || type_.is_null() || iface.is_null() {
                return -libc::EINVAL;
            }
            if CStr::from_ptr(type_).to_bytes_with_nul() != spa::SPA_TYPE_INTERFACE_Node {
                return -libc::ENOENT;
            }
            *iface = (&mut (*(*handle.cast::<Handle>()).node).iface as *mut spa::spa_node).cast();
        }
        0
    })
}

unsafe extern "C" fn clear(handle: *mut spa::spa_handle) -> c_int {
    guard(EIO, || {
        // SAFETY: our handle; the node Box was leaked in init and is
        // reclaimed exactly once here.
        unsafe {
            let h = &mut *handle.cast::<Handle>();
            if !h.node.is_null() {
                drop(Box::from_raw(h.node));
                h.node = ptr::null_mut();
            }
        }
        0
    })
}

unsafe extern "C" fn get_size(_factory: *const spa::spa_handle_factory, _params: *const spa::spa_dict) -> usize {
    std::mem::size_of::<Handle>()
}

/// Looks a key up in an SPA dict.
///
/// # Safety
/// `dict` is NULL or a valid dict whose strings outlive the returned value.
unsafe fn lookup<'a>(dict: *const spa::spa_dict, key: &str) -> Option<&'a str> {
    // SAFETY: per the function contract.
    let dict = unsafe { dict.as_ref()? };
    if dict.items.is_null() {
        return None;
    }
    // SAFETY: a valid dict has `n_items` items with C-string keys and values.
    let items = unsafe { std::slice::from_raw_parts(dict.items, dict.n_items as usize) };
    items.iter().find_map(|i| unsafe {
        (!i.key.is_null() && !i.value.is_null() && CStr::from_ptr(i.key).to_bytes() == key.as_bytes())
            .then(|| CStr::from_ptr(i.value).to_str().ok())
            .flatten()
    })
}

unsafe extern "C" fn init(
    _factory: *const spa::spa_handle_factory,
    handle: *mut spa::spa_handle,
    info: *const spa::spa_dict,
    support: *const spa::spa_support,
    n_support: u32,
) -> c_int {
    guard(EIO, || {
        // SAFETY: the daemon passes its support array of `n_support` entries.
        let find = |t: &[u8]| unsafe { support::find(support, n_support, t) };
        let log = Log::new(find(spa::SPA_TYPE_INTERFACE_Log));
        let (utils, data_loop) = (find(spa::SPA_TYPE_INTERFACE_LoopUtils), find(spa::SPA_TYPE_INTERFACE_DataLoop));
        if handle.is_null() || utils.is_null() || data_loop.is_null() {
            log.error("asio-bridge: the daemon provided no main loop or data loop");
            return -libc::EINVAL;
        }
        // SAFETY: `info` is the daemon's dict, alive during init.
        let config = match Config::from_props(|k| unsafe { lookup(info, k) }, support::rounds_forced_quanta()) {
            Ok(c) => c,
            Err(e) => {
                log.error(&format!("asio-bridge: {e}"));
                return -libc::EINVAL;
            }
        };
        let name = config.node_name.clone();
        match Node::new(config, log, MainLoop::new(utils), DataLoop::new(data_loop)) {
            Ok(node) => {
                // SAFETY: `handle` points at get_size() bytes the daemon
                // allocated for us.
                unsafe {
                    handle.cast::<Handle>().write(Handle {
                        handle: spa::spa_handle { version: spa::SPA_VERSION_HANDLE, get_interface: Some(get_interface), clear: Some(clear) },
                        node: Box::into_raw(node),
                    });
                }
                0
            }
            Err(e) => {
                Log::new(find(spa::SPA_TYPE_INTERFACE_Log)).error(&format!("asio-bridge '{name}': {e}"));
                -libc::EIO
            }
        }
    })
}

struct Interfaces([spa::spa_interface_info; 1]);
// SAFETY: immutable static data of pointers to static C strings.
unsafe impl Sync for Interfaces {}
static INTERFACES: Interfaces = Interfaces([spa::spa_interface_info { type_: spa::SPA_TYPE_INTERFACE_Node.as_ptr().cast() }]);

unsafe extern "C" fn enum_interface_info(
    _factory: *const spa::spa_handle_factory,
    info: *mut *const spa::spa_interface_info,
    index: *mut u32,
) -> c_int {
    // SAFETY: out-pointers from the daemon.
    unsafe {
        if info.is_null() || index.is_null() {
            return -libc::EINVAL;
        }
        match INTERFACES.0.get(*index as usize) {
            Some(i) => {
                *info = i;
                *index += 1;
                1
            }
            None => 0,
        }
    }
}

struct Factory(spa::spa_handle_factory);
// SAFETY: immutable static data of pointers to static C strings and functions.
unsafe impl Sync for Factory {}
static FACTORY: Factory = Factory(spa::spa_handle_factory {
    version: spa::SPA_VERSION_HANDLE_FACTORY,
    name: FACTORY_NAME.as_ptr(),
    info: ptr::null(),
    get_size: Some(get_size),
    init: Some(init),
    enum_interface_info: Some(enum_interface_info),
});

/// The one symbol the daemon looks up.
///
/// # Safety
/// Called by the daemon with valid out-pointers.
#[no_mangle]
pub unsafe extern "C" fn spa_handle_factory_enum(factory: *mut *const spa::spa_handle_factory, index: *mut u32) -> c_int {
    if factory.is_null() || index.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: valid out-pointers per the contract.
    unsafe {
        if *index == 0 {
            *factory = &FACTORY.0;
            *index += 1;
            1
        } else {
            0
        }
    }
}
