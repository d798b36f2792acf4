//! The node's properties, validated before anything is created.

use asio_bridge_abi::ASIO_BRIDGE_MAX_CHANNELS;
use std::fmt;

pub const DEFAULT_CHANNELS: u32 = 2;
/// PipeWire's default `clock.quantum-limit`.
pub const DEFAULT_QUANTUM_LIMIT: u32 = 8192;
/// PipeWire's default `default.clock.min-quantum` and `max-quantum`.
pub const DEFAULT_MIN_QUANTUM: u32 = 32;
pub const DEFAULT_MAX_QUANTUM: u32 = 2048;
/// PipeWire's default `default.clock.allowed-rates`.
pub const DEFAULT_RATES: &[u32] = &[48000];
const MAX_RATE: u32 = 768_000;

/// When the host's output leaves the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One quantum after the host processed it: the host has a whole cycle.
    Pipelined,
    /// In the cycle the host processed it, if the host finishes within half
    /// the quantum: one quantum less round trip.
    SameCycle,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub node_name: String,
    pub description: String,
    pub inputs: u32,
    pub outputs: u32,
    /// The largest quantum the graph can run: sizes buffers and shared memory.
    pub quantum_limit: u32,
    pub mode: Mode,
    /// What a client may force: the daemon's clock limits, which PipeWire
    /// does not hand to plugins, so the node's properties repeat them.
    pub min_quantum: u32,
    pub max_quantum: u32,
    pub power_of_two: bool,
    pub rates: Vec<u32>,
    /// node.autoconnect as configured (the autoconnect script reads it):
    /// shown while no client has asked for the bridge to stay unlinked.
    pub autoconnect: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: &'static str,
    pub value: String,
    pub why: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} = \"{}\": {}", self.key, self.value, self.why)
    }
}

fn channels(key: &'static str, value: Option<&str>) -> Result<u32, ConfigError> {
    let Some(value) = value else { return Ok(DEFAULT_CHANNELS) };
    let err = |why: String| ConfigError { key, value: value.to_owned(), why };
    let n: u32 = value
        .trim()
        .parse()
        .map_err(|_| err(format!("expected a whole number from 0 to {ASIO_BRIDGE_MAX_CHANNELS}")))?;
    if n > ASIO_BRIDGE_MAX_CHANNELS {
        return Err(err(format!("at most {ASIO_BRIDGE_MAX_CHANNELS} channels per direction")));
    }
    Ok(n)
}

fn quantum(key: &'static str, value: Option<&str>, default: u32, limit: u32) -> Result<u32, ConfigError> {
    let Some(value) = value else { return Ok(default.min(limit)) };
    match value.trim().parse::<u32>() {
        Ok(n) if (1..=limit).contains(&n) => Ok(n),
        _ => Err(ConfigError { key, value: value.to_owned(), why: format!("expected a quantum from 1 to {limit} (clock.quantum-limit)") }),
    }
}

/// A rate list as PipeWire writes `clock.allowed-rates`: `[ 44100 48000 ]`,
/// commas and brackets optional.
fn rates(value: Option<&str>) -> Result<Vec<u32>, ConfigError> {
    let Some(value) = value else { return Ok(DEFAULT_RATES.to_vec()) };
    let err = |why: String| ConfigError { key: "asio.rates", value: value.to_owned(), why };
    let mut rates = Vec::new();
    for word in value.split(|c: char| c.is_whitespace() || "[],".contains(c)).filter(|w| !w.is_empty()) {
        match word.parse::<u32>() {
            Ok(r) if (8000..=MAX_RATE).contains(&r) => rates.push(r),
            _ => return Err(err(format!("'{word}' is not a sample rate from 8000 to {MAX_RATE}"))),
        }
    }
    rates.sort_unstable();
    rates.dedup();
    if rates.is_empty() || rates.len() > asio_bridge_abi::ASIO_BRIDGE_MAX_RATES as usize {
        return Err(err(format!("list 1 to {} rates, e.g. \"[ 44100 48000 96000 ]\"", asio_bridge_abi::ASIO_BRIDGE_MAX_RATES)));
    }
    Ok(rates)
}

fn boolean(key: &'static str, value: Option<&str>, default: bool) -> Result<bool, ConfigError> {
    match value.map(str::trim) {
        None => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(v) => Err(ConfigError { key, value: v.to_owned(), why: "expected true or false".into() }),
    }
}

impl Config {
    /// Builds the config from the factory's property lookup.
    /// `power_of_two_default`: whether this daemon rounds forced quanta.
    pub fn from_props<'a>(get: impl Fn(&str) -> Option<&'a str>, power_of_two_default: bool) -> Result<Self, ConfigError> {
        let node_name = get("node.name").unwrap_or(asio_bridge_abi::default_node()).to_owned();
        // The name becomes a socket file name under $XDG_RUNTIME_DIR.
        let name_ok = !node_name.is_empty()
            && node_name.len() < asio_bridge_abi::ASIO_BRIDGE_NAME_LEN as usize
            && !node_name.starts_with('.')
            && node_name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !name_ok {
            return Err(ConfigError {
                key: "node.name",
                value: node_name,
                why: "use 1-63 letters, digits, '-', '_' or '.', not starting with '.'".into(),
            });
        }
        let inputs = channels("asio.inputs", get("asio.inputs"))?;
        let outputs = channels("asio.outputs", get("asio.outputs"))?;
        if inputs + outputs == 0 {
            return Err(ConfigError {
                key: "asio.inputs",
                value: "0".into(),
                why: "asio.inputs and asio.outputs are both 0; the bridge needs at least one channel".into(),
            });
        }
        let quantum_limit = get("clock.quantum-limit")
            .and_then(|v| v.trim().parse().ok())
            .filter(|&n| n > 0 && n <= asio_bridge_abi::MAX_FRAMES)
            .unwrap_or(DEFAULT_QUANTUM_LIMIT);
        let mode = match get("asio.mode").map(str::trim) {
            None | Some("pipelined") => Mode::Pipelined,
            Some("same-cycle") => Mode::SameCycle,
            Some(v) => {
                return Err(ConfigError { key: "asio.mode", value: v.to_owned(), why: "expected pipelined or same-cycle".into() })
            }
        };
        let min_quantum = quantum("asio.min-quantum", get("asio.min-quantum"), DEFAULT_MIN_QUANTUM, quantum_limit)?;
        let max_quantum = quantum("asio.max-quantum", get("asio.max-quantum"), DEFAULT_MAX_QUANTUM, quantum_limit)?;
        if min_quantum > max_quantum {
            return Err(ConfigError {
                key: "asio.min-quantum",
                value: min_quantum.to_string(),
                why: format!("larger than asio.max-quantum ({max_quantum})"),
            });
        }
        let power_of_two = boolean("asio.power-of-two-quantum", get("asio.power-of-two-quantum"), power_of_two_default)?;
        let rates = rates(get("asio.rates"))?;
        let description = get("node.description").map(str::to_owned).unwrap_or_else(|| {
            format!("ASIO bridge ({inputs} in, {outputs} out)")
        });
        let autoconnect = get("node.autoconnect").unwrap_or("true").to_owned();
        Ok(Self { node_name, description, inputs, outputs, quantum_limit, mode, min_quantum, max_quantum, power_of_two, rates, autoconnect })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        Config::from_props(|k| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| *v), true)
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!((c.node_name.as_str(), c.inputs, c.outputs, c.quantum_limit), ("asio-bridge", 2, 2, 8192));
        assert_eq!((c.mode, c.min_quantum, c.max_quantum, c.power_of_two, c.rates.as_slice()), (Mode::Pipelined, 32, 2048, true, &[48000][..]));
    }

    #[test]
    fn clock_limits() {
        let c = parse(&[("asio.rates", "[ 96000, 44100 48000 ]"), ("asio.min-quantum", "16"), ("asio.mode", "same-cycle")]).unwrap();
        assert_eq!((c.rates.as_slice(), c.min_quantum, c.mode), (&[44100, 48000, 96000][..], 16, Mode::SameCycle));
        assert_eq!(parse(&[("clock.quantum-limit", "1024")]).unwrap().max_quantum, 1024);
        for (key, value) in [
            ("asio.rates", "[]"),
            ("asio.rates", "48k"),
            ("asio.rates", "100"),
            ("asio.min-quantum", "0"),
            ("asio.max-quantum", "9000"),
            ("asio.min-quantum", "4096"),
            ("asio.mode", "fast"),
            ("asio.power-of-two-quantum", "maybe"),
        ] {
            assert_eq!(parse(&[(key, value)]).unwrap_err().key, key, "{key}={value}");
        }
    }

    #[test]
    fn bad_values_name_key_value_and_reason() {
        for (key, value) in [("asio.inputs", "65"), ("asio.inputs", "-1"), ("asio.outputs", "two"), ("asio.inputs", "")] {
            let e = parse(&[(key, value)]).unwrap_err();
            assert_eq!((e.key, e.value.as_str()), (key, value));
            assert!(e.to_string().starts_with(&format!("invalid {key} = \"{value}\": ")), "{e}");
        }
        assert!(parse(&[("asio.inputs", "0"), ("asio.outputs", "0")]).is_err());
        for name in ["../x", ".hidden", "a b", ""] {
            assert_eq!(parse(&[("node.name", name)]).unwrap_err().key, "node.name");
        }
        assert_eq!(parse(&[("asio.inputs", "64"), ("clock.quantum-limit", "1024")]).unwrap().quantum_limit, 1024);
    }
}
