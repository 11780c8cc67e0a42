//! The environment, read as huggingface_hub 2.4.0 reads it. Every variable facehugger reads is
//! read here, by one method each:
//!
//! | variable | method | meaning |
//! |---|---|---|
//! | `HF_ENDPOINT` | [`Env::endpoint`] | the Hub, default `https://huggingface.co` |
//! | `HF_TOKEN`, `HUGGING_FACE_HUB_TOKEN`, `HF_TOKEN_PATH`, `HF_HUB_DISABLE_IMPLICIT_TOKEN` | [`Env::token`] | the token, first match wins |
//! | `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, `HF_HOME`, `XDG_CACHE_HOME`, `HOME` (Windows: `USERPROFILE`, else `HOMEDRIVE` + `HOMEPATH`) | [`Env::hub_cache`] | the cache folder |
//! | `HF_HUB_OFFLINE` | [`Env::offline`] | no network |
//! | `HF_HUB_DISABLE_SYMLINKS`, `HF_HUB_DISABLE_SYMLINKS_WARNING` | [`Env::disable_symlinks`], [`Env::disable_symlinks_warning`] | snapshots of files, not links |
//! | `HF_HUB_DOWNLOAD_TIMEOUT` | [`Env::download_timeout`] | longest silence on a connection |
//! | `FACEHUGGER_BACKOFF_MS` | [`Env::backoff`] | first retry delay (for tests) |
//! | `FACEHUGGER_GC_HOLD` | [`Env::gc_hold`] | a file `gc` makes once it has planned, and waits for it to go (for tests) |
//! | `CARGO_NET_OFFLINE`, `DOCS_RS` | [`Env::cargo_offline`], [`Env::docs_rs`] | build scripts |
//!
//! Values are looked up through a function, so a build script can record which it read (for
//! `cargo::rerun-if-env-changed`) and tests can pass their own.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use camino::Utf8PathBuf;

/// Looks a variable up.
type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Where environment variables come from: the process, or a function.
#[derive(Clone)]
pub struct Env {
    lookup: Arc<Lookup>,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may hold a token: never printed.
        f.write_str("Env")
    }
}

impl Default for Env {
    fn default() -> Env {
        Env::process()
    }
}

impl Env {
    /// The process's environment.
    pub fn process() -> Env {
        Env::from_fn(|name| std::env::var(name).ok())
    }

    /// An environment whose variables `lookup` gives.
    pub fn from_fn(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Env {
        Env {
            lookup: Arc::new(lookup),
        }
    }

    /// The variable's value, even if empty.
    fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    /// The variable's value, if set and not empty (the reference client treats an empty value
    /// as unset for paths and tokens).
    fn set(&self, name: &str) -> Option<String> {
        self.raw(name).filter(|value| !value.is_empty())
    }

    /// A boolean as the reference client reads one: `1`, `ON`, `YES` or `TRUE`, in any case.
    fn flag(&self, name: &str) -> bool {
        self.raw(name).is_some_and(|value| is_truthy(&value))
    }

    /// `HF_ENDPOINT` without its trailing `/`; default `https://huggingface.co`.
    pub fn endpoint(&self) -> String {
        self.set("HF_ENDPOINT")
            .unwrap_or_else(|| "https://huggingface.co".to_owned())
            .trim_end_matches('/')
            .to_owned()
    }

    /// The token: `HF_TOKEN`, else `HUGGING_FACE_HUB_TOKEN`, else the file at `HF_TOKEN_PATH`
    /// (default `$HF_HOME/token`, trimmed); none with `HF_HUB_DISABLE_IMPLICIT_TOKEN`.
    pub fn token(&self) -> Option<String> {
        if self.flag("HF_HUB_DISABLE_IMPLICIT_TOKEN") {
            return None;
        }
        if let Some(token) = self
            .set("HF_TOKEN")
            .or_else(|| self.set("HUGGING_FACE_HUB_TOKEN"))
        {
            return Some(token);
        }
        let token = std::fs::read_to_string(self.token_path(Paths::NATIVE)).ok()?;
        let token = token.trim();
        (!token.is_empty()).then(|| token.to_owned())
    }

    /// `HF_TOKEN_PATH`, default `$HF_HOME/token`, expanded.
    fn token_path(&self, paths: Paths) -> String {
        self.set("HF_TOKEN_PATH")
            .map(|path| self.expand(&path, paths))
            .unwrap_or_else(|| paths.join(&self.hf_home_in(paths), "token"))
    }

    /// `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`, expanded.
    pub fn hf_home(&self) -> String {
        self.hf_home_in(Paths::NATIVE)
    }

    fn hf_home_in(&self, paths: Paths) -> String {
        match self.set("HF_HOME") {
            Some(home) => self.expand(&home, paths),
            None => {
                let xdg = self
                    .set("XDG_CACHE_HOME")
                    .unwrap_or_else(|| paths.join("~", ".cache"));
                self.expand(&paths.join(&xdg, "huggingface"), paths)
            }
        }
    }

    /// The hub cache: `HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`;
    /// `~` and `$VAR` expanded.
    pub fn hub_cache(&self) -> Utf8PathBuf {
        Utf8PathBuf::from(self.hub_cache_in(Paths::NATIVE))
    }

    fn hub_cache_in(&self, paths: Paths) -> String {
        self.set("HF_HUB_CACHE")
            .or_else(|| self.set("HUGGINGFACE_HUB_CACHE"))
            .map(|dir| self.expand(&dir, paths))
            .unwrap_or_else(|| paths.join(&self.hf_home_in(paths), "hub"))
    }

    /// `HF_HUB_OFFLINE`: use no network.
    pub fn offline(&self) -> bool {
        self.flag("HF_HUB_OFFLINE")
    }

    /// `HF_HUB_DISABLE_SYMLINKS`: snapshots hold the files themselves, never links, as where
    /// links cannot be made (Windows without Developer Mode).
    pub fn disable_symlinks(&self) -> bool {
        self.flag("HF_HUB_DISABLE_SYMLINKS")
    }

    /// `HF_HUB_DISABLE_SYMLINKS_WARNING`: no warning when links cannot be made.
    pub fn disable_symlinks_warning(&self) -> bool {
        self.flag("HF_HUB_DISABLE_SYMLINKS_WARNING")
    }

    /// `HF_HUB_DISABLE_SHARED_BLOBS`: never link a repo blob to hf's shared Xet store.
    pub fn disable_shared_blobs(&self) -> bool {
        self.flag("HF_HUB_DISABLE_SHARED_BLOBS")
    }

    /// `HF_HUB_DOWNLOAD_TIMEOUT` (whole seconds, default 10): the longest silence while reading.
    pub fn download_timeout(&self) -> Duration {
        let seconds = self
            .raw("HF_HUB_DOWNLOAD_TIMEOUT")
            .and_then(|value| value.trim().parse::<u64>().ok())
            .unwrap_or(10);
        Duration::from_secs(seconds.max(1))
    }

    /// The first retry's delay: 1 s, as the reference client; `FACEHUGGER_BACKOFF_MS` shortens
    /// it for tests.
    pub fn backoff(&self) -> Duration {
        self.raw("FACEHUGGER_BACKOFF_MS")
            .and_then(|value| value.parse::<u64>().ok())
            .map_or(Duration::from_secs(1), Duration::from_millis)
    }

    /// `FACEHUGGER_GC_HOLD`: a file that `gc` creates once it has planned, then waits for it
    /// to be removed before it removes anything, so that tests can act in between.
    pub fn gc_hold(&self) -> Option<Utf8PathBuf> {
        self.set("FACEHUGGER_GC_HOLD").map(Utf8PathBuf::from)
    }

    /// `CARGO_NET_OFFLINE` or `HF_HUB_OFFLINE`: a build script must not use the network.
    pub fn cargo_offline(&self) -> bool {
        self.flag("CARGO_NET_OFFLINE") || self.offline()
    }

    /// `DOCS_RS`: a docs.rs build, which has no network.
    pub fn docs_rs(&self) -> bool {
        self.raw("DOCS_RS").is_some()
    }

    /// A variable cargo sets for build scripts (`CARGO_MANIFEST_DIR`, `OUT_DIR`, ...).
    pub(crate) fn cargo_var(&self, name: &str) -> Option<String> {
        self.raw(name)
    }

    /// Python's `expandvars(expanduser(path))`, as `posixpath` or `ntpath` does it.
    fn expand(&self, path: &str, paths: Paths) -> String {
        match paths {
            Paths::Posix => self.expand_posix(path),
            Paths::Windows => self.expand_windows(path),
        }
    }

    /// `posixpath`: a leading `~` becomes `$HOME`; `$NAME` and `${NAME}` are replaced when set
    /// and left as they are when not.
    fn expand_posix(&self, path: &str) -> String {
        let path = match path.strip_prefix('~') {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => match self.raw("HOME") {
                Some(home) => format!("{home}{rest}"),
                None => path.to_owned(),
            },
            _ => path.to_owned(),
        };
        let mut out = String::with_capacity(path.len());
        let mut rest = path.as_str();
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
                match braced.find('}') {
                    Some(end) => (&braced[..end], end + 2),
                    None => ("", 0),
                }
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            };
            match self.raw(name).filter(|_| !name.is_empty()) {
                Some(value) => out.push_str(&value),
                None => out.push_str(&rest[dollar..dollar + 1 + consumed]),
            }
            rest = &after[consumed..];
        }
        out.push_str(rest);
        out
    }

    /// `ntpath`: a leading `~` (then `\`, `/` or nothing) becomes `%USERPROFILE%`, else
    /// `%HOMEDRIVE%%HOMEPATH%`; then `%NAME%`, `$NAME` and `${NAME}` are replaced when set and
    /// left as they are when not, `%%` and `$$` stand for `%` and `$`, and nothing between
    /// single quotes is replaced.
    fn expand_windows(&self, path: &str) -> String {
        let path = match path.strip_prefix('~') {
            Some(rest) if rest.is_empty() || rest.starts_with(['/', '\\']) => {
                let home = self.raw("USERPROFILE").or_else(|| {
                    let home = self.raw("HOMEPATH")?;
                    Some(format!(
                        "{}{home}",
                        self.raw("HOMEDRIVE").unwrap_or_default()
                    ))
                });
                match home {
                    Some(home) => format!("{home}{rest}"),
                    None => path.to_owned(),
                }
            }
            _ => path.to_owned(),
        };
        let mut out = String::with_capacity(path.len());
        let mut rest = path.as_str();
        // Each turn takes what `rest` starts with: quoted text, a variable, or one character.
        while let Some(c) = rest.chars().next() {
            let after = &rest[c.len_utf8()..];
            let taken = match c {
                '\'' => match after.find('\'') {
                    Some(end) => {
                        out.push_str(&rest[..end + 2]);
                        end + 2
                    }
                    None => {
                        out.push_str(rest);
                        rest.len()
                    }
                },
                '%' | '$' if after.starts_with(c) => {
                    out.push(c);
                    2
                }
                '%' => match after.find('%') {
                    Some(end) => {
                        self.push_var(&mut out, &after[..end], &rest[..end + 2]);
                        end + 2
                    }
                    None => {
                        out.push_str(rest);
                        rest.len()
                    }
                },
                '$' if after.starts_with('{') => match after.find('}') {
                    Some(end) => {
                        self.push_var(&mut out, &after[1..end], &rest[..end + 2]);
                        end + 2
                    }
                    None => {
                        out.push_str(rest);
                        rest.len()
                    }
                },
                '$' => {
                    let end = after
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                        .unwrap_or(after.len());
                    self.push_var(&mut out, &after[..end], &rest[..end + 1]);
                    end + 1
                }
                _ => {
                    out.push(c);
                    c.len_utf8()
                }
            };
            rest = &rest[taken..];
        }
        out
    }

    /// Appends the variable's value, or `text` (how it was written) when it is not set.
    fn push_var(&self, out: &mut String, name: &str, text: &str) {
        match self.raw(name).filter(|_| !name.is_empty()) {
            Some(value) => out.push_str(&value),
            None => out.push_str(text),
        }
    }
}

/// How paths are written: as Python's `posixpath` or `ntpath` (Windows) write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Paths {
    Posix,
    Windows,
}

impl Paths {
    /// This platform's.
    const NATIVE: Paths = if cfg!(windows) {
        Paths::Windows
    } else {
        Paths::Posix
    };

    /// `os.path.join(base, name)`: one separator between them.
    fn join(self, base: &str, name: &str) -> String {
        let separators: &[char] = match self {
            Paths::Posix => &['/'],
            Paths::Windows => &['/', '\\'],
        };
        if base.is_empty() || base.ends_with(separators) {
            format!("{base}{name}")
        } else if self == Paths::Windows {
            format!("{base}\\{name}")
        } else {
            format!("{base}/{name}")
        }
    }
}

/// `1`, `ON`, `YES` or `TRUE`, in any case: the reference client's booleans.
fn is_truthy(value: &str) -> bool {
    matches!(
        value.to_ascii_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Env::from_fn(move |name| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        })
    }

    #[test]
    fn the_cache_location_follows_the_reference_client() {
        let root = |pairs: &[(&str, &str)]| env(pairs).hub_cache().to_string();
        assert_eq!(root(&[("HOME", "/h")]), "/h/.cache/huggingface/hub");
        assert_eq!(
            root(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")]),
            "/x/huggingface/hub"
        );
        assert_eq!(
            root(&[("HF_HOME", "/hf"), ("XDG_CACHE_HOME", "/x")]),
            "/hf/hub"
        );
        assert_eq!(
            root(&[("HF_HOME", "/hf"), ("HUGGINGFACE_HUB_CACHE", "/legacy")]),
            "/legacy"
        );
        assert_eq!(
            root(&[
                ("HOME", "/h"),
                ("HF_HUB_CACHE", "$HOME/new"),
                ("HUGGINGFACE_HUB_CACHE", "/legacy")
            ]),
            "/h/new"
        );
        assert_eq!(root(&[("HOME", "/h"), ("HF_HOME", "~/hfh")]), "/h/hfh/hub");
        assert_eq!(
            root(&[("HF_HUB_CACHE", "/a/${UNSET}/$ALSO")]),
            "/a/${UNSET}/$ALSO"
        );
    }

    #[test]
    fn on_windows_the_cache_is_found_as_ntpath_finds_it() {
        let root = |pairs: &[(&str, &str)]| env(pairs).hub_cache_in(Paths::Windows);
        let profile = ("USERPROFILE", r"C:\Users\me");
        // HOME is not what Windows Python reads for `~`.
        assert_eq!(
            root(&[profile, ("HOME", "/h")]),
            r"C:\Users\me\.cache\huggingface\hub"
        );
        assert_eq!(
            root(&[("HOMEDRIVE", "D:"), ("HOMEPATH", r"\Users\you")]),
            r"D:\Users\you\.cache\huggingface\hub"
        );
        assert_eq!(root(&[]), r"~\.cache\huggingface\hub");
        assert_eq!(root(&[profile, ("HF_HOME", "~/hf")]), r"C:\Users\me/hf\hub");
        assert_eq!(
            root(&[("XDG_CACHE_HOME", r"E:\x\")]),
            r"E:\x\huggingface\hub"
        );
        // %VAR%, $VAR and ${VAR}; unset ones and quoted text stay as written; %% and $$ escape.
        let vars = [("LOCALAPPDATA", r"C:\L"), ("A-B", "dash")];
        let hub = |value: &str| {
            let mut pairs = vars.to_vec();
            pairs.push(("HF_HUB_CACHE", value));
            root(&pairs)
        };
        assert_eq!(hub(r"%LOCALAPPDATA%\hf"), r"C:\L\hf");
        assert_eq!(hub(r"${LOCALAPPDATA}\$A-B"), r"C:\L\dash");
        assert_eq!(hub(r"%UNSET%\${UNSET}\$UNSET"), r"%UNSET%\${UNSET}\$UNSET");
        assert_eq!(
            hub(r"'%LOCALAPPDATA%'\%%\$$\50%"),
            r"'%LOCALAPPDATA%'\%\$\50%"
        );
        assert_eq!(hub("${LOCALAPPDATA"), "${LOCALAPPDATA");
        let token = env(&[profile]).token_path(Paths::Windows);
        assert_eq!(token, r"C:\Users\me\.cache\huggingface\token");
    }

    #[test]
    fn the_token_comes_from_the_reference_clients_sources() {
        let token = |pairs: &[(&str, &str)]| env(pairs).token();
        assert_eq!(
            token(&[("HF_TOKEN", "a"), ("HUGGING_FACE_HUB_TOKEN", "b")]).as_deref(),
            Some("a")
        );
        assert_eq!(
            token(&[("HF_TOKEN", ""), ("HUGGING_FACE_HUB_TOKEN", "b")]).as_deref(),
            Some("b")
        );
        assert_eq!(
            token(&[("HF_TOKEN", "a"), ("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")]),
            None
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tok");
        std::fs::write(&file, "  file-token\n").unwrap();
        assert_eq!(
            token(&[("HF_TOKEN_PATH", file.to_str().unwrap())]).as_deref(),
            Some("file-token")
        );
        let home = dir.path().to_str().unwrap();
        std::fs::write(dir.path().join("token"), "home-token").unwrap();
        assert_eq!(token(&[("HF_HOME", home)]).as_deref(), Some("home-token"));
    }

    #[test]
    fn booleans_and_numbers_read_like_python() {
        let e = env(&[
            ("HF_HUB_OFFLINE", "yes"),
            ("HF_ENDPOINT", "http://x:1/"),
            ("HF_HUB_DOWNLOAD_TIMEOUT", "0"),
            ("HF_HUB_DISABLE_SHARED_BLOBS", "ON"),
        ]);
        assert!(e.offline());
        assert!(e.disable_shared_blobs());
        assert!(e.cargo_offline());
        assert_eq!(e.endpoint(), "http://x:1");
        assert_eq!(e.download_timeout(), Duration::from_secs(1));
        let none = env(&[("HF_HUB_OFFLINE", "0"), ("CARGO_NET_OFFLINE", "true")]);
        assert!(!none.offline());
        assert!(!none.disable_shared_blobs());
        assert!(none.cargo_offline());
        assert_eq!(none.endpoint(), "https://huggingface.co");
        assert_eq!(none.download_timeout(), Duration::from_secs(10));
        assert_eq!(none.backoff(), Duration::from_secs(1));
        assert!(!none.docs_rs());
        assert!(!none.disable_symlinks());
        assert!(!none.disable_symlinks_warning());
        let links = env(&[
            ("HF_HUB_DISABLE_SYMLINKS", "On"),
            ("HF_HUB_DISABLE_SYMLINKS_WARNING", "true"),
        ]);
        assert!(links.disable_symlinks());
        assert!(links.disable_symlinks_warning());
        assert!(!env(&[("HF_HUB_DISABLE_SYMLINKS", "2")]).disable_symlinks());
        assert_eq!(format!("{none:?}"), "Env");
    }
}
