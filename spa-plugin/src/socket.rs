//! The control socket: a SOCK_SEQPACKET listener under
//! `$XDG_RUNTIME_DIR/asio-bridge/`, peer credentials, and fd passing.
//! Main loop only.

use asio_bridge_abi::fdpass::{self, Blocking, Received};
use rustix::net;
use std::{
    ffi::CString,
    fs, io,
    os::{
        fd::{BorrowedFd, OwnedFd, RawFd},
        unix::fs::PermissionsExt,
    },
    path::{Path, PathBuf},
};

fn seqpacket() -> io::Result<OwnedFd> {
    Ok(net::socket_with(
        net::AddressFamily::UNIX,
        net::SocketType::SEQPACKET,
        net::SocketFlags::CLOEXEC | net::SocketFlags::NONBLOCK,
        None,
    )?)
}

/// Borrows an fd the caller owns for the duration of one call.
fn borrow<'a>(fd: RawFd) -> BorrowedFd<'a> {
    // SAFETY: every caller passes an fd it owns (a Connection's or the
    // listener's OwnedFd) and keeps it open across the call; the borrow does
    // not outlive the call.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// The socket path for `node_name`, creating its private directory.
pub fn prepare_dir(node_name: &str) -> io::Result<PathBuf> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "XDG_RUNTIME_DIR is not set in the daemon's environment"))?;
    let dir = PathBuf::from(runtime).join(asio_bridge_abi::socket_dir());
    match fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))),
    }
    let meta = fs::symlink_metadata(&dir)?;
    let uid = rustix::process::geteuid().as_raw();
    if !meta.is_dir() || std::os::unix::fs::MetadataExt::uid(&meta) != uid {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("{} is not a directory owned by uid {uid}", dir.display())));
    }
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    Ok(dir.join(node_name))
}

/// Binds and listens at `path`. A stale socket file is replaced; a live one
/// (another node answering there) is an error.
pub fn listen(path: &Path) -> io::Result<OwnedFd> {
    let addr = net::SocketAddrUnix::new(path)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("socket path {} is too long", path.display())))?;
    if path.exists() {
        let probe = seqpacket()?;
        if net::connect(&probe, &addr).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another bridge node already listens on {}; give this one another node.name", path.display()),
            ));
        }
        fs::remove_file(path)?;
    }
    let fd = seqpacket()?;
    net::bind(&fd, &addr)?;
    // A negative backlog is clamped by the kernel to net.core.somaxconn.
    net::listen(&fd, -1)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(fd)
}

/// Who is on the other end of a connection, from the kernel.
#[derive(Debug, Clone)]
pub struct Peer {
    pub pid: u32,
    pub uid: u32,
}

impl Peer {
    /// The peer's executable, for telling a second client who holds the port.
    pub fn exe(&self) -> String {
        fs::read_link(format!("/proc/{}/exe", self.pid)).map(|p| p.display().to_string()).unwrap_or_else(|_| "unknown".into())
    }
}

/// Accepts one pending connection with its credentials; None when there is none.
pub fn accept(listener: RawFd) -> io::Result<Option<(OwnedFd, Peer)>> {
    let fd = match net::accept_with(borrow(listener), net::SocketFlags::CLOEXEC | net::SocketFlags::NONBLOCK) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::AGAIN) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let cred = net::sockopt::socket_peercred(&fd)?;
    Ok(Some((fd, Peer { pid: cred.pid.as_raw_nonzero().get() as u32, uid: cred.uid.as_raw() })))
}

/// Receives one message, without blocking. Ok(None) on orderly close; a
/// message longer than `buf` is an error, never a partial read taken as
/// whole, and so is a passed fd (a client has none to pass): it is closed.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<usize>> {
    match fdpass::recv(borrow(fd), buf, Blocking::No)? {
        None => Ok(None),
        Some(Received { fd: Some(_), .. }) => {
            Err(io::Error::new(io::ErrorKind::InvalidData, "a client passed a file descriptor"))
        }
        Some(Received { len, fd: None }) => Ok(Some(len)),
    }
}

/// Sends one message without blocking, optionally passing `fd`.
pub fn send(sock: RawFd, bytes: &[u8], fd: Option<RawFd>) -> io::Result<()> {
    fdpass::send(borrow(sock), bytes, fd.map(borrow), Blocking::No)
}

/// The memfd name, visible in /proc/<daemon>/fd of the daemon and client.
pub fn memfd_name(node_name: &str) -> CString {
    CString::new(format!("asio-bridge:{node_name}")).unwrap()
}
