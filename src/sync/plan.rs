//! The planner: which files each model needs, and which of them the cache already has. Pure: it
//! reads nothing but what it is given, so it is tested without a hub or a disk.

use std::collections::HashSet;
use std::sync::Arc;

use crate::manifest::Model;
use crate::patterns::FileFilter;
use crate::repo::{CommitId, RepoFile};

/// A model resolved to a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The manifest entry.
    pub model: Model,
    /// The commit its ref resolved to (or that the lock pins).
    pub commit: CommitId,
}

impl Resolved {
    /// `acme/tiny@main`, how messages name a model.
    pub fn name(&self) -> String {
        self.model.name()
    }
}

/// What a selected file needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The snapshot already has it.
    Fresh,
    /// The blob is cached (from another revision or file); only the snapshot link is missing.
    Link,
    /// It must be downloaded.
    Download,
}

/// A file of a model and what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// The file, as the tree listing describes it (shared with the listing: a dataset may list
    /// a hundred thousand files).
    pub file: Arc<RepoFile>,
    /// What it needs.
    pub action: Action,
}

/// One model's part of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPlan {
    /// The model and its commit.
    pub resolved: Resolved,
    /// The selected files, sorted by path.
    pub files: Vec<PlannedFile>,
}

impl ModelPlan {
    /// Bytes to download for this model.
    pub fn download_bytes(&self) -> u64 {
        self.files_needing(Action::Download)
            .map(|f| f.file.size)
            .sum()
    }

    /// The files with a given action.
    pub fn files_needing(&self, action: Action) -> impl Iterator<Item = &PlannedFile> {
        self.files.iter().filter(move |f| f.action == action)
    }
}

/// What the cache holds of one model's repo and commit, as far as the planner needs to know.
pub(crate) trait CacheView {
    /// Whether `snapshots/<commit>/<path>` exists and leads to the file's blob.
    fn has_pointer(&self, file: &RepoFile) -> bool;
    /// Whether the blob with this etag exists in the repo.
    fn has_blob(&self, etag: &str) -> bool;
}

/// Selects each model's files from its commit's listing and decides what each needs.
pub(crate) fn plan_model(
    resolved: Resolved,
    listing: &[Arc<RepoFile>],
    cache: &dyn CacheView,
) -> ModelPlan {
    let filter = FileFilter::new(
        resolved.model.include.as_deref(),
        resolved.model.exclude.as_deref(),
    );
    let mut files: Vec<PlannedFile> = listing
        .iter()
        .filter(|file| filter.matches(&file.path))
        .map(|file| {
            let action = if cache.has_pointer(file) {
                Action::Fresh
            } else if cache.has_blob(file.etag()) {
                Action::Link
            } else {
                Action::Download
            };
            PlannedFile {
                file: Arc::clone(file),
                action,
            }
        })
        .collect();
    // A tree cached by either client lists its files sorted already.
    if !files.is_sorted_by(|a, b| a.file.path <= b.file.path) {
        files.sort_by(|a, b| a.file.path.cmp(&b.file.path));
    }
    ModelPlan { resolved, files }
}

/// Merges the plans of entries that name the same repo and ref (a workspace may declare a model
/// in several crates): one plan whose files are the union of theirs.
pub(crate) fn merge_plans(plans: Vec<ModelPlan>) -> Vec<ModelPlan> {
    let mut merged: Vec<ModelPlan> = Vec::with_capacity(plans.len());
    for plan in plans {
        let name = plan.resolved.name();
        match merged
            .iter_mut()
            .find(|known| known.resolved.name() == name)
        {
            Some(known) => {
                let paths: HashSet<String> =
                    known.files.iter().map(|f| f.file.path.clone()).collect();
                let new: Vec<PlannedFile> = plan
                    .files
                    .into_iter()
                    .filter(|file| !paths.contains(&file.file.path))
                    .collect();
                known.files.extend(new);
                known.files.sort_by(|a, b| a.file.path.cmp(&b.file.path));
            }
            None => merged.push(plan),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::location::Location;
    use crate::repo::{Repo, RepoType};

    struct FakeCache;
    impl CacheView for FakeCache {
        fn has_pointer(&self, file: &RepoFile) -> bool {
            file.path == "config.json"
        }
        fn has_blob(&self, etag: &str) -> bool {
            etag == "b".repeat(64)
        }
    }

    fn file(path: &str, lfs: Option<char>) -> Arc<RepoFile> {
        Arc::new(RepoFile {
            path: path.into(),
            size: 10,
            blob_id: "a".repeat(40),
            lfs_sha256: lfs.map(|c| c.to_string().repeat(64)),
            xet_hash: None,
        })
    }

    #[test]
    fn the_plan_selects_by_pattern_and_reuses_the_cache() {
        let resolved = Resolved {
            model: Model {
                repo: Repo::new(RepoType::Model, "acme/tiny").unwrap(),
                reference: "main".into(),
                include: Some(vec!["*.json".into(), "*.bin".into()]),
                exclude: Some(vec!["skip*".into()]),
                name: None,
                origin: Location::at("m.yaml".into(), 2, 5),
            },
            commit: CommitId::parse(&"c".repeat(40)).unwrap(),
        };
        let listing = [
            file("model.bin", Some('b')),
            file("config.json", None),
            file("other.bin", Some('d')),
            file("skip.json", None),
            file("README.md", None),
        ];
        let plan = plan_model(resolved, &listing, &FakeCache);
        let got: Vec<(&str, Action)> = plan
            .files
            .iter()
            .map(|f| (f.file.path.as_str(), f.action))
            .collect();
        assert_eq!(
            got,
            [
                ("config.json", Action::Fresh),
                ("model.bin", Action::Link),
                ("other.bin", Action::Download)
            ]
        );
        assert_eq!(plan.download_bytes(), 10);
        assert_eq!(plan.resolved.name(), "acme/tiny@main");

        // The same repo and ref declared again with other patterns: one plan, files united.
        let mut other = plan.resolved.clone();
        other.model.include = Some(vec!["README.md".into(), "config.json".into()]);
        other.model.origin = Location::at("Cargo.toml".into(), 9, 1);
        let second = plan_model(other, &listing, &FakeCache);
        let merged = merge_plans(vec![plan, second]);
        assert_eq!(merged.len(), 1);
        let paths: Vec<&str> = merged[0]
            .files
            .iter()
            .map(|f| f.file.path.as_str())
            .collect();
        assert_eq!(
            paths,
            ["README.md", "config.json", "model.bin", "other.bin"]
        );
    }
}
