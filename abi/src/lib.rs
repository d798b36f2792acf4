//! The bridge ABI as Rust sees it: the bindgen output of
//! `include/asio-bridge.h`, pinned by static assertions, plus safe helpers for
//! the shared-memory layout and the attach messages.

#![no_std]

#[allow(non_camel_case_types, non_upper_case_globals, dead_code)]
mod sys {
    include!(concat!(env!("OUT_DIR"), "/asio_bridge.rs"));
}
pub use sys::*;

mod layout;
mod message;
pub use layout::{Direction, Layout, LayoutError};
pub use message::{
    as_bytes, c_str, copy_c_str, decode_client, decode_node, ClientMessage, Message,
    MessageError, NodeMessage,
};

use core::mem::{align_of, offset_of, size_of};
use static_assertions::const_assert_eq;

// The layout every side agrees on. A change here is a protocol version bump.
const_assert_eq!(size_of::<asio_bridge_info>(), 128);
const_assert_eq!(offset_of!(asio_bridge_info, node_name), 32);
const_assert_eq!(size_of::<asio_bridge_cycle>(), 64);
const_assert_eq!(offset_of!(asio_bridge_cycle, seq), 0);
const_assert_eq!(offset_of!(asio_bridge_cycle, position), 16);
const_assert_eq!(offset_of!(asio_bridge_cycle, publish_nsec), 32);
const_assert_eq!(offset_of!(asio_bridge_cycle, late_cycles), 40);
const_assert_eq!(size_of::<asio_bridge_client>(), 64);
const_assert_eq!(offset_of!(asio_bridge_shm, info), 0);
const_assert_eq!(offset_of!(asio_bridge_shm, cycle), 128);
const_assert_eq!(offset_of!(asio_bridge_shm, client), 192);
const_assert_eq!(offset_of!(asio_bridge_shm, input_names), 256);
const_assert_eq!(offset_of!(asio_bridge_shm, output_names), 256 + 64 * 32);
const_assert_eq!(size_of::<asio_bridge_shm>(), 256 + 2 * 64 * 32);
const_assert_eq!(align_of::<asio_bridge_shm>(), ASIO_BRIDGE_CACHE_LINE as usize);
const_assert_eq!(size_of::<asio_bridge_msg_header>(), 16);
const_assert_eq!(size_of::<asio_bridge_hello>(), 16 + 64);
const_assert_eq!(size_of::<asio_bridge_welcome>(), 24);
const_assert_eq!(size_of::<asio_bridge_refuse>(), 24 + 256);
