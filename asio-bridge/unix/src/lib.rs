//! The unix half of the Wine ASIO driver. Wine pairs `asiobridge.so` with
//! `asiobridge.dll` and the PE half calls the functions of
//! `__wine_unix_call_funcs` through `__wine_unix_call`, on Wine's own
//! threads and small kernel stack.
//!
//! The attach and wait code is the client crate's, the same the reference
//! client runs. Every entry catches panics: unwinding into Wine would take
//! the DAW down.

use asio_bridge_client::{Session, WaitError};
use std::{
    ffi::{c_void, CStr},
    panic::{catch_unwind, AssertUnwindSafe},
    time::Duration,
};

#[allow(non_camel_case_types, non_upper_case_globals, dead_code)]
pub mod sys {
    include!(concat!(env!("OUT_DIR"), "/unixlib.rs"));
}
use sys::*;

use static_assertions::const_assert_eq;
const_assert_eq!(std::mem::size_of::<asio_bridge_attach_params>(), 8 + 8 + 8 + 8 + 124 + 4);
const_assert_eq!(std::mem::size_of::<asio_bridge_wait_params>(), 56);
const_assert_eq!(std::mem::offset_of!(asio_bridge_wait_params, position), 32);
const_assert_eq!(std::mem::size_of::<asio_bridge_realtime_params>(), 8);

type NtStatus = u32;
const STATUS_SUCCESS: NtStatus = 0;
const STATUS_UNSUCCESSFUL: NtStatus = 0xC000_0001;
const STATUS_INVALID_PARAMETER: NtStatus = 0xC000_000D;

type UnixCall = unsafe extern "C" fn(*mut c_void) -> NtStatus;

/// What Wine looks up in this library, indexed by `asio_bridge_unix_call`.
#[no_mangle]
pub static __wine_unix_call_funcs: [UnixCall; ASIO_BRIDGE_UNIX_CALL_COUNT as usize] = [attach, detach, wait, set_realtime];

/// Runs an entry with its params, mapping a NULL pointer and a panic to a status.
fn entry<T>(args: *mut c_void, f: impl FnOnce(&mut T) -> NtStatus) -> NtStatus {
    if args.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: the PE half passes a pointer to the params struct of this call,
    // defined once in unixlib.h, valid for the duration of the call.
    let params = unsafe { &mut *args.cast::<T>() };
    catch_unwind(AssertUnwindSafe(|| f(params))).unwrap_or(STATUS_UNSUCCESSFUL)
}

fn c_arg<'a>(p: *const std::ffi::c_char, default: &'a str) -> std::borrow::Cow<'a, str> {
    if p.is_null() {
        return default.into();
    }
    // SAFETY: the PE half passes NUL-terminated strings that outlive the call.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned().into()
}

/// The handle is the Box of the session, owned by the PE half until detach.
fn session<'a>(handle: u64) -> Option<&'a mut Session> {
    // SAFETY: handles come from `attach` and are used until `detach`; the PE
    // half serialises calls on one session (only the callback thread waits).
    unsafe { (handle as *mut Session).as_mut() }
}

unsafe extern "C" fn attach(args: *mut c_void) -> NtStatus {
    entry(args, |p: &mut asio_bridge_attach_params| {
        let node = c_arg(p.node, asio_bridge_abi::default_node());
        let client = c_arg(p.client, "a Windows program");
        match Session::attach(&node, &client) {
            Ok(s) => {
                p.shm = s.shm().cast_mut();
                p.session = Box::into_raw(Box::new(s)) as u64;
                STATUS_SUCCESS
            }
            Err(e) => {
                asio_bridge_abi::copy_c_str(&mut p.error, &e.to_string());
                STATUS_UNSUCCESSFUL
            }
        }
    })
}

unsafe extern "C" fn detach(args: *mut c_void) -> NtStatus {
    entry(args, |p: &mut asio_bridge_detach_params| {
        if p.session != 0 {
            // SAFETY: the handle is a Box from `attach`, detached once.
            drop(unsafe { Box::from_raw(p.session as *mut Session) });
            p.session = 0;
        }
        STATUS_SUCCESS
    })
}

/// The callback thread's wait: no allocation, no lock, a hard deadline.
unsafe extern "C" fn wait(args: *mut c_void) -> NtStatus {
    entry(args, |p: &mut asio_bridge_wait_params| {
        let Some(s) = session(p.session) else { return STATUS_INVALID_PARAMETER };
        match s.wait(Duration::from_millis(p.timeout_ms as u64)) {
            Ok(c) => {
                p.result = ASIO_BRIDGE_WAIT_CYCLE;
                p.seq = c.seq;
                p.half = c.half;
                p.frames = c.frames;
                p.rate = c.rate;
                p.position = c.position;
                p.nsec = c.nsec;
                p.missed = c.missed;
                p.late_cycles = c.late_cycles;
            }
            Err(WaitError::Timeout) => p.result = ASIO_BRIDGE_WAIT_TIMEOUT,
            Err(WaitError::Detached) => p.result = ASIO_BRIDGE_WAIT_DETACHED,
        }
        STATUS_SUCCESS
    })
}

/// Raises the calling (Wine) thread to SCHED_FIFO; EPERM where the user
/// may not, which the driver accepts quietly.
unsafe extern "C" fn set_realtime(args: *mut c_void) -> NtStatus {
    entry(args, |p: &mut asio_bridge_realtime_params| {
        let param = libc::sched_param { sched_priority: p.priority.clamp(1, 99) };
        // SAFETY: plain syscall on the calling thread.
        p.result = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
        STATUS_SUCCESS
    })
}
