//! Clock requests: the quantum and rate the attached client asks the graph
//! to run, forced through the node's properties. However fast a client
//! asks, the graph changes at most once per `CLOCK_INTERVAL`, and the last
//! request wins. Main loop only.

use super::{serve::Warning, Node};
use asio_bridge_abi::asio_bridge_request;
use libspa_sys as spa;
use std::{
    ffi::c_void,
    time::{Duration, Instant},
};

/// The shortest time between two changes of the forced clock.
pub(super) const CLOCK_INTERVAL: Duration = Duration::from_millis(250);
/// How often and how long the node waits for the graph to return to its
/// prior rate before it releases the rate anyway.
const RESTORE_POLL_MS: u64 = 50;
const RESTORE_MAX_POLLS: u32 = 40;

impl Node {
    /// Forces what the attached client asked for, if the limits allow it.
    pub(super) fn request_clock(&mut self, r: &asio_bridge_request) {
        let c = &self.config;
        let quantum_ok = r.quantum == 0
            || ((c.min_quantum..=c.max_quantum).contains(&r.quantum) && (!c.power_of_two || r.quantum.is_power_of_two()));
        let rate_ok = r.rate == 0 || c.rates.contains(&r.rate);
        if !quantum_ok || !rate_ok {
            let msg = format!(
                "ASIO client asked for quantum {} at {} Hz, outside what '{}' allows (asio.min-quantum {}, asio.max-quantum {}, asio.rates {:?}); ignored",
                r.quantum, r.rate, c.node_name, c.min_quantum, c.max_quantum, c.rates
            );
            return self.warn_limited(Warning::Clock, msg);
        }
        if self.forced == (0, 0) && self.wanted == (0, 0) {
            self.prior_rate = self.graph_clock().map_or(0, |c| c.rate);
        }
        self.restore_polls = RESTORE_MAX_POLLS;
        if let Some(h) = &mut self.holder {
            h.buffer_size = r.quantum;
        }
        self.force_clock(r.quantum, r.rate);
    }

    /// The client is gone: the desktop gets its own quantum and rate back.
    /// The rate is forced back to what it was, then released once the graph
    /// runs it, since a running graph keeps a rate once released.
    pub(super) fn release_clock(&mut self) {
        let rate = if self.wanted.1 != 0 { self.wanted.1 } else { self.forced.1 };
        if rate != 0 && self.prior_rate != 0 && rate != self.prior_rate {
            self.force_clock(0, self.prior_rate);
            self.restore_polls = 0;
            self.main_loop.arm(self.restore_timer, RESTORE_POLL_MS);
        } else {
            self.force_clock(0, 0);
        }
    }

    fn on_restore_timer(&mut self) {
        if self.holder.is_some() || self.restore_polls >= RESTORE_MAX_POLLS {
            return;
        }
        self.restore_polls += 1;
        let rate = self.graph_clock().map_or(0, |c| c.rate);
        if rate == self.prior_rate || self.restore_polls == RESTORE_MAX_POLLS {
            self.force_clock(0, 0);
        } else {
            self.main_loop.arm(self.restore_timer, RESTORE_POLL_MS);
        }
    }

    /// Asks the graph (through the node's properties) to run `quantum` and
    /// `rate`, 0 leaving them to the graph: at once, or when
    /// `CLOCK_INTERVAL` has passed since the last change.
    fn force_clock(&mut self, quantum: u32, rate: u32) {
        self.wanted = (quantum, rate);
        self.apply_clock();
    }

    fn apply_clock(&mut self) {
        if self.forced == self.wanted {
            return;
        }
        let now = Instant::now();
        let wait = self.last_clock_change.map_or(Duration::ZERO, |t| CLOCK_INTERVAL.saturating_sub(now.duration_since(t)));
        if !wait.is_zero() {
            if !self.clock_timer_armed {
                self.clock_timer_armed = true;
                self.main_loop.arm(self.clock_timer, wait.as_millis() as u64 + 1);
            }
            return;
        }
        self.forced = self.wanted;
        self.last_clock_change = Some(now);
        let (quantum, rate) = self.forced;
        self.log.info(&format!("'{}' forces quantum {quantum} and rate {rate} (0: released)", self.config.node_name));
        self.for_each_listener(|events, data| self.emit_node_info(spa::SPA_NODE_CHANGE_MASK_PROPS, events, data));
    }

    fn on_clock_timer(&mut self) {
        self.clock_timer_armed = false;
        self.apply_clock();
    }
}

pub(super) unsafe extern "C" fn on_restore_timer(data: *mut c_void, _expirations: u64) {
    // SAFETY: `data` is the node registered with this source; main loop.
    crate::guard((), || unsafe { (*data.cast::<Node>()).on_restore_timer() });
}

pub(super) unsafe extern "C" fn on_clock_timer(data: *mut c_void, _expirations: u64) {
    // SAFETY: as in on_restore_timer.
    crate::guard((), || unsafe { (*data.cast::<Node>()).on_clock_timer() });
}
