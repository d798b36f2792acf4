//! One attachment to a bridge node.

use asio_bridge_abi::{
    as_bytes, asio_bridge_client, asio_bridge_cycle, asio_bridge_hello, asio_bridge_request, asio_bridge_shm, c_str,
    decode_node, futex, Direction, Layout, LayoutError, Mapping, MessageError, NodeMessage,
    ASIO_BRIDGE_INFO_SAME_CYCLE, ASIO_BRIDGE_REFUSE_BUSY, ASIO_BRIDGE_REFUSE_VERSION,
};
use asio_bridge_abi::fdpass::{self, Blocking};
use rustix::net;
use std::{
    fmt, io,
    mem::{offset_of, size_of},
    os::{fd::OwnedFd, unix::net::UnixStream},
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
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
    map: Mapping,
    layout: Layout,
    last_seq: u32,
    same_cycle: bool,
}

impl Session {
    /// Connects to the node `node_name` and maps its port. `client_name` is
    /// what the node tells a second client that finds the port busy.
    pub fn attach(node_name: &str, client_name: &str) -> Result<Self, AttachError> {
        Self::attach_with(node_name, asio_bridge_hello::with_name(client_name))
    }

    /// `attach` with a hand-made hello, for testing the node's refusals.
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
                let map = Mapping::new(&fd, w.shm_size as usize)?;
                if map.len() < size_of::<asio_bridge_shm>() {
                    return Err(AttachError::Layout(LayoutError::Truncated {
                        mapped: map.len(),
                        needed: size_of::<asio_bridge_shm>(),
                    }));
                }
                // SAFETY: the mapping holds at least a whole header (checked
                // above) and is page aligned; the node wrote the info before
                // sending the fd, and `from_info` validates it.
                let info = unsafe { &(*map.as_ptr().cast::<asio_bridge_shm>()).info };
                let layout = Layout::from_info(info, map.len()).map_err(AttachError::Layout)?;
                socket.set_read_timeout(None)?;
                let same_cycle = info.flags & ASIO_BRIDGE_INFO_SAME_CYCLE != 0;
                let mut session = Self { socket, map, layout, last_seq: 0, same_cycle };
                session.last_seq = session.seq_word().load(Ordering::Acquire);
                Ok(session)
            }
        }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
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
    /// host pointers into it and reads the cycle record from it.
    pub fn shm(&self) -> *const asio_bridge_shm {
        self.map.as_ptr().cast()
    }

    pub fn node_name(&self) -> String {
        // SAFETY: the mapping holds a whole `asio_bridge_shm` (checked at
        // attach); the name is a fixed array read bounded by its length.
        c_str(unsafe { &(*self.shm()).info.node_name }).to_string()
    }

    /// The node's name for a channel, e.g. `in_1` or a user-set name.
    pub fn channel_name(&self, direction: Direction, channel: u32) -> String {
        // SAFETY: as in `node_name`; the index is bounds-checked by `get`.
        let names = unsafe {
            match direction {
                Direction::Input => &(*self.shm()).input_names,
                Direction::Output => &(*self.shm()).output_names,
            }
        };
        names.get(channel as usize).map(|n| c_str(n).to_string()).unwrap_or_default()
    }

    fn word(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: offsets of u32 fields inside the mapped header, which is
        // 64-byte aligned; shared words are only accessed atomically.
        unsafe { &*self.map.as_ptr().add(offset).cast::<AtomicU32>() }
    }

    fn seq_word(&self) -> &AtomicU32 {
        self.word(offset_of!(asio_bridge_shm, cycle) + offset_of!(asio_bridge_cycle, seq))
    }

    fn done_word(&self) -> &AtomicU32 {
        self.word(offset_of!(asio_bridge_shm, client) + offset_of!(asio_bridge_client, done_seq))
    }

    fn out_frames_word(&self) -> &AtomicU32 {
        self.word(offset_of!(asio_bridge_shm, client) + offset_of!(asio_bridge_client, out_frames))
    }

    /// Waits for the next cycle the node publishes. Never waits longer than
    /// `timeout`. Allocation-free: callable from a real-time thread.
    pub fn wait(&mut self, timeout: Duration) -> Result<Cycle, WaitError> {
        let deadline = asio_bridge_abi::monotonic_nsec() + timeout.as_nanos() as u64;
        loop {
            let seq = self.seq_word().load(Ordering::Acquire);
            if seq != self.last_seq {
                if let Some(mut cycle) = self.read_cycle(seq) {
                    cycle.missed = seq.wrapping_sub(self.last_seq).wrapping_sub(1);
                    self.last_seq = seq;
                    return Ok(cycle);
                }
                continue;
            }
            let now = asio_bridge_abi::monotonic_nsec();
            if now >= deadline {
                return Err(if self.node_gone() { WaitError::Detached } else { WaitError::Timeout });
            }
            futex::wait(self.seq_word(), seq, Duration::from_nanos(deadline - now));
        }
    }

    /// The most recent cycle record without waiting: the graph's current
    /// quantum and rate (`seq` 0 and only those two fields before the first
    /// cycle). Does not count as seen by `wait`.
    pub fn latest(&self) -> Cycle {
        loop {
            let seq = self.seq_word().load(Ordering::Acquire);
            if let Some(cycle) = self.read_cycle(seq) {
                return cycle;
            }
        }
    }

    /// Reads the cycle record as published for `seq`; None if the node
    /// published another cycle meanwhile (then the caller reads again).
    fn read_cycle(&self, seq: u32) -> Option<Cycle> {
        // SAFETY: the record lies inside the mapped header; a volatile read
        // of plain integers the node may be rewriting is checked by the
        // seq re-read below (a seqlock).
        let c = unsafe { std::ptr::read_volatile(&(*self.shm()).cycle) };
        std::sync::atomic::fence(Ordering::Acquire);
        (self.seq_word().load(Ordering::Relaxed) == seq).then_some(Cycle {
            seq,
            half: c.half & 1,
            frames: c.frames.min(self.layout.max_frames),
            rate: c.rate,
            position: c.position,
            nsec: c.nsec,
            publish_nsec: c.publish_nsec,
            late_cycles: c.late_cycles,
            output_delay: c.output_delay,
            upstream_latency: c.upstream_latency,
            downstream_latency: c.downstream_latency,
            missed: 0,
        })
    }

    fn node_gone(&self) -> bool {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let mut fds = [PollFd::new(&self.socket, PollFlags::IN)];
        let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
        matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
            && fds[0].revents().intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::IN)
    }

    /// Raw pointer to one channel buffer (`max_frames` floats). The Wine
    /// driver hands these to the ASIO host as its buffers.
    pub fn buffer_ptr(&self, half: u32, direction: Direction, channel: u32) -> *mut f32 {
        // SAFETY: `buffer_offset` asserts the indices and the layout was
        // validated against the mapped length.
        unsafe { self.map.as_ptr().add(self.layout.buffer_offset(half, direction, channel)).cast() }
    }

    /// The input the node wrote for `cycle`.
    pub fn input(&self, cycle: &Cycle, channel: u32) -> &[f32] {
        // SAFETY: the buffer holds `max_frames` >= `frames` floats; the node
        // does not write this half again until the next-but-one cycle.
        unsafe { std::slice::from_raw_parts(self.buffer_ptr(cycle.half, Direction::Input, channel), cycle.frames as usize) }
    }

    /// The output half the node takes for `cycle` once it is complete.
    pub fn output(&mut self, cycle: &Cycle, channel: u32) -> &mut [f32] {
        let frames = cycle.frames as usize;
        &mut self.output_half(cycle, channel)[..frames]
    }

    /// The whole output half of `cycle`: `max_frames` samples.
    pub fn output_half(&mut self, cycle: &Cycle, channel: u32) -> &mut [f32] {
        // SAFETY: as in `input`; the node reads this half only after
        // `complete` publishes it, and `&mut self` keeps slices unique.
        unsafe {
            std::slice::from_raw_parts_mut(self.buffer_ptr(cycle.half, Direction::Output, channel), self.layout.max_frames as usize)
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
        self.out_frames_word().store(out_frames.min(self.layout.max_frames), Ordering::Relaxed);
        self.done_word().store(cycle.seq, Ordering::Release);
        if self.same_cycle {
            futex::wake(self.done_word());
        }
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
