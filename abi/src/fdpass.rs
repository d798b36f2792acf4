//! Messages on the attach socket, with at most one passed fd (SCM_RIGHTS).
//! The one implementation both the node and the client use.
//!
//! The socket is SOCK_SEQPACKET, so a message arrives whole or not at all,
//! and a receive buffer too small for it is reported, never silently cut:
//! a message longer than the buffer (MSG_TRUNC) and control data longer
//! than the control buffer (MSG_CTRUNC) are errors, and every fd that did
//! arrive with such a message is closed before the error is returned.

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use std::{
    io::{self, IoSlice, IoSliceMut},
    mem::MaybeUninit,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
};

/// Room for one fd, plus one more so a peer that sends two is seen (and
/// refused) rather than reported as control truncation.
const CONTROL_FDS: usize = 2;

/// Whether a call may block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocking {
    Yes,
    No,
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Sends one message, passing `fd` with it if given. A message is sent
/// whole or not at all (SOCK_SEQPACKET); SIGPIPE is never raised.
pub fn send(sock: impl AsFd, bytes: &[u8], fd: Option<BorrowedFd<'_>>, blocking: Blocking) -> io::Result<()> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds;
    if let Some(fd) = fd {
        fds = [fd];
        if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
            return Err(invalid("no room for the fd in the control buffer".into()));
        }
    }
    let mut flags = SendFlags::NOSIGNAL;
    if blocking == Blocking::No {
        flags |= SendFlags::DONTWAIT;
    }
    let n = sendmsg(sock, &[IoSlice::new(bytes)], &mut control, flags)?;
    if n != bytes.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, format!("sent {n} of {} bytes", bytes.len())));
    }
    Ok(())
}

/// One message received whole.
#[derive(Debug)]
pub struct Received {
    pub len: usize,
    /// The fd passed with it, close-on-exec, if any.
    pub fd: Option<OwnedFd>,
}

/// Receives one message into `buf`. Ok(None) on orderly close. A message
/// longer than `buf`, truncated control data, or more than one fd is an
/// error, and any fds that came with it are closed.
pub fn recv(sock: impl AsFd, buf: &mut [u8], blocking: Blocking) -> io::Result<Option<Received>> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(CONTROL_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let capacity = buf.len();
    // TRUNC makes the kernel report the real length of a longer message.
    let mut flags = RecvFlags::CMSG_CLOEXEC | RecvFlags::TRUNC;
    if blocking == Blocking::No {
        flags |= RecvFlags::DONTWAIT;
    }
    let msg = recvmsg(sock, &mut [IoSliceMut::new(buf)], &mut control, flags)?;
    // Take ownership of every fd that arrived before deciding anything, so
    // each one is closed on every error path (OwnedFd drops).
    let mut fds: [Option<OwnedFd>; CONTROL_FDS + 1] = Default::default();
    let mut n_fds = 0usize;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            for fd in received {
                if let Some(slot) = fds.get_mut(n_fds) {
                    *slot = Some(fd);
                }
                n_fds += 1;
            }
        }
    }
    if msg.flags.contains(ReturnFlags::CTRUNC) {
        return Err(invalid("the peer passed more file descriptors than one message may carry".into()));
    }
    if msg.flags.contains(ReturnFlags::TRUNC) || msg.bytes > capacity {
        return Err(invalid(format!("message of {} bytes is longer than {capacity}", msg.bytes)));
    }
    if n_fds > 1 {
        return Err(invalid(format!("the peer passed {n_fds} file descriptors with one message")));
    }
    if msg.bytes == 0 && n_fds == 0 {
        return Ok(None);
    }
    Ok(Some(Received { len: msg.bytes, fd: fds[0].take() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
    use std::os::fd::AsRawFd;

    fn pair() -> (OwnedFd, OwnedFd) {
        socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None).unwrap()
    }

    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }

    #[test]
    fn passes_one_fd_with_a_message() {
        let (a, b) = pair();
        let memfd = crate::sealed_memfd(c"fdpass-test", 4096).unwrap();
        send(&a, b"hello", Some(memfd.as_fd()), Blocking::Yes).unwrap();
        let mut buf = [0u8; 16];
        let got = recv(&b, &mut buf, Blocking::Yes).unwrap().unwrap();
        assert_eq!(&buf[..got.len], b"hello");
        let fd = got.fd.unwrap();
        assert_ne!(fd.as_raw_fd(), memfd.as_raw_fd());
        assert_eq!(rustix::fs::fstat(&fd).unwrap().st_size, 4096);
        send(&a, b"x", None, Blocking::Yes).unwrap();
        assert!(recv(&b, &mut buf, Blocking::Yes).unwrap().unwrap().fd.is_none());
        drop(a);
        assert!(recv(&b, &mut buf, Blocking::Yes).unwrap().is_none());
    }

    #[test]
    fn truncation_is_an_error_and_closes_what_came() {
        let (a, b) = pair();
        let memfd = crate::sealed_memfd(c"fdpass-test", 4096).unwrap();
        let before = open_fds();
        send(&a, &[7u8; 64], Some(memfd.as_fd()), Blocking::Yes).unwrap();
        let mut small = [0u8; 8];
        let e = recv(&b, &mut small, Blocking::Yes).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(open_fds(), before, "the fd of a truncated message leaked");
        // Nothing is left of it: the next message is read on its own.
        send(&a, b"next", None, Blocking::Yes).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(recv(&b, &mut buf, Blocking::Yes).unwrap().unwrap().len, 4);
        assert!(recv(&b, &mut buf, Blocking::No).is_err(), "nothing more queued");
    }

    #[test]
    fn too_many_fds_are_refused_and_closed() {
        let (a, b) = pair();
        let fds: Vec<OwnedFd> = (0..4).map(|_| crate::sealed_memfd(c"fdpass-test", 4096).unwrap()).collect();
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        assert!(control.push(SendAncillaryMessage::ScmRights(&borrowed)));
        sendmsg(&a, &[IoSlice::new(b"two")], &mut control, SendFlags::NOSIGNAL).unwrap();
        let before = open_fds();
        let mut buf = [0u8; 8];
        assert!(recv(&b, &mut buf, Blocking::Yes).is_err());
        assert_eq!(open_fds(), before, "fds of a refused message leaked");
    }
}
