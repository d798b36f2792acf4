//! Attaching a client: the hello, the shared memory it gets, what it may
//! say while attached, and letting it go. Main loop only; process() sees an
//! attachment only through `DataLoop::run`.

use super::{serve::Warning, Connection, Holder, Node};
use crate::{config::Mode, cycle::Attachment, socket, text::printable};
use asio_bridge_abi::{
    as_bytes, asio_bridge_refuse, asio_bridge_shm, asio_bridge_welcome, c_str, copy_c_str, decode_client, sealed_memfd,
    ClientMessage, Layout, Mapping, MessageError, ASIO_BRIDGE_INFO_POWER_OF_TWO, ASIO_BRIDGE_INFO_SAME_CYCLE,
    ASIO_BRIDGE_HELLO_NO_AUTOCONNECT, ASIO_BRIDGE_REFUSE_BUSY, ASIO_BRIDGE_REFUSE_PROTOCOL, ASIO_BRIDGE_REFUSE_RESOURCES, ASIO_BRIDGE_REFUSE_VERSION,
};
use std::{io, os::fd::AsRawFd};

/// Messages read from the attached client per wake-up: a flood costs the
/// main loop a bounded slice each time round.
const MESSAGES_PER_WAKE: usize = 64;

impl Node {
    /// Reads a connection's hello and answers it. Gives the connection back
    /// when it has not said anything yet.
    pub(super) fn handshake(&mut self, conn: Connection) -> Option<Connection> {
        let mut buf = [0u8; 256];
        let len = match socket::recv(conn.fd.as_raw_fd(), &mut buf) {
            Ok(Some(n)) => n,
            Ok(None) => {
                self.close(conn);
                return None;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(conn),
            Err(e) => {
                let msg = format!("bad message from ASIO client pid {}: {e}", conn.peer.pid);
                self.refuse(conn, Warning::Protocol, ASIO_BRIDGE_REFUSE_PROTOCOL, 0, &msg);
                return None;
            }
        };
        let hello = match decode_client(&buf[..len]) {
            Ok(ClientMessage::Hello(h)) => h,
            Ok(ClientMessage::Request(_)) => {
                let msg = format!("ASIO client pid {} asked for a clock before attaching", conn.peer.pid);
                self.refuse(conn, Warning::Protocol, ASIO_BRIDGE_REFUSE_PROTOCOL, 0, &msg);
                return None;
            }
            Err(e @ MessageError::Version(_)) => {
                let msg = format!("the ASIO bridge '{}' cannot talk to this client: {e}; install matching versions of the driver and the PipeWire plugin", self.config.node_name);
                self.refuse(conn, Warning::Refused, ASIO_BRIDGE_REFUSE_VERSION, 0, &msg);
                return None;
            }
            Err(e) => {
                let msg = format!("bad message from ASIO client pid {}: {e}", conn.peer.pid);
                self.refuse(conn, Warning::Protocol, ASIO_BRIDGE_REFUSE_PROTOCOL, 0, &msg);
                return None;
            }
        };
        let name = printable(&c_str(&hello.client_name).to_string());
        if hello.flags & !ASIO_BRIDGE_HELLO_NO_AUTOCONNECT != 0 {
            let msg = format!("bad message from ASIO client pid {}: unknown hello flags {:#x}", conn.peer.pid, hello.flags);
            self.refuse(conn, Warning::Protocol, ASIO_BRIDGE_REFUSE_PROTOCOL, 0, &msg);
            return None;
        }
        if let Some(h) = &self.holder {
            let msg = format!(
                "the ASIO bridge '{}' is in use by {} (pid {}, {}); close that program or choose another bridge node",
                self.config.node_name, h.name, h.conn.peer.pid, h.exe
            );
            let pid = h.conn.peer.pid;
            self.refuse(conn, Warning::Refused, ASIO_BRIDGE_REFUSE_BUSY, pid, &msg);
            return None;
        }
        match self.attach(&conn) {
            Ok(()) => {
                let exe = printable(&conn.peer.exe());
                self.log.info(&format!("ASIO client {name} (pid {}, {exe}) attached to '{}'", conn.peer.pid, self.config.node_name));
                let conn = self.watched(conn);
                let autoconnect = hello.wants_autoconnect();
                self.holder = Some(Holder { conn, name, exe, buffer_size: 0, autoconnect, seen: Default::default(), resting: false });
                self.refresh_status();
            }
            Err(e) => {
                let msg = format!("the ASIO bridge '{}' could not set up shared memory: {e}", self.config.node_name);
                self.refuse(conn, Warning::Refused, ASIO_BRIDGE_REFUSE_RESOURCES, 0, &msg);
            }
        }
        None
    }

    /// The connection with a main-loop watch, adding one if it has none.
    fn watched(&mut self, mut conn: Connection) -> Connection {
        if conn.source.is_null() {
            let me: *mut Node = self;
            // SAFETY: the node outlives the source (destroyed with the connection).
            conn.source = unsafe {
                self.main_loop.add_io(conn.fd.as_raw_fd(), libspa_sys::SPA_IO_IN | libspa_sys::SPA_IO_HUP | libspa_sys::SPA_IO_ERR, super::serve::on_connection, me.cast())
            };
        }
        conn
    }

    /// The attached client asks for a clock, or hangs up. Anything else
    /// breaks the protocol and detaches it.
    pub(super) fn on_holder_message(&mut self) {
        let Some(fd) = self.holder.as_ref().map(|h| h.conn.fd.as_raw_fd()) else { return };
        let mut latest = None;
        let mut drained = false;
        for _ in 0..MESSAGES_PER_WAKE {
            let mut buf = [0u8; 64];
            let problem = match socket::recv(fd, &mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Ok(Some(n)) => match decode_client(&buf[..n]) {
                    Ok(ClientMessage::Request(r)) => {
                        latest = Some(r);
                        continue;
                    }
                    Ok(_) => Some("attached ASIO client said hello twice; detaching it".to_owned()),
                    Err(e) => Some(format!("attached ASIO client sent a bad message ({e}); detaching it")),
                },
                Err(e) => Some(format!("reading from the attached ASIO client failed ({e}); detaching it")),
                Ok(None) => None,
            };
            if let Some(msg) = problem {
                self.warn_limited(Warning::Protocol, msg);
            }
            return self.detach();
        }
        // Of a burst, only the last request counts.
        if let Some(r) = latest {
            self.request_clock(&r);
        }
        // A client that sends faster than the node reads is flooding: its
        // socket rests until the next housekeeping tick, so the flood blocks
        // the client rather than busying the daemon.
        if !drained {
            if let Some(h) = &mut self.holder {
                self.main_loop.update_io(h.conn.source, 0);
                h.resting = true;
                self.schedule_housekeeping();
            }
        }
    }

    /// Maps fresh shared memory for a client, hands it over, and installs it
    /// for process().
    fn attach(&mut self, conn: &Connection) -> io::Result<()> {
        let c = &self.config;
        let layout = Layout::new(c.inputs, c.outputs, c.quantum_limit).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let memfd = sealed_memfd(&socket::memfd_name(&c.node_name), layout.size)?;
        let map = Mapping::new(&memfd, layout.size)?;
        let shm = map.as_ptr().cast::<asio_bridge_shm>();
        // SAFETY: a fresh zeroed mapping of `layout.size` bytes, which holds
        // the header; nothing else sees it yet.
        unsafe {
            let info = &mut (*shm).info;
            *info = layout.info(&c.node_name);
            info.min_quantum = c.min_quantum;
            info.max_quantum = c.max_quantum;
            info.flags = if c.mode == Mode::SameCycle { ASIO_BRIDGE_INFO_SAME_CYCLE } else { 0 }
                | if c.power_of_two { ASIO_BRIDGE_INFO_POWER_OF_TWO } else { 0 };
            info.n_rates = c.rates.len() as u32;
            info.rates[..c.rates.len()].copy_from_slice(&c.rates);
            for (i, names) in (*shm).input_names.iter_mut().take(c.inputs as usize).enumerate() {
                copy_c_str(names, &format!("in_{}", i + 1));
            }
            for (i, names) in (*shm).output_names.iter_mut().take(c.outputs as usize).enumerate() {
                copy_c_str(names, &format!("out_{}", i + 1));
            }
        }
        let mut attachment = Attachment::new(map, layout).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        if let Some(clock) = self.graph_clock() {
            attachment.announce(clock, (c.mode == Mode::Pipelined) as u32);
        }
        let welcome = asio_bridge_welcome::with_size(layout.size as u32);
        socket::send(conn.fd.as_raw_fd(), as_bytes(&welcome), Some(memfd.as_raw_fd()))?;
        self.data_loop.run(self.rt(), move |rt| {
            rt.set_attachment(Some(attachment));
        });
        Ok(())
    }

    /// Takes the shared memory away from process() and frees it here, on
    /// the main loop; gives the graph its own clock back.
    pub(super) fn detach(&mut self) {
        let Some(holder) = self.holder.take() else { return };
        let mut old: Option<Attachment> = None;
        self.data_loop.run(self.rt(), |rt| old = rt.set_attachment(None));
        let nonfinite = old.map_or(0, |a| a.into_parts().1);
        self.release_clock();
        self.refresh_status();
        self.log.info(&format!("ASIO client {} (pid {}) detached from '{}'", holder.name, holder.conn.peer.pid, self.config.node_name));
        if nonfinite > 0 {
            self.log.warn(&format!(
                "ASIO client {} (pid {}) played {nonfinite} NaN or infinite samples; '{}' replaced them with silence",
                holder.name, holder.conn.peer.pid, self.config.node_name
            ));
        }
        self.close(holder.conn);
    }

    /// Tells the client why not, then closes.
    pub(super) fn refuse(&mut self, conn: Connection, kind: Warning, reason: u32, holder_pid: u32, message: &str) {
        self.warn_limited(kind, format!("refused ASIO client pid {}: {message}", conn.peer.pid));
        let msg = asio_bridge_refuse::with_reason(reason, holder_pid, message);
        let _ = socket::send(conn.fd.as_raw_fd(), as_bytes(&msg), None);
        self.close(conn);
    }

    pub(super) fn close(&mut self, conn: Connection) {
        self.main_loop.destroy(conn.source);
    }
}
