//! A shared mapping of the node's memfd, unmapped on drop.
//!
//! Memory is ready before it is used: `Mapping::new` populates every page
//! (MAP_POPULATE, then one read per page, which also covers kernels that
//! ignore the flag for shared mappings) and locks the pages in RAM where
//! RLIMIT_MEMLOCK allows, before anyone gets a pointer into it. The first
//! touch on a real-time thread (the node's process(), the driver's callback)
//! therefore never page-faults to allocate a page, and locked pages are
//! never swapped out under it. Locking is best effort: without room in the
//! limit the mapping is still populated and usable, just not pinned.

use rustix::{
    fs::{fcntl_add_seals, fstat, ftruncate, memfd_create, MemfdFlags, SealFlags},
    mm::{mlock, mmap, munmap, MapFlags, ProtFlags},
};
use std::{
    ffi::CStr,
    io,
    os::fd::OwnedFd,
    ptr::NonNull,
};

const PAGE: usize = 4096;

pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    locked: bool,
}

// SAFETY: the mapping is plain shared memory; every access to the words both
// processes write goes through atomics, and audio buffers are handed out per
// half following the cycle protocol.
unsafe impl Send for Mapping {}
// SAFETY: as for Send: shared access is atomics or per-half by protocol.
unsafe impl Sync for Mapping {}

/// How much work `Mapping::with` does before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepare {
    /// Populate every page and mlock them where the limit allows.
    PrefaultAndLock,
    /// Map only; pages fault in on first touch. For measuring the cost.
    Lazy,
}

impl Mapping {
    /// Maps `len` bytes of `fd` shared, populated and (best effort) locked.
    pub fn new(fd: &OwnedFd, len: usize) -> io::Result<Self> {
        Self::with(fd, len, Prepare::PrefaultAndLock)
    }

    pub fn with(fd: &OwnedFd, len: usize, prepare: Prepare) -> io::Result<Self> {
        if (fstat(fd)?.st_size as u64) < len as u64 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "shared memory is smaller than announced"));
        }
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty shared memory"));
        }
        let flags = match prepare {
            Prepare::PrefaultAndLock => MapFlags::SHARED | MapFlags::POPULATE,
            Prepare::Lazy => MapFlags::SHARED,
        };
        // SAFETY: a fresh shared mapping of `len` bytes of an fd that is at
        // least that large (checked above; the node sealed it against
        // shrinking); the kernel picks the address, so nothing is replaced.
        let ptr = unsafe { mmap(std::ptr::null_mut(), len, ProtFlags::READ | ProtFlags::WRITE, flags, fd, 0)? };
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
        let mut map = Self { ptr, len, locked: false };
        if prepare == Prepare::PrefaultAndLock {
            map.prefault();
            // SAFETY: locking pages of our own live mapping; changes no memory.
            map.locked = unsafe { mlock(map.ptr.as_ptr().cast(), len) }.is_ok();
        }
        Ok(map)
    }

    /// Reads one byte per page, so every page table entry exists now.
    fn prefault(&self) {
        let mut sum = 0u8;
        for offset in (0..self.len).step_by(PAGE) {
            // SAFETY: `offset` < `len`, inside the mapping; a volatile read of
            // a byte (any value is valid) that the peer may write concurrently
            // is a read of plain shared memory, never a reference.
            sum = sum.wrapping_add(unsafe { std::ptr::read_volatile(self.ptr.as_ptr().add(offset)) });
        }
        std::hint::black_box(sum);
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the pages are locked in RAM (RLIMIT_MEMLOCK had room).
    pub fn is_locked(&self) -> bool {
        self.locked
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `with` mapped; no references into it
        // outlive the owner (they borrow from it). munmap also unlocks.
        let _ = unsafe { munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Creates the memfd the node hands to a client: zero-filled, and sealed so
/// the client can never shrink it (a truncated mapping would SIGBUS the
/// daemon) nor grow it or change the seals.
pub fn sealed_memfd(name: &CStr, len: usize) -> io::Result<OwnedFd> {
    let fd = memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    ftruncate(&fd, len as u64)?;
    fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_memfd_cannot_shrink() {
        let fd = sealed_memfd(c"test", 8192).unwrap();
        assert!(ftruncate(&fd, 4096).is_err());
        assert!(ftruncate(&fd, 16384).is_err());
        let map = Mapping::new(&fd, 8192).unwrap();
        assert_eq!(map.len(), 8192);
        assert!(Mapping::new(&fd, 8193).is_err());
    }

    /// The cost of preparing memory, for the notes: run with
    /// `cargo test -p asio-bridge-abi --release -- --ignored --nocapture prefault_cost`.
    #[test]
    #[ignore]
    fn prefault_cost() {
        // The default node (2 + 2 channels, quantum limit 8192) and 64 + 64
        // channels of 8192 frames, the largest common setup.
        for (layout, prepare) in [(2, 2), (64, 64)]
            .into_iter()
            .flat_map(|(i, o)| [Prepare::Lazy, Prepare::PrefaultAndLock].map(|p| (crate::Layout::new(i, o, 8192).unwrap(), p)))
        {
            let mut total = std::time::Duration::ZERO;
            let mut first_touch = std::time::Duration::ZERO;
            let mut locked = false;
            const RUNS: u32 = 20;
            for _ in 0..RUNS {
                let fd = sealed_memfd(c"prefault-cost", layout.size).unwrap();
                let t = std::time::Instant::now();
                let map = Mapping::with(&fd, layout.size, prepare).unwrap();
                total += t.elapsed();
                locked = map.is_locked();
                // What the RT thread pays on its first cycle: a write to
                // every page of one half.
                let t = std::time::Instant::now();
                for off in (layout.audio_offset..layout.size / 2).step_by(PAGE) {
                    // SAFETY: inside the mapping.
                    unsafe { map.as_ptr().add(off).write_volatile(1) };
                }
                first_touch += t.elapsed();
            }
            println!(
                "{prepare:?}: {} bytes, map {:?}, first touch of half {:?}, locked: {locked}",
                layout.size,
                total / RUNS,
                first_touch / RUNS
            );
        }
    }
}
