//! The unix half of the Wine ASIO driver. Wine pairs `asiobridge.so` with
//! `asiobridge.dll` and the PE half calls the functions of
//! `__wine_unix_call_funcs` through `__wine_unix_call`, on Wine's own
//! threads and small kernel stack.
//!
//! The attach and wait code is the client crate's, the same the reference
//! client runs. Every entry catches panics: unwinding into Wine would take
//! the DAW down.

use asio_bridge_client::{
    reblock::{start_delay, Channels, CycleInfo, Reblocker},
    Cursor, Cycle, Direction, Session, WaitError,
};
use std::{
    cell::UnsafeCell,
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
// The same numbers as unixlib.h's C asserts, on x86_64 and i686 alike.
const_assert_eq!(std::mem::size_of::<asio_bridge_attach_params>(), 168);
const_assert_eq!(std::mem::offset_of!(asio_bridge_attach_params, session), 24);
const_assert_eq!(std::mem::offset_of!(asio_bridge_attach_params, error), 40);
const_assert_eq!(std::mem::size_of::<asio_bridge_detach_params>(), 8);
const_assert_eq!(std::mem::size_of::<asio_bridge_request_params>(), 24);
const_assert_eq!(std::mem::size_of::<asio_bridge_latencies_params>(), 24);
const_assert_eq!(std::mem::size_of::<asio_bridge_prepare_params>(), 24);
const_assert_eq!(std::mem::size_of::<asio_bridge_process_params>(), 72);
const_assert_eq!(std::mem::offset_of!(asio_bridge_process_params, nsec), 40);
const_assert_eq!(std::mem::offset_of!(asio_bridge_process_params, wake_nsec), 64);
const_assert_eq!(std::mem::size_of::<asio_bridge_clock_params>(), 8);
const_assert_eq!(std::mem::size_of::<asio_bridge_realtime_params>(), 16);

type NtStatus = u32;
const STATUS_SUCCESS: NtStatus = 0;
const STATUS_UNSUCCESSFUL: NtStatus = 0xC000_0001;
const STATUS_INVALID_PARAMETER: NtStatus = 0xC000_000D;

type UnixCall = unsafe extern "C" fn(*mut c_void) -> NtStatus;

/// What Wine looks up in this library, indexed by `asio_bridge_unix_call`.
#[no_mangle]
pub static __wine_unix_call_funcs: [UnixCall; ASIO_BRIDGE_UNIX_CALL_COUNT as usize] =
    [attach, detach, request, latencies_for, prepare, process, set_realtime, clock];

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

/// An address the PE half passed as a uint64_t (see unixlib.h): one of
/// this process's, so it fits a pointer.
fn address<T>(a: u64) -> *mut T {
    a as usize as *mut T
}

fn c_arg<'a>(p: *const std::ffi::c_char, default: &'a str) -> std::borrow::Cow<'a, str> {
    if p.is_null() {
        return default.into();
    }
    // SAFETY: the PE half passes NUL-terminated strings that outlive the call.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned().into()
}

/// The host's buffers, as the PE half laid them out.
struct HostBuffers {
    base: *mut f32,
    frames: usize,
    inputs: u32,
    outputs: u32,
}

impl HostBuffers {
    fn channel(&mut self, half: u32, direction: Direction, ch: u32) -> &mut [f32] {
        let per_half = (self.inputs + self.outputs) as usize;
        let index = match direction {
            Direction::Input => ch,
            Direction::Output => self.inputs + ch,
        } as usize;
        // The callback thread's path: out of range is an empty channel, not a panic.
        if half >= 2 || index >= per_half {
            return &mut [];
        }
        // SAFETY: the PE half allocated 2 * per_half * frames floats at
        // `base` and keeps them until it releases them through `prepare`,
        // which it does only with the callback thread stopped; the index is
        // in range (checked above).
        unsafe { std::slice::from_raw_parts_mut(self.base.add((half as usize * per_half + index) * self.frames), self.frames) }
    }
}

/// One direction of one host half, as the reblocker sees it.
struct HostHalf<'a>(&'a mut HostBuffers, u32, Direction);

impl Channels for HostHalf<'_> {
    fn channel(&mut self, ch: u32) -> &mut [f32] {
        self.0.channel(self.1, self.2, ch)
    }
}

/// The input or the output half of a graph cycle in the shared memory.
/// Only the callback thread makes these; COM calls never touch the halves.
struct CycleHalf<'a>(&'a Session, Cycle, Direction);

impl Channels for CycleHalf<'_> {
    fn channel(&mut self, ch: u32) -> &mut [f32] {
        let Some(p) = self.0.buffer_ptr(self.1.half, self.2, ch) else { return &mut [] };
        let len = match self.2 {
            Direction::Input => self.1.frames,
            Direction::Output => self.0.layout().max_frames,
        };
        // SAFETY: a buffer of `max_frames` >= `len` floats inside the
        // mapping. The input half: the node wrote it for this cycle and does
        // not touch it again before the next-but-one cycle; the reblocker
        // only reads it. The output half: the node reads it only after
        // `complete_with`. Only the callback thread forms slices of either,
        // one at a time (`&mut self`).
        unsafe { std::slice::from_raw_parts_mut(p, len as usize) }
    }
}

/// The callback thread's state between host buffers.
struct Engine {
    host: HostBuffers,
    reblocker: Reblocker,
    /// The cycle being worked through, if its output half is not written yet.
    cycle: Option<Cycle>,
    /// The host half handed out last and not yet taken back.
    handed_out: Option<u32>,
    next_half: u32,
    /// Which graph cycle this thread saw last.
    cursor: Cursor,
    /// A cycle published before the host started has less than a quantum
    /// left: it is completed with silence, not given to the host.
    fresh: bool,
    /// When the wait that brought `cycle` began and returned, CLOCK_MONOTONIC ns.
    waited: u64,
    woken: u64,
}

/// What a handle points at: the attachment, used through `&Session` by
/// both the COM side and the callback thread, and, while buffers exist, the
/// engine, which belongs to the callback thread alone.
///
/// No `&mut Driver` is ever formed while the handle is live: COM calls
/// (`request`, `latencies_for`) and the callback thread (`process`) may
/// run at the same time, and `Session`'s methods they use take `&self`
/// (its shared words are atomics). The engine sits in an UnsafeCell that
/// exactly two entries open: `process`, on the callback thread, and
/// `prepare`, which the PE half calls only while that thread is stopped.
struct Driver {
    session: Session,
    engine: UnsafeCell<Option<Engine>>,
}

/// The handle is the Box of the driver, owned by the PE half until detach.
fn driver<'a>(handle: u64) -> Option<&'a Driver> {
    // SAFETY: handles come from `attach` and are used until `detach`, which
    // the PE half calls only after every other call on the handle returned.
    // Only a shared reference is formed: see `Driver`.
    unsafe { (handle as *const Driver).as_ref() }
}

/// The callback thread's state.
///
/// # Safety
/// Only from `process` on the callback thread, or from `prepare` while the
/// callback thread is stopped (the PE half's contract): one user at a time.
#[allow(clippy::mut_from_ref)]
unsafe fn engine(d: &Driver) -> &mut Option<Engine> {
    // SAFETY: per the contract, no other reference to the engine exists.
    unsafe { &mut *d.engine.get() }
}

/// Upstream latency for the input; the node's and the FIFOs' delay plus
/// downstream latency for the output.
fn latencies(cycle: &Cycle, delay: u32) -> (u32, u32) {
    (cycle.upstream_latency, delay.saturating_add(cycle.downstream_latency))
}

unsafe extern "C" fn attach(args: *mut c_void) -> NtStatus {
    entry(args, |p: &mut asio_bridge_attach_params| {
        let node = c_arg(address(p.node), asio_bridge_abi::default_node());
        let client = c_arg(address(p.client), "a Windows program");
        let mut hello = asio_bridge_abi::asio_bridge_hello::with_name(&client);
        hello.flags = p.hello_flags;
        match Session::attach_with(&node, hello) {
            Ok(s) => {
                p.shm = s.shm() as usize as u64;
                p.session = Box::into_raw(Box::new(Driver { session: s, engine: UnsafeCell::new(None) })) as u64;
                STATUS_SUCCESS
            }
            // The socket path does not fit getErrorMessage's 124 bytes:
            // what the user can do does.
            Err(asio_bridge_client::AttachError::NoNode { node, .. }) => {
                let text = format!("PipeWire is not running the ASIO bridge '{node}': start PipeWire, or check the driver's Node setting");
                asio_bridge_abi::copy_c_str(&mut p.error, &text);
                STATUS_UNSUCCESSFUL
            }
            Err(e) => {
                asio_bridge_abi::copy_c_str(&mut p.error, &e.to_string());
                STATUS_UNSUCCESSFUL
            }
        }
    })
}

/// How long detach waits for the node to let go: its main loop answers
/// within milliseconds unless the daemon is stuck.
const DETACH_WAIT: Duration = Duration::from_secs(1);

unsafe extern "C" fn detach(args: *mut c_void) -> NtStatus {
    entry(args, |p: &mut asio_bridge_detach_params| {
        if p.session != 0 {
            // SAFETY: the handle is a Box from `attach`, detached once.
            let Driver { session, engine } = *unsafe { Box::from_raw(p.session as *mut Driver) };
            drop(engine);
            // Returns once the node is free again: hosts re-open the
            // driver right after releasing it (RtAudio on every open).
            session.close(DETACH_WAIT);
            p.session = 0;
        }
        STATUS_SUCCESS
    })
}

unsafe extern "C" fn request(args: *mut c_void) -> NtStatus {
    entry(args, |p: &mut asio_bridge_request_params| {
        let Some(d) = driver(p.session) else { return STATUS_INVALID_PARAMETER };
        p.result = match d.session.request(p.quantum, p.rate) {
            Ok(()) => 0,
            Err(e) => e.raw_os_error().unwrap_or(libc::EIO),
        };
        STATUS_SUCCESS
    })
}

/// The latencies host buffers of `frames` will have on the graph as it runs.
unsafe extern "C" fn latencies_for(args: *mut c_void) -> NtStatus {
    entry(args, |p: &mut asio_bridge_latencies_params| {
        let Some(d) = driver(p.session) else { return STATUS_INVALID_PARAMETER };
        let cycle = d.session.latest();
        (p.input, p.output) = latencies(&cycle, start_delay(p.frames, cycle.frames, d.session.same_cycle()));
        STATUS_SUCCESS
    })
}

unsafe extern "C" fn prepare(args: *mut c_void) -> NtStatus {
    entry(args, |p: &mut asio_bridge_prepare_params| {
        let Some(d) = driver(p.session) else { return STATUS_INVALID_PARAMETER };
        // SAFETY: the PE half calls prepare only with the callback thread stopped.
        let engine = unsafe { engine(d) };
        *engine = None;
        let buffers: *mut f32 = address(p.buffers);
        if buffers.is_null() {
            return STATUS_SUCCESS;
        }
        let l = *d.session.layout();
        if p.frames == 0 || p.frames > l.max_frames {
            return STATUS_INVALID_PARAMETER;
        }
        *engine = Some(Engine {
            host: HostBuffers { base: buffers, frames: p.frames as usize, inputs: l.n_inputs, outputs: l.n_outputs },
            reblocker: Reblocker::new(p.frames, l.n_inputs, l.n_outputs, l.max_frames, d.session.same_cycle()),
            cycle: None,
            handed_out: None,
            next_half: 0,
            cursor: d.session.cursor(),
            fresh: true,
            waited: 0,
            woken: 0,
        });
        STATUS_SUCCESS
    })
}

/// The callback thread's call: no allocation, no lock, a hard deadline.
unsafe extern "C" fn process(args: *mut c_void) -> NtStatus {
    entry(args, |p: &mut asio_bridge_process_params| {
        let Some(d) = driver(p.session) else { return STATUS_INVALID_PARAMETER };
        // SAFETY: `process` is called only on the callback thread.
        let Some(e) = (unsafe { engine(d) }).as_mut() else { return STATUS_INVALID_PARAMETER };
        let session = &d.session;
        if let Some(half) = e.handed_out.take() {
            e.reblocker.end_block(&mut HostHalf(&mut e.host, half, Direction::Output));
        }
        let timeout = Duration::from_millis(p.timeout_ms as u64);
        loop {
            if let Some(cycle) = e.cycle {
                if e.reblocker.next_block(&mut HostHalf(&mut e.host, e.next_half, Direction::Input)) {
                    p.result = ASIO_BRIDGE_PROCESS_BLOCK;
                    p.half = e.next_half;
                    e.handed_out = Some(e.next_half);
                    e.next_half ^= 1;
                    (p.frames, p.rate, p.late_cycles, p.nsec) = (cycle.frames, cycle.rate, cycle.late_cycles, cycle.nsec);
                    (p.publish_nsec, p.wait_nsec, p.wake_nsec) = (cycle.publish_nsec, e.waited, e.woken);
                    (p.input_latency, p.output_latency) = latencies(&cycle, e.reblocker.delay());
                    return STATUS_SUCCESS;
                }
                let written = e.reblocker.end_cycle(&mut CycleHalf(session, cycle, Direction::Output));
                session.complete_with(&cycle, written);
                e.cycle = None;
            }
            let wait = if e.fresh { Duration::ZERO } else { timeout };
            e.waited = asio_bridge_abi::monotonic_nsec();
            let waited = e.cursor.wait(session, wait);
            e.woken = asio_bridge_abi::monotonic_nsec();
            match waited {
                Ok(cycle) if e.fresh => {
                    e.fresh = false;
                    session.complete_with(&cycle, 0);
                }
                Ok(cycle) => {
                    let info = CycleInfo { frames: cycle.frames, missed: cycle.missed, late_cycles: cycle.late_cycles };
                    e.reblocker.begin_cycle(info, &mut CycleHalf(session, cycle, Direction::Input));
                    e.cycle = Some(cycle);
                }
                Err(WaitError::Timeout) if e.fresh => e.fresh = false,
                Err(WaitError::Timeout) => {
                    p.result = ASIO_BRIDGE_PROCESS_TIMEOUT;
                    return STATUS_SUCCESS;
                }
                Err(WaitError::Detached) => {
                    p.result = ASIO_BRIDGE_PROCESS_DETACHED;
                    return STATUS_SUCCESS;
                }
            }
        }
    })
}

/// Raises the calling (Wine) thread to SCHED_FIFO (EPERM where the user
/// may not, which the driver accepts quietly) and reports the policy and
/// priority the thread has afterwards. Priority <= 0 only reports.
unsafe extern "C" fn set_realtime(args: *mut c_void) -> NtStatus {
    entry(args, |p: &mut asio_bridge_realtime_params| {
        p.result = 0;
        if p.priority > 0 {
            let param = libc::sched_param { sched_priority: p.priority.min(99) };
            // SAFETY: plain syscall on the calling thread.
            p.result = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
        }
        let mut param = libc::sched_param { sched_priority: 0 };
        let mut policy = 0;
        // SAFETY: plain syscall on the calling thread, writing two locals.
        if unsafe { libc::pthread_getschedparam(libc::pthread_self(), &mut policy, &mut param) } == 0 {
            (p.policy, p.got_priority) = (policy, param.sched_priority);
        } else {
            (p.policy, p.got_priority) = (-1, 0);
        }
        STATUS_SUCCESS
    })
}

/// CLOCK_MONOTONIC for the PE half, which has no way to read it itself.
unsafe extern "C" fn clock(args: *mut c_void) -> NtStatus {
    entry(args, |p: &mut asio_bridge_clock_params| {
        p.nsec = asio_bridge_abi::monotonic_nsec();
        STATUS_SUCCESS
    })
}
