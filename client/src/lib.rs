//! Attaching to a bridge node and following its cycles.
//!
//! This is the whole client side of the bridge protocol: connect to the
//! node's socket, map the shared memory it hands over, wait for each cycle
//! on the futex word, and mark cycles complete. The Wine driver's unix half
//! and the reference client both use it.

pub mod reblock;
mod session;
pub mod signal;

pub use asio_bridge_abi::{monotonic_nsec, Direction};
pub use session::{socket_path, AttachError, Cursor, Cycle, Session, WaitError};

