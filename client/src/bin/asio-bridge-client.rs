//! The reference client: attaches to a bridge node like the Wine driver
//! does, runs a callback per cycle, and reports what it saw.

use asio_bridge_abi::{asio_bridge_hello, ASIO_BRIDGE_VERSION};
use asio_bridge_client::{
    monotonic_nsec,
    signal::{counter, CounterCheck},
    Cycle, Direction, Session, WaitError,
};
use std::{process::exit, time::Duration};

const USAGE: &str = "usage: asio-bridge-client [OPTIONS]

Attaches to a PipeWire ASIO Bridge node the way the Wine ASIO driver does,
processes every graph cycle for a while, and prints what it saw as
key=value lines: among them wake_* (node publish to callback start) and
done_* (node publish to the cycle marked complete), in microseconds.

Options:
  --node NAME        bridge node to attach to (default: asio-bridge)
  --name NAME        name the node shows to other clients (default: asio-bridge-client)
  --seconds S        how long to run (default: 5)
  --output MODE      what to send to every output: silence | counter | poison
                     (default: silence); counter: each sample carries its
                     graph sample index; poison: NaN, +Inf, -Inf and 0.25 in
                     turn, as a broken plugin might
  --flood A,B        after each cycle ask 500 times, without waiting, for
                     quantum A, after the next for B, and so on (a hostile
                     client); reports requests, requests_not_sent (socket
                     full) and quantum_changes
  --check-counter    check that input 1 carries the counter signal bit-exactly
                     and report its delay in samples
  --quantum N        ask the node to run the graph at quantum N while attached
  --rate HZ          ask the node to run the graph at HZ while attached
  --no-autoconnect   ask for the bridge to stay unlinked while attached (the
                     node shows node.autoconnect = false until it leaves)
  --rt PRIO          run the callback thread SCHED_FIFO at PRIO (1-99)
  --cpu N            pin the callback thread to CPU N
  --protocol-version V  announce another protocol version (for testing refusals)
  -h, --help         this text

Exit status: 0 done, 1 a check failed, 2 could not attach.";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    Silence,
    Counter,
    Poison,
}

const POISON: [f32; 4] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.25];

struct Options {
    node: String,
    name: String,
    seconds: f64,
    output: Output,
    check_counter: bool,
    autoconnect: bool,
    flood: Option<(u32, u32)>,
    rt: Option<i32>,
    cpu: Option<usize>,
    version: u32,
    quantum: u32,
    rate: u32,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        node: asio_bridge_abi::default_node().into(),
        name: "asio-bridge-client".into(),
        seconds: 5.0,
        output: Output::Silence,
        check_counter: false,
        autoconnect: true,
        flood: None,
        rt: None,
        cpu: None,
        version: ASIO_BRIDGE_VERSION,
        quantum: 0,
        rate: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |what: &str| args.next().ok_or(format!("{a} needs {what}"));
        let num = |v: String| v.parse::<f64>().map_err(|_| format!("{a}: '{v}' is not a number"));
        match a.as_str() {
            "--node" => o.node = value("a node name")?,
            "--name" => o.name = value("a name")?,
            "--no-autoconnect" => o.autoconnect = false,
            "--seconds" => o.seconds = num(value("seconds")?)?,
            "--output" => match value("silence, counter or poison")?.as_str() {
                "silence" => o.output = Output::Silence,
                "counter" => o.output = Output::Counter,
                "poison" => o.output = Output::Poison,
                v => return Err(format!("--output: unknown mode '{v}'")),
            },
            "--flood" => {
                let v = value("two quanta, A,B")?;
                let pair = v.split_once(',').and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
                o.flood = Some(pair.ok_or(format!("--flood: '{v}' is not A,B"))?);
            }
            "--check-counter" => o.check_counter = true,
            "--rt" => o.rt = Some(num(value("a priority")?)? as i32),
            "--cpu" => o.cpu = Some(num(value("a CPU number")?)? as usize),
            "--quantum" => o.quantum = num(value("a quantum")?)? as u32,
            "--rate" => o.rate = num(value("a rate")?)? as u32,
            "--protocol-version" => o.version = num(value("a version")?)? as u32,
            "-h" | "--help" => {
                println!("{USAGE}");
                exit(0)
            }
            _ => return Err(format!("unknown option '{a}'")),
        }
    }
    Ok(o)
}

fn set_rt(prio: i32) -> bool {
    let param = libc::sched_param { sched_priority: prio };
    // SAFETY: plain syscall on the calling thread.
    unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) == 0 }
}

fn pin(cpu: usize) -> bool {
    // SAFETY: cpu_set_t is plain data; CPU_SET stays inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) == 0
    }
}

/// What the per-cycle callback accumulates. Preallocated: the callback
/// itself allocates nothing.
struct Stats {
    cycles: u64,
    missed: u64,
    position_errors: u64,
    position_jumps: u64,
    /// Wake-up times, written in place: the vector is filled (its pages
    /// touched) before the first cycle, so recording never faults a page in.
    wake_ns: Vec<u64>,
    /// Publish to completion: in same-cycle mode, how long the node waited
    /// (but for its own wake-up).
    done_ns: Vec<u64>,
    wakes: usize,
    check: CounterCheck,
    last: Option<Cycle>,
    last_nonzero: u64,
    /// Input 1 samples that were NaN or infinite, and that were 0.25.
    input_nonfinite: u64,
    input_quarter: u64,
    quantum_changes: u64,
}

impl Stats {
    fn on_cycle(&mut self, session: &mut Session, cycle: &Cycle, output: Output, check: bool) {
        if let Some(slot) = self.wake_ns.get_mut(self.wakes) {
            *slot = monotonic_nsec().saturating_sub(cycle.publish_nsec);
        }
        self.cycles += 1;
        self.missed += cycle.missed as u64;
        let mut jumped = false;
        if let Some(prev) = self.last {
            self.quantum_changes += u64::from(prev.frames != cycle.frames);
            let next = prev.position + prev.frames as u64;
            if cycle.missed == 0 && cycle.position != next {
                // Forward by whole quanta: the graph skipped cycles (the
                // machine's loss, PipeWire 1.x when its driver wakes late).
                // Anything else is a repeat or a wrong position.
                jumped = cycle.position > next && (cycle.position - next) % prev.frames.max(1) as u64 == 0;
                if jumped {
                    self.position_jumps += 1;
                } else {
                    self.position_errors += 1;
                }
            }
        }
        self.last = Some(*cycle);
        let inputs = session.layout().n_inputs;
        if inputs > 0 {
            let input = session.input(cycle, 0);
            if let Some(i) = input.iter().rposition(|&v| v != 0.0) {
                self.last_nonzero = cycle.position + i as u64;
            }
            self.input_nonfinite += input.iter().filter(|v| !v.is_finite()).count() as u64;
            self.input_quarter += input.iter().filter(|&&v| v == 0.25).count() as u64;
            if check {
                self.check.feed(cycle.position, input, jumped);
            }
        }
        for ch in 0..session.layout().n_outputs {
            let out = session.output(cycle, ch);
            match output {
                Output::Silence => out.fill(0.0),
                Output::Counter => {
                    for (i, s) in out.iter_mut().enumerate() {
                        *s = counter(cycle.position + i as u64);
                    }
                }
                Output::Poison => {
                    for (i, s) in out.iter_mut().enumerate() {
                        *s = POISON[i % POISON.len()];
                    }
                }
            }
        }
        session.complete(cycle);
        if let Some(slot) = self.done_ns.get_mut(self.wakes) {
            *slot = monotonic_nsec().saturating_sub(cycle.publish_nsec);
            self.wakes += 1;
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

fn main() {
    let o = parse().unwrap_or_else(|e| {
        eprintln!("asio-bridge-client: {e}\n\n{USAGE}");
        exit(2)
    });
    let mut hello = asio_bridge_hello::with_name(&o.name);
    hello.header.version = o.version;
    if !o.autoconnect {
        hello.flags = asio_bridge_abi::ASIO_BRIDGE_HELLO_NO_AUTOCONNECT;
    }
    let mut session = match Session::attach_with(&o.node, hello) {
        Ok(s) => s,
        Err(e) => {
            println!("attached=0");
            println!("busy={}", e.is_busy() as u8);
            println!("version_mismatch={}", e.is_version_mismatch() as u8);
            println!("error={e}");
            exit(2)
        }
    };
    let l = *session.layout();
    println!("attached=1");
    println!("node={}", session.node_name());
    println!("inputs={}", l.n_inputs);
    println!("outputs={}", l.n_outputs);
    for ch in 0..l.n_inputs {
        println!("input_name_{}={}", ch + 1, session.channel_name(Direction::Input, ch));
    }
    if o.quantum != 0 || o.rate != 0 {
        if let Err(e) = session.request(o.quantum, o.rate) {
            println!("error=asking for quantum {} at {} Hz failed: {e}", o.quantum, o.rate);
            exit(1)
        }
    }
    if let Some(cpu) = o.cpu {
        println!("pinned={}", pin(cpu) as u8);
    }
    if let Some(prio) = o.rt {
        println!("realtime={}", set_rt(prio) as u8);
    }
    let mut stats = Stats {
        cycles: 0,
        missed: 0,
        position_errors: 0,
        position_jumps: 0,
        wake_ns: vec![u64::MAX; (o.seconds * 48000.0 / 16.0) as usize + 1024],
        done_ns: vec![u64::MAX; (o.seconds * 48000.0 / 16.0) as usize + 1024],
        wakes: 0,
        check: CounterCheck::default(),
        last: None,
        last_nonzero: 0,
        input_nonfinite: 0,
        input_quarter: 0,
        quantum_changes: 0,
    };
    let (mut requests, mut refused_requests) = (0u64, 0u64);
    if o.rt.is_some() {
        // Like a JACK client: no page of what the callback touches may be
        // swapped out or reclaimed under it. Best effort: without a memlock
        // limit it runs unlocked and says so.
        // SAFETY: plain syscall on this process.
        println!("memory_locked={}", (unsafe { libc::mlockall(libc::MCL_CURRENT) } == 0) as u8);
    }
    let deadline = monotonic_nsec() + (o.seconds * 1e9) as u64;
    let mut detached = false;
    while monotonic_nsec() < deadline {
        match session.wait(Duration::from_millis(200)) {
            Ok(cycle) => {
                stats.on_cycle(&mut session, &cycle, o.output, o.check_counter);
                if let Some((a, b)) = o.flood {
                    let quantum = if stats.cycles % 2 == 0 { a } else { b };
                    for _ in 0..500 {
                        match session.try_request(quantum, 0) {
                            Ok(()) => requests += 1,
                            Err(_) => refused_requests += 1,
                        }
                    }
                }
            }
            Err(WaitError::Timeout) => {}
            Err(WaitError::Detached) => {
                detached = true;
                break;
            }
        }
    }
    let last = stats.last.unwrap_or_default();
    println!("detached={}", detached as u8);
    println!("cycles={}", stats.cycles);
    println!("missed={}", stats.missed);
    println!("position_errors={}", stats.position_errors);
    println!("position_jumps={}", stats.position_jumps);
    println!("late_cycles={}", last.late_cycles);
    println!("frames={}", last.frames);
    println!("rate={}", last.rate);
    println!("output_delay={}", last.output_delay);
    println!("quantum_changes={}", stats.quantum_changes);
    println!("requests={requests}");
    println!("requests_not_sent={refused_requests}");
    println!("input_nonfinite={}", stats.input_nonfinite);
    println!("input_quarter={}", stats.input_quarter);
    println!("silent_tail_frames={}", (last.position + last.frames as u64).saturating_sub(stats.last_nonzero));
    for (name, mut ns) in [("wake", stats.wake_ns), ("done", stats.done_ns)] {
        ns.truncate(stats.wakes);
        ns.sort_unstable();
        println!("{name}_p50_us={:.1}", percentile(&ns, 0.5));
        println!("{name}_p99_us={:.1}", percentile(&ns, 0.99));
        println!("{name}_max_us={:.1}", percentile(&ns, 1.0));
    }
    let mut failed = false;
    if o.check_counter {
        let c = stats.check;
        println!("counter_delay={}", c.delay.map_or(-1, |d| d as i64));
        println!("counter_matched={}", c.matched);
        println!("counter_dropouts={}", c.dropouts);
        println!("counter_mismatches={}", c.mismatches);
        println!("counter_jump_mismatches={}", c.jump_mismatches);
        failed |= c.delay.is_none() || c.mismatches > 0;
    }
    exit(failed as i32)
}
