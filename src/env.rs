//! The environment, read as huggingface_hub 2.4.0 reads it. Every variable facehugger reads is
//! read here, by one method each:
//!
//! | variable | method | meaning |
//! |---|---|---|
//! | `HF_ENDPOINT` | [`Env::endpoint`] | the Hub, default `https://huggingface.co` |
//! | `HF_TOKEN`, `HUGGING_FACE_HUB_TOKEN`, `HF_TOKEN_PATH`, `HF_HUB_DISABLE_IMPLICIT_TOKEN` | [`Env::token`] | the token, first match wins |
//! | `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, `HF_HOME`, `XDG_CACHE_HOME`, `HOME` | [`Env::hub_cache`] | the cache folder |
//! | `HF_HUB_OFFLINE` | [`Env::offline`] | no network |
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
        let path = self
            .set("HF_TOKEN_PATH")
            .map(|path| self.expand(&path))
            .unwrap_or_else(|| format!("{}/token", self.hf_home()));
        let token = std::fs::read_to_string(path).ok()?;
        let token = token.trim();
        (!token.is_empty()).then(|| token.to_owned())
    }

    /// `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`, expanded.
    pub fn hf_home(&self) -> String {
        match self.set("HF_HOME") {
            Some(home) => self.expand(&home),
            None => {
                let xdg = self
                    .set("XDG_CACHE_HOME")
                    .unwrap_or_else(|| "~/.cache".to_owned());
                self.expand(&format!("{xdg}/huggingface"))
            }
        }
    }

    /// The hub cache: `HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`;
    /// `~` and `$VAR` expanded.
    pub fn hub_cache(&self) -> Utf8PathBuf {
        let root = self
            .set("HF_HUB_CACHE")
            .or_else(|| self.set("HUGGINGFACE_HUB_CACHE"))
            .map(|dir| self.expand(&dir))
            .unwrap_or_else(|| format!("{}/hub", self.hf_home()));
        Utf8PathBuf::from(root)
    }

    /// `HF_HUB_OFFLINE`: use no network.
    pub fn offline(&self) -> bool {
        self.flag("HF_HUB_OFFLINE")
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

    /// Python's `expandvars(expanduser(path))`: a leading `~` becomes `$HOME`; `$NAME` and
    /// `${NAME}` are replaced when set and left as they are when not.
    pub(crate) fn expand(&self, path: &str) -> String {
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
        assert_eq!(format!("{none:?}"), "Env");
    }
}
