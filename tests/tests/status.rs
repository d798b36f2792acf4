//! What PipeWire's own tools show about the DAW holding a bridge: the
//! node's application.* and asio.* properties, as `pw-dump` reads them.

use asio_bridge_tests::{props, shipped_with, Daemon};
use serde_json::Value;
use std::{process::Stdio, time::Duration};

/// The node's properties, every value as the text it was set to (pw-dump
/// prints numeric text as numbers).
fn status(daemon: &Daemon) -> Value {
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    let props = props(&daemon.node("asio-bridge")).as_object().cloned().unwrap_or_default();
    props.iter().map(|(k, v)| (k.clone(), Value::String(text(v)))).collect()
}

#[test]
fn the_node_shows_who_holds_it_and_how_it_runs() {
    let daemon = Daemon::start("status", &[("50-asio-bridge.conf", &shipped_with(""))]);
    let idle = status(&daemon);
    assert_eq!(idle["asio.state"], "idle", "{idle}");
    assert_eq!(idle["asio.mode"], "pipelined", "{idle}");
    assert_eq!(idle["application.name"], "", "{idle}");

    let mut client = daemon
        .client()
        .args(["--name", "Studio One.exe", "--quantum", "128", "--seconds", "5"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = client.id().to_string();
    let mut seen = Value::Null;
    daemon.wait_until("the node shows the running client", Duration::from_secs(5), || {
        seen = status(&daemon);
        seen["asio.state"] == "running" && seen["asio.buffer-size"] == "128"
    });
    assert_eq!(seen["application.name"], "Studio One.exe", "{seen}");
    assert_eq!(seen["application.process.id"], pid.as_str(), "{seen}");
    assert_eq!(seen["application.process.binary"], "asio-bridge-client", "{seen}");
    assert_eq!(seen["asio.rate"], "48000", "{seen}");
    // Cycles this unprivileged client missed on a busy machine: a count.
    assert!(seen["asio.late-cycles"].as_str().unwrap().parse::<u32>().is_ok(), "{seen}");
    assert_eq!(seen["node.force-quantum"], "128", "{seen}");
    // The README's inspection commands show the same.
    for args in [&["pw-cli", "info", "asio-bridge"][..], &["pw-dump", "asio-bridge"][..]] {
        let out = daemon.cmd(args[0]).args(&args[1..]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("asio.state") && text.contains("Studio One.exe"), "{args:?}: {text}");
    }

    client.kill().unwrap();
    client.wait().unwrap();
    daemon.wait_until("the node is idle again", Duration::from_secs(5), || {
        seen = status(&daemon);
        seen["asio.state"] == "idle"
    });
    for key in ["application.name", "application.process.id", "application.process.binary", "asio.buffer-size"] {
        assert_eq!(seen[key], "", "{key} kept the client's value: {seen}");
    }
}
