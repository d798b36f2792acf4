//! Encoding and validation of the attach messages.

use crate::{
    asio_bridge_hello, asio_bridge_msg_header, asio_bridge_refuse, asio_bridge_request,
    asio_bridge_welcome, ASIO_BRIDGE_MAGIC, ASIO_BRIDGE_MSG_HELLO, ASIO_BRIDGE_MSG_REFUSE,
    ASIO_BRIDGE_MSG_REQUEST, ASIO_BRIDGE_MSG_WELCOME, ASIO_BRIDGE_VERSION,
};
use core::{fmt, mem::size_of};

/// Marks the plain C message structs of the ABI.
///
/// # Safety
/// Implementors are `repr(C)` structs without padding-sensitive invariants:
/// every byte pattern is a valid value, so they can be read from any bytes.
pub unsafe trait Message: Copy + Default {
    const TYPE: u32;
    fn header_mut(&mut self) -> &mut asio_bridge_msg_header;

    fn new() -> Self {
        let mut msg = Self::default();
        *msg.header_mut() = asio_bridge_msg_header {
            magic: ASIO_BRIDGE_MAGIC,
            version: ASIO_BRIDGE_VERSION,
            type_: Self::TYPE,
            size: size_of::<Self>() as u32,
        };
        msg
    }
}

macro_rules! message {
    ($t:ty, $id:expr) => {
        // SAFETY: bindgen structs of u32 and char arrays; any bytes are valid.
        unsafe impl Message for $t {
            const TYPE: u32 = $id;
            fn header_mut(&mut self) -> &mut asio_bridge_msg_header {
                &mut self.header
            }
        }
    };
}
message!(asio_bridge_hello, ASIO_BRIDGE_MSG_HELLO);
message!(asio_bridge_welcome, ASIO_BRIDGE_MSG_WELCOME);
message!(asio_bridge_refuse, ASIO_BRIDGE_MSG_REFUSE);
message!(asio_bridge_request, ASIO_BRIDGE_MSG_REQUEST);

impl asio_bridge_request {
    pub fn with_clock(quantum: u32, rate: u32) -> Self {
        Self { quantum, rate, ..Self::new() }
    }
}

impl asio_bridge_hello {
    pub fn with_name(client_name: &str) -> Self {
        let mut msg = Self::new();
        copy_c_str(&mut msg.client_name, client_name);
        msg
    }

    /// Whether the client asked to stay unlinked (ASIO_BRIDGE_HELLO_NO_AUTOCONNECT).
    pub fn wants_autoconnect(&self) -> bool {
        self.flags & crate::ASIO_BRIDGE_HELLO_NO_AUTOCONNECT == 0
    }
}

impl asio_bridge_welcome {
    pub fn with_size(shm_size: u32) -> Self {
        Self { shm_size, ..Self::new() }
    }
}

impl asio_bridge_refuse {
    pub fn with_reason(reason: u32, holder_pid: u32, message: &str) -> Self {
        let mut msg = Self { reason, holder_pid, ..Self::new() };
        copy_c_str(&mut msg.message, message);
        msg
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageError {
    Short(usize),
    BadMagic(u32),
    /// The peer speaks another protocol version.
    Version(u32),
    UnknownType(u32),
    BadSize { type_: u32, size: usize },
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Short(n) => write!(f, "message of {n} bytes is shorter than a header"),
            Self::BadMagic(m) => write!(f, "magic {m:#010x} is not the ASIO bridge's"),
            Self::Version(v) => write!(
                f,
                "protocol version {v} is not supported (this side speaks version {ASIO_BRIDGE_VERSION})"
            ),
            Self::UnknownType(t) => write!(f, "unknown message type {t}"),
            Self::BadSize { type_, size } => {
                write!(f, "message type {type_} has the wrong size ({size} bytes)")
            }
        }
    }
}

/// What a client may send.
#[derive(Debug, Clone, Copy)]
pub enum ClientMessage {
    Hello(asio_bridge_hello),
    Request(asio_bridge_request),
}

/// What the node may send.
#[derive(Debug, Clone, Copy)]
pub enum NodeMessage {
    Welcome(asio_bridge_welcome),
    Refuse(asio_bridge_refuse),
}

fn read<T: Message>(bytes: &[u8], type_: u32) -> Result<T, MessageError> {
    if bytes.len() != size_of::<T>() {
        return Err(MessageError::BadSize { type_, size: bytes.len() });
    }
    // SAFETY: the length was checked and `Message` types accept any bytes.
    Ok(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// Checks magic and version before anything else, then type and exact size.
fn header(bytes: &[u8]) -> Result<u32, MessageError> {
    if bytes.len() < size_of::<asio_bridge_msg_header>() {
        return Err(MessageError::Short(bytes.len()));
    }
    let word = |i: usize| u32::from_ne_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap());
    if word(0) != ASIO_BRIDGE_MAGIC {
        return Err(MessageError::BadMagic(word(0)));
    }
    if word(1) != ASIO_BRIDGE_VERSION {
        return Err(MessageError::Version(word(1)));
    }
    if word(3) as usize != bytes.len() {
        return Err(MessageError::BadSize { type_: word(2), size: bytes.len() });
    }
    Ok(word(2))
}

pub fn decode_client(bytes: &[u8]) -> Result<ClientMessage, MessageError> {
    match header(bytes)? {
        ASIO_BRIDGE_MSG_HELLO => read(bytes, ASIO_BRIDGE_MSG_HELLO).map(ClientMessage::Hello),
        ASIO_BRIDGE_MSG_REQUEST => read(bytes, ASIO_BRIDGE_MSG_REQUEST).map(ClientMessage::Request),
        t => Err(MessageError::UnknownType(t)),
    }
}

pub fn decode_node(bytes: &[u8]) -> Result<NodeMessage, MessageError> {
    match header(bytes)? {
        ASIO_BRIDGE_MSG_WELCOME => read(bytes, ASIO_BRIDGE_MSG_WELCOME).map(NodeMessage::Welcome),
        ASIO_BRIDGE_MSG_REFUSE => read(bytes, ASIO_BRIDGE_MSG_REFUSE).map(NodeMessage::Refuse),
        t => Err(MessageError::UnknownType(t)),
    }
}


/// The bytes of a message, to send.
pub fn as_bytes<T: Message>(msg: &T) -> &[u8] {
    // SAFETY: `Message` types are plain C structs; reading their bytes
    // (padding included, which `new` zeroed via Default) is sound.
    unsafe { core::slice::from_raw_parts((msg as *const T).cast::<u8>(), size_of::<T>()) }
}

/// Copies `s` into a fixed C char array, truncated on a UTF-8 boundary and
/// always NUL-terminated.
pub fn copy_c_str(dst: &mut [core::ffi::c_char], s: &str) {
    let mut n = s.len().min(dst.len().saturating_sub(1));
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    for (d, b) in dst.iter_mut().zip(s.as_bytes()[..n].iter()) {
        *d = *b as core::ffi::c_char;
    }
    for d in &mut dst[n..] {
        *d = 0;
    }
}

/// Reads a fixed C char array written by the other side: stops at the first
/// NUL or at the end, and replaces what is not UTF-8.
pub fn c_str(src: &[core::ffi::c_char]) -> impl fmt::Display + '_ {
    struct Lossy<'a>(&'a [u8]);
    impl fmt::Display for Lossy<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for chunk in self.0.utf8_chunks() {
                f.write_str(chunk.valid())?;
                if !chunk.invalid().is_empty() {
                    f.write_str("\u{fffd}")?;
                }
            }
            Ok(())
        }
    }
    // SAFETY: c_char and u8 have the same size and alignment.
    let bytes = unsafe { core::slice::from_raw_parts(src.as_ptr().cast::<u8>(), src.len()) };
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Lossy(&bytes[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_hostile_input() {
        let hello = asio_bridge_hello::with_name("reaper.exe");
        let bytes = as_bytes(&hello);
        let Ok(ClientMessage::Hello(back)) = decode_client(bytes) else { panic!("not a hello") };
        assert_eq!(c_str(&back.client_name).to_string(), "reaper.exe");

        assert_eq!(decode_client(&bytes[..3]).unwrap_err(), MessageError::Short(3));
        assert!(matches!(decode_client(&bytes[..20]), Err(MessageError::BadSize { .. })));
        let mut v: Vec<u8> = bytes.to_vec();
        v[4] = 1;
        assert_eq!(decode_client(&v).unwrap_err(), MessageError::Version(1));
        v[4] = ASIO_BRIDGE_VERSION as u8;
        v[8] = 77;
        assert_eq!(decode_client(&v).unwrap_err(), MessageError::UnknownType(77));
        v[0] = 0;
        assert!(matches!(decode_client(&v), Err(MessageError::BadMagic(_))));
        // A welcome is not something a client may send.
        let w = asio_bridge_welcome::with_size(4096);
        assert_eq!(decode_client(as_bytes(&w)).unwrap_err(), MessageError::UnknownType(2));
        let r = asio_bridge_request::with_clock(128, 44100);
        let Ok(ClientMessage::Request(back)) = decode_client(as_bytes(&r)) else { panic!("not a request") };
        assert_eq!((back.quantum, back.rate), (128, 44100));
        assert!(matches!(decode_client(&as_bytes(&r)[..20]), Err(MessageError::BadSize { .. })));
    }

    #[test]
    fn c_strings_truncate_and_terminate() {
        let mut buf = [0 as core::ffi::c_char; 4];
        copy_c_str(&mut buf, "héllo");
        assert_eq!(c_str(&buf).to_string(), "h\u{e9}");
        let bad = [0xffu8 as core::ffi::c_char, b'a' as _];
        assert_eq!(c_str(&bad).to_string(), "\u{fffd}a");
    }
}
