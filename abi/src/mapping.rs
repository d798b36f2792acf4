//! A shared mapping of the node's memfd, unmapped on drop.

use std::{io, os::fd::{AsRawFd, OwnedFd}, ptr::NonNull};

pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; every access to the words both
// processes write goes through atomics, and audio buffers are handed out per
// half following the cycle protocol.
unsafe impl Send for Mapping {}
// SAFETY: as for Send: shared access is atomics or per-half by protocol.
unsafe impl Sync for Mapping {}

impl Mapping {
    pub fn new(fd: &OwnedFd, len: usize) -> io::Result<Self> {
        // SAFETY: libc::stat is plain data; all-zero is a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat on an fd we own into a valid out-pointer.
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
            return Err(io::Error::last_os_error());
        }
        if (st.st_size as u64) < len as u64 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "shared memory is smaller than announced",
            ));
        }
        // SAFETY: a fresh shared mapping of `len` bytes of an fd that is at
        // least that large (checked above; the node sealed it against shrinking).
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { ptr: NonNull::new(ptr.cast()).unwrap(), len })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped; no references into it
        // outlive the owner (they borrow from it).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Creates the memfd the node hands to a client: zero-filled, and sealed so
/// the client can never shrink it (a truncated mapping would SIGBUS the
/// daemon) nor grow it or change the seals.
pub fn sealed_memfd(name: &std::ffi::CStr, len: usize) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: memfd_create with a valid C string returns a new fd or -1.
    let raw = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: plain fd syscalls on an fd we own.
    unsafe {
        if libc::ftruncate(raw, len as libc::off_t) < 0 || libc::fcntl(raw, libc::F_ADD_SEALS, seals) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_memfd_cannot_shrink() {
        let fd = sealed_memfd(c"test", 8192).unwrap();
        // SAFETY: plain syscall on an fd we own.
        assert!(unsafe { libc::ftruncate(fd.as_raw_fd(), 4096) } < 0);
        let map = Mapping::new(&fd, 8192).unwrap();
        assert_eq!(map.len(), 8192);
        assert!(Mapping::new(&fd, 8193).is_err());
    }
}
