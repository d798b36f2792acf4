//! Attaching to a bridge node and following its cycles.
//!
//! This is the whole client side of the bridge protocol: connect to the
//! node's socket, map the shared memory it hands over, wait for each cycle
//! on the futex word, and mark cycles complete. The Wine driver's unix half
//! and the reference client both use it.

mod session;

pub use asio_bridge_abi::Direction;
pub use session::{socket_path, AttachError, Cycle, Session, WaitError};

/// CLOCK_MONOTONIC in nanoseconds, the clock the node stamps cycles with.
pub fn monotonic_nsec() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
