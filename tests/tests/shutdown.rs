//! Every documented way of loading the bridge must also unload cleanly: the
//! daemon exits 0 on SIGTERM, with nothing in any log that shows harm.
//! (PipeWire 0.3.65's own `libpipewire-module-spa-node` destroys its node
//! twice at exit and the daemon dies with SIGSEGV; the shipped fragment
//! therefore uses the project's module.)

use asio_bridge_tests::{fragment, is_type, output_text, pipewire_version, props, report, root, run_with_timeout, Daemon, Report};
use std::time::Duration;

const MODULE_FRAGMENT: &str = "50-asio-bridge.conf";

/// The node exists, a client attaches and sees cycles, then the session
/// ends and must end clean.
fn use_then_finish(mut daemon: Daemon, node: &str) {
    daemon.node(node);
    let out = run_with_timeout(daemon.client().args(["--node", node, "--seconds", "1"]), Duration::from_secs(10));
    let r = report(&out.stdout);
    assert_eq!(r.num("attached"), 1.0, "{}", output_text(&out));
    assert!(r.num("cycles") > 0.0, "{}", output_text(&out));
    daemon.finish();
}

fn id_of(daemon: &Daemon, kind: &str, key: &str, value: &str) -> u64 {
    daemon
        .dump()
        .into_iter()
        .find(|o| is_type(o, kind) && props(o)[key] == value)
        .unwrap_or_else(|| panic!("no {kind} with {key} = {value}"))["id"]
        .as_u64()
        .unwrap()
}

fn pw_cli(daemon: &Daemon, args: &[&str]) {
    let out = run_with_timeout(daemon.cmd("pw-cli").args(args), Duration::from_secs(10));
    assert!(out.status.success(), "pw-cli {args:?}: {}", output_text(&out));
}

#[test]
fn the_shipped_module_fragment_exits_clean() {
    let daemon = Daemon::start("shutdown-module", &[(MODULE_FRAGMENT, &fragment(MODULE_FRAGMENT))]);
    use_then_finish(daemon, "asio-bridge");
}

#[test]
fn two_module_entries_exit_clean() {
    let text = fragment(MODULE_FRAGMENT);
    let second = text.replace("node.name = asio-bridge", "node.name = asio-bridge-2");
    assert_ne!(text, second);
    let daemon = Daemon::start("shutdown-two", &[(MODULE_FRAGMENT, &text), ("51-second.conf", &second)]);
    daemon.node("asio-bridge-2");
    use_then_finish(daemon, "asio-bridge");
}

#[test]
fn context_objects_exit_clean() {
    let text = std::fs::read_to_string(root().join("conf/examples/60-asio-bridge-objects.conf")).unwrap();
    let daemon = Daemon::start("shutdown-objects", &[("60-asio-bridge-objects.conf", &text)]);
    use_then_finish(daemon, "asio-bridge-8x8");
}

#[test]
fn pw_cli_create_node_exits_clean() {
    let daemon = Daemon::start("shutdown-cli", &[]);
    pw_cli(
        &daemon,
        &[
            "create-node",
            "spa-node-factory",
            "{ factory.name=api.asio.bridge library.name=asio-bridge/libspa-asio-bridge object.linger=true node.name=cli-bridge }",
        ],
    );
    use_then_finish(daemon, "cli-bridge");
}

/// Someone destroys the module's node first: the module must not destroy it
/// again, neither at exit nor when it is unloaded.
#[test]
fn a_node_destroyed_by_a_client_is_not_destroyed_again() {
    let mut daemon = Daemon::start("shutdown-node-gone", &[(MODULE_FRAGMENT, &fragment(MODULE_FRAGMENT))]);
    daemon.node("asio-bridge");
    let node = id_of(&daemon, "Node", "node.name", "asio-bridge");
    pw_cli(&daemon, &["destroy", &node.to_string()]);
    daemon.wait_until("the node is gone", Duration::from_secs(5), || {
        !daemon.dump().iter().any(|o| is_type(o, "Node") && props(o)["node.name"] == "asio-bridge")
    });
    assert!(daemon.alive());
    daemon.finish();
}

/// The module is unloaded at runtime: its node goes with it, the daemon
/// stays, and exits clean later.
/// PipeWire 0.3.65 lets a client with full access destroy a daemon-side
/// module (`pw-cli destroy <id>`): the module then removes its node. PipeWire
/// 1.4 grants clients only `r` and `m` on modules and refuses the destroy:
/// then the bridge must be untouched, still loaded and still running.
#[test]
fn unloading_the_module_removes_its_node() {
    let mut daemon = Daemon::start("shutdown-unload", &[(MODULE_FRAGMENT, &fragment(MODULE_FRAGMENT))]);
    daemon.node("asio-bridge");
    let module = id_of(&daemon, "Module", "module.name", "libpipewire-module-asio-bridge");
    let info = daemon.dump().into_iter().find(|o| o["id"] == module).unwrap();
    assert!(props(&info)["module.description"].is_string(), "{info}");
    let node = daemon.node("asio-bridge");
    assert_eq!(props(&node)["module.id"].to_string().trim_matches('"'), module.to_string(), "{node}");
    let granted: Vec<&str> = info["permissions"].as_array().unwrap_or_else(|| panic!("no permissions in {info}")).iter().filter_map(|p| p.as_str()).collect();
    let unloadable = granted.contains(&"w") && granted.contains(&"x");
    if pipewire_version() < (1, 0, 0) {
        assert!(unloadable, "PipeWire 0.3 granted only {granted:?} on the module: {info}");
    }
    pw_cli(&daemon, &["destroy", &module.to_string()]);
    let node_exists = || daemon.dump().iter().any(|o| is_type(o, "Node") && props(o)["node.name"] == "asio-bridge");
    if unloadable {
        daemon.wait_until("the node is gone", Duration::from_secs(5), || !node_exists());
    } else {
        // Refused: give a (wrongly) accepted destroy time to take effect.
        std::thread::sleep(Duration::from_secs(1));
        assert!(daemon.dump().iter().any(|o| o["id"] == module), "the module went away although the daemon granted only {granted:?}");
        assert!(node_exists(), "the node went away although its module stayed");
        let out = run_with_timeout(daemon.client().args(["--seconds", "1"]), Duration::from_secs(10));
        assert!(report(&out.stdout).num("cycles") > 0.0, "the bridge stopped running: {}", output_text(&out));
    }
    assert!(daemon.alive());
    daemon.finish();
}

const INVALID: &str = "invalid asio.inputs = \"65\": at most 64 channels per direction";

/// The shipped entry is `nofail`: a bridge with a bad setting is left out,
/// with the reason in the log, and the rest of the desktop's audio runs.
#[test]
fn an_invalid_setting_leaves_the_bridge_out_and_the_daemon_running() {
    let text = fragment(MODULE_FRAGMENT).replace("asio.inputs = 2", "asio.inputs = 65");
    assert!(text.contains("asio.inputs = 65") && text.contains("nofail"), "{text}");
    let mut daemon = Daemon::start("shutdown-invalid", &[(MODULE_FRAGMENT, &text)]);
    assert!(daemon.log().contains(INVALID), "{}", daemon.log());
    assert!(daemon.log().contains("asio-bridge module: cannot create bridge 'asio-bridge'"), "{}", daemon.log());
    assert!(!daemon.dump().iter().any(|o| is_type(o, "Node") && props(o)["node.name"] == "asio-bridge"));
    assert!(daemon.alive());
    daemon.finish();
}

/// Without `nofail`, PipeWire treats every module as mandatory: the daemon
/// refuses to start, says why, and exits with an error, never a crash.
#[test]
fn an_invalid_setting_in_a_mandatory_entry_stops_the_daemon_with_the_reason() {
    let text = fragment(MODULE_FRAGMENT).replace("asio.inputs = 2", "asio.inputs = 65").replace("flags = [ nofail ]", "");
    assert!(text.contains("asio.inputs = 65") && !text.contains("nofail"), "{text}");
    let (status, log) = Daemon::run_until_exit("shutdown-mandatory", &[(MODULE_FRAGMENT, &text)], Duration::from_secs(10));
    assert!(log.contains(INVALID), "{log}");
    assert!(log.contains("could not load mandatory module \"libpipewire-module-asio-bridge\""), "{log}");
    assert!(status.code().is_some_and(|c| c != 0), "the daemon did not exit with an error: {status:?}\n{log}");
}
