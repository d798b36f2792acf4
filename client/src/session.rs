//! One attachment to a bridge node.

use asio_bridge_abi::{
    as_bytes, asio_bridge_cycle, asio_bridge_hello, asio_bridge_request, asio_bridge_shm, c_str, decode_node, futex,
    Direction, Layout, LayoutError, Mapping, MessageError, NodeMessage, Shm, ASIO_BRIDGE_INFO_SAME_CYCLE,
    ASIO_BRIDGE_REFUSE_BUSY, ASIO_BRIDGE_REFUSE_VERSION,
};
use asio_bridge_abi::fdpass::{self, Blocking};
use rustix::net;
use std::{
    fmt, io,
    os::{fd::OwnedFd, unix::net::UnixStream},
    path::PathBuf,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

/// Where the node named `node_name` listens.
pub fn socket_path(node_name: &str) -> Result<PathBuf, AttachError> {
    let dir = std::env::var_os("XDG_RUNTIME_DIR").ok_or(AttachError::NoRuntimeDir)?;
    Ok(PathBuf::from(dir).join(asio_bridge_abi::socket_dir()).join(node_name))
}

#[derive(Debug)]
pub enum AttachError {
    NoRuntimeDir,
    /// Nothing listens there: the daemon is not running or has no such node.
    NoNode { node: String, path: PathBuf },
    /// The node said no; `message` is its explanation.
    Refused { reason: u32, holder_pid: u32, message: String },
    Protocol(MessageError),
    Layout(LayoutError),
    Io(io::Error),
}

impl AttachError {
    pub fn is_busy(&self) -> bool {
        matches!(self, Self::Refused { reason: ASIO_BRIDGE_REFUSE_BUSY, .. })
    }
    pub fn is_version_mismatch(&self) -> bool {
        matches!(self, Self::Refused { reason: ASIO_BRIDGE_REFUSE_VERSION, .. })
            || matches!(self, Self::Protocol(MessageError::Version(_)))
    }
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRuntimeDir => write!(f, "XDG_RUNTIME_DIR is not set, so the bridge socket cannot be found"),
            Self::NoNode { node, path } => write!(
                f,
                "no PipeWire ASIO bridge node named '{node}' is running (nothing listens on {})",
                path.display()
            ),
            Self::Refused { message, .. } => write!(f, "{message}"),
            Self::Protocol(e) => write!(f, "the bridge node answered oddly: {e}"),
            Self::Layout(e) => write!(f, "the bridge node's shared memory is unusable: {e}"),
            Self::Io(e) => write!(f, "talking to the bridge node failed: {e}"),
        }
    }
}

impl std::error::Error for AttachError {}

impl From<io::Error> for AttachError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitError {
    /// No cycle within the timeout (the graph is stopped or suspended).
    Timeout,
    /// The node closed the connection (unloaded, or the daemon stopped).
    Detached,
}

/// What the node published for one cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cycle {
    pub seq: u32,
    pub half: u32,
    pub frames: u32,
    pub rate: u32,
    pub position: u64,
    pub nsec: u64,
    pub publish_nsec: u64,
    pub late_cycles: u32,
    pub output_delay: u32,
    pub upstream_latency: u32,
    pub downstream_latency: u32,
    /// Cycles published since the previous `wait` returned that this client
    /// never saw (it was late).
    pub missed: u32,
}

pub struct Session {
    socket: UnixStream,
    shm: Shm,
    same_cycle: bool,
    /// The cursor `Session::wait` moves; a callback thread keeps its own.
    cursor: Cursor,
}

/// Which cycle a waiter saw last. A thread that waits for cycles owns one
/// and needs only `&Session`, so other threads can use the session (ask for
/// a clock, read the latest record) at the same time.
#[derive(Debug, Clone, Copy)]
pub struct Cursor {
    last_seq: u32,
}

impl Session {
    /// Connects to the node `node_name` and maps its port. `client_name` is
    /// what the node tells a second client that finds the port busy.
    pub fn attach(node_name: &str, client_name: &str) -> Result<Self, AttachError> {
        Self::attach_with(node_name, asio_bridge_hello::with_name(client_name))
    }

    /// `attach` with a hello of the caller's making: its flags, or a
    /// malformed one to test the node's refusals.
    pub fn attach_with(node_name: &str, hello: asio_bridge_hello) -> Result<Self, AttachError> {
        let path = socket_path(node_name)?;
        let socket = connect_seqpacket(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                AttachError::NoNode { node: node_name.to_owned(), path: path.clone() }
            }
            _ => AttachError::Io(e),
        })?;
        socket.set_read_timeout(Some(Duration::from_secs(5)))?;
        // A node that refused at once (busy) may have closed already; its
        // refusal still waits to be read.
        if let Err(e) = send(&socket, as_bytes(&hello), Blocking::Yes) {
            if !matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) {
                return Err(e.into());
            }
        }
        let mut buf = [0u8; 512];
        let (len, fd) = recv_with_fd(&socket, &mut buf)?;
        match decode_node(&buf[..len]).map_err(AttachError::Protocol)? {
            NodeMessage::Refuse(r) => Err(AttachError::Refused {
                reason: r.reason,
                holder_pid: r.holder_pid,
                message: c_str(&r.message).to_string(),
            }),
            NodeMessage::Welcome(w) => {
                let fd = fd.ok_or(AttachError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "welcome without shared memory",
                )))?;
                // Populated and locked before any pointer into it exists.
                let map = Mapping::new(&fd, w.shm_size as usize)?;
                let shm = Shm::open(map).map_err(AttachError::Layout)?;
                socket.set_read_timeout(None)?;
                let same_cycle = shm.info().flags & ASIO_BRIDGE_INFO_SAME_CYCLE != 0;
                let cursor = Cursor { last_seq: shm.seq().load(Ordering::Acquire) };
                Ok(Self { socket, shm, same_cycle, cursor })
            }
        }
    }

    /// Detaches, and waits at most `timeout` until the node has let go of
    /// the port (it closes its end after releasing it). A plain drop
    /// returns before the node has seen the hang-up, and an attach made
    /// right after, as hosts do when they re-open a driver, is refused as
    /// busy by this very session.
    pub fn close(self, timeout: Duration) {
        let _ = self.socket.shutdown(std::net::Shutdown::Write);
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 512];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.socket.set_read_timeout(Some(left)).is_err() {
                return;
            }
            match io::Read::read(&mut &self.socket, &mut buf) {
                Ok(0) => return,
                Err(e) if e.kind() != io::ErrorKind::Interrupted => return,
                _ => {}
            }
        }
    }

    /// A session over a connection and mapping made elsewhere, for tests
    /// that drive the node's cycle code without a daemon.
    #[doc(hidden)]
    pub fn from_parts(socket: UnixStream, map: Mapping) -> Result<Self, LayoutError> {
        let shm = Shm::open(map)?;
        let same_cycle = shm.info().flags & ASIO_BRIDGE_INFO_SAME_CYCLE != 0;
        let cursor = Cursor { last_seq: shm.seq().load(Ordering::Acquire) };
        Ok(Self { socket, shm, same_cycle, cursor })
    }

    pub fn layout(&self) -> &Layout {
        self.shm.layout()
    }

    /// Whether the node waits for the host within the cycle.
    pub fn same_cycle(&self) -> bool {
        self.same_cycle
    }

    /// Asks the node to force the graph's quantum and rate while attached
    /// (0: leave it to the graph). The graph's answer shows in the cycles.
    pub fn request(&self, quantum: u32, rate: u32) -> io::Result<()> {
        send(&self.socket, as_bytes(&asio_bridge_request::with_clock(quantum, rate)), Blocking::Yes)
    }

    /// `request`, but failing with `WouldBlock` instead of waiting while the
    /// node has not read the earlier ones.
    pub fn try_request(&self, quantum: u32, rate: u32) -> io::Result<()> {
        send(&self.socket, as_bytes(&asio_bridge_request::with_clock(quantum, rate)), Blocking::No)
    }

    /// The mapping itself, validated at attach: the Wine driver hands the
    /// host pointers into it and reads the cycle record from it (with the
    /// header's `asio_bridge_read_cycle`).
    pub fn shm(&self) -> *const asio_bridge_shm {
        self.shm.as_ptr()
    }

    pub fn node_name(&self) -> String {
        c_str(&self.shm.info().node_name).to_string()
    }

    /// The node's name for a channel, e.g. `in_1` or a user-set name.
    pub fn channel_name(&self, direction: Direction, channel: u32) -> String {
        if channel >= self.layout().channels(direction) {
            return String::new();
        }
        c_str(&self.shm.channel_name(direction, channel)).to_string()
    }

    /// A cursor where this session's own `wait` left off (at attach: the
    /// cycle then current). Its first `wait` returns at once if the node
    /// published since, with the latest cycle.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// Waits for the next cycle the node publishes. Never waits longer than
    /// `timeout`. Allocation-free: callable from a real-time thread.
    pub fn wait(&mut self, timeout: Duration) -> Result<Cycle, WaitError> {
        let mut cursor = self.cursor;
        let result = cursor.wait(self, timeout);
        self.cursor = cursor;
        result
    }

    /// The most recent cycle record without waiting: the graph's current
    /// quantum and rate (`seq` 0 and only those two fields before the first
    /// cycle). Does not count as seen by `wait`. All zero if no whole
    /// record could be read (a node that died mid-write).
    pub fn latest(&self) -> Cycle {
        self.shm.read_cycle().map(|c| self.cycle(&c)).unwrap_or_default()
    }

    /// A record as the client uses it: the half derived from seq, frames
    /// clamped to the buffers.
    fn cycle(&self, c: &asio_bridge_cycle) -> Cycle {
        Cycle {
            seq: c.seq,
            half: c.seq & 1,
            frames: c.frames.min(self.layout().max_frames),
            rate: c.rate,
            position: c.position,
            nsec: c.nsec,
            publish_nsec: c.publish_nsec,
            late_cycles: c.late_cycles,
            output_delay: c.output_delay,
            upstream_latency: c.upstream_latency,
            downstream_latency: c.downstream_latency,
            missed: 0,
        }
    }

    fn node_gone(&self) -> bool {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let mut fds = [PollFd::new(&self.socket, PollFlags::IN)];
        let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
        matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
            && fds[0].revents().intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::IN)
    }

    /// Raw pointer to one channel buffer (`max_frames` floats); None for an
    /// index out of range. The Wine driver hands these to the ASIO host.
    pub fn buffer_ptr(&self, half: u32, direction: Direction, channel: u32) -> Option<*mut f32> {
        self.shm.buffer(half, direction, channel)
    }

    /// The input the node wrote for `cycle` (empty for a channel out of range).
    pub fn input(&self, cycle: &Cycle, channel: u32) -> &[f32] {
        match self.buffer_ptr(cycle.half, Direction::Input, channel) {
            // SAFETY: the buffer holds `max_frames` >= `frames` floats; the
            // node does not write this half again until the next-but-one cycle.
            Some(p) => unsafe { std::slice::from_raw_parts(p.cast_const(), cycle.frames as usize) },
            None => &[],
        }
    }

    /// The output half the node takes for `cycle` once it is complete.
    pub fn output(&mut self, cycle: &Cycle, channel: u32) -> &mut [f32] {
        let frames = cycle.frames as usize;
        let half = self.output_half(cycle, channel);
        let n = frames.min(half.len());
        &mut half[..n]
    }

    /// The whole output half of `cycle`: `max_frames` samples (empty for a
    /// channel out of range).
    pub fn output_half(&mut self, cycle: &Cycle, channel: u32) -> &mut [f32] {
        match self.buffer_ptr(cycle.half, Direction::Output, channel) {
            // SAFETY: as in `input`; the node reads this half only after
            // `complete` publishes it, and `&mut self` keeps slices unique.
            Some(p) => unsafe { std::slice::from_raw_parts_mut(p, self.layout().max_frames as usize) },
            None => &mut [],
        }
    }

    /// Publishes that the output half of `cycle` is complete, and wakes the
    /// node if it waits for it (same-cycle mode).
    pub fn complete(&self, cycle: &Cycle) {
        self.complete_with(cycle, cycle.frames);
    }

    /// `complete`, with `out_frames` valid frames in the output half (at
    /// most `max_frames`): more than the quantum when the client keeps a
    /// FIFO, so a larger next quantum still finds output there.
    pub fn complete_with(&self, cycle: &Cycle, out_frames: u32) {
        self.shm.out_frames().store(out_frames.min(self.layout().max_frames), Ordering::Relaxed);
        self.shm.done_seq().store(cycle.seq, Ordering::Release);
        if self.same_cycle {
            futex::wake(self.shm.done_seq());
        }
    }
}

impl Cursor {
    /// Waits for the next cycle after the one this cursor saw last. Never
    /// waits longer than `timeout`. Allocation-free, lock-free: callable
    /// from a real-time thread while other threads use `session`.
    pub fn wait(&mut self, session: &Session, timeout: Duration) -> Result<Cycle, WaitError> {
        let shm = &session.shm;
        let deadline = asio_bridge_abi::monotonic_nsec().saturating_add(timeout.as_nanos().min(u64::MAX as u128) as u64);
        loop {
            let seq = shm.seq().load(Ordering::Acquire);
            if seq != self.last_seq {
                // Equality only: seqs wrap, and any change is a new cycle.
                if let Some(c) = shm.try_read_cycle() {
                    if c.seq != self.last_seq {
                        let mut cycle = session.cycle(&c);
                        cycle.missed = c.seq.wrapping_sub(self.last_seq).wrapping_sub(1);
                        self.last_seq = c.seq;
                        return Ok(cycle);
                    }
                }
                // The node is writing the record: it holds the lock for a
                // dozen stores. The deadline below bounds a dead writer.
                std::hint::spin_loop();
            }
            let now = asio_bridge_abi::monotonic_nsec();
            if now >= deadline {
                return Err(if session.node_gone() { WaitError::Detached } else { WaitError::Timeout });
            }
            if seq == self.last_seq {
                futex::wait(shm.seq(), seq, Duration::from_nanos(deadline - now));
            }
        }
    }

    /// The seq of the cycle this cursor saw last.
    pub fn last_seq(&self) -> u32 {
        self.last_seq
    }
}

fn connect_seqpacket(path: &std::path::Path) -> io::Result<UnixStream> {
    let addr = net::SocketAddrUnix::new(path)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "socket path too long"))?;
    let fd = net::socket_with(net::AddressFamily::UNIX, net::SocketType::SEQPACKET, net::SocketFlags::CLOEXEC, None)?;
    net::connect(&fd, &addr)?;
    Ok(UnixStream::from(fd))
}

fn send(socket: &UnixStream, bytes: &[u8], blocking: Blocking) -> io::Result<()> {
    fdpass::send(socket, bytes, None, blocking)
}

/// Receives one message and at most one passed fd; the read timeout set on
/// the socket bounds the wait.
fn recv_with_fd(socket: &UnixStream, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    match fdpass::recv(socket, buf, Blocking::Yes)? {
        Some(r) => Ok((r.len, r.fd)),
        None => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the node closed the connection")),
    }
}
