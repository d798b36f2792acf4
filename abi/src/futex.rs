//! Shared (not process-private) futex operations on words in the mapping.
//! Both are single syscalls that never allocate: safe on the RT path.

use rustix::thread::futex;
use std::{sync::atomic::AtomicU32, time::Duration};

/// Sleeps while `*word == expected`, at most `timeout`. Spurious and early
/// returns (EINTR, EAGAIN when the word already changed, ETIMEDOUT) are
/// fine: callers re-check the word, so the result is not reported.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = rustix::time::Timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    // Not PRIVATE: the word lives in memory shared with another process.
    let _ = futex::wait(word, futex::Flags::empty(), expected, Some(&ts));
}

/// Wakes every waiter on `word`.
pub fn wake(word: &AtomicU32) {
    let _ = futex::wake(word, futex::Flags::empty(), i32::MAX as u32);
}
