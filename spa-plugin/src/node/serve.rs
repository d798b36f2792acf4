//! Serving the node's socket: accepting connections, holding those that
//! have not said hello for at most a second, resting a flooding client's
//! socket, and backing off when the daemon runs out of file descriptors.
//! Main loop only.
//!
//! A same-user client may be hostile: it may hold connections open without
//! a word, churn them, or exhaust fds. Each case gets a bounded answer, and
//! a real host's hello, which arrives with its connection, is answered at
//! once, so it never waits behind them.

use super::{Connection, Node};
use crate::socket::{self, Peer};
use asio_bridge_abi::ASIO_BRIDGE_REFUSE_BUSY;
use libspa_sys as spa;
use std::{
    ffi::{c_int, c_void},
    io,
    os::fd::{AsRawFd, OwnedFd},
    time::{Duration, Instant},
};

/// Connections that have not said hello yet. Past this, the longest
/// waiting one is refused as busy.
pub(super) const MAX_PENDING: usize = 16;
/// How long a connection may stay silent before it is refused.
pub(super) const HELLO_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the listener rests when the daemon is out of file descriptors.
const FD_BACKOFF: Duration = Duration::from_secs(1);
/// Connections accepted per wake-up, so a flood cannot hold the main loop.
const ACCEPTS_PER_WAKE: usize = 64;
/// The housekeeping timer's period while it has work.
const TICK_MS: u64 = 200;

/// A connection that has not said hello yet.
pub(super) struct Pending {
    pub conn: Connection,
    pub deadline: Instant,
}

fn out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

impl Node {
    fn on_listener(&mut self) {
        let Some((fd, _)) = &self.listener else { return };
        let listener = fd.as_raw_fd();
        for _ in 0..ACCEPTS_PER_WAKE {
            match socket::accept(listener) {
                Ok(None) => return,
                Ok(Some((fd, peer))) => self.admit(fd, peer),
                Err(e) if out_of_fds(&e) => return self.pause_listener(&e),
                Err(e) => {
                    let msg = format!("accepting an ASIO client failed: {e}");
                    self.warn_limited(Warning::Protocol, msg);
                    return;
                }
            }
        }
    }

    /// Answers a new connection's hello if it came with the connection, as
    /// a real host's does; otherwise holds it until `HELLO_TIMEOUT`.
    fn admit(&mut self, fd: OwnedFd, peer: Peer) {
        // SAFETY: geteuid cannot fail.
        if peer.uid != unsafe { libc::geteuid() } {
            let msg = format!("refused ASIO client pid {} of uid {}: not the daemon's user", peer.pid, peer.uid);
            self.warn_limited(Warning::Protocol, msg);
            return;
        }
        let conn = Connection { fd, source: std::ptr::null_mut(), peer };
        let Some(mut conn) = self.handshake(conn) else { return };
        if self.pending.len() >= MAX_PENDING {
            let oldest = self.pending.remove(0);
            let msg = format!("busy: {} connections waiting to say hello; try again", MAX_PENDING);
            self.refuse(oldest.conn, Warning::Silent, ASIO_BRIDGE_REFUSE_BUSY, 0, &msg);
        }
        let me: *mut Node = self;
        // SAFETY: the node outlives the source (destroyed with the connection).
        conn.source = unsafe { self.main_loop.add_io(conn.fd.as_raw_fd(), spa::SPA_IO_IN | spa::SPA_IO_HUP | spa::SPA_IO_ERR, on_connection, me.cast()) };
        self.pending.push(Pending { conn, deadline: Instant::now() + HELLO_TIMEOUT });
        self.schedule_housekeeping();
    }

    fn on_connection(&mut self, fd: c_int) {
        if self.holder.as_ref().is_some_and(|h| h.conn.fd.as_raw_fd() == fd) {
            return self.on_holder_message();
        }
        let Some(pos) = self.pending.iter().position(|p| p.conn.fd.as_raw_fd() == fd) else { return };
        let pending = self.pending.remove(pos);
        let deadline = pending.deadline;
        if let Some(conn) = self.handshake(pending.conn) {
            self.pending.insert(pos, Pending { conn, deadline });
        }
    }

    /// Stops accepting for `FD_BACKOFF`: with no fd to accept into, the
    /// listener would wake the main loop forever.
    fn pause_listener(&mut self, e: &io::Error) {
        if let Some((_, source)) = &self.listener {
            self.main_loop.update_io(*source, 0);
        }
        self.listener_paused_until = Some(Instant::now() + FD_BACKOFF);
        let msg = format!(
            "cannot accept ASIO clients: {e}; the daemon is out of file descriptors, pausing the listener for {} s",
            FD_BACKOFF.as_secs()
        );
        self.warn_limited(Warning::Fds, msg);
        self.schedule_housekeeping();
    }

    pub(super) fn schedule_housekeeping(&mut self) {
        if !self.housekeeping_armed {
            self.housekeeping_armed = true;
            self.main_loop.arm(self.housekeeping, TICK_MS);
        }
    }

    /// Refuses connections that stayed silent too long and resumes a paused
    /// listener.
    fn on_housekeeping(&mut self) {
        self.housekeeping_armed = false;
        let now = Instant::now();
        while self.pending.first().is_some_and(|p| p.deadline <= now) {
            let p = self.pending.remove(0);
            let msg = format!("no hello within {} ms; closing", HELLO_TIMEOUT.as_millis());
            self.refuse(p.conn, Warning::Silent, asio_bridge_abi::ASIO_BRIDGE_REFUSE_PROTOCOL, 0, &msg);
        }
        if self.listener_paused_until.is_some_and(|t| t <= now) {
            self.listener_paused_until = None;
            if let Some((_, source)) = &self.listener {
                self.main_loop.update_io(*source, spa::SPA_IO_IN);
            }
        }
        if let Some(h) = self.holder.as_mut().filter(|h| h.resting) {
            h.resting = false;
            self.main_loop.update_io(h.conn.source, spa::SPA_IO_IN | spa::SPA_IO_HUP | spa::SPA_IO_ERR);
        }
        if !self.pending.is_empty() || self.listener_paused_until.is_some() {
            self.schedule_housekeeping();
        }
    }

    /// Logs a warning unless one of its kind was logged within the last
    /// interval; the next one says how many were held back.
    pub(super) fn warn_limited(&mut self, kind: Warning, msg: String) {
        if let Some(held) = self.warnings[kind as usize].admit(Instant::now()) {
            match held {
                0 => self.log.warn(&msg),
                n => self.log.warn(&format!("{msg} ({n} similar warnings held back)")),
            }
        }
    }
}

/// Kinds of warning a client can provoke, each rate-limited on its own so
/// a flood of one kind cannot hide another.
#[derive(Clone, Copy)]
pub(super) enum Warning {
    /// Connections that never said hello.
    Silent,
    /// Bad messages, accept errors, peers of another user.
    Protocol,
    /// Clients turned away: busy, another version, no memory.
    Refused,
    /// The daemon ran out of file descriptors.
    Fds,
    /// Clock requests outside the node's limits.
    Clock,
}

pub(super) const WARNING_KINDS: usize = 5;

pub(super) unsafe extern "C" fn on_listener(data: *mut c_void, _fd: c_int, _mask: u32) {
    // SAFETY: `data` is the node registered with this source; main loop.
    crate::guard((), || unsafe { (*data.cast::<Node>()).on_listener() });
}

pub(super) unsafe extern "C" fn on_connection(data: *mut c_void, fd: c_int, _mask: u32) {
    // SAFETY: as in on_listener.
    crate::guard((), || unsafe { (*data.cast::<Node>()).on_connection(fd) });
}

pub(super) unsafe extern "C" fn on_housekeeping(data: *mut c_void, _expirations: u64) {
    // SAFETY: as in on_listener.
    crate::guard((), || unsafe { (*data.cast::<Node>()).on_housekeeping() });
}
