//! Port state: what the main thread announces about each port, and the
//! buffers and io area process() uses.

use crate::latency::{zero, Latency};
use libspa_sys as spa;
use std::ffi::CString;

/// Most buffers a port accepts; the free set of an output port is a bitmask.
pub const MAX_BUFFERS: u32 = 16;

/// One of a port's buffers. Its data is looked up each cycle, not cached:
/// PipeWire's input mixer passes a single peer's buffer through by
/// overwriting this spa_buffer with the peer's.
#[derive(Clone, Copy)]
pub struct Buffer(*mut spa::spa_buffer);

/// A buffer's first data block as it stands this cycle.
struct Block {
    data: *mut f32,
    maxsize: u32,
    chunk: *mut spa::spa_chunk,
}

impl Buffer {
    /// # Safety
    /// `buffer` is a valid spa_buffer that stays valid, with its memory
    /// mapped, until the port's buffers are replaced (the port_use_buffers
    /// contract).
    pub unsafe fn from_spa(buffer: *mut spa::spa_buffer) -> Option<Self> {
        let b = Self(buffer);
        b.block().map(|_| b)
    }

    fn block(&self) -> Option<Block> {
        // SAFETY: valid per the `from_spa` contract; only the first data
        // block is read, after checking it exists.
        let d = unsafe {
            let b = &*self.0;
            if b.n_datas < 1 || b.datas.is_null() {
                return None;
            }
            &*b.datas
        };
        if d.data.is_null() || d.chunk.is_null() || (d.data as usize) % std::mem::align_of::<f32>() != 0 {
            return None;
        }
        Some(Block { data: d.data.cast(), maxsize: d.maxsize, chunk: d.chunk })
    }
}

/// What process() owns of one port. Changed only on the data loop.
pub struct PortRt {
    io: *mut spa::spa_io_buffers,
    buffers: Vec<Buffer>,
    /// Output ports: bit i set = buffer i is ours to fill.
    free: u32,
}

impl Default for PortRt {
    fn default() -> Self {
        Self { io: std::ptr::null_mut(), buffers: Vec::new(), free: 0 }
    }
}

/// Bit `id` of the free mask; 0 for an id the mask cannot hold.
fn bit(id: u32) -> u32 {
    1u32.checked_shl(id).unwrap_or(0)
}

// process() runs these on the data loop: no panic paths (see cycle.rs).
#[deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
impl PortRt {
    pub fn set_io(&mut self, io: *mut spa::spa_io_buffers) {
        self.io = io;
    }

    /// Installs new buffers and hands back the old list, to be freed off the
    /// data loop.
    pub fn set_buffers(&mut self, buffers: Vec<Buffer>) -> Vec<Buffer> {
        self.free = (0..buffers.len() as u32).fold(0, |mask, id| mask | bit(id));
        std::mem::replace(&mut self.buffers, buffers)
    }

    pub fn recycle(&mut self, id: u32) {
        if (id as usize) < self.buffers.len() {
            self.free |= bit(id);
        }
    }

    /// An input port's samples for this cycle, clamped to what the buffer
    /// really holds; None for an unlinked port or no data.
    pub fn input(&mut self, frames: u32) -> Option<&[f32]> {
        // SAFETY: the daemon keeps the io area alive while it is set.
        let io = unsafe { self.io.as_mut()? };
        let id = io.buffer_id as usize;
        let have = io.status == spa::SPA_STATUS_HAVE_DATA as i32 && id < self.buffers.len();
        io.status = spa::SPA_STATUS_NEED_DATA as i32;
        if !have {
            return None;
        }
        let b = self.buffers.get(id)?.block()?;
        // SAFETY: chunk is valid while the buffers are; its values come from
        // the peer and are clamped to the buffer's maxsize below.
        let chunk = unsafe { &*b.chunk };
        let offset = chunk.offset.min(b.maxsize);
        let size = chunk.size.min(b.maxsize.saturating_sub(offset));
        let n = (size as usize / 4).min(frames as usize);
        if offset % 4 != 0 || chunk.flags & spa::SPA_CHUNK_FLAG_EMPTY as i32 != 0 {
            return None;
        }
        // SAFETY: offset + n*4 <= maxsize of mapped buffer memory.
        Some(unsafe { std::slice::from_raw_parts(b.data.add(offset as usize / 4), n) })
    }

    /// Takes a free buffer for an output port, announces it in the io area
    /// and returns `frames` samples of it to fill; None when unlinked, when
    /// the peer has not consumed the last one, or without a free buffer.
    pub fn output(&mut self, frames: u32) -> Option<&mut [f32]> {
        // SAFETY: as in `input`.
        let io = unsafe { self.io.as_mut()? };
        if io.status == spa::SPA_STATUS_HAVE_DATA as i32 {
            return None;
        }
        if (io.buffer_id as usize) < self.buffers.len() {
            self.free |= bit(io.buffer_id);
            io.buffer_id = spa::SPA_ID_INVALID;
        }
        if self.free == 0 {
            io.status = -libc::EPIPE;
            return None;
        }
        let id = self.free.trailing_zeros();
        self.free &= !bit(id);
        let Some(b) = self.buffers.get(id as usize).and_then(|b| b.block()) else {
            io.status = -libc::EINVAL;
            return None;
        };
        let n = (frames as usize).min(b.maxsize as usize / 4);
        // SAFETY: chunk valid with the buffer; we own this buffer until the
        // peer recycles it.
        unsafe {
            *b.chunk = spa::spa_chunk { offset: 0, size: (n * 4) as u32, stride: 4, flags: 0 };
        }
        io.buffer_id = id;
        io.status = spa::SPA_STATUS_HAVE_DATA as i32;
        // SAFETY: n floats fit in maxsize bytes of mapped buffer memory.
        Some(unsafe { std::slice::from_raw_parts_mut(b.data, n) })
    }
}

/// What the main thread announces about one port.
pub struct PortInfo {
    /// Owned strings behind `items`.
    _strings: Vec<CString>,
    items: Vec<spa::spa_dict_item>,
    params: [spa::spa_param_info; 4],
    pub has_format: bool,
    /// Indexed by direction: what this port reports, and what PipeWire set.
    pub latency: [Latency; 2],
}

const FORMAT_DSP: &std::ffi::CStr = c"32 bit float mono audio";

impl PortInfo {
    /// `name` is e.g. `in_1`; `alias` what JACK-style tools show.
    pub fn new(name: &str, channel: &str, alias: &str) -> Self {
        let strings: Vec<CString> = [name, channel, alias].iter().map(|s| CString::new(*s).unwrap()).collect();
        let item = |k: &'static [u8], v: &CString| spa::spa_dict_item { key: k.as_ptr().cast(), value: v.as_ptr() };
        let items = vec![
            item(b"port.name\0", &strings[0]),
            item(b"audio.channel\0", &strings[1]),
            item(b"port.alias\0", &strings[2]),
            spa::spa_dict_item { key: c"format.dsp".as_ptr(), value: FORMAT_DSP.as_ptr() },
        ];
        let latency = [zero(spa::SPA_DIRECTION_INPUT), zero(spa::SPA_DIRECTION_OUTPUT)];
        let mut info = Self { _strings: strings, items, params: [param(0, 0); 4], has_format: false, latency };
        info.set_format(false);
        info
    }

    pub fn set_format(&mut self, has: bool) {
        self.has_format = has;
        let rw = spa::SPA_PARAM_INFO_READ | spa::SPA_PARAM_INFO_WRITE;
        // Toggling SERIAL tells PipeWire the Latency param changed, so it
        // reads the port's own latency again rather than a cached one.
        let serial = (self.params[3].flags ^ spa::SPA_PARAM_INFO_SERIAL) & spa::SPA_PARAM_INFO_SERIAL;
        self.params = [
            param(spa::SPA_PARAM_EnumFormat, spa::SPA_PARAM_INFO_READ),
            param(spa::SPA_PARAM_Format, if has { rw } else { spa::SPA_PARAM_INFO_WRITE }),
            param(spa::SPA_PARAM_Buffers, if has { spa::SPA_PARAM_INFO_READ } else { 0 }),
            param(spa::SPA_PARAM_Latency, rw | serial),
        ];
    }

    /// Fills a port info pointing into `self` and `dict`, valid while both are.
    pub fn spa_info(&mut self, dict: &mut spa::spa_dict, all: bool) -> spa::spa_port_info {
        *dict = spa::spa_dict { flags: 0, n_items: self.items.len() as u32, items: self.items.as_ptr() };
        let mut mask = spa::SPA_PORT_CHANGE_MASK_PARAMS as u64;
        if all {
            mask |= (spa::SPA_PORT_CHANGE_MASK_FLAGS | spa::SPA_PORT_CHANGE_MASK_PROPS) as u64;
        }
        spa::spa_port_info {
            change_mask: mask,
            flags: spa::SPA_PORT_FLAG_TERMINAL as u64,
            rate: spa::spa_fraction { num: 0, denom: 1 },
            props: dict,
            params: self.params.as_mut_ptr(),
            // Latency is announced only once a format is set: listed from
            // the start, it makes 0.3.65 register the node too early.
            n_params: if self.has_format { 4 } else { 3 },
        }
    }
}

fn param(id: u32, flags: u32) -> spa::spa_param_info {
    spa::spa_param_info { id, flags, user: 0, seq: 0, padding: Default::default() }
}
