//! Text that comes from clients (their names, executable paths) is data:
//! before it reaches the daemon's log, a refusal or the node's properties,
//! control characters are escaped and the length is capped, so no client
//! can write terminal escapes or fake log lines.

/// How many characters of a client's text the node repeats.
pub const MAX_CHARS: usize = 96;

/// `text` with every control character (C0, DEL, C1, and the Unicode line
/// and paragraph separators) written as `\u{..}`, cut to `MAX_CHARS`
/// characters with a trailing `…` when longer.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_CHARS * 4));
    for (i, c) in text.chars().enumerate() {
        if i == MAX_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_length_is_capped() {
        assert_eq!(printable("Reaper.exe"), "Reaper.exe");
        assert_eq!(printable("a\nb\x1b[2Jc\rd\u{7f}e\u{85}f\u{2028}"), "a\\u{a}b\\u{1b}[2Jc\\u{d}d\\u{7f}e\\u{85}f\\u{2028}");
        let long = "x".repeat(1000);
        let cut = printable(&long);
        assert_eq!(cut.chars().count(), MAX_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert!(printable(&"\n".repeat(1000)).chars().count() <= MAX_CHARS * 8 + 1);
        assert_eq!(printable("Kontakt ü ♫"), "Kontakt ü ♫");
    }
}
