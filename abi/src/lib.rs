//! The bridge ABI as Rust sees it: the bindgen output of
//! `include/asio-bridge.h`, pinned by static assertions, plus safe helpers for
//! the shared-memory layout and the attach messages, and the two OS
//! primitives both sides use on it: the mapping and the futex, and the typed
//! view of the mapping (`Shm`) through which every shared word is accessed.

#[allow(non_camel_case_types, non_upper_case_globals, dead_code)]
mod sys {
    include!(concat!(env!("OUT_DIR"), "/asio_bridge.rs"));
}
pub use sys::*;

pub mod fdpass;
pub mod futex;
mod layout;
mod mapping;
mod message;
mod shm;
pub use shm::{seq_after, CycleWriter, Shm, READ_TRIES};
pub use mapping::{sealed_memfd, Mapping, Prepare};
pub use layout::{Direction, Layout, LayoutError, MAX_FRAMES};
pub use message::{
    as_bytes, c_str, copy_c_str, decode_client, decode_node, ClientMessage, Message,
    MessageError, NodeMessage,
};

use core::mem::{align_of, offset_of, size_of};
use static_assertions::const_assert_eq;

// The layout every side agrees on. A change here is a protocol version bump.
const_assert_eq!(size_of::<asio_bridge_info>(), 192);
const_assert_eq!(offset_of!(asio_bridge_info, node_name), 32);
const_assert_eq!(offset_of!(asio_bridge_info, min_quantum), 96);
const_assert_eq!(offset_of!(asio_bridge_info, rates), 112);
const_assert_eq!(size_of::<asio_bridge_cycle>(), 64);
const_assert_eq!(offset_of!(asio_bridge_cycle, seq), 0);
const_assert_eq!(offset_of!(asio_bridge_cycle, position), 16);
const_assert_eq!(offset_of!(asio_bridge_cycle, publish_nsec), 32);
const_assert_eq!(offset_of!(asio_bridge_cycle, late_cycles), 40);
const_assert_eq!(offset_of!(asio_bridge_cycle, downstream_latency), 52);
const_assert_eq!(offset_of!(asio_bridge_cycle, lock), 56);
const_assert_eq!(size_of::<asio_bridge_client>(), 64);
const_assert_eq!(offset_of!(asio_bridge_client, out_frames), 4);
const_assert_eq!(offset_of!(asio_bridge_shm, info), 0);
const_assert_eq!(offset_of!(asio_bridge_shm, cycle), 192);
const_assert_eq!(offset_of!(asio_bridge_shm, client), 256);
const_assert_eq!(offset_of!(asio_bridge_shm, input_names), 320);
const_assert_eq!(offset_of!(asio_bridge_shm, output_names), 320 + 64 * 32);
const_assert_eq!(size_of::<asio_bridge_shm>(), 320 + 2 * 64 * 32);
const_assert_eq!(align_of::<asio_bridge_shm>(), ASIO_BRIDGE_CACHE_LINE as usize);
const_assert_eq!(size_of::<asio_bridge_msg_header>(), 16);
const_assert_eq!(size_of::<asio_bridge_hello>(), 16 + 64 + 8);
const_assert_eq!(size_of::<asio_bridge_welcome>(), 24);
const_assert_eq!(size_of::<asio_bridge_refuse>(), 24 + 256);
const_assert_eq!(size_of::<asio_bridge_request>(), 24);

fn header_str(bytes: &'static [u8]) -> &'static str {
    core::ffi::CStr::from_bytes_with_nul(bytes).ok().and_then(|s| s.to_str().ok()).expect("ASCII constant")
}

/// The directory under `$XDG_RUNTIME_DIR` that holds the node sockets.
pub fn socket_dir() -> &'static str {
    header_str(ASIO_BRIDGE_SOCKET_DIR)
}

/// The node name a client attaches to unless told otherwise.
pub fn default_node() -> &'static str {
    header_str(ASIO_BRIDGE_DEFAULT_NODE)
}

/// CLOCK_MONOTONIC in nanoseconds, the clock cycles are stamped with. A vDSO
/// call: no allocation, safe on the RT path.
///
/// libc, not rustix, on purpose: rustix's raw-syscall backend finds the vDSO
/// lazily on the first call (parsing the aux vector, possibly reading
/// /proc/self/auxv, allocating and able to panic), and the first call is on
/// the node's data loop. glibc resolved its vDSO at startup.
pub fn monotonic_nsec() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC always exists, so
    // the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}
