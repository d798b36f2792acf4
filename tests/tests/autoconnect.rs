//! Autoconnect: with the stock WirePlumber and the shipped script, a bridge
//! plays to the default sink and records from the default source without a
//! link made by hand, follows the defaults when the user changes them, can
//! be opted out (`node.autoconnect = false`) or pinned (`target.object`),
//! and never touches a link it did not make.
//!
//! The devices are null sinks made as a desktop user would, under
//! WirePlumber: two sinks (`sink-a`, `sink-b`) and a virtual source
//! (`source-a`), all stereo.

use asio_bridge_tests::{fragment, is_type, output_text, props, report, run_with_timeout, shipped_with, with_bridge, Daemon, Report};
use std::{
    collections::{BTreeSet, HashMap},
    process::{Child, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

/// How soon links must follow a change of the default.
const FOLLOW: Duration = Duration::from_secs(1);

fn null_node(daemon: &Daemon, name: &str, class: &str) {
    null_node_at(daemon, name, class, "FL FR");
}

fn null_node_at(daemon: &Daemon, name: &str, class: &str, positions: &str) {
    // A source ranks as a microphone does (ALSA capture devices carry a
    // priority): WirePlumber 0.5 prefers a sink's monitor to a source of none.
    let priority = if class.starts_with("Audio/Source") { "priority.session = 2000" } else { "" };
    let args = format!(
        "{{ factory.name = support.null-audio-sink node.name = {name} media.class = {class} \
         object.linger = true audio.position = [ {positions} ] {priority} }}"
    );
    let out = run_with_timeout(daemon.cmd("pw-cli").args(["create-node", "adapter", &args]), Duration::from_secs(10));
    assert!(out.status.success(), "{}", output_text(&out));
}

/// The devices, with their ports made (WirePlumber configures them). The
/// only source is the default source (`wpctl set-default` takes no virtual
/// source in WirePlumber 0.4: "not a device node").
fn devices(daemon: &Daemon) {
    null_node(daemon, "sink-a", "Audio/Sink");
    null_node(daemon, "sink-b", "Audio/Sink");
    null_node(daemon, "source-a", "Audio/Source/Virtual");
    daemon.wait_until("the devices have ports", Duration::from_secs(10), || {
        let ports = ports(daemon);
        ["sink-a:playback_FR", "sink-b:playback_FR", "source-a:capture_FR"].iter().all(|p| ports.contains(*p))
    });
}

fn ports(daemon: &Daemon) -> String {
    let out = daemon.cmd("pw-link").args(["-io"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every link in the graph as "node:port -> node:port".
fn links(daemon: &Daemon) -> BTreeSet<String> {
    let dump = daemon.dump();
    let nodes: HashMap<u64, String> = dump
        .iter()
        .filter(|o| is_type(o, "Node"))
        .map(|o| (o["id"].as_u64().unwrap(), props(o)["node.name"].as_str().unwrap_or("?").to_owned()))
        .collect();
    let ports: HashMap<u64, String> = dump
        .iter()
        .filter(|o| is_type(o, "Port"))
        .map(|o| {
            let p = props(o);
            let node = p["node.id"].as_u64().and_then(|n| nodes.get(&n)).cloned().unwrap_or_else(|| "?".into());
            (o["id"].as_u64().unwrap(), format!("{node}:{}", p["port.name"].as_str().unwrap_or("?")))
        })
        .collect();
    let name = |id: &serde_json::Value| id.as_u64().and_then(|id| ports.get(&id)).cloned().unwrap_or_else(|| format!("port {id}"));
    dump.iter()
        .filter(|o| is_type(o, "Link"))
        .map(|o| format!("{} -> {}", name(&o["info"]["output-port-id"]), name(&o["info"]["input-port-id"])))
        .collect()
}

/// The links touching node `bridge`.
fn links_of(daemon: &Daemon, bridge: &str) -> BTreeSet<String> {
    let mine = format!("{bridge}:");
    links(daemon).into_iter().filter(|l| l.split(" -> ").any(|end| end.starts_with(&mine))).collect()
}

fn set(links: &[String]) -> BTreeSet<String> {
    links.iter().cloned().collect()
}

/// The links autoconnect makes for `bridge` (2 in, 2 out) with `sink` and `source`.
fn expected(bridge: &str, sink: Option<&str>, source: Option<&str>) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(sink) = sink {
        v.push(format!("{bridge}:out_1 -> {sink}:playback_FL"));
        v.push(format!("{bridge}:out_2 -> {sink}:playback_FR"));
    }
    if let Some(source) = source {
        v.push(format!("{source}:capture_FL -> {bridge}:in_1"));
        v.push(format!("{source}:capture_FR -> {bridge}:in_2"));
    }
    v
}

/// Waits until the links of `bridge` are exactly `want`; returns how long it took.
fn wait_for_links(daemon: &Daemon, bridge: &str, want: &BTreeSet<String>, timeout: Duration) -> Duration {
    let start = Instant::now();
    let mut seen = BTreeSet::new();
    while start.elapsed() < timeout {
        seen = links_of(daemon, bridge);
        if &seen == want {
            return start.elapsed();
        }
        sleep(Duration::from_millis(20));
    }
    panic!(
        "after {timeout:?} the links of {bridge} are\n{seen:#?}\nnot\n{want:#?}\nWirePlumber log:\n{}",
        std::fs::read_to_string(daemon.dir.join("wireplumber.log")).unwrap_or_default()
    );
}

fn node_id(daemon: &Daemon, name: &str) -> String {
    daemon.node(name)["id"].to_string()
}

/// `wpctl set-default`, as a user (or pavucontrol) changes the default.
fn set_default(daemon: &Daemon, name: &str) {
    let out = run_with_timeout(daemon.cmd("wpctl").args(["set-default", &node_id(daemon, name)]), Duration::from_secs(10));
    assert!(out.status.success(), "wpctl set-default {name}: {}", output_text(&out));
}

fn unlink(daemon: &Daemon, from: &str, to: &str) {
    let out = daemon.cmd("pw-link").args(["-d", from, to]).output().unwrap();
    assert!(out.status.success(), "pw-link -d {from} {to}: {}", output_text(&out));
}

/// A DAW's stand-in, attached to `node` for `seconds`.
fn attach(daemon: &Daemon, node: &str, seconds: u32) -> Child {
    daemon.client().args(["--node", node, "--seconds", &seconds.to_string()]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

fn ran(client: Child) {
    let out = client.wait_with_output().unwrap();
    let r = report(&out.stdout);
    assert_eq!(r.num("attached"), 1.0, "{}", output_text(&out));
    assert!(r.num("cycles") > 0.0, "{}", output_text(&out));
}

#[test]
fn plays_to_the_default_sink_records_from_the_default_source_and_follows_them() {
    let daemon = Daemon::start("autoconnect-follow", &[("50-asio-bridge.conf", &fragment("50-asio-bridge.conf"))]);
    devices(&daemon);
    set_default(&daemon, "sink-a");
    let client = attach(&daemon, "asio-bridge", 8);
    wait_for_links(&daemon, "asio-bridge", &set(&expected("asio-bridge", Some("sink-a"), Some("source-a"))), Duration::from_secs(5));

    // A link the user makes by hand stays through a change of the default.
    let by_hand = "asio-bridge:out_1 -> sink-a:playback_FR".to_owned();
    daemon.link("asio-bridge:out_1", "sink-a:playback_FR");

    set_default(&daemon, "sink-b");
    let mut want = set(&expected("asio-bridge", Some("sink-b"), Some("source-a")));
    want.insert(by_hand.clone());
    let took = wait_for_links(&daemon, "asio-bridge", &want, Duration::from_secs(5));
    assert!(took < FOLLOW, "the links took {took:?} to follow the default sink");
    eprintln!("the links followed the default sink to sink-b in {took:?}");

    // Back again: the links return to sink-a, beside the one made by hand.
    set_default(&daemon, "sink-a");
    let mut want = set(&expected("asio-bridge", Some("sink-a"), Some("source-a")));
    want.insert(by_hand.clone());
    let took = wait_for_links(&daemon, "asio-bridge", &want, Duration::from_secs(5));
    assert!(took < FOLLOW, "the links took {took:?} to follow the default sink back");
    eprintln!("the links followed the default sink back to sink-a in {took:?}");

    // One of its links the user removes stays removed...
    unlink(&daemon, "asio-bridge:out_2", "sink-a:playback_FR");
    want.remove("asio-bridge:out_2 -> sink-a:playback_FR");
    wait_for_links(&daemon, "asio-bridge", &want, Duration::from_secs(5));
    sleep(Duration::from_millis(1500));
    assert_eq!(links_of(&daemon, "asio-bridge"), want, "autoconnect made a link again that the user removed");
    // ...until the default moves on.
    set_default(&daemon, "sink-b");
    let mut want = set(&expected("asio-bridge", Some("sink-b"), Some("source-a")));
    want.insert(by_hand);
    wait_for_links(&daemon, "asio-bridge", &want, Duration::from_secs(5));

    ran(client);
}

#[test]
fn node_autoconnect_false_leaves_the_bridge_unlinked() {
    // Two bridges: one opted out, one not (which shows the script runs).
    let text = with_bridge(&shipped_with("node.autoconnect = false"), "node.name = asio-bridge-b asio.inputs = 2 asio.outputs = 2");
    let daemon = Daemon::start("autoconnect-opt-out", &[("50-asio-bridge.conf", &text)]);
    devices(&daemon);
    set_default(&daemon, "sink-a");
    let client = attach(&daemon, "asio-bridge", 5);
    wait_for_links(&daemon, "asio-bridge-b", &set(&expected("asio-bridge-b", Some("sink-a"), Some("source-a"))), Duration::from_secs(5));
    set_default(&daemon, "sink-b");
    wait_for_links(&daemon, "asio-bridge-b", &set(&expected("asio-bridge-b", Some("sink-b"), Some("source-a"))), Duration::from_secs(5));
    sleep(Duration::from_secs(1));
    assert_eq!(links_of(&daemon, "asio-bridge"), BTreeSet::new(), "the opted-out bridge was linked");
    ran(client);
}

#[test]
fn a_daw_that_opts_out_leaves_the_bridge_unlinked_while_it_holds_it() {
    // What the control panel's "Link the bridge to the default devices"
    // box does when unchecked: the driver's hello asks the node to stay
    // unlinked, the node shows node.autoconnect = false, the script
    // removes its links, and all is back when the DAW leaves.
    let daemon = Daemon::start("autoconnect-daw-opts-out", &[("50-asio-bridge.conf", &fragment("50-asio-bridge.conf"))]);
    devices(&daemon);
    set_default(&daemon, "sink-a");
    let linked = set(&expected("asio-bridge", Some("sink-a"), Some("source-a")));
    wait_for_links(&daemon, "asio-bridge", &linked, Duration::from_secs(5));
    assert_eq!(daemon.node_prop("asio-bridge", "node.autoconnect"), "true");

    let client = daemon
        .client()
        .args(["--node", "asio-bridge", "--seconds", "4", "--no-autoconnect"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let took = wait_for_links(&daemon, "asio-bridge", &BTreeSet::new(), Duration::from_secs(3));
    eprintln!("the links went {took:?} after the DAW that opted out attached");
    assert_eq!(daemon.node_prop("asio-bridge", "node.autoconnect"), "false");
    // Still unlinked when the default moves while it holds the bridge.
    set_default(&daemon, "sink-b");
    sleep(Duration::from_millis(500));
    assert_eq!(links_of(&daemon, "asio-bridge"), BTreeSet::new(), "linked while the DAW opted out");
    ran(client);

    let relinked = set(&expected("asio-bridge", Some("sink-b"), Some("source-a")));
    let took = wait_for_links(&daemon, "asio-bridge", &relinked, Duration::from_secs(3));
    eprintln!("the links came back {took:?} after it left");
    assert_eq!(daemon.node_prop("asio-bridge", "node.autoconnect"), "true");
}

#[test]
fn target_object_pins_the_bridge_to_a_device() {
    // asio-bridge pinned to sink-b by name; asio-bridge-c to a sink not
    // there yet; asio-bridge-d to a sink and a source not there yet.
    let text = with_bridge(&shipped_with("target.object = sink-b"), "node.name = asio-bridge-c target.object = sink-c asio.inputs = 2 asio.outputs = 2");
    let text = with_bridge(&text, "node.name = asio-bridge-d target.object = [ sink-a source-b ] asio.inputs = 2 asio.outputs = 2");
    let daemon = Daemon::start("autoconnect-pinned", &[("50-asio-bridge.conf", &text)]);
    devices(&daemon);
    set_default(&daemon, "sink-a");
    let client = attach(&daemon, "asio-bridge", 8);
    // The pin decides the out_* side; in_* follows the default source.
    let pinned = set(&expected("asio-bridge", Some("sink-b"), Some("source-a")));
    wait_for_links(&daemon, "asio-bridge", &pinned, Duration::from_secs(5));
    set_default(&daemon, "sink-b");
    sleep(Duration::from_millis(500));
    set_default(&daemon, "sink-a");
    sleep(Duration::from_secs(1));
    assert_eq!(links_of(&daemon, "asio-bridge"), pinned, "a default change moved the pinned bridge");

    // Re-pinned at runtime through the "default" metadata, as streams are
    // moved; "-1" there means the defaults; removing it, the property again.
    let bridge = node_id(&daemon, "asio-bridge");
    let metadata = |args: &[&str]| {
        let out = daemon.cmd("pw-metadata").args(args).output().unwrap();
        assert!(out.status.success(), "pw-metadata {args:?}: {}", output_text(&out));
    };
    metadata(&[&bridge, "target.object", "sink-c"]);
    wait_for_links(&daemon, "asio-bridge", &BTreeSet::new(), Duration::from_secs(5));
    metadata(&["--", &bridge, "target.object", "-1"]);
    wait_for_links(&daemon, "asio-bridge", &set(&expected("asio-bridge", Some("sink-a"), Some("source-a"))), Duration::from_secs(5));
    metadata(&["-d", &bridge, "target.object"]);
    wait_for_links(&daemon, "asio-bridge", &pinned, Duration::from_secs(5));

    // A pinned device that is not there: nothing linked, not the default.
    assert_eq!(links_of(&daemon, "asio-bridge-c"), BTreeSet::new(), "the bridge pinned to an absent device was linked");
    // It arrives: the out_* side goes to it and, now that the pin is known
    // to be a sink, in_* follows the default source.
    null_node(&daemon, "sink-c", "Audio/Sink");
    wait_for_links(&daemon, "asio-bridge-c", &set(&expected("asio-bridge-c", Some("sink-c"), Some("source-a"))), Duration::from_secs(5));

    // A list pins both sides; the absent source's side waits for it.
    assert_eq!(links_of(&daemon, "asio-bridge-d"), set(&expected("asio-bridge-d", Some("sink-a"), None)));
    null_node(&daemon, "source-b", "Audio/Source/Virtual");
    wait_for_links(&daemon, "asio-bridge-d", &set(&expected("asio-bridge-d", Some("sink-a"), Some("source-b"))), Duration::from_secs(5));
    ran(client);
}

#[test]
fn links_go_with_wireplumber_and_come_back_with_it() {
    let mut daemon = Daemon::start("autoconnect-restart", &[("50-asio-bridge.conf", &fragment("50-asio-bridge.conf"))]);
    devices(&daemon);
    set_default(&daemon, "sink-a");
    let want = set(&expected("asio-bridge", Some("sink-a"), Some("source-a")));
    wait_for_links(&daemon, "asio-bridge", &want, Duration::from_secs(5));
    // A link made by hand lingers; the script's do not outlive WirePlumber.
    // (One within the bridge: WirePlumber makes the null sinks' ports again
    // when it starts, and links to the old ones go with them.)
    daemon.link("asio-bridge:out_1", "asio-bridge:in_2");
    let by_hand: BTreeSet<String> = ["asio-bridge:out_1 -> asio-bridge:in_2".to_owned()].into();
    daemon.kill_wireplumber();
    wait_for_links(&daemon, "asio-bridge", &by_hand, Duration::from_secs(5));
    daemon.start_wireplumber();
    // The new WirePlumber picks the default sink again (a choice made just
    // before a SIGKILL may not have been saved): the links go to its pick.
    let mut sink = None;
    daemon.wait_until("WirePlumber names a default sink", Duration::from_secs(10), || {
        sink = default_sink(&daemon);
        sink.is_some()
    });
    let sink = sink.unwrap();
    let mut want = set(&expected("asio-bridge", Some(&sink), Some("source-a")));
    want.extend(by_hand);
    wait_for_links(&daemon, "asio-bridge", &want, Duration::from_secs(10));
}

/// The node.name in the "default" metadata's `default.audio.sink`.
fn default_sink(daemon: &Daemon) -> Option<String> {
    let out = daemon.cmd("pw-metadata").args(["0", "default.audio.sink"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let value = text.split("value:'").nth(1)?.split('\'').next()?;
    let json: serde_json::Value = serde_json::from_str(value).ok()?;
    json["name"].as_str().map(str::to_owned)
}

#[test]
fn further_channels_follow_the_sinks_order_and_a_mono_source_feeds_every_input() {
    let text = "context.modules = [ { name = libpipewire-module-asio-bridge \
                args = { node.name = asio-bridge-wide asio.inputs = 2 asio.outputs = 4 } } ]\n";
    let daemon = Daemon::start("autoconnect-channels", &[("50-asio-bridge.conf", text)]);
    // The only devices, so the defaults.
    null_node_at(&daemon, "surround", "Audio/Sink", "FL FR FC LFE RL RR");
    null_node_at(&daemon, "mic", "Audio/Source/Virtual", "MONO");
    let client = attach(&daemon, "asio-bridge-wide", 5);
    let want = set(&[
        "asio-bridge-wide:out_1 -> surround:playback_FL".into(),
        "asio-bridge-wide:out_2 -> surround:playback_FR".into(),
        "asio-bridge-wide:out_3 -> surround:playback_FC".into(),
        "asio-bridge-wide:out_4 -> surround:playback_LFE".into(),
        "mic:capture_MONO -> asio-bridge-wide:in_1".into(),
        "mic:capture_MONO -> asio-bridge-wide:in_2".into(),
    ]);
    wait_for_links(&daemon, "asio-bridge-wide", &want, Duration::from_secs(10));
    // Its links say whose they are.
    let marked = daemon.dump().iter().filter(|o| is_type(o, "Link")).filter(|o| props(o)["asio-bridge.autoconnect"] == true).count();
    assert_eq!(marked, want.len(), "links marked asio-bridge.autoconnect = true");
    ran(client);
}

#[test]
fn a_bridge_made_by_spa_node_factory_is_autoconnected_too() {
    let text = "context.objects = [ { factory = spa-node-factory args = { factory.name = api.asio.bridge \
                library.name = asio-bridge/libspa-asio-bridge node.name = asio-bridge-object } } ]\n";
    let daemon = Daemon::start("autoconnect-object", &[("50-asio-bridge.conf", text)]);
    devices(&daemon);
    set_default(&daemon, "sink-b");
    wait_for_links(&daemon, "asio-bridge-object", &set(&expected("asio-bridge-object", Some("sink-b"), Some("source-a"))), Duration::from_secs(5));
}
