//! What process() owns and does each graph cycle, on the data loop.

use crate::{
    config::Mode,
    cycle::{Attachment, ClientStatus, Clock},
    latency::{self, Latency},
    ports::PortRt,
};
use libspa_sys as spa;
use std::{ffi::c_int, ptr};

/// Everything process() touches. Only the data loop reads or writes it;
/// the main thread changes it through `DataLoop::run`.
pub struct Rt {
    position: *const spa::spa_io_position,
    quantum_limit: u32,
    mode: Mode,
    inputs: Vec<PortRt>,
    outputs: Vec<PortRt>,
    attachment: Option<Attachment>,
    /// Capture latency before the in_* ports, playback latency after out_*.
    pub(super) upstream: Latency,
    pub(super) downstream: Latency,
}

impl Rt {
    pub fn new(inputs: u32, outputs: u32, quantum_limit: u32, mode: Mode) -> Self {
        Self {
            position: ptr::null(),
            quantum_limit,
            mode,
            inputs: (0..inputs).map(|_| PortRt::default()).collect(),
            outputs: (0..outputs).map(|_| PortRt::default()).collect(),
            attachment: None,
            upstream: latency::zero(spa::SPA_DIRECTION_OUTPUT),
            downstream: latency::zero(spa::SPA_DIRECTION_INPUT),
        }
    }

    pub(super) fn clock(&self) -> Option<Clock> {
        // SAFETY: the daemon keeps the position area alive while it is set
        // (it is replaced through set_io, which goes through the data loop).
        let p = unsafe { self.position.as_ref()? };
        Some(Clock {
            frames: (p.clock.duration as u32).min(self.quantum_limit),
            rate: p.clock.rate.denom,
            position: p.clock.position,
            nsec: p.clock.nsec,
        })
    }

    /// The attached client as the main loop shows it.
    pub(super) fn client_status(&self) -> Option<ClientStatus> {
        self.attachment.as_ref().map(Attachment::status)
    }

    pub fn set_attachment(&mut self, a: Option<Attachment>) -> Option<Attachment> {
        std::mem::replace(&mut self.attachment, a)
    }

    pub fn port(&mut self, direction: u32, id: u32) -> Option<&mut PortRt> {
        match direction {
            spa::SPA_DIRECTION_INPUT => self.inputs.get_mut(id as usize),
            _ => self.outputs.get_mut(id as usize),
        }
    }

    pub fn set_position(&mut self, position: *const spa::spa_io_position) {
        self.position = position;
    }

    /// One graph cycle. See include/asio-bridge.h for the protocol.
    pub fn process(&mut self) -> c_int {
        let status = (spa::SPA_STATUS_HAVE_DATA | spa::SPA_STATUS_NEED_DATA) as c_int;
        let Some(clock) = self.clock() else { return status };
        let up = latency::frames(&self.upstream, clock.frames, clock.rate);
        let down = latency::frames(&self.downstream, clock.frames, clock.rate);
        let attachment = self.attachment.as_mut();
        for (ch, port) in self.inputs.iter_mut().enumerate() {
            let src = port.input(clock.frames);
            if let Some(a) = &attachment {
                a.write_input(ch as u32, clock.frames, src);
            }
        }
        let mode = self.mode;
        let complete = match attachment {
            None => false,
            Some(a) if mode == Mode::SameCycle => {
                a.publish(clock, 0, up, down);
                // Half the quantum for the host, the rest for the graph.
                let budget = clock.frames as u64 * 500_000_000 / clock.rate.max(1) as u64;
                let complete = a.await_current(budget);
                a.count_late(!complete);
                complete
            }
            Some(a) => a.previous_complete(),
        };
        let mut attachment = self.attachment.as_mut();
        for (ch, port) in self.outputs.iter_mut().enumerate() {
            if let Some(dst) = port.output(clock.frames) {
                match attachment.as_deref_mut() {
                    Some(a) => a.read_output(ch as u32, complete, dst),
                    None => dst.fill(0.0),
                }
            }
        }
        if let (Some(a), Mode::Pipelined) = (self.attachment.as_mut(), mode) {
            a.count_late(!complete);
            a.publish(clock, clock.frames, up, down);
        }
        status
    }
}