//! The real-time paths cannot panic: a check of the staged release object
//! code, not of the source. From each RT entry point (the node's
//! `process` and `port_reuse_buffer`, the data-loop methods the daemon
//! calls, and the Wine driver's `process` unix call, its callback thread's) it follows every call, tail call and function address the
//! code loads (directly, or through the GOT, as calls in a shared object
//! go), and fails if anything reachable is a panic entry (core's or std's
//! `panicking` module, or `rust_begin_unwind`, which every panic reaches).
//!
//! Over-approximate on purpose: a function whose address is merely loaded
//! counts as called. Calls through function pointers read from data
//! (vtables, C callbacks) are not followed; the RT paths make none besides
//! the guards' unwinding machinery (the catch_unwind landing pad, which
//! runs only once a panic is under way, is not followed). Needs `objdump`, `nm` and `c++filt` (binutils).

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    process::Command,
};

fn tool(name: &str, args: &[&str]) -> String {
    let out = Command::new(name).args(args).output().unwrap_or_else(|e| panic!("{name}: {e} (install binutils)"));
    assert!(out.status.success(), "{name} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn demangle(names: &[String]) -> Vec<String> {
    use std::io::Write;
    let mut child = Command::new("c++filt")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("c++filt (binutils)");
    let mut stdin = child.stdin.take().unwrap();
    let input = names.join("\n");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    // Legacy-mangled Rust names end in a hash: "...::process::h0123456789abcdef".
    let unhash = |s: &str| match s.rsplit_once("::h") {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => name.to_owned(),
        _ => s.to_owned(),
    };
    String::from_utf8(out.stdout).unwrap().lines().map(unhash).collect()
}

/// Function symbol -> the symbols it calls, jumps to or loads.
struct CallGraph {
    edges: HashMap<String, HashSet<String>>,
    demangled: HashMap<String, String>,
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s, 16).ok()
}

impl CallGraph {
    fn of(object: &Path) -> Self {
        let object = object.to_str().unwrap();
        let mut by_addr: HashMap<u64, String> = HashMap::new();
        for line in tool("nm", &[object]).lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if let [addr, kind, name] = f[..] {
                if matches!(kind, "t" | "T" | "w" | "W") {
                    if let Some(a) = hex(addr) {
                        by_addr.insert(a, name.to_owned());
                    }
                }
            }
        }
        // GOT slots: RELATIVE ones hold one of our functions, others name
        // an imported symbol.
        let mut slots: HashMap<u64, String> = HashMap::new();
        for line in tool("objdump", &["-R", object]).lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if let [slot, kind, target] = f[..] {
                let Some(slot) = hex(slot) else { continue };
                let name = if kind == "R_X86_64_RELATIVE" {
                    target.rsplit_once('+').and_then(|(_, a)| hex(a.trim_start_matches("0x"))).and_then(|a| by_addr.get(&a).cloned())
                } else {
                    Some(target.to_owned())
                };
                if let Some(name) = name {
                    slots.insert(slot, name);
                }
            }
        }
        let mut edges: HashMap<String, HashSet<String>> = HashMap::new();
        let mut current: Option<String> = None;
        for line in tool("objdump", &["-d", "--no-show-raw-insn", object]).lines() {
            // "0000000000025ea0 <name>:" starts a function.
            if let Some(name) = line.strip_suffix(">:").and_then(|l| l.split_once(" <")).map(|(_, n)| n) {
                current = Some(name.to_owned());
                edges.entry(name.to_owned()).or_default();
                continue;
            }
            let Some(cur) = &current else { continue };
            let Some((_, ins)) = line.split_once(":\t") else { continue };
            let mut targets = Vec::new();
            // A direct call or jump: "call   27590 <sym>"; "<sym+0x10>" is
            // a branch inside a function.
            if let Some(rest) = ins.strip_prefix("call").or_else(|| ins.strip_prefix("jmp")) {
                if let Some((_, sym)) = rest.split_once(" <") {
                    let sym = sym.trim_end_matches('>');
                    if !sym.contains('+') {
                        targets.push(sym.to_owned());
                    }
                }
            }
            // Anything RIP-relative: "... 0x4fac9(%rip)        # 75a08 <...>":
            // a GOT slot (a call through it, or a function address loaded
            // for a later `call *%reg`) or a function's own address (lea).
            if let Some((_, comment)) = ins.split_once("(%rip)") {
                if let Some(addr) = comment.split_once('#').and_then(|(_, c)| c.split_whitespace().next()).and_then(hex) {
                    if let Some(name) = slots.get(&addr).or_else(|| by_addr.get(&addr)) {
                        targets.push(name.clone());
                    }
                }
            }
            edges.entry(cur.clone()).or_default().extend(targets);
        }
        let names: Vec<String> = edges.keys().cloned().chain(edges.values().flatten().cloned()).collect::<HashSet<_>>().into_iter().collect();
        let demangled = names.iter().cloned().zip(demangle(&names)).collect();
        Self { edges, demangled }
    }

    fn name<'a>(&'a self, sym: &'a str) -> &'a str {
        self.demangled.get(sym).map_or(sym, String::as_str)
    }

    fn find(&self, demangled: &str) -> String {
        let found: Vec<&String> = self.edges.keys().filter(|s| self.name(s) == demangled).collect();
        assert_eq!(found.len(), 1, "{demangled} is not one function in the object: {found:?}");
        found[0].clone()
    }

    /// The chains from `root` to every reachable panic entry.
    fn panic_paths(&self, root: &str) -> Vec<String> {
        let mut parent: HashMap<&str, &str> = HashMap::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut stack = vec![root];
        let mut bad = Vec::new();
        while let Some(f) = stack.pop() {
            if !seen.insert(f) {
                continue;
            }
            let name = self.name(f);
            // Landing pads: the catch_unwind guard's cleanup and the abort
            // an `extern "C"` function runs when an unwind reaches it. They
            // run only for a panic already under way, never start one.
            if name.contains("::panicking::catch_unwind::cleanup") || name.ends_with("::panicking::panic_cannot_unwind") {
                continue;
            }
            if name.contains("::panicking::") || name.contains("rust_begin_unwind") {
                let mut chain = vec![name.to_owned()];
                let mut at = f;
                while let Some(p) = parent.get(at) {
                    chain.push(self.name(p).to_owned());
                    at = p;
                }
                bad.push(chain.join(" <- "));
                continue;
            }
            for g in self.edges.get(f).into_iter().flatten() {
                if !seen.contains(g.as_str()) {
                    parent.entry(g.as_str()).or_insert(f);
                    stack.push(g.as_str());
                }
            }
        }
        bad
    }
}

fn check(object: &Path, roots: &[&str]) {
    assert!(object.exists(), "{} is missing: run `cargo xtask stage` first", object.display());
    let graph = CallGraph::of(object);
    let mut problems = Vec::new();
    for root in roots {
        let sym = graph.find(root);
        problems.extend(graph.panic_paths(&sym));
    }
    assert!(problems.is_empty(), "panic paths on the real-time path of {}:\n{}", object.display(), problems.join("\n"));
}

#[test]
fn the_node_process_path_cannot_panic() {
    let so = asio_bridge_tests::stage().join("lib/spa-0.2/asio-bridge/libspa-asio-bridge.so");
    // The two methods the daemon calls on the data loop, as it calls them.
    check(&so, &["spa_asio_bridge::process", "spa_asio_bridge::port_reuse_buffer"]);
}

/// The check finds a panic when there is one: the node's main-thread
/// `Node::new` builds strings and vectors and can panic.
#[test]
fn the_check_sees_a_panic_path_where_there_is_one() {
    let so = asio_bridge_tests::stage().join("lib/spa-0.2/asio-bridge/libspa-asio-bridge.so");
    let graph = CallGraph::of(&so);
    let root = graph.edges.keys().find(|s| graph.name(s).starts_with("spa_asio_bridge::node::Node::new")).cloned().expect("Node::new");
    assert!(!graph.panic_paths(&root).is_empty());
}

#[test]
fn the_driver_callback_path_cannot_panic() {
    let so = asio_bridge_tests::stage().join("lib/wine/x86_64-unix/asiobridge.so");
    // The unix call the driver's callback thread makes for every buffer.
    check(&so, &["asiobridge::process"]);
}
