//! Log lines: the `reinit: ` format on stderr, and paths shown with control characters escaped,
//! so that a file name holding a newline cannot forge a line of its own.

use std::fmt;
use std::path::Path;

/// A path for a log line: lossy UTF-8, control characters as `\n`, `\t` or `\xNN`.
pub struct Shown<'a>(&'a Path);

pub fn shown(path: &Path) -> Shown<'_> {
    Shown(path)
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string_lossy();
        if !text.chars().any(char::is_control) {
            return f.write_str(&text);
        }
        for c in text.chars() {
            match c {
                '\n' => f.write_str("\\n")?,
                '\t' => f.write_str("\\t")?,
                '\r' => f.write_str("\\r")?,
                c if c.is_control() => write!(f, "\\x{:02x}", c as u32)?,
                c => write!(f, "{c}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(shown(Path::new("/etc/app.yaml")).to_string(), "/etc/app.yaml");
        let forged = Path::new("/etc/a\nreinit: error: forged\t\x1b[31m");
        assert_eq!(shown(forged).to_string(), "/etc/a\\nreinit: error: forged\\t\\x1b[31m");
    }
}
