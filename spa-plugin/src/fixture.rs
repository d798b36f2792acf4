//! A stand-in for the daemon's side of process(): io areas, port buffers
//! and a driver position, wired into an `Rt` with an attached client. Used
//! by the allocation test and the process() benchmark; end-to-end claims
//! are made against the real daemon in tests/.

use crate::{
    config::Mode,
    cycle::{Attachment, Clock},
    ports::Buffer,
    Rt,
};
use asio_bridge_abi::{asio_bridge_shm, futex, sealed_memfd, Layout, Mapping};
use libspa_sys as spa;
use std::sync::atomic::{AtomicU32, Ordering};

struct PortMem {
    io: Box<spa::spa_io_buffers>,
    chunk: Box<spa::spa_chunk>,
    // Kept alive: `buffer` points at it.
    _data: Box<spa::spa_data>,
    buffer: Box<spa::spa_buffer>,
    samples: Vec<f32>,
}

impl PortMem {
    fn new(frames: u32) -> Self {
        let mut samples = vec![0.5f32; frames as usize];
        // SAFETY: plain C structs; all-zero is valid for them.
        let mut chunk: Box<spa::spa_chunk> = Box::new(unsafe { std::mem::zeroed() });
        let mut data: Box<spa::spa_data> = Box::new(unsafe { std::mem::zeroed() });
        data.data = samples.as_mut_ptr().cast();
        data.maxsize = frames * 4;
        data.chunk = &mut *chunk;
        // SAFETY: as above.
        let mut buffer: Box<spa::spa_buffer> = Box::new(unsafe { std::mem::zeroed() });
        buffer.n_datas = 1;
        buffer.datas = &mut *data;
        let io = Box::new(spa::spa_io_buffers { status: 0, buffer_id: spa::SPA_ID_INVALID });
        Self { io, chunk, _data: data, buffer, samples }
    }
}

pub struct Graph {
    pub rt: Rt,
    position: Box<spa::spa_io_position>,
    inputs: Vec<PortMem>,
    outputs: Vec<PortMem>,
    /// The client's view of the same memory.
    client: Mapping,
}

impl Graph {
    /// A node with `channels` inputs and outputs at `quantum`, a client
    /// attached, every port linked.
    pub fn new(channels: u32, quantum: u32, mode: Mode) -> Self {
        let limit = 8192;
        let mut rt = Rt::new(channels, channels, limit, mode);
        // SAFETY: plain C struct; all-zero is valid.
        let mut position: Box<spa::spa_io_position> = Box::new(unsafe { std::mem::zeroed() });
        position.clock.duration = quantum as u64;
        position.clock.rate = spa::spa_fraction { num: 1, denom: 48000 };
        rt.set_position(&*position);
        let mut inputs: Vec<PortMem> = (0..channels).map(|_| PortMem::new(limit)).collect();
        let mut outputs: Vec<PortMem> = (0..channels).map(|_| PortMem::new(limit)).collect();
        for (dir, ports) in [(spa::SPA_DIRECTION_INPUT, &mut inputs), (spa::SPA_DIRECTION_OUTPUT, &mut outputs)] {
            for (i, p) in ports.iter_mut().enumerate() {
                let port = rt.port(dir, i as u32).unwrap();
                port.set_io(&mut *p.io);
                // SAFETY: the buffer and its memory live in `Graph` as long as `rt`.
                port.set_buffers(vec![unsafe { Buffer::from_spa(&mut *p.buffer) }.unwrap()]);
            }
        }
        let layout = Layout::new(channels, channels, limit).unwrap();
        let fd = sealed_memfd(c"fixture", layout.size).unwrap();
        let node_map = Mapping::new(&fd, layout.size).unwrap();
        // SAFETY: fresh mapping large enough for the header.
        unsafe { (*node_map.as_ptr().cast::<asio_bridge_shm>()).info = layout.info("fixture") };
        let client = Mapping::new(&fd, layout.size).unwrap();
        rt.set_attachment(Some(Attachment::new(node_map, layout).unwrap()));
        Self { rt, position, inputs, outputs, client }
    }

    /// The peer's side before a cycle: inputs carry a full quantum, outputs
    /// were consumed (as PipeWire's output mix does).
    pub fn prepare(&mut self) {
        let frames = self.position.clock.duration as u32;
        for p in &mut self.inputs {
            *p.chunk = spa::spa_chunk { offset: 0, size: frames * 4, stride: 4, flags: 0 };
            p.io.status = spa::SPA_STATUS_HAVE_DATA as i32;
            p.io.buffer_id = 0;
        }
        for p in &mut self.outputs {
            p.io.status = spa::SPA_STATUS_NEED_DATA as i32;
        }
    }

    /// The client's side after a wake-up: marks the published cycle done.
    pub fn client_completes(&self) {
        complete(self.client.as_ptr() as usize, self.position.clock.duration as u32);
    }

    /// The client's mapping, for a client thread in same-cycle tests.
    pub fn client_addr(&self) -> usize {
        self.client.as_ptr() as usize
    }

    /// Advances the driver clock by one quantum.
    pub fn advance(&mut self) {
        self.position.clock.position += self.position.clock.duration;
        self.position.clock.nsec += 1_000_000;
    }

    pub fn clock(&self) -> Clock {
        Clock { frames: self.position.clock.duration as u32, rate: 48000, position: self.position.clock.position, nsec: self.position.clock.nsec }
    }

    /// What output port `ch` holds after the last cycle.
    pub fn output(&self, ch: usize) -> &[f32] {
        let frames = self.position.clock.duration as usize;
        &self.outputs[ch].samples[..frames]
    }

    /// The client's output half for the cycle it was last woken for.
    pub fn client_output(&mut self, ch: u32) -> &mut [f32] {
        let frames = self.position.clock.duration as usize;
        // SAFETY: the mapping lives in `self`, borrowed mutably.
        unsafe { output_half(self.client.as_ptr() as usize, self.inputs.len() as u32, ch, frames) }
    }
}

fn word<'a>(shm: usize, offset: usize) -> &'a AtomicU32 {
    // SAFETY: u32 fields of a live mapped header, accessed atomically.
    unsafe { &*(shm as *const u8).add(offset).cast::<AtomicU32>() }
}

/// The published seq, as a client reads it.
pub fn published(shm: usize) -> u32 {
    word(shm, std::mem::offset_of!(asio_bridge_shm, cycle)).load(Ordering::Acquire)
}

/// What a client does after processing: store how much it wrote and
/// done_seq, and wake the node.
pub fn complete(shm: usize, out_frames: u32) {
    let client = std::mem::offset_of!(asio_bridge_shm, client);
    word(shm, client + std::mem::offset_of!(asio_bridge_abi::asio_bridge_client, out_frames)).store(out_frames, Ordering::Relaxed);
    let done = word(shm, client);
    done.store(published(shm), Ordering::Release);
    futex::wake(done);
}

/// # Safety
/// `shm` is a live client mapping of a `channels`-in, `channels`-out fixture.
pub unsafe fn output_half<'a>(shm: usize, channels: u32, ch: u32, frames: usize) -> &'a mut [f32] {
    let layout = Layout::new(channels, channels, 8192).unwrap();
    let off = layout.buffer_offset(published(shm) & 1, asio_bridge_abi::Direction::Output, ch).unwrap();
    // SAFETY: a channel buffer inside the mapping, per the contract.
    unsafe { std::slice::from_raw_parts_mut((shm as *mut u8).add(off).cast(), frames) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{
        alloc::{GlobalAlloc, Layout as AllocLayout, System},
        cell::Cell,
    };

    /// Fails the test if anything allocates on this thread while armed.
    struct RtGuard;
    thread_local!(static ARMED: Cell<bool> = const { Cell::new(false) });
    // SAFETY: forwards to the system allocator; only adds a check.
    unsafe impl GlobalAlloc for RtGuard {
        unsafe fn alloc(&self, l: AllocLayout) -> *mut u8 {
            if ARMED.with(Cell::get) {
                ARMED.with(|a| a.set(false));
                panic!("allocation of {} bytes on the real-time path", l.size());
            }
            // SAFETY: the caller's layout, passed on unchanged.
            unsafe { System.alloc(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: AllocLayout) {
            if ARMED.with(Cell::get) {
                ARMED.with(|a| a.set(false));
                panic!("deallocation on the real-time path");
            }
            // SAFETY: a block System allocated with this layout.
            unsafe { System.dealloc(p, l) }
        }
    }
    #[global_allocator]
    static GUARD: RtGuard = RtGuard;

    fn rt_section<T>(f: impl FnOnce() -> T) -> T {
        ARMED.with(|a| a.set(true));
        let r = f();
        ARMED.with(|a| a.set(false));
        r
    }

    #[test]
    fn the_guard_catches_an_allocation() {
        let r = std::panic::catch_unwind(|| rt_section(|| Box::new(1u64)));
        assert!(r.is_err());
    }

    #[test]
    fn process_allocates_nothing_attached_late_or_detached() {
        let mut g = Graph::new(8, 256, Mode::Pipelined);
        for cycle in 0..200 {
            g.prepare();
            rt_section(|| g.rt.process());
            if cycle % 7 != 0 {
                g.client_completes(); // every 7th cycle the client is late
            }
            g.advance();
        }
        let old = g.rt.set_attachment(None);
        g.prepare();
        rt_section(|| g.rt.process());
        drop(old);
    }

    #[test]
    fn output_follows_the_client_one_cycle_later_and_late_cycles_are_silent() {
        let mut g = Graph::new(2, 64, Mode::Pipelined);
        g.prepare();
        g.rt.process(); // cycle 1: client woken for half 1
        g.client_output(0).fill(0.25);
        g.client_completes();
        g.advance();
        g.prepare();
        g.rt.process(); // cycle 2 plays what the client wrote for cycle 1
        assert!(g.output(0).iter().all(|&v| v == 0.25));
        g.advance(); // the client misses cycle 2
        g.prepare();
        g.rt.process();
        assert!(g.output(0).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn same_cycle_plays_this_cycles_output_or_silence_after_the_budget() {
        let mut g = Graph::new(2, 64, Mode::SameCycle);
        // No client: every cycle waits out its budget (a third of a ms
        // here), plays silence, and allocates nothing while waiting.
        for _ in 0..3 {
            g.prepare();
            rt_section(|| g.rt.process());
            assert!(g.output(0).iter().all(|&v| v == 0.0));
            g.advance();
        }
        // A client thread that answers each wake-up with the cycle's seq as
        // its output: the node plays it in the same cycle, and waiting for
        // it allocates nothing either.
        let shm = g.client_addr();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let client = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut seen = published(shm);
                while !stop.load(Ordering::Relaxed) {
                    let seq = published(shm);
                    if seq == seen {
                        futex::wait(word(shm, std::mem::offset_of!(asio_bridge_shm, cycle)), seq, std::time::Duration::from_millis(10));
                        continue;
                    }
                    seen = seq;
                    // SAFETY: the fixture's 2-channel mapping, alive until the thread is joined.
                    unsafe { output_half(shm, 2, 0, 64) }.fill(seq as f32);
                    complete(shm, 64);
                }
            })
        };
        let mut played = 0;
        for _ in 0..50 {
            g.prepare();
            // Armed on this thread only: the client thread may allocate.
            rt_section(|| g.rt.process());
            let seq = published(shm) as f32;
            // The budget is long for a thread that only copies; a loaded
            // machine may still miss one, which then plays silence.
            if g.output(0).iter().all(|&v| v == seq) {
                played += 1;
            } else {
                assert!(g.output(0).iter().all(|&v| v == 0.0), "neither this cycle's output nor silence");
            }
            g.advance();
        }
        stop.store(true, Ordering::Relaxed);
        client.join().unwrap();
        assert!(played > 0, "the client's output never left in its own cycle");
    }
}
