//! Where each buffer lives in the shared memory.

use crate::{
    asio_bridge_info, asio_bridge_shm, ASIO_BRIDGE_CACHE_LINE, ASIO_BRIDGE_HALVES,
    ASIO_BRIDGE_MAGIC, ASIO_BRIDGE_MAX_CHANNELS, ASIO_BRIDGE_VERSION,
};
use core::{fmt, mem::size_of};

/// Largest channel buffer in frames (PipeWire's highest quantum limit).
pub const MAX_FRAMES: u32 = 65536;
const PAGE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Audio going to the client (node ports `in_*`).
    Input,
    /// Audio coming from the client (node ports `out_*`).
    Output,
}

/// The geometry of one mapping, derived from its channel counts and capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub n_inputs: u32,
    pub n_outputs: u32,
    pub max_frames: u32,
    pub channel_stride: usize,
    pub audio_offset: usize,
    pub size: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutError {
    TooManyChannels { inputs: u32, outputs: u32 },
    BadMaxFrames(u32),
    BadMagic(u32),
    Version(u32),
    Mismatch,
    Truncated { mapped: usize, needed: usize },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyChannels { inputs, outputs } => write!(
                f,
                "{inputs} inputs / {outputs} outputs: each must be at most {ASIO_BRIDGE_MAX_CHANNELS}"
            ),
            Self::BadMaxFrames(n) => write!(f, "buffer capacity {n} frames is not in 1..={MAX_FRAMES}"),
            Self::BadMagic(m) => write!(f, "shared memory magic {m:#x} is not the bridge's"),
            Self::Version(v) => write!(
                f,
                "shared memory has ABI version {v}, this side speaks {ASIO_BRIDGE_VERSION}"
            ),
            Self::Mismatch => write!(f, "shared memory header is inconsistent"),
            Self::Truncated { mapped, needed } => {
                write!(f, "shared memory is {mapped} bytes, its header claims {needed}")
            }
        }
    }
}

const fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

impl Layout {
    pub fn new(n_inputs: u32, n_outputs: u32, max_frames: u32) -> Result<Self, LayoutError> {
        if n_inputs > ASIO_BRIDGE_MAX_CHANNELS || n_outputs > ASIO_BRIDGE_MAX_CHANNELS {
            return Err(LayoutError::TooManyChannels { inputs: n_inputs, outputs: n_outputs });
        }
        if max_frames == 0 || max_frames > MAX_FRAMES {
            return Err(LayoutError::BadMaxFrames(max_frames));
        }
        let line = ASIO_BRIDGE_CACHE_LINE as usize;
        let channel_stride = round_up(max_frames as usize * size_of::<f32>(), line);
        let audio_offset = round_up(size_of::<asio_bridge_shm>(), line);
        let channels = (n_inputs + n_outputs) as usize * ASIO_BRIDGE_HALVES as usize;
        let size = round_up(audio_offset + channels * channel_stride, PAGE);
        Ok(Self { n_inputs, n_outputs, max_frames, channel_stride, audio_offset, size })
    }

    /// Validates a header the other side wrote against the bytes actually
    /// mapped; every later offset computed from the result lies inside them.
    pub fn from_info(info: &asio_bridge_info, mapped: usize) -> Result<Self, LayoutError> {
        if info.magic != ASIO_BRIDGE_MAGIC {
            return Err(LayoutError::BadMagic(info.magic));
        }
        if info.version != ASIO_BRIDGE_VERSION {
            return Err(LayoutError::Version(info.version));
        }
        let layout = Self::new(info.n_inputs, info.n_outputs, info.max_frames)?;
        if layout.channel_stride != info.channel_stride as usize
            || layout.audio_offset != info.audio_offset as usize
            || layout.size != info.size as usize
        {
            return Err(LayoutError::Mismatch);
        }
        if mapped < layout.size {
            return Err(LayoutError::Truncated { mapped, needed: layout.size });
        }
        Ok(layout)
    }

    /// The header the node writes for this layout.
    pub fn info(&self, node_name: &str) -> asio_bridge_info {
        let mut info = asio_bridge_info {
            magic: ASIO_BRIDGE_MAGIC,
            version: ASIO_BRIDGE_VERSION,
            size: self.size as u32,
            n_inputs: self.n_inputs,
            n_outputs: self.n_outputs,
            max_frames: self.max_frames,
            channel_stride: self.channel_stride as u32,
            audio_offset: self.audio_offset as u32,
            ..Default::default()
        };
        crate::copy_c_str(&mut info.node_name, node_name);
        info
    }

    pub fn channels(&self, direction: Direction) -> u32 {
        match direction {
            Direction::Input => self.n_inputs,
            Direction::Output => self.n_outputs,
        }
    }

    /// Byte offset of one channel buffer; None for an index out of range.
    /// Runs every cycle on the RT path, so it cannot panic: with the
    /// indices in range (checked), the offset is at most
    /// `audio_offset + (2 * per_half - 1) * channel_stride`, and the buffer
    /// ends inside `size` by construction in `new`; the arithmetic stays
    /// far below usize::MAX (at most 128 channels of 256 KiB per half).
    pub fn buffer_offset(&self, half: u32, direction: Direction, channel: u32) -> Option<usize> {
        if half >= ASIO_BRIDGE_HALVES || channel >= self.channels(direction) {
            return None;
        }
        let per_half = (self.n_inputs + self.n_outputs) as usize;
        let index = match direction {
            Direction::Input => channel,
            Direction::Output => self.n_inputs + channel,
        } as usize;
        Some(self.audio_offset + (half as usize * per_half + index) * self.channel_stride)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_disjoint_and_inside() {
        let l = Layout::new(3, 5, 1000).unwrap();
        assert_eq!(l.channel_stride % 64, 0);
        assert_eq!(l.size % PAGE, 0);
        let mut offsets = [0usize; 16];
        let mut n = 0;
        for half in 0..2 {
            for (dir, count) in [(Direction::Input, 3), (Direction::Output, 5)] {
                for ch in 0..count {
                    let off = l.buffer_offset(half, dir, ch).unwrap();
                    assert_eq!(off % 64, 0);
                    assert!(off + 1000 * 4 <= l.size);
                    offsets[n] = off;
                    n += 1;
                }
            }
        }
        offsets.sort();
        assert_eq!(l.buffer_offset(2, Direction::Input, 0), None);
        assert_eq!(l.buffer_offset(0, Direction::Input, 3), None);
        assert_eq!(l.buffer_offset(1, Direction::Output, 5), None);
        assert_eq!(Layout::new(0, 0, 64).unwrap().buffer_offset(0, Direction::Input, 0), None);
        assert!(offsets.windows(2).all(|w| w[1] - w[0] >= l.channel_stride));
    }

    #[test]
    fn rejects_bounds_and_inconsistent_headers() {
        assert!(Layout::new(65, 0, 256).is_err());
        assert!(Layout::new(2, 2, 0).is_err());
        assert!(Layout::new(2, 2, MAX_FRAMES + 1).is_err());
        let l = Layout::new(2, 2, 1024).unwrap();
        let mut info = l.info("x");
        assert_eq!(Layout::from_info(&info, l.size), Ok(l));
        assert_eq!(
            Layout::from_info(&info, l.size - 1),
            Err(LayoutError::Truncated { mapped: l.size - 1, needed: l.size })
        );
        info.channel_stride += 64;
        assert_eq!(Layout::from_info(&info, l.size), Err(LayoutError::Mismatch));
        info.version = 9;
        assert_eq!(Layout::from_info(&info, l.size), Err(LayoutError::Version(9)));
    }
}
