//! Thin wrappers over the support interfaces the daemon hands the plugin:
//! log, main-loop utils and the data loop. In 0.3.65 SPA's calls into these
//! are macros, so they are called here through their method tables.

use libspa_sys as spa;
use std::{
    ffi::{c_int, c_void, CStr, CString},
    os::fd::RawFd,
    ptr,
};

/// Finds a support interface by type name.
///
/// # Safety
/// `support` points at `n` valid entries (as the daemon passes them to init).
pub unsafe fn find(support: *const spa::spa_support, n: u32, type_: &[u8]) -> *mut c_void {
    if support.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: per the function contract.
    let items = unsafe { std::slice::from_raw_parts(support, n as usize) };
    let want = CStr::from_bytes_with_nul(type_).unwrap();
    items
        .iter()
        // SAFETY: support type names are valid C strings.
        .find(|s| !s.type_.is_null() && unsafe { CStr::from_ptr(s.type_) } == want)
        .map_or(ptr::null_mut(), |s| s.data)
}

/// Calls method `$m` of the interface at `$iface` with its method table type `$t`.
macro_rules! call {
    ($iface:expr, $t:ty, $m:ident $(, $arg:expr)*) => {{
        let iface = &*($iface as *const spa::spa_interface);
        let funcs = &*(iface.cb.funcs as *const $t);
        (funcs.$m.expect(concat!(stringify!($m), " is not implemented")))(iface.cb.data $(, $arg)*)
    }};
}

/// The daemon's log. Main thread only: never called from process().
pub struct Log(*mut spa::spa_log);

impl Log {
    pub fn new(ptr: *mut c_void) -> Self {
        Self(ptr.cast())
    }

    fn write(&self, level: spa::spa_log_level, msg: &str) {
        if self.0.is_null() {
            return;
        }
        let msg = CString::new(msg.replace('\0', " ")).unwrap();
        // SAFETY: a live spa_log from the support array; "%s" with one C string.
        unsafe {
            if (*self.0).level < level {
                return;
            }
            call!(self.0, spa::spa_log_methods, log, level, c"asio-bridge".as_ptr(), 0, c"".as_ptr(), c"%s".as_ptr(), msg.as_ptr());
        }
    }

    pub fn error(&self, msg: &str) {
        self.write(spa::SPA_LOG_LEVEL_ERROR, msg)
    }
    pub fn warn(&self, msg: &str) {
        self.write(spa::SPA_LOG_LEVEL_WARN, msg)
    }
    pub fn info(&self, msg: &str) {
        self.write(spa::SPA_LOG_LEVEL_INFO, msg)
    }
}

pub type IoCallback = unsafe extern "C" fn(data: *mut c_void, fd: c_int, mask: u32);
pub type TimerCallback = unsafe extern "C" fn(data: *mut c_void, expirations: u64);

/// The main loop's utils: fd watches for the control socket, and a timer.
pub struct MainLoop(*mut spa::spa_loop_utils);

impl MainLoop {
    pub fn new(ptr: *mut c_void) -> Self {
        Self(ptr.cast())
    }

    /// Watches `fd` for `mask`; the loop does not close the fd.
    ///
    /// # Safety
    /// `data` must stay valid until the source is destroyed.
    pub unsafe fn add_io(&self, fd: RawFd, mask: u32, func: IoCallback, data: *mut c_void) -> *mut spa::spa_source {
        // SAFETY: live loop utils; caller keeps `data` alive.
        unsafe { call!(self.0, spa::spa_loop_utils_methods, add_io, fd, mask, false, Some(func), data) }
    }

    /// Changes the events a watch from `add_io` waits for (0: none).
    pub fn update_io(&self, source: *mut spa::spa_source, mask: u32) {
        // SAFETY: `source` came from add_io on this loop and is alive.
        unsafe { call!(self.0, spa::spa_loop_utils_methods, update_io, source, mask) };
    }

    /// A timer, disarmed until `arm`.
    ///
    /// # Safety
    /// `data` must stay valid until the source is destroyed.
    pub unsafe fn add_timer(&self, func: TimerCallback, data: *mut c_void) -> *mut spa::spa_source {
        // SAFETY: live loop utils; caller keeps `data` alive.
        unsafe { call!(self.0, spa::spa_loop_utils_methods, add_timer, Some(func), data) }
    }

    /// Fires `source` once after `ms` milliseconds.
    pub fn arm(&self, source: *mut spa::spa_source, ms: u64) {
        let mut value = libc::timespec { tv_sec: (ms / 1000) as i64, tv_nsec: (ms % 1000 * 1_000_000) as i64 };
        let mut interval = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `source` came from add_timer on this loop; the timespecs
        // live for the call.
        unsafe {
            call!(self.0, spa::spa_loop_utils_methods, update_timer, source, (&mut value as *mut libc::timespec).cast(), (&mut interval as *mut libc::timespec).cast(), false)
        };
    }

    pub fn destroy(&self, source: *mut spa::spa_source) {
        if !source.is_null() {
            // SAFETY: `source` came from add_io on this loop and is destroyed once.
            unsafe { call!(self.0, spa::spa_loop_utils_methods, destroy_source, source) };
        }
    }
}

/// The data loop, where process() runs.
pub struct DataLoop(*mut spa::spa_loop);

impl DataLoop {
    pub fn new(ptr: *mut c_void) -> Self {
        Self(ptr.cast())
    }

    /// Runs `f` on the data loop between cycles and waits for it: the only
    /// way the main thread changes what process() uses.
    pub fn run<T, F: FnOnce(&mut T)>(&self, target: *mut T, f: F) {
        unsafe extern "C" fn trampoline<T, F: FnOnce(&mut T)>(
            _loop: *mut spa::spa_loop,
            _async: bool,
            _seq: u32,
            _data: *const c_void,
            _size: usize,
            user_data: *mut c_void,
        ) -> c_int {
            // SAFETY: `user_data` is the `Call` below, alive because invoke
            // blocks; `target` is only touched on the data loop.
            let call = unsafe { &mut *user_data.cast::<(Option<F>, *mut T)>() };
            if let Some(f) = call.0.take() {
                // SAFETY: the target outlives the blocking invoke, and the
                // data loop is its only user.
                f(unsafe { &mut *call.1 });
            }
            0
        }
        let mut call: (Option<F>, *mut T) = (Some(f), target);
        // SAFETY: live data loop; block = true keeps `call` alive until done.
        unsafe {
            call!(self.0, spa::spa_loop_methods, invoke, Some(trampoline::<T, F>), 0, ptr::null(), 0, true, (&mut call as *mut (Option<F>, *mut T)).cast());
        }
    }
}

/// Whether the daemon rounds a forced quantum down to a power of two with
/// its default settings: PipeWire before 0.3.82 does. The plugin runs inside
/// the daemon, so libpipewire's own version function is at hand.
pub fn rounds_forced_quanta() -> bool {
    // SAFETY: dlsym on the global namespace with a NUL-terminated name; the
    // symbol, when present, is `const char *pw_get_library_version(void)`,
    // which returns a static string.
    let version = unsafe {
        let f = libc::dlsym(libc::RTLD_DEFAULT, c"pw_get_library_version".as_ptr());
        if f.is_null() {
            return true;
        }
        let f: unsafe extern "C" fn() -> *const std::ffi::c_char = std::mem::transmute(f);
        std::ffi::CStr::from_ptr(f()).to_string_lossy().into_owned()
    };
    let parts: Vec<u32> = version.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    parts.as_slice() < [0, 3, 82].as_slice()
}
