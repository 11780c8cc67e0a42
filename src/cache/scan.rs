//! Reading every repo of the cache as `hf cache ls --revisions` sees it: each revision, the refs
//! that point at it, and what each file of its snapshot leads to. Reads only, and as few system
//! calls as it takes, so that a cache of 100,000 files is read in a fraction of a second: one
//! listing per folder; where a revision has its `trees/<commit>.json`, a link's blob is the etag
//! the listing gives its path (facehugger and the reference client only ever link a file to the
//! blob of its etag), else one `readlink`. The sizes and access times of blobs are read
//! separately ([`Cache::blob_usages`]), once per blob, only for repos that need them.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::time::SystemTime;

use camino::{Utf8Component, Utf8Path, Utf8PathBuf};

use super::Cache;
use super::remove::{STALE_TRASH_AGE, TRASH_PREFIX, is_older};
use super::shared::SharedStore;
use crate::repo::{CommitId, Repo, RepoType};

/// One repo folder of the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RepoScan {
    /// The repo the folder is named after.
    pub(crate) repo: Repo,
    /// `<cache>/<type>s--<owner>--<name>`.
    pub(crate) dir: Utf8PathBuf,
    /// Its revisions (snapshot folders named by a commit), by commit.
    pub(crate) revisions: Vec<RevisionScan>,
    /// Trash folders an interrupted `gc` left in the repo folder.
    pub(crate) trash: Vec<Utf8PathBuf>,
}

/// One revision: a `snapshots/<commit>` folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RevisionScan {
    /// The commit.
    pub(crate) commit: CommitId,
    /// The refs whose file names this commit, sorted (`main`, `refs/pr/1`).
    pub(crate) refs: Vec<String>,
    /// What each file of the snapshot leads to.
    pub(crate) files: Vec<Pointee>,
    /// When a file was last added to (or removed from) the snapshot: the latest modification
    /// time of its folders. A download in progress keeps it recent.
    pub(crate) changed: Option<SystemTime>,
}

/// What a snapshot file leads to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Pointee {
    /// A link to `<repo>/blobs/<name>` (one hop: the blob may itself link into the shared store).
    Blob(String),
    /// The snapshot file itself, a regular file: the content, in a cache without links
    /// (`HF_HUB_DISABLE_SYMLINKS`, Windows without Developer Mode). It goes with its snapshot.
    File(Utf8PathBuf),
    /// Anything else: a link that leads outside the repo's blobs (resolved), or something else
    /// than a file. Counted, never removed on its own.
    Other(Utf8PathBuf),
}

/// The size and last access of what a snapshot file leads to, links followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Bytes.
    pub(crate) size: u64,
    /// `st_atime`.
    pub(crate) accessed: SystemTime,
}

impl Cache {
    /// The cache folder.
    pub(crate) fn root(&self) -> &Utf8Path {
        &self.root
    }

    /// The repo folders of the cache, by folder name: `models--…`, `datasets--…` and
    /// `spaces--…` with a valid repo id. The shared store, `.locks` and anything else are left
    /// out. A missing cache has none.
    pub(crate) fn repo_folders(&self) -> Vec<(Repo, Utf8PathBuf)> {
        let store = SharedStore::new(self.root.clone()).dir();
        let mut found: Vec<(Repo, Utf8PathBuf)> = fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| {
                entry
                    .file_type()
                    .is_ok_and(|kind| kind.is_dir() || kind.is_symlink())
            })
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let repo = repo_of_folder(&name)?;
                let dir = self.root.join(&name);
                (dir != store && dir.is_dir()).then_some((repo, dir))
            })
            .collect();
        found.sort();
        found
    }

    /// Reads a repo folder: its revisions, their refs and what their files lead to.
    pub(crate) fn scan_repo(&self, repo: &Repo) -> RepoScan {
        let dir = self.repo_dir(repo);
        let mut refs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        read_refs(&dir.join("refs"), "", &mut refs);
        let mut revisions: Vec<RevisionScan> = fs::read_dir(dir.join("snapshots"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
            .filter_map(|entry| {
                let commit = CommitId::parse(entry.file_name().to_str()?)?;
                let snapshot = dir.join("snapshots").join(commit.as_str());
                let mut files = Vec::new();
                let mut changed = entry.metadata().and_then(|meta| meta.modified()).ok();
                let etags: HashMap<String, String> = self
                    .read_tree(repo, &commit)
                    .ok()
                    .flatten()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|file| {
                        let etag = file.etag().to_owned();
                        (file.path.clone(), etag)
                    })
                    .collect();
                let mut listing = Listing {
                    blobs: &dir.join("blobs"),
                    etags: &etags,
                    found: &mut files,
                    changed: &mut changed,
                };
                listing.add(&snapshot, "");
                let mut refs = refs.remove(commit.as_str()).unwrap_or_default();
                refs.sort();
                Some(RevisionScan {
                    commit,
                    refs,
                    files,
                    changed,
                })
            })
            .collect();
        revisions.sort_by(|a, b| a.commit.cmp(&b.commit));
        // Trash of a gc that is still running is young; an old one was interrupted.
        let now = SystemTime::now();
        let trash = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| {
                entry
                    .metadata()
                    .is_ok_and(|meta| meta.is_dir() && is_older(&meta, now, STALE_TRASH_AGE))
            })
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| name.starts_with(TRASH_PREFIX))
            .map(|name| dir.join(name))
            .collect();
        RepoScan {
            repo: repo.clone(),
            dir,
            revisions,
            trash,
        }
    }

    /// The size and access time of every blob of a repo (links followed, into the shared store
    /// too, as `hf cache ls` stats them), by name, with whether the blob is a link. One `stat`
    /// per blob, relative to the listed folder.
    pub(crate) fn blob_usages(&self, repo: &Repo) -> HashMap<String, (bool, Usage)> {
        let blobs = self.repo_dir(repo).join("blobs");
        fs::read_dir(&blobs)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let link = entry.file_type().ok()?.is_symlink();
                let meta = if link {
                    fs::metadata(blobs.join(&name)).ok()?
                } else {
                    entry.metadata().ok()?
                };
                let usage = Usage {
                    size: meta.len(),
                    accessed: meta.accessed().ok()?,
                };
                meta.is_file().then_some((name, (link, usage)))
            })
            .collect()
    }

    /// The size and access time of a snapshot file that is not a link to a blob.
    pub(crate) fn other_usage(&self, path: &Utf8Path) -> Option<Usage> {
        let meta = fs::metadata(path).ok()?;
        Some(Usage {
            size: meta.len(),
            accessed: meta.accessed().ok()?,
        })
    }
}

/// The repo a cache folder is named after: `models--acme--tiny` is the model `acme/tiny`.
pub(crate) fn repo_of_folder(name: &str) -> Option<Repo> {
    let (prefix, rest) = name.split_once("--")?;
    let repo_type = RepoType::ALL
        .into_iter()
        .find(|kind| kind.plural() == prefix)?;
    let repo = Repo::new(repo_type, &rest.replace("--", "/")).ok()?;
    // Only the canonical spelling: another name for the same repo is not its folder.
    (repo.folder_name() == name).then_some(repo)
}

/// Adds the refs under `dir` (`refs/pr/1` nests) to `found`, by the commit they name. A ref
/// that does not hold exactly a commit id names none.
fn read_refs(dir: &Utf8Path, prefix: &str, found: &mut BTreeMap<String, Vec<String>>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let (Ok(name), Ok(kind)) = (entry.file_name().into_string(), entry.file_type()) else {
            continue;
        };
        let reference = format!("{prefix}{name}");
        if kind.is_dir() {
            read_refs(&dir.join(&name), &format!("{reference}/"), found);
        } else if kind.is_file()
            && let Ok(text) = fs::read_to_string(dir.join(&name))
            && CommitId::parse(&text).is_some()
        {
            found.entry(text).or_default().push(reference);
        }
    }
}

/// A walk through snapshot folders, adding what each file leads to.
pub(super) struct Listing<'a> {
    /// The repo's `blobs/`.
    pub(super) blobs: &'a Utf8Path,
    /// The etag of each file path, from the revision's file list (empty: read every link).
    pub(super) etags: &'a HashMap<String, String>,
    /// What the files lead to.
    pub(super) found: &'a mut Vec<Pointee>,
    /// The latest modification time of the folders walked.
    pub(super) changed: &'a mut Option<SystemTime>,
}

impl Listing<'_> {
    /// Adds the files under `dir`, whose path in the snapshot starts with `prefix`.
    pub(super) fn add(&mut self, dir: &Utf8Path, prefix: &str) {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let (Ok(name), Ok(kind)) = (entry.file_name().into_string(), entry.file_type()) else {
                continue;
            };
            let path = dir.join(&name);
            let relative = format!("{prefix}{name}");
            if kind.is_dir() {
                let modified = entry.metadata().and_then(|meta| meta.modified()).ok();
                *self.changed = (*self.changed).max(modified);
                self.add(&path, &format!("{relative}/"));
            } else if kind.is_symlink() {
                if let Some(etag) = self.etags.get(&relative) {
                    self.found.push(Pointee::Blob(etag.clone()));
                    continue;
                }
                let Some(target) = fs::read_link(&path)
                    .ok()
                    .and_then(|target| Utf8PathBuf::from_path_buf(target).ok())
                else {
                    continue;
                };
                self.found.push(pointee(self.blobs, dir, &target));
            } else if kind.is_file() {
                self.found.push(Pointee::File(path));
            } else {
                self.found.push(Pointee::Other(path));
            }
        }
    }
}

/// What a link in `dir` with this target leads to: a blob of the repo, or something else.
pub(crate) fn pointee(blobs: &Utf8Path, dir: &Utf8Path, target: &Utf8Path) -> Pointee {
    let resolved = normalize(&dir.join(target));
    match resolved.strip_prefix(normalize(blobs)) {
        Ok(name) if name.components().count() == 1 => Pointee::Blob(name.as_str().to_owned()),
        _ => Pointee::Other(resolved),
    }
}

/// `path` with `.` and `a/..` taken out, without touching the disk (links are not followed, as
/// Python's `os.path.abspath` does).
pub(super) fn normalize(path: &Utf8Path) -> Utf8PathBuf {
    let mut out = Utf8PathBuf::new();
    for component in path.components() {
        match component {
            Utf8Component::CurDir => {}
            Utf8Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_str()),
        }
    }
    out
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::cache::relative_blob_target;
    use std::os::unix::fs::symlink;

    #[test]
    fn folders_name_their_repos() {
        let tiny = repo_of_folder("models--acme--tiny").unwrap();
        assert_eq!(tiny, Repo::new(RepoType::Model, "acme/tiny").unwrap());
        let gpt2 = repo_of_folder("models--gpt2").unwrap();
        assert_eq!(gpt2.id.as_str(), "gpt2");
        assert_eq!(
            repo_of_folder("datasets--a--b").unwrap().repo_type,
            RepoType::Dataset
        );
        for other in [
            "blobs",
            ".locks",
            "kernels--a--b",
            "models--",
            "models--a--b--c",
        ] {
            assert_eq!(repo_of_folder(other), None, "{other}");
        }
    }

    #[test]
    fn a_repo_reads_as_its_revisions_refs_and_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(Utf8Path::from_path(dir.path()).unwrap());
        let repo = Repo::new(RepoType::Model, "acme/tiny").unwrap();
        let repo_dir = cache.repo_dir(&repo);
        let (one, two) = ("1".repeat(40), "2".repeat(40));
        for (commit, path, etag) in [(&one, "a.txt", "e1"), (&two, "sub/b.txt", "e2")] {
            let pointer = repo_dir.join("snapshots").join(commit).join(path);
            fs::create_dir_all(pointer.parent().unwrap()).unwrap();
            symlink(relative_blob_target(path, etag), &pointer).unwrap();
        }
        fs::write(repo_dir.join("snapshots").join(&two).join("plain"), "x").unwrap();
        fs::create_dir_all(repo_dir.join("blobs")).unwrap();
        fs::write(repo_dir.join("blobs/e1"), "abc").unwrap();
        fs::create_dir_all(repo_dir.join("refs/refs/pr")).unwrap();
        fs::write(repo_dir.join("refs/main"), &two).unwrap();
        fs::write(repo_dir.join("refs/refs/pr/1"), &two).unwrap();
        fs::write(repo_dir.join("refs/v1"), format!("{one}\n")).unwrap();
        // A young trash folder is a running gc's; an old one an interrupted gc's.
        fs::create_dir_all(repo_dir.join(".facehugger-gc.0000000a.trash")).unwrap();
        fs::create_dir_all(repo_dir.join(".facehugger-gc.0000000b.trash")).unwrap();
        let hours_ago = SystemTime::now() - std::time::Duration::from_secs(7200);
        fs::File::open(repo_dir.join(".facehugger-gc.0000000b.trash"))
            .unwrap()
            .set_modified(hours_ago)
            .unwrap();
        fs::create_dir_all(dir.path().join("blobs")).unwrap();

        assert_eq!(cache.repo_folders(), vec![(repo.clone(), repo_dir.clone())]);
        let scan = cache.scan_repo(&repo);
        assert_eq!(scan.revisions.len(), 2);
        assert_eq!(scan.revisions[0].refs, Vec::<String>::new());
        assert_eq!(scan.revisions[0].files, vec![Pointee::Blob("e1".into())]);
        assert_eq!(scan.revisions[1].refs, vec!["main", "refs/pr/1"]);
        assert!(
            scan.revisions[1]
                .files
                .contains(&Pointee::Blob("e2".into()))
        );
        // The file itself, where links are off.
        assert!(scan.revisions[1].files.contains(&Pointee::File(
            repo_dir.join("snapshots").join(&two).join("plain")
        )));
        assert_eq!(
            scan.trash,
            vec![repo_dir.join(".facehugger-gc.0000000b.trash")]
        );
        let usages = cache.blob_usages(&repo);
        assert_eq!(usages["e1"].1.size, 3);
        assert!(!usages["e1"].0);
        assert!(!usages.contains_key("e2"));
    }

    #[test]
    fn links_outside_the_blobs_are_other_files() {
        let blobs = Utf8Path::new("/c/models--a--b/blobs");
        let dir = Utf8Path::new("/c/models--a--b/snapshots/c/sub");
        assert_eq!(
            pointee(blobs, dir, Utf8Path::new("../../../blobs/e")),
            Pointee::Blob("e".into())
        );
        assert_eq!(
            pointee(blobs, dir, Utf8Path::new("/elsewhere/e")),
            Pointee::Other("/elsewhere/e".into())
        );
        assert_eq!(
            pointee(blobs, dir, Utf8Path::new("../../../blobs/x/e")),
            Pointee::Other("/c/models--a--b/blobs/x/e".into())
        );
    }
}
