//! The driver's callback loop allocates nothing: the unix half's `process`
//! entry point (the one the PE half calls for each host buffer), FIFOs
//! included, runs under an allocator that fails any allocation while armed,
//! against a real daemon's bridge.

use asio_bridge_tests::{fragment, Daemon};
use asiobridge::{__wine_unix_call_funcs, sys::*};
use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    ffi::c_void,
};

struct RtGuard;
thread_local!(static ARMED: Cell<bool> = const { Cell::new(false) });
// SAFETY: forwards to the system allocator; only adds the check.
unsafe impl GlobalAlloc for RtGuard {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if ARMED.with(|a| a.replace(false)) {
            panic!("allocation of {} bytes in the callback loop", l.size());
        }
        // SAFETY: the caller's layout, passed on unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if ARMED.with(|a| a.replace(false)) {
            panic!("deallocation in the callback loop");
        }
        // SAFETY: a block System allocated with this layout.
        unsafe { System.dealloc(p, l) }
    }
}
#[global_allocator]
static GUARD: RtGuard = RtGuard;

fn call<T>(code: u32, params: &mut T) -> u32 {
    // SAFETY: the entry for `code` takes a pointer to its params struct.
    unsafe { __wine_unix_call_funcs[code as usize]((params as *mut T).cast::<c_void>()) }
}

#[test]
fn the_process_loop_allocates_nothing() {
    let daemon = Daemon::start("callback-rt", &[("50-asio-bridge.conf", &fragment("50-asio-bridge.conf"))]);
    daemon.node("asio-bridge");
    // Host buffers of half the quantum: two per cycle, through the FIFOs.
    daemon.force_quantum(256);
    // SAFETY: the same process reads the daemon's runtime dir from here on.
    unsafe { std::env::set_var("XDG_RUNTIME_DIR", &daemon.runtime) };
    let mut attach = asio_bridge_attach_params { node: c"asio-bridge".as_ptr() as u64, client: c"rt-test".as_ptr() as u64, error: [0; 124], ..Default::default() };
    assert_eq!(call(ASIO_BRIDGE_UNIX_ATTACH, &mut attach), 0, "{}", asio_bridge_abi::c_str(&attach.error));
    let frames = 128u32;
    let mut host = vec![0f32; 2 * 4 * frames as usize];
    let mut prepare = asio_bridge_prepare_params { session: attach.session, buffers: host.as_mut_ptr() as u64, frames, padding: 0 };
    assert_eq!(call(ASIO_BRIDGE_UNIX_PREPARE, &mut prepare), 0);
    let mut process = asio_bridge_process_params { session: attach.session, timeout_ms: 1000, ..Default::default() };
    let mut blocks = 0;
    ARMED.with(|a| a.set(true));
    for _ in 0..200 {
        if call(ASIO_BRIDGE_UNIX_PROCESS, &mut process) == 0 && process.result == ASIO_BRIDGE_PROCESS_BLOCK {
            blocks += 1;
        }
    }
    let armed = ARMED.with(|a| a.replace(false));
    assert!(armed, "something allocated in the loop and disarmed the guard");
    assert!(blocks > 150, "only {blocks} host buffers");
    assert_eq!(process.frames, 256);
    // Pipelined: one quantum, plus nothing for the FIFO (128 divides 256).
    assert_eq!((process.input_latency, process.output_latency), (0, 256));
    prepare.buffers = 0;
    assert_eq!(call(ASIO_BRIDGE_UNIX_PREPARE, &mut prepare), 0);
    let mut detach = asio_bridge_detach_params { session: attach.session };
    assert_eq!(call(ASIO_BRIDGE_UNIX_DETACH, &mut detach), 0);
}
