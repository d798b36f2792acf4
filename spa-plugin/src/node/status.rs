//! What the node shows about the DAW holding it, as node properties that
//! `pw-cli info`, `pw-dump` and graph tools read: PipeWire's application.*
//! keys and the bridge's asio.* keys. Refreshed from the main loop when a
//! DAW attaches or leaves and at most once a second in between, never from
//! the data loop.

use super::Node;
use crate::config::Mode;
use std::{
    ffi::{c_void, CString},
    path::Path,
};

/// How often the properties follow a running DAW.
const REFRESH_MS: u64 = 1000;

/// The status properties as last announced, in announcement order.
#[derive(Clone, PartialEq, Eq, Default)]
pub(super) struct Status(Vec<(&'static str, String)>);

impl Status {
    /// Keys and values as C strings, for an info dict.
    pub(super) fn c_items(&self) -> Vec<(&'static str, CString)> {
        // Values come from printable() or numbers: no interior NUL.
        self.0.iter().map(|(k, v)| (*k, CString::new(v.as_str()).unwrap_or_default())).collect()
    }
}

/// What the main loop last saw of the attached client, to tell `attached`
/// from `running`.
#[derive(Default)]
pub(super) struct Seen {
    pub done_seq: u32,
}

impl Node {
    /// The status as it stands. Every key is always present (empty when no
    /// DAW is attached): PipeWire 0.3.65 keeps a removed key's old value.
    pub(super) fn current_status(&mut self) -> Status {
        let mode = match self.config.mode {
            Mode::Pipelined => "pipelined",
            Mode::SameCycle => "same-cycle",
        };
        let mut client = None;
        if self.holder.is_some() {
            self.data_loop.run(self.rt.get(), |rt| client = rt.client_status());
        }
        let autoconnect = match &self.holder {
            Some(h) if !h.autoconnect => "false".to_owned(),
            _ => self.config.autoconnect.clone(),
        };
        let (Some(h), Some(c)) = (&mut self.holder, client) else {
            return Status(vec![
                ("node.autoconnect", autoconnect),
                ("asio.state", "idle".into()),
                ("asio.mode", mode.into()),
                ("asio.buffer-size", String::new()),
                ("asio.rate", String::new()),
                ("asio.late-cycles", String::new()),
                ("application.name", String::new()),
                ("application.process.id", String::new()),
                ("application.process.binary", String::new()),
            ]);
        };
        let (frames, rate, late, done) = (c.frames, c.rate, c.late_cycles, c.done_seq);
        let running = done != h.seen.done_seq;
        h.seen.done_seq = done;
        let buffer = if h.buffer_size != 0 { h.buffer_size } else { frames };
        let binary = Path::new(&h.exe).file_name().map_or(String::new(), |f| f.to_string_lossy().into_owned());
        Status(vec![
            ("node.autoconnect", autoconnect),
            ("asio.state", if running { "running" } else { "attached" }.into()),
            ("asio.mode", mode.into()),
            ("asio.buffer-size", buffer.to_string()),
            ("asio.rate", rate.to_string()),
            ("asio.late-cycles", late.to_string()),
            ("application.name", h.name.clone()),
            ("application.process.id", h.conn.peer.pid.to_string()),
            ("application.process.binary", binary),
        ])
    }

    /// Announces the status if it changed, and keeps following it while a
    /// DAW is attached.
    pub(super) fn refresh_status(&mut self) {
        let status = self.current_status();
        if status != self.status {
            self.status = status;
            self.for_each_listener(|events, data| self.emit_node_info(libspa_sys::SPA_NODE_CHANGE_MASK_PROPS, events, data));
        }
        if self.holder.is_some() {
            self.main_loop.arm(self.status_timer, REFRESH_MS);
        }
    }
}

pub(super) unsafe extern "C" fn on_status_timer(data: *mut c_void, _expirations: u64) {
    // SAFETY: `data` is the node registered with this timer; main loop.
    crate::guard((), || unsafe { (*data.cast::<Node>()).refresh_status() });
}

