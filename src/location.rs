//! Where in a file something was written, so that every error about a manifest, a Cargo.toml
//! table or a lock file points at it.

use std::fmt;

use camino::{Utf8Path, Utf8PathBuf};

/// A file, and when known the line and column (from 1) and the key path
/// (`package.metadata.facehugger.models[1].include` in a Cargo.toml, `entry 2 (acme/tiny)` in a
/// lock file). Shown as `file:line:column: key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub path: Utf8PathBuf,
    /// The line, from 1.
    pub line: Option<u64>,
    /// The column, from 1 (counted in characters).
    pub column: Option<u64>,
    /// The key path inside the file.
    pub key: Option<String>,
}

impl Location {
    /// The whole file.
    pub fn file(path: &Utf8Path) -> Location {
        Location {
            path: path.to_owned(),
            line: None,
            column: None,
            key: None,
        }
    }

    /// A line and column of the file.
    pub fn at(path: &Utf8Path, line: u64, column: u64) -> Location {
        Location {
            line: Some(line),
            column: Some(column),
            ..Location::file(path)
        }
    }

    /// The same place, naming the key path too.
    pub fn with_key(mut self, key: impl Into<String>) -> Location {
        self.key = Some(key.into());
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_read_like_compiler_positions() {
        let file = Utf8Path::new("Cargo.toml");
        assert_eq!(Location::file(file).to_string(), "Cargo.toml");
        assert_eq!(Location::at(file, 3, 5).to_string(), "Cargo.toml:3:5");
        assert_eq!(
            Location::at(file, 3, 5).with_key("a.b[0]").to_string(),
            "Cargo.toml:3:5: a.b[0]"
        );
        let line_only = Location {
            line: Some(7),
            ..Location::file(file)
        };
        assert_eq!(line_only.to_string(), "Cargo.toml:7");
    }
}
