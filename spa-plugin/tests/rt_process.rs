//! process() against the fixture: it allocates nothing, plays what the
//! client wrote in the right cycle, and silence for cycles it missed.

mod fixture;

use fixture::{complete, output_half, published, word, Graph};
use spa_asio_bridge::Mode;
use asio_bridge_abi::{asio_bridge_shm, futex};
use std::sync::atomic::Ordering;
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
