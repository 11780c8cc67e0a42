//! Repository identity: the repo id, its type, and the names the HF cache derives from them.

use std::fmt;

use serde::Serialize;

use crate::text::{MAX_SHOWN_CHARS, shown};

/// The kind of Hub repository. The Hub and its cache name each kind differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RepoType {
    /// A model repository (the default).
    Model,
    /// A dataset repository.
    Dataset,
    /// A Space.
    Space,
}

impl RepoType {
    /// Every kind, in the order error messages list them.
    pub const ALL: [RepoType; 3] = [RepoType::Model, RepoType::Dataset, RepoType::Space];

    /// The singular name used in manifests, lock files and `hf --repo-type`.
    pub fn as_str(self) -> &'static str {
        match self {
            RepoType::Model => "model",
            RepoType::Dataset => "dataset",
            RepoType::Space => "space",
        }
    }

    /// Parses the singular name (`model`, `dataset`, `space`).
    pub fn parse(name: &str) -> Option<RepoType> {
        RepoType::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The plural used in `/api/{plural}/...` URLs and in cache folder names.
    pub fn plural(self) -> &'static str {
        match self {
            RepoType::Model => "models",
            RepoType::Dataset => "datasets",
            RepoType::Space => "spaces",
        }
    }

    /// The prefix of `resolve` URLs: models have none.
    pub fn url_prefix(self) -> &'static str {
        match self {
            RepoType::Model => "",
            RepoType::Dataset => "datasets/",
            RepoType::Space => "spaces/",
        }
    }
}

impl fmt::Display for RepoType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A repo id the Hub accepts: `owner/name`, or a bare `name` for legacy repos. Checked when
/// made, so every `RepoId` is safe in a URL and as a cache folder name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RepoId(String);

impl RepoId {
    /// Checks `id` against the Hub's rules (at most one `/`; letters, digits, `-`, `_` and `.`;
    /// no `--` or `..`; at most 96 characters a part); the error says what is wrong, in words.
    pub fn new(id: &str) -> Result<RepoId, String> {
        validate_repo_id(id)?;
        Ok(RepoId(id.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for RepoId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

/// A full commit id: 40 lowercase hex digits, as the Hub writes them and the cache names
/// snapshots. Checked when made.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct CommitId(String);

impl CommitId {
    /// `text` as a commit id, if it is one (the reference client's own test: lowercase only).
    pub fn parse(text: &str) -> Option<CommitId> {
        is_lower_hex(text, 40).then(|| CommitId(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for CommitId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

/// A repo on the Hub: its type and its id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Repo {
    /// Model, dataset or space.
    pub repo_type: RepoType,
    /// The repo id.
    pub id: RepoId,
}

impl Repo {
    /// A repo of this type and id; the error says what is wrong with the id.
    pub fn new(repo_type: RepoType, id: &str) -> Result<Repo, String> {
        Ok(Repo {
            repo_type,
            id: RepoId::new(id)?,
        })
    }

    /// The cache folder name: `models--owner--name` (huggingface_hub's `repo_folder_name`).
    pub fn folder_name(&self) -> String {
        let mut name = self.repo_type.plural().to_owned();
        for part in self.id.as_str().split('/') {
            name.push_str("--");
            name.push_str(part);
        }
        name
    }
}

impl fmt::Display for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.repo_type {
            RepoType::Model => f.write_str(self.id.as_str()),
            other => write!(f, "{other} {}", self.id),
        }
    }
}

/// Checks a repo id against the Hub's rules (huggingface_hub `validate_repo_id`): at most one
/// `/`, each part made of ASCII letters, digits, `-`, `_` and `.`, not starting or ending with
/// `-` or `.`, no `--` or `..`, no `.git` suffix, at most 96 characters per part.
/// Returns what is wrong, in words.
fn validate_repo_id(id: &str) -> Result<(), String> {
    let shown_id = shown(id, MAX_SHOWN_CHARS);
    if id.is_empty() {
        return Err("the repo id is empty".into());
    }
    let parts: Vec<&str> = id.split('/').collect();
    if parts.len() == 3 && parts[1].is_empty() {
        return Err(format!("`{shown_id}` has an empty part between two `/`"));
    }
    if parts.len() > 2 {
        return Err(format!(
            "`{shown_id}` has more than one `/`: a repo id is `owner/name`"
        ));
    }
    for part in &parts {
        if part.is_empty() {
            return Err(format!("`{shown_id}` has an empty owner or name"));
        }
        if part.len() > 96 {
            return Err(format!(
                "`{shown_id}` is too long: owner and name are at most 96 characters each"
            ));
        }
        if let Some(bad) = part
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(format!(
                "`{shown_id}` contains {bad:?}: only letters, digits, `-`, `_` and `.` are allowed"
            ));
        }
        if part.starts_with(['-', '.']) || part.ends_with(['-', '.']) {
            return Err(format!(
                "`{shown_id}`: owner and name cannot start or end with `-` or `.`"
            ));
        }
    }
    if id.contains("--") || id.contains("..") {
        return Err(format!("`{shown_id}` cannot contain `--` or `..`"));
    }
    if id.ends_with(".git") {
        return Err(format!("`{shown_id}` cannot end with `.git`"));
    }
    Ok(())
}

/// Checks a ref (branch, tag, `refs/pr/N` or commit) so that it is safe as a path under
/// `refs/` in the cache and means something to the Hub. Returns what is wrong, in words.
pub fn validate_ref(reference: &str) -> Result<(), String> {
    let shown_ref = shown(reference, MAX_SHOWN_CHARS);
    if reference.is_empty() {
        return Err("the ref is empty".into());
    }
    if let Some(bad) = reference.chars().find(|c| {
        c.is_control() || c.is_whitespace() || matches!(c, '\\' | '~' | '^' | ':' | '?' | '*' | '[')
    }) {
        return Err(format!(
            "ref `{shown_ref}` contains {bad:?}, which git does not allow in a ref"
        ));
    }
    if reference
        .split('/')
        .any(|part| part.is_empty() || part.starts_with('.') || part.ends_with(".lock"))
        || reference.contains("..")
        || reference.contains("@{")
        || reference.ends_with('.')
        || reference == "@"
    {
        return Err(format!(
            "ref `{shown_ref}` is not a valid git ref name (no empty segment, none starting with `.` or ending with `.lock`, no `..` or `@{{`, no `.` at the end)"
        ));
    }
    Ok(())
}

/// A file of a commit, as the Hub's tree listing describes it and `trees/<commit>.json` stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFile {
    /// Path in the repo, `/`-separated, validated by [`validate_repo_path`].
    pub path: String,
    /// Size in bytes of the content (for LFS files, of the real content, not the pointer).
    pub size: u64,
    /// The git blob id (40 hex): the etag of a regular file.
    pub blob_id: String,
    /// For LFS files, the sha256 of the content (64 hex): their etag.
    pub lfs_sha256: Option<String>,
    /// For files stored in Xet, their Xet hash (64 hex, as the Hub lists it): kept in
    /// `trees/<commit>.json` as the reference client keeps it, and the name of the file in hf's
    /// shared blob store.
    pub xet_hash: Option<String>,
}

impl RepoFile {
    /// The etag the Hub serves for this file, which names its blob in the cache.
    pub fn etag(&self) -> &str {
        self.lfs_sha256.as_deref().unwrap_or(&self.blob_id)
    }
}

/// True for a string of `len` lowercase hex digits: what blob names and hashes must be.
pub fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// True for a Xet hash as the reference client accepts one: 64 hex digits, either case.
pub(crate) fn is_xet_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks a file path from the Hub before it becomes a path in the cache: relative, `/`-separated,
/// no empty, `.` or `..` segments, no backslash or NUL, at most 4096 bytes.
pub fn validate_repo_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("file path that is empty".into());
    }
    if path.len() > 4096 {
        return Err(format!(
            "file path of {} bytes (at most 4096 are allowed)",
            path.len()
        ));
    }
    // The path comes from a server: shown escaped and cut short.
    let shown_path = || shown(path, MAX_SHOWN_CHARS);
    if path.contains(['\\', '\0']) {
        return Err(format!(
            "file path `{}` that contains a backslash or NUL",
            shown_path()
        ));
    }
    if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == ".." || part.len() > 255)
    {
        return Err(format!(
            "file path `{}` that is absolute or has empty, `.`, `..` or overlong segments",
            shown_path()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_follow_the_reference_client() {
        let repo = |repo_type, id: &str| Repo::new(repo_type, id).unwrap();
        assert_eq!(
            repo(RepoType::Model, "acme/tiny").folder_name(),
            "models--acme--tiny"
        );
        assert_eq!(
            repo(RepoType::Dataset, "acme/data").folder_name(),
            "datasets--acme--data"
        );
        assert_eq!(repo(RepoType::Space, "gpt2").folder_name(), "spaces--gpt2");
    }

    #[test]
    fn repo_ids_follow_the_hub_rules() {
        for good in ["gpt2", "acme/tiny", "Org_1/model.v2-final", "a/b"] {
            assert_eq!(validate_repo_id(good), Ok(()), "{good}");
        }
        for bad in [
            "", "a/b/c", "/x", "x/", "-a/b", "a/b.", "a--b/c", "a/b..c", "a/b.git", "a b/c", "ü/x",
        ] {
            assert!(validate_repo_id(bad).is_err(), "{bad}");
        }
        assert!(validate_repo_id(&"x".repeat(97)).is_err());
    }

    #[test]
    fn refs_must_be_safe_cache_paths() {
        for good in ["main", "v1.0", "refs/pr/1", "feature/x", "a1b2c3d"] {
            assert_eq!(validate_ref(good), Ok(()), "{good}");
        }
        for bad in [
            "", "../x", "a/../b", "/abs", "a/", "a b", "x\ny", "a\\b", "x.lock", "a..b", ".hidden",
            "a/.b", "v1.", "a@{1}", "@",
        ] {
            assert!(validate_ref(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repo_paths_stay_inside_the_snapshot() {
        for good in [
            "config.json",
            "sub/dir/x",
            "dir with space/ü#?&+=~@:.txt",
            ".gitattributes",
        ] {
            assert_eq!(validate_repo_path(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "../x",
            "/abs",
            "a/../../x",
            "a\\..\\x",
            "a\0b",
            "./x",
            "a//b",
            "a/",
            ".",
        ] {
            assert!(validate_repo_path(bad).is_err(), "{bad:?}");
        }
        assert!(validate_repo_path(&"a".repeat(300)).is_err());
    }

    #[test]
    fn commit_ids_are_forty_lowercase_hex() {
        assert!(CommitId::parse(&"a".repeat(40)).is_some());
        assert!(CommitId::parse(&"A".repeat(40)).is_none());
        assert!(CommitId::parse("abc").is_none());
        assert!(RepoId::new("a b").is_err());
    }
}
