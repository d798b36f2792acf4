//! The control socket: a SOCK_SEQPACKET listener under
//! `$XDG_RUNTIME_DIR/asio-bridge/`, peer credentials, and fd passing.
//! Main loop only.

use std::{
    ffi::CString,
    fs, io,
    mem::size_of,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
        unix::{ffi::OsStrExt, fs::PermissionsExt},
    },
    path::{Path, PathBuf},
};

fn cvt(n: libc::c_int) -> io::Result<libc::c_int> {
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n) }
}

fn sockaddr(path: &Path) -> io::Result<libc::sockaddr_un> {
    // SAFETY: sockaddr_un is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("socket path {} is too long", path.display())));
    }
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    Ok(addr)
}

fn seqpacket() -> io::Result<OwnedFd> {
    // SAFETY: socket() returns a new fd we own, or -1.
    let fd = cvt(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0) })?;
    // SAFETY: fresh fd owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
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
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    if !meta.is_dir() || std::os::unix::fs::MetadataExt::uid(&meta) != uid {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("{} is not a directory owned by uid {uid}", dir.display())));
    }
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    Ok(dir.join(node_name))
}

/// Binds and listens at `path`. A stale socket file is replaced; a live one
/// (another node answering there) is an error.
pub fn listen(path: &Path) -> io::Result<OwnedFd> {
    let addr = sockaddr(path)?;
    let len = size_of::<libc::sockaddr_un>() as libc::socklen_t;
    if path.exists() {
        let probe = seqpacket()?;
        // SAFETY: connect with a valid address on our own socket.
        if unsafe { libc::connect(probe.as_raw_fd(), (&addr as *const libc::sockaddr_un).cast(), len) } == 0 {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another bridge node already listens on {}; give this one another node.name", path.display()),
            ));
        }
        fs::remove_file(path)?;
    }
    let fd = seqpacket()?;
    // SAFETY: bind/listen with a valid address on a socket we own.
    unsafe {
        cvt(libc::bind(fd.as_raw_fd(), (&addr as *const libc::sockaddr_un).cast(), len))?;
        cvt(libc::listen(fd.as_raw_fd(), libc::SOMAXCONN))?;
    }
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
    // SAFETY: accept4 without address on a listening socket; returns an fd we own.
    let fd = unsafe { libc::accept4(listener, std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::WouldBlock { Ok(None) } else { Err(e) };
    }
    // SAFETY: fresh fd from accept4.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED into a ucred-sized buffer.
    cvt(unsafe { libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, (&mut cred as *mut libc::ucred).cast(), &mut len) })?;
    Ok(Some((fd, Peer { pid: cred.pid as u32, uid: cred.uid })))
}

/// Receives one message. Ok(None) on orderly close; a message longer than
/// `buf` is an error (MSG_TRUNC), never a partial read taken as whole.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // SAFETY: receiving into a valid buffer; MSG_TRUNC reports the real length.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT | libc::MSG_TRUNC) };
    match n {
        n if n < 0 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        n if n as usize > buf.len() => Err(io::Error::new(io::ErrorKind::InvalidData, format!("message of {n} bytes is too long"))),
        n => Ok(Some(n as usize)),
    }
}

/// Sends one message, optionally passing `fd`.
pub fn send(sock: RawFd, bytes: &[u8], fd: Option<RawFd>) -> io::Result<()> {
    let mut iov = libc::iovec { iov_base: bytes.as_ptr() as *mut _, iov_len: bytes.len() };
    let mut cmsg = [0u64; 4];
    // SAFETY: msghdr points at live buffers for the call; the control message
    // is built with the CMSG macros inside `cmsg`, which is large enough for
    // one fd.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if let Some(fd) = fd {
            msg.msg_control = cmsg.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(size_of::<RawFd>() as u32) as usize;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd);
        }
        cvt(libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) as libc::c_int)?;
    }
    Ok(())
}

/// The memfd name, visible in /proc/<daemon>/fd of the daemon and client.
pub fn memfd_name(node_name: &str) -> CString {
    CString::new(format!("asio-bridge:{node_name}")).unwrap()
}
