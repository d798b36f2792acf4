//! The bridge node: ports, params, attach/detach on the main loop, and the
//! per-cycle work on the data loop.

use crate::{
    config::{Config, Mode},
    cycle::{Attachment, Clock},
    latency::{self, Latency},
    params,
    ports::{Buffer, PortInfo, PortRt, MAX_BUFFERS},
    socket::{self, Peer},
    support::{DataLoop, Log, MainLoop},
};
use asio_bridge_abi::{
    as_bytes, asio_bridge_refuse, asio_bridge_request, asio_bridge_shm, asio_bridge_welcome, c_str, copy_c_str,
    decode_client, sealed_memfd, ClientMessage, Layout, Mapping, MessageError, ASIO_BRIDGE_INFO_POWER_OF_TWO,
    ASIO_BRIDGE_INFO_SAME_CYCLE, ASIO_BRIDGE_REFUSE_BUSY,
    ASIO_BRIDGE_REFUSE_PROTOCOL, ASIO_BRIDGE_REFUSE_RESOURCES, ASIO_BRIDGE_REFUSE_VERSION,
};
use libspa_sys as spa;
use std::{
    cell::UnsafeCell,
    ffi::{c_int, c_void, CString},
    os::fd::{AsRawFd, OwnedFd, RawFd},
    path::PathBuf,
    ptr,
};

/// Connections that have not said hello yet; more are closed at once.
const MAX_PENDING: usize = 8;
/// How often and how long the node waits for the graph to return to its
/// prior rate before it releases the rate anyway.
const RESTORE_POLL_MS: u64 = 50;
const RESTORE_MAX_POLLS: u32 = 40;

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
    upstream: Latency,
    downstream: Latency,
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

    fn clock(&self) -> Option<Clock> {
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
        let attachment = self.attachment.as_ref();
        for (ch, port) in self.outputs.iter_mut().enumerate() {
            if let Some(dst) = port.output(clock.frames) {
                match attachment {
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

struct Connection {
    fd: OwnedFd,
    source: *mut spa::spa_source,
    peer: Peer,
}

struct Holder {
    conn: Connection,
    name: String,
    exe: String,
}

pub struct Node {
    pub iface: spa::spa_node,
    hooks: spa::spa_hook_list,
    log: Log,
    main_loop: MainLoop,
    data_loop: DataLoop,
    config: Config,
    node_props: Vec<spa::spa_dict_item>,
    /// The quantum and rate the node forces on the graph (0: none).
    forced: (u32, u32),
    /// The graph's rate before a client first forced one: restored when
    /// clients are done, since a running graph keeps a rate once released.
    prior_rate: u32,
    /// Polls, after the last client left, until the graph runs `prior_rate`.
    restore_timer: *mut spa::spa_source,
    restore_polls: u32,
    ports: Vec<PortInfo>,
    rt: UnsafeCell<Rt>,
    socket_path: PathBuf,
    listener: Option<(OwnedFd, *mut spa::spa_source)>,
    pending: Vec<Connection>,
    holder: Option<Holder>,
}

impl Node {
    /// Builds the node in its final heap place (the hook list is
    /// self-referential) and starts listening.
    pub fn new(config: Config, log: Log, main_loop: MainLoop, data_loop: DataLoop) -> Result<Box<Self>, String> {
        let socket_path = socket::prepare_dir(&config.node_name).map_err(|e| format!("cannot create the bridge socket: {e}"))?;
        let mut ports: Vec<PortInfo> = (0..config.inputs)
            .map(|i| PortInfo::new(&format!("in_{}", i + 1), &format!("AUX{i}"), &format!("ASIO input {}", i + 1)))
            .chain((0..config.outputs).map(|i| {
                PortInfo::new(&format!("out_{}", i + 1), &format!("AUX{i}"), &format!("ASIO output {}", i + 1))
            }))
            .collect();
        // Pipelined, the out_* ports carry what the host made one quantum
        // earlier: their own capture latency, for graph tools and JACK
        // programs to read.
        if config.mode == Mode::Pipelined {
            for p in &mut ports[config.inputs as usize..] {
                p.latency[spa::SPA_DIRECTION_OUTPUT as usize] = latency::quanta(spa::SPA_DIRECTION_OUTPUT, 1.0);
            }
        }
        let item = |k: &'static std::ffi::CStr, v: &'static std::ffi::CStr| spa::spa_dict_item { key: k.as_ptr(), value: v.as_ptr() };
        let mut node = Box::new(Self {
            iface: spa::spa_node {
                iface: spa::spa_interface {
                    type_: spa::SPA_TYPE_INTERFACE_Node.as_ptr().cast(),
                    version: spa::SPA_VERSION_NODE,
                    cb: spa::spa_callbacks { funcs: (&crate::NODE_METHODS as *const spa::spa_node_methods).cast(), data: ptr::null_mut() },
                },
            },
            hooks: spa::spa_hook_list { list: spa::spa_list { next: ptr::null_mut(), prev: ptr::null_mut() } },
            log,
            main_loop,
            data_loop,
            node_props: vec![
                // Run even when nothing is linked: the DAW expects callbacks.
                item(c"node.always-process", c"true"),
                item(c"node.want-driver", c"true"),
                item(c"media.type", c"Audio"),
                item(c"media.role", c"DSP"),
            ],
            forced: (0, 0),
            prior_rate: 0,
            restore_timer: ptr::null_mut(),
            restore_polls: 0,
            rt: UnsafeCell::new(Rt::new(config.inputs, config.outputs, config.quantum_limit, config.mode)),
            config,
            ports,
            socket_path,
            listener: None,
            pending: Vec::new(),
            holder: None,
        });
        let me: *mut Node = &mut *node;
        node.iface.iface.cb.data = me.cast();
        let list = &mut node.hooks.list as *mut spa::spa_list;
        node.hooks.list = spa::spa_list { next: list, prev: list };
        let fd = socket::listen(&node.socket_path).map_err(|e| format!("cannot listen for ASIO clients: {e}"))?;
        // SAFETY: the node outlives the source: `Drop` destroys it first.
        let source = unsafe { node.main_loop.add_io(fd.as_raw_fd(), spa::SPA_IO_IN, on_listener, me.cast()) };
        node.listener = Some((fd, source));
        // SAFETY: as above.
        node.restore_timer = unsafe { node.main_loop.add_timer(on_restore_timer, me.cast()) };
        node.log.info(&format!(
            "bridge '{}' ready: {} inputs, {} outputs, clients attach at {}",
            node.config.node_name,
            node.config.inputs,
            node.config.outputs,
            node.socket_path.display()
        ));
        Ok(node)
    }

    fn rt(&self) -> *mut Rt {
        self.rt.get()
    }

    /// The data-loop state, for process() and reuse_buffer on the data loop.
    ///
    /// # Safety
    /// Only on the data loop (or inside `DataLoop::run`).
    // The UnsafeCell is the point: the data loop, its only user, gets a
    // mutable view while the main thread holds `&Node`.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn rt_mut(&self) -> &mut Rt {
        // SAFETY: per the contract, the data loop is the only user.
        unsafe { &mut *self.rt.get() }
    }

    fn port_index(&self, direction: u32, id: u32) -> Option<usize> {
        let (base, count) = match direction {
            spa::SPA_DIRECTION_INPUT => (0, self.config.inputs),
            spa::SPA_DIRECTION_OUTPUT => (self.config.inputs, self.config.outputs),
            _ => return None,
        };
        (id < count).then_some((base + id) as usize)
    }

    // ---- events --------------------------------------------------------

    /// Calls `f` with each listener's events table and data.
    fn for_each_listener(&self, f: impl Fn(&spa::spa_node_events, *mut c_void)) {
        let head = &self.hooks.list as *const spa::spa_list;
        let mut link = self.hooks.list.next;
        while !link.is_null() && link as *const _ != head {
            // SAFETY: links in our list are the first field of live spa_hooks
            // added through add_listener; `next` is read before the call in
            // case the listener removes itself.
            unsafe {
                let hook = link.cast::<spa::spa_hook>();
                link = (*link).next;
                if let Some(events) = (*hook).cb.funcs.cast::<spa::spa_node_events>().as_ref() {
                    f(events, (*hook).cb.data);
                }
            }
        }
    }

    /// Emits the node's info with `change_mask` (SPA_NODE_CHANGE_MASK_*):
    /// FLAGS and PROPS only. The node has no node-level params, and an info
    /// that flags PARAMS with none makes libpipewire's info merge free twice
    /// in every observer (WirePlumber, pw-mon) on the second such update.
    fn emit_node_info(&self, change_mask: u32, events: &spa::spa_node_events, data: *mut c_void) {
        // Always present, "0" when released: 0.3.65 ignores a removed key.
        let quantum = CString::new(self.forced.0.to_string()).unwrap();
        let rate = CString::new(self.forced.1.to_string()).unwrap();
        let mut items = self.node_props.clone();
        items.push(spa::spa_dict_item { key: c"node.force-quantum".as_ptr(), value: quantum.as_ptr() });
        items.push(spa::spa_dict_item { key: c"node.force-rate".as_ptr(), value: rate.as_ptr() });
        let dict = spa::spa_dict { flags: 0, n_items: items.len() as u32, items: items.as_ptr() };
        let info = spa::spa_node_info {
            max_input_ports: self.config.inputs,
            max_output_ports: self.config.outputs,
            change_mask: (change_mask & (spa::SPA_NODE_CHANGE_MASK_FLAGS | spa::SPA_NODE_CHANGE_MASK_PROPS)) as u64,
            flags: spa::SPA_NODE_FLAG_RT as u64,
            props: &dict as *const _ as *mut _,
            params: ptr::null_mut(),
            n_params: 0,
        };
        if let Some(f) = events.info {
            // SAFETY: a listener's callback with its own data and an info
            // that lives for the call.
            unsafe { f(data, &info) };
        }
    }

    fn emit_port_info(&mut self, index: usize, all: bool, target: Option<(&spa::spa_node_events, *mut c_void)>) {
        let (direction, id) = if index < self.config.inputs as usize {
            (spa::SPA_DIRECTION_INPUT, index as u32)
        } else {
            (spa::SPA_DIRECTION_OUTPUT, index as u32 - self.config.inputs)
        };
        let mut dict = spa::spa_dict { flags: 0, n_items: 0, items: ptr::null() };
        let info = self.ports[index].spa_info(&mut dict, all);
        let call = |events: &spa::spa_node_events, data| {
            if let Some(f) = events.port_info {
                // SAFETY: as in emit_node_info.
                unsafe { f(data, direction, id, &info) };
            }
        };
        match target {
            Some((events, data)) => call(events, data),
            None => self.for_each_listener(call),
        }
    }

    pub fn add_listener(&mut self, listener: *mut spa::spa_hook, events: *const spa::spa_node_events, data: *mut c_void) -> c_int {
        // SAFETY: the caller passes a valid events table that outlives the hook.
        let Some(ev) = (unsafe { events.as_ref() }) else { return -libc::EINVAL };
        self.emit_node_info(spa::SPA_NODE_CHANGE_MASK_FLAGS | spa::SPA_NODE_CHANGE_MASK_PROPS, ev, data);
        for i in 0..self.ports.len() {
            self.emit_port_info(i, true, Some((ev, data)));
        }
        // SAFETY: `listener` is the caller's hook, appended at the tail of
        // our list (spa_hook_list_append); the caller removes it with
        // spa_hook_remove before freeing it.
        unsafe {
            (*listener).cb = spa::spa_callbacks { funcs: events.cast(), data };
            let head = &mut self.hooks.list as *mut spa::spa_list;
            let link = &mut (*listener).link as *mut spa::spa_list;
            (*link).prev = (*head).prev;
            (*link).next = head;
            (*(*head).prev).next = link;
            (*head).prev = link;
        }
        0
    }

    pub fn sync(&self, seq: c_int) -> c_int {
        self.for_each_listener(|events, data| {
            if let Some(f) = events.result {
                // SAFETY: listener callback with its own data.
                unsafe { f(data, seq, 0, 0, ptr::null()) };
            }
        });
        0
    }

    // ---- io and params -------------------------------------------------

    pub fn set_io(&self, id: u32, data: *mut c_void) -> c_int {
        match id {
            spa::SPA_IO_Position => {
                let position = data as *const spa::spa_io_position;
                self.data_loop.run(self.rt(), |rt| rt.set_position(position));
                0
            }
            spa::SPA_IO_Clock => 0,
            _ => -libc::ENOENT,
        }
    }

    pub fn port_set_io(&self, direction: u32, id: u32, io_id: u32, data: *mut c_void, size: usize) -> c_int {
        if self.port_index(direction, id).is_none() {
            return -libc::EINVAL;
        }
        if io_id != spa::SPA_IO_Buffers {
            return -libc::ENOENT;
        }
        if !data.is_null() && size < std::mem::size_of::<spa::spa_io_buffers>() {
            return -libc::ENOSPC;
        }
        let io = data as *mut spa::spa_io_buffers;
        self.data_loop.run(self.rt(), |rt| {
            if let Some(p) = rt.port(direction, id) {
                p.set_io(io)
            }
        });
        0
    }

    pub fn port_use_buffers(&self, direction: u32, id: u32, buffers: *mut *mut spa::spa_buffer, n: u32) -> c_int {
        let Some(index) = self.port_index(direction, id) else { return -libc::EINVAL };
        if n > 0 && !self.ports[index].has_format {
            return -libc::EIO;
        }
        if n > MAX_BUFFERS {
            return -libc::ENOSPC;
        }
        let mut list = Vec::with_capacity(n as usize);
        for i in 0..n as usize {
            // SAFETY: the daemon passes `n` valid buffers, mapped until the
            // next port_use_buffers on this port.
            match unsafe { Buffer::from_spa(*buffers.add(i)) } {
                Some(b) => list.push(b),
                None => return -libc::EINVAL,
            }
        }
        let mut old = Vec::new();
        self.data_loop.run(self.rt(), |rt| {
            if let Some(p) = rt.port(direction, id) {
                old = p.set_buffers(list);
            }
        });
        0
    }

    pub fn port_enum_params(&self, seq: c_int, direction: u32, id: u32, param_id: u32, start: u32, max: u32, filter: *const spa::spa_pod) -> c_int {
        let Some(index) = self.port_index(direction, id) else { return -libc::EINVAL };
        let port = &self.ports[index];
        let mut buf = [0u64; 128];
        let (size, limit) = (std::mem::size_of_val(&buf) as u32, self.config.quantum_limit);
        let mut count = 0;
        let mut i = start;
        while count < max {
            let mut pod: *mut spa::spa_pod = ptr::null_mut();
            let b = buf.as_mut_ptr().cast();
            // SAFETY: builders write at most `size` bytes into `buf` and set
            // `pod` inside it; `filter` is the caller's pod or NULL.
            let res = unsafe {
                match (param_id, i) {
                    (spa::SPA_PARAM_EnumFormat, 0) => params::asio_bridge_param_dsp_format(b, size, param_id, filter, &mut pod),
                    (spa::SPA_PARAM_Format, 0) if port.has_format => params::asio_bridge_param_dsp_format(b, size, param_id, filter, &mut pod),
                    (spa::SPA_PARAM_Buffers, 0) if port.has_format => {
                        params::asio_bridge_param_buffers(b, size, MAX_BUFFERS, limit * 4, limit * 4, filter, &mut pod)
                    }
                    (spa::SPA_PARAM_Latency, 0 | 1) => params::asio_bridge_param_latency(b, size, &port.latency[i as usize], &mut pod),
                    (spa::SPA_PARAM_EnumFormat | spa::SPA_PARAM_Format | spa::SPA_PARAM_Buffers | spa::SPA_PARAM_Latency, _) => break,
                    _ => return -libc::ENOENT,
                }
            };
            i += 1;
            if res < 0 {
                return res;
            }
            if res == 0 {
                continue;
            }
            let result = spa::spa_result_node_params { id: param_id, index: i - 1, next: i, param: pod };
            self.for_each_listener(|events, data| {
                if let Some(f) = events.result {
                    // SAFETY: listener callback; `result` lives for the call.
                    unsafe { f(data, seq, 0, spa::SPA_RESULT_TYPE_NODE_PARAMS, (&result as *const spa::spa_result_node_params).cast()) };
                }
            });
            count += 1;
        }
        0
    }

    pub fn port_set_param(&mut self, direction: u32, id: u32, param_id: u32, param: *const spa::spa_pod) -> c_int {
        let Some(index) = self.port_index(direction, id) else { return -libc::EINVAL };
        match param_id {
            spa::SPA_PARAM_Format => {
                // SAFETY: `param` is the caller's pod, or NULL to clear.
                let ok = param.is_null() || unsafe { params::asio_bridge_parse_dsp_format(param) } == 0;
                if !ok {
                    return -libc::EINVAL;
                }
                if param.is_null() {
                    self.port_use_buffers(direction, id, ptr::null_mut(), 0);
                }
                self.ports[index].set_format(!param.is_null());
                self.emit_port_info(index, false, None);
                0
            }
            spa::SPA_PARAM_Latency => {
                // NULL clears what lies beyond the port.
                let mut info = latency::zero(direction ^ 1);
                // SAFETY: `param` is the caller's pod; the parser only reads it.
                if !param.is_null() && unsafe { params::asio_bridge_parse_latency(param, &mut info) } < 0 {
                    return -libc::EINVAL;
                }
                // PipeWire tells a port what lies beyond it: capture latency
                // (OUTPUT) on inputs, playback latency (INPUT) on outputs.
                // The other direction is the port's own and stays zero.
                if info.direction == direction {
                    return -libc::EINVAL;
                }
                self.ports[index].latency[info.direction as usize & 1] = info;
                self.update_latency();
                0
            }
            _ => -libc::ENOENT,
        }
    }

    /// Hands process() the widest latency beyond each side of the node.
    fn update_latency(&self) {
        let inputs = self.config.inputs as usize;
        let (ins, outs) = self.ports.split_at(inputs);
        let up = latency::widest(spa::SPA_DIRECTION_OUTPUT, ins.iter().map(|p| p.latency[spa::SPA_DIRECTION_OUTPUT as usize]));
        let down = latency::widest(spa::SPA_DIRECTION_INPUT, outs.iter().map(|p| p.latency[spa::SPA_DIRECTION_INPUT as usize]));
        self.data_loop.run(self.rt(), |rt| {
            rt.upstream = up;
            rt.downstream = down;
        });
    }

    // ---- clients -------------------------------------------------------

    fn on_listener(&mut self) {
        let Some((fd, _)) = &self.listener else { return };
        let listener = fd.as_raw_fd();
        loop {
            match socket::accept(listener) {
                Ok(None) => break,
                Err(e) => {
                    self.log.warn(&format!("accepting an ASIO client failed: {e}"));
                    break;
                }
                Ok(Some((fd, peer))) => {
                    // SAFETY: geteuid cannot fail.
                    if peer.uid != unsafe { libc::geteuid() } {
                        self.log.warn(&format!("refused ASIO client pid {} of uid {}: not the daemon's user", peer.pid, peer.uid));
                        continue;
                    }
                    if self.pending.len() >= MAX_PENDING {
                        self.log.warn(&format!("refused ASIO client pid {}: too many connections waiting to attach", peer.pid));
                        continue;
                    }
                    let me: *mut Node = self;
                    // SAFETY: the node outlives the source (destroyed with the connection).
                    let source = unsafe { self.main_loop.add_io(fd.as_raw_fd(), spa::SPA_IO_IN | spa::SPA_IO_HUP | spa::SPA_IO_ERR, on_connection, me.cast()) };
                    self.pending.push(Connection { fd, source, peer });
                }
            }
        }
    }

    fn on_connection(&mut self, fd: RawFd) {
        if self.holder.as_ref().is_some_and(|h| h.conn.fd.as_raw_fd() == fd) {
            // The attached client asks for a clock, or hangs up. Anything
            // else breaks the protocol and detaches it.
            let mut buf = [0u8; 64];
            match socket::recv(fd, &mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Ok(Some(n)) => match decode_client(&buf[..n]) {
                    Ok(ClientMessage::Request(r)) => return self.request_clock(&r),
                    Ok(_) => self.log.warn("attached ASIO client said hello twice; detaching it"),
                    Err(e) => self.log.warn(&format!("attached ASIO client sent a bad message ({e}); detaching it")),
                },
                Err(e) => self.log.warn(&format!("reading from the attached ASIO client failed ({e}); detaching it")),
                Ok(None) => {}
            }
            self.detach();
            return;
        }
        let Some(pos) = self.pending.iter().position(|c| c.fd.as_raw_fd() == fd) else { return };
        let conn = self.pending.swap_remove(pos);
        let mut buf = [0u8; 256];
        let len = match socket::recv(fd, &mut buf) {
            Ok(Some(n)) => n,
            Ok(None) => return self.close(conn),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                self.pending.push(conn);
                return;
            }
            Err(e) => {
                let msg = format!("bad message from ASIO client pid {}: {e}", conn.peer.pid);
                return self.refuse(conn, ASIO_BRIDGE_REFUSE_PROTOCOL, 0, &msg);
            }
        };
        let hello = match decode_client(&buf[..len]) {
            Ok(ClientMessage::Hello(h)) => h,
            Ok(ClientMessage::Request(_)) => {
                let msg = format!("ASIO client pid {} asked for a clock before attaching", conn.peer.pid);
                return self.refuse(conn, ASIO_BRIDGE_REFUSE_PROTOCOL, 0, &msg);
            }
            Err(e @ MessageError::Version(_)) => {
                let msg = format!("the ASIO bridge '{}' cannot talk to this client: {e}; install matching versions of the driver and the PipeWire plugin", self.config.node_name);
                return self.refuse(conn, ASIO_BRIDGE_REFUSE_VERSION, 0, &msg);
            }
            Err(e) => {
                let msg = format!("bad message from ASIO client pid {}: {e}", conn.peer.pid);
                return self.refuse(conn, ASIO_BRIDGE_REFUSE_PROTOCOL, 0, &msg);
            }
        };
        let name = c_str(&hello.client_name).to_string();
        if let Some(h) = &self.holder {
            let msg = format!(
                "the ASIO bridge '{}' is in use by {} (pid {}, {}); close that program or choose another bridge node",
                self.config.node_name, h.name, h.conn.peer.pid, h.exe
            );
            let pid = h.conn.peer.pid;
            return self.refuse(conn, ASIO_BRIDGE_REFUSE_BUSY, pid, &msg);
        }
        match self.attach(&conn) {
            Ok(()) => {
                let exe = conn.peer.exe();
                self.log.info(&format!("ASIO client {name} (pid {}, {exe}) attached to '{}'", conn.peer.pid, self.config.node_name));
                self.holder = Some(Holder { conn, name, exe });
            }
            Err(e) => {
                let msg = format!("the ASIO bridge '{}' could not set up shared memory: {e}", self.config.node_name);
                self.refuse(conn, ASIO_BRIDGE_REFUSE_RESOURCES, 0, &msg);
            }
        }
    }

    /// Maps fresh shared memory for a client, hands it over, and installs it
    /// for process().
    fn attach(&mut self, conn: &Connection) -> std::io::Result<()> {
        let c = &self.config;
        let layout = Layout::new(c.inputs, c.outputs, c.quantum_limit)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let memfd = sealed_memfd(&socket::memfd_name(&c.node_name), layout.size)?;
        let map = Mapping::new(&memfd, layout.size)?;
        let shm = map.as_ptr().cast::<asio_bridge_shm>();
        // SAFETY: a fresh zeroed mapping of `layout.size` bytes, which holds
        // the header; nothing else sees it yet.
        unsafe {
            let info = &mut (*shm).info;
            *info = layout.info(&c.node_name);
            info.min_quantum = c.min_quantum;
            info.max_quantum = c.max_quantum;
            info.flags = if c.mode == Mode::SameCycle { ASIO_BRIDGE_INFO_SAME_CYCLE } else { 0 }
                | if c.power_of_two { ASIO_BRIDGE_INFO_POWER_OF_TWO } else { 0 };
            info.n_rates = c.rates.len() as u32;
            info.rates[..c.rates.len()].copy_from_slice(&c.rates);
            for (i, names) in (*shm).input_names.iter_mut().take(c.inputs as usize).enumerate() {
                copy_c_str(names, &format!("in_{}", i + 1));
            }
            for (i, names) in (*shm).output_names.iter_mut().take(c.outputs as usize).enumerate() {
                copy_c_str(names, &format!("out_{}", i + 1));
            }
        }
        let attachment = Attachment::new(map, layout);
        // SAFETY: reading two integers the driver updates; a torn read only
        // gives the client a stale first guess, corrected by the first cycle.
        if let Some(clock) = unsafe { (*self.rt()).clock() } {
            attachment.announce(clock, (c.mode == Mode::Pipelined) as u32);
        }
        let welcome = asio_bridge_welcome::with_size(layout.size as u32);
        socket::send(conn.fd.as_raw_fd(), as_bytes(&welcome), Some(memfd.as_raw_fd()))?;
        self.data_loop.run(self.rt(), move |rt| {
            rt.set_attachment(Some(attachment));
        });
        Ok(())
    }

    /// Takes the shared memory away from process() and frees it here, on
    /// the main loop.
    fn detach(&mut self) {
        let Some(holder) = self.holder.take() else { return };
        let mut old: Option<Attachment> = None;
        self.data_loop.run(self.rt(), |rt| old = rt.set_attachment(None));
        drop(old.map(Attachment::into_mapping));
        // The desktop gets its own quantum and rate back: the rate is forced
        // back to what it was, then released once the graph runs it.
        if self.forced.1 != 0 && self.prior_rate != 0 && self.forced.1 != self.prior_rate {
            self.force_clock(0, self.prior_rate);
            self.restore_polls = 0;
            self.main_loop.arm(self.restore_timer, RESTORE_POLL_MS);
        } else {
            self.force_clock(0, 0);
        }
        self.log.info(&format!("ASIO client {} (pid {}) detached from '{}'", holder.name, holder.conn.peer.pid, self.config.node_name));
        self.close(holder.conn);
    }

    /// Forces what the attached client asked for, if the limits allow it.
    fn request_clock(&mut self, r: &asio_bridge_request) {
        let c = &self.config;
        let quantum_ok = r.quantum == 0
            || ((c.min_quantum..=c.max_quantum).contains(&r.quantum) && (!c.power_of_two || r.quantum.is_power_of_two()));
        let rate_ok = r.rate == 0 || c.rates.contains(&r.rate);
        if !quantum_ok || !rate_ok {
            self.log.warn(&format!(
                "ASIO client asked for quantum {} at {} Hz, outside what '{}' allows (asio.min-quantum {}, asio.max-quantum {}, asio.rates {:?}); ignored",
                r.quantum, r.rate, c.node_name, c.min_quantum, c.max_quantum, c.rates
            ));
            return;
        }
        if self.forced == (0, 0) {
            // SAFETY: a torn read of two integers only gives a stale rate.
            self.prior_rate = unsafe { (*self.rt()).clock() }.map_or(0, |c| c.rate);
        }
        self.restore_polls = RESTORE_MAX_POLLS;
        self.force_clock(r.quantum, r.rate);
    }

    fn on_restore_timer(&mut self) {
        if self.holder.is_some() || self.restore_polls >= RESTORE_MAX_POLLS {
            return;
        }
        self.restore_polls += 1;
        // SAFETY: as in request_clock.
        let rate = unsafe { (*self.rt()).clock() }.map_or(0, |c| c.rate);
        if rate == self.prior_rate || self.restore_polls == RESTORE_MAX_POLLS {
            self.force_clock(0, 0);
        } else {
            self.main_loop.arm(self.restore_timer, RESTORE_POLL_MS);
        }
    }

    /// Tells the graph (through the node's properties) which quantum and
    /// rate to run; 0 leaves them to the graph.
    fn force_clock(&mut self, quantum: u32, rate: u32) {
        if self.forced == (quantum, rate) {
            return;
        }
        self.forced = (quantum, rate);
        self.log.info(&format!("'{}' forces quantum {quantum} and rate {rate} (0: released)", self.config.node_name));
        self.for_each_listener(|events, data| self.emit_node_info(spa::SPA_NODE_CHANGE_MASK_PROPS, events, data));
    }

    fn refuse(&mut self, conn: Connection, reason: u32, holder_pid: u32, message: &str) {
        self.log.warn(&format!("refused ASIO client pid {}: {message}", conn.peer.pid));
        let msg = asio_bridge_refuse::with_reason(reason, holder_pid, message);
        let _ = socket::send(conn.fd.as_raw_fd(), as_bytes(&msg), None);
        self.close(conn);
    }

    fn close(&mut self, conn: Connection) {
        self.main_loop.destroy(conn.source);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.detach();
        for conn in std::mem::take(&mut self.pending) {
            self.close(conn);
        }
        self.main_loop.destroy(std::mem::replace(&mut self.restore_timer, ptr::null_mut()));
        if let Some((_, source)) = self.listener.take() {
            self.main_loop.destroy(source);
            let _ = std::fs::remove_file(&self.socket_path);
        }
    }
}

unsafe extern "C" fn on_listener(data: *mut c_void, _fd: c_int, _mask: u32) {
    // SAFETY: `data` is the node registered with this source; main loop.
    crate::guard((), || unsafe { (*data.cast::<Node>()).on_listener() });
}

unsafe extern "C" fn on_restore_timer(data: *mut c_void, _expirations: u64) {
    // SAFETY: as in on_listener.
    crate::guard((), || unsafe { (*data.cast::<Node>()).on_restore_timer() });
}

unsafe extern "C" fn on_connection(data: *mut c_void, fd: c_int, _mask: u32) {
    // SAFETY: as in on_listener.
    crate::guard((), || unsafe { (*data.cast::<Node>()).on_connection(fd) });
}

