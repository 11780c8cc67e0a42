//! Fixture repos: the TOML spec files, their validation, and the contents and hashes they describe.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;
use sha1::{Digest, Sha1};
use sha2::Sha256;

/// Generated files larger than this go to the data directory instead of memory.
const MEMORY_LIMIT: u64 = 16 * 1024 * 1024;

/// Generated files up to this size are made and hashed anew for each load rather than kept for
/// the process: it costs less than finding them again (a spec may generate 100,000 of them).
const UNSHARED_LIMIT: u64 = 64 * 1024;

/// How the loader treats generated contents (see [`crate::Options`]).
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Where large generated files are written; `None` means `<temp dir>/test-hub-data`.
    pub data_dir: Option<PathBuf>,
    /// Size overrides for generated files, keyed by `"<repo id>/<path>"`.
    pub file_sizes: BTreeMap<String, u64>,
}

/// All fixture repos, loaded from a directory of spec files.
#[derive(Debug)]
pub struct Hub {
    repos: Vec<RepoInfo>,
    /// LFS contents by sha256, as the CDN serves them.
    blobs: HashMap<String, Content>,
}

/// One fixture repo.
#[derive(Debug)]
pub struct RepoInfo {
    /// `model`, `dataset` or `space`.
    pub repo_type: String,
    /// `owner/name`.
    pub id: String,
    /// Hidden from requests without a valid token.
    pub private: bool,
    /// Refused to requests without a valid token, with `X-Error-Code: GatedRepo`.
    pub gated: bool,
    /// Ids the repo was renamed from.
    pub old_ids: Vec<String>,
    /// Commits in spec order.
    pub commits: Vec<CommitInfo>,
    /// The spec file, for error messages.
    pub spec_file: PathBuf,
}

/// One commit of a fixture repo, with its full file set.
#[derive(Debug)]
pub struct CommitInfo {
    /// The name in the spec.
    pub name: String,
    /// 40-hex commit sha: sha1 of `"<type>/<id>/<name>"`.
    pub sha: String,
    /// Branches and tags pointing at this commit.
    pub refs: Vec<String>,
    /// Files sorted by path.
    pub files: Vec<FileInfo>,
    /// Files and directories as the tree API lists them, sorted by path.
    pub tree: Vec<TreeEntry>,
}

/// One file of a commit.
#[derive(Debug, Clone)]
pub struct FileInfo {
    /// Repo-relative path.
    pub path: String,
    /// Content size in bytes.
    pub size: u64,
    /// Git blob sha1 as the Hub lists it: of the content, or of the LFS pointer for LFS files.
    pub oid: String,
    /// For LFS files: the sha256 of the content.
    pub lfs_sha256: Option<String>,
    content: Content,
}

/// An entry of the tree API.
#[derive(Debug, Clone)]
pub struct TreeEntry {
    /// Repo-relative path.
    pub path: String,
    /// Directory entries have no file.
    pub file: Option<FileInfo>,
    /// Git-style oid (a content hash for directories too).
    pub oid: String,
}

/// Where a file's bytes live. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    Memory(Arc<[u8]>),
    Disk { path: Arc<Path>, size: u64 },
}

impl Content {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Content::Memory(bytes) => bytes.len() as u64,
            Content::Disk { size, .. } => *size,
        }
    }

    /// A reader over `start..end`.
    pub(crate) fn reader(&self, start: u64, end: u64) -> io::Result<Box<dyn Read + Send>> {
        match self {
            Content::Memory(bytes) => Ok(Box::new(SliceReader {
                bytes: bytes.clone(),
                pos: start as usize,
                end: end as usize,
            })),
            Content::Disk { path, .. } => {
                let mut file = File::open(path)?;
                io::Seek::seek(&mut file, io::SeekFrom::Start(start))?;
                // Large reads: the HTTP writer copies in small pieces, one syscall each.
                let file = BufReader::with_capacity(1 << 20, file.take(end - start));
                Ok(Box::new(file))
            }
        }
    }

    fn read_all(&self) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len() as usize);
        self.reader(0, self.len())?.read_to_end(&mut out)?;
        Ok(out)
    }
}

/// Reads a shared in-memory buffer without copying it first.
struct SliceReader {
    bytes: Arc<[u8]>,
    pos: usize,
    end: usize,
}

impl Read for SliceReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.end - self.pos);
        buf[..n].copy_from_slice(&self.bytes[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl FileInfo {
    /// True for files served through the CDN.
    pub fn is_lfs(&self) -> bool {
        self.lfs_sha256.is_some()
    }

    /// The blob name a client must use in the cache: the sha256 for LFS files, else the git blob sha1.
    pub fn etag(&self) -> &str {
        self.lfs_sha256.as_deref().unwrap_or(&self.oid)
    }

    /// The file's bytes (read from disk for large generated files).
    pub fn content(&self) -> io::Result<Vec<u8>> {
        self.content.read_all()
    }

    pub(crate) fn raw_content(&self) -> &Content {
        &self.content
    }

    /// The Xet hash the Hub lists for this file with [`Options::xet`](crate::Options::xet): for
    /// LFS files only.
    pub fn xet_hash(&self) -> Option<String> {
        self.lfs_sha256.as_deref().map(xet_hash)
    }

    /// Size of the LFS pointer text (the Hub's `pointerSize`).
    pub fn pointer_size(&self) -> Option<u64> {
        let sha = self.lfs_sha256.as_deref()?;
        Some(lfs_pointer(sha, self.size).len() as u64)
    }
}

impl RepoInfo {
    /// The commit a ref name or a full (or unique abbreviated, 7+ hex) commit sha points at.
    pub fn commit(&self, rev: &str) -> Option<&CommitInfo> {
        if let Some(commit) = self
            .commits
            .iter()
            .find(|c| c.refs.iter().any(|r| r == rev))
        {
            return Some(commit);
        }
        let is_hex = rev.len() >= 7 && rev.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_hex {
            return None;
        }
        let rev = rev.to_ascii_lowercase();
        let mut matches = self.commits.iter().filter(|c| c.sha.starts_with(&rev));
        match (matches.next(), matches.next()) {
            (Some(commit), None) => Some(commit),
            _ => None,
        }
    }

    /// The commit by its spec name.
    pub fn commit_named(&self, name: &str) -> Option<&CommitInfo> {
        self.commits.iter().find(|c| c.name == name)
    }
}

impl CommitInfo {
    /// The file at `path`.
    pub fn file(&self, path: &str) -> Option<&FileInfo> {
        let index = self
            .files
            .binary_search_by(|f| f.path.as_str().cmp(path))
            .ok()?;
        Some(&self.files[index])
    }
}

impl Hub {
    /// Loads every `*.toml` spec in `dir` with default options.
    pub fn load_dir(dir: &Path) -> Result<Hub> {
        Hub::load(dir, &LoadOptions::default())
    }

    /// Loads every `*.toml` spec in `dir`.
    pub fn load(dir: &Path, options: &LoadOptions) -> Result<Hub> {
        let mut paths = Vec::new();
        for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry
                .with_context(|| format!("reading {}", dir.display()))?
                .path();
            if path.extension().is_some_and(|e| e == "toml") {
                paths.push(path);
            }
        }
        paths.sort();
        let mut generator = Generator::new(options)?;
        let mut repos: Vec<RepoInfo> = Vec::new();
        for path in &paths {
            let repo = load_spec(path, &mut generator)
                .with_context(|| format!("invalid fixture spec {}", path.display()))?;
            for other in &repos {
                for id in std::iter::once(&repo.id).chain(&repo.old_ids) {
                    let clash = other.id == *id || other.old_ids.contains(id);
                    ensure!(
                        !(clash && other.repo_type == repo.repo_type),
                        "{}: {} id {id} is already used by {}",
                        path.display(),
                        repo.repo_type,
                        other.spec_file.display()
                    );
                }
            }
            repos.push(repo);
        }
        if let Some(key) = generator.unused_size_override() {
            bail!("file size override {key:?} names no generated fixture file");
        }
        let mut blobs = HashMap::new();
        for file in repos.iter().flat_map(|r| &r.commits).flat_map(|c| &c.files) {
            if let Some(sha) = &file.lfs_sha256 {
                blobs.insert(sha.clone(), file.content.clone());
            }
        }
        Ok(Hub { repos, blobs })
    }

    /// All repos, sorted by spec file name.
    pub fn repos(&self) -> &[RepoInfo] {
        &self.repos
    }

    /// The repo with this type and current id.
    pub fn repo(&self, repo_type: &str, id: &str) -> Option<&RepoInfo> {
        self.repos
            .iter()
            .find(|r| r.repo_type == repo_type && r.id == id)
    }

    /// The repo an old id was renamed to.
    pub fn renamed(&self, repo_type: &str, old_id: &str) -> Option<&RepoInfo> {
        self.repos
            .iter()
            .find(|r| r.repo_type == repo_type && r.old_ids.iter().any(|o| o == old_id))
    }

    pub(crate) fn blob(&self, sha256: &str) -> Option<&Content> {
        self.blobs.get(sha256)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RepoSpec {
    id: String,
    #[serde(rename = "type", default = "default_type")]
    repo_type: String,
    #[serde(default)]
    private: bool,
    #[serde(default)]
    gated: bool,
    #[serde(default)]
    old_ids: Vec<String>,
    commits: Vec<CommitSpec>,
}

fn default_type() -> String {
    "model".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitSpec {
    name: String,
    #[serde(default)]
    refs: Vec<String>,
    #[serde(default)]
    files: Vec<FileSpec>,
    #[serde(default)]
    generate: Vec<GenerateSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    path: String,
    text: Option<String>,
    size: Option<u64>,
    seed: Option<u64>,
    #[serde(default)]
    lfs: bool,
}

/// Many generated files in one table (`[[commits.generate]]`): file `i` (from 0 to `count - 1`)
/// gets the path `path` with its placeholders filled in for `i`, the seed `seed + i`, and a size
/// drawn from `size` by that seed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateSpec {
    /// A pattern: `{i}` is the file's index, `{i/N}` the index divided by `N` (folders of `N`
    /// files); `{i:06}`, `{i/1000:03}` pad with zeros to a width.
    path: String,
    count: u64,
    size: SizeSpec,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    lfs: bool,
}

/// One size for every file, or `[min, max]` (inclusive).
#[derive(Deserialize)]
#[serde(untagged)]
enum SizeSpec {
    Fixed(u64),
    Range([u64; 2]),
}

impl GenerateSpec {
    /// The file specs this table stands for.
    fn files(&self) -> Result<Vec<FileSpec>> {
        let (min, max) = match self.size {
            SizeSpec::Fixed(size) => (size, size),
            SizeSpec::Range([min, max]) => (min, max),
        };
        ensure!(min <= max, "size range [{min}, {max}] is empty");
        (0..self.count)
            .map(|i| {
                let seed = self.seed.wrapping_add(i);
                // Drawn from the seed, but not from the words that make the content.
                let size = min + mix(seed ^ 0x5eed) % (max - min).saturating_add(1);
                Ok(FileSpec {
                    path: expand_pattern(&self.path, i)?,
                    text: None,
                    size: Some(size),
                    seed: Some(seed),
                    lfs: self.lfs,
                })
            })
            .collect()
    }
}

/// `pattern` with each `{i}`, `{i/N}`, `{i:W}` or `{i/N:W}` replaced for index `i`.
fn expand_pattern(pattern: &str, i: u64) -> Result<String> {
    let bad = |why: &str| anyhow::anyhow!("path pattern {pattern:?}: {why}");
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            return Err(bad("a { is not closed"));
        };
        let field = &rest[open + 1..open + close];
        let (expr, width) = match field.split_once(':') {
            Some((expr, width)) => (expr, width.parse().map_err(|_| bad("bad width"))?),
            None => (field, 0),
        };
        let value = match expr.split_once('/') {
            None if expr == "i" => i,
            Some(("i", divisor)) => match divisor.parse::<u64>() {
                Ok(divisor) if divisor > 0 => i / divisor,
                _ => return Err(bad("expected {i/N} with N > 0")),
            },
            _ => return Err(bad(&format!("unknown placeholder {{{field}}}"))),
        };
        out.push_str(&format!("{value:0width$}"));
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn load_spec(path: &Path, generator: &mut Generator) -> Result<RepoInfo> {
    let text = fs::read_to_string(path)?;
    let spec: RepoSpec = toml::from_str(&text)?;
    ensure!(
        ["model", "dataset", "space"].contains(&spec.repo_type.as_str()),
        "type must be model, dataset or space, not {:?}",
        spec.repo_type
    );
    for id in std::iter::once(&spec.id).chain(&spec.old_ids) {
        check_repo_id(id)?;
    }
    ensure!(!spec.commits.is_empty(), "a repo needs at least one commit");

    let mut names = BTreeSet::new();
    let mut refs = BTreeSet::new();
    let mut commits = Vec::new();
    for commit in spec.commits {
        ensure!(
            names.insert(commit.name.clone()),
            "duplicate commit name {:?}",
            commit.name
        );
        for name in &commit.refs {
            check_ref(name)?;
            ensure!(refs.insert(name.clone()), "ref {name:?} is on two commits");
        }
        let sha = hex(&Sha1::digest(format!(
            "{}/{}/{}",
            spec.repo_type, spec.id, commit.name
        )));
        let mut files = Vec::new();
        for file in commit.files {
            let context = format!("commit {:?}, file {:?}", commit.name, file.path);
            files.push(load_file(&spec.id, file, generator).context(context)?);
        }
        for table in &commit.generate {
            let context = || format!("commit {:?}, generate {:?}", commit.name, table.path);
            for file in table.files().with_context(context)? {
                files.push(load_file(&spec.id, file, generator).with_context(context)?);
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        for pair in files.windows(2) {
            ensure!(
                pair[0].path != pair[1].path,
                "commit {:?} lists {:?} twice",
                commit.name,
                pair[0].path
            );
            ensure!(
                !pair[1].path.starts_with(&format!("{}/", pair[0].path)),
                "commit {:?}: {:?} is both a file and a directory",
                commit.name,
                pair[0].path
            );
        }
        let tree = build_tree(&files);
        commits.push(CommitInfo {
            name: commit.name,
            sha,
            refs: commit.refs,
            files,
            tree,
        });
    }
    Ok(RepoInfo {
        repo_type: spec.repo_type,
        id: spec.id,
        private: spec.private,
        gated: spec.gated,
        old_ids: spec.old_ids,
        commits,
        spec_file: path.to_path_buf(),
    })
}

fn check_repo_id(id: &str) -> Result<()> {
    let valid_part = |s: &str| {
        !s.is_empty()
            && !s.starts_with(['.', '-'])
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    match id.split_once('/') {
        Some((owner, name)) if valid_part(owner) && valid_part(name) => Ok(()),
        _ => bail!("invalid repo id {id:?}: expected owner/name"),
    }
}

fn check_ref(name: &str) -> Result<()> {
    let is_sha = name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit());
    ensure!(
        !name.is_empty() && !is_sha && !name.starts_with('/') && !name.ends_with('/'),
        "invalid ref name {name:?}"
    );
    Ok(())
}

fn load_file(repo_id: &str, spec: FileSpec, generator: &mut Generator) -> Result<FileInfo> {
    let path = spec.path;
    let valid_path = !path.is_empty()
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    ensure!(valid_path, "invalid file path {path:?}");
    let (content, seed_and_size) = match (spec.text, spec.size) {
        (Some(text), None) => {
            ensure!(spec.seed.is_none(), "seed only goes with size");
            (Content::Memory(text.into_bytes().into()), None)
        }
        (None, Some(size)) => {
            let size = generator.size_for(&format!("{repo_id}/{path}"), size);
            let seed = spec.seed.unwrap_or(0);
            (generator.generate(seed, size)?, Some((seed, size)))
        }
        _ => bail!("give exactly one of text or size"),
    };
    let size = content.len();
    let (oid, lfs_sha256) = if spec.lfs {
        let sha256 = generator.hash(&content, seed_and_size, HashKind::Sha256)?;
        (git_blob_sha1(&lfs_pointer(&sha256, size)), Some(sha256))
    } else {
        let oid = generator.hash(&content, seed_and_size, HashKind::BlobSha1)?;
        (oid, None)
    };
    Ok(FileInfo {
        path,
        size,
        oid,
        lfs_sha256,
        content,
    })
}

/// Lists every file and every directory, sorted by path. A directory's oid is a hash of what
/// it holds, so unchanged directories keep their oid across commits, as in git.
fn build_tree(files: &[FileInfo]) -> Vec<TreeEntry> {
    let mut dirs: BTreeMap<String, Sha1> = BTreeMap::new();
    for file in files {
        let mut dir = file.path.as_str();
        while let Some((parent, _)) = dir.rsplit_once('/') {
            dirs.entry(parent.to_string())
                .or_default()
                .update(format!("{}\0{}\n", file.path, file.oid));
            dir = parent;
        }
    }
    let mut tree: Vec<TreeEntry> = dirs
        .into_iter()
        .map(|(path, hasher)| TreeEntry {
            path,
            file: None,
            oid: hex(&hasher.finalize()),
        })
        .chain(files.iter().map(|f| TreeEntry {
            path: f.path.clone(),
            file: Some(f.clone()),
            oid: f.oid.clone(),
        }))
        .collect();
    tree.sort_by(|a, b| a.path.cmp(&b.path));
    tree
}

/// The text git-lfs commits in place of the content.
pub fn lfs_pointer(sha256: &str, size: u64) -> String {
    format!("version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n")
}

/// Git's blob object id: sha1 of `"blob <len>\0"` followed by the content.
pub fn git_blob_sha1(content: &str) -> String {
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {}\0", content.len()));
    hasher.update(content);
    hex(&hasher.finalize())
}

/// Hex sha256 of some bytes (what LFS oids and `X-Linked-Etag` carry).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The test hub's stand-in for the Xet hash of a file whose content has this sha256: 64 lowercase
/// hex, deterministic per content and different from the sha256. (The real one is a Merkle hash
/// over the content's chunks; clients without Xet only carry it along, so any such value will
/// do.)
pub fn xet_hash(sha256: &str) -> String {
    sha256_hex(format!("xet-hash:{sha256}").as_bytes())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic pseudo-random bytes (splitmix64), cheap enough for gigabytes.
pub fn generate_bytes(seed: u64, size: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(size as usize);
    let mut stream = ByteStream::new(seed, size);
    while (out.len() as u64) < size {
        let n = (size - out.len() as u64).min(CHUNK as u64) as usize;
        out.extend_from_slice(stream.next_chunk(n));
    }
    out
}

/// The stream is made in chunks of this many bytes.
const CHUNK: usize = 1 << 20;

struct ByteStream {
    state: u64,
    chunk: Vec<u8>,
}

impl ByteStream {
    /// A stream of `size` bytes: its buffer is no larger than the stream needs.
    fn new(seed: u64, size: u64) -> ByteStream {
        let len = size.min(CHUNK as u64).next_multiple_of(8) as usize;
        ByteStream {
            state: seed,
            chunk: vec![0; len],
        }
    }

    /// The next `len` bytes of the stream: a whole chunk (`CHUNK` bytes), or less for the last
    /// one, whose words past `len` are never made (a file of 200 bytes costs 25 words, not a
    /// chunk's 131,072).
    fn next_chunk(&mut self, len: usize) -> &[u8] {
        let words = len.div_ceil(8) * 8;
        for word in self.chunk[..words].chunks_exact_mut(8) {
            self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            word.copy_from_slice(&mix(self.state).to_le_bytes());
        }
        &self.chunk[..len]
    }
}

/// splitmix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Makes generated contents, sharing identical ones, and hashes them. Large ones live on disk in
/// the data directory with their hashes beside them, so a later start reuses both.
struct Generator {
    data_dir: PathBuf,
    file_sizes: BTreeMap<String, u64>,
    used_sizes: BTreeSet<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum HashKind {
    Sha256,
    BlobSha1,
}

/// A generated content is a function of (data dir, seed, size).
type GeneratedKey = (PathBuf, u64, u64);

/// Generated contents and their hashes, kept for the whole process: tests start many hubs, and
/// generating and hashing megabytes in a debug build is slow.
static GENERATED: Mutex<BTreeMap<GeneratedKey, Content>> = Mutex::new(BTreeMap::new());
static HASHES: Mutex<BTreeMap<(GeneratedKey, bool), String>> = Mutex::new(BTreeMap::new());

impl Generator {
    fn new(options: &LoadOptions) -> Result<Generator> {
        let data_dir = match &options.data_dir {
            Some(dir) => dir.clone(),
            None => std::env::temp_dir().join("test-hub-data"),
        };
        Ok(Generator {
            data_dir,
            file_sizes: options.file_sizes.clone(),
            used_sizes: BTreeSet::new(),
        })
    }

    fn size_for(&mut self, key: &str, size: u64) -> u64 {
        match self.file_sizes.get(key) {
            Some(&size) => {
                self.used_sizes.insert(key.to_string());
                size
            }
            None => size,
        }
    }

    fn unused_size_override(&self) -> Option<&str> {
        self.file_sizes
            .keys()
            .find(|k| !self.used_sizes.contains(*k))
            .map(String::as_str)
    }

    fn generate(&mut self, seed: u64, size: u64) -> Result<Content> {
        if size <= UNSHARED_LIMIT {
            return Ok(Content::Memory(generate_bytes(seed, size).into()));
        }
        // Held while generating, so concurrent loads wait for the first instead of redoing it.
        let mut generated = GENERATED.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (self.data_dir.clone(), seed, size);
        if let Some(content) = generated.get(&key) {
            return Ok(content.clone());
        }
        let content = if size <= MEMORY_LIMIT {
            Content::Memory(generate_bytes(seed, size).into())
        } else {
            let path = self.data_dir.join(format!("gen-{seed}-{size}.bin"));
            let up_to_date = fs::metadata(&path).is_ok_and(|m| m.len() == size);
            if !up_to_date {
                write_generated(&path, seed, size)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Content::Disk {
                path: path.into(),
                size,
            }
        };
        generated.insert(key, content.clone());
        Ok(content)
    }

    /// `content`'s hash; `seed_and_size` says it was generated, so the hash can be remembered.
    fn hash(
        &self,
        content: &Content,
        seed_and_size: Option<(u64, u64)>,
        kind: HashKind,
    ) -> Result<String> {
        let compute = || match kind {
            HashKind::Sha256 => self.sha256(content),
            HashKind::BlobSha1 => self.blob_sha1(content),
        };
        let Some((seed, size)) = seed_and_size.filter(|&(_, size)| size > UNSHARED_LIMIT) else {
            return compute();
        };
        let mut hashes = HASHES.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (
            (self.data_dir.clone(), seed, size),
            kind == HashKind::Sha256,
        );
        if let Some(hash) = hashes.get(&key) {
            return Ok(hash.clone());
        }
        let hash = compute()?;
        hashes.insert(key, hash.clone());
        Ok(hash)
    }

    fn sha256(&self, content: &Content) -> Result<String> {
        self.cached_hash(content, "sha256", |reader| {
            let mut hasher = Sha256::new();
            copy_into(reader, content.len(), |chunk| hasher.update(chunk))?;
            Ok(hex(&hasher.finalize()))
        })
    }

    fn blob_sha1(&self, content: &Content) -> Result<String> {
        self.cached_hash(content, "blobsha1", |reader| {
            let mut hasher = Sha1::new();
            hasher.update(format!("blob {}\0", content.len()));
            copy_into(reader, content.len(), |chunk| hasher.update(chunk))?;
            Ok(hex(&hasher.finalize()))
        })
    }

    /// Hashes a content; for files on disk the result is kept in `<file>.<kind>`.
    fn cached_hash(
        &self,
        content: &Content,
        kind: &str,
        hash: impl FnOnce(&mut dyn Read) -> io::Result<String>,
    ) -> Result<String> {
        let mut reader = content.reader(0, content.len())?;
        let Content::Disk { path, .. } = content else {
            return Ok(hash(&mut reader)?);
        };
        let cache = path.with_extension(kind);
        if let Ok(text) = fs::read_to_string(&cache) {
            return Ok(text.trim().to_string());
        }
        let mut reader = BufReader::with_capacity(1 << 20, reader);
        let value = hash(&mut reader).with_context(|| format!("reading {}", path.display()))?;
        write_atomic(&cache, value.as_bytes())
            .with_context(|| format!("writing {}", cache.display()))?;
        Ok(value)
    }
}

/// Feeds `len` bytes from `reader` to `sink`, through a buffer no larger than needed.
fn copy_into(reader: &mut dyn Read, len: u64, mut sink: impl FnMut(&[u8])) -> io::Result<()> {
    let mut buf = vec![0; len.clamp(1, 1 << 20) as usize];
    loop {
        match reader.read(&mut buf)? {
            0 => return Ok(()),
            n => sink(&buf[..n]),
        }
    }
}

fn write_generated(path: &Path, seed: u64, size: u64) -> io::Result<()> {
    fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    // A unique temporary name, then rename: concurrent test processes may generate the same file.
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let mut file = io::BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let mut stream = ByteStream::new(seed, size);
    let mut left = size;
    while left > 0 {
        let n = left.min(CHUNK as u64);
        file.write_all(stream.next_chunk(n as usize))?;
        left -= n;
    }
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    fs::rename(&tmp, path)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_blob_sha1_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(
            git_blob_sha1("hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }

    #[test]
    fn generated_bytes_are_deterministic_and_prefix_stable() {
        let long = generate_bytes(7, 3 << 20);
        assert_eq!(generate_bytes(7, 3 << 20), long);
        assert_eq!(generate_bytes(7, 1000), long[..1000]);
        assert_eq!(generate_bytes(7, 1001), long[..1001]);
        assert_ne!(generate_bytes(8, 1000), long[..1000]);
    }

    #[test]
    fn large_files_go_to_disk_and_reuse_hashes() {
        let dir = std::env::temp_dir().join(format!("test-hub-unit-{}", std::process::id()));
        let options = LoadOptions {
            data_dir: Some(dir.clone()),
            file_sizes: BTreeMap::new(),
        };
        let mut generator = Generator::new(&options).unwrap();
        let size = MEMORY_LIMIT + 3;
        let content = generator.generate(5, size).unwrap();
        assert!(matches!(content, Content::Disk { .. }));
        let sha = generator.sha256(&content).unwrap();
        assert_eq!(sha, hex(&Sha256::digest(generate_bytes(5, size))));
        assert_eq!(generator.sha256(&content).unwrap(), sha);
        let mut tail = Vec::new();
        content
            .reader(size - 10, size)
            .unwrap()
            .read_to_end(&mut tail)
            .unwrap();
        assert_eq!(tail, generate_bytes(5, size)[(size - 10) as usize..]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn generate_tables_stand_for_many_files() {
        let dir = std::env::temp_dir().join(format!("test-hub-generate-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let spec = r#"
id = "acme/rows"
type = "dataset"

[[commits]]
name = "first"
refs = ["main"]

[[commits.files]]
path = "README.md"
text = "rows\n"

[[commits.generate]]
path = "data/{i/1000:02}/row-{i:05}.json"
count = 2500
size = [100, 300]
seed = 7

[[commits.generate]]
path = "weights/part-{i}.bin"
count = 2
size = 40000
lfs = true
"#;
        fs::write(dir.join("rows.toml"), spec).unwrap();
        let hub = Hub::load_dir(&dir).unwrap();
        let commit = &hub.repo("dataset", "acme/rows").unwrap().commits[0];
        assert_eq!(commit.files.len(), 1 + 2500 + 2);

        let rows: Vec<_> = commit
            .files
            .iter()
            .filter(|f| f.path.starts_with("data/"))
            .collect();
        assert_eq!(rows.len(), 2500);
        assert_eq!(rows[0].path, "data/00/row-00000.json");
        assert_eq!(rows[1999].path, "data/01/row-01999.json");
        assert_eq!(rows[2499].path, "data/02/row-02499.json");
        assert!(rows.iter().all(|f| (100..=300).contains(&f.size)));
        let sizes: BTreeSet<u64> = rows.iter().map(|f| f.size).collect();
        assert!(sizes.len() > 150, "sizes spread over the range: {sizes:?}");
        // File i is the generated content of seed + i.
        let row = commit.file("data/01/row-01234.json").unwrap();
        assert_eq!(row.content().unwrap(), generate_bytes(7 + 1234, row.size));
        assert!(!row.is_lfs());

        let part = commit.file("weights/part-1.bin").unwrap();
        assert_eq!(part.size, 40000);
        assert_eq!(part.content().unwrap(), generate_bytes(1, 40000));
        assert!(part.is_lfs());
        // Folders are listed as for any file.
        assert!(
            commit
                .tree
                .iter()
                .any(|e| e.path == "data/02" && e.file.is_none())
        );

        // The same spec gives the same files.
        let again = Hub::load_dir(&dir).unwrap();
        let again = &again.repo("dataset", "acme/rows").unwrap().commits[0];
        let oids = |c: &CommitInfo| c.files.iter().map(|f| f.oid.clone()).collect::<Vec<_>>();
        assert_eq!(oids(again), oids(commit));

        for (table, error) in [
            (
                "path = \"x-{j}\"\ncount = 2\nsize = 1",
                "unknown placeholder {j}",
            ),
            ("path = \"x-{i/0}\"\ncount = 2\nsize = 1", "N > 0"),
            ("path = \"x-{i\"\ncount = 2\nsize = 1", "not closed"),
            ("path = \"x-{i:w}\"\ncount = 2\nsize = 1", "bad width"),
            ("path = \"x-{i}\"\ncount = 2\nsize = [5, 4]", "is empty"),
            ("path = \"x\"\ncount = 2\nsize = 1", "lists \"x\" twice"),
        ] {
            let text =
                format!("id = \"a/b\"\n[[commits]]\nname = \"c\"\n[[commits.generate]]\n{table}\n");
            fs::write(dir.join("rows.toml"), text).unwrap();
            let message = format!("{:#}", Hub::load_dir(&dir).unwrap_err());
            assert!(message.contains(error), "{table}: {message}");
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn specs_are_validated_with_the_file_name() {
        let dir = std::env::temp_dir().join(format!("test-hub-specs-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let bad = [
            ("a.toml", "id = \"no-slash\"\n[[commits]]\nname = \"c\"\n"),
            (
                "b.toml",
                "id = \"a/b\"\nbogus = 1\n[[commits]]\nname = \"c\"\n",
            ),
            (
                "c.toml",
                "id = \"a/b\"\n[[commits]]\nname = \"c\"\n[[commits.files]]\npath = \"x\"\n",
            ),
        ];
        for (name, text) in bad {
            let spec = dir.join(name);
            fs::write(&spec, text).unwrap();
            let error = format!("{:#}", Hub::load_dir(&dir).unwrap_err());
            assert!(error.contains(name), "{error}");
            fs::remove_file(spec).unwrap();
        }
        fs::remove_dir_all(dir).unwrap();
    }
}
