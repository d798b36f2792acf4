//! Shared (not process-private) futex operations on words in the mapping.
//! Both are single syscalls that never allocate: safe on the RT path.

use std::{sync::atomic::AtomicU32, time::Duration};

/// Sleeps while `*word == expected`, at most `timeout`. Spurious and early
/// returns are fine: callers re-check the word.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAIT only reads it and the
    // timespec, and the timeout bounds the wait.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, &ts);
    }
}

/// Wakes every waiter on `word`.
pub fn wake(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE does not touch memory.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
    }
}
