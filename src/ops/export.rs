//! `facehugger export DIR`: each model's selected files at its locked revision, as plain files in
//! `DIR/<name>` (never links into the cache: `COPY` in a Dockerfile, `tar` and tools that refuse
//! links all work), made by a reflink, a hard link or a copy of the cache's blob.
//!
//! Each folder carries the reference client's `--local-dir` metadata
//! (`.cache/huggingface/download/<path>.metadata`, the tree cache `trees/<commit>.json`,
//! `.gitignore`, `CACHEDIR.TAG`), so that `hf download REPO --revision <commit> --local-dir
//! DIR/<name>` finds every file up to date and downloads nothing. A record of what export wrote
//! (`.cache/huggingface/facehugger-export.json`) lets the next run update only what changed and
//! remove the files it wrote that are no longer selected, and never anything else.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use super::Options;
use super::status::selected_files;
use crate::cache::Cache;
use crate::error::Error;
use crate::files::{IoError, unique_sibling, write_atomically, write_if_changed};
use crate::hash::Verifier;
use crate::manifest::Model;
use crate::platform::{mode_of, remove_file, rename, set_path_mode};
use crate::repo::{CommitId, Repo, RepoFile, validate_repo_path};
use crate::sync::LockMode;

/// The record of what export wrote in a model's folder, under `.cache/huggingface/`.
const RECORD: &str = "facehugger-export.json";

/// The buffer of a copy.
const COPY_BUFFER: usize = 1024 * 1024;
/// What `.cache/huggingface/` holds for the reference client, as it writes them.
const GITIGNORE: &str = "*";
const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by huggingface_hub.\n# For information about cache directory tags, see:\n#\thttps://bford.info/cachedir/\n";

/// How an exported file is made from the cache's blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkMode {
    /// A reflink where the file system can make one (btrfs, XFS, APFS...), else a copy.
    #[default]
    Auto,
    /// A reflink (copy-on-write clone): no extra disk until either file changes; an error
    /// where the file system cannot make one.
    Reflink,
    /// A hard link to the blob: no extra disk. The file is made read-only: writing to it would
    /// change the cache's blob, which every other user of the cache reads.
    Hard,
    /// A plain copy.
    Copy,
}

impl LinkMode {
    /// `auto`, `reflink`, `hard` or `copy`.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkMode::Auto => "auto",
            LinkMode::Reflink => "reflink",
            LinkMode::Hard => "hard",
            LinkMode::Copy => "copy",
        }
    }

    /// Whether a file made as `made` is what this mode asks for.
    fn accepts(self, made: LinkMode) -> bool {
        match self {
            LinkMode::Auto => matches!(made, LinkMode::Reflink | LinkMode::Copy),
            wanted => wanted == made,
        }
    }
}

/// What `export` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// The folder that gets one subfolder per model.
    pub dir: Utf8PathBuf,
    /// How files are made.
    pub link: LinkMode,
}

/// What `export` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// The export folder.
    pub dir: Utf8PathBuf,
    /// Each exported model.
    pub models: Vec<ExportedModel>,
    /// Folders of models the manifest no longer declares, from which export removed its files.
    pub retired: Vec<ExportedModel>,
}

impl ExportReport {
    /// Bytes written to disk, in all: copies only (reflinks and hard links share the cache's).
    pub fn bytes_written(&self) -> u64 {
        self.models.iter().map(|model| model.bytes_written).sum()
    }
}

/// What `export` did for one model's folder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExportedModel {
    /// `acme/tiny@main` (for a retired folder, the repo it held).
    pub model: String,
    /// The revision exported.
    pub revision: Option<CommitId>,
    /// `DIR/<name>`.
    pub folder: Utf8PathBuf,
    /// Files written (new or changed), by how they were made.
    pub reflinked: usize,
    /// Files made as hard links.
    pub hard_linked: usize,
    /// Files copied.
    pub copied: usize,
    /// Files already up to date.
    pub unchanged: usize,
    /// Files export had written before that are no longer selected, removed.
    pub removed: usize,
    /// Bytes written: those of copied files.
    pub bytes_written: u64,
    /// Bytes of files made as reflinks or hard links, sharing the cache's disk blocks.
    pub bytes_shared: u64,
}

/// The record in a model's folder: what export wrote there, to tell it from everything else.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Record {
    repo_id: String,
    repo_type: String,
    revision: String,
    /// The manifest whose export this is: several projects may export into one folder, and
    /// each retires only its own models' folders.
    #[serde(default)]
    manifest: Option<Utf8PathBuf>,
    files: BTreeMap<String, RecordedFile>,
}

/// One file export wrote, as it left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RecordedFile {
    etag: String,
    size: u64,
    /// Modification time in nanoseconds since the epoch: a file changed since is written again.
    mtime_ns: u64,
    link: LinkMode,
}

/// One model to export, checked before anything is written.
struct Job<'a> {
    model: &'a Model,
    /// The manifest, as [`Record::manifest`] names it.
    manifest: &'a Utf8Path,
    commit: CommitId,
    files: Vec<Arc<RepoFile>>,
    folder: Utf8PathBuf,
    record: Record,
}

/// Exports every (selected) model of the manifest at its locked revision into `DIR/<name>`.
/// Nothing is written unless every file is in the cache and no file in the way was put there by
/// someone else.
pub fn export(options: &Options, export: &ExportOptions) -> Result<ExportReport, Error> {
    let settings = options.find(LockMode::Frozen)?;
    let lock = settings.lock.as_ref().ok_or_else(|| {
        Error::Other(format!(
            "no lock file `{}`: run `facehugger sync` first (export writes the locked revisions)",
            settings.lock_path
        ))
    })?;
    let cache = &settings.cache;
    let manifest = settings
        .manifest
        .path
        .canonicalize_utf8()
        .unwrap_or_else(|_| settings.manifest.path.clone());
    let mut jobs = Vec::new();
    let mut missing_entries = Vec::new();
    let mut names: HashSet<String> = HashSet::new();
    for (index, model) in settings.manifest.models.iter().enumerate() {
        let name = folder_name(model);
        if !names.insert(name.clone()) {
            return Err(Error::Usage(format!(
                "{} and another model would both export to `{}`: give one of them a `name` in `{}`",
                model.name(),
                export.dir.join(&name),
                settings.manifest.path
            )));
        }
        let selected = settings
            .selection
            .as_ref()
            .is_none_or(|selection| selection.contains(&index));
        if !selected {
            continue;
        }
        let Some(entry) = lock.find(&model.repo, &model.reference) else {
            missing_entries.push(model.name());
            continue;
        };
        let commit = entry.revision.clone();
        let files = selected_files(&settings, model, &commit)?.ok_or_else(|| {
            Error::Other(format!(
                "{}: the cache has no file list for {commit}: run `facehugger sync --frozen` first",
                model.name()
            ))
        })?;
        for file in &files {
            validate_repo_path(&file.path).map_err(|why| {
                Error::Other(format!(
                    "{}: the cached file list has a {why}",
                    model.name()
                ))
            })?;
        }
        let folder = export.dir.join(&name);
        let record = read_record(&folder, &model.repo);
        jobs.push(Job {
            model,
            manifest: &manifest,
            commit,
            files,
            folder,
            record,
        });
    }
    if !missing_entries.is_empty() {
        return Err(Error::LockIncomplete {
            path: settings.lock_path.clone(),
            missing: missing_entries,
        });
    }
    check(cache, &jobs)?;
    let mut linker = Linker {
        mode: export.link,
        reflinks_refused: false,
    };
    let mut report = ExportReport {
        dir: export.dir.clone(),
        models: Vec::new(),
        retired: Vec::new(),
    };
    for job in &jobs {
        report.models.push(
            export_model(cache, job, &mut linker).map_err(|e| e.for_model(job.model.name()))?,
        );
    }
    report.retired = retire_folders(&export.dir, &names, &manifest)?;
    Ok(report)
}

/// `DIR/<name>`: the manifest's `name`, else the repo id with `/` turned into `--`.
fn folder_name(model: &Model) -> String {
    match &model.name {
        Some(name) => name.clone(),
        None => model.repo.id.as_str().replace('/', "--"),
    }
}

/// Fails, before anything is written, if a blob is missing from the cache or a file in the way
/// was not written by export and does not hold the right bytes.
fn check(cache: &Cache, jobs: &[Job<'_>]) -> Result<(), Error> {
    let mut missing = Vec::new();
    let mut in_the_way = Vec::new();
    for job in jobs {
        for file in &job.files {
            if content_source(cache, &job.model.repo, &job.commit, file).is_none() {
                missing.push(format!("{}: {}", job.model.name(), file.path));
                continue;
            }
            let dest = job.folder.join(&file.path);
            let ours = job.record.files.contains_key(&file.path);
            if !ours && fs::symlink_metadata(&dest).is_ok() && !holds(&dest, file)? {
                in_the_way.push(dest.to_string());
            }
        }
    }
    if !missing.is_empty() {
        return Err(Error::Other(format!(
            "the cache is missing {} of the locked files: run `facehugger sync --frozen` first:\n{}",
            missing.len(),
            missing.join("\n")
        )));
    }
    if !in_the_way.is_empty() {
        return Err(Error::Other(format!(
            "export would replace files it did not write; move them away first:\n{}",
            in_the_way.join("\n")
        )));
    }
    Ok(())
}

/// The file holding a file's bytes: its blob (`blobs/<etag>` itself, or the shared Xet store's
/// payload it links to), else, in a cache without links, the file in the snapshot if it has
/// the listed size. Any other link is not followed (it could lead anywhere).
fn content_source(
    cache: &Cache,
    repo: &Repo,
    commit: &CommitId,
    file: &RepoFile,
) -> Option<Utf8PathBuf> {
    let blob = cache.blob_path(repo, file.etag());
    let source = match fs::symlink_metadata(&blob) {
        Ok(meta) if meta.is_symlink() => {
            let store = cache.store();
            store.payload_path(&store.linked_hash(&blob)?)?
        }
        Ok(_) => blob,
        Err(_) => {
            let copy = cache.pointer_path(repo, commit, &file.path);
            return fs::symlink_metadata(&copy)
                .is_ok_and(|meta| meta.is_file() && meta.len() == file.size)
                .then_some(copy);
        }
    };
    fs::symlink_metadata(&source)
        .ok()
        .filter(|meta| meta.is_file())
        .map(|_| source)
}

/// True if `path` is a regular file holding exactly the file's bytes (hashed to its etag).
fn holds(path: &Utf8Path, file: &RepoFile) -> Result<bool, Error> {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(false);
    };
    if !meta.is_file() || meta.len() != file.size {
        return Ok(false);
    }
    let mut reader = File::open(path).map_err(|err| Error::io("read", path, err))?;
    let mut verifier = Verifier::new(file);
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = reader
            .read(&mut buffer)
            .map_err(|err| Error::io("read", path, err))?;
        if read == 0 {
            break;
        }
        verifier.update(&buffer[..read]);
    }
    Ok(verifier.check(file, meta.len()).is_ok())
}

/// Exports one model: writes what changed, removes what is no longer selected, then the
/// metadata and the record.
fn export_model(cache: &Cache, job: &Job<'_>, linker: &mut Linker) -> Result<ExportedModel, Error> {
    let hf_dir = job.folder.join(".cache/huggingface");
    let mut done = ExportedModel {
        model: job.model.name(),
        revision: Some(job.commit.clone()),
        folder: job.folder.clone(),
        ..ExportedModel::default()
    };
    let mut record = Record {
        repo_id: job.model.repo.id.to_string(),
        repo_type: job.model.repo.repo_type.as_str().to_owned(),
        revision: job.commit.to_string(),
        manifest: Some(job.manifest.to_owned()),
        files: BTreeMap::new(),
    };
    for file in &job.files {
        let dest = job.folder.join(&file.path);
        let known = job.record.files.get(&file.path);
        match known {
            Some(known) if is_current(&dest, known, file, linker.mode) => {
                done.unchanged += 1;
                record.files.insert(file.path.clone(), known.clone());
                write_metadata(&hf_dir, &file.path, &job.commit, file.etag(), false)?;
            }
            // Not ours, and `check` found it holds the right bytes: leave it, not ours to remove.
            None if fs::symlink_metadata(&dest).is_ok() => {
                done.unchanged += 1;
                write_metadata(&hf_dir, &file.path, &job.commit, file.etag(), false)?;
            }
            _ => {
                let source =
                    content_source(cache, &job.model.repo, &job.commit, file).ok_or_else(|| {
                        let blob = cache.blob_path(&job.model.repo, file.etag());
                        Error::Other(format!(
                            "`{blob}` went away: run `facehugger sync --frozen`"
                        ))
                    })?;
                let made = linker.make(&source, &dest)?;
                match made {
                    LinkMode::Reflink => done.reflinked += 1,
                    LinkMode::Hard => done.hard_linked += 1,
                    _ => done.copied += 1,
                }
                if made == LinkMode::Copy {
                    done.bytes_written += file.size;
                } else {
                    done.bytes_shared += file.size;
                }
                record.files.insert(
                    file.path.clone(),
                    RecordedFile {
                        etag: file.etag().to_owned(),
                        size: file.size,
                        mtime_ns: mtime_ns(&dest)?,
                        link: made,
                    },
                );
                // Written now: the metadata must be at least as recent as the file.
                write_metadata(&hf_dir, &file.path, &job.commit, file.etag(), true)?;
            }
        }
    }
    for path in job.record.files.keys() {
        if !record.files.contains_key(path) && job.files.iter().all(|file| &file.path != path) {
            remove_exported(&job.folder, path)?;
            done.removed += 1;
        }
    }
    if !job.record.revision.is_empty() && job.record.revision != record.revision {
        let old = hf_dir
            .join("trees")
            .join(format!("{}.json", job.record.revision));
        let _ = remove_file(old);
    }
    let tree = cache.tree_path(&job.model.repo, &job.commit);
    let tree_bytes = fs::read(&tree).map_err(|err| Error::io("read", &tree, err))?;
    let tree_copy = hf_dir.join("trees").join(format!("{}.json", job.commit));
    if fs::read(&tree_copy).ok().as_deref() != Some(tree_bytes.as_slice()) {
        write_atomically(&tree_copy, &tree_bytes, 0o644)?;
    }
    for (name, text) in [(".gitignore", GITIGNORE), ("CACHEDIR.TAG", CACHEDIR_TAG)] {
        let path = hf_dir.join(name);
        if !path.exists() {
            write_atomically(&path, text.as_bytes(), 0o644)?;
        }
    }
    let mut text = serde_json::to_string_pretty(&record).unwrap_or_default();
    text.push('\n');
    write_if_changed(&hf_dir.join(RECORD), &text)?;
    Ok(done)
}

/// True if the file export wrote is still there as it left it, for the same blob, made the way
/// `link` asks.
fn is_current(dest: &Utf8Path, known: &RecordedFile, file: &RepoFile, link: LinkMode) -> bool {
    known.etag == file.etag()
        && link.accepts(known.link)
        && fs::symlink_metadata(dest).is_ok_and(|meta| meta.is_file() && meta.len() == known.size)
        && mtime_ns(dest).is_ok_and(|mtime| mtime == known.mtime_ns)
}

/// Makes exported files the way `--link` says.
struct Linker {
    mode: LinkMode,
    /// With `auto`: the file system refused a reflink, so the next files are copied at once.
    reflinks_refused: bool,
}

impl Linker {
    /// Makes `dest` from the blob at `source`; returns how it was made.
    fn make(&mut self, source: &Utf8Path, dest: &Utf8Path) -> Result<LinkMode, Error> {
        let mode = match self.mode {
            LinkMode::Auto if self.reflinks_refused => LinkMode::Copy,
            mode => mode,
        };
        let made = materialize(source, dest, mode)?;
        if self.mode == LinkMode::Auto && made == LinkMode::Copy {
            self.reflinks_refused = true;
        }
        Ok(made)
    }
}

/// Makes `dest` from the blob at `source`, under a temporary name then renamed into place, so
/// that a reader never sees half a file. Returns how it was made.
fn materialize(source: &Utf8Path, dest: &Utf8Path, link: LinkMode) -> Result<LinkMode, Error> {
    let parent = dest.parent().unwrap_or(Utf8Path::new("."));
    fs::create_dir_all(parent).map_err(|err| Error::io("create the folder", parent, err))?;
    let temp = unique_sibling(dest, "tmp");
    let made = match link {
        LinkMode::Hard => hard_link(source, &temp).map(|()| LinkMode::Hard),
        LinkMode::Reflink => reflink(source, &temp).map(|()| LinkMode::Reflink),
        LinkMode::Auto => match reflink(source, &temp) {
            Ok(()) => Ok(LinkMode::Reflink),
            Err(_) => copy(source, &temp).map(|()| LinkMode::Copy),
        },
        LinkMode::Copy => copy(source, &temp).map(|()| LinkMode::Copy),
    };
    let made = made.inspect_err(|_| {
        let _ = remove_file(&temp);
    })?;
    rename(&temp, dest).map_err(|err| {
        let _ = remove_file(&temp);
        Error::io("write", dest, err)
    })?;
    Ok(made)
}

/// Copies the bytes themselves. Not `fs::copy`: on Linux it asks the kernel to
/// `copy_file_range`, which btrfs and XFS answer with a reflink, and `--link copy` promises
/// (and its summary counts) bytes written.
fn copy(source: &Utf8Path, temp: &Utf8Path) -> Result<(), Error> {
    let copied = (|| {
        let mut from = File::open(source)?;
        let mut to = File::create(temp)?;
        // Sized by the file (plus one byte, so that one read finds its end): most are small.
        let size = from.metadata()?.len();
        let mut buffer = vec![
            0;
            usize::try_from(size + 1)
                .unwrap_or(COPY_BUFFER)
                .min(COPY_BUFFER)
        ];
        loop {
            let read = match from.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            to.write_all(&buffer[..read])?;
        }
        to.flush()
    })();
    copied.map_err(|err| Error::io("copy the blob to", temp, err))?;
    // A copy is the user's file: writable, whatever the blob's mode (shared payloads are 0400).
    set_mode(temp, 0o644)
}

fn reflink(source: &Utf8Path, temp: &Utf8Path) -> Result<(), Error> {
    reflink_copy::reflink(source, temp).map_err(|err| {
        Error::Io(IoError::new(
            "make a reflink (the file system must support them, as btrfs, XFS and APFS do; --link auto copies instead)",
            temp,
            err,
        ))
    })?;
    set_mode(temp, 0o644)
}

fn hard_link(source: &Utf8Path, temp: &Utf8Path) -> Result<(), Error> {
    fs::hard_link(source, temp).map_err(|err| {
        let action = if err.kind() == io::ErrorKind::CrossesDevices {
            "hard-link the blob (the export folder must be on the cache's file system; --link copy works anywhere)"
        } else {
            "hard-link the blob"
        };
        Error::Io(IoError::new(action, temp, err))
    })?;
    // The file is the cache's blob: read-only, so that editing it cannot corrupt the cache.
    // Only the write bits go: a private blob (0400 in the shared store) stays private.
    let meta = fs::metadata(temp).map_err(|err| Error::io("read", temp, err))?;
    set_mode(temp, mode_of(&meta) & !0o222)
}

fn set_mode(path: &Utf8Path, mode: u32) -> Result<(), Error> {
    set_path_mode(path, mode).map_err(|err| Error::io("set the permissions of", path, err))
}

fn mtime_ns(path: &Utf8Path) -> Result<u64, Error> {
    let modified = fs::symlink_metadata(path)
        .and_then(|meta| meta.modified())
        .map_err(|err| Error::io("read", path, err))?;
    let since = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
    Ok(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

/// Writes `.cache/huggingface/download/<path>.metadata` as the reference client does:
/// `<commit>\n<etag>\n<unix time>\n`. The time must not be before the file's modification
/// time (less a second), or the reference client ignores the metadata (and downloads the file
/// again): so a file just written gets new metadata (`fresh`), even for the same commit and etag.
fn write_metadata(
    hf_dir: &Utf8Path,
    path: &str,
    commit: &CommitId,
    etag: &str,
    fresh: bool,
) -> Result<(), Error> {
    let metadata = hf_dir.join("download").join(format!("{path}.metadata"));
    if !fresh && let Ok(text) = fs::read_to_string(&metadata) {
        let mut lines = text.lines();
        if lines.next() == Some(commit.as_str()) && lines.next() == Some(etag) {
            return Ok(());
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let text = format!("{commit}\n{etag}\n{now:.6}\n");
    write_replacing(&metadata, text.as_bytes())
}

/// Writes a small file under a temporary name and renames it into place, without flushing it
/// to the disk first: a metadata file lost in a power cut only costs the reference client a
/// re-hash, and a flush per exported file costs more than the files.
fn write_replacing(path: &Utf8Path, contents: &[u8]) -> Result<(), Error> {
    let parent = path.parent().unwrap_or(Utf8Path::new("."));
    fs::create_dir_all(parent).map_err(|err| Error::io("create the folder", parent, err))?;
    let temp = unique_sibling(path, "tmp");
    fs::write(&temp, contents)
        .and_then(|()| rename(&temp, path))
        .map_err(|err| {
            let _ = remove_file(&temp);
            Error::io("write", path, err)
        })
}

/// Removes a file export wrote and no longer wants (if it is still a plain file), its metadata,
/// and the folders left empty, up to the model's folder.
fn remove_exported(folder: &Utf8Path, path: &str) -> Result<(), Error> {
    let dest = folder.join(path);
    let metadata = folder
        .join(".cache/huggingface/download")
        .join(format!("{path}.metadata"));
    for file in [&dest, &metadata] {
        if fs::symlink_metadata(file).is_ok_and(|meta| meta.is_file()) {
            remove_file(file).map_err(|err| Error::io("remove", file, err))?;
        }
        for parent in file.ancestors().skip(1) {
            if parent == folder || !parent.starts_with(folder) || fs::remove_dir(parent).is_err() {
                break;
            }
        }
    }
    Ok(())
}

/// The record in a model's folder, if it is there, reads, and is of this repo.
fn read_record(folder: &Utf8Path, repo: &Repo) -> Record {
    let path = folder.join(".cache/huggingface").join(RECORD);
    fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<Record>(&text).ok())
        .filter(|record| {
            record.repo_id == repo.id.as_str() && record.repo_type == repo.repo_type.as_str()
        })
        .unwrap_or_default()
}

/// Removes what export wrote in the folders of `dir` that no model of the manifest exports to
/// any more (a model taken out of the manifest); files it did not write stay, and so do the
/// folders another manifest exported there.
fn retire_folders(
    dir: &Utf8Path,
    current: &HashSet<String>,
    manifest: &Utf8Path,
) -> Result<Vec<ExportedModel>, Error> {
    let mut retired = Vec::new();
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(retired),
        Err(err) => return Err(Error::io("read", dir, err)),
    };
    let mut names: Vec<String> = listing
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| !current.contains(name))
        .collect();
    names.sort();
    for name in names {
        let folder = dir.join(&name);
        let hf_dir = folder.join(".cache/huggingface");
        let record_path = hf_dir.join(RECORD);
        let Some(record) = fs::read_to_string(&record_path)
            .ok()
            .and_then(|text| serde_json::from_str::<Record>(&text).ok())
            .filter(|record| record.manifest.as_deref() == Some(manifest))
        else {
            continue;
        };
        let mut done = ExportedModel {
            model: record.repo_id.clone(),
            revision: CommitId::parse(&record.revision),
            folder: folder.clone(),
            ..ExportedModel::default()
        };
        for path in record.files.keys() {
            if validate_repo_path(path).is_ok() {
                remove_exported(&folder, path)?;
                done.removed += 1;
            }
        }
        let tree = hf_dir
            .join("trees")
            .join(format!("{}.json", record.revision));
        for file in [&tree, &record_path] {
            let _ = remove_file(file);
        }
        // What is left of `.cache/huggingface` is the reference client's, unless only the two
        // files every local dir gets remain.
        let left: Vec<String> = fs::read_dir(&hf_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect();
        if left.iter().all(|name| {
            matches!(
                name.as_str(),
                ".gitignore" | "CACHEDIR.TAG" | "download" | "trees"
            )
        }) {
            for name in [".gitignore", "CACHEDIR.TAG"] {
                let _ = remove_file(hf_dir.join(name));
            }
            for sub in ["download", "trees", "", ".."] {
                let _ = fs::remove_dir(hf_dir.join(sub));
            }
        }
        let _ = fs::remove_dir(&folder);
        retired.push(done);
    }
    Ok(retired)
}
