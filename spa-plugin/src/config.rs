//! The node's properties, validated before anything is created.

use asio_bridge_abi::ASIO_BRIDGE_MAX_CHANNELS;
use std::fmt;

pub const DEFAULT_CHANNELS: u32 = 2;
/// PipeWire's default `clock.quantum-limit`.
pub const DEFAULT_QUANTUM_LIMIT: u32 = 8192;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub node_name: String,
    pub description: String,
    pub inputs: u32,
    pub outputs: u32,
    /// The largest quantum the graph can run: sizes buffers and shared memory.
    pub quantum_limit: u32,
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

impl Config {
    /// Builds the config from the factory's property lookup.
    pub fn from_props<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, ConfigError> {
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
        let description = get("node.description").map(str::to_owned).unwrap_or_else(|| {
            format!("ASIO bridge ({inputs} in, {outputs} out)")
        });
        Ok(Self { node_name, description, inputs, outputs, quantum_limit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        Config::from_props(|k| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| *v))
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!((c.node_name.as_str(), c.inputs, c.outputs, c.quantum_limit), ("asio-bridge", 2, 2, 8192));
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
