//! The bridge node: its ports, params and io as PipeWire drives them. Each
//! other concern has a file of its own: what process() does on the data
//! loop (`rt`), the info events (`events`), serving the socket (`serve`),
//! attaching a client (`attach`) and its clock requests (`clock`).

mod attach;
mod clock;
mod events;
mod rt;
mod serve;
mod status;

pub use rt::Rt;

use crate::{
    config::{Config, Mode},
    latency,
    params,
    ports::{Buffer, PortInfo, MAX_BUFFERS},
    socket::{self, Peer},
    support::{DataLoop, Log, MainLoop},
    throttle::Throttle,
};
use libspa_sys as spa;
use std::{
    cell::UnsafeCell,
    ffi::{c_int, c_void},
    os::fd::{AsRawFd, OwnedFd},
    path::PathBuf,
    ptr,
    time::{Duration, Instant},
};

/// How often a repeated warning reaches the daemon's log.
const WARNING_INTERVAL: Duration = Duration::from_secs(5);

struct Connection {
    fd: OwnedFd,
    source: *mut spa::spa_source,
    peer: Peer,
}

struct Holder {
    conn: Connection,
    name: String,
    exe: String,
    /// The buffer size the client last asked the graph for (0: none).
    buffer_size: u32,
    /// Whether the client lets the bridge be autoconnected (its hello).
    autoconnect: bool,
    seen: status::Seen,
    /// Its socket is not watched until the next housekeeping tick: it
    /// sent more than the node reads at once.
    resting: bool,
}

pub struct Node {
    pub iface: spa::spa_node,
    hooks: spa::spa_hook_list,
    log: Log,
    main_loop: MainLoop,
    data_loop: DataLoop,
    config: Config,
    node_props: Vec<spa::spa_dict_item>,
    /// The quantum and rate the node forces on the graph (0: none), and
    /// what it will force once `clock::CLOCK_INTERVAL` allows.
    forced: (u32, u32),
    wanted: (u32, u32),
    last_clock_change: Option<Instant>,
    clock_timer: *mut spa::spa_source,
    clock_timer_armed: bool,
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
    /// Set while the listener rests after running out of fds.
    listener_paused_until: Option<Instant>,
    /// Connections that have not said hello, oldest first.
    pending: Vec<serve::Pending>,
    /// Expires silent connections and resumes the listener.
    housekeeping: *mut spa::spa_source,
    housekeeping_armed: bool,
    holder: Option<Holder>,
    /// What the properties last said about the holder, and the timer that
    /// refreshes them.
    status: status::Status,
    status_timer: *mut spa::spa_source,
    warnings: [Throttle; serve::WARNING_KINDS],
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
            wanted: (0, 0),
            last_clock_change: None,
            clock_timer: ptr::null_mut(),
            clock_timer_armed: false,
            prior_rate: 0,
            restore_timer: ptr::null_mut(),
            restore_polls: 0,
            rt: UnsafeCell::new(Rt::new(config.inputs, config.outputs, config.quantum_limit, config.mode)),
            config,
            ports,
            socket_path,
            listener: None,
            listener_paused_until: None,
            pending: Vec::new(),
            housekeeping: ptr::null_mut(),
            housekeeping_armed: false,
            holder: None,
            status: status::Status::default(),
            status_timer: ptr::null_mut(),
            warnings: [const { Throttle::new(WARNING_INTERVAL) }; serve::WARNING_KINDS],
        });
        let me: *mut Node = &mut *node;
        node.iface.iface.cb.data = me.cast();
        let list = &mut node.hooks.list as *mut spa::spa_list;
        node.hooks.list = spa::spa_list { next: list, prev: list };
        let fd = socket::listen(&node.socket_path).map_err(|e| format!("cannot listen for ASIO clients: {e}"))?;
        // SAFETY: the node outlives the source: `Drop` destroys it first.
        let source = unsafe { node.main_loop.add_io(fd.as_raw_fd(), spa::SPA_IO_IN, serve::on_listener, me.cast()) };
        node.listener = Some((fd, source));
        // SAFETY: as above, for each timer.
        unsafe {
            node.restore_timer = node.main_loop.add_timer(clock::on_restore_timer, me.cast());
            node.clock_timer = node.main_loop.add_timer(clock::on_clock_timer, me.cast());
            node.housekeeping = node.main_loop.add_timer(serve::on_housekeeping, me.cast());
            node.status_timer = node.main_loop.add_timer(status::on_status_timer, me.cast());
        }
        node.status = node.current_status();
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

    /// The graph clock as the data loop last saw it, read on the data loop.
    fn graph_clock(&self) -> Option<crate::cycle::Clock> {
        let mut clock = None;
        self.data_loop.run(self.rt(), |rt| clock = rt.clock());
        clock
    }

    /// The data-loop state of the node at `node`, for process() and
    /// reuse_buffer on the data loop. Takes a raw pointer and reaches the
    /// cell through `UnsafeCell::raw_get`, so the data loop never forms a
    /// reference to the whole `Node`, which the main thread may hold.
    ///
    /// # Safety
    /// `node` points at a live Node; only on the data loop (or inside
    /// `DataLoop::run`), which makes it the Rt's only user.
    pub unsafe fn rt_of<'a>(node: *const Node) -> &'a mut Rt {
        // SAFETY: per the contract; `addr_of!` projects to the field without
        // a reference to the Node, and the Rt's only user is the data loop.
        unsafe { &mut *UnsafeCell::raw_get(std::ptr::addr_of!((*node).rt)) }
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
}


impl Drop for Node {
    fn drop(&mut self) {
        self.detach();
        for p in std::mem::take(&mut self.pending) {
            self.close(p.conn);
        }
        for timer in [&mut self.restore_timer, &mut self.clock_timer, &mut self.housekeeping, &mut self.status_timer] {
            self.main_loop.destroy(std::mem::replace(timer, ptr::null_mut()));
        }
        if let Some((_, source)) = self.listener.take() {
            self.main_loop.destroy(source);
            let _ = std::fs::remove_file(&self.socket_path);
        }
    }
}
