//! Model checks of the cross-thread protocol of `Shm` with loom, running the
//! shipped `write_cycle` / `try_read_cycle` and the `done_seq` handshake on
//! loom's atomics (see shm.rs, `Words`). Node and client are two threads
//! sharing one `Shm`, as two processes share one memfd.
//!
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p asio-bridge-abi --release --test loom`
#![cfg(loom)]

use asio_bridge_abi::{asio_bridge_cycle, sealed_memfd, CycleWriter, Layout, Mapping, Shm};
use loom::{cell::UnsafeCell, sync::Arc, thread};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

fn shm() -> Shm {
    let layout = Layout::new(1, 1, 64).unwrap();
    let fd = sealed_memfd(c"loom", layout.size).unwrap();
    Shm::create(Mapping::new(&fd, layout.size).unwrap(), layout, layout.info("loom")).unwrap()
}

/// Every field derived from `n`, and record(0) is the zeroed record of a
/// fresh mapping, so any mix of two writes (or of a write and the initial
/// state) differs from every record.
fn record(n: u32) -> asio_bridge_cycle {
    let v = u64::from(n);
    asio_bridge_cycle {
        seq: n,
        half: n & 1,
        frames: n * 3,
        rate: n * 5,
        position: v << 33,
        nsec: v * 7,
        publish_nsec: v * 11,
        late_cycles: n * 13,
        output_delay: n * 17,
        upstream_latency: n * 19,
        downstream_latency: n * 23,
        lock: 0,
    }
}

/// All fields but `lock`, which the writer sets.
type Fields = (u32, u32, u32, u32, u64, u64, u64, u32, u32, u32, u32);

fn fields(c: &asio_bridge_cycle) -> Fields {
    let c = *c;
    (c.seq, c.half, c.frames, c.rate, c.position, c.nsec, c.publish_nsec, c.late_cycles, c.output_delay, c.upstream_latency, c.downstream_latency)
}

fn assert_whole(c: &asio_bridge_cycle) {
    assert_eq!(fields(c), fields(&record(c.seq)), "torn record");
}

/// Bounded to 2 preemptions (a reader interrupted inside a write and
/// resumed, or the writer inside a read) so each model takes seconds: every
/// relaxed load may also read any store not yet ordered before it, which
/// multiplies the runs by 2^11 per concurrent record. LOOM_MAX_PREEMPTIONS
/// overrides (3: about 20 s for the seqlock).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = b.preemption_bound.or(Some(2));
    b.check(f);
}

/// The seqlock: whatever the interleaving and whichever stores the relaxed
/// loads see, a record the reader accepts is one the writer wrote whole.
#[test]
fn the_reader_accepts_only_whole_records() {
    model(|| {
        let shm = Arc::new(shm());
        let mut w = CycleWriter::default();
        // Record 1 before the reader runs, so the reader's `lock` can be
        // the even value of an older record while the fields change.
        shm.write_cycle(&mut w, &record(1));
        let node = {
            let shm = shm.clone();
            thread::spawn(move || shm.write_cycle(&mut w, &record(2)))
        };
        if let Some(c) = shm.try_read_cycle() {
            assert_whole(&c);
        }
        node.join().unwrap();
        // The last write is what a reader sees once the writer is done.
        let c = shm.try_read_cycle().expect("no writer is left");
        assert_eq!(c.seq, 2);
        assert_whole(&c);
    });
}

/// One pipelined cycle: the node writes input half `h`, publishes the
/// cycle; the client reads the input half, writes output half `h` and
/// `out_frames`, then releases `done_seq`; the node, in a later cycle,
/// takes the output only if `done_seq` says it is complete. loom reports
/// any unordered pair of accesses to the halves as a causality violation.
fn handshake(done_order: std::sync::atomic::Ordering) {
    const SEQ: u32 = 1;
    model(move || {
        let shm = Arc::new(shm());
        // The audio halves: plain memory, ordered only by the protocol.
        let input = Arc::new(UnsafeCell::new(0.0f32));
        let output = Arc::new(UnsafeCell::new(0.0f32));
        let client = {
            let (shm, input, output) = (shm.clone(), input.clone(), output.clone());
            thread::spawn(move || {
                // As the real client: wait on the futex word `seq`, then
                // copy the record.
                let c = loop {
                    if shm.seq().load(Relaxed) == SEQ {
                        match shm.try_read_cycle() {
                            Some(c) if c.seq == SEQ => break c,
                            _ => {}
                        }
                    }
                    thread::yield_now();
                };
                // SAFETY (model): the node wrote the input half before
                // publishing SEQ and does not touch it again this cycle.
                let x = input.with(|p| unsafe { *p });
                assert_eq!(x, 0.5, "the input half of cycle {SEQ}");
                // SAFETY (model): the node reads the output half only after
                // acquiring done_seq == SEQ.
                output.with_mut(|p| unsafe { *p = x * 2.0 });
                shm.out_frames().store(c.frames, Relaxed);
                shm.done_seq().store(c.seq, done_order);
            })
        };
        // SAFETY (model): the client reads the input half only after it
        // sees the cycle that publishes it.
        input.with_mut(|p| unsafe { *p = 0.5 });
        shm.write_cycle(&mut CycleWriter::default(), &record(SEQ));
        if shm.done_seq().load(Acquire) == SEQ {
            // SAFETY (model): done_seq == SEQ means the client finished
            // writing the output half.
            assert_eq!(output.with(|p| unsafe { *p }), 1.0);
            assert_eq!(shm.out_frames().load(Relaxed), record(SEQ).frames);
        }
        client.join().unwrap();
    });
}

#[test]
fn the_node_sees_the_clients_output_after_done_seq() {
    handshake(Release);
}

/// The check can fail: without the release, the node's read of the output
/// half races with the client's write, and loom says so.
#[test]
#[should_panic(expected = "Causality violation")]
fn a_relaxed_done_seq_is_a_data_race() {
    handshake(Relaxed);
}
